"""Several workers on one PostgreSQL: one scheduler leader at a time, its place taken when it dies, jobs every
worker runs, a wake-up forwarded to the leader, and the idempotency keys that hold while two schedulers overlap."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from storage import Store
from tests.dialog import Clock
from tests.schedule_kit import local, schedule, staff, timed_harness

pytestmark = pytest.mark.backends("postgresql")


async def test_two_schedulers_ticking_at_once_send_each_digest_once(database, postgres_cluster):
    """While a leader hands over (its connection lost in the middle of a tick) two schedulers may run the jobs at
    the same moment: each digest's key is claimed by one of them only."""
    clock = Clock(local(2026, 11, 26, 7, 29))
    stores = [await Store.open(database) for _ in range(2)]
    try:
        workers = [timed_harness(store, clock) for store in stores]
        cadres = [await staff(stores[0], clock(), str(8000 + n), communes=("hai lang",)) for n in range(12)]
        schedulers = [schedule(harness) for harness, _ in workers]
        await asyncio.gather(*(s.tick() for s in schedulers))  # each cadre is first seen before 07:30
        clock.now = local(2026, 11, 26, 7, 31)
        await asyncio.gather(*(s.tick() for s in schedulers))
        sent = [chat for _, channel in workers for _, chat, reply in channel.timed if "Bản tin tổng hợp" in reply.text]
        assert sorted(sent) == sorted(str(8000 + n) for n in range(len(cadres)))
    finally:
        for store in stores:
            await store.close()
