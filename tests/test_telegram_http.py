"""The bot's Bot API transport (bot/channels/telegram_http.py) where the fake's own tests don't reach:
connections refused, a full pool, use before initialize. tests/test_fake_telegram_api.py runs every fault
of the fake (429, 5xx, hangs, uploads, downloads) through it as well."""

from __future__ import annotations

import asyncio
import socket

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.channels.telegram_http import AiohttpRequest
from tests.fakes.telegram_api import FakeBotAPI


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_refused_connection_is_a_network_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/bot"
    request = AiohttpRequest(1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp.ClientConnectorError"):
            await request.post(f"{url}123:abc/getMe")
    finally:
        await request.shutdown()


async def test_waiting_for_a_free_connection_times_out() -> None:
    async with FakeBotAPI() as api:
        request = AiohttpRequest(1, pool_timeout=0.2)
        async with Bot(api.token, base_url=api.base_url, request=request,
                       get_updates_request=AiohttpRequest(1)) as bot:
            api.hang("sendMessage", chat_id=1, seconds=2)
            slow = asyncio.create_task(bot.send_message(1, "chậm"))
            await asyncio.sleep(0.1)
            with pytest.raises(TimedOut):
                await bot.send_message(2, "nhanh")  # the only connection is busy with the slow call
            assert (await slow).text == "chậm"
            assert [c.chat_id for c in api.sent()] == [1]


async def test_requests_before_initialize_and_after_shutdown_are_refused() -> None:
    request = AiohttpRequest(1)
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:1/", "GET")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:1/", "GET")
    await request.initialize()  # and it can start again, as PTB's transports can
    await request.shutdown()
