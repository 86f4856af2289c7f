"""A conversation harness: the real router, handlers and SQLite storage, a recording channel and an
injected clock. Conversations are written as turn tables: (what the person sends, what the bot must say)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import handlers
from bot.outbound import Outbound
from bot.render import plain
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
    refs: list[str] = field(default_factory=list)  # per message sent: the reference it has (an edit: the edited)
    commands: dict[str | None, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    numbered: list[list[tuple[str, str]]] = field(default_factory=list)  # per message sent: its options as numbers
    shown: Callable[[str], Awaitable[list[tuple[str, str]]]] | None = None  # a chat's options kept as numbers
    typed: list[tuple[str, int]] = field(default_factory=list)  # "typing…" shown: (chat, messages sent before it)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def fetch(self, media: Media) -> bytes:
        return self.files[media.ref]

    async def typing(self, chat_id: str) -> None:
        self.typed.append((chat_id, len(self.sent)))

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str:
        self.sent.append((chat_id, reply, edit_ref))
        # Kept before a message goes out: what its numbers mean is what the chat keeps now.
        numbered = await self.shown(chat_id) if self.shown and not self.capabilities.buttons else []
        self.numbered.append([(label, data) for number, (label, data) in enumerate(numbered, start=1)
                              if f"{number}. {label}" in reply.text])
        self.refs.append(edit_ref or str(next(self._ids)))
        return self.refs[-1]

    def screen(self, chat_id: str) -> list[Reply]:
        """The chat's messages as the person sees them now, in order: an edited message shows its latest text."""
        shown: dict[str, Reply] = {}
        for (chat, reply, _), ref in zip(self.sent, self.refs, strict=True):
            if chat == chat_id:
                shown[ref] = reply
        return list(shown.values())

    def ref_of(self, chat_id: str, data: str) -> str | None:
        """The message that shows a button with this data now (the latest such), as a press reports it."""
        for (chat, reply, _), ref in reversed(list(zip(self.sent, self.refs, strict=True))):
            if chat == chat_id and any(o.data == data for row in reply.options for o in row):
                return ref
        return None

    def choices(self, reply: Reply) -> list[str]:
        """The data of the options a sent message offers: its buttons, or the options it numbered."""
        if self.capabilities.buttons:
            return [o.data for row in reply.options for o in row if o.data]
        [numbered] = [numbered for (_, sent, _), numbered in zip(self.sent, self.numbered, strict=True)
                      if sent is reply]
        return [data for _, data in numbered]

    async def set_commands(self, chat_id, language, commands) -> None:
        self.commands[chat_id] = [c for c, _ in commands]

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/danvan_test_bot?start={payload}"


class Person:
    """One person chatting: `await p.say("/start")`, `await p.click("Đồng ý")`."""

    def __init__(self, harness: Harness, user_id: str, name: str = "Nguyễn Thị Lan", language: str = "vi") -> None:
        self.h, self.id, self.name, self.language = harness, user_id, name, language
        self.last: list[Reply] = []
        self.shown: list[tuple[str, str]] = []  # without buttons: the options numbered in `last` (label, data)

    @property
    def buttons(self) -> bool:
        return self.h.channel.capabilities.buttons

    def _event(self, kind: str, **kw) -> Inbound:
        return Inbound(self.h.channel.name, self.id, self.id, kind, display_name=self.name,
                       language=self.language, **kw)

    async def send(self, inbound: Inbound) -> list[Reply]:
        before = len(self.h.channel.sent)
        replies = await self.h.router.handle(inbound)
        if not self.buttons:  # what the person sees: the rendered messages
            replies = [reply for chat, reply, _ in self.h.channel.sent[before:] if chat == self.id]
        if replies:
            self.last = replies
            if not self.buttons:
                self.shown = await self._numbered()
        return replies

    async def _numbered(self) -> list[tuple[str, str]]:
        return await self.h.store.conversations.shown(self.h.channel.name, self.id)

    async def say(self, text: str) -> list[Reply]:
        return await self.send(self._event("text", text=text))  # "/command args" is parsed by the router

    async def choose(self, data: str) -> list[Reply]:
        """Press a button by its data; where the channel has no buttons, type the number it is shown with now (or,
        when it is not among them, send the data as a press, as a forged or stale button would come)."""
        if not self.buttons:
            for number, (_, option_data) in enumerate(await self._numbered(), start=1):
                if option_data == data:
                    return await self.say(str(number))
        return await self.send(self._event("choice", payload=data, message_ref=self.h.channel.ref_of(self.id, data)))

    def option(self, label: str) -> str:
        """The data of the option whose label contains `label`, among the latest replies: a button, or where the
        channel has no buttons, an option numbered in the latest text."""
        if not self.buttons:
            for shown, data in reversed(self.shown):
                if label in shown:
                    return data
            raise AssertionError(f"no option {label!r} in {self.text()!r}")
        for reply in reversed(self.last):
            for row in reply.options:
                for option in row:
                    if label in option.label and option.data:
                        return option.data
        raise AssertionError(f"no button {label!r} among {self.labels()}")

    def labels(self) -> list[str]:
        """The labels of the options offered in the latest replies, in order (buttons, or numbered lines)."""
        if not self.buttons:
            return [label for label, _ in self.shown]
        return [o.label for r in self.last for row in r.options for o in row if o.data]

    async def click(self, label: str) -> list[Reply]:
        """Press the button so labelled; without buttons, type the number shown for it, as a person does."""
        data = self.option(label)
        if not self.buttons:
            numbers = [n for n, (_, shown) in enumerate(await self._numbered(), start=1) if shown == data]
            assert numbers, f"{label!r} is no longer among the numbers shown"
            return await self.say(str(numbers[0]))
        return await self.choose(data)

    async def offers(self, data: str) -> bool:
        """Whether the option can still be chosen: a button stays on the screen; a number means what the latest
        list showed."""
        return self.buttons or any(shown == data for _, shown in await self._numbered())

    @property
    def stale(self) -> str:
        """What the person is told of an option no longer offered: an old button, or a number not in the list."""
        return "Nút này đã cũ" if self.buttons else "Số này không có trong danh sách"

    @property
    def use_options(self) -> str:
        """What the person is told when they type words where an option is expected."""
        return "chọn một trong các nút" if self.buttons else "trả lời bằng một số"

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


