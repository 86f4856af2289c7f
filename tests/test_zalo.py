"""End to end on Zalo: the bot's own Zalo client polling (or fed by its webhook from) a fake Zalo Bot API server on
loopback over HTTP, with the platform's quirks (one update per poll, 408 on an empty poll, duplicate Server headers)."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.channels.zalo_api import ZaloAPI
from bot.cli import _secrets
from bot.config import Config, ConfigError, load
from tests.fakes.zalo_api import DEFAULT_TOKEN, FakeZaloAPI
from tests.images import opened, phone_photo
from tests.test_telegram_e2e import running

pytestmark = pytest.mark.backends

AN = "e4ea2cd5189df1c3a88c"
SECRET = "zalo-hook-secret-1"


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    """A poll ends within a second, so that a fault set for the next poll comes into play soon."""
    monkeypatch.setattr("bot.channels.zalo.POLL_SECONDS", 1)


def config_for(api: FakeZaloAPI, db, **extra) -> Config:
    return Config(DANVAN_DB=db, ZALO_BOT_TOKEN=api.token, ZALO_API_URL=api.base_url, **extra)


def number(calls, label: str) -> str:
    """The number a text-only message gives the option `label`."""
    text = calls[-1].text
    found = re.search(rf"^(\d+)\. [^\n]*{re.escape(label)}", text, re.M)
    assert found, f"no option {label!r} in {text!r}"
    return found.group(1)


async def choose(api: FakeZaloAPI, calls, label: str, count: int = 1):
    return await api.ask(AN, number(calls, label), count)


async def onboard(api: FakeZaloAPI):
    calls = await api.ask(AN, "/start", display_name="Lan")
    assert "Kính chào" in calls[0].text and "trả lời bằng số" in calls[-1].text
    calls = await choose(api, calls, "Đồng ý")
    calls = await choose(api, calls, "Đồng ý")
    assert "xã, phường nào" in calls[-1].text
    calls = await api.ask(AN, "hai lang")
    calls = await choose(api, calls, "xã Hải Lăng")
    calls = await choose(api, calls, "Bỏ qua")
    calls = await choose(api, calls, "Xây dựng nông thôn mới")
    calls = await choose(api, calls, "Xong")
    assert "Thông tin của Ông/Bà" in calls[0].text
    return calls


async def test_a_citizen_onboards_and_sends_a_report_by_typing_numbers(database):
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)) as app:
            await onboard(api)
            calls = await api.ask(AN, "/phananh")
            calls = await choose(api, calls, "Xây dựng nông thôn mới")
            calls = await choose(api, calls, "Đúng")
            calls = await api.ask(AN, "Đường bê tông thôn 3 bị sụt lún sau mưa lũ, xe máy đi lại rất nguy hiểm.")
            calls = await choose(api, calls, "Tiếp tục")
            calls = await choose(api, calls, "Gửi kèm tên")
            calls = await choose(api, calls, "Không khẩn cấp")
            calls = await choose(api, calls, "Gửi")
            code = re.search(r"PA-\d\d-\d{6}", calls[-1].text).group(0)
            case = await app.store.cases.by_code(code)
            user = await app.store.users.find("zalo", AN)
            assert case.user_id == user.id and case.content.startswith("Đường bê tông")
            assert user.display_name == "Lan" and user.onboarded
            assert all(len(c.text) <= 2000 for c in api.sent(AN)) and not api.calls_of("sendPhoto")
        assert not api.server_errors


async def test_a_photo_is_fetched_checked_and_kept(database):
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)) as app:
            await onboard(api)
            calls = await api.ask(AN, "/phananh")
            calls = await choose(api, calls, "Khác")
            await choose(api, calls, "Đúng")
            mark = api.mark()
            api.push_image(AN, phone_photo(), caption="ảnh hiện trường")
            assert "Đã nhận ảnh" in (await api.wait_sent(AN, 1, since=mark))[0].text
            mark = api.mark()
            api.push_image(AN, b"\xff\xd8\xff\xe0 not a photo at all", field_name="photo")
            assert "không đọc được ảnh" in (await api.wait_sent(AN, 1, since=mark))[0].text
            user = await app.store.users.find("zalo", AN)
            [attachment] = (await app.store.cases.draft(user.id))["attachments"]
            kept = await app.store.files.get(attachment["sha256"])
            assert opened(kept).size == (1920, 2560) and not opened(kept).getexif()


async def test_a_sticker_and_an_unreadable_message_get_a_kind_answer(database):
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)):
            await onboard(api)
            for push in (api.push_sticker, api.push_unsupported):
                mark = api.mark()
                push(AN)
                calls = await api.wait_sent(AN, 1, since=mark)
                assert "bot chưa đọc được loại tin" in calls[0].text and "1. 💬 Gửi góp ý" in calls[0].text
                assert "trang web" not in calls[0].text  # no public address to offer


async def test_an_unreadable_message_is_offered_the_web_chat(database):
    """Zalo shows the bot only "unsupported" for some protected users: they are given the web chat's address."""
    async with FakeZaloAPI() as api:
        config = config_for(api, database, DANVAN_PUBLIC_URL="https://danvan.example.vn")
        async with running(config):
            await onboard(api)
            mark = api.mark()
            api.push_unsupported(AN)
            calls = await api.wait_sent(AN, 1, since=mark)
            assert "bot chưa đọc được" in calls[0].text and "trên trang web: https://danvan.example.vn" in calls[0].text


