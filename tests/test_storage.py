"""Migrations, transactions, reference data, search that ignores diacritics."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime

import aiosqlite
import pytest

from storage import Store
from storage.db import Database, _migrations
from storage.locality_import import LocalityError
from storage.text import fold
from tests.schedule_kit import add_case, citizen


async def test_migrations_apply_to_empty_database_and_rerun_changes_nothing(tmp_path):
    db = await Database.open(tmp_path / "m.db")
    try:
        applied = await db.migrate()
        assert applied == [n for n, _ in _migrations()]
        assert await db.version() == applied[-1]
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"users", "localities", "consents", "conversations", "invites", "audit_log"} <= tables
        schema = await db.fetchall("SELECT sql FROM sqlite_master ORDER BY name")
        assert await db.migrate() == []
        assert await db.fetchall("SELECT sql FROM sqlite_master ORDER BY name") == schema
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    finally:
        await db.close()


async def test_seed_is_idempotent(tmp_path):
    first = await Store.open(tmp_path / "s.db")
    counts = [(await first.db.fetchone(f"SELECT count(*) FROM {t}"))[0] for t in ("localities", "topics")]
    await first.close()
    second = await Store.open(tmp_path / "s.db")
    try:
        again = [(await second.db.fetchone(f"SELECT count(*) FROM {t}"))[0] for t in ("localities", "topics")]
        assert again == counts
    finally:
        await second.close()


async def test_reference_data_is_the_2025_province(store):
    communes = await store.localities.communes()
    assert len(communes) == 78
    kinds = [c.kind for c in communes]
    assert (kinds.count("xa"), kinds.count("phuong"), kinds.count("dac_khu")) == (69, 8, 1)
    province = (await store.localities.children(None))[0]
    assert province.name == "Quảng Trị" and province.code == "44"
    topics = [t.name_vi for t in await store.topics.all()]
    assert topics == ["Xây dựng nông thôn mới", "Đô thị văn minh", "Góp ý văn kiện Đại hội",
                      "An sinh xã hội – hỗ trợ khó khăn", "Dân vận khéo", "Khác"]
    assert [t.code for t in await store.topics.all() if t.sensitive] == ["gop-y-van-kien"]


@pytest.mark.parametrize("query", ["hai lang", "Hải Lăng", "HẢI LĂNG", "  hải   lăng "])
async def test_search_ignores_diacritics_and_case(store, query):
    found = await store.localities.search(query, level=1)
    assert found[0].name == "Hải Lăng"


async def test_search_treats_wildcards_literally(store):
    assert await store.localities.search("%", level=1) == []
    assert await store.localities.search("_", level=1) == []


def test_fold():
    assert fold("Đông Hà") == "dong ha"
    assert fold("Triệu Phong") == "trieu phong"


async def test_subtree_paths(store):
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    for village in await store.localities.children(hai_lang.id):
        assert village.path.startswith(hai_lang.path) and village.level == 2
        chain = await store.localities.ancestors(village)
        assert [c.level for c in chain] == [0, 1, 2]
        assert await store.localities.chain(village.id) == chain  # the same, in one query
    assert await store.localities.chain(hai_lang.id) == await store.localities.ancestors(hai_lang)
    assert await store.localities.chain(-1) == []


async def test_a_page_of_localities_comes_with_the_number_of_pages(store):
    communes = await store.localities.communes()
    assert await store.localities.page(0, 8) == (communes[:8], 0, 10)  # 78 communes
    assert await store.localities.page(9, 8) == (communes[72:], 9, 10)
    assert await store.localities.page(12, 8) == (communes[72:], 9, 10)  # past the end: the last page
    assert await store.localities.page(-1, 8) == (communes[:8], 0, 10)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    villages = await store.localities.children(hai_lang.id)
    assert await store.localities.page(0, 100, hai_lang.id) == (villages, 0, 1)
    assert await store.localities.page(0, 8, villages[0].id) == ([], 0, 1)
    ids = [communes[5].id, -1, communes[2].id]
    assert await store.localities.get_many(ids) == [communes[5], communes[2]]


async def test_topics_are_read_once_and_again_after_each_change(store, monkeypatch):
    topics = await store.topics.all()
    seen = trips(monkeypatch)
    assert await store.topics.all() == topics and await store.topics.get(topics[0].id) == topics[0]
    assert await store.topics.by_code("khac") == topics[-1]
    assert seen == []
    renamed = await store.topics.update(topics[-1].id, name_vi="Việc khác")
    assert renamed.name_vi == "Việc khác" and (await store.topics.all())[-1] == renamed
    await store.topics.update(topics[0].id, active=False)
    assert topics[0].id not in [t.id for t in await store.topics.all()]
    assert (await store.topics.every())[0].id == topics[0].id
    created = await store.topics.create("moi", "Mới", "New")
    assert (await store.topics.all())[-1] == created == await store.topics.by_code("moi")


async def test_import_csv_adds_and_updates_and_rejects_bad_rows(store):
    await store.localities.import_csv("# a test\ncode,name,kind,parent_code\n44,Quảng Trị,tinh,\n"
                                      "19999,Thử Nghiệm,xa,44\n19999-01,Thôn Mới,thon,19999\n")
    new = await store.localities.by_code("19999-01")
    assert new.level == 2 and (await store.localities.search("thu nghiem"))[0].code == "19999"
    with pytest.raises(LocalityError):
        await store.localities.import_csv("code,name,kind,parent_code\n1,X,xa,nope\n")
    with pytest.raises(LocalityError):
        await store.localities.import_csv("code,name\n1,X\n")
    with pytest.raises(LocalityError):
        await store.localities.import_csv("code,name,kind,parent_code\n2,Y,district,44\n")
    assert await store.localities.by_code("2") is None


async def test_reimport_under_a_new_parent_moves_the_subtree_and_its_cases(store):
    csv_head = "code,name,kind,parent_code\n"
    await store.localities.import_csv(csv_head + "44,Quảng Trị,tinh,\n19998,Xã Khác,xa,44\n"
                                      "19999,Thử Nghiệm,xa,44\n19999-01,Thôn Mới,thon,19999\n")
    now = datetime(2026, 11, 26, 1, tzinfo=UTC)
    village = await store.localities.by_code("19999-01")
    case = await add_case(store, now, await citizen(store, now), village.id)
    # The village was listed under the wrong commune: the next import puts it under the right one.
    await store.localities.import_csv(csv_head + "19999-01,Thôn Mới,thon,19998\n")
    commune, province = await store.localities.by_code("19998"), await store.localities.by_code("44")
    moved = await store.localities.by_code("19999-01")
    assert moved.path == f"{commune.path}{moved.id}/"
    assert [a.id for a in await store.localities.ancestors(moved)] == [province.id, commune.id, moved.id]
    assert (await store.cases.get(case.id)).locality_path == moved.path  # cadres of commune 19998 now see it
    emptied = await store.localities.by_code("19999")
    with pytest.raises(LocalityError) as refused:  # no loops
        await store.localities.import_csv(csv_head + "19999,Thử Nghiệm,thon,19999\n")
    assert refused.value.key == "locality_loop" and refused.value.values["row"] == 2
    assert await store.localities.by_code("19999") == emptied


async def test_transactions_do_not_interleave(store):
    """Two coroutines writing at once: each unit of work commits or rolls back alone."""

    async def failing():
        async with store.db.tx() as conn:
            await conn.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('a', 'A', 'A')")
            await asyncio.sleep(0.01)
            raise RuntimeError("boom")

    async def succeeding():
        await asyncio.sleep(0.001)
        async with store.db.tx() as conn:
            await conn.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('b', 'B', 'B')")

    results = await asyncio.gather(failing(), succeeding(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    codes = {r[0] for r in await store.db.fetchall("SELECT code FROM topics")}
    assert "b" in codes and "a" not in codes


async def test_a_failed_commit_leaves_no_transaction_open(store):
    """SQLite keeps the transaction open when COMMIT fails (here a deferred foreign key); left so, every
    later `tx()` would fail to begin."""
    db = store.db
    await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with db.tx() as conn:
            await conn.execute("INSERT INTO child VALUES (5)")
    async with db.tx() as conn:
        await conn.execute("INSERT INTO parent VALUES (5)")
        await conn.execute("INSERT INTO child VALUES (5)")
    assert (await db.fetchone("SELECT count(*) FROM child"))[0] == 1


async def test_a_read_does_not_wait_behind_a_write_held_up_by_another_process(store):
    """A CLI import holds the file's write lock: the bot's next write waits on its connection (busy
    timeout), and a read issued after it, which needs no lock under WAL, still answers meanwhile."""
    other = sqlite3.connect(store.db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('import', 'I', 'I')")
        write = asyncio.create_task(
            store.db.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('bot', 'B', 'B')"))
        while not store.db._lock.locked():  # the write is on its way to the database
            await asyncio.sleep(0)
        codes = {r[0] for r in await store.db.fetchall("SELECT code FROM topics")}
        assert await store.db.ping()  # /healthz
        assert not write.done(), "the read waited for the write"
        assert "import" not in codes and "bot" not in codes and codes
        other.execute("COMMIT")
        await write
    finally:
        other.close()
    assert {"import", "bot"} <= {r[0] for r in await store.db.fetchall("SELECT code FROM topics")}


async def test_a_read_never_sees_another_coroutines_uncommitted_rows(store):
    inside, read = asyncio.Event(), asyncio.Event()

    async def writer():
        async with store.db.tx() as conn:
            await conn.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('half', 'H', 'H')")
            inside.set()
            await read.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    seen = await store.db.fetchone("SELECT count(*) FROM topics WHERE code = 'half'")
    read.set()
    await task
    assert seen[0] == 0
    assert (await store.db.fetchone("SELECT count(*) FROM topics WHERE code = 'half'"))[0] == 1


async def test_an_in_memory_database_reads_what_it_wrote():
    db = await Database.open(":memory:")
    try:
        await db.migrate()
        await db.execute("INSERT INTO topics (code, name_vi, name_en) VALUES ('m', 'M', 'M')")
        assert (await db.fetchone("SELECT name_vi FROM topics WHERE code = 'm'"))[0] == "M"
    finally:
        await db.close()


def trips(monkeypatch) -> list[str]:
    """Every trip to a database connection's thread from now on: aiosqlite runs each call as a function there."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        seen.append(getattr(fn, "__name__", "?"))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_unit_of_work_runs_on_the_connections_own_thread_in_one_trip(store, monkeypatch):
    """`atomic` relies on aiosqlite's private `_execute` (storage/db.py `on_thread`): checked on the installed
    aiosqlite. The thread is the one aiosqlite runs SQL on, as a function of the connection (public API) sees."""
    db, threads = store.db, set()
    await db.conn.create_function("thread", 0, lambda: threads.add(threading.get_ident()) or 1)
    await db.conn.execute("SELECT thread()")
    seen = trips(monkeypatch)
    rows = await db.atomic([("INSERT INTO topics (code, name_vi, name_en) VALUES ('a', 'A', thread())", ()),
                            ("INSERT INTO topics (code, name_vi, name_en) VALUES ('b', 'B', 'B') RETURNING id", ())])
    assert len(seen) == 1 and len(threads) == 1 and threading.get_ident() not in threads
    assert rows[0] == [] and await _codes(store, "a", "b") == {"a": rows[1][0][0] - 1, "b": rows[1][0][0]}


