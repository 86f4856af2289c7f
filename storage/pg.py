"""PostgreSQL behind the same `Database` the repositories use on SQLite (DANVAN_DB=postgresql://…).

Two psycopg connections in autocommit mode, as on SQLite: one for writes, whose transactions `Database.tx()`
holds under its lock, and one for reads, read-only, where each statement is its own snapshot. `Connection` is the
part of aiosqlite's connection the repositories call (`execute` awaited or used with `async with`, `rowcount`,
`lastrowid`, `executemany`), and rows answer by index and by name like `sqlite3.Row`.

Parameters are bound on the client as quoted literals, numbers too, so that PostgreSQL types each from where it
stands (a number compared with a TEXT column, a `1` given for a flag) as SQLite's loose typing lets it.
Errors are raised as sqlite3's class of the same DB-API name (IntegrityError, OperationalError, …), the
PostgreSQL error as their cause, so that callers and tests catch one kind whichever engine is behind.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Generator, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus

from storage import dialect
from storage.db import Database, _migrations

# A lock number of our own for `pg_advisory_xact_lock`: two processes starting at once migrate one after the other.
MIGRATION_LOCK = 0x64616E76  # "danv"
# SQLSTATE classes that say the database cannot take writes (read-only, disk full, I/O, gone), as opposed to a
# write that broke a rule.
WRITE_FAILURES = ("25006", "53", "58", "08", "57P")
# What only PostgreSQL has: the record of migrations applied, and the files people sent (storage/files.py), which
# SQLite keeps on disk beside its file.
OWN_TABLES = """
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,
                                              applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS files (sha256 TEXT PRIMARY KEY, content BYTEA NOT NULL);
