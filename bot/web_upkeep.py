"""The web chat's upkeep, once an hour for the whole deployment (a job of the scheduler's leader, bot/scheduler.py):
expired sessions, the address limits PostgreSQL keeps for every worker (storage/send_gate.py) once they have run out,
and the uploads kept long enough. Not in a person's request: there a slow or failing sweep would be theirs to bear,
and on several workers each would sweep."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import Store

if TYPE_CHECKING:
    from bot.channels.web import WebChannel
    from storage.send_gate import SendGateRepo

EVERY = timedelta(hours=1)
UPLOADS_KEPT = timedelta(days=7)  # a photo sent in the web chat: handlers copied what they took


class WebUpkeep:
    def __init__(self, store: Store, channels: Callable[[], list[WebChannel]],
                 buckets: Callable[[], SendGateRepo | None]) -> None:
        # Asked at each run: the shared limits are opened after the jobs are registered (App.build).
        self.store, self.channels, self.buckets = store, channels, buckets
        self.done_at: datetime | None = None

    def register(self, scheduler) -> None:
        scheduler.every_tick("web upkeep", self.tick)

    async def tick(self, now: datetime) -> None:
        if self.done_at is not None and now - self.done_at < EVERY:
            return
        # Taken before the steps: one that keeps failing is told (by the scheduler) once an hour, not every tick.
        self.done_at = now
        steps = [lambda: self.store.web_sessions.delete_expired(now)]
        if (buckets := self.buckets()) is not None:
            steps.append(buckets.forget_past)
        steps += [functools.partial(channel.prune_uploads, UPLOADS_KEPT) for channel in self.channels()]
        failed = None
        for step in steps:  # each whatever the others do: a failing limits table must not keep photos past 7 days
            try:
                await step()
            except Exception as err:
                failed = failed or err
        if failed is not None:
            raise failed
