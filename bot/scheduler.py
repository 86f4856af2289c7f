"""One in-process scheduler ticks; the database says what is due (DESIGN.md §5).

APScheduler (3.x, asyncio) runs a single interval job. Each tick calls the registered jobs with the
current time from the injected clock; a job finds in the database what is due and uses idempotency keys
(storage.schedule) so that a restart neither repeats nor skips a send. Tests call `tick()` directly with
a fake clock, so a week runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)
Job = Callable[[datetime], Awaitable[None]]
STOP_SECONDS = 10.0  # at a stop, how long a running tick may take to finish


class Scheduler:
    def __init__(self, clock: Callable[[], datetime], interval_seconds: float = 30.0) -> None:
        self.clock = clock
        self.interval = interval_seconds
        self.jobs: list[tuple[str, Job]] = []
        self._aps: AsyncIOScheduler | None = None
        self._woken: set[asyncio.Task] = set()
        self.last_tick: float | None = None  # time.monotonic() when the latest tick began (/healthz)
        self._ticking: asyncio.Task | None = None

    def every_tick(self, name: str, job: Job) -> None:
        self.jobs.append((name, job))

    def wake(self, name: str) -> None:
        """Run one job now, not at the next tick (a handler just wrote something it should act on)."""
        for job_name, job in self.jobs:
            if job_name == name:
                task = asyncio.get_running_loop().create_task(self._run(name, job))
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
            for name, job in self.jobs:
                try:
                    await job(now)
                except Exception:  # one failing job must not stop the others, nor the next tick
                    log.exception("scheduled job %s failed", name)
        finally:
            self._ticking = None

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
