"""The web chat's HTTP API, apart from its channel (bot/channels/web.py): the page, sessions and CSRF, rate limits,
uploads, files, and in demo mode a persona switcher and the text-only view ("Xem như trên Zalo"). It is given the
services it uses — the store, the intake's `handle`, the channels, its settings and the clock — not the App.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.channels.web import MAX_TEXT, UPLOAD_REF, WebChannel
from bot.demo import content, personas
from bot.request_body import TooLarge, parse_json, read_capped
from handlers import images
from handlers.base import Inbound, Media
from handlers.features import commands_for
from messages import LANGUAGES, Texts, catalog
from storage import Store
from storage.web_sessions import hash_token

if TYPE_CHECKING:
    from storage.send_gate import SendGateRepo

log = logging.getLogger(__name__)

MAX_JSON = 16 * 1024  # bytes of a JSON request body
MAX_DEPTH = 20  # nesting of a JSON request body; the page sends flat objects
MAX_UPLOAD = images.MAX_BYTES  # bytes of a photo as sent: a phone's 8–12 MB photo is taken, and shrunk
# What the page may send besides photos, as the case flow takes them on Telegram: a voice note recorded in the
# browser (MediaRecorder) or a document; each up to MAX_UPLOAD, as the flow's own caps.
ATTACHMENTS = {
    "audio/webm": ("voice", "webm"), "audio/ogg": ("voice", "ogg"), "audio/mp4": ("voice", "m4a"),
    "audio/mpeg": ("voice", "mp3"), "application/pdf": ("document", "pdf"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("document", "docx"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", "xlsx"),
}
MIME_OF = {extension: mime for mime, (_, extension) in ATTACHMENTS.items()} | {"jpg": images.MIME}
MAX_SESSIONS = 20000  # sessions kept in memory; an evicted one is reloaded from the database
SESSION_BURST, SESSION_RATE = 30, 0.2  # new sessions per client address
COOKIE = "danvan_session"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
REF = re.compile(r"^[a-f0-9]{6}-\d{1,10}$")
DOCUMENT_ID = re.compile(r"^d[a-f0-9]{24}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")  # the page's id of a message: a retried post is handled once
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


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
    chat_id: str  # the person's own chat, also their account id, on the web chat and on its text-only view
    csrf: str
    expires_at: datetime
    touched_at: datetime
    bucket: Bucket
    persona: str | None = None  # demo only: the persona being played
    view: str = "web"  # demo only: the channel the page shows, "web" or the text-only "webtext"
    language: str = "vi"


class Refused(Exception):
    """An API request refused: the HTTP status, an error code, and the page's message key."""

    def __init__(self, status: int, code: str, retry_after: float | None = None, key: str | None = None,
                 **values: object) -> None:
        super().__init__(code)
        self.status, self.code, self.retry_after, self.values = status, code, retry_after, values
        self.key = key or f"web.{code}"  # the text said, when it is not the page's own


@cache
def _static(name: str) -> bytes:
    return resources.files("bot").joinpath("static", name).read_bytes()


def _ui_texts(language: str) -> dict[str, str]:
    """The page's own words ([web] and [demo] of the catalog), as plain templates."""
    return {k: v for k, v in catalog(language).items() if k.startswith(("web.", "demo."))}


@dataclass(frozen=True)
class WebSettings:
    demo: bool
    operator: str  # who runs the bot, in the page's title
    session_days: int
    burst: float  # messages a session may send at once…
    rate: float  # …and per second after that
    https: bool  # the public address is https: the cookie is sent only over it
    # Several workers share the database (PostgreSQL): a session opened on one is answered by any, as a load balancer
    # sends each request where it likes. One process (SQLite) knows its sessions; after a restart the page opens its
    # session again.
    shared: bool = False


Handle = Callable[[str, str, Inbound], Awaitable[None]]  # Intake.handle: journal an event, handle it, return


