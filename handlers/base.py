"""The channel-neutral core: what comes in (Inbound), what goes out (Reply), and the registry
of commands, flow steps and button actions that the router dispatches to.

A flow is a small state machine: each step has a `prompt` (ask the question) and a `handle`
(validate the answer, then move on or re-ask). State lives in SQLite, so a restart resumes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from handlers import images
from handlers.similar import THRESHOLD
from messages import LANGUAGES, Key, Safe, Texts
from storage.conversations import Conversation

if TYPE_CHECKING:
    from storage import Store
    from storage.users import User

# ---- events and replies ---------------------------------------------------------------------------

KINDS = ("command", "text", "choice", "media", "location", "contact", "unsupported", "blocked", "unblocked")


@dataclass(frozen=True)
class Media:
    kind: str  # photo, document, voice, video, sticker
    ref: str  # the platform's file id
    size: int | None = None
    mime: str | None = None
    filename: str | None = None
    normalised: bool = False  # a photo the channel already decoded and re-encoded (handlers/images.py)


@dataclass(frozen=True)
class Inbound:
    channel: str
    chat_id: str
    user_id: str
    kind: str
    text: str = ""  # the text, a caption, or a command's arguments
    command: str | None = None
    payload: str = ""  # a chosen option's data
    message_ref: str | None = None  # the bot message a choice came from
    display_name: str | None = None
    language: str | None = None
    media: Media | None = None
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class Option:
    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    mime: str = "application/octet-stream"


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[tuple[Option, ...], ...] = ()
    edit: bool = False  # replace the message the choice came from, where the channel can
    document: Document | None = None
    photo: Document | None = None  # an image shown in the chat, with `text` as its caption
    limit: int | None = None  # the longest text this message asks for: counted as it is typed where a page can
    target: str | None = None  # with `edit`: replace this message instead (a case's card, from a later step)


@dataclass(frozen=True)
class Notice:
    """A message to someone other than the person who wrote: rendered in the recipient's language."""

    user_id: int
    key: str
    values: dict
    buttons: tuple[tuple[str, str], ...] = ()  # (label key, callback data), one per row

    def dump(self) -> str:
        """As JSON, for the notice outbox; a value keeps whether it is a catalog key, safe HTML or plain."""
        values = {name: ["k" if isinstance(v, Key) else "s" if isinstance(v, Safe) else "v", v]
                  for name, v in self.values.items()}
        return json.dumps({"key": self.key, "values": values, "buttons": self.buttons}, ensure_ascii=False)

    @classmethod
    def load(cls, user_id: int, text: str) -> Notice:
        data = json.loads(text)
        kinds = {"k": Key, "s": Safe, "v": lambda v: v}
        values = {name: kinds[kind](v) for name, (kind, v) in data["values"].items()}
        return cls(user_id, data["key"], values, tuple(tuple(b) for b in data["buttons"]))




@dataclass(frozen=True)
class Capabilities:
    buttons: bool = True
    edits: bool = True
    max_text: int = 4096
    html: bool = True
    staff: bool = True  # may a cadre or admin act through this channel (not the public web chat)
    files: bool = True  # documents as files; without: as a download link in the text (bot/render.py `linked`)
    unit: str = "char"  # what `max_text` counts: "char", or "utf16" code units (Telegram: an emoji is 2)


def units(text: str, unit: str) -> int:
    """The length of `text` as a platform counts it: "utf16" code units or characters."""
    return len(text.encode("utf-16-le")) // 2 if unit == "utf16" else len(text)


# ---- callback data: short, versioned, validated ----------------------------------------------------

CALLBACK_VERSION = "1"
_ARG = re.compile(r"^[A-Za-z0-9_.\-]{0,24}$")
_KEY = re.compile(r"^[a-z]{1,8}(\.[a-z_]{1,12})?$")


def cb(key: str, *args: object) -> str:
    parts = [CALLBACK_VERSION, key, *(str(a) for a in args)]
    data = ":".join(parts)
    assert _KEY.match(key) and all(_ARG.match(p) for p in parts[2:]) and len(data.encode()) <= 64, data
    return data


def parse_cb(data: str) -> tuple[str, tuple[str, ...]] | None:
    """(key, args) of well-formed callback data of this version; None for anything else."""
    if not data or len(data.encode("utf-8", "replace")) > 64:
        return None
    parts = data.split(":")
    if len(parts) < 2 or parts[0] != CALLBACK_VERSION or not _KEY.match(parts[1]):
        return None
    if not all(_ARG.match(p) for p in parts[2:]):
        return None
    return parts[1], tuple(parts[2:])


