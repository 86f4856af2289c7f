"""One chat's updates in order when several workers share one PostgreSQL (issue 19).

A worker that journalled an update does not handle it at once: it starts (or pokes) its *drainer* for the chat.
The drainer takes the chat's lock (storage/claims.py); failing that, another worker holds the chat and will see
the update. Holding it, it handles the chat's updates not done, in journal order, lets the lock go, then reads
once more whether any are left, and if so starts again. No update is forgotten: a worker failed to take the lock
after its update was committed and before the holder let go, so the holder's read after letting go sees it.

A worker that dies lets go of its locks with its session; every worker sweeps at every scheduler tick for chats
with updates left undone for a while, and at start for all of them (`Intake.replay`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta

from storage import Store
from storage.claims import Claims
from storage.journal import Entry

log = logging.getLogger(__name__)
STRANDED = timedelta(seconds=5)  # younger updates are their receiver's to handle: not worth a lock attempt

Chat = tuple[str, str]  # (channel, chat id)
# What a drainer's turn with a chat came to.
HELD_ELSEWHERE, FAILED, LEFT_OVER, DONE = "held elsewhere", "failed", "left over", "done"


class Drainers:
    def __init__(self, store: Store, claims: Claims, handle: Callable[[Entry], Awaitable[bool]],
                 spawn: Callable[[Coroutine], asyncio.Task], clock: Callable[[], datetime]) -> None:
        """`handle`: one update, True once it is marked done; `spawn`: a task the intake waits for at a stop."""
        self.store, self.claims, self.handle, self.spawn, self.clock = store, claims, handle, spawn, clock
        self._running: set[Chat] = set()  # chats whose drainer runs in this worker
        self._poked: set[Chat] = set()  # updates came while its drainer ran: it reads again before it ends
        self._waiters: dict[Chat, dict[int, asyncio.Future]] = {}

    def enqueue(self, entry: Entry) -> asyncio.Future:
        """Have the update handled; the future is done once this worker handled it, or at once when another
        worker holds the chat (it answers there)."""
        chat = (entry.channel, entry.chat_id)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(chat, {})[entry.id] = waiter
        self.poke(chat)
        return waiter

    def poke(self, chat: Chat) -> None:
        if chat in self._running:
            self._poked.add(chat)
        else:
            self._running.add(chat)
            self.spawn(self._drain(chat))

    async def sweep(self, now: datetime) -> None:
        """Drain the chats whose updates wait longer than a receiver takes: their worker may be gone."""
        for chat in await self.claims.stranded(now - STRANDED):
            self.poke(chat)

    async def _drain(self, chat: Chat) -> None:
        try:
            while True:
                self._poked.discard(chat)
                outcome = await self._turns(chat)
                if outcome == HELD_ELSEWHERE:  # the answers go out from the worker that holds the chat
                    self._settle(chat)
                elif outcome == FAILED:  # the sweep tries again later, so that it is not retried in a loop
                    break
                elif outcome == LEFT_OVER:
                    continue
                if chat not in self._poked:  # nothing awaited between this check and the end: no poke is lost
                    break
        except Exception:  # the database is out of reach: the sweep tries again later
            log.exception("the updates of a chat on %s could not be taken", chat[0])
        finally:
            self._running.discard(chat)
            self._poked.discard(chat)
            self._settle(chat)

    async def _turns(self, chat: Chat) -> str:
        """Under the chat's lock, its updates not done, in order."""
        entries = await self.claims.take_chat(*chat)
        if entries is None:
            return HELD_ELSEWHERE
        session = self.claims.session
        try:
            outcome = await self._held(chat, entries, session)
        finally:  # also when cancelled at a stop
            left = await self._release(chat, session)
        return LEFT_OVER if outcome == DONE and left else outcome

    async def _held(self, chat: Chat, entries: list[Entry], session: int) -> str:
        while True:
            for entry in entries:
                if self.claims.session != session:  # the connection was made again: the lock went with it
                    return LEFT_OVER
                if not await self._turn(entry):
                    return FAILED
                self._settle(chat, entry.id)
            if chat not in self._poked:
                return DONE
            self._poked.discard(chat)  # more came to this worker meanwhile: read again, still holding the lock
            entries = await self.claims.undone(*chat)

    async def _release(self, chat: Chat, session: int) -> bool:
        """Let the chat's lock go; whether updates of it are left (journalled by a worker that could not take the
        lock meanwhile)."""
        if self.claims.session != session:
            return False
        try:
            return await self.claims.release_chat(*chat)
        except Exception:  # the session is broken: the server lets go of its locks as it ends
            log.warning("could not let go of a chat's lock on %s", chat[0])
            return False

    async def _turn(self, entry: Entry) -> bool:
        if not entry.applied:
            return await self.handle(entry)
        try:  # as at a restart: its answer may not have gone out, so the question is asked again
            await self.store.conversations.mark_unasked(entry.channel, entry.chat_id)
            await self.store.journal.done(entry.id, self.clock())
        except Exception:
            log.exception("an update on %s left applied could not be closed", entry.channel)
            return False
        return True

    def _settle(self, chat: Chat, entry_id: int | None = None) -> None:
        """Let `Intake.handle` return: for one update, or (None) for all of the chat's."""
        waiters = self._waiters.get(chat)
        if waiters is None:
            return
        settled = [waiters.pop(entry_id, None)] if entry_id is not None else list(waiters.values())
        if entry_id is None:
            waiters.clear()
        for waiter in settled:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if not waiters:
            del self._waiters[chat]