async def test_a_unit_of_work_that_fails_leaves_nothing(store):
    with pytest.raises(sqlite3.IntegrityError):  # a code taken: the second statement fails
        await store.db.atomic([("INSERT INTO topics (code, name_vi, name_en) VALUES ('half', 'H', 'H')", ()),
                               ("INSERT INTO topics (code, name_vi, name_en) SELECT code, 'X', 'X' FROM topics", ())])
    assert await _codes(store, "half") == {}
    assert not store.db.conn.in_transaction
    await store.db.atomic([("INSERT INTO topics (code, name_vi, name_en) VALUES ('c', 'C', 'C')", ())])
    assert list(await _codes(store, "c")) == ["c"]


async def _codes(store, *codes: str) -> dict[str, int]:
    rows = await store.db.fetchall(f"SELECT code, id FROM topics WHERE code IN ({', '.join('?' * len(codes))})",
                                   codes)
    return {r[0]: r[1] for r in rows}


async def test_a_conversation_its_journal_mark_and_its_options_are_saved_in_one_trip(store, monkeypatch):
    from storage.conversations import Conversation

    now = datetime(2026, 11, 28, tzinfo=UTC)
    [entry] = await store.journal.accept("zalo", [("u1", "1", "{}")], now)
    seen = trips(monkeypatch)
    await store.conversations.save("zalo", "1", Conversation("onb", "news", {"a": 1}), now, entry.id,
                                   [("Đồng ý", "1:onb.news:y")])
    assert len(seen) == 1
    assert await store.conversations.get("zalo", "1") == Conversation("onb", "news", {"a": 1})
    assert [e.applied for e in await store.journal.pending()] == [True]
    user, _, shown = await store.users.arrive("zalo", "u1", "1", now)
    assert shown == [("Đồng ý", "1:onb.news:y")]
    await store.conversations.save("zalo", "1", None, now, options=[])
    assert await store.users.arrive("zalo", "u1", "1", now) == (user, None, [])


