"""Backups: `danvan db backup|restore|check` round trip, a check that finds a missing or damaged file and a
damaged database, a restore that refuses to harm, the daily backup on the scheduler (once a day, across
restarts and downtime, with retention), and a backup taken while a broadcast runs."""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import sys
import tarfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import backup
from bot.app import App, utc_now
from bot.backup import DailyBackup
from bot.cli import main
from bot.config import ConfigError, load
from bot.scheduler import Scheduler
from storage import Store
from storage.broadcasts import FINAL, NewBroadcast
from storage.cases import Attachment, NewCase
from tests.dialog import Clock
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import make_people
from tests.schedule_kit import TZ, citizen, local
from tests.test_broadcasts import config_for, running, start_broadcast

pytestmark = pytest.mark.backends

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


async def case_with_file(store: Store, user_id: int, n: int, at: datetime) -> tuple[str, str]:
    """A case with a photo (its bytes in the file store); its code and the photo's sha256."""
    content = f"ảnh hiện trường số {n}".encode() * 50
    digest = await store.files.put(content)
    topic = await store.topics.by_code("nong-thon-moi")
    place = (await store.localities.search("hai lang", level=1))[0]
    case = await store.cases.create(NewCase(
        "phananh", user_id, False, topic.id, place.id, f"Đường liên thôn sạt lở, lần {n}", False, None,
        at + timedelta(days=1), at + timedelta(days=14),
        (Attachment("photo", digest, "image/jpeg", len(content), None, None, None),)), at)
    return case.code, digest


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "data" / "danvan.db"))
    return monkeypatch


async def _filled(path: Path) -> tuple[list[str], list[str]]:
    store = await Store.open(path)
    try:
        lan = await citizen(store, NOW)
        made = [await case_with_file(store, lan, n, NOW) for n in range(3)]
        photo = await store.files.put(b"\x89PNG anh thong bao")
        await store.broadcasts.create(NewBroadcast(text_vi="Họp dân", scheduled_at=NOW, photo_sha256=photo), NOW)
    finally:
        await store.close()
    return [code for code, _ in made], [digest for _, digest in made] + [photo]


def _files(db: Path) -> Path:
    return db.parent / "files"


