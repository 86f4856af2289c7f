"""A thin client of the Zalo Bot API (the Telegram-like one) on aiohttp.

python-telegram-bot cannot drive it, and the python-zalo-bot package runs `asyncio.run` inside its webhook
code (DESIGN.md §10). The bot token is part of every URL: no error raised here carries the URL or the token.
"""

from __future__ import annotations

import json
import ssl

import aiohttp

from bot.channels.env_proxy import EnvProxy


class ZaloError(Exception):
    """A call that failed: `status` is the platform's error code (or the HTTP status), 0 when nothing came back
    (a timeout or a network error); `retry_after` in seconds when the platform said when to come back."""

    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after


class ZaloAPI:
    def __init__(self, token: str, base_url: str, *, connections: int = 64, timeout: float = 5.0) -> None:
        self._token = token
        self._base = base_url
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxy = EnvProxy()  # an office network may reach the platform only through HTTPS_PROXY

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=ssl.create_default_context())
            # Vietnamese as UTF-8, not as \uXXXX escapes: a bot's message is ~40 % fewer bytes on the wire.
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("Accept-Encoding",),
                                                  json_serialize=_json)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def call(self, method: str, params: dict | None = None, *, read_timeout: float | None = None) -> object:
        """The `result` of one method; raises ZaloError."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                        sock_read=read_timeout or self._timeout)
        try:
            async with self._open().post(f"{self._base}{self._token}/{method}", json=params or {}, timeout=timeout,
                                         **await self._proxy(self._base)) as response:
                status, body = response.status, await response.read()
                retry_header = response.headers.get("Retry-After")
        except TimeoutError:
            raise ZaloError(0, f"{method} timed out") from None
        except aiohttp.ClientError as err:  # its text may hold the URL, and so the token
            raise ZaloError(0, f"{method}: aiohttp.{type(err).__name__}") from None
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status == 200 and answer.get("ok") is True:
            return answer.get("result")
        code = answer.get("error_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) and code >= 400 else status
        if code == 200:  # {"ok": false} without a code: the platform refused the call
            code = 400
        description = str(answer.get("description") or answer.get("message") or f"HTTP {status}")[:200]
        retry_after = _retry_after(answer, retry_header) if code == 429 else None
        raise ZaloError(code, description.replace(self._token, "[token]"), retry_after)

    async def fetch(self, url: str, limit: int) -> bytes:
        """The bytes at `url` (a photo a person sent), at most `limit` of them; raises ZaloError (413 when over)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        try:
            async with self._open().get(url, timeout=timeout, **await self._proxy(url)) as response:
                if response.status != 200:
                    raise ZaloError(response.status, "the photo could not be downloaded")
                if (response.content_length or 0) > limit:
                    raise ZaloError(413, "the photo is too large")
                content = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    content += chunk
                    if len(content) > limit:
                        raise ZaloError(413, "the photo is too large")
                return bytes(content)
        except TimeoutError:
            raise ZaloError(0, "the photo download timed out") from None
        except aiohttp.ClientError as err:
            raise ZaloError(0, f"photo download: aiohttp.{type(err).__name__}") from None


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _retry_after(answer: dict, header: str | None) -> float:
    parameters = answer.get("parameters")
    given = parameters.get("retry_after") if isinstance(parameters, dict) else answer.get("retry_after")
    for value in (given, header):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return 1.0