class WebChat:
    """The HTTP side of the web chat. `channels`: the web chat's channel first, then (demo only) its text-only
    view; a session talks to one of them at a time."""

    def __init__(self, store: Store, handle: Handle, channels: list[WebChannel], settings: WebSettings,
                 clock: Callable[[], datetime], buckets: SendGateRepo | None = None,
                 keyed: Callable[[str], str] | None = None) -> None:
        self.store, self.handle, self.settings, self.clock = store, handle, settings, clock
        # Several workers (PostgreSQL): the limits are kept in the database, else a client sending to each worker in
        # turn would have each worker's. One process keeps them in memory. A client's address is kept there only as
        # `keyed` makes it (bot/file_links.py): a plain hash of an IPv4 address is undone by hashing them all.
        self.buckets = buckets
        self.keyed = keyed
        self.channels = {channel.name: channel for channel in channels}
        self.demo = settings.demo
        self.ttl = timedelta(days=settings.session_days)
        self.personas = {p.key: p for p in personas()} if self.demo else {}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._addresses: OrderedDict[str, Bucket] = OrderedDict()
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
        if len(self.channels) > 1:
            routes.append(Route("/api/view", self._api(self.view), methods=["POST"]))
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
            return html.escape(html.unescape(t(key, operator=self.settings.operator)))

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
        now = self.clock()
        token = request.cookies.get(COOKIE, "")
        session = self._sessions.get(token)
        if session is not None and session.expires_at <= now:
            self._sessions.pop(token, None)
            session = None
        if session is None:
            session = await self._restore(token, now)
        if session is None:
            address = request.client.host if request.client else "?"
            await self._take(f"web address {self.keyed(address)}" if self.keyed else None,
                             self._address_bucket(address), SESSION_BURST, SESSION_RATE)
            token, chat_id = secrets.token_urlsafe(32), "w" + secrets.token_hex(10)
            stored = await self.store.web_sessions.create(token, chat_id, now, self.ttl)
            session = self._remember(token, chat_id, stored.expires_at, now)
        await self._refresh_language(session)
        body = {
            "csrf": session.csrf,
            "mode": "demo" if self.demo else "production",
            "operator": self.settings.operator,
            "language": session.language,
            "persona": session.persona or "me",
            "personas": ["me", *self.personas] if self.demo else [],
            "view": session.view,
            "views": list(self.channels),
            "campaigns": _demo_campaigns() if self.demo else [],
            "limits": {"text": MAX_TEXT, "upload": MAX_UPLOAD},
            "texts": {language: _ui_texts(language) for language in LANGUAGES},
        }
        response = JSONResponse(body)
        response.set_cookie(COOKIE, token, max_age=int(self.ttl.total_seconds()), path="/", httponly=True,
                            samesite="strict",
                            secure=request.url.scheme == "https" or self.settings.https)
        return response

    async def history(self, request: Request) -> Response:
        session = await self._auth(request, csrf=False)
        channel, chat_id, user_id = self._current(session)
        user = await self.store.users.find(channel.name, user_id)
        await self._refresh_language(session)
        t = Texts(session.language)
        commands = [{"command": c, "text": html.unescape(t(f"cmd.{c}"))}
                    for c in commands_for(user.role if user else "citizen")]
        return JSONResponse({"messages": await channel.history(chat_id), "commands": commands,
                             "language": session.language, "persona": session.persona or "me",
                             "view": session.view})

    async def events(self, request: Request) -> Response:
        session = await self._auth(request, csrf=False)
        channel, chat_id, _ = self._current(session)
        return StreamingResponse(channel.stream(chat_id), media_type="text/event-stream",
                                 headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})

    async def message(self, request: Request) -> Response:
        """A text or a chosen option; answers with the messages it produced (the open pages also
        receive them as events)."""
        session = await self._auth(request)
        await self._limit(session)
        data = await self._json(request)
        channel, chat_id, user_id = self._current(session)
        text, choice = data.get("text"), data.get("choice")
        before = await channel.seq(chat_id)
        if isinstance(text, str) and choice is None:
            if not text.strip():
                raise Refused(400, "bad_request")
            if len(text) > MAX_TEXT:
                raise Refused(413, "too_long", max=MAX_TEXT)
            await channel.record(chat_id, text=text)
            inbound = _text_inbound(channel.name, chat_id, user_id, text)
        elif _is_location(data.get("location")) and text is None and choice is None:
            latitude, longitude = data["location"]["latitude"], data["location"]["longitude"]
            await channel.record(chat_id, location={"latitude": latitude, "longitude": longitude})
            inbound = Inbound(channel.name, chat_id, user_id, "location", location=(latitude, longitude))
        elif isinstance(choice, str) and text is None and 0 < len(choice.encode()) <= 64:
            ref = data.get("ref") if isinstance(data.get("ref"), str) and REF.match(data["ref"]) else None
            if ref is not None:
                await channel.choose(chat_id, ref, choice)
            inbound = Inbound(channel.name, chat_id, user_id, "choice", payload=choice, message_ref=ref)
        else:
            raise Refused(400, "bad_request")
        given = data.get("id")
        return await self._handle(session, inbound, before, given if isinstance(given, str) and MESSAGE_ID.match(given)
                                  else None)

    async def upload(self, request: Request) -> Response:
        """A photo, as the raw body (JPEG, PNG, WebP or HEIC), kept only as `images.normalise` makes it: even the
        copy shown back in the chat has no GPS in it. Or a voice note or a document (ATTACHMENTS), kept as sent."""
        session = await self._auth(request)
        await self._limit(session)
        body = await self._body(request, MAX_UPLOAD, "photo_too_large", max=MAX_UPLOAD // (1024 * 1024))
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if mime in ATTACHMENTS:
            return await self._attachment(session, request, body, mime)
        try:
            photo = await images.normalised(body)
        except images.BadImage as bad:
            raise Refused(422, "bad_image", key=bad.key) from None
        channel, chat_id, user_id = self._current(session)
        ref = await channel.save_upload(chat_id, photo)
        before = await channel.seq(chat_id)
        await channel.record(chat_id, photo={"url": f"/api/files/{ref}"})
        inbound = Inbound(channel.name, chat_id, user_id, "media",
                          media=Media("photo", ref, len(photo), images.MIME, normalised=True))
        return await self._handle(session, inbound, before)

    async def file(self, request: Request) -> Response:
        """A document the bot sent or a photo the person uploaded, only to a session that can open
        the chat it belongs to."""
        session = await self._auth(request, csrf=False)
        name = request.path_params["name"]
        chats = [(channel, chat_id) for channel in self.channels.values()
                 for chat_id in (session.chat_id, *(p.external_id for p in self.personas.values()))]
        if DOCUMENT_ID.match(name):
            for channel, chat_id in chats:
                document = await channel.document(chat_id, name)
                if document is not None:
                    disposition = "attachment; filename*=UTF-8''" + quote(document.filename, safe="")
                    return Response(document.content, media_type=document.mime,
                                    headers={"Content-Disposition": disposition})
        elif UPLOAD_REF.match(name):
            for channel, chat_id in chats:
                content = await channel.upload(chat_id, name)
                if content is not None:
                    return Response(content, media_type=MIME_OF[name.rsplit(".", 1)[1]],
                                    headers={"Cache-Control": "private, max-age=86400"})
        raise Refused(404, "not_found")

    async def _attachment(self, session: Session, request: Request, body: bytes, mime: str) -> Response:
        if not body:
            raise Refused(400, "bad_request")
        kind, extension = ATTACHMENTS[mime]
        channel, chat_id, user_id = self._current(session)
        ref = await channel.save_upload(chat_id, body, extension)
        name = unquote(request.headers.get("x-file-name", ""))[:100].strip() or f"{kind}.{extension}"
        before = await channel.seq(chat_id)
        await channel.record(chat_id, **{kind: {"url": f"/api/files/{ref}", "name": name}})
        inbound = Inbound(channel.name, chat_id, user_id, "media",
                          media=Media(kind, ref, len(body), mime, filename=name))
        return await self._handle(session, inbound, before)

    async def persona(self, request: Request) -> Response:
        """Demo only: play another persona (or yourself again); each has its own chat."""
        session = await self._auth(request)
        await self._limit(session)
        key = (await self._json(request)).get("persona")
        # The personas are people of the web chat; the text-only view is a channel of its own, played as oneself.
        if key != "me" and (key not in self.personas or session.view != "web"):
            raise Refused(400, "bad_request")
        session.persona = None if key == "me" else key
        await self.store.web_sessions.play(session.token, session.persona, session.view)
        await self._refresh_language(session)
        return JSONResponse({"ok": True, "persona": key, "language": session.language})

    async def view(self, request: Request) -> Response:
        """Demo only: show the chat as on the web, or text-only as on Zalo (no buttons, no HTML, 2,000 characters,
        no edits). The text-only view is the browser's own chat on channel "webtext", a person of its own there."""
        session = await self._auth(request)
        await self._limit(session)
        view = (await self._json(request)).get("view")
        if view not in self.channels:
            raise Refused(400, "bad_request")
        session.view, session.persona = view, None
        await self.store.web_sessions.play(session.token, None, view)
        await self._refresh_language(session)
        return JSONResponse({"ok": True, "view": view, "persona": "me", "language": session.language})

    # -- helpers

    async def _handle(self, session: Session, inbound: Inbound, before: int, message_id: str | None = None) -> Response:
        # Journalled like every channel's updates; the page's own id (per chat) makes a retried post a no-op.
        update_id = f"{inbound.chat_id}:{message_id or secrets.token_hex(12)}"
        try:
            await self.handle(inbound.channel, update_id, inbound)
        except Exception:  # not journalled; the person was told so, in the chat (bot/intake.py)
            log.exception("a web chat message could not be taken")
        await self._refresh_language(session)
        return JSONResponse({"ok": True, "language": session.language,
                             "messages": await self.channels[inbound.channel].history(inbound.chat_id, before)})

    async def _auth(self, request: Request, *, csrf: bool = True) -> Session:
        now = self.clock()
        token = request.cookies.get(COOKIE, "")
        session = self._sessions.get(token)
        if session is None and self.settings.shared:  # opened on another worker
            session = await self._restore(token, now)
            if session is not None:
                await self._refresh_language(session)
        if session is None or session.expires_at <= now:
            self._sessions.pop(token, None)
            raise Refused(401, "session_expired")
        if csrf and not hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(),
                                            session.csrf.encode()):
            raise Refused(403, "forbidden")
        self._sessions.move_to_end(token)
        if now - session.touched_at > timedelta(days=1):
            await self.store.web_sessions.touch(token, now, self.ttl)
            session.touched_at, session.expires_at = now, now + self.ttl
        return session

    async def _restore(self, token: str, now: datetime) -> Session | None:
        """A session kept in the database (opened before a restart, or on another worker), unless expired."""
        stored = await self.store.web_sessions.get(token, now) if TOKEN.match(token) else None
        if stored is None:
            return None
        session = self._remember(token, stored.chat_id, stored.expires_at, now)
        if stored.view in self.channels:  # what the demo's visitor was playing before a restart
            session.view = stored.view
            session.persona = stored.persona if stored.persona in self.personas else None
        return session

    def _remember(self, token: str, chat_id: str, expires_at: datetime, now: datetime) -> Session:
        # The CSRF token is derived from the session's (secret, in an HttpOnly cookie), so that every worker that
        # restores the session answers with the same one.
        csrf = hashlib.sha256(b"danvan csrf " + token.encode()).hexdigest()[:32]
        session = Session(token, chat_id, csrf, expires_at, now, Bucket(self.settings.burst, self.settings.rate))
        self._sessions[token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def _current(self, session: Session) -> tuple[WebChannel, str, str]:
        """(channel, chat id, account id) of whoever the session is playing, in the view it is in."""
        channel = self.channels[session.view]
        if session.persona is not None:
            persona = self.personas[session.persona]
            return channel, persona.external_id, persona.external_id
        return channel, session.chat_id, session.chat_id

    async def _limit(self, session: Session) -> None:
        await self._take(f"web session {hash_token(session.token)}", session.bucket, self.settings.burst,
                         self.settings.rate)

    async def _take(self, key: str | None, bucket: Bucket, burst: float, rate: float) -> None:
        """A token of the bucket `key` names: the database's when the workers share one (and `key` is given), else
        `bucket`."""
        wait = None
        if self.buckets is not None and key is not None:
            try:
                wait = await self.buckets.take(key, burst, rate)
            except sqlite3.Error:  # the database's failure costs the limit's sharing, not the chat
                log.warning("the web chat's shared limit could not be read: this worker's own applies", exc_info=True)
        if wait is None:
            wait = bucket.take()
        if wait:
            raise Refused(429, "rate_limited", wait)

    def _address_bucket(self, address: str) -> Bucket:
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = self._addresses[address] = Bucket(SESSION_BURST, SESSION_RATE)
            while len(self._addresses) > MAX_SESSIONS:
                self._addresses.popitem(last=False)
        return bucket

    async def _refresh_language(self, session: Session) -> None:
        channel, _, user_id = self._current(session)
        user = await self.store.users.find(channel.name, user_id)
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


def _text_inbound(channel: str, chat_id: str, user_id: str, text: str) -> Inbound:
    return Inbound(channel, chat_id, user_id, "text", text=text)  # a "/command" is parsed by bot/render.py


def _is_location(value: object) -> bool:
    """The page's current location: {"latitude", "longitude"} in degrees."""
    if not isinstance(value, dict) or set(value) != {"latitude", "longitude"}:
        return False
    latitude, longitude = value["latitude"], value["longitude"]
    return (all(isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude))
            and -90 <= latitude <= 90 and -180 <= longitude <= 180)


def _demo_campaigns() -> list[dict]:
    return [{"code": c["code"], "title": {"vi": c["title_vi"], "en": c["title_en"]}} for c in content()["campaigns"]]
