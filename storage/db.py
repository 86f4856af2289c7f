"""Two long-lived aiosqlite connections, one for writes and one for reads, and two more used on the event loop's
own thread; numbered migrations.

Coroutines that share an aiosqlite connection share its transaction, so the write connection runs in
autocommit mode and every multi-statement write takes `Database.tx()`, which holds an asyncio lock
around `BEGIN IMMEDIATE … COMMIT`; a single-statement write takes the same lock and is its own
transaction. A write can wait on the connection's thread for as long as the busy timeout while another
process (a CLI import, a backup) holds the file's write lock, and everything queued on that thread waits
with it. So `fetchone` and `fetchall` go to a second, query-only connection on the same file: under WAL
it reads the last committed state without waiting for any writer, and each read is its own snapshot, so it
never sees another coroutine's uncommitted rows, only what was committed before it started. A read that a
transaction's decision depends on (or that must see the transaction's own writes) goes through the `conn`
that `tx()` yields; so does a write that returns rows (`INSERT … RETURNING`), which the query-only
connection refuses. An in-memory database is private to its connection, so there both are one connection.
A `postgresql://` URL opens the same interface on PostgreSQL (storage/pg.py).

Every aiosqlite call is a trip to the connection's thread and back (~20 µs of CPU in a quiet loop, 40–50 µs in
bench.inbound, the GIL and the wake-ups included; the bot made ~5 a Zalo update, a third of its CPU), so a short
unit of work on the hot path (a conversation's save) takes `Database.atomic()`: the whole transaction, BEGIN to
COMMIT, as one call. And `fetchone`, `fetchall`, `execute`, `returning` and `atomic` first run on the event loop's
own thread, on two plain sqlite3 connections of its own (`Loopside`: one query-only, one for writes and SELECTs),
guarded so that they can never hold the loop for long; what they cannot do at once goes to the threads as before:

* no busy timeout: a write that would wait for another process's lock, and a read that would wait (a WAL
  recovery), get SQLITE_BUSY at once and nothing was done;
* a budget of `QUICK_BUDGET_S` per call: SQLite's progress handler interrupts a statement that runs longer, and a
  write interrupted is a transaction rolled back whole (writes there always run BEGIN IMMEDIATE … COMMIT, and the
  COMMIT itself is never interrupted), so nothing was done either;
* no wait for the disk on the loop: synchronous=NORMAL, under which a commit writes the WAL but does not fsync
  it; the loop's write connection has no autocheckpoint, and every so many commits there a worker thread runs one
  on a connection of its own, as that autocheckpoint would have (as many commits as filled the WAL to
  `CHECKPOINT_PAGES`, SQLite's own threshold, the last time that could be measured; `CHECKPOINT_EVERY` at first):
  beside the writers, not under their lock, since it mostly waits for the disk, unless the WAL has grown to
  `CHECKPOINT_ALONE_PAGES` because writers kept adding to it meanwhile. The writes while it runs, and the one
  after it, which may start the WAL over and fsync its header, are done on the write connection's thread. (When a
  write there, a `tx()` or one made while a checkpoint runs, pushes the WAL past 1,000 pages, that connection's
  autocheckpoint runs and the next write on the loop may sync the header: one fsync, 0.3–1 ms on the bench's disk;
  3 times in 12,000 inserts by 4 coroutines at once);
* the write lock (`_lock`) still serializes this process's writers, the loop's and the threads' alike;
* a call there lets nothing else run, so a coroutine making many in a row gives the loop a turn every
  `TURN_EVERY` of them.

So what is rerun on a thread is exactly a call that did nothing: a read, or a write or `atomic` whose transaction
never committed. `tx()` (long transactions, imports, retention), `executemany` and `scratch` stay on the thread.
A large read (a report) costs the loop its budget before it is rerun there.

Since another connection of this process now commits, a statement left unfinished on the write connection (a
cursor not read to its end nor closed) would keep an old snapshot, and its next BEGIN IMMEDIATE would fail with
SQLITE_BUSY_SNAPSHOT: read cursors to the end, or close them (`async with conn.execute(…) as cur`). And what is a
connection's own (TEMP tables and triggers, PRAGMA settings) made through `execute` lands on the loop's write
connection only: staging tables go through `scratch()` and are read inside `tx()`, as before.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage import dialect

log = logging.getLogger(__name__)
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# What says the database itself cannot take writes: not a write breaking a rule (a UNIQUE key), nor one that
# waited too long for another process's lock (an import), which the next write may well get.
WRITE_FAILURES = {sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
                  sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB}
# How long a call may hold the event loop before SQLite interrupts it and it is rerun on a thread: every chat
# waits meanwhile, and the bot's point reads and small writes take well under a millisecond. SQLite looks at the
# clock every QUICK_OPS instructions of its virtual machine (tens of microseconds apart); a single instruction
# that takes long (sorting a large result) is not interrupted until it ends.
QUICK_BUDGET_S = 0.003
QUICK_OPS = 1000
# SQLite's autocheckpoint runs at 1,000 pages of WAL: so does the loop's, counted in commits, as many as last filled
# that many pages (a commit of the bot's writes is 2–5 pages). Checkpointing more often copies the same hot pages
# (the journal's, the chats') again each time, and stops every writer while it runs.
CHECKPOINT_PAGES = 1000
CHECKPOINT_EVERY = 100  # commits before the first checkpoint, before any was measured
# A checkpoint waits for the disk twice (fsync of the WAL, then of the database: ~90% of its 4–5 ms on the bench's
# disk), so it runs beside the writers, not under their lock. One that writers kept adding to while it ran leaves the
# WAL to grow on; once it holds this many pages, the next checkpoint takes the lock, finishes, and the WAL starts over.
CHECKPOINT_ALONE_PAGES = 4 * CHECKPOINT_PAGES
# A call on the loop's connections never lets the loop run anything else, so a coroutine making many in a row (a
# loop of inserts) would hold it for all of them: every this many such calls, the caller gives the loop one turn.
TURN_EVERY = 64
# What says a call on the loop's connections did nothing and may be rerun on a thread.
RERUN = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_INTERRUPT}
T = TypeVar("T")
AGAIN: Any = object()  # what a call on the loop's connections returns when it must be rerun on a thread


class DatabaseUnavailable(Exception):
    """The database cannot be opened, migrated or written at start (not a database, read-only, disk full)."""

    def __init__(self, path: str, reason: str) -> None:
        path = dialect.shown(path)
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class Database:
    dialect: dialect.Sqlite | dialect.Postgres = dialect.SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: str, reader: aiosqlite.Connection | None = None,
                 loopside: Loopside | None = None) -> None:
        self.conn = conn
        self.reader = reader or conn
        self.path = path
        self.loopside = loopside  # None: every call on the threads (an in-memory database is one connection)
        self._lock = asyncio.Lock()
        self._commits = 0
        self._checkpoint_every: int | None = None  # commits on the loop between checkpoints, once measured
        self._wal_pages = 0  # pages in the WAL at the latest checkpoint
        # The latest checkpoint copied the whole WAL and nobody wrote meanwhile: the WAL starts over at the next
        # write, so the next checkpoint's pages are those its commits added (what the cadence is measured by).
        self._started_over = True
        self._checkpointing: asyncio.Task | None = None  # one beside the writers, under way
        self._closing = False
        # The next write after a checkpoint may start the WAL over and wait for the disk (fsync) to have its header:
        # that one goes to the thread, as do those while a checkpoint runs (one of them could be it).
        self._after_checkpoint = False
        self._quick_calls = 0  # calls on the loop's connections since the loop last had a turn (TURN_EVERY)
        # (time.monotonic(), SQLite's reason) when the latest write failed for want of a writable database;
        # None once a write commits. /healthz reads it without waiting for the lock.
        self.write_failure: tuple[float, str] | None = None

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        path = str(path)
        if dialect.is_url(path):
            from storage.pg import PostgresDatabase  # psycopg is loaded only where PostgreSQL is used

            return await PostgresDatabase.connect(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # When aiosqlite cannot open a file it stops its thread without waiting for it, and the thread may
            # then outlive the event loop and print a traceback: find out first, in a thread of our own.
            await asyncio.to_thread(lambda: sqlite3.connect(path).close())
        conn = await _connect(path, "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")
        if path == ":memory:":
            return cls(conn, path)
        reader = None
        try:
            # foreign_keys too, so that PRAGMA reads answer for the database as the writer uses it.
            reader = await _connect(path, "PRAGMA query_only=ON", "PRAGMA foreign_keys=ON")
            loopside = Loopside(path)
        except BaseException:
            if reader is not None:
                await reader.close()
            await conn.close()
            raise
        return cls(conn, path, reader, loopside)

    async def close(self) -> None:
        self._closing = True  # no checkpoint starts after this one
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self.loopside is not None:  # first: the last connection to close checkpoints, and not on the loop
            self.loopside.close()
        if self.reader is not self.conn:
            await self.reader.close()
        await self.conn.close()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """A real transaction: no other coroutine's writes can interleave with it."""
        async with self._lock:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    await self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:  # SQLite keeps it open when COMMIT fails (busy, a deferred key)
                        await self.conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                self._failed(err)
                raise
            self.write_failure = None

    async def atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[aiosqlite.Row]]:
        """The statements as one transaction (BEGIN IMMEDIATE … COMMIT; rolled back if one fails), in one call on
        the loop's write connection or one trip to the write connection's thread, under the lock; returns the rows
        each returned (`… RETURNING`)."""
        return await self._write(statements, lambda rows: rows, lambda: on_thread(self.conn, _transaction, statements))

    async def fetchone(self, sql: str, params: Sequence[Any] | dict = ()) -> aiosqlite.Row | None:
        return next(iter(await self.fetchall(sql, params)), None)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict = ()) -> list[aiosqlite.Row]:
        if self.loopside is not None and (rows := self.loopside.read(sql, params)) is not AGAIN:
            await self._taken()
            return rows
        return list(await self.reader.execute_fetchall(sql, params))

    async def _taken(self) -> None:
        """A call was served on the loop's connections: every TURN_EVERY of them, the loop gets a turn."""
        self._quick_calls += 1
        if self._quick_calls >= TURN_EVERY:
            self._quick_calls = 0
            await asyncio.sleep(0)

    async def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> int:
        """A single-statement write: its own transaction, under the lock so that it never lands inside another
        coroutine's `tx()`; one call. Returns the last inserted rowid."""
        async def on_thread_() -> int:
            row = await self.conn.execute_insert(sql, params)
            return int(row[0]) if row else 0

        return await self._write([(sql, params), ("SELECT last_insert_rowid()", ())], lambda rows: int(rows[1][0][0]),
                                 on_thread_)

    async def returning(self, sql: str, params: Sequence[Any] | dict = ()) -> list[aiosqlite.Row]:
        """A single-statement write that returns rows (`INSERT … RETURNING`): its own transaction, one call."""
        async def on_thread_() -> list[aiosqlite.Row]:
            return list(await self.conn.execute_fetchall(sql, params))

        return await self._write([(sql, params)], lambda rows: rows[0], on_thread_)

    async def _write(self, statements: Sequence[tuple[str, Sequence[Any]]], result: Callable[[list[list[Any]]], T],
                     on_thread_: Callable[[], Awaitable[T]]) -> T:
        """The statements as one transaction on the loop's write connection (`result` of their rows), or, when
        that did nothing (busy, over its budget), `on_thread_`: the same work on the write connection's thread.
        Under the lock either way."""
        quick = False
        async with self._lock:
            try:
                after = self._after_checkpoint and self._checkpointing is None
                aside = self.loopside is None or self._after_checkpoint or self._checkpointing is not None
                rows = AGAIN if aside else self.loopside.write(statements)
                if rows is AGAIN:
                    done = await on_thread_()
                    if after:
                        self._after_checkpoint = False
                else:
                    done, quick = result(rows), True
                if self.loopside is not None:  # the threads' commits too: they fill the same WAL
                    self._commits += 1
            except sqlite3.Error as err:
                self._failed(err)
                raise
            self.write_failure = None
            due = self._commits >= (self._checkpoint_every or CHECKPOINT_EVERY)
            if due and self._checkpointing is None and not self._closing:
                if self._wal_pages >= CHECKPOINT_ALONE_PAGES:
                    await self._checkpoint(alone=True)
                else:
                    self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint(alone=False))
        if quick:  # after the lock: the loop's turn is not one in which every other writer waits
            await self._taken()
        return done

    async def _checkpoint(self, alone: bool) -> None:
        """What the write connection's autocheckpoint would have done for the loop's commits; PASSIVE, so it never
        waits for a reader or another process. The writes themselves have committed: a failure here is only told.
        In a worker thread on a connection of its own; `alone` under the write lock, else beside the writers (a task),
        who meanwhile write on the write connection's thread."""
        commits, self._commits = self._commits, 0
        try:
            pages, copied = await asyncio.to_thread(self.loopside.checkpoint)
        except sqlite3.Error as err:
            self._failed(err)
        except Exception:  # a task's: nobody else would hear of it
            log.warning("the database's checkpoint failed", exc_info=True)
        else:
            # Pages in the WAL and commits since it started over: as many commits as fill CHECKPOINT_PAGES go before
            # the next checkpoint (each adds a page at least). When it did not start over, the pages are more than
            # these commits added (which would only bring the next one sooner); when it started over in between (a
            # `tx()` reaching SQLite's own autocheckpoint), fewer: so only a WAL known to have started over counts.
            if self._started_over and pages > 0:
                self._checkpoint_every = min(CHECKPOINT_PAGES, max(1, commits * CHECKPOINT_PAGES // pages))
            self._started_over = pages >= 0 and copied == pages and self._commits == 0
            self._wal_pages = 0 if self._started_over else max(pages, 0)
            self._after_checkpoint = True
        finally:
            if not alone:
                self._checkpointing = None

    def _failed(self, err: sqlite3.Error) -> None:
        if getattr(err, "sqlite_errorcode", 0) & 0xFF in WRITE_FAILURES:  # the primary code, without extensions
            self.write_failure = (time.monotonic(), str(err))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.tx() as conn:
            await conn.executemany(sql, rows)

    async def scratch(self, sql: str, rows: Iterable[Sequence[Any]] | None = None) -> None:
        """Write to this connection's TEMP tables (staging for an import): under the lock, so it never lands
        inside another coroutine's transaction, but in a deferred transaction that touches only the temp
        database, so the file's write lock is not taken and no other writer waits for it."""
        async with self._lock:
            await self.conn.execute("BEGIN")
            try:
                await (self.conn.execute(sql) if rows is None else self.conn.executemany(sql, rows))
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def ping(self) -> bool:
        row = await self.fetchone("SELECT 1")
        return row is not None

    async def version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> list[int]:
        """Apply the numbered migrations not yet recorded in `schema_migrations`, in order; returns what ran.

        Each is recorded by its number, not by the highest one applied: a migration merged after a higher-numbered
        one still runs on a database that has the higher one. A database from before this table had every
        migration up to its `PRAGMA user_version`, which is kept at the highest applied number for `version()`."""
        applied = []
        await self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        async with self.conn.execute("SELECT version FROM schema_migrations") as cur:
            done = {r[0] for r in await cur.fetchall()}
        if not done and (current := await self.version()):
            done = {number for number, _ in _migrations() if number <= current}
            await self.conn.executemany("INSERT INTO schema_migrations (version) VALUES (?)", [(n,) for n in done])
        # With foreign keys off a migration can rebuild a table that others refer to (SQLite's documented way
        # to change a constraint); they are checked before it commits, so none is left dangling.
        await self.conn.execute("PRAGMA foreign_keys=OFF")
        try:
            for number, sql in _migrations():
                if number in done:
                    continue
                async with self.tx() as conn:
                    for statement in _split_sql(sql):
                        await conn.execute(statement)
                    async with conn.execute("PRAGMA foreign_key_check") as cur:
                        if broken := await cur.fetchall():
                            raise sqlite3.IntegrityError(f"migration {number} breaks foreign keys: {broken[:5]}")
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
                    await conn.execute(f"PRAGMA user_version={max(number, await self._user_version(conn))}")
                applied.append(number)
        finally:
            await self.conn.execute("PRAGMA foreign_keys=ON")
        return applied

    @staticmethod
    async def _user_version(conn: aiosqlite.Connection) -> int:
        async with conn.execute("PRAGMA user_version") as cur:
            return (await cur.fetchone())[0]


def on_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """`fn(sqlite3 connection, *args)` run on `conn`'s own thread (where its sqlite3 connection lives), awaited.

    aiosqlite has no public call for this, and its `_execute` (queue a function for the thread, await its result)
    is exactly it: the same in 0.20, 0.21 and 0.22, which pyproject.toml's range is pinned to. This is the one
    place that touches aiosqlite's private parts; tests/test_storage.py checks it on the installed version."""
    return conn._execute(lambda: fn(conn._conn, *args))


def _transaction(conn: sqlite3.Connection, statements: Sequence[tuple[str, Sequence[Any]]],
                 settle: Callable[[], None] = lambda: None) -> list[list[Any]]:
    """BEGIN IMMEDIATE, the statements, COMMIT; rolled back if anything fails. `settle` is called before the COMMIT
    or the ROLLBACK: on the loop's connections it ends the budget, so that neither is ever interrupted (SQLite
    can report an interrupt after the COMMIT has committed)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        rows = [conn.execute(sql, params).fetchall() for sql, params in statements]
        settle()
        conn.execute("COMMIT")
    except BaseException:
        settle()
        if conn.in_transaction:  # as in tx(): a failed COMMIT leaves it open
            conn.execute("ROLLBACK")
        raise
    return rows


class Loopside:
    """Two plain sqlite3 connections used on the event loop's own thread, each call whole and synchronous, so no
    other coroutine ever sees one half done: `reads` (query-only) and `writes` (which reads a SELECT too: `read`).
    See the module's docstring."""

    def __init__(self, path: str) -> None:
        self._deadline = math.inf
        self.reads = self._open(path, "PRAGMA query_only=ON", "PRAGMA foreign_keys=ON")
        try:
            # synchronous=NORMAL as on the write connection: under WAL a commit then writes but never waits for
            # the disk (fsync), which only a checkpoint does.
            self.writes = self._open(path, "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL",
                                     "PRAGMA wal_autocheckpoint=0")
        except BaseException:
            self.reads.close()
            raise
        # The loop's checkpoints, run in a worker thread (`checkpoint`): a connection of their own, so that one never
        # lands inside a transaction of the write connection's thread (a `tx()`), and no write waits behind it there.
        self.checkpoints = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)

    def _open(self, path: str, *pragmas: str) -> sqlite3.Connection:
        # timeout=0: no busy timeout. check_same_thread off: the loop's thread is the one that opens it in the
        # bot, but the guarantee that matters is that calls never overlap, which running them whole gives.
        conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in pragmas:
                conn.execute(pragma)
            conn.set_progress_handler(self._overdue, QUICK_OPS)
        except BaseException:
            conn.close()
            raise
        return conn

    def _overdue(self) -> bool:
        return time.perf_counter() > self._deadline

    def _settle(self) -> None:
        self._deadline = math.inf

    def read(self, sql: str, params: Sequence[Any] | dict) -> list[sqlite3.Row]:
        """The rows, or AGAIN when the query was busy or over its budget (and so must be rerun on a thread).

        A SELECT, which cannot write, is read on the write connection: under WAL a connection keeps its page cache
        across its own commits but drops it at another's, so the query-only one read every page again after each
        of the loop's writes (twice the time of a point read). Anything else (a PRAGMA, a WITH) on the query-only
        one, which refuses a write."""
        conn = self.writes if sql.lstrip()[:6].upper() == "SELECT" else self.reads
        return self._run(lambda: conn.execute(sql, params).fetchall())

    def write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[sqlite3.Row]]:
        """`_transaction` on the write connection, or AGAIN when it did not commit for want of the file's lock or
        of time: it was rolled back whole, nothing was done."""
        return self._run(lambda: _transaction(self.writes, statements, self._settle))

    def _run(self, work: Callable[[], T]) -> T:
        self._deadline = time.perf_counter() + QUICK_BUDGET_S
        try:
            return work()
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode & 0xFF in RERUN:
                return AGAIN
            raise
        finally:
            self._settle()

    def checkpoint(self) -> tuple[int, int]:
        """A PASSIVE checkpoint (in a worker thread, one at a time): the pages in the WAL when it began, and those of
        them it copied into the database."""
        busy, pages, copied = self.checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return pages, copied

    def close(self) -> None:
        self.reads.close()
        self.writes.close()
        self.checkpoints.close()


async def _connect(path: str, *pragmas: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    try:
        for pragma in (*pragmas, "PRAGMA busy_timeout=5000"):
            await conn.execute(pragma)
    except BaseException:
        await conn.close()
        raise
    return conn


def _migrations(folder: str = "") -> list[tuple[int, str]]:
    """(number, SQL) of each migration in order; from `pg/`, PostgreSQL's own versions of some."""
    found = []
    for entry in resources.files("storage.migrations").joinpath(folder).iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, buffer = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buffer.append(line)
        candidate = "\n".join(buffer).strip()
        if sqlite3.complete_statement(candidate):
            statements.append(candidate)
            buffer = []
    rest = "\n".join(buffer).strip()
    if rest:
        statements.append(rest)
    return statements

