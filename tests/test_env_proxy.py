"""HTTP(S)_PROXY and NO_PROXY, honoured by both Bot API clients (bot/channels/env_proxy.py), as on
python-telegram-bot's own transport, and looked up once per host rather than on every call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.channels import env_proxy
from bot.channels.env_proxy import EnvProxy
from bot.channels.telegram_http import AiohttpRequest
from bot.channels.zalo_api import ZaloAPI


@asynccontextmanager
async def recording_proxy(monkeypatch) -> AsyncIterator[list[bytes]]:
    """A proxy on loopback named by HTTP_PROXY that records each request line and answers for the platform."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        body = b'{"ok": true, "result": true}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield seen
    finally:
        server.close()


async def test_telegram_calls_go_through_the_proxy_of_the_environment(monkeypatch) -> None:
    async with recording_proxy(monkeypatch) as seen:
        request = AiohttpRequest(1)
        await request.initialize()
        try:
            assert await request.post("http://api.telegram.invalid/bot123:abc/close") is True
        finally:
            await request.shutdown()
    assert seen == [b"POST http://api.telegram.invalid/bot123:abc/close HTTP/1.1"]


async def test_zalo_calls_go_through_the_proxy_of_the_environment(monkeypatch) -> None:
    async with recording_proxy(monkeypatch) as seen:
        api = ZaloAPI("123:abc", "http://bot-api.zalo.invalid/bot")
        try:
            assert await api.call("deleteWebhook") is True
            assert await api.call("getMe") is True
        finally:
            await api.close()
    assert seen == [b"POST http://bot-api.zalo.invalid/bot123:abc/deleteWebhook HTTP/1.1",
                    b"POST http://bot-api.zalo.invalid/bot123:abc/getMe HTTP/1.1"]


async def test_no_proxy_is_honoured(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.vn:3128")
    monkeypatch.setenv("NO_PROXY", "bot-api.zalo.me")
    proxy = EnvProxy()
    assert await proxy("https://bot-api.zalo.me/bot123/getMe") == {}
    assert str((await proxy("https://api.telegram.org/bot123/getMe"))["proxy"]) == "http://proxy.example.vn:3128"


async def test_the_environment_is_read_once_per_host(monkeypatch) -> None:
    """Not in a worker thread on every call, as aiohttp's trust_env does (two thread hops per message)."""
    looked_up = []
    real = env_proxy.get_env_proxy_for_url

    def counting(url):
        looked_up.append(str(url))
        return real(url)

    monkeypatch.setattr(env_proxy, "get_env_proxy_for_url", counting)
    proxy = EnvProxy()
    for method in ("getMe", "sendMessage", "sendMessage"):
        await proxy(f"https://bot-api.zalo.me/bot123/{method}")
    await proxy("https://photo.zalo.me/a.jpg")
    assert looked_up == ["https://bot-api.zalo.me/bot123/getMe", "https://photo.zalo.me/a.jpg"]

