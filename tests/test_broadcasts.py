"""Broadcast delivery through the real Telegram channel (python-telegram-bot) against the fake Bot API:
every recipient ends in a final state, nobody receives it twice, the cap holds in every second, replies
go first, 429s pause, 403s mark people unreachable, 5xx and timeouts are retried, a restart resumes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from contextlib import asynccontextmanager

import pytest

from bot.app import App, utc_now
from bot.config import Config
from bot.outbound import Gate, Priority
from storage.broadcasts import FINAL, NewBroadcast
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import BASE_CHAT, make_people

pytestmark = [pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),  # RetryAfter's own
              pytest.mark.backends]
MARK = "Họp dân thôn Hà Lộc"


def config_for(api: FakeBotAPI, db, **extra) -> Config:
    return Config(_env_file=None, DANVAN_DB=db, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_URL=api.base_url,
                  DANVAN_QUIET_HOURS="off", **extra)


@asynccontextmanager
async def running(config: Config, **engine):
    app = await App.build(config)
    if engine:
        app.broadcasts.settings = dataclasses.replace(app.broadcasts.settings, **engine)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def start_broadcast(app: App, text: str = f"<b>{MARK}</b> tối thứ Bảy", **kw) -> int:
    broadcast = await app.store.broadcasts.create(NewBroadcast(text_vi=text, scheduled_at=utc_now(), **kw), utc_now())
    await app.broadcasts.tick(utc_now())
    assert broadcast.id in app.broadcasts.runs
    return broadcast.id


def deliveries(api: FakeBotAPI, mark: str = MARK) -> Counter:
    """How many times each chat received the broadcast (successful sends that carry its text)."""
    return Counter(c.chat_id for c in api.sent() if c.method in ("sendMessage", "sendPhoto") and mark in (c.text or ""))


async def test_faults_every_recipient_final_nobody_twice_cap_kept(database):
    cap = 150
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=cap, DANVAN_BROADCAST_RATE=cap,
                            DANVAN_BROADCAST_CONCURRENCY=24, TELEGRAM_TIMEOUT=1.0)
        async with running(config, max_attempts=3) as app:
            ids = await make_people(app.store, 500)
            chats = [BASE_CHAT + i for i in range(500)]
            api.latency = 0.01
            blocked, deactivated, gone400 = chats[10:25], chats[30:35], chats[40:43]
            api.blocked_chats.update(blocked)
            api.deactivated_chats.update(deactivated)
            for chat in gone400:
                api.fail("sendMessage", chat_id=chat, status=400, description="Bad Request: chat not found")
            bad = chats[50:52]
            for chat in bad:
                api.fail("sendMessage", chat_id=chat, status=400, description="Bad Request: can't parse entities")
            flaky = chats[60:70]
            for chat in flaky:  # a 5xx once, then fine
                api.fail("sendMessage", chat_id=chat, status=500, times=1)
            broken = chats[80:82]
            for chat in broken:  # always 502: retries run out
                api.fail("sendMessage", chat_id=chat, status=502, times=None)
            slow = chats[90:93]
            for chat in slow:  # the server never answers in time, and did not deliver
                api.fail("sendMessage", chat_id=chat, status=502, times=1)
                api.hang("sendMessage", chat_id=chat, seconds=1.5, times=1)
            api.fail("sendMessage", status=429, retry_after=1, times=40)  # a 429 storm
            broadcast_id = await start_broadcast(app)
            async with asyncio.timeout(40):
                await app.broadcasts.wait(broadcast_id)
            rows = await app.store.broadcasts.recipients(broadcast_id)
            got = deliveries(api)
            unreachable = {u for u in ids if not (await app.store.users.get(u)).reachable}
        assert not api.server_errors
    assert set(rows) == set(ids) and all(status in FINAL for status, _, _ in rows.values())
    assert max(got.values()) == 1, "somebody received the broadcast twice"
    by_chat = {BASE_CHAT + ids.index(uid): row for uid, row in rows.items()}
    for chat in blocked + deactivated + gone400:
        assert by_chat[chat][0] == "blocked"
    assert {by_chat[c][0] for c in bad} == {"failed"} and "parse entities" in by_chat[bad[0]][2]
    assert {by_chat[c][0] for c in broken} == {"failed"} and {by_chat[c][1] for c in broken} == {3}
    assert {by_chat[c][0] for c in flaky + slow} == {"sent"}
    sent = {chat for chat, row in by_chat.items() if row[0] == "sent"}
    assert sent == set(got)
    assert len(sent) == 500 - len(blocked + deactivated + gone400 + bad + broken)
    throttled = [c for c in api.calls_of("sendMessage") if c.status == 429]
    assert len(throttled) >= 40
    assert api.max_in_window("sendMessage", 1.0) <= cap
    assert unreachable == {uid for uid, row in rows.items() if row[0] == "blocked"}


async def test_replies_go_ahead_of_a_running_broadcast(database):
    cap, person = 40, 777001
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=cap, DANVAN_BROADCAST_RATE=cap)
        async with running(config) as app:
            await make_people(app.store, 150)
            api.latency = 0.005
            broadcast_id = await start_broadcast(app)
            await api.wait_for(lambda c: MARK in (c.text or ""))
            answer = await api.ask(person, "/huongdan", timeout=5)
            async with asyncio.timeout(20):
                await app.broadcasts.wait(broadcast_id)
        later = [c for c in api.sent() if MARK in (c.text or "") and c.seq > answer[0].seq]
    assert "/caidat" in answer[0].text
    assert len(later) > 50, "the reply waited behind the broadcast"
    assert api.max_in_window("sendMessage", 1.0) <= cap


async def test_admin_follows_progress_and_stops_the_rest(database):
    admin_chat = 700700
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=30, DANVAN_BROADCAST_RATE=20)
        async with running(config, progress_every=0.3) as app:
            await api.ask(admin_chat, "/huongdan")
            admin = await app.store.users.find("telegram", str(admin_chat))
            await app.store.users.update(admin.id, utc_now(), role="admin")
            await make_people(app.store, 200)
            broadcast_id = await start_broadcast(app, created_by=admin.id)
            status = await api.wait_for(lambda c: c.chat_id == admin_chat and "Thông báo #" in (c.text or "")
                                        and "/200" in (c.text or ""))
            assert any("Dừng gửi" in b["text"] for b in status.buttons)
            await api.wait_for(lambda c: c.method == "editMessageText" and c.chat_id == admin_chat, timeout=5)
            calls = await api.ask(admin_chat, "/huythongbao")
            calls = await api.click(admin_chat, calls[0].buttons[0]["callback_data"], message_id=calls[0].message_id)
            assert "Dừng thông báo #" in calls[0].text
            calls = await api.click(admin_chat, calls[0].buttons[0]["callback_data"], message_id=calls[0].message_id)
            assert "Đã dừng thông báo" in calls[0].text
            async with asyncio.timeout(10):
                await app.broadcasts.wait(broadcast_id)
            final = await api.wait_for(lambda c: c.chat_id == admin_chat and "đã dừng theo yêu cầu" in (c.text or ""))
            rows = await app.store.broadcasts.recipients(broadcast_id)
            broadcast = await app.store.broadcasts.get(broadcast_id)
            entries = await app.store.audit.by_actor(admin.id)
        got = deliveries(api)
    statuses = Counter(status for status, _, _ in rows.values())
    assert broadcast.status == "cancelled" and set(statuses) <= {"sent", "skipped"}
    assert 0 < statuses["sent"] < 200 and statuses["sent"] == len(got) and max(got.values()) == 1
    assert {r[2] for r in rows.values() if r[0] == "skipped"} == {"cancelled"}
    assert f"{statuses['sent']}</b>/200" in final.text
    assert "broadcast.cancelled" in [e.action for e in entries]


async def test_a_restart_counts_those_in_flight_as_uncertain_or_sends_again(tmp_path):
    for resend in (False, True):
        async with FakeBotAPI() as api:
            config = config_for(api, tmp_path / f"u{resend}.db", DANVAN_BROADCAST_RESEND_UNCERTAIN=resend)
            app = await App.build(config)
            try:
                ids = await make_people(app.store, 30)
                now = utc_now()
                broadcast = await app.store.broadcasts.create(NewBroadcast(text_vi=MARK, scheduled_at=now), now)
                assert await app.store.broadcasts.start(broadcast.id, now)
                assert await app.store.broadcasts.resolve(broadcast.id) == 30
                claimed = await app.store.broadcasts.claim(broadcast.id, 8, now)  # then the process died
                await app.start()
                async with asyncio.timeout(10):
                    while broadcast.id not in app.broadcasts.runs:
                        await asyncio.sleep(0.01)
                    await app.broadcasts.wait(broadcast.id)
                rows = await app.store.broadcasts.recipients(broadcast.id)
                done = await app.store.broadcasts.get(broadcast.id)
            finally:
                await app.stop()
        in_flight = {t.user_id for t in claimed}
        assert done.status == "done" and set(rows) == set(ids)
        if resend:
            assert {rows[u][0] for u in ids} == {"sent"} and len(deliveries(api)) == 30
        else:
            assert {rows[u][0] for u in in_flight} == {"uncertain"}
            assert {rows[u][0] for u in set(ids) - in_flight} == {"sent"} and len(deliveries(api)) == 22


async def test_a_broadcast_that_failed_goes_on_at_the_next_tick(database, monkeypatch):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)) as app:
            ids = await make_people(app.store, 20)
            step, failures = app.store.broadcasts.step, []

            async def fails_once(*args, **kwargs):
                if not failures:
                    failures.append(1)
                    raise RuntimeError("database is locked")
                return await step(*args, **kwargs)

            monkeypatch.setattr(app.store.broadcasts, "step", fails_once)
            broadcast_id = await start_broadcast(app)
            async with asyncio.timeout(10):
                await app.broadcasts.wait(broadcast_id)
            assert failures and (await app.store.broadcasts.get(broadcast_id)).status == "running"
            await app.broadcasts.tick(utc_now())
            async with asyncio.timeout(10):
                await app.broadcasts.wait(broadcast_id)
            assert (await app.store.broadcasts.get(broadcast_id)).status == "done"
    assert set(deliveries(api)) == {BASE_CHAT + i for i in range(len(ids))}


async def test_gate_keeps_the_cap_where_the_platform_counts():
    """The platform counts a message when it arrives. The first trips are slow on the way there (the
    connections are being opened), later ones quick: a gate that took the early round trips for the way
    back let more than the cap arrive within one second (bench.broadcast saw 1003 at a cap of 1000)."""
    cap = 40
    gate = Gate(cap, cap)
    arrivals: list[float] = []

    async def one(n: int) -> None:
        slot = await gate.acquire(Priority.REPLY)
        gate.sending(slot)
        await asyncio.sleep(0.03 if n < cap else 0.002)  # the way there
        arrivals.append(time.monotonic())
        await asyncio.sleep(0.02)  # the server's work and the way back
        gate.release(slot, answered=True)

    await asyncio.gather(*(one(n) for n in range(3 * cap)))
    assert len(arrivals) == 3 * cap
    assert max(sum(1 for u in arrivals if t <= u < t + 1.0) for t in arrivals) <= cap


async def test_gate_serves_replies_first_and_never_more_than_the_cap_in_a_second():
    gate = Gate(20, 20)
    granted: list[tuple[float, str]] = []

    async def one(kind: str, priority: Priority) -> None:
        slot = await gate.acquire(priority)
        granted.append((time.monotonic(), kind))
        gate.release(slot, answered=True)

    bulk = [asyncio.create_task(one("b", Priority.BROADCAST)) for _ in range(30)]
    await asyncio.sleep(0.3)
    await asyncio.gather(one("r", Priority.REPLY), *bulk)
    kinds = [k for _, k in granted]
    assert kinds.index("r") < 22, "the reply waited behind every broadcast message"
    times = [t for t, _ in granted]
    assert all(sum(1 for u in times if t <= u < t + 1.0) <= 20 for t in times)
