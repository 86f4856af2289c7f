"""The scheduler's tick and idempotency keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.scheduler import Scheduler
from storage.notify import WAKE, LocalSignals

pytestmark = pytest.mark.backends


async def test_claim_is_once_and_a_dead_claim_is_retried(store, clock):
    now = clock()
    assert await store.schedule.claim("digest:1:2026-11-26", now)
    assert not await store.schedule.claim("digest:1:2026-11-26", now + timedelta(minutes=1))
    # The claiming run died: after the stale period another run takes it.
    assert await store.schedule.claim("digest:1:2026-11-26", now + timedelta(minutes=11))
    await store.schedule.complete("digest:1:2026-11-26", now)
    assert await store.schedule.done("digest:1:2026-11-26")
    assert not await store.schedule.claim("digest:1:2026-11-26", now + timedelta(days=30))
    assert await store.schedule.claim("digest:1:2026-11-27", now)
    await store.schedule.release("digest:1:2026-11-27")
    assert await store.schedule.claim("digest:1:2026-11-27", now)


async def test_a_failing_job_does_not_stop_the_others(clock):
    seen = []

    async def broken(now):
        raise RuntimeError("boom")

    async def fine(now):
        seen.append(now)

    scheduler = Scheduler(clock)
    scheduler.every_tick("broken", broken)
    scheduler.every_tick("fine", fine)
    await scheduler.tick()
    clock.advance(minutes=1)
    await scheduler.tick()
    assert seen == [clock() - timedelta(minutes=1), clock()]


async def test_a_stop_lets_the_running_tick_finish(clock, caplog):
    """APScheduler's own shutdown cancels a running job: a round of digests was cut off at every stop that came
    during a tick (and logged as the job's error)."""
    started, release, finished = asyncio.Event(), asyncio.Event(), []

    async def slow(now):
        started.set()
        await release.wait()
        finished.append(now)

    scheduler = Scheduler(clock, interval_seconds=3600)
    scheduler.every_tick("slow", slow)
    scheduler.start()
    async with asyncio.timeout(10):
        await started.wait()
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert finished == [clock()] and "raised an exception" not in caplog.text


async def test_on_one_process_a_wake_runs_the_job_here_and_signals_stay_in_the_process(clock):
    signals, heard, ran = LocalSignals(), [], asyncio.Event()

    def broken(payload):
        raise RuntimeError("boom")

    signals.listen(WAKE, broken)
    signals.listen(WAKE, heard.append)

    async def job(now):
        ran.set()

    scheduler = Scheduler(clock, signals=signals)
    scheduler.every_tick("broadcasts", job)
    assert scheduler.is_leader
    scheduler.wake("broadcasts")
    async with asyncio.timeout(10):
        await ran.wait()
    await signals.notify(WAKE, "digests")
    assert heard == ["digests"], "one listener's fault does not keep the signal from the others"
