"""A fake Telegram Bot API server on loopback, for tests and benchmarks.

It speaks real HTTP (starlette + uvicorn on 127.0.0.1, port chosen by the OS), so the real
python-telegram-bot ``Application`` (long polling) and a bare ``telegram.Bot`` run against it
unchanged::

    async with FakeBotAPI() as api:
        app = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        ...
        answers = await api.ask(user_id=42, text="/start")  # push an update, wait for the reply

Everything the bot sends is recorded in ``api.calls`` (see :class:`Call`); faults (HTTP errors,
hangs, latency, blocked users, a global rate limit) can be injected at any time.

Notes on what python-telegram-bot actually sends:

* Plain calls are ``application/x-www-form-urlencoded`` (not JSON!): string parameters raw, every
  other value JSON-encoded (``chat_id=42``, ``reply_markup={"inline_keyboard": ...}``).
  Uploads are ``multipart/form-data`` with the same encoding for the non-file fields.
  The fake decodes all three body kinds (JSON too) into the same typed ``params`` dict.
* ``getFile`` results get ``base_file_url + token + "/" + file_path`` prepended by the library.
* A 404 (unknown method) surfaces in python-telegram-bot as ``telegram.error.InvalidToken``.
* python-telegram-bot strips "Bad Request: " and capitalises error descriptions
  (``BadRequest("Chat not found")``): match them case-insensitively.

Recording semantics: a call is appended to ``api.calls`` when the fake answers it, so its outcome
is final. A long-polling getUpdates is therefore recorded when it returns (up to its ``timeout``
later); to know the bot has taken pushed updates, use :meth:`FakeBotAPI.wait_delivered`.

Per-request work is kept small (no logging, no per-request tasks besides uvicorn's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import mimetypes
import re
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "DEFAULT_TOKEN",
    "MESSAGE_METHODS",
    "Call",
    "FakeBotAPI",
    "StoredFile",
]

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_danvan-0123456789"

#: Calls that put a message in front of the user (what :meth:`FakeBotAPI.sent` returns).
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
    }
)

#: Calls that fail with 403 when the chat is in ``blocked_chats`` / ``deactivated_chats``.
_BLOCKABLE_METHODS = MESSAGE_METHODS | {"sendChatAction"}

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_BLOCKED = "Forbidden: bot was blocked by the user"
_DEACTIVATED = "Forbidden: user is deactivated"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

# Parameters whose form/multipart value is a plain string (python-telegram-bot does not JSON-encode
# str values). Every other form value is JSON-decoded when it parses as JSON.
_STRING_PARAMS = frozenset(
    "text caption parse_mode callback_query_id inline_message_id url action language_code file_id "
    "secret_token ip_address business_connection_id message_effect_id document photo video audio voice "
    "animation sticker thumbnail title description short_description name emoji query payload address "
    "phone_number first_name last_name vcard question explanation custom_title invite_link".split()
)

_HTML_TAGS = frozenset("b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote".split())
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*)?>")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class Call:
    """One Bot API call received by the fake.

    ``at`` is ``time.monotonic()`` when the request arrived; ``seq`` orders arrivals (compare with
    :meth:`FakeBotAPI.mark`). A call is appended to ``FakeBotAPI.calls`` when its response is
    decided, so ``ok``/``status``/``result`` are final. ``params`` are decoded (ints are ints,
    ``reply_markup`` is a dict); an uploaded file is replaced by a small descriptor dict.
    """

    method: str
    params: dict[str, Any]
    at: float
    chat_id: int | None
    ok: bool = True
    status: int = 200
    result: Any = None
    error: str | None = None
    seq: int = 0

    @property
    def text(self) -> str | None:
        """``text`` (or ``caption``) parameter as sent by the bot."""
        value = self.params.get("text")
        if value is None:
            value = self.params.get("caption")
        return value

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.params.get("reply_markup")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """All inline keyboard buttons of ``reply_markup``, row by row, flattened."""
        markup = self.params.get("reply_markup")
        if not isinstance(markup, dict):
            return []
        return [button for row in markup.get("inline_keyboard", ()) for button in row]

    @property
    def message_id(self) -> int | None:
        """Id of the message sent/edited by this call (from the result, else the parameter)."""
        if isinstance(self.result, dict) and "message_id" in self.result:
            return self.result["message_id"]
        return self.params.get("message_id")

    def __repr__(self) -> str:  # short, for assertion messages
        state = "ok" if self.ok else f"{self.status} {self.error}"
        shown = {k: v for k, v in self.params.items() if k not in ("reply_markup", "entities")}
        return f"Call({self.method} chat={self.chat_id} {shown!r} -> {state})"


@dataclass(slots=True)
class StoredFile:
    """A file known to the fake (uploaded by the bot or registered by a test)."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    filename: str
    mime_type: str

    def as_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass(slots=True)
class _Upload:
    filename: str
    mime_type: str
    data: bytes


@dataclass(slots=True)
class _Fault:
    method: str | None
    chat_id: int | None
    times: int | None
    status: int = 0
    description: str = ""
    retry_after: int | None = None
    seconds: float = 0.0

    def matches(self, method: str, chat_id: int | None) -> bool:
        return (self.method is None or self.method == method) and (self.chat_id is None or self.chat_id == chat_id)


@dataclass(slots=True)
class _Msg:
    message: dict[str, Any]
    from_bot: bool
    # (raw text or caption, parse_mode, entities) as sent, to detect "message is not modified"
    src: tuple[Any, ...] = ()


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------------
# request decoding