# ---- the context a handler works in ----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What handlers need to know of the deployment."""

    operator_name: str = "Ban Dân vận Tỉnh ủy Quảng Trị"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    invite_ttl: timedelta = timedelta(days=7)
    case_limit: int = 5  # cases one person may send per `case_window`; more are politely slowed down
    case_window: timedelta = timedelta(hours=1)
    quiet_hours: tuple[time, time] | None = (time(21), time(7))  # broadcasts wait until they end (local)
    web_chat: str | None = None  # the web chat's public https address, offered where a message cannot be read
    retention_months: int = 24  # the privacy notice states it; bot/retention.py applies it
    similarity: int = THRESHOLD  # 0–100: comments grouped and cases flagged as near-duplicates (handlers/similar.py)


Handler = Callable[["Ctx"], Awaitable[None]]


def _no_wake(job: str) -> None:
    pass


async def _no_typing() -> None:
    pass


@dataclass
class Ctx:
    store: Store
    settings: Settings
    registry: Registry
    user: User
    inbound: Inbound
    now: datetime
    conversation: Conversation | None
    deep_links: Callable[[str], list[str]]
    capabilities: Capabilities = field(default_factory=Capabilities)
    fetch: Callable[[Media], Awaitable[bytes]] | None = None  # the bytes of a file the person sent
    wake: Callable[[str], None] = _no_wake  # run a scheduled job now: what the handler wrote is due
    # Show "typing…" while something slow (a chart, an export) is built, where the channel can (bot/outbound.py).
    typing: Callable[[], Awaitable[None]] = _no_typing
    args: tuple[str, ...] = ()
    left_flow: str | None = None  # the flow a command just interrupted
    role_changed: set[int] = field(default_factory=set)  # people whose command menu must change
    notices: list[Notice] = field(default_factory=list)
    kept_notices: list[tuple[Notice, int]] = field(default_factory=list)  # already in the outbox, with their ids
    forget: list[tuple[str, str]] = field(default_factory=list)  # (channel, chat): its person erased their data
    # Files `keep` put, by digest: put again once named, if a delete took them meanwhile (FileStore.restore).
    kept_files: dict[str, bytes] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    # What the steps of this one event read of data that does not change under them (a draft's text): read once.
    memo: dict[object, Any] = field(default_factory=dict)
    dirty: bool = False  # the conversation changed and must be saved

    @property
    def t(self) -> Texts:
        return _texts(speaks(self.user, self.inbound), self.user.role != "citizen")

    @property
    def data(self) -> dict[str, Any]:
        assert self.conversation is not None
        return self.conversation.data

    def say(self, text: str, options: tuple[tuple[Option, ...], ...] | list = (), *, edit: bool = False,
            document: Document | None = None, limit: int | None = None) -> None:
        rows = tuple(tuple(row) for row in options)
        self.replies.append(Reply(Safe(text), rows, edit, document, limit=limit))

    @property
    def choice(self) -> tuple[str, ...]:
        """The chosen option's arguments; empty for anything that is not a button press."""
        return self.args if self.inbound.kind == "choice" else ()

    async def wrong(self) -> None:
        """The answer fits none of the step's buttons: say so (an old button, or text instead of a
        button) and ask again."""
        await self.reask(self.stale_key if self.inbound.kind == "choice" else
                         "common.use_buttons" if self.capabilities.buttons else "common.use_numbers")

    @property
    def stale_key(self) -> str:
        """What to say of an option that is no longer offered: an old button, or a number not in the list."""
        return "common.stale_button" if self.capabilities.buttons else "common.stale_number"

    def row(self, key: str, *buttons: tuple[str, str]) -> tuple[Option, ...]:
        """A row of buttons of one step: (label key, argument) pairs."""
        return tuple(Option(self.t(label), cb(key, arg)) for label, arg in buttons)

    def notify(self, user_id: int, key: str, buttons: tuple[tuple[str, str], ...] = (), **values: object) -> None:
        """Tell someone else, after this event is handled (their language, their channel)."""
        self.notices.append(Notice(user_id, key, values, buttons))

    async def goto(self, flow: str, step: str, **data: Any) -> None:
        """Enter a step (keeping the draft, plus `data`) and ask its question."""
        draft = dict(self.conversation.data) if self.conversation and self.conversation.flow == flow else {}
        draft.update(data)
        self.conversation = Conversation(flow, step, draft)
        self.dirty = True
        await self.registry.steps[(flow, step)].prompt(self)

    async def reask(self, error_key: str, **values: object) -> None:
        """Say what is wrong with the answer, then ask the current step again."""
        self.say(self.t(error_key, **values))
        if self.conversation is not None:
            await self.registry.steps[(self.conversation.flow, self.conversation.step)].prompt(self)

    async def keep(self, media: Media, max_bytes: int, too_large: str, **values: object) -> tuple[str, int] | None:
        """Fetch a file the person sent and keep it (content-addressed): its sha256 and size. A photo is
        kept as `images.normalise` makes it (a JPEG without metadata). None when it is over `max_bytes`
        (`too_large` is said, with `values`), is a photo that does not decode, or the platform would not
        give it; the step was asked again."""
        if media.size is not None and media.size > max_bytes:
            await self.reask(too_large, **values)
            return None
        try:
            content = await self.fetch(media)
        except Exception:
            await self.reask("case.fetch_failed")
            return None
        if len(content) > max_bytes:
            await self.reask(too_large, **values)
            return None
        if media.kind == "photo" and not media.normalised:
            try:
                content = await images.normalised(content)
            except images.BadImage as bad:
                await self.reask(bad.key)
                return None
        digest = await self.store.files.put(content)
        self.kept_files[digest] = content
        return digest, len(content)

    def finish(self) -> None:
        self.conversation = None
        self.dirty = True

    def ended_in_storage(self) -> None:
        """The conversation was ended in storage by the very write that completed it (one transaction), so
        nothing is left for the router to save or clear."""
        self.conversation = None
        self.dirty = False

    async def refresh_user(self) -> None:
        self.user = await self.store.users.get(self.user.id)

    async def audit(self, action: str, target: str | None = None, **detail: object) -> None:
        await self.store.audit.record(self.user.id, action, target, self.now, **detail)

    def length(self, text: str) -> int:
        """The length of what a person wrote as their channel counts it (limits are checked in that unit)."""
        return units(text, self.capabilities.unit)

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.tz).strftime("%d/%m/%Y %H:%M")


