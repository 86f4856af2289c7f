"""Several workers on one PostgreSQL share the platform's rate (bot/shared_pace.py, storage/send_gate.py): two Apps
sending at once never put more than the cap into any second at the fake, a reply on one goes ahead of the other's
broadcast, and a 429 on one pauses the other's broadcast."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from contextlib import asynccontextmanager

import pytest

from bot import shared_pace
from bot.app import App
from bot.channels.base import DeliveryError
from bot.config import Config
from bot.outbound import Gate, Priority
from handlers.base import Reply
from messages import Safe
from storage.pg import KEEPALIVES
from storage.send_gate import Lease, SendGateRepo
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import BASE_CHAT, make_people
from tests.test_broadcasts import MARK, config_for, running, start_broadcast

pytestmark = [pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
              pytest.mark.backends("postgresql")]
CAP = 40


@asynccontextmanager
async def sender(config: Config):
    """A second worker that only sends: its Telegram channel started, no polling (the other worker polls)."""
    app = await App.build(config)
    await app.telegram.start()
    try:
        yield app
    finally:
        await app.stop()


async def flood(app: App, chats: list[int], mark: str) -> None:
    """Broadcast-priority messages to `chats`, 20 in flight at a time, as a broadcast's senders go."""
    room = asyncio.Semaphore(20)

    async def one(chat: int) -> None:
        async with room:
            await app.outbound.attempt(app.telegram, str(chat), Reply(Safe(f"{mark} {chat}")), None,
                                       Priority.BROADCAST)

    await asyncio.gather(*(one(chat) for chat in chats))


async def test_the_send_gates_connection_is_probed_like_every_workers_connection(database):
    """Every reply's place (and the web chat's shared limits) waits on it: a vanished database host must end in an
    error, not a wait on a silent socket."""
    gate = await SendGateRepo.open(database)
    try:
        # The server's keepalives are set on it (over the tests' Unix socket PostgreSQL shows them as 0), the client's
        # and the bound on connecting are in its URL.
        assert set(KEEPALIVES) <= set(gate.conn._settings)
        assert "keepalives_idle=10" in gate.conn._url and "connect_timeout=10" in gate.conn._url
        [[one]] = await gate.conn.execute_fetchall("SELECT 1")
        assert one == 1
    finally:
        await gate.close()


async def test_leases_on_two_connections_take_places_one_after_the_other(database):
    """Two workers' connections: a broadcast lease is refused while what is reserved runs beyond the horizon, a
    reply's is not and comes after it, a pause holds broadcasts back (spans of seconds: no timing in it)."""
    first, second = await SendGateRepo.open(database), await SendGateRepo.open(database)
    try:
        bulk = await first.lease("telegram", 5.0, bulk_span=5.0, horizon=0.02)
        assert bulk.end is not None and bulk.end - 5.0 >= bulk.now
        refused = await second.lease("telegram", 1.0, bulk_span=1.0, horizon=0.02)
        assert refused.end is None and refused.busy == pytest.approx(bulk.end)
        reply = await second.lease("telegram", 0.1)
        assert reply.end is not None and reply.end - 0.1 == pytest.approx(bulk.end)
        await second.pause("zalo", 60)
        paused = await first.lease("zalo", 0.1, bulk_span=0.1, horizon=0.02)
        assert paused.end is None and paused.busy >= paused.now + 59
        assert (await first.lease("zalo", 0.1)).end < paused.now + 1  # replies go on during a 429's pause
    finally:
        await first.close()
        await second.close()