def _decode_form_value(key: str, value: str) -> Any:
    if key in _STRING_PARAMS or not value:
        return value
    first = value[0]
    if first in '{["-' or first.isdigit() or value in ("true", "false", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _decode_form(pairs: Iterable[tuple[str, str]], params: dict[str, Any]) -> None:
    for key, value in pairs:
        params[key] = _decode_form_value(key, value)


_DISPOSITION_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart body without boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    params: dict[str, Any] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, _, data = part.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition: dict[str, str] = {}
        for m in _DISPOSITION_PARAM_RE.finditer(headers.get("content-disposition", "")):
            disposition[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3).strip()
        name = urllib.parse.unquote(disposition.get("name", ""))
        if not name:
            continue
        filename = disposition.get("filename")
        if "filename*" in disposition:
            filename = urllib.parse.unquote(disposition["filename*"].split("''", 1)[-1])
        if filename is not None:
            mime = headers.get("content-type") or "application/octet-stream"
            params[name] = _Upload(urllib.parse.unquote(filename), mime, data)
        else:
            params[name] = _decode_form_value(name, data.decode("utf-8"))
    # "attach://name" references (used by python-telegram-bot for thumbnails and media groups)
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            target = params.get(value[len("attach://") :])
            if isinstance(target, _Upload):
                params[key] = target
    return params


def _parse_html(text: str) -> str:
    """Validate Telegram-style HTML; return the plain text. Raises _ApiError like Telegram."""
    if "<" not in text:
        return html.unescape(text) if "&" in text else text
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while True:
        i = text.find("<", pos)
        if i < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:i])
        offset = len(text[:i].encode())
        m = _TAG_RE.match(text, i)
        if m is None:
            raise _bad(f'can\'t parse entities: Unsupported start tag "" at byte offset {offset}')
        closing, tag = m.group(1), m.group(2).lower()
        if tag not in _HTML_TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset {offset}')
        if closing:
            if not stack:
                raise _bad(f"can't parse entities: Unexpected end tag at byte offset {offset}")
            if stack[-1] != tag:
                raise _bad(
                    f'can\'t parse entities: Unmatched end tag at byte offset {offset}, expected "</{stack[-1]}>", '
                    f'found "</{tag}>"'
                )
            stack.pop()
        else:
            stack.append(tag)
        pos = m.end()
    if stack:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return html.unescape("".join(out))


# --------------------------------------------------------------------------------------------------
# server


class _Server(uvicorn.Server):
    """uvicorn server that leaves signal handlers alone and stops without its 0.1 s tick loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_event = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        if await self.on_tick(0):  # sets the default headers once
            return
        await self.exit_event.wait()


class RecordedCalls:
    """What a fake platform offers a test about the calls it received: markers, the messages sent, waiting for
    calls. The fake keeps `calls`, `_sent`, `_sent_by_chat`, `_seq`, `_waiters` and says which methods are
    messages (`message_methods`)."""

    message_methods: frozenset[str] = MESSAGE_METHODS

    def mark(self) -> int:
        """A marker for "calls arriving from now on" (pass as ``since=``)."""
        return self._seq

    def sent(self, chat_id: int | None = None, *, since: int = 0) -> list[Call]:
        """Successful message-like calls (see MESSAGE_METHODS), in order, optionally for one chat."""
        calls = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
        if since:
            return [c for c in calls if c.seq >= since]
        return list(calls)

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        """All recorded calls of ``method`` (successful or not), optionally for one chat."""
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def describe_calls(self, last: int = 15) -> str:
        return "\n".join(f"  {c!r}" for c in self.calls[-last:]) or "  (no calls)"

    async def _wait(self, check: Callable[[Call], Any], timeout: float, what: str) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (check, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"{type(self).__name__}: no {what} within {timeout}s; last calls:\n{self.describe_calls()}"
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 5.0, *, since: int = 0) -> Call:
        """First recorded call (arrived at/after ``since``) satisfying ``predicate``."""
        for call in self.calls:
            if call.seq >= since and predicate(call):
                return call
        return await self._wait(
            lambda c: c if c.seq >= since and predicate(c) else None, timeout, f"call matching {predicate!r}"
        )

    async def wait_sent(self, chat_id: int, count: int = 1, timeout: float = 5.0, *, since: int = 0) -> list[Call]:
        """Wait until at least ``count`` successful message-like calls to ``chat_id`` that arrived
        at/after ``since`` (from :meth:`mark`) are recorded; return all of them, in order."""
        found = self.sent(chat_id, since=since)
        if len(found) >= count:
            return found

        def check(call: Call) -> list[Call] | None:
            if call.ok and call.chat_id == chat_id and call.seq >= since and call.method in self.message_methods:
                found.append(call)
                if len(found) >= count:
                    return found
            return None

        return await self._wait(check, timeout, f"{count} message(s) to chat {chat_id} (got {len(found)})")

    def max_in_window(self, method: str | None = "sendMessage", window: float = 1.0) -> int:
        """Max number of successful calls of ``method`` (None: all message-like methods) whose
        arrival times lie within less than ``window`` seconds of each other."""
        if method is None:
            times = sorted(c.at for c in self._sent)
        else:
            times = sorted(c.at for c in self.calls if c.ok and c.method == method)
        best = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best


class LoopbackFake(RecordedCalls):
    """A fake platform served by uvicorn on a loopback port: starting, stopping (waking long polls and hung calls,
    waiting until the port is released), the port. A fake sets `app`, `_server`, `_serve_task`, `_port`,
    `_closing` and `_abort` in its constructor and may add to the server's options and to what start and stop do."""

    server_options: dict[str, Any] = {}

    async def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._closing = False
        self._abort = asyncio.Event()
        self._starting()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                log_config=None,  # do not touch the process' logging configuration
                                access_log=False, ws="none", timeout_graceful_shutdown=2, **self.server_options)
        server = _Server(config)
        task = asyncio.create_task(server.serve(), name=f"{type(self).__name__}.serve")
        while not server.started:
            if task.done():
                task.result()  # re-raise the startup error
                raise RuntimeError("uvicorn exited during startup")
            await asyncio.sleep(0.001)
        self._server, self._serve_task = server, task
        self._port = server.servers[0].sockets[0].getsockname()[1]
        self._started()
        return self

    async def stop(self) -> None:
        """Stop serving: wakes long polls and hung calls, waits until the port is released."""
        server, task = self._server, self._serve_task
        if server is None or task is None:
            return
        self._closing = True
        self._wake_pollers()
        if self._abort is not None:
            self._abort.set()
        server.should_exit = True
        server.exit_event.set()
        try:
            await task
        finally:
            self._server = self._serve_task = None
            await self._stopped()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def _starting(self) -> None:
        """Before the server starts."""

    def _started(self) -> None:
        """Once it listens."""

    def _wake_pollers(self) -> None:
        """Wake the long polls waiting for an update: the server is stopping."""

    async def _stopped(self) -> None:
        """Once it no longer listens."""


