"""What /healthz checks, so that a bot which cannot do its work answers 503 and says why, not "ok".

Each check but the first reads what the parts record as they work: no lock, no query that could wait
behind a long write. The problems, by the name /healthz gives them:
- `database`: a read does not answer;
- `database_writes`: the latest write failed because the database takes no writes (disk full, read-only,
  I/O error); the next write that commits clears it;
- `<channel>_silent`: a channel that polls its platform has not heard from it for CHANNEL_SILENCE seconds
  (in webhook mode the platform calls when it has something, which may legitimately be rarely);
- `scheduler_late`: the tick has not run for three ticks and TICK_MARGIN;
- `outbox_stuck`: a broadcast has recipients waiting and no delivery outcome for OUTBOX_STALL seconds,
  though neither quiet hours nor a 429 held it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.broadcasts import BroadcastEngine
from bot.outbound import Outbound
from bot.scheduler import Scheduler
from storage.db import Database

CHANNEL_SILENCE = 60.0  # a long poll lasts 10 s plus the request timeout, a failed one pauses up to 30 s
TICK_MARGIN = 30.0  # a tick may take a while (a round of digests)
OUTBOX_STALL = 300.0  # well beyond a retry's backoff (30 s at most)


class Health:
    def __init__(self, db: Database, outbound: Outbound, scheduler: Scheduler, broadcasts: BroadcastEngine, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.outbound = outbound
        self.scheduler = scheduler
        self.broadcasts = broadcasts
        self.clock = clock
        self.since = clock()  # what has not happened yet is late when this long ago

    async def problems(self) -> list[str]:
        found = []
        try:
            readable = await self.db.ping()
        except Exception:
            readable = False
        if not readable:
            found.append("database")
        if self.db.write_failure is not None:
            found.append("database_writes")
        now = self.clock()
        for name, channel in self.outbound.channels.items():
            if not hasattr(channel, "heartbeat") or getattr(channel, "webhook", False):
                continue
            if now - _or(channel.heartbeat, self.since) > CHANNEL_SILENCE:
                found.append(f"{name}_silent")
        if now - _or(self.scheduler.last_tick, self.since) > 3 * self.scheduler.interval + TICK_MARGIN:
            found.append("scheduler_late")
        if self.broadcasts.stalled(now, OUTBOX_STALL):
            found.append("outbox_stuck")
        return found


def _or(moment: float | None, default: float) -> float:
    return default if moment is None else moment