"""
# Set for the session, so that the server probes a silent client: 10 s idle, then 3 probes 5 s apart.
KEEPALIVES = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5", "SET tcp_keepalives_count = 3")
# The client's too (libpq), and a bound on connecting: a worker whose database vanished finds out rather than wait
# on its socket for ever.
CLIENT_KEEPALIVES = "keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3&connect_timeout=10"


def probed(url: str) -> str:
    """The database's URL with the client's keepalives and bound on connecting (every connection a worker makes)."""
    return f"{url}{'&' if '?' in url else '?'}{CLIENT_KEEPALIVES}"


_INSERT_VALUES = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\([^)]*\)\s*VALUES\b", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


class _Literal(Dumper):
    """A number as a quoted literal of no type: the statement decides (SQLite's affinity does the same)."""

    def dump(self, obj: Any) -> bytes:
        return str(int(obj) if isinstance(obj, bool) else obj).encode()


class Row:
    """A row by index and by column name (case-insensitive, as `sqlite3.Row`)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | slice | str) -> Any:
        return self._values[self._index[key.lower()] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row{self._values!r}"

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.AsyncCursor) -> Any:
    index: dict[str, int] = {}
    for position, column in enumerate(cursor.description or ()):
        index.setdefault(column.name.lower(), position)
    return lambda values: Row(values, index)


def _sqlite_error(err: psycopg.Error) -> sqlite3.Error:
    kind = next(c for c in type(err).__mro__ if c.__module__.startswith("psycopg") and hasattr(sqlite3, c.__name__))
    translated = getattr(sqlite3, kind.__name__)(str(err).strip())
    translated.sqlstate = err.sqlstate  # type: ignore[attr-defined]
    return translated


class Cursor:
    def __init__(self, cursor: psycopg.AsyncCursor, lastrowid: int | None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        """None for a statement that returns no rows."""
        return self._cursor.description

    async def fetchone(self) -> Row | None:
        return await self._cursor.fetchone()

    async def fetchall(self) -> list[Row]:
        return await self._cursor.fetchall()

    def __aiter__(self) -> AsyncIterator[Row]:
        return self._cursor.__aiter__()

    async def close(self) -> None:
        await self._cursor.close()


class _Pending:
    """What `execute` returns: awaited, the cursor; with `async with`, the cursor, closed at the end."""

    def __init__(self, cursor: Awaitable[Cursor]) -> None:
        self._pending = cursor
        self._cursor: Cursor | None = None

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._pending.__await__()

    async def __aenter__(self) -> Cursor:
        self._cursor = await self._pending
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class Connection:
    """One connection to the server, made again on the next call after it was lost (PostgreSQL restarted, a
    network cut): the call that found it lost fails, as a write to a full disk does, and the next one goes on."""

    def __init__(self, url: str, settings: tuple[str, ...]) -> None:
        self._url, self._settings = url, settings
        self._conn: psycopg.AsyncConnection | None = None
        # Tables whose `id` the database numbers: an INSERT … VALUES into one returns it, as SQLite's lastrowid.
        self.numbered: frozenset[str] = frozenset()
        # Server sessions this connection has had: a new one holds none of the advisory locks the last one took.
        self.sessions = 0

    @classmethod
    async def open(cls, url: str, *settings: str) -> Connection:
        connection = cls(url, settings)
        await connection._ready()
        return connection

    async def _ready(self) -> psycopg.AsyncConnection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, row_factory=_row_factory,
                                                         cursor_factory=psycopg.AsyncClientCursor)
        except psycopg.Error as err:
            raise _sqlite_error(err) from err
        for kind in (int, bool, float):
            conn.adapters.register_dumper(kind, _Literal)
        try:
            for setting in self._settings:
                await conn.execute(setting)
        except psycopg.Error as err:
            await conn.close()
            raise _sqlite_error(err) from err
        self._conn = conn
        self.sessions += 1
        return conn

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.info.transaction_status in (TransactionStatus.INTRANS,
                                                                                   TransactionStatus.INERROR)

    def _statement(self, sql: str) -> tuple[str, bool]:
        """The statement as psycopg takes it (the translations are kept, bounded, by `dialect.postgres`), and whether
        it returns the id of the row it inserts."""
        translated = dialect.postgres(sql)
        insert = _INSERT_VALUES.match(sql)
        if insert and insert.group(1) in self.numbered and not _RETURNING.search(sql):
            return translated + " RETURNING id", True
        return translated, False

    async def _run(self, sql: str, params: Sequence[Any] | dict) -> Cursor:
        statement, returning = self._statement(sql)
        cursor = (await self._ready()).cursor()
        try:
            await cursor.execute(statement, params if params is not None else ())
            lastrowid = None
            if returning:
                rows = await cursor.fetchall()
                lastrowid = rows[-1][0] if rows else None
        except psycopg.Error as err:
            await cursor.close()
            raise _sqlite_error(err) from err
        return Cursor(cursor, lastrowid)

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> _Pending:
        return _Pending(self._run(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            async with (await self._ready()).cursor() as cursor:
                await cursor.executemany(dialect.postgres(sql), list(rows))
        except psycopg.Error as err:
            raise _sqlite_error(err) from err

    async def execute_fetchall(self, sql: str, params: Sequence[Any] | dict = ()) -> list[Row]:
        async with self.execute(sql, params) as cursor:
            return await cursor.fetchall()

    async def execute_insert(self, sql: str, params: Sequence[Any] | dict = ()) -> tuple[int] | None:
        async with self.execute(sql, params) as cursor:
            return (cursor.lastrowid,) if cursor.lastrowid is not None else None

    async def script(self, sql: str) -> None:
        """Several statements at once, no parameters (a migration)."""
        try:
            await (await self._ready()).execute(sql.replace("%", "%%"), ())
        except psycopg.Error as err:
            raise _sqlite_error(err) from err

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class PostgresDatabase(Database):
    dialect = dialect.POSTGRES

    @classmethod
    async def connect(cls, url: str) -> PostgresDatabase:
        # Probed both ways, as the connections that hold locks: a database machine that vanished fails the call
        # that finds it gone (and bounds a reconnection) instead of holding the writer's lock on a silent socket.
        conn = await Connection.open(probed(url), *KEEPALIVES)
        try:
            reader = await Connection.open(probed(url), *KEEPALIVES, "SET default_transaction_read_only = on")
        except BaseException:
            await conn.close()
            raise
        db = cls(conn, url, reader)
        await db._numbered()
        return db

    async def atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """One transaction, a round trip per statement (there is no thread here to save trips to)."""
        rows = []
        async with self.tx() as conn:
            for sql, params in statements:
                async with conn.execute(sql, params) as cursor:
                    rows.append(await cursor.fetchall() if cursor.description is not None else [])
        return rows

    def _failed(self, err: sqlite3.Error) -> None:
        state = getattr(err, "sqlstate", None)
        if state is None or state.startswith(WRITE_FAILURES):  # None: the connection itself failed
            self.write_failure = (time.monotonic(), str(err))

    async def version(self) -> int:
        row = await self.fetchone("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not row[0]:
            return 0
        row = await self.fetchone("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(row[0])

    async def migrate(self) -> list[int]:
        """Apply the numbered migrations not yet in `schema_migrations`: each its PostgreSQL file in
        `migrations/pg/` where SQLite's needs more than a respelling (a table rebuilt), else SQLite's respelled."""
        applied = []
        async with self.tx() as conn:
            await conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            await conn.script(OWN_TABLES)
            done = {r[0] for r in await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()}
            own = dict(_migrations("pg"))
            for number, sql in _migrations():
                if number in done:
                    continue
                await conn.script(own.get(number) or dialect.schema(sql))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
                applied.append(number)
        await self._numbered()
        return applied

    async def _numbered(self) -> None:
        rows = await self.fetchall("SELECT table_name FROM information_schema.columns WHERE column_name = 'id'"
                                   " AND is_identity = 'YES' AND table_schema = current_schema()")
        self.conn.numbered = frozenset(r[0] for r in rows)