async def test_webhook_mode_checks_the_secret_and_handles_a_redelivery_once(database):
    from bot.server import build_asgi

    async with FakeZaloAPI() as api:
        config = config_for(api, database, ZALO_WEBHOOK_URL="https://bot.example.vn/zalo/webhook",
                            ZALO_WEBHOOK_SECRET=SECRET)
        async with running(config) as app:
            assert api.webhook["url"] == "https://bot.example.vn/zalo/webhook" and api.webhook["secret_token"] == SECRET
            transport = httpx.ASGITransport(app=build_asgi(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                update = api.text_update(AN, "/start")
                body = {"ok": True, "result": update}
                wrong = await client.post("/zalo/webhook", json=body, headers={"X-Bot-Api-Secret-Token": "nope-nope"})
                missing = await client.post("/zalo/webhook", json=body)
                assert wrong.status_code == missing.status_code == 403
                secret = {"X-Bot-Api-Secret-Token": SECRET}
                assert (await client.post("/zalo/webhook", content=b"{not json", headers=secret)).status_code == 400
                assert (await client.post("/zalo/webhook", json={"ok": True}, headers=secret)).status_code == 400
                mark = api.mark()
                assert (await client.post("/zalo/webhook", json=body, headers=secret)).status_code == 200
                calls = await api.wait_sent(AN, 1, since=mark)
                assert "Kính chào" in calls[0].text and "1. Đồng ý" in calls[0].text
                again = await client.post("/zalo/webhook", json=update, headers=secret)  # bare, and a redelivery
                assert again.status_code == 200
                await asyncio.gather(*app.intake._tasks)
                assert len(api.sent(AN, since=mark)) == 1
                mark = api.mark()
                bare = await client.post("/zalo/webhook", json=api.text_update(AN, "1"), headers=secret)
                assert bare.status_code == 200
                assert "Mục đích 2/2" in (await api.wait_sent(AN, 1, since=mark))[-1].text
            assert not api.calls_of("getUpdates")


async def test_a_token_refused_while_polling_stops_the_bot(database):
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)) as app:
            api.fail("getUpdates", status=401, description="Unauthorized", times=None)
            async with asyncio.timeout(30):
                await app.halted.wait()
            assert "token" in app.fatal and app.fatal_channel == "zalo"


async def test_a_429_is_retried_and_a_blocked_person_marked_unreachable(database):
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)) as app:
            api.fail("sendMessage", AN, status=429, retry_after=1)
            calls = await api.ask(AN, "/start", timeout=30)
            assert "Kính chào" in calls[0].text
            assert [c.status for c in api.calls_of("sendMessage", AN)][0] == 429
            api.blocked_users.add(AN)
            mark = api.mark()
            api.push_text(AN, "1")
            await api.wait_for(lambda c: c.method == "sendMessage" and c.status == 403, since=mark)
            await asyncio.gather(*app.intake._tasks)
            assert not (await app.store.users.find("zalo", AN)).reachable


async def test_the_token_never_reaches_the_log(database, caplog, monkeypatch):
    monkeypatch.setattr("bot.channels.zalo.MAX_PAUSE", 0.1)
    caplog.set_level(logging.DEBUG)
    async with FakeZaloAPI() as api:
        async with running(config_for(api, database)):
            api.fail("getUpdates", status=502, times=2)
            await api.ask(AN, "/start", timeout=30)
            api.fail("sendMessage", AN, status=500, description=f"upstream said {api.token}", times=None)
            mark = api.mark()
            api.push_text(AN, "1")
            await api.wait_for(lambda c: c.method == "sendMessage" and c.status == 500, 30, since=mark)
    assert "getUpdates failed" in caplog.text and api.token not in caplog.text


async def test_vietnamese_goes_to_the_platform_as_utf8_json():
    """Not as \\uXXXX escapes, which make a Vietnamese message ~40 % more bytes on a citizen's slow line."""
    seen = []

    async def send_message(request: web.Request) -> web.Response:
        seen.append((request.content_type, await request.read()))
        return web.json_response({"ok": True, "result": {"message_id": "1"}})

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send_message)
    text = "Xin chào Ông/Bà! Cảm ơn ý kiến về đường liên thôn."
    async with TestServer(app) as server:
        api = ZaloAPI("123:abc", str(server.make_url("/bot")))
        try:
            assert await api.call("sendMessage", {"chat_id": AN, "text": text}) == {"message_id": "1"}
        finally:
            await api.close()
    assert seen == [("application/json", f'{{"chat_id":"{AN}","text":"{text}"}}'.encode())]


@pytest.mark.parametrize(("extra", "named"), [
    ({"ZALO_WEBHOOK_URL": "https://bot.example.vn/zalo/webhook"}, "ZALO_WEBHOOK_SECRET"),
    ({"ZALO_WEBHOOK_URL": "https://bot.example.vn/zalo/webhook", "ZALO_WEBHOOK_SECRET": "short"},
     "ZALO_WEBHOOK_SECRET"),
    ({"ZALO_API_URL": "ftp://zalo"}, "ZALO_API_URL"),
    ({"ZALO_RATE": "0"}, "ZALO_RATE"),
])
def test_zalo_settings_are_checked_at_start(monkeypatch, tmp_path, extra, named):
    monkeypatch.chdir(tmp_path)
    for name, value in {"ZALO_BOT_TOKEN": DEFAULT_TOKEN, **extra}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        load()


def test_the_zalo_token_and_secret_are_redacted(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "DANVAN_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZALO_BOT_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("ZALO_WEBHOOK_URL", "https://bot.example.vn/zalo/webhook")
    monkeypatch.setenv("ZALO_WEBHOOK_SECRET", SECRET)
    config = load()
    assert config.zalo_api_url == "https://bot-api.zaloplatforms.com/bot"
    assert {DEFAULT_TOKEN, SECRET} <= set(_secrets(config))