async def test_backup_restore_check_round_trip(env, tmp_path, capsys):
    db = tmp_path / "data" / "danvan.db"
    codes, digests = await _filled(db)
    assert await asyncio.to_thread(main, ["db", "backup", str(tmp_path / "backups")]) == 0
    [archive] = (tmp_path / "backups").iterdir()
    assert backup.ARCHIVE.match(archive.name) and archive.stat().st_mode & 0o077 == 0
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["danvan.db"] + sorted(f"files/{d[:2]}/{d}" for d in digests)
    assert "Đã sao lưu" in capsys.readouterr().out

    # Into an empty place: the database and every file come back, and the check passes.
    elsewhere = tmp_path / "elsewhere" / "danvan.db"
    env.setenv("DANVAN_DB", str(elsewhere))
    assert await asyncio.to_thread(main, ["db", "restore", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "Đã phục hồi" in out and "Không có lỗi." in out
    store = await Store.open(elsewhere)
    try:
        for code, digest in zip(codes, digests, strict=False):
            case = await store.cases.by_code(code)
            [attachment] = await store.cases.attachments(case.id)
            assert hashlib.sha256(await store.files.get(attachment.sha256)).hexdigest() == digest
    finally:
        await store.close()
    assert await asyncio.to_thread(main, ["db", "check"]) == 0
    assert "đủ cả 4 tệp" in capsys.readouterr().out

    # Over an existing database: only with --force, and the old one is kept aside.
    env.setenv("DANVAN_DB", str(db))
    assert await asyncio.to_thread(main, ["db", "restore", str(archive)]) == 1
    assert "--force" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["db", "restore", "--force", str(archive)]) == 0
    [aside] = db.parent.glob("danvan.db.before-restore-*")
    assert "Không có lỗi." in capsys.readouterr().out and aside.stat().st_size > 0


async def test_check_finds_a_missing_file_a_damaged_file_and_a_damaged_database(env, tmp_path, capsys):
    db = tmp_path / "data" / "danvan.db"
    _, digests = await _filled(db)
    gone, changed = digests[0], digests[1]
    (_files(db) / gone[:2] / gone).unlink()
    (_files(db) / changed[:2] / changed).write_bytes(b"something else")
    assert await asyncio.to_thread(main, ["db", "check"]) == 1
    out, err = capsys.readouterr()
    assert f"thiếu tệp {gone} (bảng case_attachments)" in out
    assert f"tệp {changed} bị hỏng" in out and "Có 2 lỗi." in err

    # The backup of such a store says what it could not include.
    assert await asyncio.to_thread(main, ["db", "backup", str(tmp_path / "b")]) == 1
    assert "1 tệp" in capsys.readouterr().err

    with db.open("r+b") as f:  # pages in the middle of the database overwritten
        f.seek(8 * 4096)
        f.write(b"\xff" * 4 * 4096)
    assert await asyncio.to_thread(main, ["db", "check"]) == 1
    out, err = capsys.readouterr()
    assert "toàn vẹn (integrity_check): database disk image is malformed" in out and "lỗi" in err
    assert "khóa ngoại (foreign_key_check): tốt" not in out

    db.write_bytes(b"not a database at all" * 100)
    assert await asyncio.to_thread(main, ["db", "check"]) == 1
    assert "không đọc được" in capsys.readouterr().out

    env.setenv("DANVAN_DB", str(tmp_path / "nowhere.db"))
    assert await asyncio.to_thread(main, ["db", "check"]) == 1
    assert not (tmp_path / "nowhere.db").exists()


def test_restore_refuses_a_running_bot_and_a_damaged_backup(env, tmp_path, capsys):
    db = tmp_path / "data" / "danvan.db"
    _, digests = asyncio.run(_filled(db))
    taken = backup.take(db, _files(db), tmp_path / "b", NOW)
    bot = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                            " c.execute('SELECT 1 FROM users').fetchall(); print('open', flush=True); sys.stdin.read()",
                            str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert bot.stdout.readline().strip() == "open"
        assert main(["db", "restore", "--force", str(taken.path)]) == 1
        assert "hãy dừng bot" in capsys.readouterr().err
    finally:
        bot.communicate("")
    assert not list(db.parent.glob("*.before-restore-*"))

    # A backup whose file does not match its name: nothing is replaced.
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(taken.path) as src, tarfile.open(tampered, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith(digests[0]):
                data = b"forged"
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    (_files(db) / digests[0][:2] / digests[0]).unlink()
    assert main(["db", "restore", "--force", str(tampered)]) == 1
    out, err = capsys.readouterr()
    assert f"thiếu tệp {digests[0]}" in out and "chưa thay gì" in err
    assert not list(db.parent.glob("*.before-restore-*"))

    # A damaged file in the store is mended by the backup's copy.
    (_files(db) / digests[1][:2] / digests[1]).write_bytes(b"bit rot")
    assert main(["db", "restore", "--force", str(taken.path)]) == 0
    assert hashlib.sha256((_files(db) / digests[1][:2] / digests[1]).read_bytes()).hexdigest() == digests[1]
    capsys.readouterr()

    (tmp_path / "notes.txt").write_text("danh sách")
    assert main(["db", "restore", "--force", str(tmp_path / "notes.txt")]) == 1
    assert "Không đọc được bản sao lưu" in capsys.readouterr().err


async def _days(job: DailyBackup, scheduler: Scheduler, clock: Clock, until: datetime) -> None:
    while clock() < until:
        clock.now = min(clock() + timedelta(minutes=10), until)
        await scheduler.tick()
        await job.wait()


async def test_daily_backup_once_a_day_across_restarts_and_downtime_keeping_the_newest(tmp_path):
    into = tmp_path / "backups"
    into.mkdir()
    (into / "README.txt").write_text("not a backup: retention leaves it alone")
    db = tmp_path / "data" / "danvan.db"
    clock = Clock(local(2026, 11, 26, 7, 0))
    store = await Store.open(db)
    try:
        await citizen(store, clock())
        job = DailyBackup(store, into, 2, TZ, clock)
        scheduler = Scheduler(clock)
        job.register(scheduler)
        await _days(job, scheduler, clock, local(2026, 11, 28, 12, 0))
        # At the first tick (the day's 02:00 had passed), then at 02:00 local (19:00 UTC) each day.
        assert sorted(p.name for p in into.iterdir()) == ["README.txt", "danvan-20261126-190000.tar",
                                                          "danvan-20261127-190000.tar"]
        done = await store.db.fetchall("SELECT key FROM scheduled_runs WHERE key LIKE 'backup:%'"
                                       " AND done_at IS NOT NULL ORDER BY key")
        assert [r[0] for r in done] == ["backup:2026-11-26", "backup:2026-11-27", "backup:2026-11-28"]
    finally:
        await store.close()

    # A restart the same day does not repeat it; after two days down, the missed day is caught up once.
    store = await Store.open(db)
    try:
        job = DailyBackup(store, into, 3, TZ, clock)
        scheduler = Scheduler(clock)
        job.register(scheduler)
        await _days(job, scheduler, clock, local(2026, 11, 28, 23, 0))
        assert len(list(into.glob("danvan-*.tar"))) == 2
        clock.now = local(2026, 12, 1, 1, 0)
        await _days(job, scheduler, clock, local(2026, 12, 1, 3, 0))
        assert sorted(p.name for p in into.glob("danvan-*.tar")) == [
            "danvan-20261127-190000.tar", "danvan-20261130-181000.tar", "danvan-20261130-190000.tar"]
    finally:
        await store.close()


async def test_the_daily_backup_runs_beside_the_tick_and_a_failure_is_tried_again(tmp_path, monkeypatch):
    clock = Clock(local(2026, 11, 26, 7, 0))
    store = await Store.open(tmp_path / "data" / "danvan.db")
    try:
        job = DailyBackup(store, tmp_path / "backups", 7, TZ, clock)
        release, calls = threading.Event(), []
        real = backup.take

        def slow_then_real(*args):
            calls.append(args[-1])
            if len(calls) == 1:
                assert release.wait(10)
                raise OSError(28, "No space left on device")
            return real(*args)

        monkeypatch.setattr(backup, "take", slow_then_real)
        async with asyncio.timeout(10):  # the tick returns while the backup is still being written
            await job.tick(clock())
            while not calls:
                await asyncio.sleep(0.01)
        assert not job._task.done()
        await job.tick(clock())  # one at a time
        release.set()
        await job.wait()
        assert not list((tmp_path / "backups").glob("*.tar")) and not await store.schedule.done("backup:2026-11-26")
        clock.advance(minutes=5)
        await job.tick(clock())
        await job.wait()
        assert len(calls) == 1  # not at once: when the claim goes stale
        clock.advance(minutes=6)
        await job.tick(clock())
        await job.wait()
        assert len(calls) == 2 and len(list((tmp_path / "backups").glob("*.tar"))) == 1
        assert await store.schedule.done("backup:2026-11-26")
    finally:
        await store.close()


async def test_a_backup_taken_during_a_broadcast_restores_every_case_file_and_delivery(tmp_path):
    async with FakeBotAPI() as api:
        config = config_for(api, tmp_path / "live" / "danvan.db", TELEGRAM_RATE=50, DANVAN_BROADCAST_RATE=50,
                            DANVAN_BROADCAST_CONCURRENCY=10)
        async with running(config) as app:
            store = app.store
            await make_people(store, 400)
            lan = await citizen(store, utc_now())
            for n in range(5):
                await case_with_file(store, lan, n, utc_now())
            api.latency = 0.01
            broadcast_id = await start_broadcast(app)
            await api.wait_for(lambda c: c.seq > 40)

            stop = asyncio.Event()

            async def citizens_keep_writing() -> None:  # cases with photos arrive while the backup is taken
                n = 100
                while not stop.is_set():
                    await case_with_file(store, lan, n, utc_now())
                    n += 1
                    await asyncio.sleep(0)

            writer = asyncio.create_task(citizens_keep_writing())
            await asyncio.sleep(0.05)
            cases = {r[0]: r[1] for r in await store.db.fetchall(
                "SELECT c.code, a.sha256 FROM cases c JOIN case_attachments a ON a.case_id = c.id")}
            rows = {(r[0], r[1]): r[2] for r in await store.db.fetchall(
                "SELECT broadcast_id, user_id, status FROM broadcast_recipients")}
            taken = await asyncio.to_thread(backup.take, config.db, store.files.root, tmp_path / "b", utc_now())
            stop.set()
            await writer
            later = await store.db.fetchone("SELECT count(*) FROM cases")
        assert not api.server_errors
    assert rows and later[0] > len(cases)

    restored_db = tmp_path / "restored" / "danvan.db"
    restored = await asyncio.to_thread(backup.restore, taken.path, restored_db, _files(restored_db), utc_now())
    assert restored.done and restored.report.problems == 0 and restored.report.files >= len(cases)
    store = await Store.open(restored_db)
    try:
        got_cases = {r[0]: r[1] for r in await store.db.fetchall(
            "SELECT c.code, a.sha256 FROM cases c JOIN case_attachments a ON a.case_id = c.id")}
        got_rows = {(r[0], r[1]): r[2] for r in await store.db.fetchall(
            "SELECT broadcast_id, user_id, status FROM broadcast_recipients")}
        for code, digest in cases.items():
            assert got_cases[code] == digest
            assert hashlib.sha256(await store.files.get(digest)).hexdigest() == digest
        assert set(rows) <= set(got_rows)
        assert all(got_rows[key] == status for key, status in rows.items() if status in FINAL)
        # Taken mid-broadcast: some recipients were still waiting in the copy.
        assert (await store.broadcasts.get(broadcast_id)).status == "running"
        assert any(status not in FINAL for status in got_rows.values())
    finally:
        await store.close()


async def test_the_daily_backup_is_on_when_configured_and_never_for_the_demo(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = {}
    for name, extra in {"off": {}, "empty": {"DANVAN_BACKUP_DIR": ""},
                        "on": {"DANVAN_BACKUP_DIR": str(tmp_path / "b")},
                        "demo": {"DANVAN_BACKUP_DIR": str(tmp_path / "b"), "DANVAN_DEMO": True}}.items():
        app = App(load(_env_file=None, DANVAN_DB=tmp_path / "d.db", **extra), store, utc_now)
        jobs[name] = [job for job, _ in app.scheduler.jobs]
    assert ["backup" in names for names in jobs.values()] == [False, False, True, False]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="DANVAN_BACKUP_DIR"):
        load(_env_file=None, DANVAN_BACKUP_DIR=tmp_path / "a-file")
    with pytest.raises(ConfigError, match="DANVAN_BACKUP_KEEP"):
        load(_env_file=None, DANVAN_BACKUP_KEEP=0)
