"""The command-line imports run beside the bot, on the same database file: the bot's writes get in while
they run, and what they load appears whole or not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot import task_file
from bot.cli import main
from storage.db import Database
from storage.locality_import import LocalityError
from tests.schedule_kit import TZ, add_case, citizen

pytestmark = pytest.mark.backends

HEAD = "code,name,kind,parent_code\n"
NOW = datetime(2026, 11, 26, 1, tzinfo=UTC)


def communes(prefix: str, count: int, villages: int) -> str:
    """New communes of the province with their villages: count × (1 + villages) rows."""
    rows = []
    for c in range(count):
        rows.append(f"{prefix}-{c},Xã {prefix} {c},xa,44")
        rows += [f"{prefix}-{c}-{v},Thôn {v},thon,{prefix}-{c}" for v in range(villages)]
    return "\n".join(rows) + "\n"


async def snapshot(db: Database) -> list[tuple]:
    return [tuple(r) for r in await db.fetchall("SELECT * FROM localities ORDER BY id")] + \
        [tuple(r) for r in await db.fetchall("SELECT id, locality_path FROM cases ORDER BY id")]


async def test_a_big_locality_import_lets_another_writer_in_and_appears_whole(store):
    text = HEAD + communes("T", 100, 99)  # 10,000 rows
    other = await Database.open(store.db.path)  # the bot, in its own process
    try:
        task = asyncio.create_task(store.localities.import_csv(text))
        seen = []
        while not task.done():
            # Each write stores what it could see of the import at the moment it committed.
            code = f"w{len(seen)}"
            await other.execute("INSERT INTO topics (code, name_vi, name_en) VALUES (?, (SELECT count(*)"
                                " FROM localities WHERE code LIKE 'T-%'), '')", (code,))
            seen.append(int((await other.fetchone("SELECT name_vi FROM topics WHERE code = ?", (code,)))[0]))
        assert await task == 10_000
    finally:
        await other.close()
    # One write could come before the import began; the next ones got in while it ran.
    assert seen.count(0) >= 2, seen[:5]
    assert set(seen) <= {0, 10_000}, "the import is never seen half done"
    assert (await store.db.fetchone("SELECT count(*) FROM localities WHERE code LIKE 'T-%'"))[0] == 10_000
    village = await store.localities.by_code("T-99-98")
    assert [p.code for p in await store.localities.ancestors(village)] == ["44", "T-99", "T-99-98"]


async def test_a_locality_file_with_a_bad_row_near_the_end_changes_nothing(store):
    village = await store.localities.by_code("19702-01")
    case = await add_case(store, NOW, await citizen(store, NOW), village.id)
    before = await snapshot(store.db)
    good = communes("U", 50, 99).splitlines()
    moved = "19702-01,Thôn Mới Tên,thon,U-0"  # a rename and a move: its case's path would change
    for bad, key in (("U-9-x,Thôn X,district,U-9", "locality_row"), ("U-9-y,Thôn Y,thon,nowhere", "locality_parent"),
                     ("U-9,Xã U 9,xa,U-9-5", "locality_loop")):
        rows = [good[0], moved, *good[1:-2], bad, *good[-2:]]
        with pytest.raises(LocalityError) as refused:
            await store.localities.import_csv(HEAD + "\n".join(rows) + "\n")
        assert refused.value.key == key and refused.value.values["row"] == len(rows) - 1
        assert await snapshot(store.db) == before
    assert (await store.cases.get(case.id)).locality_path == village.path


async def test_an_import_made_against_a_tree_that_changed_meanwhile_writes_nothing(store, monkeypatch):
    other = await Database.open(store.db.path)
    scratch = store.db.scratch

    async def another_import_lands(sql, rows=None):
        if sql.startswith("CREATE INDEX"):
            await other.execute("INSERT INTO localities (id, code, name, name_folded, kind, level, parent_id, path)"
                                " SELECT max(id) + 1, 'Z', 'Z', 'z', 'tinh', 0, NULL, '/0/' FROM localities")
        await scratch(sql, rows)

    monkeypatch.setattr(store.db, "scratch", another_import_lands)
    try:
        before = await snapshot(store.db)
        with pytest.raises(LocalityError) as refused:
            await store.localities.import_csv(HEAD + communes("V", 3, 3))
    finally:
        await other.close()
    assert refused.value.key == "locality_changed"
    assert [r for r in await snapshot(store.db) if r[1] != "Z"] == before


async def test_a_task_file_appears_whole_while_another_writer_goes_on(store, tmp_path):
    tasks = 1500
    (tmp_path / "tasks.yaml").write_text("tasks:\n" + "".join(
        f"  - {{code: L-{n}, title: Nhiệm vụ số {n}, deadline: 2026-12-31, localities: ['44']}}\n"
        for n in range(tasks)), encoding="utf-8")
    other = await Database.open(store.db.path)
    try:
        task = asyncio.create_task(task_file.load(store, tmp_path / "tasks.yaml", TZ, NOW))
        seen = []
        while not task.done():
            code = f"w{len(seen)}"
            await other.execute("INSERT INTO topics (code, name_vi, name_en) VALUES (?, (SELECT count(*)"
                                " FROM tasks WHERE code LIKE 'L-%'), '')", (code,))
            seen.append(int((await other.fetchone("SELECT name_vi FROM topics WHERE code = ?", (code,)))[0]))
        assert await task == (tasks, 0)
    finally:
        await other.close()
    assert set(seen) <= {0, tasks}, "the file is never seen half loaded"
    assert seen.count(0) >= 2, seen[:5]
    assert await task_file.load(store, tmp_path / "tasks.yaml", TZ, NOW) == (0, tasks)
    province = await store.localities.by_code("44")
    assert (await store.db.fetchone("SELECT count(*) FROM task_localities WHERE locality_id = ?",
                                    (province.id,)))[0] == tasks


async def test_a_campaign_file_appears_whole_while_another_writer_goes_on(store, tmp_path, monkeypatch):
    campaigns = 300
    (tmp_path / "campaigns.yaml").write_text("campaigns:\n" + "".join(
        f"  - {{code: c-{n}, title_vi: Phong trào {n}, description_vi: Mô tả}}\n" for n in range(campaigns)),
        encoding="utf-8")
    monkeypatch.setenv("DANVAN_DB", store.db.path)
    other = await Database.open(store.db.path)
    try:  # the command in a thread of its own, as it would run in a process of its own
        task = asyncio.create_task(asyncio.to_thread(main, ["campaign", "load", str(tmp_path / "campaigns.yaml")]))
        seen = []
        while not task.done():
            code = f"w{len(seen)}"
            await other.execute("INSERT INTO topics (code, name_vi, name_en) VALUES (?, (SELECT count(*)"
                                " FROM campaigns WHERE code LIKE 'c-%'), '')", (code,))
            seen.append(int((await other.fetchone("SELECT name_vi FROM topics WHERE code = ?", (code,)))[0]))
        assert await task == 0
    finally:
        await other.close()
    assert set(seen) <= {0, campaigns}, "the file is never seen half loaded"
    assert seen.count(0) >= 2, seen[:5]
    assert (await store.db.fetchone("SELECT count(*) FROM campaigns WHERE code LIKE 'c-%'"))[0] == campaigns