# Profiles the dialogs run under: a channel with buttons and HTML (Telegram, the web chat), and one with neither,
# 2,000 characters a message (Zalo), answered by typing numbers and keywords.
BUTTONS = Capabilities()
TEXT_ONLY = Capabilities(buttons=False, edits=False, max_text=2000, html=False)


class Harness:
    def __init__(self, store: Store, clock: Clock, channel: RecordingChannel | None = None) -> None:
        self.store, self.clock = store, clock
        self.channel = channel or RecordingChannel()
        self.channel.shown = lambda chat_id: store.conversations.shown(self.channel.name, chat_id)
        outbound = Outbound(store, clock)
        outbound.add(self.channel)
        self.router = Router(store, Settings(), handlers.registry, outbound, clock)

    def person(self, user_id: str = "1001", **kw) -> Person:
        return Person(self, user_id, **kw)

    def seen(self, text: str) -> str:
        """What the channel shows of this HTML: itself, or where the channel has no HTML, plain text."""
        return text if self.channel.capabilities.html else plain(text)


def render(replies: list[Reply]) -> str:
    return "\n".join(r.text + "".join(f" [{o.label}]" for row in r.options for o in row) for r in replies)


async def turns(person: Person, table: list[tuple[str, list[str]]]) -> None:
    """Run a turn table. An input "[Label]" clicks the button so labelled (types its number where the channel
    has no buttons); anything else is typed. Each expected string must appear in the bot's answer to that turn
    (texts and button labels; HTML as a channel without HTML shows it); "!text" must not."""
    for number, (said, expected) in enumerate(table, start=1):
        if said.startswith("[") and said.endswith("]"):
            replies = await person.click(said[1:-1])
        else:
            replies = await person.say(said)
        answer = render(replies)
        for piece in expected:
            negated, piece = piece.startswith("!"), piece.removeprefix("!")
            piece = person.h.seen(piece)  # the HTML expected, as the channel shows it
            if negated:
                assert piece not in answer, f"turn {number} ({said!r}): {piece!r} should not be in:\n{answer}"
            else:
                assert piece in answer, f"turn {number} ({said!r}): expected {piece!r} in:\n{answer}"


ONBOARD = [
    ("/start", ["Kính chào", "Mục đích 1/2"]),
    ("[Đồng ý]", ["Đã ghi nhận", "Mục đích 2/2"]),
    ("[Đồng ý]", ["xã, phường nào"]),
    ("hải lăng", ["Tìm thấy"]),
    ("[xã Hải Lăng]", ["thôn, tổ dân phố nào của xã Hải Lăng"]),
    ("[Bỏ qua]", ["lĩnh vực nào"]),
    ("[Xây dựng nông thôn mới]", ["✅ Xây dựng nông thôn mới"]),
    ("[Xong]", ["Thông tin của Ông/Bà", "xã Hải Lăng", "Xây dựng nông thôn mới"]),
]
