"""The web chat: a channel like Telegram (each chat's recent messages, pushed to its open pages over
server-sent events) and the HTTP API a page talks to: sessions, CSRF, limits, uploads, files, and in
demo mode a persona switcher.

Everything a person typed is stored and sent back as plain text (the page never parses it as HTML);
the bot's messages are the catalogs' Telegram-style HTML with people's values already escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.channels.base import split_text
from bot.demo import content, personas
from bot.request_body import TooLarge, parse_json, read_capped
from handlers import images
from handlers.base import Capabilities, Document, Inbound, Media, Reply
from handlers.menu import commands_for
from messages import LANGUAGES, Texts, catalog

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # characters a person may send in one message
MAX_JSON = 16 * 1024  # bytes of a JSON request body
MAX_DEPTH = 20  # nesting of a JSON request body; the page sends flat objects
MAX_UPLOAD = images.MAX_BYTES  # bytes of a photo as sent: a phone's 8–12 MB photo is taken, and shrunk
UPLOADS_KEPT = timedelta(days=7)  # a photo sent in the web chat: handlers copied what they took
HISTORY = 200  # messages kept per chat
MAX_CHATS = 2000  # chats kept in memory; the least recently used without an open page go first
MAX_SESSIONS = 20000  # sessions kept in memory; an evicted one is reloaded from the database
STREAMS_PER_CHAT = 8
STREAM_BACKLOG = 500  # events waiting for a slow page; beyond that it reconnects and gets a fresh copy
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep the stream open
SESSION_BURST, SESSION_RATE = 30, 0.2  # new sessions per client address
COOKIE = "danvan_session"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
REF = re.compile(r"^[a-f0-9]{6}-\d{1,10}$")
UPLOAD_REF = re.compile(r"^([a-f0-9]{16})-[a-f0-9]{32}\.jpg$")  # <owner>-<random>.jpg
DOCUMENT_ID = re.compile(r"^d[a-f0-9]{24}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")  # the page's id of a message: a retried post is handled once
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


# ---- the channel ------------------------------------------------------------------------------------


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

    name = "web"

    def __init__(self, base_url: str, files_dir: Path, *, staff: bool) -> None:
        self.capabilities = Capabilities(buttons=True, edits=True, max_text=MAX_TEXT, html=True, staff=staff)
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
                message.update(html=pieces[0], options=options)
                self._publish(chat, message)
                return edit_ref
        ref = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message: dict[str, Any] = {"from": "bot", "html": piece, "options": options if last else []}
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


# ---- sessions and limits ----------------------------------------------------------------------------


class Bucket:
    """A token bucket: `capacity` at once, refilled at `rate` per second."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.clock = capacity, rate, clock
        self.tokens, self.stamp = float(capacity), clock()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Session:
    token: str
    chat_id: str  # the person's own chat, also their account id on channel "web"
    csrf: str
    expires_at: datetime
    touched_at: datetime
    bucket: Bucket
    persona: str | None = None  # demo only: the persona being played
    language: str = "vi"


class Refused(Exception):
    """An API request refused: the HTTP status, an error code, and the page's message key."""

    def __init__(self, status: int, code: str, retry_after: float | None = None, key: str | None = None,
                 **values: object) -> None:
        super().__init__(code)
        self.status, self.code, self.retry_after, self.values = status, code, retry_after, values
        self.key = key or f"web.{code}"  # the text said, when it is not the page's own


def _owner_dir(chat_id: str) -> str:
    return hashlib.sha256(chat_id.encode()).hexdigest()[:16]


@cache
def _static(name: str) -> bytes:
    return resources.files("bot").joinpath("static", name).read_bytes()


def _ui_texts(language: str) -> dict[str, str]:
    """The page's own words ([web] and [demo] of the catalog), as plain templates."""
    return {k: v for k, v in catalog(language).items() if k.startswith(("web.", "demo."))}


