"""The web chat's channel: each chat's recent messages, kept in memory and pushed to its open pages over
server-sent events, and the photos people uploaded. Transport only, like every channel; the HTTP API a page
talks to (sessions, CSRF, limits, the page itself) is bot/webchat.py.

Everything a person typed is stored and sent back as plain text (the page never parses it as HTML). The
bot's messages are the catalogs' Telegram-style HTML with people's values already escaped, or, on the text-only
view (a channel without HTML, as on Zalo), plain text that the page shows as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import shutil
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.channels.base import split_text
from handlers.base import Capabilities, Document, Media, Reply

MAX_TEXT = 4096  # characters a person may send in one message, and the bot's longest message on the page
TEXT_ONLY = Capabilities(buttons=False, edits=False, max_text=2000, html=False)  # as on Zalo (DESIGN.md §10)
HISTORY = 200  # messages kept per chat
MAX_CHATS = 2000  # chats kept in memory; the least recently used without an open page go first
STREAMS_PER_CHAT = 8
STREAM_BACKLOG = 500  # events waiting for a slow page; beyond that it reconnects and gets a fresh copy
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep the stream open
UPLOAD_REF = re.compile(r"^([a-f0-9]{16})-[a-f0-9]{32}\.jpg$")  # <owner>-<random>.jpg


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
    messages: OrderedDict[str, dict] = field(default_factory=OrderedDict)
    documents: dict[str, Document] = field(default_factory=dict)
    streams: list[_Stream] = field(default_factory=list)
    seq: int = 0


def _frame(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


class WebChannel:
    """Keeps each chat's last messages in memory and pushes every new or edited one to the chat's
    open pages. A restart empties the histories; people, their settings and their conversation
    state are in the database."""

    def __init__(self, base_url: str, files_dir: Path, *, staff: bool, text_only: bool = False) -> None:
        # The text-only view ("webtext", demo only) is a channel of its own: its people, their conversations and
        # the options shown to them as numbers are kept apart from the web chat's, as a Zalo chat's would be.
        self.name = "webtext" if text_only else "web"
        self.capabilities = replace(TEXT_ONLY if text_only else Capabilities(max_text=MAX_TEXT), staff=staff)
        self.base_url = base_url
        self.files_dir = files_dir  # photos people uploaded, one folder per chat
        self.closed = False
        self._chats: OrderedDict[str, _Chat] = OrderedDict()
        self._boot = secrets.token_hex(3)  # message ids stay unique across restarts
        self._ids = 0

    # -- the Channel protocol

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        chat = self._chat(chat_id)
        pieces = split_text(reply.text, self.capabilities.max_text)
        options = [[_option(o) for o in row] for row in reply.options]
        attached = reply.document is not None or reply.photo is not None
        if edit_ref in chat.messages and len(pieces) == 1 and not attached:
            message = chat.messages[edit_ref]
            if message["from"] == "bot" and not message.get("files"):
                message.update({self._body: pieces[0], "options": options})
                self._publish(chat, message)
                return edit_ref
        ref = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message: dict[str, Any] = {"from": "bot", self._body: piece, "options": options if last else []}
            if last:
                for kind, file in (("photo", reply.photo), ("document", reply.document)):
                    if file is not None:
                        message[kind] = self._keep(chat, file)
                        message.setdefault("files", []).append(message[kind]["id"])
            ref = self._append(chat, message)
        return ref

    async def set_commands(self, chat_id: str | None, language: str, commands: list[tuple[str, str]]) -> None:
        """The page asks for a chat's commands when it opens; a change (a new role, another language)
        is pushed to the chat's open pages."""
        if chat_id is None or chat_id not in self._chats:
            return
        self._push(self._chats[chat_id], {"type": "commands", "language": language,
                                          "commands": [{"command": c, "text": d} for c, d in commands]})

    async def fetch(self, media: Media) -> bytes:
        """The bytes of a photo a person uploaded (handlers keep what they need in their own store)."""
        match = UPLOAD_REF.match(media.ref)
        if match is None:
            raise ValueError("not a web upload")
        content = await asyncio.to_thread(_read, self.files_dir / match.group(1) / media.ref)
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

    def record(self, chat_id: str, *, text: str | None = None, photo: str | None = None) -> dict:
        """What the person sent, kept as plain text (or a link to their photo) in the chat's history."""
        message: dict[str, Any] = {"from": "me"}
        if text is not None:
            message["text"] = text
        if photo is not None:
            message["photo"] = {"url": photo}
        chat = self._chat(chat_id)
        self._append(chat, message)
        return message

    async def save_upload(self, chat_id: str, content: bytes) -> str:
        """Keep a photo a person sent (a normalised JPEG); returns its reference (the Media ref and the file's
        name)."""
        owner = _owner_dir(chat_id)
        ref = f"{owner}-{secrets.token_hex(16)}.jpg"
        await asyncio.to_thread(_write, self.files_dir / owner / ref, content)
        return ref

    async def forget(self, chat_id: str) -> None:
        """Drop the chat's history and the photos its person uploaded: they erased their data. Open pages stay
        connected; what is sent next starts a new history."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.messages.clear()
            chat.documents.clear()
        await asyncio.to_thread(shutil.rmtree, self.files_dir / _owner_dir(chat_id), True)

    async def prune_uploads(self, older_than: timedelta) -> int:
        """Delete the photos people uploaded longer ago than `older_than`: the handlers kept what they took
        in their own file store, and only the chat history's links still point here. How many went."""
        return await asyncio.to_thread(_prune_files, self.files_dir, time.time() - older_than.total_seconds())

    async def upload(self, chat_id: str, ref: str) -> bytes | None:
        """A photo the person of `chat_id` sent, and only theirs."""
        match = UPLOAD_REF.match(ref)
        if match is None or match.group(1) != _owner_dir(chat_id):
            return None
        return await asyncio.to_thread(_read, self.files_dir / match.group(1) / ref)

    def seq(self, chat_id: str) -> int:
        chat = self._chats.get(chat_id)
        return chat.seq if chat else 0

    def history(self, chat_id: str, after: int = 0) -> list[dict]:
        chat = self._chats.get(chat_id)
        return [m for m in chat.messages.values() if m["v"] > after] if chat else []

    def document(self, chat_id: str, file_id: str) -> Document | None:
        chat = self._chats.get(chat_id)
        return chat.documents.get(file_id) if chat else None

    async def stream(self, chat_id: str) -> AsyncIterator[str]:
        """Server-sent events for one open page: the chat's history first, then every change."""
        chat = self._chat(chat_id)
        stream = _Stream()
        chat.streams.append(stream)
        if len(chat.streams) > STREAMS_PER_CHAT:
            chat.streams.pop(0).end()
        snapshot = list(chat.messages.values())  # taken with no await since subscribing: nothing is missed
        try:
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

    def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat()
            if len(self._chats) > MAX_CHATS:
                idle = next((key for key, c in self._chats.items() if not c.streams and key != chat_id), None)
                if idle is not None:
                    del self._chats[idle]
        else:
            self._chats.move_to_end(chat_id)
        return chat

    @staticmethod
    def _keep(chat: _Chat, file: Document) -> dict:
        file_id = "d" + secrets.token_hex(12)
        chat.documents[file_id] = file
        return {"id": file_id, "name": file.filename, "size": len(file.content), "mime": file.mime,
                "url": f"/api/files/{file_id}"}

    def _append(self, chat: _Chat, message: dict) -> str:
        self._ids += 1
        message["type"] = "message"
        message["id"] = f"{self._boot}-{self._ids}"
        chat.messages[message["id"]] = message
        while len(chat.messages) > HISTORY:
            _, old = chat.messages.popitem(last=False)
            for file_id in old.get("files", []):
                chat.documents.pop(file_id, None)
        self._publish(chat, message)
        return message["id"]

    def _publish(self, chat: _Chat, message: dict) -> None:
        chat.seq += 1
        message["v"] = chat.seq
        self._push(chat, message)

    @staticmethod
    def _push(chat: _Chat, event: dict) -> None:
        for stream in chat.streams:
            stream.push(event)


def _option(option) -> dict:
    if option.url:
        return {"label": option.label, "url": option.url}
    return {"label": option.label, "data": option.data}


def _owner_dir(chat_id: str) -> str:
    return hashlib.sha256(chat_id.encode()).hexdigest()[:16]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _prune_files(folder: Path, before: float) -> int:
    removed = 0
    for path in folder.glob("*/*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    for owner in folder.glob("*"):
        with contextlib.suppress(OSError):  # only the folders left empty
            owner.rmdir()
    return removed


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
