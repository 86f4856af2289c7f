"""Delivery of replies: classify failures, retry what may succeed later, stop sending to people
who have gone (and remember that they have)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum

from bot.channels.base import Channel, DeliveryError
from handlers.base import Reply
from storage import Store

log = logging.getLogger(__name__)


class Priority(IntEnum):
    """Who goes first on a channel: a reply to the person who just wrote, then digests and reminders,
    then broadcasts in the capacity left over."""

    REPLY = 0
    SCHEDULED = 1
    BROADCAST = 2


class Outbound:
    def __init__(self, store: Store, clock: Callable[[], datetime], max_attempts: int = 3,
                 max_wait: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.channels: dict[str, Channel] = {}
        self.max_attempts = max_attempts
        self.max_wait = max_wait

    def add(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    async def replies(self, channel_name: str, chat_id: str, replies: list[Reply], edit_ref: str | None) -> None:
        """Send a conversation's replies in order; an edit applies to the message the choice came from."""
        channel = self.channels[channel_name]
        for reply in replies:
            ref = edit_ref if reply.edit and channel.capabilities.edits else None
            if not await self.deliver(channel, chat_id, reply, ref):
                return

    async def deliver(self, channel: Channel, chat_id: str, reply: Reply, edit_ref: str | None = None,
                      priority: Priority = Priority.REPLY) -> bool:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await channel.send(chat_id, reply, edit_ref)
                return True
            except DeliveryError as err:
                if err.kind == "gone":
                    log.info("%s chat gone (%s); marked unreachable", channel.name, err.reason)
                    await self.store.users.set_reachable(channel.name, chat_id, False, self.clock())
                    return False
                if err.kind == "permanent" or attempt == self.max_attempts:
                    log.warning("%s delivery failed after %d attempt(s): %s", channel.name, attempt, err.reason)
                    return False
                await asyncio.sleep(min(err.retry_after or 0.5 * 2 ** (attempt - 1), self.max_wait))
        return False
