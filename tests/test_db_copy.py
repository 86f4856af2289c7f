"""`danvan db copy`: a province's SQLite database and its files, moved into an empty PostgreSQL database, read back
through the repositories exactly as before; a target that holds data is refused unless --force."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from datetime import timedelta

from bot.cli import main
from storage import Store, copy
from storage.broadcasts import NewBroadcast
from storage.web_files import WebFileRepo, WebFolder, owner_of
from tests.dialog import BUTTONS, ONBOARD, Clock, Harness, RecordingChannel, turns
from tests.people import make_people
from tests.schedule_kit import staff
from tests.test_backup import case_with_file


async def _dulieu(store: Store, clock: Clock, person: str) -> dict:
    [*_, document] = await Harness(store, clock, RecordingChannel(capabilities=BUTTONS)).person(person).say("/dulieu")
    return json.loads(document.document.content)


async def test_a_province_moves_to_postgresql_with_its_cases_photos_people_and_broadcasts(
        tmp_path, monkeypatch, postgres_cluster, capsys):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "data" / "danvan.db"
    monkeypatch.setenv("DANVAN_DB", str(source))
    clock = Clock()
    store = await Store.open(source)
    try:
        await turns(Harness(store, clock, RecordingChannel(capabilities=BUTTONS)).person("1001"), ONBOARD)
        lan = (await store.users.find("test", "1001")).id
        made = dict([await case_with_file(store, lan, n, clock()) for n in range(3)])
        await staff(store, clock(), "7001", "cadre", communes=("Hải Lăng",))
        await make_people(store, 120)
        photo = await store.files.put(b"\x89PNG anh thong bao")
        await store.broadcasts.create(NewBroadcast(text_vi="Họp dân", scheduled_at=clock(), photo_sha256=photo),
                                      clock())
        before = {person: await _dulieu(store, clock, person) for person in ("1001", "7001")}
        users = (await store.db.fetchone("SELECT count(*) FROM users"))[0]
    finally:
        await store.close()
    target = postgres_cluster.database(empty=True)

    assert await asyncio.to_thread(main, ["db", "copy", str(source), target]) == 0
    out = capsys.readouterr()
    assert "Đã chép" in out.out and f"  users: {users} dòng" in out.out and not out.err

    store = await Store.open(target)
    try:
        # What each person gets from /dulieu is the same on both, their cases' photos included.
        assert {person: await _dulieu(store, clock, person) for person in ("1001", "7001")} == before
        for code, digest in made.items():
            [attachment] = await store.cases.attachments((await store.cases.by_code(code)).id)
            assert hashlib.sha256(await store.files.get(attachment.sha256)).hexdigest() == digest
        [broadcast] = await store.db.fetchall("SELECT photo_sha256 FROM broadcasts")
        assert await store.files.get(broadcast[0]) == b"\x89PNG anh thong bao"
        # The sequences go on after the copied ids: a newcomer and a new case are numbered after them.
        newcomer = await store.users.ensure("test", "9999", "9999", "Người mới", "vi", clock())
        assert newcomer.id == users + 1
        code, _ = await case_with_file(store, newcomer.id, 9, clock())
        assert code not in made
    finally:
        await store.close()

    # Once the target holds data, only --force copies again (and the target is emptied first).
    assert await asyncio.to_thread(main, ["db", "copy", str(source), target]) == 1
    assert "--force" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["db", "copy", "--force", str(source), target]) == 0
    capsys.readouterr()
    store = await Store.open(target)
    try:
        assert (await store.db.fetchone("SELECT count(*) FROM users"))[0] == users
    finally:
        await store.close()


def test_the_target_must_be_postgresql_and_the_source_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["db", "copy", str(tmp_path / "a.db"), str(tmp_path / "b.db")]) == 2
    assert "postgresql://" in capsys.readouterr().err
    assert main(["db", "copy", str(tmp_path / "none.db"), "postgresql://danvan@/x?host=/nowhere"]) == 1
    assert "Không có cơ sở dữ liệu SQLite" in capsys.readouterr().err


async def test_a_running_province_is_copied_as_of_one_instant_with_every_file_its_cases_name(
        tmp_path, postgres_cluster):
    source = tmp_path / "data" / "danvan.db"
    clock = Clock()
    store = await Store.open(source)
    stop = asyncio.Event()
    try:
        lan = (await store.users.ensure("test", "1001", "1001", "Lan", "vi", clock())).id
        for n in range(5):
            await case_with_file(store, lan, n, clock())

        async def citizens_keep_writing() -> None:  # cases with photos arrive while the copy is made
            n = 100
            while not stop.is_set():
                await case_with_file(store, lan, n, clock())
                n += 1
                await asyncio.sleep(0)

        writer = asyncio.create_task(citizens_keep_writing())
        await asyncio.sleep(0.05)
        copied = await copy.copy(source, postgres_cluster.database(empty=True))
        stop.set()
        await writer
        written = (await store.db.fetchone("SELECT count(*) FROM cases"))[0]
    finally:
        await store.close()
    assert copied.problems == 0 and 5 <= copied.rows["cases"] < written
    assert copied.rows["case_attachments"] == copied.rows["cases"] and copied.files >= copied.rows["cases"]


async def test_the_copy_is_checked_for_the_files_of_every_table_that_names_one(tmp_path, postgres_cluster):
    """Whichever table names a file (a column `sha256` or `…_sha256`, as backups find them): a table added later is
    checked without being listed anywhere."""
    source, target = tmp_path / "data" / "danvan.db", postgres_cluster.database(empty=True)
    lost = hashlib.sha256(b"anh ap phich").hexdigest()
    for database in (source, target):
        store = await Store.open(database, seed=False)  # the target stays empty
        try:
            await store.db.execute("CREATE TABLE posters (id INTEGER PRIMARY KEY, photo_sha256 TEXT)")
            if database == source:
                await store.db.execute("INSERT INTO posters (id, photo_sha256) VALUES (1, ?)", (lost,))
        finally:
            await store.close()
    copied = await copy.copy(source, target)
    assert copied.rows["posters"] == 1 and copied.missing_files == [lost]


async def test_the_web_chat_s_files_move_from_sqlite_s_disk_into_postgresql(
        tmp_path, monkeypatch, postgres_cluster, capsys):
    """On SQLite the web chat keeps its files beside the database (`WebFolder`), on PostgreSQL in the database
    (`WebFileRepo`): after the move its history's links and a photo in an unfinished report still open, and those
    kept long ago are still pruned by their age."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "data" / "danvan.db"
    await (await Store.open(source)).close()
    lan, hung = owner_of("web:1001"), owner_of("web:1002")
    await WebFolder(tmp_path / "data" / "uploads" / "web").put(lan, "p1a2b3.jpg", b"\xff\xd8 anh o ga")
    await WebFolder(tmp_path / "data" / "uploads" / "web").put(hung, "d9f8e7.pdf", b"%PDF giay moi")
    await WebFolder(tmp_path / "data" / "uploads" / "webtext").put(lan, "p4c5d6.jpg", b"\xff\xd8 anh cu")
    old = time.time() - 3 * 86400
    os.utime(tmp_path / "data" / "uploads" / "webtext" / lan / "p4c5d6.jpg", (old, old))
    target = postgres_cluster.database(empty=True)

    assert await asyncio.to_thread(main, ["db", "copy", str(source), target]) == 0
    out = capsys.readouterr()
    assert "  web_files: 3 dòng" in out.out and "(3 tệp trong số đó của trò chuyện trên web)" in out.out
    assert not out.err

    store = await Store.open(target)
    try:
        web, webtext = WebFileRepo(store.db, store.files, "web"), WebFileRepo(store.db, store.files, "webtext")
        assert await web.get(lan, "p1a2b3.jpg") == b"\xff\xd8 anh o ga"
        assert await web.get(hung, "d9f8e7.pdf") == b"%PDF giay moi"
        assert await web.get(lan, "p4c5d6.jpg") is None  # each channel's own
        assert await webtext.get(lan, "p4c5d6.jpg") == b"\xff\xd8 anh cu"
        assert await webtext.prune(timedelta(days=1)) == 1 and await web.prune(timedelta(days=1)) == 0
        assert await webtext.get(lan, "p4c5d6.jpg") is None and await web.get(lan, "p1a2b3.jpg")
    finally:
        await store.close()
