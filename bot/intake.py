"""Updates in (DESIGN.md §3): each is journalled before the platform is told it was received, handled once
however often the platform delivers it, and marked done when handled; at start, what a crash left undone is
handled first, in order per chat. Channels call `accept` and acknowledge the platform only once it returns.

With several workers on one PostgreSQL (`claims` given) one chat's updates go through its drainer instead
(bot/drainers.py), so that one worker at a time handles them, in order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta

from bot.drainers import Drainers
from bot.router import Router
from handlers.base import Inbound, Media, Reply
from messages import LANGUAGES, Texts
from storage import Store
from storage.claims import Claims
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
    def __init__(self, store: Store, router: Router, clock: Callable[[], datetime], claims: Claims | None = None
                 ) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._apologized: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.drainers = Drainers(store, claims, self._handle, self._spawn, clock) if claims is not None else None

    async def accept(self, channel: str, updates: list[tuple[str, Inbound]]) -> list[asyncio.Future]:
        """Journal a batch of (platform update id, event), then start handling what is new: a future for each,
        done once it is handled (or, with several workers, at once when another worker holds its chat). Raises
        when the journal cannot be written: the platform must then not be told, so that it delivers them again;
        each person is told once that their message could not be taken."""
        items = [(update_id, inbound.chat_id, encode(inbound)) for update_id, inbound in updates]
        try:
            fresh = await self.store.journal.accept(channel, items, self.clock())
        except Exception:
            for update_id, inbound in updates:
                await self._apologize(channel, update_id, inbound)
            raise
        # The events as they came: decoding each again from the journal's JSON would only give them back.
        known = {event: inbound for (_, _, event), (_, inbound) in zip(items, updates, strict=True)}
        return [self._start(entry, known[entry.event]) for entry in fresh]

    async def handle(self, channel: str, update_id: str, inbound: Inbound) -> None:
        """For a channel whose answer waits for the handling (the web chat): journal, handle, return. With several
        workers it returns at once when another worker holds the chat; the answer reaches the chat from there."""
        await asyncio.gather(*await self.accept(channel, [(update_id, inbound)]))

    async def replay(self) -> int:
        """Handle what was journalled but not done before the last stop; returns how many. With several workers,
        whatever is not done: the chats' drainers take those no live worker holds."""
        entries = await self.store.journal.pending()
        if self.drainers is not None:
            for chat in dict.fromkeys((entry.channel, entry.chat_id) for entry in entries):
                self.drainers.poke(chat)
        else:
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
        try:
            await self.store.journal.flush()
        except Exception:  # those are handled again at the next start (`replay`)
            log.exception("done marks of the inbound journal could not be written at the stop")

    def _start(self, entry: Entry, inbound: Inbound | None = None) -> asyncio.Future:
        if self.drainers is not None:
            return self.drainers.enqueue(entry)
        # Tasks start in journal order and take the chat's lock before their first pause, so one chat's
        # updates are handled in the order they came.
        return self._spawn(self._handle(entry, inbound))

    def _spawn(self, work: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, entry: Entry, inbound: Inbound | None = None) -> bool:
        """True once it is handled and marked so (in one process: the mark on its way, `done_soon`). `inbound`:
        the entry's event, when it is at hand."""
        try:
            await self.router.handle(inbound or decode(entry.event), entry.id)
        except Exception:  # left undone: handled again at the next start
            log.exception("an update on %s could not be handled", entry.channel)
            return False
        if self.drainers is None:  # one process: the mark rides on the journal's next write (JournalRepo.done_soon)
            self.store.journal.done_soon(entry.id, self.clock())
            return True
        try:
            await self.store.journal.done(entry.id, self.clock())
        except Exception:
            log.exception("an update on %s was handled but could not be marked so", entry.channel)
            return False
        return True

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
