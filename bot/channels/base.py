"""What every channel offers the rest of the bot, and how it reports a failed delivery."""

from __future__ import annotations

from typing import Protocol

from handlers.base import Capabilities, Reply


class DeliveryError(Exception):
    """A send that failed, classified: "retry" (later, after `retry_after` s), "gone" (the person
    blocked the bot or no longer exists: stop sending) or "permanent" (a bad request: record it).
    `answered`: the platform itself refused it (a 429, 403, 400), as opposed to a timeout or a network
    error, after which nobody knows whether or when the message reached it."""

    def __init__(self, kind: str, reason: str, retry_after: float | None = None,
                 answered: bool | None = None) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after
        self.answered = answered if answered is not None else kind != "retry" or retry_after is not None


class ChannelFatal(Exception):
    """The platform will not serve the bot (a revoked token): the process must stop, not hang."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


class BadUpdate(Exception):
    """A platform update the channel cannot read (wrong shape or types): it is refused, not journalled, since
    delivering it again would not help."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


class Channel(Protocol):
    name: str
    capabilities: Capabilities

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        """Deliver one reply; returns a reference to the message sent (for later edits)."""

    async def set_commands(self, chat_id: str | None, language: str, commands: list[tuple[str, str]]) -> None:
        """The command menu for one chat, or the default for a language when chat_id is None."""

    def deep_link(self, payload: str) -> str | None:
        """A link that opens the bot with /start <payload>, if the channel has one."""


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most `limit` characters, at line breaks where possible."""
    pieces, rest = [], text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    return [*pieces, rest] if rest or not pieces else pieces
