"""A fake Zalo Bot Platform API (the Telegram-like bot API of 2025) on loopback, for tests and benchmarks.

Real HTTP (starlette + uvicorn on 127.0.0.1, port chosen by the OS); the bot calls
``{base_url}{token}/{method}`` exactly as it calls ``https://bot-api.zaloplatforms.com/bot{token}/{method}``::

    async with FakeZaloAPI() as api:
        # point the bot's Zalo channel at api.base_url with api.token, then:
        answers = await api.ask("e4ea2cd5189df1c3a88c", "Xin chào")  # push an update, wait for the reply

The platform's quirks it reproduces (from the platform's documentation and the public clients that use it;
what is assumed rather than documented is marked so below):

* ``getUpdates`` answers ONE update per call, ``{"ok": true, "result": {"event_name": ..., "message": ...}}``,
  and HTTP 408 ``{"ok": false, "error_code": 408, "description": "Request timeout"}`` when nothing arrived
  within the request's ``timeout`` (seconds, sent as a string, default 30).
* Zalo has no ``offset`` and documents no acknowledgement: an update is handed to exactly one getUpdates
  and then forgotten (a poll whose client already went away leaves it queued). Tests replay a delivery with
  :meth:`FakeZaloAPI.redeliver`, as the platform may after a lost response.
* Ids are strings (20 hex digits), ``date`` is in milliseconds.
* ``sendMessage`` text is 1–2,000 characters; ``sendPhoto`` takes only a URL, which the fake FETCHES
  (400 if it cannot; the bytes are kept on the :class:`Call`).
* Webhooks: ``setWebhook`` needs an https ``url`` (the fake also allows http on loopback) and a
  ``secret_token`` of 8–256 characters; :meth:`FakeZaloAPI.post_to_webhook` sends it in
  ``X-Bot-Api-Secret-Token`` with the update wrapped in ``{ok, result}`` (or bare: sources disagree).
* Every response carries TWO ``Server`` headers, as Zalo's edge was reported to send. aiohttp's client
  accepts them only because its response parser is lax outside debug mode: under ``python -X dev`` or
  ``PYTHONASYNCIODEBUG=1`` it raises ``ClientResponseError(400, "Duplicate 'Server' header found.")``
  (aiohttp 3.14, ``SINGLETON_HEADERS``), with the token-bearing URL in the message. httpx accepts them.
* A token other than :attr:`FakeZaloAPI.token` is answered 401 ``Unauthorized``.

Assumed (no public source found): every error description, and the status of errors other than 401/408 (a
blocked user 403 "Forbidden", an unknown chat 400, a webhook-mode getUpdates 409), ``parameters.retry_after``
and a ``Retry-After`` header on 429, and the values of the two ``Server`` headers.

A call is appended to ``api.calls`` when the fake answers it, so its outcome is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# One uvicorn server subclass for both fakes: no signal handlers, a clean stop.
from tests.fakes.telegram_api import LoopbackFake, _Server

__all__ = [
    "DEFAULT_TOKEN",
    "MESSAGE_METHODS",
    "SERVER_HEADERS",
    "Call",
    "FakeZaloAPI",
    "WebhookReply",
]

DEFAULT_TOKEN = "1459232241454765289:FakeZaloToken-danvan-0123456789abcdef"

TEXT_LIMIT = 2000

#: Calls that put a message in front of the user (what :meth:`FakeZaloAPI.sent` returns).
MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendSticker"})

_CHAT_METHODS = MESSAGE_METHODS | {"sendChatAction"}

#: Two ``Server`` headers on every response: strict HTTP parsers refuse a response with both.
SERVER_HEADERS = ((b"server", b"ZaloEdge"), (b"server", b"nginx"))

_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

_IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif", b"RIFF": "image/webp"}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_id() -> str:
    return secrets.token_hex(10)


# --------------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class Call:
    """One API call received by the fake.

    ``at`` is ``time.monotonic()`` when it arrived; ``seq`` orders arrivals (compare with
    :meth:`FakeZaloAPI.mark`). ``photo`` holds the bytes the fake fetched for a ``sendPhoto``.
    """

    method: str
    params: dict[str, Any]
    at: float
    chat_id: str | None
    ok: bool = True
    status: int = 200
    result: Any = None
    error: str | None = None
    seq: int = 0
    photo: bytes | None = None

    @property
    def text(self) -> str | None:
        """``text`` (or ``caption``) as sent by the bot."""
        value = self.params.get("text")
        return self.params.get("caption") if value is None else value

    def __repr__(self) -> str:  # short, for assertion messages
        state = "ok" if self.ok else f"{self.status} {self.error}"
        return f"Call({self.method} chat={self.chat_id} {self.params!r} -> {state})"


@dataclass(slots=True)
class WebhookReply:
    """What the bot's webhook endpoint answered to :meth:`FakeZaloAPI.post_to_webhook`."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Fault:
    method: str | None
    chat_id: str | None
    times: int | None
    status: int = 0
    description: str = ""
    retry_after: int | None = None
    seconds: float = 0.0

    def matches(self, method: str, chat_id: str | None) -> bool:
        return (self.method is None or self.method == method) and (self.chat_id is None or self.chat_id == chat_id)


