"""The web chat's channel: each chat's recent messages, kept in the database (a restart does not wipe them) and
pushed to its open pages over server-sent events, and the files people uploaded or the bot sent (storage/web_files.py:
on disk beside SQLite, in the database on PostgreSQL). Transport only, like every channel; the HTTP API a page talks
to (sessions, CSRF, limits, the page itself) is bot/webchat.py.

Several workers on one PostgreSQL (`signals` given): a chat's versions are taken in the database, and a worker
holding a chat's open pages pushes them what the database has that they have not had, whenever a change is
signalled (storage/web_messages.py), whichever worker made it.

Everything a person typed is stored and sent back as plain text (the page never parses it as HTML). The
bot's messages are the catalogs' Telegram-style HTML with people's values already escaped, or, on the text-only
view (a channel without HTML, as on Zalo), plain text that the page shows as text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import sqlite3
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.channels.base import split_text
from handlers.base import Capabilities, Document, Media, Reply
from storage.clock import iso
from storage.notify import WEB, WEB_MENU, LocalSignals
from storage.web_files import WebFileRepo, WebFolder, owner_of
from storage.web_messages import WebMessageRepo

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # characters a person may send in one message, and the bot's longest message on the page
TEXT_ONLY = Capabilities(buttons=False, edits=False, max_text=2000, html=False)  # as on Zalo (DESIGN.md §10)
HISTORY = 200  # messages kept per chat
MAX_CHATS = 2000  # chats whose open pages and version are kept in memory; the idle ones are reloaded
STREAMS_PER_CHAT = 8
STREAM_BACKLOG = 500  # events waiting for a slow page; beyond that it reconnects and gets a fresh copy
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep the stream open
# <owner>-<random>.<extension>: a photo (always JPEG once normalised), a voice note or a document
UPLOAD_REF = re.compile(r"^([a-f0-9]{16})-[a-f0-9]{32}\.(jpg|webm|ogg|m4a|mp3|pdf|docx|xlsx)$")
DOCUMENT_REF = re.compile(r"^d[a-f0-9]{24}$")  # a file the bot sent, kept beside the chat's uploads


class _Stream:
    """One open page of a chat: the events it has not read yet."""

    def __init__(self) -> None:
        self.events: deque[dict] = deque()
        self.ready = asyncio.Event()
        self.ended = False

    def push(self, event: dict) -> None:
        if len(self.events) >= STREAM_BACKLOG:
            self.end()
            return
        self.events.append(event)
        self.ready.set()

    def end(self) -> None:
        self.ended = True
        self.ready.set()


@dataclass
class _Chat:
    # The chat's latest version: each new or edited message takes the next. Several workers: the latest version
    # pushed to the pages open here.
    seq: int
    streams: list[_Stream] = field(default_factory=list)
    behind: bool = False  # several workers: a change was signalled that the reader has not read yet
    reader: asyncio.Task | None = None


def _frame(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


class WebChannel:
    """Keeps each chat's last messages in the database and pushes every new or edited one to the chat's
    open pages."""

    def __init__(self, base_url: str, files: WebFolder | WebFileRepo, messages: WebMessageRepo,
                 clock: Callable[[], datetime], *, staff: bool, text_only: bool = False,
                 signals: LocalSignals | None = None) -> None:
        # The text-only view ("webtext", demo only) is a channel of its own: its people, their conversations and
        # the options shown to them as numbers are kept apart from the web chat's, as a Zalo chat's would be.
        self.name = "webtext" if text_only else "web"
        self.capabilities = replace(TEXT_ONLY if text_only else Capabilities(max_text=MAX_TEXT), staff=staff)
        self.base_url = base_url
        self.files = files  # photos people uploaded and files the bot sent, in a place of each chat's own
        self.messages, self.clock = messages, clock
        self.closed = False
        self._chats: OrderedDict[str, _Chat] = OrderedDict()
        self._boot = secrets.token_hex(3)  # message ids stay unique across restarts (and workers)
        self._ids = 0
        self.signals = signals
        if signals is not None:
            signals.listen(WEB, self._signalled)
            signals.listen(WEB_MENU, self._menu_signalled)

    # -- the Channel protocol

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        chat = await self._chat(chat_id)
        pieces = split_text(reply.text, self.capabilities.max_text)
        options = [[_option(o) for o in row] for row in reply.options]
        attached = reply.document is not None or reply.photo is not None
        if edit_ref is not None and len(pieces) == 1 and not attached:
            message = await self.messages.get(self.name, chat_id, edit_ref)
            if message is not None and message["from"] == "bot" and not message.get("files"):
                message.update({self._body: pieces[0], "options": options})
                message.pop("chosen", None)  # a keyboard the answer replaced is live again
                if await self._publish(chat_id, chat, message, new=False):
                    return edit_ref
        # An edit of a message the history no longer holds (newer ones pushed it out, now or meanwhile) reaches no
        # page as an edit: it comes as a new message, as the answer would where edits are not possible.
        ref = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message: dict[str, Any] = {"from": "bot", self._body: piece, "options": options if last else []}
            if last and reply.limit:
                message["limit"] = reply.limit  # the page counts the answer against it
            if last:
                for kind, file in (("photo", reply.photo), ("document", reply.document)):
                    if file is not None:
                        message[kind] = await self._keep(chat_id, file)
                        message.setdefault("files", []).append(message[kind]["id"])
            ref = await self._append(chat_id, chat, message)
        return ref

    async def set_commands(self, chat_id: str | None, language: str | None,
                           commands: list[tuple[str, str]]) -> None:
        """The page asks for a chat's commands when it opens; a change (a new role, another language)
        is pushed to the chat's open pages, on whichever worker they are."""
        if chat_id is None:
            return
        event = {"type": "commands", "language": language,
                 "commands": [{"command": c, "text": d} for c, d in commands]}
        if self.signals is not None:
            await self.signals.notify(WEB_MENU, json.dumps({"channel": self.name, "chat": chat_id, "event": event},
                                                           ensure_ascii=False))
        elif chat_id in self._chats:  # else no page open since the server started
            self._push(self._chats[chat_id], event)

    async def fetch(self, media: Media) -> bytes:
        """The bytes of a photo a person uploaded (handlers keep what they need in their own store)."""
        match = UPLOAD_REF.match(media.ref)
        if match is None:
            raise ValueError("not a web upload")
        content = await self.files.get(match.group(1), media.ref)
        if content is None:
            raise FileNotFoundError(media.ref)
        return content

    def deep_link(self, payload: str) -> str | None:
        # Cadre invites are refused where staff may not act, so the link is not offered there.
        if payload.startswith("i_") and not self.capabilities.staff:
            return None
        if self.name != "web":  # the web chat's link opens the page in whichever view the browser is in
            return None
        return f"{self.base_url}/?start={payload}"

    # -- what the HTTP API uses

    async def record(self, chat_id: str, **sent: Any) -> dict:
        """What the person sent, kept in the chat's history: `text` (plain text), or a `photo`, `voice` or `document`
        (its link, and a document its name) or a `location`."""
        message: dict[str, Any] = {"from": "me", **sent}
        await self._append(chat_id, await self._chat(chat_id), message)
        return message

    async def choose(self, chat_id: str, message_id: str, data: str) -> None:
        """Mark the button a person pressed, so the page shows it as used (an edit by the answer unmarks it)."""
        message = await self.messages.get(self.name, chat_id, message_id)
        if message is None or not any(o.get("data") == data for row in message.get("options", []) for o in row):
            return
        message["chosen"] = data
        await self._publish(chat_id, await self._chat(chat_id), message, new=False)  # gone meanwhile: nothing to mark

    async def save_upload(self, chat_id: str, content: bytes, extension: str = "jpg") -> str:
        """Keep a file a person sent (a photo as a normalised JPEG); returns its reference (the Media ref and the
        file's name)."""
        owner = owner_of(chat_id)
        ref = f"{owner}-{secrets.token_hex(16)}.{extension}"
        await self.files.put(owner, ref, content)
        return ref

    async def forget(self, chat_id: str) -> None:
        """The person erased their data: the erasure's transaction took their history (`web_messages`); the
        files they uploaded go now. Open pages stay connected; what is sent next starts a new history."""
        await self.files.forget(owner_of(chat_id))
        if self.signals is not None:  # the chat's versions start again: every worker's pages must follow
            await self.signals.notify(WEB, f"{self.name} 0 {chat_id}")

    async def prune_uploads(self, older_than: timedelta) -> int:
        """Delete the photos people uploaded longer ago than `older_than`: the handlers kept what they took
        in their own file store, and only the chat history's links still point here. How many went."""
        return await self.files.prune(older_than)

    async def upload(self, chat_id: str, ref: str) -> bytes | None:
        """A file the person of `chat_id` sent, and only theirs, while their history shows it (not after an
        erasure)."""
        match = UPLOAD_REF.match(ref)
        if match is None or match.group(1) != owner_of(chat_id):
            return None
        if not await self.messages.mentions(self.name, chat_id, ref):
            return None
        return await self.files.get(match.group(1), ref)

    async def seq(self, chat_id: str) -> int:
        if self.signals is not None:  # another worker may have added to the chat since
            return await self.messages.version(self.name, chat_id)
        return (await self._chat(chat_id)).seq

    async def history(self, chat_id: str, after: int = 0) -> list[dict]:
        """The chat's messages added or edited after version `after`."""
        return await self.messages.since(self.name, chat_id, after)

    async def document(self, chat_id: str, file_id: str) -> Document | None:
        """A file the bot sent to `chat_id` (its name and type are in the message that carried it)."""
        if not DOCUMENT_REF.match(file_id):
            return None
        content = await self.files.get(owner_of(chat_id), file_id)
        if content is None:
            return None
        for message in reversed(await self.history(chat_id)):
            for kind in ("photo", "document"):
                if message.get(kind, {}).get("id") == file_id:
                    return Document(message[kind]["name"], content, message[kind]["mime"])
        return None

    async def stream(self, chat_id: str) -> AsyncIterator[str]:
        """Server-sent events for one open page: the chat's history first, then every change."""
        chat = await self._chat(chat_id)
        stream = _Stream()
        chat.streams.append(stream)
        if len(chat.streams) > STREAMS_PER_CHAT:
            chat.streams.pop(0).end()
        try:
            # Read after subscribing, so nothing is missed; a message in both is shown once (the page keeps the
            # newest version of each).
            snapshot = await self.history(chat_id)
            if self.signals is not None and chat.streams == [stream]:
                # The first page open here: what it is sent next follows its snapshot (a change committed since is
                # signalled, and read from here).
                chat.seq = max(chat.seq, *(m["v"] for m in snapshot), 0)
            yield "retry: 2000\n\n"
            yield _frame({"type": "reset"})
            for message in snapshot:
                yield _frame(message)
            while not (stream.ended or self.closed):
                try:
                    await asyncio.wait_for(stream.ready.wait(), KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                stream.ready.clear()
                while stream.events and not self.closed:
                    yield _frame(stream.events.popleft())
        finally:
            if stream in chat.streams:
                chat.streams.remove(stream)

    def close(self) -> None:
        """End every open stream (the server is stopping)."""
        self.closed = True
        for chat in self._chats.values():
            for stream in chat.streams:
                stream.end()

    # -- internals

    @property
    def _body(self) -> str:
        """The key of a bot message's text: "html" for the page to copy through its whitelist, or "text" (a channel
        without HTML) for it to show as text."""
        return "html" if self.capabilities.html else "text"

    async def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            seq = await self.messages.version(self.name, chat_id)
            chat = self._chats.get(chat_id)  # another coroutine may have loaded it meanwhile
            if chat is not None:
                return chat
            chat = self._chats[chat_id] = _Chat(seq)
            if len(self._chats) > MAX_CHATS:
                idle = next((key for key, c in self._chats.items() if not c.streams and key != chat_id), None)
                if idle is not None:
                    del self._chats[idle]
        else:
            self._chats.move_to_end(chat_id)
        return chat

    async def _keep(self, chat_id: str, file: Document) -> dict:
        """Keep a file the bot sent beside the chat's uploads (and pruned with them): the history names it by its
        id."""
        file_id = "d" + secrets.token_hex(12)
        await self.files.put(owner_of(chat_id), file_id, file.content)
        return {"id": file_id, "name": file.filename, "size": len(file.content), "mime": file.mime,
                "url": f"/api/files/{file_id}"}

    async def _append(self, chat_id: str, chat: _Chat, message: dict) -> str:
        self._ids += 1
        message.update({"type": "message", "id": f"{self._boot}-{self._ids}", "at": iso(self.clock())})
        await self._publish(chat_id, chat, message, new=True)
        return message["id"]

    async def _publish(self, chat_id: str, chat: _Chat, message: dict, *, new: bool) -> bool:
        """Keep a new or edited message in the history and push it to the chat's open pages. A database that cannot
        take it (full, locked by another process too long) costs only its surviving a restart, never the message
        itself: one process pushes it all the same; several workers push it to this worker's pages all the same.
        False: an edit of a message the history no longer holds, pushed nowhere."""
        if self.signals is None:
            chat.seq += 1
            message["v"] = chat.seq
            if new:
                self._push(chat, message)
            keep = self.messages.add(self.name, chat_id, message, self.clock(), HISTORY) if new else \
                self.messages.update(self.name, chat_id, message)
        else:  # the version comes from the database, then the pages here read what they have not had
            keep = self.messages.append(self.name, chat_id, message, self.clock(), HISTORY) if new else \
                self.messages.revise(self.name, chat_id, message)
        try:
            kept = await keep
        except (sqlite3.Error, OSError):
            log.warning("a web chat message could not be kept in the history", exc_info=True)
            if self.signals is not None:  # this worker's pages have it still; the others' cannot
                self._push(chat, {**message, "v": chat.seq + 1})
            elif not new:
                self._push(chat, message)
            return True
        if kept is False:
            return False
        if self.signals is not None:
            self._follow(chat_id, chat, message["v"])
        elif not new:
            self._push(chat, message)
        return True

    def _signalled(self, payload: str | None) -> None:
        """Another worker (or this one) changed a chat's history ("<channel> <version> <chat id>"), or None: the
        signals may have been missed, so every chat open here reads what it has not had."""
        if payload is None:
            for chat_id, chat in self._chats.items():
                self._follow(chat_id, chat, None)
            return
        name, version, chat_id = payload.split(" ", 2)
        chat = self._chats.get(chat_id) if name == self.name else None
        if chat is not None:
            self._follow(chat_id, chat, int(version))

    def _menu_signalled(self, payload: str | None) -> None:
        """A chat's commands changed on some worker: its pages open here get them."""
        signal = json.loads(payload) if payload is not None else None
        if signal is not None and signal["channel"] == self.name and signal["chat"] in self._chats:
            self._push(self._chats[signal["chat"]], signal["event"])

    def _follow(self, chat_id: str, chat: _Chat, version: int | None) -> None:
        """Read from the database what the chat's pages here have not had, up to `version` at least (0: the history
        was erased, its versions start again); one reader per chat at a time."""
        if version == 0:
            chat.seq = 0
        elif version is not None and version <= chat.seq:
            return
        if not chat.streams:  # nobody to push to: the next page opened here starts from its snapshot
            return
        chat.behind = True
        if chat.reader is None or chat.reader.done():
            chat.reader = asyncio.create_task(self._read(chat_id, chat))

    async def _read(self, chat_id: str, chat: _Chat) -> None:
        while chat.behind and chat.streams:
            chat.behind = False
            try:
                changed = await self.messages.since(self.name, chat_id, chat.seq)
            except (sqlite3.Error, OSError):  # the next change tries again
                log.warning("a web chat's history could not be read for its open pages", exc_info=True)
                return
            for message in changed:
                chat.seq = max(chat.seq, message["v"])
                self._push(chat, message)

    @staticmethod
    def _push(chat: _Chat, event: dict) -> None:
        for stream in chat.streams:
            stream.push(event)


def _option(option) -> dict:
    if option.url:
        return {"label": option.label, "url": option.url}
    return {"label": option.label, "data": option.data}


