"""Updates in (DESIGN.md §3): each is journalled before the platform is told it was received, handled once
however often the platform delivers it, and marked done when handled; at start, what a crash left undone is
handled first, in order per chat. Channels call `accept` and acknowledge the platform only once it returns."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.router import Router
from handlers.base import Inbound, Media, Reply
from messages import LANGUAGES, Texts
from storage import Store
from storage.journal import Entry

log = logging.getLogger(__name__)
KEEP = timedelta(days=3)  # handled updates stay this long (a platform redelivers within a day)
APOLOGIES = 1000  # updates remembered as apologized for, so that a retried batch is apologized for once


def encode(inbound: Inbound) -> str:
    # Shallow: dataclasses.asdict deep-copies every field, a good part of journalling an update.
    data = dict(vars(inbound))
    if inbound.media is not None:
        data["media"] = vars(inbound.media)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode(event: str) -> Inbound:
    data = json.loads(event)
    media = data.pop("media")
    location = data.pop("location")
    return Inbound(**data, media=Media(**media) if media else None,
                   location=tuple(location) if location else None)


class Intake:
    def __init__(self, store: Store, router: Router, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._apologized: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def accept(self, channel: str, updates: list[tuple[str, Inbound]]) -> list[asyncio.Task]:
        """Journal a batch of (platform update id, event), then start handling what is new (the tasks it
        started). Raises when the journal cannot be written: the platform must then not be told, so that it
        delivers them again; each person is told once that their message could not be taken."""
        items = [(update_id, inbound.chat_id, encode(inbound)) for update_id, inbound in updates]
        try:
            fresh = await self.store.journal.accept(channel, items, self.clock())
        except Exception:
            for update_id, inbound in updates:
                await self._apologize(channel, update_id, inbound)
            raise
        return [self._start(entry) for entry in fresh]

    async def handle(self, channel: str, update_id: str, inbound: Inbound) -> None:
        """For a channel whose answer waits for the handling (the web chat): journal, handle, return."""
        await asyncio.gather(*await self.accept(channel, [(update_id, inbound)]))

    async def replay(self) -> int:
        """Handle what was journalled but not done before the last stop; returns how many."""
        entries = await self.store.journal.pending()
        for entry in entries:
            if entry.applied:  # its answer may not have gone out: the question is asked again at the next message
                await self.store.conversations.mark_unasked(entry.channel, entry.chat_id)
                await self.store.journal.done(entry.id, self.clock())
            else:
                self._start(entry)
        if entries:
            log.info("handling %d update(s) received before the last stop", len(entries))
        return len(entries)

    async def drain(self, seconds: float) -> None:
        """Let updates being handled finish (at a stop); what does not finish in time stays journalled."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _start(self, entry: Entry) -> asyncio.Task:
        # Tasks start in journal order and take the chat's lock before their first pause, so one chat's
        # updates are handled in the order they came.
        task = asyncio.create_task(self._handle(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, entry: Entry) -> None:
        try:
            await self.router.handle(decode(entry.event), entry.id)
        except Exception:  # left undone: handled again at the next start
            log.exception("an update on %s could not be handled", entry.channel)
            return
        try:
            await self.store.journal.done(entry.id, self.clock())
        except Exception:
            log.exception("an update on %s was handled but could not be marked so", entry.channel)

    async def _apologize(self, channel: str, update_id: str, inbound: Inbound) -> None:
        key = (channel, update_id)
        if key in self._apologized or inbound.kind in ("blocked", "unblocked"):
            return
        self._apologized[key] = None
        if len(self._apologized) > APOLOGIES:
            self._apologized.popitem(last=False)
        language = inbound.language if inbound.language in LANGUAGES else "vi"
        try:
            await self.router.outbound.replies(channel, inbound.chat_id, [Reply(Texts(language)("common.error"))],
                                               None)
        except Exception:
            log.warning("could not apologize on %s for an update not taken", channel)
