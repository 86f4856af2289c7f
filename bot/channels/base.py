"""What every channel offers the rest of the bot, and how it reports a failed delivery."""

from __future__ import annotations

import asyncio
import html
import re
import unicodedata
from typing import Protocol

from handlers.base import Capabilities, Reply, units


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


class Polling:
    """Receiving for a channel that long-polls its platform in a task of its own (`_poll`), unless a webhook
    brings its updates."""

    webhook: bool
    _poller: asyncio.Task | None = None

    async def _poll(self) -> None:
        raise NotImplementedError

    def listen(self) -> None:
        """Start receiving (long polling; a webhook's updates come through the channel's `feed`)."""
        if not self.webhook:
            self._poller = asyncio.create_task(self._poll())

    async def stop_receiving(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None


class Channel(Protocol):
    name: str
    capabilities: Capabilities

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        """Deliver one reply; returns a reference to the message sent (for later edits)."""

    async def set_commands(self, chat_id: str | None, language: str | None,
                           commands: list[tuple[str, str]]) -> None:
        """The command menu for one chat, or the default for a language when chat_id is None (language None:
        for every language without a default of its own)."""

    def deep_link(self, payload: str) -> str | None:
        """A link that opens the bot with /start <payload>, if the channel has one."""


# Outbound HTML is well formed (catalog texts, people's text escaped, admins' text checked by handlers/richtext):
# a tag, an entity, or one character at a time.
_TOKEN = re.compile(r"<[^<>]*>|&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);|[^<&]", re.DOTALL)
_SENTENCE_END = ".!?…"


def split_text(text: str, limit: int, unit: str = "char") -> list[str]:
    """Cut HTML into pieces whose visible text is at most `limit` long in the platform's `unit`. A cut falls
    at a line break where one is in the second half of the piece, else after a sentence, else at a space, and
    never inside a tag or an entity; tags open at a cut are closed before it and opened again after it."""
    if units(text, unit) <= limit:  # the visible text is never longer than the HTML: no need to read it
        return [text]
    pieces: list[str] = []
    rest = text
    while True:
        cut, stack = _cut(rest, limit, unit)
        if cut is None:
            return [*pieces, rest] if rest or not pieces else pieces
        opened = "".join(tag for tag, _ in stack)
        closed = "".join(f"</{name}>" for _, name in reversed(stack))
        pieces.append(rest[:cut].rstrip("\n ") + closed)
        rest = opened + rest[cut:].lstrip("\n ")


def _cut(text: str, limit: int, unit: str) -> tuple[int | None, list[tuple[str, str]]]:
    """Where to cut `text` (None: it fits) and the tags open there, as (opening tag, name)."""
    size = 0
    stack: list[tuple[str, str]] = []
    breaks: dict[str, tuple[int, int, list]] = {}  # the latest line, sentence and space: (size, place, tags open)
    last_char = ""
    first: int | None = None  # where the first character shown is
    for match in _TOKEN.finditer(text):
        piece, at = match.group(0), match.start()
        if piece.startswith("<"):
            _tag(stack, piece)
            continue
        shown = html.unescape(piece) if piece.startswith("&") else piece
        if first is None:
            first = at
        if piece == "\n":
            breaks["line"] = (size, at, list(stack))
        elif piece == " ":
            breaks["sentence" if last_char in _SENTENCE_END else "space"] = (size, at, list(stack))
        width = units(shown, unit)
        if size + width > limit:
            for kind in ("line", "sentence", "space"):
                found = breaks.get(kind)
                if found is not None and found[0] >= limit // 2:
                    return found[1], found[2]
            if size == 0:  # one character wider than the limit: it goes alone, over the limit
                return match.end(), list(stack)
            if unicodedata.combining(shown[0]):  # keep a letter with its marks: back to the letter
                for back in reversed(list(_TOKEN.finditer(text, first, at))):
                    if back.start() > first and not back.group(0).startswith("<") \
                            and not unicodedata.combining(back.group(0)[0]):
                        return back.start(), _open_at(text, back.start())
            return at, list(stack)
        size += width
        last_char = shown[-1]
    return None, stack


def _open_at(text: str, place: int) -> list[tuple[str, str]]:
    stack: list[tuple[str, str]] = []
    for match in re.finditer(r"<[^<>]*>", text[:place]):
        _tag(stack, match.group(0))
    return stack


def _tag(stack: list[tuple[str, str]], tag: str) -> None:
    """Follow the open tags: (opening tag, name) pairs."""
    if tag.startswith("</"):
        if stack:
            stack.pop()
    else:
        stack.append((tag, re.split(r"[\s>]", tag[1:], maxsplit=1)[0]))
