"""One in-process scheduler ticks; the database says what is due (DESIGN.md §5).

APScheduler (3.x, asyncio) runs a single interval job. Each tick calls the registered jobs with the
current time from the injected clock; a job finds in the database what is due and uses idempotency keys
(storage.schedule) so that a restart neither repeats nor skips a send. Tests call `tick()` directly with
a fake clock, so a week runs in milliseconds.

Several workers on one PostgreSQL each tick, but only the leader (storage/leader.py) runs the jobs, bar those every
worker must run (`everywhere`). A worker that is not the leader tries to become it at every tick, so a dead
leader's place is taken within a tick of its lock going; on taking it, the new leader first does what a start
does once for the whole deployment (`on_leading`). On SQLite the one process is always the leader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from storage.notify import WAKE, LocalSignals

if TYPE_CHECKING:  # psycopg is loaded only where PostgreSQL is used
    from storage.leader import Leadership

log = logging.getLogger(__name__)
Job = Callable[[datetime], Awaitable[None]]
STOP_SECONDS = 10.0  # at a stop, how long a running tick may take to finish


class Scheduler:
    def __init__(self, clock: Callable[[], datetime], interval_seconds: float = 30.0, *,
                 leadership: Leadership | None = None, signals: LocalSignals | None = None) -> None:
        self.clock = clock
        self.interval = interval_seconds
        self.jobs: list[tuple[str, Job]] = []
        self.everywhere: set[str] = set()  # the names of the jobs every worker runs, not only the leader
        self.leadership = leadership
        self._leading = leadership is None
        self._on_leading: list[Callable[[], Awaitable[object]]] = []
        self.signals = signals
        if signals is not None:
            signals.listen(WAKE, self._woken_by_peer)
        self._aps: AsyncIOScheduler | None = None
        self._woken: set[asyncio.Task] = set()
        self.last_tick: float | None = None  # time.monotonic() when the latest tick began (/healthz)
        self._ticking: asyncio.Task | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this worker runs the jobs (True on SQLite; on PostgreSQL as of the latest tick)."""
        return self._leading

    def every_tick(self, name: str, job: Job, everywhere: bool = False) -> None:
        """Run `job` at every tick: on the leader, or with `everywhere` on every worker."""
        self.jobs.append((name, job))
        if everywhere:
            self.everywhere.add(name)

    def on_leading(self, action: Callable[[], Awaitable[object]]) -> None:
        """Do `action` each time this worker becomes the leader, before its first jobs (PostgreSQL; on SQLite the
        program does it at start)."""
        self._on_leading.append(action)

    def wake(self, name: str) -> None:
        """Run one job now, not at the next tick (a handler just wrote something it should act on); a worker that
        is not the leader asks the leader to."""
        for job_name, job in self.jobs:
            if job_name != name:
                continue
            if self._leading or name in self.everywhere:
                self._spawn(self._run(name, job))
            elif self.signals is not None:
                self._spawn(self._ask_leader(name))

    def _woken_by_peer(self, name: str | None) -> None:
        if name is not None and self._leading:
            self.wake(name)

    async def _ask_leader(self, name: str) -> None:
        try:
            await self.signals.notify(WAKE, name)
        except Exception:  # the leader's next tick runs it anyway
            log.warning("could not ask the leader to run %s now", name, exc_info=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._woken.add(task)
        task.add_done_callback(self._woken.discard)

    async def _run(self, name: str, job: Job) -> None:
        try:
            await job(self.clock())
        except Exception:
            log.exception("scheduled job %s failed", name)

    async def tick(self) -> None:
        self.last_tick = time.monotonic()
        self._ticking = asyncio.current_task()
        now = self.clock()
        try:
            await self.elect()
            for name, job in self.jobs:
                if not (self._leading or name in self.everywhere):
                    continue
                try:
                    await job(now)
                except Exception:  # one failing job must not stop the others, nor the next tick
                    log.exception("scheduled job %s failed", name)
        finally:
            self._ticking = None

    async def elect(self) -> None:
        """Lead if no other worker does (each tick does this first)."""
        if self.leadership is None:
            return
        leading, self._leading = self._leading, await self.leadership.hold()
        if leading and not self._leading:
            log.warning("this worker no longer leads the scheduler")
        if self._leading and not leading:
            log.info("this worker leads the scheduler")
            for action in self._on_leading:
                try:
                    await action()
                except Exception:  # the jobs still run
                    log.exception("taking over as the scheduler's leader: %s failed", action)

    def start(self) -> None:
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._aps.add_job(self.tick, "interval", seconds=self.interval, id="tick", max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC))
        self._aps.start()

    async def stop(self) -> None:
        """No tick starts after this, and the jobs running finish first (within STOP_SECONDS): APScheduler's
        shutdown cancels a running job, which cut a round of digests in the middle and logged it as an error."""
        if self._aps is not None and self._aps.running:
            self._aps.pause()
            running = {task for task in (self._ticking, *self._woken) if task is not None}
            if running:
                await asyncio.wait(running, timeout=STOP_SECONDS)
            self._aps.shutdown(wait=False)
        self._aps = None
