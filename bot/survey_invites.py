"""Invitations to a survey and its one reminder, both through the broadcast outbox: the same audience rules,
quiet hours, opt-out and delivery guarantees as any announcement, with a «Trả lời khảo sát» button.

The reminder goes `remind_days` before the survey closes, to those an invitation reached who have not finished;
its idempotency key makes a restart neither skip nor repeat it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.broadcast import plan_start
from handlers.surveys import Quiet, invitation_texts
from storage import Store
from storage.broadcasts import NewBroadcast
from storage.surveys import REMINDER


class SurveyReminders:
    def __init__(self, store: Store, quiet: Quiet, tz: ZoneInfo) -> None:
        self.store, self.quiet, self.tz = store, quiet, tz

    def register(self, scheduler) -> None:
        scheduler.every_tick("survey_reminders", self.tick)

    async def tick(self, now: datetime) -> list[int]:
        """Write the reminders now due; returns their broadcast ids (the broadcast engine sends them)."""
        written = []
        for survey in await self.store.surveys.reminders_due(now):
            key = f"{REMINDER}{survey.id}"
            if not await self.store.schedule.claim(key, now):  # another worker's, or done since it was read
                continue
            if await self.store.surveys.invited_unfinished(survey.id):
                text_vi, text_en = invitation_texts(survey, "survey.reminder", self.tz)
                written.append(await self.store.surveys.remind(NewBroadcast(
                    text_vi=text_vi, text_en=text_en, scheduled_at=plan_start(now, self.quiet, self.tz, False),
                    survey_id=survey.id), now))
            await self.store.schedule.complete(key, now)
        return written
