"""SQLite calls on the event loop's own thread (storage/db.py `Loopside`) and their guards: what cannot be done
there at once (another process holds the write lock, a query runs too long) is rerun on a thread, exactly once,
while the loop goes on; the answers are the same on both ways."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest

from storage import db as db_module
from storage.db import Database, Loopside
from tests.test_leader import GUARD
from tests.test_storage import trips

# A query that takes far longer than the loop's budget (hundreds of milliseconds): its rows are known.
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*), sum(x) FROM c"
SLOW_INSERT = ("INSERT INTO numbers (n) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
               " WHERE x < ?) SELECT x FROM c)")
N = 300_000


async def turns_while(awaitable) -> tuple[object, int]:
    """Its result, and how many times the event loop ran something else while it was under way (after its
    first step, in which whatever it does without waiting is done)."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.sleep(0)
    turns = 0
    while not task.done():
        turns += 1
        await asyncio.sleep(0)
    return task.result(), turns


def thread_side(db: Database) -> Database:
    """The same database, every call on the threads (the way each call falls back to)."""
    return Database(db.conn, db.path, db.reader)


async def test_a_write_while_another_process_holds_the_lock_waits_on_a_thread_not_on_the_loop(store):
    db = store.db
    assert [c.execute("PRAGMA busy_timeout").fetchone()[0] for c in (db.loopside.reads, db.loopside.writes)] == [0, 0]
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a CLI import
        other.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('import', 'I', 'I')")
        write = asyncio.ensure_future(db.atomic([
            ("INSERT INTO topics (code, name_vi, name_en) VALUES ('bot', 'B', 'B') RETURNING code", ())]))
        single = asyncio.ensure_future(
            db.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('one', 'O', 'O')"))
        await asyncio.sleep(0)
        turns = 0
        while turns < 20:  # the loop goes on, and reads answer, while both writes wait for the lock
            turns += 1
            row = await db.fetchone("SELECT count(*) FROM topics WHERE code IN ('import', 'bot', 'one')")
            assert tuple(row) == (0,)
            assert not write.done() and not single.done()
        other.execute("COMMIT")
        assert _plain(await write) == [[(sqlite3.Row, ["code"], ("bot",))]] and await single > 0
    finally:
        other.close()
    rows = await db.fetchall("SELECT code FROM topics WHERE code IN ('import', 'bot', 'one') ORDER BY code")
    assert [r[0] for r in rows] == ["bot", "import", "one"]


@pytest.mark.parametrize("query", [SLOW, f"SELECT * FROM ({SLOW})"])  # a SELECT is read on the loop's write connection
async def test_a_slow_query_is_interrupted_on_the_loop_and_answered_from_a_thread(store, monkeypatch, query):
    seen = trips(monkeypatch)
    row, turns = await turns_while(store.db.fetchone(query, (N,)))
    assert tuple(row) == (N, N * (N + 1) // 2)
    assert seen == ["loop", "_execute_fetchall"]  # interrupted on the loop, rerun once on the reader's thread
    assert turns > 0  # the loop went on meanwhile
    assert not store.db.loopside.writes.in_transaction  # nothing left open: the next write is on the loop
    await store.db.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('after', 'A', 'A')")
    assert seen[-1] == "loop"


async def test_reads_on_the_loop_cannot_write(store):
    for write in ("INSERT INTO topics (code, name_vi, name_en) VALUES ('x', 'X', 'X') RETURNING id",
                  "WITH t AS (SELECT 1) DELETE FROM topics RETURNING id", "  select 1; DELETE FROM topics"):
        with pytest.raises((sqlite3.OperationalError, sqlite3.ProgrammingError)):
            await store.db.fetchall(write)
    assert (await store.db.fetchone("SELECT count(*) FROM topics"))[0] > 0


async def test_a_slow_transaction_is_rolled_back_on_the_loop_and_done_once_on_a_thread(store, monkeypatch):
    db = store.db
    await db.execute("CREATE TABLE numbers (n INTEGER)")
    seen = trips(monkeypatch)
    rows, turns = await turns_while(db.atomic([
        ("INSERT INTO topics (code, name_vi, name_en) VALUES ('first', 'F', 'F') RETURNING id", ()),
        (SLOW_INSERT, (N,)),
        ("SELECT count(*), sum(n) FROM numbers", ())]))
    assert seen[0] == "loop" and len(seen) == 2 and turns > 0
    # topics.code is unique: had the first insert on the loop not been rolled back, the rerun would have failed.
    [[topic]] = await db.fetchall("SELECT id FROM topics WHERE code = 'first'")
    assert [[tuple(r) for r in x] for x in rows] == [[(topic,)], [], [(N, N * (N + 1) // 2)]]
    assert tuple(await db.fetchone("SELECT count(*), sum(n) FROM numbers")) == (N, N * (N + 1) // 2)
    assert not db.loopside.writes.in_transaction and not db.conn.in_transaction


async def test_a_slow_single_write_is_done_once(store, monkeypatch):
    db = store.db
    await db.execute("CREATE TABLE numbers (n INTEGER)")
    seen = trips(monkeypatch)
    rowid, turns = await turns_while(db.execute(SLOW_INSERT, (N,)))
    assert rowid == N and turns > 0 and seen[0] == "loop" and len(seen) == 2
    assert tuple(await db.fetchone("SELECT count(*) FROM numbers")) == (N,)


async def test_the_answers_are_the_same_on_the_loop_and_on_the_threads(store, monkeypatch):
    async def scenario(db: Database, table: str) -> list:
        await db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB,"
                         " note TEXT)")
        first = await db.execute(f"INSERT INTO {table} (name, score, data) VALUES (?, ?, ?)", ("a", 1.5, b"\x00\xff"))
        updated = await db.execute(f"UPDATE {table} SET note = 'x' WHERE id = ?", (first,))
        returned = await db.returning(f"INSERT INTO {table} (name, score) VALUES (:n, :s) RETURNING id, name, note",
                                      {"n": "b", "s": 2})
        unit = await db.atomic([(f"UPDATE {table} SET score = score * 2 RETURNING id, score", ()),
                                (f"INSERT INTO {table} (name) VALUES ('c')", ())])
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute(f"INSERT INTO {table} (name) VALUES ('a')")
        with pytest.raises(sqlite3.IntegrityError):
            await db.atomic([(f"INSERT INTO {table} (name) VALUES ('d')", ()),
                             (f"INSERT INTO {table} (name) VALUES ('a')", ())])
        every = await db.fetchall(f"SELECT * FROM {table} ORDER BY id")
        one = await db.fetchone(f"SELECT name, typeof(score), length(data) FROM {table} WHERE id = ?", (first,))
        none = await db.fetchone(f"SELECT * FROM {table} WHERE id < 0")
        return _plain([first, updated, returned, unit, every, one, none])

    seen = trips(monkeypatch)
    on_loop = await scenario(store.db, "things")
    assert set(seen) == {"loop"}
    seen.clear()
    on_threads = await scenario(thread_side(store.db), "things2")
    assert "loop" not in seen
    assert on_loop == on_threads


def file_size(path: str) -> int:
    return os.path.getsize(path)


def _plain(value):
    """Rows as (type, column names, values), in whatever lists hold them."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, sqlite3.Row):
        return type(value), value.keys(), tuple(value)
    return value


def checkpoints(monkeypatch, disk: threading.Event | None = None) -> list[tuple[int, int]]:
    """Every checkpoint from now on, as (pages in the WAL, pages copied); each waits for `disk` first when given (a
    slow disk: it runs in a worker thread)."""
    done, checkpoint = [], Loopside.checkpoint

    def counted(self):
        if disk is not None:
            assert disk.wait(GUARD)
        done.append(checkpoint(self))
        return done[-1]

    monkeypatch.setattr(Loopside, "checkpoint", counted)
    return done


async def settled(db: Database) -> None:
    if db._checkpointing is not None:
        await db._checkpointing


async def test_the_loops_commits_are_checkpointed_in_a_thread_beside_the_writers(store, monkeypatch):
    db = store.db
    assert db.loopside.writes.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    await db.execute("CREATE TABLE pages (data BLOB)")
    await db.conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 5)
    db._commits = 0
    size = file_size(db.path)
    seen, done = trips(monkeypatch), checkpoints(monkeypatch)
    for _ in range(4):
        await db.execute("INSERT INTO pages VALUES (randomblob(20000))")
    assert file_size(db.path) == size and set(seen) == {"loop"}  # in the WAL only
    await db.execute("INSERT INTO pages VALUES (randomblob(20000))")
    assert db._checkpointing is not None  # beside the writers: the write did not wait for it
    await settled(db)
    assert len(done) == 1 and file_size(db.path) > size + 5 * 20000
    await db.execute("INSERT INTO pages VALUES (randomblob(20000))")  # starts the WAL over: on the thread
    assert seen[-1] == "_execute_insert"
    await db.execute("INSERT INTO pages VALUES (randomblob(20000))")
    assert seen[-1] == "loop"


@pytest.mark.parametrize("blob, at_commits", [
    (100, [5]),  # ~1 page a commit: the next checkpoint only once ~1,000 pages more could have come
    (1_000_000, [5, 9, 13, 17]),  # ~250 pages a commit: every 4 commits, not every 5
])
async def test_the_loop_checkpoints_as_often_as_1000_pages_of_wal(store, monkeypatch, blob, at_commits):
    db = store.db
    await db.execute("CREATE TABLE pages (data BLOB)")
    await db.conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 5)  # before the first one: no WAL measured yet
    db._commits = 0
    done, at = checkpoints(monkeypatch), []
    for commit in range(1, 19):
        before = len(done)
        await db.execute("INSERT INTO pages VALUES (randomblob(?))", (blob,))
        await settled(db)
        if len(done) > before:
            at.append(commit)
    assert at == at_commits


async def test_writers_go_on_while_a_checkpoint_waits_for_the_disk_unless_the_wal_grew_too_long(store, monkeypatch):
    db = store.db
    await db.execute("CREATE TABLE pages (data BLOB)")
    await db.conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 3)
    db._commits = 0
    disk = threading.Event()
    done, seen = checkpoints(monkeypatch, disk), trips(monkeypatch)
    insert = "INSERT INTO pages VALUES (randomblob(20000))"  # 5 pages a commit
    try:
        for _ in range(3):
            await db.execute(insert)
        assert db._checkpointing is not None and not db._checkpointing.done()
        del seen[:]
        for _ in range(5):  # committed while the checkpoint waits, on the write connection's thread; none starts
            await asyncio.wait_for(db.execute(insert), GUARD)  # another
        assert seen == ["_execute_insert"] * 5 and not done
        async with db.tx() as conn:  # a transaction meanwhile is not troubled by the checkpoint
            await conn.execute(insert)
        disk.set()
        await settled(db)
        assert len(done) == 1 and not db._started_over  # writers added to the WAL meanwhile: it goes on growing
        assert 0 < db._wal_pages < db_module.CHECKPOINT_ALONE_PAGES

        db._wal_pages = db_module.CHECKPOINT_ALONE_PAGES  # as a checkpoint found it, writers having added meanwhile
        db._commits = db._checkpoint_every - 1
        disk.clear()
        write = asyncio.ensure_future(db.execute(insert))
        while db._commits:  # committed, and now checkpointing under the lock
            await asyncio.sleep(0)
        other = asyncio.ensure_future(db.execute(insert))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not write.done() and not other.done() and db._checkpointing is None  # it holds the writers
        disk.set()
        await asyncio.gather(write, other)
        assert len(done) == 2 and db._started_over and db._wal_pages == 0  # the WAL starts over; the next
    finally:  # checkpoint is beside the writers again
        disk.set()
    rows = await db.fetchall("SELECT count(*) FROM pages")
    assert rows[0][0] == 11


async def test_a_run_of_calls_on_the_loop_gives_the_loop_a_turn_every_so_often(store, monkeypatch):
    """Each call on the loop's connections is whole, never letting the loop run anything else; a coroutine making
    many in a row (here a loop of inserts and reads, as an import's other writer) lets it run every TURN_EVERY."""
    db, loop = store.db, asyncio.get_running_loop()
    await db.execute("CREATE TABLE numbers (n INTEGER)")
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 10_000)  # no checkpoint, nor the write after it, on a thread
    db._quick_calls, db._commits, db._checkpoint_every, turns, running = 0, 0, None, 0, True

    def tick() -> None:  # one a turn of the loop, for as long as the run goes on
        nonlocal turns
        if running:
            turns += 1
            loop.call_soon(tick)

    loop.call_soon(tick)
    for n in range(2 * db_module.TURN_EVERY):  # 4 × TURN_EVERY calls
        await db.execute("INSERT INTO numbers (n) VALUES (?)", (n,))
        assert (await db.fetchone("SELECT count(*) FROM numbers"))[0] == n + 1
    running = False
    assert turns == 4
