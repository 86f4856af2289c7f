"""Delivery of replies: classify failures, retry what may succeed later, stop sending to people
who have gone (and remember that they have); pace every message of a channel through its Gate, replies
first, broadcasts in the capacity left over."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING

from bot.channels.base import Channel, DeliveryError
from handlers.base import Reply
from messages import Safe, Texts
from storage import Store

if TYPE_CHECKING:  # psycopg is loaded only where PostgreSQL is used
    from bot.shared_pace import SharedPace

log = logging.getLogger(__name__)

# The platform counts messages by when they reach it, which is some time after they leave here and before
# the answer comes back. A message therefore holds its place in the window while it is in flight, and
# afterwards until one second after the latest moment it can have arrived, taken as its answer's time less
# the fastest round trip seen, plus EPSILON. That is early by the fastest trip's way there, but the message
# that takes the place next is itself at least the shortest way there on its way, so the platform never
# sees more than the cap in one second as long as the fastest trip's way there was about the shortest.
# Two things keep that true: round trips are timed from when the sender starts sending (`Slot.sent`, not
# the grant: with a busy event loop a granted sender waits its turn some milliseconds), and until as many
# answers have come back as the most messages ever in flight at once (by then each connection opened for
# them has carried a message or more), whose trips include opening connections (TCP, TLS), a message holds
# its place until one second after its answer itself. Without them bench.broadcast saw 1002-1003 messages
# in one second at a cap of 1000, the way there of the early "fastest" trips being a few milliseconds long.
WINDOW = 1.0
EPSILON = 0.005
BURST = 0.05  # seconds of broadcast messages that may catch up at once after a hiccup of the event loop
LEASE_WAIT = 0.1  # seconds a typing sign may wait for its place from the shared pace (bot/shared_pace.py)


class Priority(IntEnum):
    """Who goes first on a channel: a reply to the person who just wrote, then digests and reminders,
    then broadcasts in the capacity left over."""

    REPLY = 0
    SCHEDULED = 1
    BROADCAST = 2


@dataclass(eq=False)
class Slot:
    """A place in the window, held from the send until the platform may have counted it."""

    priority: Priority
    granted: float
    sent: float = 0.0  # when the sender started sending (Gate.sending)
    released: bool = False
    place: float | None = None  # its place from the shared pace (bot/shared_pace.py), on this clock


class Gate:
    """The send rate of one channel: at most `rate` messages in any window of one second, of which
    broadcasts take at most `broadcast_rate`, evenly spaced. Waiters are served by priority, then in
    order: a reply takes the next free place ahead of every broadcast message. A 429 pauses broadcasts."""

    def __init__(self, rate: int, broadcast_rate: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.broadcast_rate = min(broadcast_rate or rate, rate)
        self.clock = clock
        self.paused_until = 0.0
        self.fastest = math.inf  # the shortest round trip seen
        self.answers = 0  # round trips seen
        self.peak = 0  # the most messages in flight at once
        self._flying = [0, 0]  # messages in flight: all, broadcasts
        self._recent: tuple[list[float], list[float]] = ([], [])  # heaps of latest arrival times: all, broadcasts
        self._interval = WINDOW / self.broadcast_rate
        self._tolerance = max(BURST, self._interval)
        self._tat = 0.0  # when the next broadcast message is due (generic cell rate algorithm)
        self._waiting: list[tuple[int, int, asyncio.Future[Slot]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        # On PostgreSQL, the rate shared with the other workers (bot/shared_pace.py): a place there too.
        self.pace: SharedPace | None = None

    def share(self, pace: SharedPace) -> None:
        self.pace = pace
        pace.gate, pace.clock = self, self.clock

    def try_acquire(self, priority: Priority) -> Slot | None:
        """A place in the window if one is free now and nobody of this priority or higher waits for one
        (and, with a shared pace, a place from it is in hand)."""
        return self._try(priority, 0)

    async def acquire(self, priority: Priority) -> Slot:
        """A place in the window; give it back with `release` once the platform has answered."""
        if (slot := self._try(priority, 1)) is not None:
            return slot
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._seq), future))
        self._pump()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as the waiter was cancelled
                self.release(future.result(), answered=False)
            raise

    def sending(self, slot: Slot) -> None:
        """The holder of `slot` is about to hand its message to the platform."""
        slot.sent = self.clock()

    def release(self, slot: Slot, *, answered: bool) -> None:
        """The send is over; `answered`: the platform replied (success or an error of its own)."""
        if slot.released:
            return
        slot.released = True
        now = self.clock()
        sent = max(slot.sent, slot.granted)
        if answered:
            self.fastest = min(self.fastest, now - sent)
            self.answers += 1
        trusted = answered and self.answers > self.peak
        latest = max(sent, now - self.fastest if trusted else now) + EPSILON
        if slot.place is not None and self.pace is not None:
            self.pace.landed(slot.place, latest)
        bulk = slot.priority == Priority.BROADCAST
        self._flying[0] -= 1
        heapq.heappush(self._recent[0], latest)
        if bulk:
            self._flying[1] -= 1
            heapq.heappush(self._recent[1], latest)
        self._pump()

    def pause(self, seconds: float, *, shared: bool = True) -> None:
        """No broadcast message for `seconds`; `shared`: on every worker too (a 429 here, not one heard of)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)
        if shared and self.pace is not None:
            self.pace.pause(seconds)

    def wake(self) -> None:
        """Something the waiters wait for changed (the shared pace leased places)."""
        self._pump()

    def _try(self, priority: Priority, demand: int) -> Slot | None:
        if not self._waiting or priority < self._waiting[0][0]:
            now = self.clock()
            if self._due(priority, now, demand) <= now:
                return self._take(priority, now)
        return None

    def _due(self, priority: Priority, now: float, demand: int) -> float:
        """When `priority` may send; `demand`: how many wait (for the shared pace's leases)."""
        at = self._free(0, self.rate, now)
        if priority == Priority.BROADCAST:
            at = max(at, self._free(1, self.broadcast_rate, now), self.paused_until, self._tat - self._tolerance)
        if self.pace is not None and at <= now:
            at = self.pace.due(priority == Priority.BROADCAST, now, demand)
        return at

    def _free(self, which: int, cap: int, now: float) -> float:
        """When a place is free in the window of all messages (0) or of broadcasts (1); inf: when a
        message in flight is answered."""
        recent = self._recent[which]
        while recent and recent[0] <= now - WINDOW:
            heapq.heappop(recent)
        if self._flying[which] + len(recent) < cap:
            return now
        return recent[0] + WINDOW if recent else math.inf

    def _take(self, priority: Priority, now: float) -> Slot:
        place = self.pace.take(priority == Priority.BROADCAST) if self.pace is not None else None
        self._flying[0] += 1
        self.peak = max(self.peak, self._flying[0])
        if priority == Priority.BROADCAST:
            self._flying[1] += 1
            self._tat = max(self._tat, now) + self._interval
        return Slot(priority, now, place=place)

    def _pump(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting = self._waiting
        while waiting:
            priority, _, future = waiting[0]
            if future.done():
                heapq.heappop(waiting)
                continue
            now = self.clock()
            at = self._due(priority, now, len(waiting))
            if at > now:
                if at != math.inf:
                    self._timer = asyncio.get_running_loop().call_later(at - now, self._pump)
                return
            heapq.heappop(waiting)
            future.set_result(self._take(priority, now))


class Outbound:
    def __init__(self, store: Store, clock: Callable[[], datetime], max_attempts: int = 3,
                 max_wait: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.channels: dict[str, Channel] = {}
        self.gates: dict[str, Gate] = {}
        self.max_attempts = max_attempts
        self.max_wait = max_wait

    def add(self, channel: Channel, gate: Gate | None = None) -> None:
        """A channel, with the Gate that paces it (none: the channel has no rate limit)."""
        self.channels[channel.name] = channel
        if gate is not None:
            self.gates[channel.name] = gate

    async def replies(self, channel_name: str, chat_id: str, replies: list[Reply], edit_ref: str | None,
                      t: Texts | None = None) -> bool:
        """Send a conversation's replies in order; an edit applies to the message the choice came from. A
        photo or file the platform refuses is replaced by a short note (in `t`'s language) and the rest still
        go out. False when a reply could not be delivered."""
        channel = self.channels[channel_name]
        delivered = True
        for reply in joined(replies, channel.capabilities.max_text):
            ref = (reply.target or edit_ref) if reply.edit and channel.capabilities.edits else None
            failure = await self._send(channel, chat_id, reply, ref, Priority.REPLY)
            if isinstance(failure, DeliveryError) and failure.kind == "permanent" and t is not None and (
                    reply.photo is not None or reply.document is not None):
                note = Safe(f"{t('common.file_refused')}\n{reply.text}".strip())
                failure = await self._send(channel, chat_id, Reply(note, reply.options), None, Priority.REPLY)
            if isinstance(failure, DeliveryError):
                delivered = False
                if failure.kind != "permanent":  # gone, or the platform unreachable: the rest would fail too
                    break
        return delivered

    async def deliver(self, channel: Channel, chat_id: str, reply: Reply, edit_ref: str | None = None,
                      priority: Priority = Priority.REPLY) -> bool:
        return await self.send(channel, chat_id, reply, edit_ref, priority) is not None

    async def send(self, channel: Channel, chat_id: str, reply: Reply, edit_ref: str | None = None,
                   priority: Priority = Priority.REPLY) -> str | None:
        """Deliver with retries; the message's reference ("" when the channel gives none), or None when
        it could not be delivered."""
        outcome = await self._send(channel, chat_id, reply, edit_ref, priority)
        return None if isinstance(outcome, DeliveryError) else outcome

    async def _send(self, channel: Channel, chat_id: str, reply: Reply, edit_ref: str | None,
                    priority: Priority) -> str | DeliveryError:
        """`send`, with the last error when it failed."""
        attempt = 0
        while True:
            attempt += 1
            try:
                ref = await self.attempt(channel, chat_id, reply, edit_ref, priority)
                return ref or ""
            except DeliveryError as err:
                if err.kind == "gone":
                    log.info("%s chat gone (%s); marked unreachable", channel.name, err.reason)
                    await self.store.users.set_reachable(channel.name, chat_id, False, self.clock())
                    return err
                if err.kind == "permanent" or attempt == self.max_attempts:
                    log.warning("%s delivery failed after %d attempt(s): %s", channel.name, attempt, err.reason)
                    return err
                await asyncio.sleep(min(err.retry_after or 0.5 * 2 ** (attempt - 1), self.max_wait))

    async def attempt(self, channel: Channel, chat_id: str, reply: Reply, edit_ref: str | None = None,
                      priority: Priority = Priority.REPLY, on_start: Callable[[], None] | None = None) -> str | None:
        """One try through the channel's gate; raises the channel's DeliveryError. A 429 pauses the
        channel's broadcasts for its retry_after."""
        gate = self.gates.get(channel.name)
        slot = await gate.acquire(priority) if gate is not None else None
        if on_start is not None:
            on_start()
        answered = False
        try:
            if slot is not None:
                gate.sending(slot)
            ref = await channel.send(chat_id, reply, edit_ref)
            answered = True
            return ref
        except DeliveryError as err:
            answered = err.answered
            if err.retry_after and gate is not None:
                gate.pause(err.retry_after)
            raise
        finally:
            if slot is not None:
                gate.release(slot, answered=answered)


    async def typing(self, channel_name: str, chat_id: str) -> None:
        """Show "typing…" in a chat while something slow (a chart, an export) is built for it, where the channel
        can (its `typing`). The platform may count it like a message, so it takes a place in the channel's gate,
        but never waits for one and is never retried: a sign that comes late, after the reply it announces, is
        worse than none."""
        channel = self.channels.get(channel_name)
        if getattr(channel, "typing", None) is None:
            return
        gate = self.gates.get(channel_name)
        slot = gate.try_acquire(Priority.REPLY) if gate is not None else None
        if slot is None and gate is not None and gate.pace is not None:
            # On PostgreSQL the place is leased from the database first: a round trip, not a wait for the rate.
            with contextlib.suppress(TimeoutError):
                slot = await asyncio.wait_for(gate.acquire(Priority.REPLY), LEASE_WAIT)
        if gate is not None and slot is None:
            return
        answered = False
        try:
            if slot is not None:
                gate.sending(slot)
            await channel.typing(chat_id)
            answered = True
        except DeliveryError as err:
            answered = err.answered
            log.debug("%s typing sign not shown: %s", channel_name, err.reason)
        finally:
            if slot is not None:
                gate.release(slot, answered=answered)


def joined(replies: list[Reply], max_text: int) -> list[Reply]:
    """One message per answer where possible: a plain text (no buttons, no edit, no file) is joined onto
    the reply that follows it. Fewer messages read better on a small phone and spend less of the
    platform's rate limit."""
    out: list[Reply] = []
    for reply in replies:
        previous = out[-1] if out else None
        if (previous is not None and not previous.options and not previous.edit and previous.document is None
                and previous.photo is None and not reply.edit and reply.document is None and reply.photo is None
                and len(previous.text) + 2 + len(reply.text) <= max_text):
            out[-1] = replace(reply, text=Safe(f"{previous.text}\n\n{reply.text}"))
        else:
            out.append(reply)
    return out
