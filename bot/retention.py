"""The daily retention job: what has been kept long enough goes (storage/retention.py says what).

It runs once a local day, at the backup's quiet hour, under the idempotency key `retention:<local date>`: a
restart neither repeats nor skips it, and a day missed while the bot was down is caught up once. Running it
twice changes nothing the second time anyway."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.intake import KEEP as JOURNAL_KEEP
from storage import Store

log = logging.getLogger(__name__)
DAILY_AT = time(3, 0)  # local, after the backup at 02:00: the backup of the night still has what this ends
STALE = timedelta(days=30)  # a notice or a numbered list of options that old is of no use to anyone
MONTH = timedelta(days=30)


class Retention:
    def __init__(self, store: Store, months: int, tz: ZoneInfo) -> None:
        self.store = store
        self.months = months
        self.tz = tz

    def register(self, scheduler) -> None:
        scheduler.every_tick("retention", self.tick)

    async def tick(self, now: datetime) -> None:
        local = now.astimezone(self.tz)
        day = local.date() if local.time() >= DAILY_AT else local.date() - timedelta(days=1)
        key = f"retention:{day.isoformat()}"
        if not await self.store.schedule.claim(key, now):
            return
        try:
            kept = now - self.months * MONTH
            counts = await self.store.retention.sweep(cases_closed_before=kept, chats_idle_before=kept,
                                                      broadcasts_ended_before=kept,
                                                      journal_before=now - JOURNAL_KEEP, stale_before=now - STALE,
                                                      now=now)
        except Exception:  # tried again once the claim is stale
            log.exception("the retention job failed; it is tried again in a few minutes")
            return
        await self.store.schedule.complete(key, now)
        if any(counts.values()):
            log.info("retention: %s", ", ".join(f"{name} {n}" for name, n in counts.items() if n))
