"""On PostgreSQL, the platform's rate shared by every worker (docs/scaling.md): a message that its worker's Gate
(bot/outbound.py) would let through waits, besides, for a place leased from the database (storage/send_gate.py).

The places are those of one generic cell rate algorithm on the database's clock, `interval` apart: a little more
than 1/rate, so that a message may reach the platform up to MARGIN seconds later than its place and no second
there still counts more than the cap (places that land in one second span at most 1 + MARGIN seconds, and
(1 + MARGIN) / interval = rate). A place not taken within GRACE of its time is lost rather than used later; what
else makes a message late (the clocks' offset below, the event loop, the way to the platform) must stay within the
rest of MARGIN. The database's clock is mapped onto this process's by the lease answered soonest after it was
read in the last OFFSET_FOR seconds: that maps each place a little late, never early.

That alone is open loop: a platform (or a path to it) that stalls for longer and then takes a heap of messages at
once counts them in one second. So, as the Gate does on one process, the answers close the loop: a message that
may have landed more than LATE after its place (its answer less the fastest way back) takes a place again when
its answer comes, on every worker's pace, so that the second it landed in is not also given all its places.

Replies and digests lease one place as they come, whatever broadcasts have reserved; broadcasts lease blocks,
and only just in time: while everything reserved goes within `horizon` seconds, so that a reply never waits behind
more than that. A 429 pushes the broadcasts' pace on by its retry_after, for every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.outbound import Gate
    from storage.send_gate import SendGateRepo

log = logging.getLogger(__name__)

MARGIN = 0.03
GRACE = 0.01
LATE = 0.025  # MARGIN less what the clocks' offset may be out by
BLOCK = 0.01  # seconds of places a broadcast lease takes at most
HORIZON = 0.02  # how far ahead of the database's clock broadcasts may have reserved places (at least two blocks)
OFFSET_FOR = 2.0
RETRY = 1.0  # seconds before a lease is tried again after the database failed
LONG_WAIT = 1.0  # a wait for the broadcasts' pace this long is another worker's 429: this worker's Gate says so


class SharedPace:
    def __init__(self, repo: SendGateRepo, channel: str, rate: int, broadcast_rate: int) -> None:
        self.repo = repo
        self.channel = channel
        self.clock: Callable[[], float] = time.monotonic  # the Gate's, once it shares this
        self.interval = (1 + MARGIN) / rate
        self.bulk_interval = (1 + MARGIN) / min(broadcast_rate, rate)
        self.block = max(1, round(BLOCK / self.interval))
        self.horizon = max(HORIZON, 2 * self.block * self.interval)
        self.gate: Gate | None = None
        self.leases = 0  # leases granted (bench.broadcast)
        self.lost = 0  # places leased and not used in time
        self.refused = 0  # broadcast leases refused: the places reserved went too far ahead
        self.charged = 0  # places taken again for messages that may have landed late
        self._charges = 0
        self._charging: asyncio.Task | None = None
        self._any: deque[float] = deque()  # places leased for broadcasts, on this clock: anyone may take them
        self._urgent: deque[float] = deque()  # leased for a reply or a digest: not at the broadcasts' pace
        self._leasing: asyncio.Task | None = None
        self._bulk_after = 0.0  # the database refuses broadcast leases until then
        self._retry_at = 0.0  # the database failed: no lease until then
        self._failing = False
        self._offset = math.inf  # this clock less the database's
        self._offset_at = -math.inf
        self._paused = 0.0  # the end of the latest pause told to the database
        self._tasks: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None

    def due(self, bulk: bool, now: float, demand: int) -> float:
        """When the next place a message may take is (`bulk`: a broadcast message); inf: when a lease comes back
        (the Gate is woken then). `demand`: how many wait for a place; 0: take one in hand, lease none."""
        self._expire(now)
        first = self._any[0] if self._any else math.inf
        if not bulk and self._urgent:
            first = min(first, self._urgent[0])
        wanted = 0
        if bulk:
            tail = self._any[-1] if self._any else now
            if len(self._any) < demand and tail + self.interval - now <= self.horizon and now >= self._bulk_after:
                wanted = min(self.block, demand - len(self._any))
        elif first == math.inf:
            wanted = min(1, demand)
        if wanted and self._leasing is None and now >= self._retry_at:
            self._leasing = asyncio.create_task(self._lease(bulk, wanted), name=f"lease-{self.channel}")
        if first < math.inf:
            return first
        wait = max(self._retry_at, self._bulk_after if bulk else 0.0)
        return wait if self._leasing is None and wait > now else math.inf

    def take(self, bulk: bool) -> float:
        """A message takes the place `due` gave it; its time."""
        if not bulk and self._urgent and (not self._any or self._urgent[0] <= self._any[0]):
            return self._urgent.popleft()
        return self._any.popleft()

    def landed(self, place: float, latest: float) -> None:
        """The message of `place` reached the platform by `latest` at the latest (its answer less the fastest way
        back, as the Gate reckons it). Later than LATE after its place, it may land in a second whose places were
        all used: it takes a place again, now, for every worker (a platform that stalled and then took a heap of
        messages at once is counted as it counted them)."""
        if latest - place <= LATE:
            return
        self._charges += 1
        if self._charging is None:
            self._charging = asyncio.create_task(self._charge(), name=f"charge-{self.channel}")

    def pause(self, seconds: float) -> None:
        """No broadcast message for `seconds`, on every worker (a 429)."""
        end = self.clock() + seconds
        if end <= self._paused + 0.05:  # a storm of 429s: told once
            return
        self._paused = end
        task = asyncio.create_task(self._pause(seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        tasks = [t for t in (self._leasing, self._charging, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _expire(self, now: float) -> None:
        for places in (self._any, self._urgent):
            while places and places[0] < now - GRACE:
                places.popleft()
                self.lost += 1

    async def _lease(self, bulk: bool, count: int) -> None:
        try:
            lease = await self.repo.lease(self.channel, count * self.interval,
                                          bulk_span=count * self.bulk_interval if bulk else None,
                                          horizon=self.horizon)
        except Exception as err:  # the database unreachable (sqlite3's classes, storage/pg.py), or a bug
            if not self._failing:
                log.warning("%s: the shared send rate could not be read from the database; messages wait (%s)",
                            self.channel, err, exc_info=not isinstance(err, sqlite3.Error))
            self._failing = True
            self._retry_at = self.clock() + RETRY
            self._timer = asyncio.get_running_loop().call_later(RETRY, self._wake)
            return
        finally:
            self._leasing = None
        self._failing = False
        now = self.clock()
        if now - self._offset_at > OFFSET_FOR or now - lease.now < self._offset:
            self._offset, self._offset_at = now - lease.now, now
        if lease.end is None:
            self.refused += 1
            self._bulk_after = lease.busy - self.horizon + self._offset
            if self._bulk_after - now >= LONG_WAIT and self.gate is not None:
                self.gate.pause(self._bulk_after - now, shared=False)
        else:
            self.leases += 1
            places = self._any if bulk else self._urgent
            start = lease.end - count * self.interval + self._offset
            if places:  # the offset measured better since: the places stay in order, later rather than earlier
                start = max(start, places[-1] + self.interval)
            places.extend(start + i * self.interval for i in range(count))
        self._wake()

    async def _charge(self) -> None:
        try:
            while self._charges:
                count, self._charges = self._charges, 0
                self.charged += count
                with contextlib.suppress(sqlite3.Error):  # the database gone: no lease is granted anyway
                    await self.repo.lease(self.channel, count * self.interval)
        finally:
            self._charging = None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(sqlite3.Error):  # the database gone: no lease is granted anyway
            await self.repo.pause(self.channel, seconds)

    def _wake(self) -> None:
        if self.gate is not None:
            self.gate.wake()