async def test_done_marks_that_come_together_are_written_together(store, monkeypatch):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    entries = await store.journal.accept("zalo", [(f"u{i}", str(i), "{}") for i in range(20)], now)
    seen = trips(monkeypatch)
    await asyncio.gather(*(store.journal.done(entry.id, now) for entry in entries))
    assert len(seen) == 2  # the first mark alone; the others came while it was being written
    assert await store.journal.pending() == []


async def test_a_done_mark_that_could_not_be_written_fails_for_each_of_its_callers(store, monkeypatch):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    entries = await store.journal.accept("zalo", [(f"u{i}", str(i), "{}") for i in range(5)], now)

    async def full(*args):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store.db, "execute", full)
    results = await asyncio.gather(*(store.journal.done(entry.id, now) for entry in entries), return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert len(await store.journal.pending()) == 5
    monkeypatch.undo()
    await store.journal.done(entries[0].id, now)
    assert len(await store.journal.pending()) == 4


async def test_the_person_their_conversation_and_the_options_shown_are_read_together(store, monkeypatch):
    from storage.conversations import Conversation

    now = datetime(2026, 11, 28, tzinfo=UTC)
    users = store.users
    seen = trips(monkeypatch)
    first, conversation, shown = await users.arrive("zalo", "u1", "1", now)  # created: one read, one write
    assert (conversation, shown, len(seen)) == (None, [], 2)
    assert first == await users.find("zalo", "u1") and not first.consented and first.chat_id == "1"
    await store.conversations.show("zalo", "1", [("Đồng ý", "1:ob.consent:y")], now)
    await store.conversations.save("zalo", "1", Conversation("onboarding", "consent"), now)
    await store.conversations.mark_unasked("zalo", "1")
    seen.clear()
    assert await users.arrive("zalo", "u1", "1", now) == (first, Conversation("onboarding", "consent", {}, True),
                                                          [("Đồng ý", "1:ob.consent:y")])
    assert len(seen) == 1
    moved, _, _ = await users.arrive("zalo", "u1", "2", now)  # the same account in another chat
    assert moved.id == first.id and moved.chat_id == "2"
    assert (await users.arrive("web", "u1", "1", now))[1:] == (None, [])