class WebChat:
    """The HTTP side of the web chat, on the App's router and store."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.channel: WebChannel = app.web
        self.demo = app.config.demo
        self.ttl = timedelta(days=app.config.web_session_days)
        self.personas = {p.key: p for p in personas()} if self.demo else {}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._addresses: OrderedDict[str, Bucket] = OrderedDict()
        self._pruned_at = 0.0
        self._pages: dict[str, str] = {}

    def routes(self) -> list[Route]:
        routes = [
            Route("/", self.page),
            Route("/static/chat.js", self.asset),
            Route("/static/chat.css", self.asset),
            Route("/api/session", self._api(self.session), methods=["POST"]),
            Route("/api/history", self._api(self.history)),
            Route("/api/events", self._api(self.events)),
            Route("/api/message", self._api(self.message), methods=["POST"]),
            Route("/api/upload", self._api(self.upload), methods=["POST"]),
            Route("/api/files/{name}", self._api(self.file)),
        ]
        if self.demo:  # in production there is no way to be anyone but an anonymous citizen
            routes.append(Route("/api/persona", self._api(self.persona), methods=["POST"]))
        return routes

    # -- the page

    async def page(self, request: Request) -> Response:
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        language = session.language if session else "vi"
        headers = {**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP}
        return Response(self._render(language), media_type="text/html; charset=utf-8", headers=headers)

    def _render(self, language: str) -> str:
        if language in self._pages:
            return self._pages[language]
        template = _static("chat.html").decode("utf-8")
        if not self.demo:
            template = re.sub(r"<!--demo-->.*?<!--/demo-->", "", template, flags=re.S)
        t = Texts(language)

        def fill(match: re.Match) -> str:
            key = match.group(1)
            if key == "lang":
                return t.language
            return html.escape(html.unescape(t(key, operator=self.app.config.operator_name)))

        self._pages[language] = re.sub(r"\{\{([a-z_.]+)\}\}", fill, template)
        return self._pages[language]

    async def asset(self, request: Request) -> Response:
        name = request.url.path.rsplit("/", 1)[1]
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_static(name), media_type=f"{media}; charset=utf-8",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    # -- the API

    def _api(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request)
            except Refused as refused:
                session = self._sessions.get(request.cookies.get(COOKIE, ""))
                t = Texts(session.language if session else "vi")
                body = {"error": refused.code, "message": html.unescape(t(refused.key, **refused.values))}
                headers = dict(SECURITY_HEADERS)
                if refused.retry_after is not None:
                    body["retry_after"] = round(refused.retry_after, 1)
                    headers["Retry-After"] = str(max(1, round(refused.retry_after)))
                return JSONResponse(body, status_code=refused.status, headers=headers)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return endpoint

    async def session(self, request: Request) -> Response:
        """Open or resume the browser's session; returns the CSRF token every POST must carry."""
        if request.headers.get("x-danvan") != "1":  # a custom header: a cross-site form cannot send it
            raise Refused(403, "forbidden")
        now = self.app.clock()
        token = request.cookies.get(COOKIE, "")
        session = self._sessions.get(token)
        if session is not None and session.expires_at <= now:
            self._sessions.pop(token, None)
            session = None
        if session is None and TOKEN.match(token):
            stored = await self.app.store.web_sessions.get(token, now)
            if stored is not None:
                session = self._remember(token, stored.chat_id, stored.expires_at, now)
        if session is None:
            wait = self._address_bucket(request).take()
            if wait:
                raise Refused(429, "rate_limited", wait)
            token, chat_id = secrets.token_urlsafe(32), "w" + secrets.token_hex(10)
            stored = await self.app.store.web_sessions.create(token, chat_id, now, self.ttl)
            session = self._remember(token, chat_id, stored.expires_at, now)
            await self._prune(now)
        await self._refresh_language(session)
        body = {
            "csrf": session.csrf,
            "mode": "demo" if self.demo else "production",
            "operator": self.app.config.operator_name,
            "language": session.language,
            "persona": session.persona or "me",
            "personas": ["me", *self.personas] if self.demo else [],
            "campaigns": _demo_campaigns() if self.demo else [],
            "limits": {"text": MAX_TEXT, "upload": MAX_UPLOAD},
            "texts": {language: _ui_texts(language) for language in LANGUAGES},
        }
        response = JSONResponse(body)
        response.set_cookie(COOKIE, token, max_age=int(self.ttl.total_seconds()), path="/", httponly=True,
                            samesite="strict",
                            secure=request.url.scheme == "https" or self.app.config.web_url.startswith("https://"))
        return response

    async def history(self, request: Request) -> Response:
        session = await self._auth(request, csrf=False)
        chat_id, user_id = self._current(session)
        user = await self.app.store.users.find("web", user_id)
        await self._refresh_language(session)
        t = Texts(session.language)
        commands = [{"command": c, "text": html.unescape(t(f"cmd.{c}"))}
                    for c in commands_for(user.role if user else "citizen")]
        return JSONResponse({"messages": self.channel.history(chat_id), "commands": commands,
                             "language": session.language, "persona": session.persona or "me"})

    async def events(self, request: Request) -> Response:
        session = await self._auth(request, csrf=False)
        chat_id, _ = self._current(session)
        return StreamingResponse(self.channel.stream(chat_id), media_type="text/event-stream",
                                 headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})

    async def message(self, request: Request) -> Response:
        """A text or a chosen option; answers with the messages it produced (the open pages also
        receive them as events)."""
        session = await self._auth(request)
        self._limit(session)
        data = await self._json(request)
        chat_id, user_id = self._current(session)
        text, choice = data.get("text"), data.get("choice")
        before = self.channel.seq(chat_id)
        if isinstance(text, str) and choice is None:
            if not text.strip():
                raise Refused(400, "bad_request")
            if len(text) > MAX_TEXT:
                raise Refused(413, "too_long", max=MAX_TEXT)
            self.channel.record(chat_id, text=text)
            inbound = _text_inbound(chat_id, user_id, text)
        elif isinstance(choice, str) and text is None and 0 < len(choice.encode()) <= 64:
            ref = data.get("ref")
            inbound = Inbound("web", chat_id, user_id, "choice", payload=choice,
                              message_ref=ref if isinstance(ref, str) and REF.match(ref) else None)
        else:
            raise Refused(400, "bad_request")
        given = data.get("id")
        return await self._handle(session, inbound, before, given if isinstance(given, str) and MESSAGE_ID.match(given)
                                  else None)

    async def upload(self, request: Request) -> Response:
        """A photo, as the raw body (JPEG, PNG or WebP), kept only as `images.normalise` makes it: even the
        copy shown back in the chat has no GPS in it."""
        session = await self._auth(request)
        self._limit(session)
        body = await self._body(request, MAX_UPLOAD, "photo_too_large", max=MAX_UPLOAD // (1024 * 1024))
        try:
            photo = await images.normalised(body)
        except images.BadImage as bad:
            raise Refused(422, "bad_image", key=bad.key) from None
        chat_id, user_id = self._current(session)
        ref = await self.channel.save_upload(chat_id, photo)
        before = self.channel.seq(chat_id)
        self.channel.record(chat_id, photo=f"/api/files/{ref}")
        inbound = Inbound("web", chat_id, user_id, "media",
                          media=Media("photo", ref, len(photo), images.MIME, normalised=True))
        return await self._handle(session, inbound, before)

    async def file(self, request: Request) -> Response:
        """A document the bot sent or a photo the person uploaded, only to a session that can open
        the chat it belongs to."""
        session = await self._auth(request, csrf=False)
        name = request.path_params["name"]
        chats = [session.chat_id, *(p.external_id for p in self.personas.values())]
        if DOCUMENT_ID.match(name):
            for chat_id in chats:
                document = self.channel.document(chat_id, name)
                if document is not None:
                    disposition = "attachment; filename*=UTF-8''" + quote(document.filename, safe="")
                    return Response(document.content, media_type=document.mime,
                                    headers={"Content-Disposition": disposition})
        elif UPLOAD_REF.match(name):
            for chat_id in chats:
                content = await self.channel.upload(chat_id, name)
                if content is not None:
                    return Response(content, media_type=images.MIME,
                                    headers={"Cache-Control": "private, max-age=86400"})
        raise Refused(404, "not_found")

    async def persona(self, request: Request) -> Response:
        """Demo only: play another persona (or yourself again); each has its own chat."""
        session = await self._auth(request)
        self._limit(session)
        key = (await self._json(request)).get("persona")
        if key != "me" and key not in self.personas:
            raise Refused(400, "bad_request")
        session.persona = None if key == "me" else key
        await self._refresh_language(session)
        return JSONResponse({"ok": True, "persona": key, "language": session.language})

    # -- helpers

    async def _handle(self, session: Session, inbound: Inbound, before: int, message_id: str | None = None) -> Response:
        # Journalled like every channel's updates; the page's own id (per chat) makes a retried post a no-op.
        update_id = f"{inbound.chat_id}:{message_id or secrets.token_hex(12)}"
        try:
            await self.app.intake.handle("web", update_id, inbound)
        except Exception:  # not journalled; the person was told so, in the chat (bot/intake.py)
            log.exception("a web chat message could not be taken")
        await self._refresh_language(session)
        return JSONResponse({"ok": True, "language": session.language,
                             "messages": self.channel.history(inbound.chat_id, before)})

    async def _auth(self, request: Request, *, csrf: bool = True) -> Session:
        now = self.app.clock()
        token = request.cookies.get(COOKIE, "")
        session = self._sessions.get(token)
        if session is None or session.expires_at <= now:
            self._sessions.pop(token, None)
            raise Refused(401, "session_expired")
        if csrf and not hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(),
                                            session.csrf.encode()):
            raise Refused(403, "forbidden")
        self._sessions.move_to_end(token)
        if now - session.touched_at > timedelta(days=1):
            await self.app.store.web_sessions.touch(token, now, self.ttl)
            session.touched_at, session.expires_at = now, now + self.ttl
        return session

    def _remember(self, token: str, chat_id: str, expires_at: datetime, now: datetime) -> Session:
        session = Session(token, chat_id, secrets.token_urlsafe(24), expires_at, now,
                          Bucket(self.app.config.web_burst, self.app.config.web_rate))
        self._sessions[token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def _current(self, session: Session) -> tuple[str, str]:
        """(chat id, account id) of whoever the session is playing."""
        if session.persona is not None:
            persona = self.personas[session.persona]
            return persona.external_id, persona.external_id
        return session.chat_id, session.chat_id

    def _limit(self, session: Session) -> None:
        wait = session.bucket.take()
        if wait:
            raise Refused(429, "rate_limited", wait)

    def _address_bucket(self, request: Request) -> Bucket:
        address = request.client.host if request.client else "?"
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = self._addresses[address] = Bucket(SESSION_BURST, SESSION_RATE)
            while len(self._addresses) > MAX_SESSIONS:
                self._addresses.popitem(last=False)
        return bucket

    async def _prune(self, now: datetime) -> None:
        if time.monotonic() - self._pruned_at > 3600:
            self._pruned_at = time.monotonic()
            await self.app.store.web_sessions.delete_expired(now)
            await self.channel.prune_uploads(UPLOADS_KEPT)

    async def _refresh_language(self, session: Session) -> None:
        _, user_id = self._current(session)
        user = await self.app.store.users.find("web", user_id)
        session.language = user.language if user else "vi"

    async def _body(self, request: Request, limit: int, code: str, **values: object) -> bytes:
        try:
            return await read_capped(request, limit)
        except TooLarge:
            raise Refused(413, code, **values) from None

    async def _json(self, request: Request) -> dict:
        body = await self._body(request, MAX_JSON, "too_large", max=MAX_JSON // 1024)
        try:
            data = parse_json(body, MAX_DEPTH)
        except ValueError:  # UnicodeDecodeError too
            raise Refused(400, "bad_request") from None
        if not isinstance(data, dict):
            raise Refused(400, "bad_request")
        return data


def _text_inbound(chat_id: str, user_id: str, text: str) -> Inbound:
    return Inbound("web", chat_id, user_id, "text", text=text)  # a "/command" is parsed by bot/render.py


def _demo_campaigns() -> list[dict]:
    return [{"code": c["code"], "title": {"vi": c["title_vi"], "en": c["title_en"]}} for c in content()["campaigns"]]


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
