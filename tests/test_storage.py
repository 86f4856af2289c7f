"""Migrations, transactions, reference data, search that ignores diacritics."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

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


async def test_a_conversation_and_the_options_shown_are_read_together(store):
    from storage.conversations import Conversation

    now = datetime(2026, 11, 28, tzinfo=UTC)
    conversations = store.conversations
    assert await conversations.get_and_shown("zalo", "1") == (None, [])
    await conversations.show("zalo", "1", [("Đồng ý", "1:ob.consent:y")], now)
    assert await conversations.get_and_shown("zalo", "1") == (None, [("Đồng ý", "1:ob.consent:y")])
    await conversations.save("zalo", "2", Conversation("report", "text", {"a": 1}), now)
    assert await conversations.get_and_shown("zalo", "2") == (Conversation("report", "text", {"a": 1}), [])
    await conversations.save("zalo", "1", Conversation("onboarding", "consent"), now)
    await conversations.mark_unasked("zalo", "1")
    assert await conversations.get_and_shown("zalo", "1") == (Conversation("onboarding", "consent", {}, True),
                                                               [("Đồng ý", "1:ob.consent:y")])
    assert await conversations.get_and_shown("web", "1") == (None, [])