class FakeBotAPI(LoopbackFake):
    """Fake Telegram Bot API over real HTTP on 127.0.0.1. See the module docstring."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_first_name: str = "Danvan Test Bot",
        bot_username: str = "danvan_test_bot",
        strict: bool = True,
    ) -> None:
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError(f"malformed bot token: {token!r}")
        self.token = token
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        #: Emulate Telegram's validation errors (HTML parse errors, empty/too long text, "message is
        #: not modified", too long callback_data, unknown callback_query_id, invalid commands).
        self.strict = strict

        # recording
        self.calls: list[Call] = []
        self.server_errors: list[BaseException] = []  # exceptions inside the fake itself (bugs)
        self._sent: list[Call] = []
        self._sent_by_chat: dict[int, list[Call]] = {}
        self._seq = 0
        self._waiters: list[tuple[Callable[[Call], Any], asyncio.Future[Any]]] = []

        # fault injection
        self.latency: float = 0.0
        self.latency_methods: set[str] = set(MESSAGE_METHODS)
        self.blocked_chats: set[int] = set()
        self.deactivated_chats: set[int] = set()
        self.rate_limit_per_s: float | None = None
        self.rate_limited_methods: set[str] = {"sendMessage", "sendPhoto", "sendDocument"}
        self._fails: list[_Fault] = []
        self._hangs: list[_Fault] = []
        self._rate_window: deque[float] = deque()

        # Bot API state
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self._bots: dict[str, dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, _Msg]] = {}
        self._next_message_id: dict[int, int] = {}
        self._last_bot_message: dict[int, int] = {}
        self._open_callbacks: dict[str, int] = {}
        self._callback_counter = itertools.count(1)

        # updates / long polling
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update_id = 1
        #: The highest ``offset`` a getUpdates has passed: Telegram forgets every update below it, so an update
        #: below it was acknowledged by the bot (it is never delivered again, even to a restarted bot).
        self.confirmed_offset = 0
        self._poll_generation = 0
        self._poll_event: asyncio.Event | None = None
        self._delivery_waiters: list[tuple[int, asyncio.Future[None]]] = []

        # server
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._closing = False
        self._abort: asyncio.Event | None = None

        self._handlers: dict[str, tuple[str, Callable[..., Any]]] = {}
        for name, fn in {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "deleteWebhook": self._m_delete_webhook,
            "setWebhook": self._m_set_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "setChatMenuButton": self._m_set_chat_menu_button,
            "getChatMenuButton": self._m_get_chat_menu_button,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "editMessageCaption": self._m_edit_message_caption,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendDocument": self._m_send_document,
            "sendPhoto": self._m_send_photo,
            "sendChatAction": self._m_true,
            "getFile": self._m_get_file,
            "deleteMessage": self._m_delete_message,
            "close": self._m_true,
            "logOut": self._m_true,
        }.items():
            self._handlers[name.lower()] = (name, fn)

        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._handle_method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._handle_file, methods=["GET"]),
            ]
        )

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @property
    def bot_user(self) -> dict[str, Any]:
        return self._bot_for(self.token)

    def reset(self) -> None:
        """Forget calls, faults and queued updates (server, files and chats stay)."""
        self.calls.clear()
        self._sent.clear()
        self._sent_by_chat.clear()
        self.clear_faults()
        self.latency = 0.0
        self.rate_limit_per_s = None
        self.blocked_chats.clear()
        self.deactivated_chats.clear()
        self._updates.clear()
        self._check_delivered()

    # ---------------------------------------------------------------------------- fault injection

    def fail(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        status: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` matching calls (None = all) fail with ``status``.

        ``method=None`` matches every method, ``chat_id=None`` every chat.
        """
        if description is None:
            if status == 429:
                description = (
                    f"Too Many Requests: retry after {retry_after}" if retry_after is not None else "Too Many Requests"
                )
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self._fails.append(_Fault(method, chat_id, times, status, description, retry_after))

    def hang(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        seconds: float = 30.0,
        times: int | None = 1,
    ) -> None:
        """Delay the next ``times`` matching calls by ``seconds`` (cut short by :meth:`stop`).

        After the delay the call is processed normally (as Telegram does when only the client
        timed out), so a retrying client may deliver a message twice.
        """
        self._hangs.append(_Fault(method, chat_id, times, seconds=seconds))

    def clear_faults(self) -> None:
        self._fails.clear()
        self._hangs.clear()
        self._rate_window.clear()

    @staticmethod
    def _take(faults: list[_Fault], method: str, chat_id: int | None) -> _Fault | None:
        for fault in faults:
            if fault.matches(method, chat_id):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        faults.remove(fault)
                return fault
        return None

    def _precheck(self, method: str, chat_id: int | None, at: float) -> _ApiError | None:
        if self._fails:
            fault = self._take(self._fails, method, chat_id)
            if fault is not None:
                return _ApiError(fault.status, fault.description, fault.retry_after)
        if chat_id is not None and method in _BLOCKABLE_METHODS:
            if chat_id in self.blocked_chats:
                return _ApiError(403, _BLOCKED)
            if chat_id in self.deactivated_chats:
                return _ApiError(403, _DEACTIVATED)
        limit = self.rate_limit_per_s
        if limit is not None and method in self.rate_limited_methods:
            window = self._rate_window
            while window and at - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return _ApiError(429, "Too Many Requests: retry after 1", 1)
            window.append(at)
        return None

    async def _sleep_abortable(self, seconds: float) -> None:
        if self._abort is None or self._closing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._abort.wait()

    # -------------------------------------------------------------------------------- HTTP layer

    async def _handle_method(self, request: Request) -> Response:
        path_params = request.path_params
        token = path_params["token"]
        bot = self._bots.get(token)
        if bot is None:
            if not _TOKEN_RE.fullmatch(token):
                return Response(_dumps(_ApiError(404, "Not Found").body()), 404, media_type="application/json")
            bot = self._bot_for(token)
        at = time.monotonic()
        seq = self._seq
        self._seq = seq + 1
        method = path_params["method"]
        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError) as exc:
            error = _bad(f"can't parse request: {exc}")
            self._record(Call(method, {}, at, None, False, 400, None, error.description, seq))
            return Response(_dumps(error.body()), 400, media_type="application/json")

        entry = self._handlers.get(method.lower())
        if entry is None:
            error = _ApiError(404, "Not Found: method not found")
            self._record(Call(method, params, at, None, False, 404, None, error.description, seq))
            return Response(_dumps(error.body()), 404, media_type="application/json")
        name, handler = entry

        chat_id = params.get("chat_id")
        if type(chat_id) is not int:
            chat_id = self._coerce_chat_id(chat_id, params)
            if chat_id is None and "callback_query_id" in params:
                chat_id = self._open_callbacks.get(str(params["callback_query_id"]))
        call = Call(name, params, at, chat_id, seq=seq)

        error = self._precheck(name, chat_id, at)
        if self._hangs:
            fault = self._take(self._hangs, name, chat_id)
            if fault is not None:
                await self._sleep_abortable(fault.seconds)
        if self.latency and name in self.latency_methods:
            await asyncio.sleep(self.latency)
        if error is None:
            try:
                result = handler(call, bot)
                if name == "getUpdates":
                    result = await result
            except _ApiError as exc:
                error = exc
            except Exception as exc:  # a bug in the fake: keep serving, let tests see it
                self.server_errors.append(exc)
                error = _ApiError(500, f"Internal Server Error: fake crashed: {exc!r}")
        if error is None:
            call.result = result
            self._record(call)
            return Response(_dumps({"ok": True, "result": result}), media_type="application/json")
        call.ok = False
        call.status = error.status
        call.error = error.description
        self._record(call)
        return Response(_dumps(error.body()), error.status, media_type="application/json")

    @staticmethod
    def _coerce_chat_id(value: Any, params: dict[str, Any]) -> int | None:
        if isinstance(value, str) and value.lstrip("-").isdigit():
            params["chat_id"] = int(value)
            return int(value)
        return None

    async def _read_params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {}
        query = request.scope.get("query_string")
        if query:
            _decode_form(urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True), params)
        body = await request.body()
        if not body:
            return params
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            _decode_form(urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True), params)
        elif content_type.startswith("application/json"):
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise ValueError("JSON body must be an object")
            # The real server reads a JSON body's top-level values as form fields: a string there (such as
            # python-telegram-bot's JSON-encoded values, "123" or '{"inline_keyboard": …}') means what it
            # would in a form.
            for key, value in decoded.items():
                params[key] = _decode_form_value(key, value) if isinstance(value, str) else value
        elif content_type.startswith("multipart/form-data"):
            params.update(_parse_multipart(body, content_type))
        else:
            raise ValueError(f"unsupported content type {content_type!r}")
        return params

    async def _handle_file(self, request: Request) -> Response:
        token = request.path_params["token"]
        stored = self._files_by_path.get(request.path_params["file_path"])
        if stored is None or not _TOKEN_RE.fullmatch(token):
            return Response(_dumps(_ApiError(404, "Not Found").body()), 404, media_type="application/json")
        return Response(stored.data, media_type=stored.mime_type)

    # ---------------------------------------------------------------------------------- recording

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if call.ok and call.method in MESSAGE_METHODS and call.chat_id is not None:
            self._sent.append(call)
            per_chat = self._sent_by_chat.get(call.chat_id)
            if per_chat is None:
                per_chat = self._sent_by_chat[call.chat_id] = []
            per_chat.append(call)
        if self._waiters:
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

    async def ask(self, user_id: int, text: str, count: int = 1, timeout: float = 5.0, **kwargs: Any) -> list[Call]:
        """``push_text`` and wait for ``count`` messages to that chat caused by it."""
        mark = self.mark()
        self.push_text(user_id, text, **kwargs)
        return await self.wait_sent(user_id, count, timeout, since=mark)

    async def click(
        self, user_id: int, data: str, message_id: int | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """``push_callback`` and wait for ``count`` message-like calls (edits count) to that chat."""
        mark = self.mark()
        self.push_callback(user_id, data, message_id=message_id)
        return await self.wait_sent(user_id, count, timeout, since=mark)

    # ---------------------------------------------------------------------------------- chats etc.

    def _bot_for(self, token: str) -> dict[str, Any]:
        bot = self._bots.get(token)
        if bot is None:
            bot = self._bots[token] = {
                "id": int(token.split(":", 1)[0]),
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            }
        return bot

    def _chat(self, chat_id: int) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                chat = {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
            self._chats[chat_id] = chat
        return chat

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        user = self._users.get(user_id)
        if (
            user is None
            or (first_name is not None and first_name != user["first_name"])
            or (language_code is not None and language_code != user.get("language_code"))
            or (username is not None and username != user.get("username"))
        ):
            old = user or {}
            user = {"id": user_id, "is_bot": False, "first_name": first_name or old.get("first_name", "Lan")}
            if username or old.get("username"):
                user["username"] = username or old["username"]
            user["language_code"] = language_code or old.get("language_code", "vi")
            self._users[user_id] = user
            chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
            self._chats[user_id] = chat
        return user

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _store_message(self, chat_id: int, message: dict[str, Any], from_bot: bool, src: tuple[Any, ...]) -> None:
        per_chat = self._messages.get(chat_id)
        if per_chat is None:
            per_chat = self._messages[chat_id] = {}
        per_chat[message["message_id"]] = _Msg(message, from_bot, src)
        if from_bot:
            self._last_bot_message[chat_id] = message["message_id"]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message (after edits), as the Bot API would return it."""
        stored = self._messages.get(chat_id, {}).get(message_id)
        return stored.message if stored else None

    def last_bot_message(self, chat_id: int) -> dict[str, Any] | None:
        message_id = self._last_bot_message.get(chat_id)
        return None if message_id is None else self.message(chat_id, message_id)

    def get_commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        return self.commands.get(self._scope_key(scope, language_code), [])

    @staticmethod
    def _scope_key(scope: Any, language_code: Any) -> tuple[str, str]:
        if not scope:
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    # ------------------------------------------------------------------------------------- files

    def _store_file(self, data: bytes, filename: str, mime_type: str, kind: str) -> StoredFile:
        n = next(self._file_counter)
        if kind == "photo":  # Telegram re-encodes photos as JPEG
            ext = ".jpg"
        elif "." in filename:
            ext = "." + filename.rsplit(".", 1)[1]
        else:
            ext = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"fake-{kind}-{n}",
            file_unique_id=f"uniq-{n}",
            file_path=f"{kind}s/file_{n}{ext}",
            data=data,
            filename=filename,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def add_file(
        self, data: bytes, filename: str = "photo.jpg", mime_type: str | None = None, kind: str = "photo"
    ) -> str:
        """Register a file (e.g. a photo a user sends); returns its file_id."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return self._store_file(data, filename, mime, kind).file_id

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def _resolve_media(self, params: dict[str, Any], key: str, kind: str) -> StoredFile:
        value = params.get(key)
        if isinstance(value, _Upload):
            stored = self._store_file(value.data, value.filename, value.mime_type, kind)
            params[key] = {
                "file_id": stored.file_id,
                "file_name": stored.filename,
                "mime_type": stored.mime_type,
                "file_size": len(stored.data),
            }
            return stored
        if isinstance(value, str) and value:
            stored = self.files.get(value)
            if stored is not None:
                return stored
            if value.startswith(("http://", "https://")):
                name = value.rsplit("/", 1)[-1].split("?", 1)[0] or kind
                mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                return self._store_file(b"", name, mime, kind)
        raise _bad("wrong file identifier/HTTP URL specified")

    # ----------------------------------------------------------------------------------- updates

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update for getUpdates (``update_id`` is assigned when missing)."""
        if "update_id" not in update:
            update["update_id"] = self._take_update_id()
        self._updates.append(update)
        self._wake_pollers()
        return update

    def _take_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _wake_pollers(self) -> None:
        event = self._poll_event
        if event is not None:
            self._poll_event = None
            event.set()

    def _user_message(
        self,
        user_id: int,
        extra: dict[str, Any],
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id, first_name, language_code, username)
        message = {
            "message_id": self._new_message_id(user_id),
            "from": user,
            "chat": self._chats[user_id],
            "date": int(time.time()),
            **extra,
        }
        self._store_message(user_id, message, False, ())
        return {"update_id": self._take_update_id(), "message": message}

    # Builders: return an update dict (not queued) -- e.g. to POST to a webhook.

    def text_update(
        self,
        user_id: int,
        text: str,
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            extra["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self._user_message(user_id, extra, first_name, language_code, username)

    def callback_update(self, user_id: int, data: str, message_id: int | None = None) -> dict[str, Any]:
        """A callback_query pressing a button on ``message_id`` (default: the bot's last message
        to that chat)."""
        user = self._user(user_id)
        if message_id is None:
            message_id = self._last_bot_message.get(user_id)
            if message_id is None:
                raise LookupError(f"the bot has not sent any message to chat {user_id} yet")
        message = self.message(user_id, message_id)
        if message is None:  # unknown/deleted: fabricate a minimal bot message
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(user_id),
                "date": int(time.time()),
                "text": "",
            }
        query_id = f"{user_id}{next(self._callback_counter):06d}"
        self._open_callbacks[query_id] = user_id
        return {
            "update_id": self._take_update_id(),
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": message,
                "chat_instance": str(-user_id),
                "data": data,
            },
        }

    def photo_update(
        self, user_id: int, data: bytes | None = None, caption: str | None = None, file_id: str | None = None
    ) -> dict[str, Any]:
        if file_id is None:
            file_id = self.add_file(data if data is not None else b"\xff\xd8\xff\xe0fake-jpeg", "photo.jpg")
        stored = self.files[file_id]
        extra: dict[str, Any] = {
            "photo": [
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": 800,
                    "height": 600,
                    "file_size": len(stored.data),
                }
            ]
        }
        if caption is not None:
            extra["caption"] = caption
        return self._user_message(user_id, extra)

    def document_update(
        self, user_id: int, data: bytes, filename: str, mime_type: str, caption: str | None = None
    ) -> dict[str, Any]:
        """A file sent as a document ("send as file": a photo keeps its camera's EXIF)."""
        stored = self.files[self.add_file(data, filename, mime_type, kind="document")]
        extra: dict[str, Any] = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename,
                "mime_type": mime_type,
                "file_size": len(data),
            }
        }
        if caption is not None:
            extra["caption"] = caption
        return self._user_message(user_id, extra)

    def location_update(self, user_id: int, lat: float, lon: float) -> dict[str, Any]:
        return self._user_message(user_id, {"location": {"latitude": lat, "longitude": lon}})

    def contact_update(self, user_id: int, phone: str, first_name: str | None = None) -> dict[str, Any]:
        user = self._user(user_id)
        contact = {"phone_number": phone, "first_name": first_name or user["first_name"], "user_id": user_id}
        return self._user_message(user_id, {"contact": contact})

    def sticker_update(self, user_id: int) -> dict[str, Any]:
        stored = self._store_file(b"RIFF\x00\x00\x00\x00WEBPfake", "sticker.webp", "image/webp", "sticker")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "\N{THUMBS UP SIGN}",
            "file_size": len(stored.data),
        }
        return self._user_message(user_id, {"sticker": sticker})

    def my_chat_member_update(self, user_id: int, blocked: bool) -> dict[str, Any]:
        """The user blocked (status "kicked") or unblocked ("member") the bot in the private chat."""
        user = self._user(user_id)
        bot = self.bot_user
        member = {"user": bot, "status": "member"}
        kicked = {"user": bot, "status": "kicked", "until_date": 0}
        return {
            "update_id": self._take_update_id(),
            "my_chat_member": {
                "chat": self._chats[user_id],
                "from": user,
                "date": int(time.time()),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
        }

    # Queueing versions (for long polling). Each returns the update dict.

    def push_text(
        self,
        user_id: int,
        text: str,
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private text message from ``user_id`` (first_name/language_code default to the ones
        given before for that user, else "Lan"/"vi"); "/cmd ..." gets a bot_command entity."""
        return self.push_update(self.text_update(user_id, text, first_name, language_code, username))

    def push_callback(self, user_id: int, data: str, message_id: int | None = None) -> dict[str, Any]:
        return self.push_update(self.callback_update(user_id, data, message_id))

    def push_photo(
        self, user_id: int, data: bytes | None = None, caption: str | None = None, file_id: str | None = None
    ) -> dict[str, Any]:
        return self.push_update(self.photo_update(user_id, data, caption, file_id))

    def push_document(
        self, user_id: int, data: bytes, filename: str, mime_type: str, caption: str | None = None
    ) -> dict[str, Any]:
        return self.push_update(self.document_update(user_id, data, filename, mime_type, caption))

    def push_location(self, user_id: int, lat: float, lon: float) -> dict[str, Any]:
        return self.push_update(self.location_update(user_id, lat, lon))

    def push_contact(self, user_id: int, phone: str, first_name: str | None = None) -> dict[str, Any]:
        return self.push_update(self.contact_update(user_id, phone, first_name))

    def push_sticker(self, user_id: int) -> dict[str, Any]:
        return self.push_update(self.sticker_update(user_id))

    def push_my_chat_member(self, user_id: int, blocked: bool) -> dict[str, Any]:
        """Queue a block/unblock update and also add/remove ``user_id`` in ``blocked_chats``."""
        if blocked:
            self.blocked_chats.add(user_id)
        else:
            self.blocked_chats.discard(user_id)
        return self.push_update(self.my_chat_member_update(user_id, blocked))

    def _check_delivered(self) -> None:
        if not self._delivery_waiters:
            return
        first_pending = self._updates[0]["update_id"] if self._updates else None
        for entry in list(self._delivery_waiters):
            target, future = entry
            if first_pending is None or target < first_pending:
                self._delivery_waiters.remove(entry)
                if not future.done():
                    future.set_result(None)

    async def wait_delivered(self, timeout: float = 5.0) -> None:
        """Wait until the bot has fetched every update queued so far: its getUpdates confirmed
        them with a higher offset (python-telegram-bot polls again as soon as it has a batch, so
        this means "the bot received them", not "the bot finished handling them")."""
        if not self._updates:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._updates[-1]["update_id"], future)
        self._delivery_waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise TimeoutError(
                f"FakeBotAPI: updates {[u['update_id'] for u in self._updates]} not fetched within {timeout}s; "
                f"last calls:\n{self.describe_calls()}"
            ) from None
        finally:
            if entry in self._delivery_waiters:
                self._delivery_waiters.remove(entry)

    def acknowledged(self, update_id: int) -> bool:
        """Whether the bot has confirmed this update (a later getUpdates passed a higher offset)."""
        return update_id < self.confirmed_offset

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def post_to_webhook(
        self,
        update: dict[str, Any],
        url: str | None = None,
        secret_token: str | None = None,
        client: Any = None,
    ) -> Any:
        """POST ``update`` like Telegram would, to ``url`` (default: the URL given to setWebhook,
        with its secret_token header). ``client``: an httpx.AsyncClient to use. Returns the
        httpx.Response."""
        import httpx

        hook = self.webhook or {}
        url = url or hook.get("url")
        if not url:
            raise RuntimeError("no webhook URL set")
        secret = secret_token if secret_token is not None else hook.get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        if client is not None:
            return await client.post(url, json=update, headers=headers)
        async with httpx.AsyncClient(timeout=10) as own_client:
            return await own_client.post(url, json=update, headers=headers)

    # ------------------------------------------------------------------------- Bot API methods

    def _m_true(self, call: Call, bot: dict[str, Any]) -> bool:
        return True

    def _m_get_me(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, call: Call, bot: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook and self.webhook.get("url"):
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        p = call.params
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        limit = min(max(limit, 1), 100)
        timeout = float(p.get("timeout") or 0)
        self.confirmed_offset = max(self.confirmed_offset, offset)
        # a newer getUpdates supersedes older long polls (they return right away)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        deadline = time.monotonic() + timeout
        updates = self._updates
        while True:
            if offset > 0 and updates and updates[0]["update_id"] < offset:
                while updates and updates[0]["update_id"] < offset:
                    updates.popleft()
                self._check_delivered()
            if updates or self._closing or generation != self._poll_generation:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = self._poll_event
            if event is None:
                event = self._poll_event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()
        if offset < 0:
            return list(updates)[offset:][:limit]
        return list(itertools.islice(updates, limit))

    def _m_set_webhook(self, call: Call, bot: dict[str, Any]) -> bool:
        p = call.params
        if not p.get("url"):
            self.webhook = None
        else:
            self.webhook = {k: v for k, v in p.items() if not isinstance(v, _Upload)}
        if p.get("drop_pending_updates"):
            self._updates.clear()
            self._check_delivered()
        return True

    def _m_delete_webhook(self, call: Call, bot: dict[str, Any]) -> bool:
        self.webhook = None
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
            self._check_delivered()
        return True

    def _m_get_webhook_info(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        hook = self.webhook or {}
        info: dict[str, Any] = {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook:
            info["max_connections"] = hook.get("max_connections", 40)
            if hook.get("allowed_updates") is not None:
                info["allowed_updates"] = hook["allowed_updates"]
        return info

    def _m_set_my_commands(self, call: Call, bot: dict[str, Any]) -> bool:
        p = call.params
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad('parameter "commands" is required')
        if self.strict:
            for command in commands:
                name = command.get("command", "") if isinstance(command, dict) else ""
                description = command.get("description", "") if isinstance(command, dict) else ""
                if not _COMMAND_RE.fullmatch(name.lstrip("/")):
                    raise _bad("BOT_COMMAND_INVALID")
                if not 1 <= len(description) <= 256:
                    raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(p.get("scope"), p.get("language_code"))] = commands
        return True

    def _m_get_my_commands(self, call: Call, bot: dict[str, Any]) -> list[dict[str, Any]]:
        p = call.params
        return self.commands.get(self._scope_key(p.get("scope"), p.get("language_code")), [])

    def _m_delete_my_commands(self, call: Call, bot: dict[str, Any]) -> bool:
        p = call.params
        self.commands.pop(self._scope_key(p.get("scope"), p.get("language_code")), None)
        return True

    def _m_set_chat_menu_button(self, call: Call, bot: dict[str, Any]) -> bool:
        p = call.params
        self.menu_buttons[call.chat_id] = p.get("menu_button") or {"type": "default"}
        return True

    def _m_get_chat_menu_button(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        return self.menu_buttons.get(call.chat_id) or self.menu_buttons.get(None) or {"type": "default"}

    def _m_answer_callback_query(self, call: Call, bot: dict[str, Any]) -> bool:
        query_id = str(call.params.get("callback_query_id", ""))
        chat_id = self._open_callbacks.pop(query_id, None)
        if chat_id is None and self.strict:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        call.chat_id = chat_id
        return True

    # messages

    def _require_chat(self, call: Call) -> int:
        if call.chat_id is None:
            raise _bad("chat not found")
        return call.chat_id

    def _format(self, text: Any, parse_mode: Any, limit: int, what: str) -> str:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        plain = _parse_html(text) if self.strict and parse_mode == "HTML" else text
        if self.strict:
            if what == "text" and not plain.strip():
                raise _bad("message text is empty")
            n = len(plain)
            if n > limit or (n > limit // 2 and _utf16_len(plain) > limit):
                raise _bad("message is too long" if what == "text" else "message caption is too long")
        return plain

    def _inline_markup(self, markup: Any) -> dict[str, Any] | None:
        """Validate reply_markup; return it if it is an inline keyboard (the only kind Telegram
        echoes back in the Message)."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            return None
        if self.strict:
            if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
                raise _bad("can't parse inline keyboard button: InlineKeyboardMarkup must be an array")
            for row in keyboard:
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        raise _bad("BUTTON_DATA_INVALID")
                    if not button.get("text"):
                        raise _bad(
                            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                        )
        return markup

    def _bot_message(
        self, chat_id: int, bot: dict[str, Any], extra: dict[str, Any], src: tuple[Any, ...]
    ) -> dict[str, Any]:
        message = {
            "message_id": self._new_message_id(chat_id),
            "from": bot,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **extra,
        }
        self._store_message(chat_id, message, True, src)
        return message

    def _m_send_message(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        p = call.params
        chat_id = self._require_chat(call)
        text = p.get("text")
        plain = self._format(text, p.get("parse_mode"), 4096, "text")
        extra: dict[str, Any] = {"text": plain}
        if p.get("entities"):
            extra["entities"] = p["entities"]
        markup = self._inline_markup(p.get("reply_markup"))
        if markup is not None:
            extra["reply_markup"] = markup
        return self._bot_message(chat_id, bot, extra, (text, p.get("parse_mode"), p.get("entities")))

    def _caption_extra(self, p: dict[str, Any], extra: dict[str, Any]) -> tuple[Any, ...]:
        caption = p.get("caption")
        if caption is not None:
            extra["caption"] = self._format(caption, p.get("parse_mode"), 1024, "caption")
            if p.get("caption_entities"):
                extra["caption_entities"] = p["caption_entities"]
        markup = self._inline_markup(p.get("reply_markup"))
        if markup is not None:
            extra["reply_markup"] = markup
        return (caption, p.get("parse_mode"), p.get("caption_entities"))

    def _m_send_photo(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        stored = self._resolve_media(call.params, "photo", "photo")
        size = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 800,
            "height": 600,
            "file_size": len(stored.data),
        }
        extra: dict[str, Any] = {"photo": [size]}
        src = self._caption_extra(call.params, extra)
        return self._bot_message(chat_id, bot, extra, src)

    def _m_send_document(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        stored = self._resolve_media(call.params, "document", "document")
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.filename,
            "mime_type": stored.mime_type,
            "file_size": len(stored.data),
        }
        extra: dict[str, Any] = {"document": document}
        src = self._caption_extra(call.params, extra)
        return self._bot_message(chat_id, bot, extra, src)

    def _editable(self, call: Call) -> _Msg:
        chat_id = self._require_chat(call)
        stored = self._messages.get(chat_id, {}).get(call.params.get("message_id"))  # type: ignore[arg-type]
        if stored is None:
            raise _bad("message to edit not found")
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return stored

    def _replace(self, call: Call, stored: _Msg, changes: dict[str, Any], src: tuple[Any, ...]) -> dict[str, Any]:
        message = {**stored.message, **changes, "edit_date": int(time.time())}
        for key, value in changes.items():
            if value is None:
                del message[key]
        self._store_message(call.chat_id, message, True, src)  # type: ignore[arg-type]
        return message

    def _m_edit_message_text(self, call: Call, bot: dict[str, Any]) -> dict[str, Any] | bool:
        p = call.params
        if p.get("inline_message_id"):
            return True
        stored = self._editable(call)
        if "text" not in stored.message:
            raise _bad("there is no text in the message to edit")
        text = p.get("text")
        plain = self._format(text, p.get("parse_mode"), 4096, "text")
        markup = self._inline_markup(p.get("reply_markup"))
        src = (text, p.get("parse_mode"), p.get("entities"))
        if self.strict and src == stored.src and markup == stored.message.get("reply_markup"):
            raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
        changes = {"text": plain, "entities": p.get("entities") or None, "reply_markup": markup}
        return self._replace(call, stored, changes, src)

    def _m_edit_message_caption(self, call: Call, bot: dict[str, Any]) -> dict[str, Any] | bool:
        p = call.params
        if p.get("inline_message_id"):
            return True
        stored = self._editable(call)
        if "text" in stored.message:
            raise _bad("there is no caption in the message to edit")
        extra: dict[str, Any] = {}
        src = self._caption_extra(p, extra)
        markup = extra.get("reply_markup")
        if self.strict and src == stored.src and markup == stored.message.get("reply_markup"):
            raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
        changes = {
            "caption": extra.get("caption"),
            "caption_entities": extra.get("caption_entities"),
            "reply_markup": markup,
        }
        return self._replace(call, stored, changes, src)

    def _m_edit_message_reply_markup(self, call: Call, bot: dict[str, Any]) -> dict[str, Any] | bool:
        p = call.params
        if p.get("inline_message_id"):
            return True
        stored = self._editable(call)
        markup = self._inline_markup(p.get("reply_markup"))
        if self.strict and markup == stored.message.get("reply_markup"):
            raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
        return self._replace(call, stored, {"reply_markup": markup}, stored.src)

    def _m_delete_message(self, call: Call, bot: dict[str, Any]) -> bool:
        chat_id = self._require_chat(call)
        per_chat = self._messages.get(chat_id, {})
        if per_chat.pop(call.params.get("message_id"), None) is None:  # type: ignore[arg-type]
            raise _bad("message to delete not found")
        return True

    def _m_get_file(self, call: Call, bot: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise _bad("invalid file_id")
        return stored.as_file()
