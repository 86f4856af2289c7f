"""/healthz answers 503 and names the problem when the bot cannot do its work: writes fail, a channel
stopped hearing from its platform, the scheduler's tick is late, a broadcast makes no progress. The
health clock is moved instead of waiting."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field

import pytest

from bot.app import App
from bot.outbound import Gate
from handlers.base import Reply
from storage.broadcasts import NewBroadcast
from tests.dialog import RecordingChannel
from tests.people import make_people
from tests.test_web_api import build_app, client


@dataclass
class PollingChannel(RecordingChannel):
    """A channel that asks its platform for updates, as Telegram's long polling does."""

    heartbeat: float | None = None
    webhook: bool = False


@dataclass
class SilentPlatform(RecordingChannel):
    """A platform that takes every message and never answers, until released."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str:
        self.waiting += 1
        await self.release.wait()
        return await super().send(chat_id, reply, edit_ref)


@pytest.fixture
async def app(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False, quiet_hours="off")
    yield app
    await app.stop()


async def health(app: App, at: float) -> tuple[int, list[str]]:
    app.health.clock = lambda: at
    async with client(app) as web:
        answer = await web.http.get("/healthz")
    body = answer.json()
    assert answer.headers["cache-control"] == "no-store"
    assert body["status"] == ("ok" if answer.status_code == 200 else "error") and body["mode"] == "production"
    return answer.status_code, body["problems"]


async def test_all_well(app):
    app.outbound.add(PollingChannel(name="telegram", heartbeat=time.monotonic()))
    await app.scheduler.tick()
    assert await health(app, time.monotonic()) == (200, [])


async def test_a_polling_channel_that_hears_nothing(app):
    telegram = PollingChannel(name="telegram")
    app.outbound.add(telegram)
    await app.scheduler.tick()
    start = app.scheduler.last_tick
    assert await health(app, start + 59) == (200, []), "not yet heard from, but only just started"
    assert await health(app, app.health.since + 61) == (503, ["telegram_silent"]), "never heard from"
    telegram.heartbeat = start + 30
    assert await health(app, start + 89) == (200, [])
    assert await health(app, start + 91) == (503, ["telegram_silent"])
    telegram.webhook = True  # the platform calls when it has something: silence says nothing
    assert await health(app, start + 91) == (200, [])


async def test_a_late_tick(app):
    await app.scheduler.tick()
    ticked = app.scheduler.last_tick
    assert app.scheduler.interval == 30
    assert await health(app, ticked + 119) == (200, [])
    assert await health(app, ticked + 121) == (503, ["scheduler_late"])
    await app.scheduler.tick()
    assert await health(app, app.scheduler.last_tick + 1) == (200, [])


async def test_failing_writes_until_one_commits(app, clock):
    db = app.store.db
    await make_people(app.store, 1)
    with pytest.raises(sqlite3.IntegrityError):  # a write that breaks a rule: the database itself is fine
        await db.execute("INSERT INTO users SELECT * FROM users LIMIT 1")
    assert await health(app, time.monotonic()) == (200, [])

    pages = (await db.fetchone("PRAGMA page_count"))[0]
    await disk_size(db, pages)  # the disk is full: SQLite's own SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError, match="full"):
        await app.store.audit.record(None, "health.test", None, clock(), filler="x" * 50_000)
    status, problems = await health(app, time.monotonic())
    assert (status, problems) == (503, ["database_writes"])
    with pytest.raises(sqlite3.OperationalError, match="full"):  # a transaction, too
        await make_people(app.store, 500, first_chat=9_000_000)
    assert (await health(app, time.monotonic()))[1] == ["database_writes"]

    await disk_size(db, pages * 100)  # room again
    await app.store.audit.record(None, "health.test", None, clock())
    assert await health(app, time.monotonic()) == (200, [])
    async with db.tx() as conn:  # and the failed transactions left none open
        await conn.execute("DELETE FROM audit_log WHERE action = 'health.test'")


async def disk_size(db, pages: int) -> None:
    """A limit of each connection that writes (storage/db.py: the threads' and the event loop's); the rows read,
    so that no statement is left open holding an old snapshot of the database."""
    await db.conn.execute_fetchall(f"PRAGMA max_page_count={pages}")
    db.loopside.writes.execute(f"PRAGMA max_page_count={pages}").fetchall()


async def test_a_broadcast_that_makes_no_progress(app, clock):
    platform = SilentPlatform(name="telegram")
    app.outbound.add(platform, Gate(1000))
    await make_people(app.store, 3)
    await app.broadcasts.resume()
    broadcast = await app.store.broadcasts.create(NewBroadcast(text_vi="Họp dân", scheduled_at=clock()), clock())
    await app.broadcasts.tick(clock())
    try:
        async with asyncio.timeout(10):
            while platform.waiting < 3:  # all past the gate, so that a pause holds none of them
                await asyncio.sleep(0.01)
        began = app.broadcasts.runs[broadcast.id].progress
        assert "outbox_stuck" not in (await health(app, began + 299))[1]
        assert "outbox_stuck" in (await health(app, began + 301))[1]
        app.outbound.gates["telegram"].pause(600)  # a 429 holds it back: waiting is right
        assert "outbox_stuck" not in (await health(app, began + 301))[1]
    finally:
        platform.release.set()
    await app.broadcasts.wait(broadcast.id)
    assert len(platform.sent) == 3
