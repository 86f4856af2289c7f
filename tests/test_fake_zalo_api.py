"""Tests of the fake Zalo Bot API (tests/fakes/zalo_api.py), driven by a plain aiohttp client, the
HTTP client the bot's Zalo channel is built on."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.zalo_api import TEXT_LIMIT, FakeZaloAPI

USER = "e4ea2cd5189df1c3a88c"
OTHER = "6ede9afa66b88fe6d6a9"


@pytest.fixture
async def api():
    async with FakeZaloAPI() as fake:
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, api: FakeZaloAPI, method: str, **params: Any) -> tuple[int, dict]:
    async with http.post(api.url(method), json=params) as response:
        return response.status, await response.json()


async def test_get_me_answers_with_string_id(api, http):
    status, body = await call(http, api, "getMe")
    assert status == 200
    assert body["ok"] is True
    assert body["result"]["id"] == api.token.split(":")[0]
    assert isinstance(body["result"]["id"], str)
    async with http.get(api.url("getMe")) as response:  # the platform's curl examples use GET
        assert response.status == 200


async def test_a_wrong_token_is_answered_401(api, http):
    async with http.post(f"{api.base_url}999:wrong/getMe", json={}) as response:
        assert response.status == 401
        assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_every_response_carries_two_server_headers_and_aiohttp_accepts_them(api, http):
    async with http.post(api.url("getMe"), json={}) as response:
        assert response.status == 200
        assert len(response.headers.getall("Server")) == 2
        assert (await response.json())["ok"] is True
    async with http.get(f"http://127.0.0.1:{api.port}/nowhere") as response:
        assert len(response.headers.getall("Server")) == 2


async def test_an_empty_poll_is_answered_408_after_its_timeout(api, http):
    status, body = await call(http, api, "getUpdates", timeout="0.05")
    assert status == 408
    assert body == {"ok": False, "error_code": 408, "description": "Request timeout"}


async def test_each_poll_returns_one_update_once(api, http):
    first = api.push_text(USER, "Xin chào", display_name="Trần Thị Bình")
    second = api.push_text(OTHER, "Chào bạn")
    status, body = await call(http, api, "getUpdates", timeout="1")
    assert status == 200
    assert body == {"ok": True, "result": first}
    message = body["result"]["message"]
    assert body["result"]["event_name"] == "message.text.received"
    assert message["from"] == {"id": USER, "display_name": "Trần Thị Bình", "is_bot": False}
    assert message["chat"] == {"id": USER, "chat_type": "PRIVATE"}
    assert isinstance(message["message_id"], str)
    assert message["date"] > 10**12  # milliseconds
    assert (await call(http, api, "getUpdates", timeout="1"))[1]["result"] == second
    assert (await call(http, api, "getUpdates", timeout="0.05"))[0] == 408
    assert api.delivered == [first, second]


async def test_a_waiting_poll_gets_an_update_pushed_later(api, http):
    poll = asyncio.create_task(call(http, api, "getUpdates", timeout="5"))
    await asyncio.sleep(0.05)
    update = api.push_text(USER, "muộn")
    status, body = await poll
    assert (status, body["result"]) == (200, update)
    await api.wait_delivered()


async def test_a_redelivered_update_comes_again_unchanged(api, http):
    update = api.push_text(USER, "một lần")
    await call(http, api, "getUpdates", timeout="1")
    api.redeliver(update)
    again = (await call(http, api, "getUpdates", timeout="1"))[1]["result"]
    assert again["message"]["message_id"] == update["message"]["message_id"]


async def test_image_sticker_and_unsupported_updates(api, http):
    image = api.push_image(USER, b"\xff\xd8\xff\xe0my-photo", caption="Đường hỏng")
    api.push_sticker(USER)
    api.push_unsupported(OTHER)
    got = [(await call(http, api, "getUpdates", timeout="1"))[1]["result"] for _ in range(3)]
    assert [u["event_name"] for u in got] == [
        "message.image.received",
        "message.sticker.received",
        "message.unsupported.received",
    ]
    assert got[0]["message"]["caption"] == "Đường hỏng"
    async with http.get(image["message"]["photo_url"]) as response:
        assert response.content_type == "image/jpeg"
        assert await response.read() == b"\xff\xd8\xff\xe0my-photo"
    assert "text" not in got[2]["message"]
    assert "photo" in api.image_update(USER, field_name="photo")["message"]


async def test_send_message_to_a_known_user_is_recorded(api, http):
    api.add_user(USER)
    mark = api.mark()
    status, body = await call(http, api, "sendMessage", chat_id=USER, text="Kính chào Ông/Bà")
    assert status == 200
    assert isinstance(body["result"]["message_id"], str)
    sent = await api.wait_sent(USER, since=mark)
    assert [c.text for c in sent] == ["Kính chào Ông/Bà"]


async def test_form_bodies_are_accepted(api, http):
    api.add_user(USER)
    async with http.post(api.url("sendMessage"), data={"chat_id": USER, "text": "form"}) as response:
        assert response.status == 200
    assert api.sent(USER)[0].text == "form"


async def test_text_over_2000_characters_is_refused(api, http):
    api.add_user(USER)
    assert (await call(http, api, "sendMessage", chat_id=USER, text="ư" * TEXT_LIMIT))[0] == 200
    status, body = await call(http, api, "sendMessage", chat_id=USER, text="ư" * (TEXT_LIMIT + 1))
    assert status == 400
    assert body["ok"] is False and body["error_code"] == 400
    assert (await call(http, api, "sendMessage", chat_id=USER, text=""))[0] == 400
    assert len(api.sent(USER)) == 1


async def test_an_unknown_chat_is_refused(api, http):
    status, body = await call(http, api, "sendMessage", chat_id="nobody", text="hello")
    assert (status, body["error_code"]) == (400, 400)
    assert api.sent() == []


async def test_a_user_who_blocked_the_bot_cannot_be_reached(api, http):
    api.add_user(USER)
    api.blocked_users.add(USER)
    status, body = await call(http, api, "sendMessage", chat_id=USER, text="tin")
    assert (status, body["error_code"], body["ok"]) == (403, 403, False)


async def test_send_photo_fetches_the_url(api, http):
    api.add_user(USER)

    async def chart(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG-chart", content_type="image/png")

    app = web.Application()
    app.router.add_get("/chart.png", chart)
    async with TestServer(app, host="127.0.0.1") as files:  # stands in for the bot's signed file URLs
        url = str(files.make_url("/chart.png"))
        status, _ = await call(http, api, "sendPhoto", chat_id=USER, photo=url, caption="Biểu đồ")
        assert status == 200
        missing, body = await call(http, api, "sendPhoto", chat_id=USER, photo=url + "-gone")
        assert (missing, body["error_code"]) == (400, 400)
    sent = api.sent(USER)
    assert [(c.method, c.photo, c.text) for c in sent] == [("sendPhoto", b"\x89PNG-chart", "Biểu đồ")]
    unreachable, _ = await call(http, api, "sendPhoto", chat_id=USER, photo=url)  # server gone
    assert unreachable == 400


async def test_sticker_and_chat_action(api, http):
    api.add_user(USER)
    assert (await call(http, api, "sendSticker", chat_id=USER, sticker="0e078a2fb66a5f34067b"))[0] == 200
    assert await call(http, api, "sendChatAction", chat_id=USER, action="typing") == (200, {"ok": True})
    assert [c.method for c in api.sent(USER)] == ["sendSticker"]
    assert len(api.calls_of("sendChatAction")) == 1


async def test_webhook_set_info_and_delete(api, http):
    short = await call(http, api, "setWebhook", url="https://example.org/zalo/webhook", secret_token="short")
    assert short[0] == 400
    plain = await call(http, api, "setWebhook", url="http://example.org/hook", secret_token="s" * 8)
    assert plain[0] == 400
    status, body = await call(http, api, "setWebhook", url="https://example.org/zalo/webhook", secret_token="s" * 8)
    assert status == 200 and body["result"]["url"] == "https://example.org/zalo/webhook"
    assert (await call(http, api, "getWebhookInfo"))[1]["result"]["url"] == "https://example.org/zalo/webhook"
    assert (await call(http, api, "getUpdates", timeout="0.05"))[0] == 409  # not while a webhook is set
    assert (await call(http, api, "deleteWebhook"))[1]["result"]["url"] == ""
    assert (await call(http, api, "getWebhookInfo"))[1]["result"]["url"] == ""


async def test_post_to_webhook_sends_the_secret_and_the_envelope(api, http):
    received: list[tuple[str | None, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Bot-Api-Secret-Token"), await request.json()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/zalo/webhook", hook)
    async with TestServer(app, host="127.0.0.1") as bot:  # stands in for the bot's webhook endpoint
        url = str(bot.make_url("/zalo/webhook"))
        assert (await call(http, api, "setWebhook", url=url, secret_token="s3cret-tok3n"))[0] == 200
        update = api.text_update(USER, "qua webhook")
        reply = await api.post_to_webhook(update)
        bare = await api.post_to_webhook(update, secret_token="wrong-secret", envelope=False, client=http)
    assert (reply.status, bare.status) == (200, 200)
    assert received == [("s3cret-tok3n", {"ok": True, "result": update}), ("wrong-secret", update)]


async def test_fail_injects_errors_then_recovers(api, http):
    api.add_user(USER)
    api.fail("sendMessage", status=429, retry_after=3)
    api.fail("sendMessage", chat_id=USER, status=500, times=1)
    status, body = await call(http, api, "sendMessage", chat_id=USER, text="1")
    assert (status, body["error_code"], body["parameters"]) == (429, 429, {"retry_after": 3})
    assert (await call(http, api, "sendMessage", chat_id=USER, text="2"))[0] == 500
    assert (await call(http, api, "sendMessage", chat_id=USER, text="3"))[0] == 200
    assert [c.status for c in api.calls_of("sendMessage")] == [429, 500, 200]


async def test_hang_delays_the_call_then_carries_it_out(api, http):
    api.add_user(USER)
    api.hang("sendMessage", seconds=30)
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            api.url("sendMessage"), json={"chat_id": USER, "text": "chậm"}, timeout=aiohttp.ClientTimeout(total=0.1)
        ):
            pass
    assert api.sent(USER) == []
    await api.stop()  # cuts the hang short: the call goes through, as on the platform
    assert [c.text for c in api.sent(USER)] == ["chậm"]


async def test_ask_pushes_and_waits_for_the_answer(api, http):
    async def echo_bot() -> None:
        status, body = await call(http, api, "getUpdates", timeout="5")
        message = body["result"]["message"]
        await call(http, api, "sendMessage", chat_id=message["chat"]["id"], text="Đã nhận: " + message["text"])

    task = asyncio.create_task(echo_bot())
    answers = await api.ask(USER, "Xin chào")
    await task
    assert [c.text for c in answers] == ["Đã nhận: Xin chào"]
    assert api.server_errors == []


async def test_max_in_window_counts_sends_per_second(api, http):
    api.add_user(USER)
    for n in range(5):
        await call(http, api, "sendMessage", chat_id=USER, text=str(n))
    times = [c.at for c in api.calls_of("sendMessage")]
    spread, closest = times[-1] - times[0], min(b - a for a, b in zip(times, times[1:], strict=False))
    # Judged from the recorded arrival times, not from how fast this machine happens to be.
    assert api.max_in_window("sendMessage", window=spread + 0.001) == 5
    assert api.max_in_window(None, window=spread + 0.001) == 5
    assert closest > 0 and api.max_in_window("sendMessage", window=closest) == 1


async def test_an_update_is_not_lost_to_a_poll_whose_client_gave_up(api, http):
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(api.url("getUpdates"), json={"timeout": "5"}, timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    while api._server.server_state.connections:  # until the server has seen the connection close
        await asyncio.sleep(0.01)
    update = api.push_text(USER, "vẫn còn")
    await api.wait_for(lambda c: c.method == "getUpdates" and c.status == 408)  # the abandoned poll let it be
    assert (await call(http, api, "getUpdates", timeout="1"))[1]["result"] == update


async def test_poll_timeout_cap_shortens_long_polls(api, http):
    api.poll_timeout_cap = 0.05
    assert (await call(http, api, "getUpdates", timeout="30"))[0] == 408


async def test_rate_limit_refuses_sends_beyond_the_cap(api, http):
    api.add_user(USER)
    api.rate_limit_per_s = 2
    statuses = [(await call(http, api, "sendMessage", chat_id=USER, text=str(n)))[0] for n in range(3)]
    first, third = (c.at for c in api.calls_of("sendMessage")[::2])
    # Two in a second: the third is refused if it came within a second of the first (recorded times decide).
    assert statuses == [200, 200, 429 if third - first < 1.0 else 200]
    api.reset()
    assert api.calls == [] and api.rate_limit_per_s is None
    assert (await call(http, api, "sendMessage", chat_id=USER, text="again"))[0] == 200
