"""python-telegram-bot's HTTP requests on aiohttp.

PTB's default transport (httpx on anyio and h11) costs about twice the CPU per Bot API call of aiohttp's
(bench/README.md), and a broadcast at 1000 messages/s or a busy inbox is mostly Bot API calls. PTB lets a
bot bring its own transport: this is `telegram.request.BaseRequest` over one `aiohttp.ClientSession`.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.env_proxy import EnvProxy

JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """Bot API calls through an aiohttp session holding at most `connections` connections.

    Timeouts keep PTB's meaning: `pool` bounds the wait for a free connection (TimedOut, nothing sent),
    `connect` opening one, `read` each read from the socket. aiohttp has no write timeout: an upload (a file
    attached) is bounded as a whole by write + connect + read instead."""

    def __init__(self, connections: int = 1, *, read_timeout: float | None = 5.0, write_timeout: float | None = 5.0,
                 connect_timeout: float | None = 5.0, pool_timeout: float | None = 1.0,
                 media_write_timeout: float | None = 20.0, tls: ssl.SSLContext | None = None) -> None:
        self._connections = connections
        self._timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None
        self._free = asyncio.Semaphore(connections)  # connections not in use
        # HTTPS_PROXY / NO_PROXY are honoured, as python-telegram-bot's httpx transport does (an office network
        # may reach Telegram only through a proxy).
        self._proxy = EnvProxy()

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[0]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._tls or True)
            # No Accept-Encoding: the answers are small, and decompressing them would cost more CPU than it saves.
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT},
                                                  skip_auto_headers=("Accept-Encoding",))

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        default_read, default_write, default_connect, default_pool = self._timeouts
        read = default_read if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        connect = default_connect if connect_timeout is BaseRequest.DEFAULT_NONE else connect_timeout
        pool = default_pool if pool_timeout is BaseRequest.DEFAULT_NONE else pool_timeout
        write = write_timeout if write_timeout is not BaseRequest.DEFAULT_NONE else (
            self._media_write_timeout if files else default_write)
        parts = (read, write, connect)
        timeout = aiohttp.ClientTimeout(  # a download (GET) may take long; each read is bounded
            total=sum(parts) if files and None not in parts else None,
            connect=connect, sock_connect=connect, sock_read=read)

        headers, body = None, None
        if files:
            form = aiohttp.FormData(request_data.json_parameters)
            for name, content in files.items():
                filename, data, mime = content if isinstance(content, tuple) else (name, content, None)
                form.add_field(name, data, filename=filename, content_type=mime)
            body = form
        elif request_data is not None:
            headers, body = JSON, request_data.json_payload

        if self._free.locked():
            try:
                async with asyncio.timeout(pool):
                    await self._free.acquire()
            except TimeoutError:
                raise TimedOut("Pool timeout: every connection is busy; the request was not sent.") from None
        else:
            await self._free.acquire()  # returns at once
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout,
                                       **await self._proxy(url)) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
        finally:
            self._free.release()