_texts = cache(Texts)  # one per language and audience: `Ctx.t` is read a dozen times per event


def speaks(user: User, inbound: Inbound) -> str:
    """The person's language: the one kept once they accepted a purpose (or became staff); before that, the
    one their app reports, kept nowhere."""
    if user.consented or user.is_staff:
        return user.language
    return inbound.language if inbound.language in LANGUAGES else "vi"


# ---- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    prompt: Handler
    handle: Handler


@dataclass(frozen=True)
class Guarded:
    handler: Handler
    roles: frozenset[str]


ALL_ROLES = frozenset({"citizen", "cadre", "admin"})
STAFF = frozenset({"cadre", "admin"})
ADMIN = frozenset({"admin"})


class Registry:
    def __init__(self) -> None:
        self.commands: dict[str, Guarded] = {}  # every name and alias, once the features are declared
        self.actions: dict[str, Guarded] = {}
        self.steps: dict[tuple[str, str], Step] = {}
        self.flow_roles: dict[str, frozenset[str]] = {}
        self._handlers: dict[str, tuple[tuple[str, ...], Handler]] = {}

    def command(self, name: str, *aliases: str) -> Callable[[Handler], Handler]:
        """The handler of a command its feature declares (handlers/features.py), with who may run it."""

        def register(fn: Handler) -> Handler:
            assert name not in self._handlers, name
            self._handlers[name] = ((name, *aliases), fn)
            return fn

        return register

    def declare(self, roles: dict[str, frozenset[str]]) -> None:
        """Give each declared command its roles; a command without a handler, or a handler without a declaration,
        is a mistake caught at import."""
        missing, undeclared = set(roles) - set(self._handlers), set(self._handlers) - set(roles) - set(self.commands)
        assert not missing and not undeclared, f"declared without a handler: {missing}; undeclared: {undeclared}"
        for name, allowed_roles in roles.items():
            names, fn = self._handlers[name]
            for each in names:
                assert each not in self.commands, each
                self.commands[each] = Guarded(fn, allowed_roles)

    def action(self, key: str, roles: frozenset[str] = ALL_ROLES) -> Callable[[Handler], Handler]:
        """A button that works at any time, not only inside a flow (menus, toggles)."""

        def register(fn: Handler) -> Handler:
            assert key not in self.actions and _KEY.match(key), key
            self.actions[key] = Guarded(fn, roles)
            return fn

        return register

    def flow(self, name: str, roles: frozenset[str] = ALL_ROLES) -> None:
        self.flow_roles[name] = roles

    def step(self, flow: str, step: str, prompt: Handler) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            assert flow in self.flow_roles, f"declare flow {flow} first"
            self.steps[(flow, step)] = Step(prompt, fn)
            return fn

        return register


def step_key(flow: str, step: str) -> str:
    return f"{flow}.{step}"


def allowed(user: User, roles: frozenset[str]) -> bool:
    return user.role in roles


registry = Registry()