class _ApiError(Exception):
    def __init__(self, status: int, description: str | None = None, retry_after: int | None = None) -> None:
        self.status = status
        self.description = description or _DESCRIPTIONS.get(status, f"Error {status}")
        self.retry_after = retry_after
        super().__init__(self.description)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(_dumps(body), status, media_type="application/json")


class _DuplicateServerHeaders:
    """ASGI middleware: every response (404s and served files too) leaves with :data:`SERVER_HEADERS`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"server"]
                message = {**message, "headers": [*headers, *SERVER_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --------------------------------------------------------------------------------------------------
# the fake


class FakeZaloAPI(LoopbackFake):
    """Fake Zalo Bot API over real HTTP on 127.0.0.1. See the module docstring."""

    message_methods = MESSAGE_METHODS

    def __init__(self, *, token: str = DEFAULT_TOKEN, bot_name: str = "bot.DanvanTest") -> None:
        self.token = token
        self.bot_name = bot_name

        # recording
        self.calls: list[Call] = []
        self.server_errors: list[BaseException] = []  # exceptions inside the fake itself (bugs)
        self._sent: list[Call] = []
        self._sent_by_chat: dict[str, list[Call]] = {}
        self._seq = 0
        self._waiters: list[tuple[Callable[[Call], Any], asyncio.Future[Any]]] = []

        # fault injection
        #: Users who blocked the bot: sends to them fail 403.
        self.blocked_users: set[str] = set()
        #: When set, message calls beyond this many per second fail 429.
        self.rate_limit_per_s: float | None = None
        #: When set, a getUpdates waits at most this long whatever ``timeout`` the bot asked for.
        self.poll_timeout_cap: float | None = None
        self._fails: list[_Fault] = []
        self._hangs: list[_Fault] = []
        self._rate_window: deque[float] = deque()

        # platform state
        self.users: dict[str, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self.files: dict[str, bytes] = {}
        self._file_counter = itertools.count(1)
        self._updates: deque[dict[str, Any]] = deque()
        #: Every update handed to a getUpdates, in order.
        self.delivered: list[dict[str, Any]] = []
        self._poll_event = asyncio.Event()
        self._delivery_waiters: list[asyncio.Future[None]] = []

        # server
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._closing = False
        self._abort = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

        self._handlers: dict[str, Callable[..., Any]] = {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "sendMessage": self._m_send_message,
            "sendPhoto": self._m_send_photo,
            "sendSticker": self._m_send_sticker,
            "sendChatAction": self._m_send_chat_action,
        }
        self.app = _DuplicateServerHeaders(
            Starlette(
                routes=[
                    Route("/bot{token}/{method}", self._handle_method, methods=["GET", "POST"]),
                    Route("/files/{name}", self._handle_file, methods=["GET"]),
                ]
            )
        )

    # ---------------------------------------------------------------------------------- lifecycle

    server_options = {"server_header": False}  # the middleware sends two of its own

    def _starting(self) -> None:
        self._poll_event = asyncio.Event()

    def _started(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    def _wake_pollers(self) -> None:
        self._poll_event.set()

    async def _stopped(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def bot_id(self) -> str:
        return self.token.split(":", 1)[0]

    def url(self, method: str) -> str:
        return f"{self.base_url}{self.token}/{method}"

    # ---------------------------------------------------------------------------- fault injection

    def fail(
        self,
        method: str | None = "sendMessage",
        chat_id: str | None = None,
        status: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` matching calls (None = all) fail with ``status``.
        ``method=None`` matches every method, ``chat_id=None`` every chat."""
        self._fails.append(_Fault(method, chat_id, times, status, description or "", retry_after))

    def hang(
        self,
        method: str | None = "sendMessage",
        seconds: float = 30.0,
        times: int | None = 1,
        chat_id: str | None = None,
    ) -> None:
        """Delay the next ``times`` matching calls by ``seconds`` (cut short by :meth:`stop`). The call is
        then carried out, as a platform does when only the client gave up: a retrying client sends twice."""
        self._hangs.append(_Fault(method, chat_id, times, seconds=seconds))

    def clear_faults(self) -> None:
        self._fails.clear()
        self._hangs.clear()
        self._rate_window.clear()

    def reset(self) -> None:
        """Forget calls, faults, blocked users and queued updates (server, users and webhook stay)."""
        self.calls.clear()
        self._sent.clear()
        self._sent_by_chat.clear()
        self.clear_faults()
        self.rate_limit_per_s = None
        self.blocked_users.clear()
        self._updates.clear()
        self.delivered.clear()
        self._resolve_delivery_waiters()

    @staticmethod
    def _take(faults: list[_Fault], method: str, chat_id: str | None) -> _Fault | None:
        for fault in faults:
            if fault.matches(method, chat_id):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        faults.remove(fault)
                return fault
        return None

    def _precheck(self, method: str, chat_id: str | None, at: float) -> _ApiError | None:
        fault = self._take(self._fails, method, chat_id) if self._fails else None
        if fault is not None:
            return _ApiError(fault.status, fault.description, fault.retry_after)
        if chat_id is not None and method in _CHAT_METHODS and chat_id in self.blocked_users:
            return _ApiError(403)
        limit = self.rate_limit_per_s
        if limit is not None and method in MESSAGE_METHODS:
            window = self._rate_window
            while window and at - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return _ApiError(429, retry_after=1)
            window.append(at)
        return None

    async def _sleep_abortable(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._abort.wait()

    # -------------------------------------------------------------------------------- HTTP layer

    async def _handle_method(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _json_response(_ApiError(401).body(), 401)
        at = time.monotonic()
        seq = self._seq
        self._seq = seq + 1
        method = request.path_params["method"]
        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError) as exc:
            error = _ApiError(400, f"Bad Request: {exc}")
            self._record(Call(method, {}, at, None, False, 400, None, error.description, seq))
            return _json_response(error.body(), 400)
        chat_id = params.get("chat_id")
        call = Call(method, params, at, None if chat_id is None else str(chat_id), seq=seq)
        handler = self._handlers.get(method)
        if handler is None:
            error: _ApiError | None = _ApiError(404, "Not Found: method not found")
        else:
            error = self._precheck(method, call.chat_id, at)
        if self._hangs:
            fault = self._take(self._hangs, method, call.chat_id)
            if fault is not None:
                await self._sleep_abortable(fault.seconds)
        body: dict[str, Any] | None = None
        if error is None:
            try:
                body = await handler(call, request)  # type: ignore[misc]
            except _ApiError as exc:
                error = exc
            except Exception as exc:  # a bug in the fake: keep serving, let tests see it
                self.server_errors.append(exc)
                error = _ApiError(500, f"Internal Server Error: fake crashed: {exc!r}")
        if error is None and body is not None:
            call.result = body.get("result")
            self._record(call)
            return _json_response(body)
        assert error is not None
        call.ok, call.status, call.error = False, error.status, error.description
        self._record(call)
        response = _json_response(error.body(), error.status)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @staticmethod
    async def _read_params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(request.url.query, keep_blank_values=True))
        body = await request.body()
        if not body:
            return params
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise ValueError("JSON body must be an object")
            params.update(decoded)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        else:
            raise ValueError(f"unsupported content type {content_type!r}")
        return params

    async def _handle_file(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        if data is None:
            return _json_response(_ApiError(404).body(), 404)
        mime = next((m for magic, m in _IMAGE_TYPES.items() if data.startswith(magic)), "application/octet-stream")
        return Response(data, media_type=mime)

    # ---------------------------------------------------------------------------------- recording

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if call.ok and call.method in MESSAGE_METHODS and call.chat_id is not None:
            self._sent.append(call)
            self._sent_by_chat.setdefault(call.chat_id, []).append(call)
        for entry in list(self._waiters):
            check, future = entry
            if future.done():
                continue
            try:
                found = check(call)
            except Exception as exc:
                future.set_exception(exc)
                self._waiters.remove(entry)
                continue
            if found is not None:
                future.set_result(found)
                self._waiters.remove(entry)

    async def ask(self, user_id: str, text: str, count: int = 1, timeout: float = 5.0, **kwargs: Any) -> list[Call]:
        """``push_text`` and wait for ``count`` messages to that user caused by it."""
        mark = self.mark()
        self.push_text(user_id, text, **kwargs)
        return await self.wait_sent(user_id, count, timeout, since=mark)

    # ----------------------------------------------------------------------------------- updates

    def add_user(self, user_id: str, display_name: str | None = None) -> dict[str, Any]:
        """Make ``user_id`` known (a chat the bot may write to); returns the ``from`` object."""
        user = self.users.get(user_id)
        if user is None or (display_name is not None and display_name != user["display_name"]):
            user = {"id": user_id, "display_name": display_name or "Nguyễn Văn An", "is_bot": False}
            self.users[user_id] = user
        return user

    def _update(self, event_name: str, user_id: str, display_name: str | None, **fields: Any) -> dict[str, Any]:
        message = {
            "from": dict(self.add_user(user_id, display_name)),
            "chat": {"id": user_id, "chat_type": "PRIVATE"},
            "message_id": _new_id(),
            "date": _now_ms(),
            **fields,
        }
        return {"event_name": event_name, "message": message}

    # Builders: return an update (not queued), e.g. to POST to a webhook.

    def text_update(self, user_id: str, text: str, display_name: str | None = None) -> dict[str, Any]:
        return self._update("message.text.received", user_id, display_name, text=text)

    def image_update(
        self,
        user_id: str,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        caption: str = "",
        display_name: str | None = None,
        field_name: str = "photo_url",
    ) -> dict[str, Any]:
        """An image the fake serves itself at ``/files/<n>.jpg``; ``field_name="photo"`` gives the
        other form public sources show."""
        name = f"{next(self._file_counter)}.jpg"
        self.files[name] = data
        url = f"http://127.0.0.1:{self.port}/files/{name}"
        fields: dict[str, Any] = {field_name: url}
        if caption:
            fields["caption"] = caption
        return self._update("message.image.received", user_id, display_name, **fields)

    def sticker_update(self, user_id: str, sticker: str = "0e078a2fb66a5f34067b") -> dict[str, Any]:
        url = f"https://zalo-api.zadn.vn/api/emoticon/sticker/webpc?eid={sticker}"
        return self._update("message.sticker.received", user_id, None, sticker=sticker, url=url)

    def unsupported_update(self, user_id: str) -> dict[str, Any]:
        """What the platform sends for a protected user's message (or a file, a voice note): no content."""
        return self._update("message.unsupported.received", user_id, None)

    # Queueing versions (for long polling). Each returns the update.

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        self._updates.append(update)
        self._poll_event.set()
        return update

    def redeliver(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an already delivered update again, unchanged (same message id)."""
        return self.push_update(update)

    def push_text(self, user_id: str, text: str, display_name: str | None = None) -> dict[str, Any]:
        return self.push_update(self.text_update(user_id, text, display_name))

    def push_image(
        self, user_id: str, data: bytes = b"\xff\xd8\xff\xe0fake-jpeg", caption: str = "", **kwargs: Any
    ) -> dict[str, Any]:
        return self.push_update(self.image_update(user_id, data, caption, **kwargs))

    def push_sticker(self, user_id: str) -> dict[str, Any]:
        return self.push_update(self.sticker_update(user_id))

    def push_unsupported(self, user_id: str) -> dict[str, Any]:
        return self.push_update(self.unsupported_update(user_id))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    async def wait_delivered(self, timeout: float = 5.0) -> None:
        """Wait until every queued update has been handed to a getUpdates."""
        if not self._updates:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._delivery_waiters.append(future)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise TimeoutError(
                f"FakeZaloAPI: {len(self._updates)} update(s) not fetched within {timeout}s; "
                f"last calls:\n{self.describe_calls()}"
            ) from None
        finally:
            if future in self._delivery_waiters:
                self._delivery_waiters.remove(future)

    async def post_to_webhook(
        self,
        update: dict[str, Any],
        url: str | None = None,
        secret_token: str | None = None,
        client: aiohttp.ClientSession | None = None,
        envelope: bool = True,
    ) -> WebhookReply:
        """POST ``update`` as the platform would: to ``url`` (default: the one given to setWebhook) with
        ``X-Bot-Api-Secret-Token`` (default: setWebhook's secret), wrapped in ``{ok, result}`` unless
        ``envelope`` is false."""
        hook = self.webhook or {}
        url = url or hook.get("url")
        if not url:
            raise RuntimeError("no webhook URL set")
        secret = secret_token if secret_token is not None else hook.get("secret_token")
        headers = {"X-Bot-Api-Secret-Token": secret} if secret else {}
        body = {"ok": True, "result": update} if envelope else update
        session = client or self._session
        if session is None:
            raise RuntimeError("FakeZaloAPI not started")
        async with session.post(url, json=body, headers=headers) as response:
            return WebhookReply(response.status, await response.read(), dict(response.headers))

    # ------------------------------------------------------------------------- API methods

    async def _m_get_me(self, call: Call, request: Request) -> dict[str, Any]:
        result = {"id": self.bot_id, "account_name": self.bot_name, "account_type": "BASIC", "can_join_groups": False}
        return {"ok": True, "result": result}

    async def _m_get_updates(self, call: Call, request: Request) -> dict[str, Any]:
        if self.webhook:
            raise _ApiError(409, "Conflict: webhook is active, use deleteWebhook first")
        try:
            timeout = float(call.params.get("timeout") or 30)
        except ValueError:
            raise _ApiError(400, "Bad Request: timeout must be a number of seconds") from None
        if self.poll_timeout_cap is not None:
            timeout = min(timeout, self.poll_timeout_cap)
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._poll_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._poll_event.wait()
            # an update must not go to a poll whose client has gone: it would be lost
            if self._updates and await request.is_disconnected():
                raise _ApiError(408, "client went away")
        if not self._updates:
            raise _ApiError(408)
        update = self._updates.popleft()
        self.delivered.append(update)
        if not self._updates:
            self._resolve_delivery_waiters()
        return {"ok": True, "result": update}

    def _resolve_delivery_waiters(self) -> None:
        for future in self._delivery_waiters:
            if not future.done():
                future.set_result(None)

    async def _m_set_webhook(self, call: Call, request: Request) -> dict[str, Any]:
        url = str(call.params.get("url") or "")
        secret = str(call.params.get("secret_token") or "")
        parsed = urllib.parse.urlsplit(url)
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise _ApiError(400, "Bad Request: url must be an https URL")
        if not 8 <= len(secret) <= 256:
            raise _ApiError(400, "Bad Request: secret_token must be 8 to 256 characters")
        self.webhook = {"url": url, "secret_token": secret, "updated_at": _now_ms()}
        return {"ok": True, "result": {"url": url, "updated_at": self.webhook["updated_at"]}}

    async def _m_delete_webhook(self, call: Call, request: Request) -> dict[str, Any]:
        self.webhook = None
        return {"ok": True, "result": {"url": "", "updated_at": _now_ms()}}

    async def _m_get_webhook_info(self, call: Call, request: Request) -> dict[str, Any]:
        hook = self.webhook or {"url": "", "updated_at": 0}
        return {"ok": True, "result": {"url": hook["url"], "updated_at": hook["updated_at"]}}

    def _require_chat(self, call: Call) -> str:
        if call.chat_id is None or call.chat_id not in self.users:
            raise _ApiError(400, "Bad Request: chat not found")
        return call.chat_id

    @staticmethod
    def _check_text(value: Any, what: str, required: bool) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or not 1 <= len(value) <= TEXT_LIMIT:
            raise _ApiError(400, f"Bad Request: {what} must be 1 to {TEXT_LIMIT} characters")

    @staticmethod
    def _message_result() -> dict[str, Any]:
        return {"ok": True, "result": {"message_id": _new_id(), "date": _now_ms()}}

    async def _m_send_message(self, call: Call, request: Request) -> dict[str, Any]:
        self._require_chat(call)
        self._check_text(call.params.get("text"), "text", required=True)
        return self._message_result()

    async def _m_send_photo(self, call: Call, request: Request) -> dict[str, Any]:
        self._require_chat(call)
        self._check_text(call.params.get("caption"), "caption", required=False)
        url = call.params.get("photo")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: photo must be a URL")
        assert self._session is not None
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise _ApiError(400, f"Bad Request: cannot fetch photo (HTTP {response.status})")
                call.photo = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _ApiError(400, f"Bad Request: cannot fetch photo ({type(exc).__name__})") from None
        return self._message_result()

    async def _m_send_sticker(self, call: Call, request: Request) -> dict[str, Any]:
        self._require_chat(call)
        if not call.params.get("sticker"):
            raise _ApiError(400, "Bad Request: sticker is required")
        return self._message_result()

    async def _m_send_chat_action(self, call: Call, request: Request) -> dict[str, Any]:
        self._require_chat(call)
        if call.params.get("action") not in ("typing", "upload_photo"):
            raise _ApiError(400, "Bad Request: action must be typing or upload_photo")
        return {"ok": True}