class FlakyGateRepo:
    """The database's row, kept here; the first `failures` leases fail as a lost connection does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tat = 0.0

    async def lease(self, channel: str, span: float, *, bulk_span: float | None = None,
                    horizon: float = 0.0) -> Lease:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        now = time.time()
        self.tat = max(self.tat, now) + span
        return Lease(now, self.tat, self.tat - span)


async def test_a_database_that_fails_holds_messages_back_then_lets_them_go(monkeypatch, caplog):
    monkeypatch.setattr(shared_pace, "RETRY", 0.05)
    gate = Gate(CAP, CAP)
    gate.share(shared_pace.SharedPace(FlakyGateRepo(failures=2), "telegram", CAP, CAP))
    with caplog.at_level(logging.WARNING, logger="bot.shared_pace"):
        async with asyncio.timeout(5):
            slots = [await gate.acquire(Priority.REPLY), await gate.acquire(Priority.BROADCAST)]
    assert len(slots) == 2 and gate.pace.leases == 2
    assert [r.message for r in caplog.records].count(
        "telegram: the shared send rate could not be read from the database; messages wait "
        "(server closed the connection unexpectedly)") == 1, "one warning while it fails, not one per try"
    await gate.pace.close()


class MemoryGateRepo:
    """One channel's row as storage/send_gate.py keeps it, in memory (the database's clock: time.time())."""

    def __init__(self) -> None:
        self.tat = self.btat = 0.0

    async def lease(self, channel: str, span: float, *, bulk_span: float | None = None,
                    horizon: float = 0.0) -> Lease:
        now, busy = time.time(), max(self.tat, self.btat)
        if bulk_span is None:
            self.tat = max(self.tat, now) + span
        elif busy <= now + horizon:
            start = max(busy, now)
            self.tat, self.btat = start + span, start + bulk_span
        else:
            return Lease(now, None, busy)
        return Lease(now, self.tat, busy)


async def test_a_platform_that_stalls_then_counts_a_heap_at_once_still_sees_the_cap():
    """Two workers' Gates on one pace; the platform takes nothing for 0.4 s, then everything sent meanwhile at
    once. Those messages take their places again when answered, so that no second there holds more than the cap
    (without it, 55 in one second at a cap of 40)."""
    repo, arrived = MemoryGateRepo(), []
    gates = [Gate(CAP, CAP) for _ in range(2)]
    for gate in gates:
        gate.share(shared_pace.SharedPace(repo, "telegram", CAP, CAP))
    stalled_from = time.monotonic() + 1.5
    stalled_until = stalled_from + 0.4

    async def one(gate: Gate) -> None:
        slot = await gate.acquire(Priority.BROADCAST)
        gate.sending(slot)
        await asyncio.sleep(0.005)  # the way there
        if stalled_from <= time.monotonic() < stalled_until:
            await asyncio.sleep(stalled_until - time.monotonic())
        arrived.append(time.monotonic())
        await asyncio.sleep(0.005)  # and back
        gate.release(slot, answered=True)

    async with asyncio.timeout(20):
        await asyncio.gather(*(one(gate) for gate in gates for _ in range(2 * CAP)))
    assert len(arrived) == 4 * CAP
    assert any(t == pytest.approx(stalled_until, abs=0.01) for t in arrived), "nothing was sent into the stall"
    assert max(sum(1 for u in arrived if t <= u < t + 1.0) for t in arrived) <= CAP
    for gate in gates:
        await gate.pace.close()


def arrivals(api: FakeBotAPI, mark: str) -> list[float]:
    return [c.at for c in api.calls_of("sendMessage") if c.ok and mark in (c.text or "")]


async def test_two_workers_together_never_exceed_the_cap(database):
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=CAP, DANVAN_BROADCAST_RATE=CAP)
        async with sender(config) as first, sender(config) as second:
            api.latency = 0.01
            chats = [BASE_CHAT + i for i in range(3 * CAP)]
            async with asyncio.timeout(30):
                await asyncio.gather(flood(first, chats, "Một"), flood(second, chats, "Hai"))
        assert not api.server_errors
    assert len(arrivals(api, "Một")) == len(arrivals(api, "Hai")) == len(chats)
    assert api.max_in_window("sendMessage", 1.0) <= CAP


async def test_a_reply_on_one_worker_goes_ahead_of_the_others_broadcast(database):
    person = 777001
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=CAP, DANVAN_BROADCAST_RATE=CAP)
        async with running(config) as broadcaster, sender(config) as other:
            await make_people(broadcaster.store, 4 * CAP)
            api.latency = 0.005
            broadcast_id = await start_broadcast(broadcaster)
            await api.wait_for(lambda c: MARK in (c.text or ""))
            assert await other.outbound.replies("telegram", str(person), [Reply(Safe("Trả lời"))], None)
            async with asyncio.timeout(20):
                await broadcaster.broadcasts.wait(broadcast_id)
        answer = next(c for c in api.calls_of("sendMessage", person))
        later = [c for c in api.sent() if MARK in (c.text or "") and c.seq > answer.seq]
    assert len(later) > 2 * CAP, "the reply waited behind the broadcast"
    assert api.max_in_window("sendMessage", 1.0) <= CAP


async def test_a_429_on_one_worker_pauses_the_others_broadcast(database):
    person, pause = 777002, 2
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_RATE=CAP, DANVAN_BROADCAST_RATE=CAP)
        async with running(config) as broadcaster, sender(config) as other:
            await make_people(broadcaster.store, 5 * CAP)
            broadcast_id = await start_broadcast(broadcaster)
            await api.wait_for(lambda c: MARK in (c.text or ""))
            api.fail("sendMessage", chat_id=person, status=429, retry_after=pause)
            with pytest.raises(DeliveryError) as refused:
                await other.outbound.attempt(other.telegram, str(person), Reply(Safe("Trả lời")))
            assert refused.value.retry_after == pause
            async with asyncio.timeout(30):
                await broadcaster.broadcasts.wait(broadcast_id)
            counts = await broadcaster.store.broadcasts.counts(broadcast_id)
        throttled = api.calls_of("sendMessage", person)[0].at
    sent = arrivals(api, MARK)
    assert counts["sent"] == len(sent) == 5 * CAP
    assert any(t < throttled for t in sent) and any(t > throttled + pause for t in sent)
    # The places the broadcaster had leased before it heard go out; then nothing until the pause ends.
    assert not [t for t in sent if throttled + 0.5 < t < throttled + pause - 0.2]
