"""A conversation harness: the real router, handlers and SQLite storage, a recording channel and an
injected clock. Conversations are written as turn tables: (what the person sends, what the bot must say)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import handlers
from bot.outbound import Outbound
from bot.router import Router
from handlers.base import Capabilities, Inbound, Media, Reply, Settings
from storage import Store


class Clock:
    def __init__(self, start: datetime = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class RecordingChannel:
    name: str = "test"
    capabilities: Capabilities = field(default_factory=Capabilities)
    sent: list[tuple[str, Reply, str | None]] = field(default_factory=list)
    commands: dict[str | None, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def fetch(self, media: Media) -> bytes:
        return self.files[media.ref]

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str:
        self.sent.append((chat_id, reply, edit_ref))
        return edit_ref or str(next(self._ids))

    async def set_commands(self, chat_id, language, commands) -> None:
        self.commands[chat_id] = [c for c, _ in commands]

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/danvan_test_bot?start={payload}"


class Person:
    """One person chatting: `await p.say("/start")`, `await p.click("Đồng ý")`."""

    def __init__(self, harness: Harness, user_id: str, name: str = "Nguyễn Thị Lan", language: str = "vi") -> None:
        self.h, self.id, self.name, self.language = harness, user_id, name, language
        self.last: list[Reply] = []

    def _event(self, kind: str, **kw) -> Inbound:
        return Inbound(self.h.channel.name, self.id, self.id, kind, display_name=self.name,
                       language=self.language, **kw)

    async def send(self, inbound: Inbound) -> list[Reply]:
        replies = await self.h.router.handle(inbound)
        if replies:
            self.last = replies
        return replies

    async def say(self, text: str) -> list[Reply]:
        return await self.send(self._event("text", text=text))  # "/command args" is parsed by the router

    async def choose(self, data: str) -> list[Reply]:
        return await self.send(self._event("choice", payload=data, message_ref="1"))

    def option(self, label: str) -> str:
        """The data of the button whose label contains `label`, among the latest replies."""
        for reply in reversed(self.last):
            for row in reply.options:
                for option in row:
                    if label in option.label and option.data:
                        return option.data
        labels = [o.label for r in self.last for row in r.options for o in row]
        raise AssertionError(f"no button {label!r} among {labels}")

    async def click(self, label: str) -> list[Reply]:
        return await self.choose(self.option(label))

    async def photo(self, content: bytes, caption: str = "") -> list[Reply]:
        ref = f"photo-{len(self.h.channel.files)}"
        self.h.channel.files[ref] = content
        return await self.send(self._event("media", text=caption,
                                           media=Media("photo", ref, len(content), "image/jpeg")))

    async def location(self, lat: float, lon: float) -> list[Reply]:
        return await self.send(self._event("location", location=(lat, lon)))

    async def sticker(self) -> list[Reply]:
        return await self.send(self._event("unsupported"))

    def text(self) -> str:
        return render(self.last)


class Harness:
    def __init__(self, store: Store, clock: Clock, channel: RecordingChannel | None = None) -> None:
        self.store, self.clock = store, clock
        self.channel = channel or RecordingChannel()
        outbound = Outbound(store, clock)
        outbound.add(self.channel)
        self.router = Router(store, Settings(), handlers.registry, outbound, clock)

    def person(self, user_id: str = "1001", **kw) -> Person:
        return Person(self, user_id, **kw)


def render(replies: list[Reply]) -> str:
    return "\n".join(r.text + "".join(f" [{o.label}]" for row in r.options for o in row) for r in replies)


async def turns(person: Person, table: list[tuple[str, list[str]]]) -> None:
    """Run a turn table. An input "[Label]" clicks the button so labelled; anything else is typed.
    Each expected string must appear in the bot's answer to that turn (texts and button labels);
    "!text" must not."""
    for number, (said, expected) in enumerate(table, start=1):
        if said.startswith("[") and said.endswith("]"):
            replies = await person.click(said[1:-1])
        else:
            replies = await person.say(said)
        answer = render(replies)
        for piece in expected:
            if piece.startswith("!"):
                assert piece[1:] not in answer, f"turn {number} ({said!r}): {piece[1:]!r} should not be in:\n{answer}"
            else:
                assert piece in answer, f"turn {number} ({said!r}): expected {piece!r} in:\n{answer}"


ONBOARD = [
    ("/start", ["Kính chào", "Mục đích 1/3"]),
    ("[Đồng ý]", ["Đã ghi nhận", "Mục đích 2/3"]),
    ("[Đồng ý]", ["Mục đích 3/3"]),
    ("[Không đồng ý]", ["xã, phường nào"]),
    ("hải lăng", ["Tìm thấy"]),
    ("[xã Hải Lăng]", ["thôn, tổ dân phố nào của xã Hải Lăng"]),
    ("[Bỏ qua]", ["lĩnh vực nào"]),
    ("[Xây dựng nông thôn mới]", ["✅ Xây dựng nông thôn mới"]),
    ("[Xong]", ["Thông tin của Ông/Bà", "xã Hải Lăng", "Xây dựng nông thôn mới"]),
]
