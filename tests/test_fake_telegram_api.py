"""Tests of the fake Telegram Bot API (tests/fakes/telegram_api.py), driven by the real
python-telegram-bot ``Bot`` and ``Application``.

Every test taking the ``bot`` fixture runs twice: on python-telegram-bot's own transport (httpx, form
bodies) and on the bot's (bot/channels/telegram_http.py: aiohttp, JSON bodies), so the fake's faults
(429, 5xx, timeouts, uploads) are checked against both and the bot's transport against all of them."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import socket
import time
import warnings

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.channels.telegram_http import AiohttpRequest
from tests.fakes.telegram_api import Call, FakeBotAPI

USER = 1001


def _retry_after(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # int vs timedelta deprecation in PTB 22
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
async def api():
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture(params=["httpx", "aiohttp"])
async def bot(api: FakeBotAPI, request: pytest.FixtureRequest):
    request = HTTPXRequest(connection_pool_size=16) if request.param == "httpx" else AiohttpRequest(16)
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url, request=request) as b:
        yield b


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Đồng ý", callback_data="agree")]])
    await update.effective_message.reply_text("<b>Xin chào!</b>", parse_mode="HTML", reply_markup=keyboard)


async def _button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer("Đã ghi nhận")
    await query.edit_message_text(f"Bạn chọn: {query.data}")


async def _photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    file = await update.message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    await update.message.reply_text(f"{len(data)} bytes, caption={update.message.caption}")


@pytest.fixture
async def app(api: FakeBotAPI):
    application: Application = (
        ApplicationBuilder().token(api.token).base_url(api.base_url).base_file_url(api.base_file_url).build()
    )
    application.add_handler(CommandHandler("start", _start))
    application.add_handler(CallbackQueryHandler(_button))
    application.add_handler(MessageHandler(filters.PHOTO, _photo))
    await application.initialize()
    await application.start()
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


# ------------------------------------------------------------------------------ bare Bot


async def test_get_me_and_send_message(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == api.bot_id == 123456789
    assert me.username == "danvan_test_bot"
    assert me.is_bot

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a:1")]])
    first = await bot.send_message(42, "123", reply_markup=keyboard)
    second = await bot.send_message(42, "tiếp theo")
    other = await bot.send_message(7, "xin chào")

    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.chat.id == 42 and first.chat.type == "private"
    assert first.from_user.id == api.bot_id
    assert first.text == "123"
    assert first.reply_markup == keyboard
    assert isinstance(first.date, dtm.datetime)

    sent = api.sent(42)
    assert [c.text for c in sent] == ["123", "tiếp theo"]
    call = sent[0]
    # python-telegram-bot sends form bodies; params are decoded to their types
    assert call.params["chat_id"] == 42 and call.params["text"] == "123"
    assert call.reply_markup == {"inline_keyboard": [[{"text": "A", "callback_data": "a:1"}]]}
    assert call.buttons == [{"text": "A", "callback_data": "a:1"}]
    assert call.message_id == 1 and call.chat_id == 42 and call.ok
    assert [c.chat_id for c in api.sent()] == [42, 42, 7]
    assert api.calls[0].method == "getMe"


async def test_photo_and_document_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    photo_bytes = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\r\n--boundary\r\n\r\n"
    message = await bot.send_photo(USER, photo=photo_bytes, caption="ảnh")
    assert message.caption == "ảnh"
    file = await bot.get_file(message.photo[-1].file_id)
    assert file.file_path.startswith(api.base_file_url)
    assert bytes(await file.download_as_bytearray()) == photo_bytes

    doc_bytes = b"%PDF-1.4\r\n" + bytes(range(256))
    doc = await bot.send_document(USER, document=doc_bytes, filename="báo cáo.pdf")
    assert doc.document.file_name == "báo cáo.pdf"
    assert doc.document.mime_type == "application/pdf"
    assert doc.document.file_size == len(doc_bytes)
    assert api.file_bytes(doc.document.file_id) == doc_bytes
    upload = api.sent(USER)[-1].params["document"]
    assert upload["file_name"] == "báo cáo.pdf" and upload["file_size"] == len(doc_bytes)

    # re-sending by file_id works, an unknown file_id does not
    again = await bot.send_document(USER, document=doc.document.file_id)
    assert again.document.file_id == doc.document.file_id
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_photo(USER, photo="no-such-file-id")

    # a photo "sent by a user"
    user_file_id = api.add_file(b"user-photo-bytes")
    file = await bot.get_file(user_file_id)
    assert bytes(await file.download_as_bytearray()) == b"user-photo-bytes"


# ------------------------------------------------------------------------------ Application


async def test_application_start_and_callback(api: FakeBotAPI, app: Application) -> None:
    api.push_sticker(USER)  # no handler for it: ignored by the bot
    await api.wait_delivered()
    answers = await api.ask(USER, "/start", first_name="Lan")
    assert len(answers) == 1
    greeting = answers[0]
    assert greeting.method == "sendMessage"
    assert greeting.text == "<b>Xin chào!</b>"
    assert greeting.result["text"] == "Xin chào!"  # HTML parsed like Telegram does
    assert greeting.buttons[0]["callback_data"] == "agree"

    mark = api.mark()
    api.push_callback(USER, "agree")
    edits = await api.wait_sent(USER, since=mark)
    answer = await api.wait_for(lambda c: c.method == "answerCallbackQuery", since=mark)
    assert answer.ok and answer.chat_id == USER and answer.params["text"] == "Đã ghi nhận"
    assert edits[0].method == "editMessageText"
    assert edits[0].params["message_id"] == greeting.message_id
    assert api.message(USER, greeting.message_id)["text"] == "Bạn chọn: agree"
    assert "reply_markup" not in api.message(USER, greeting.message_id)  # edit without markup drops it

    # the click helper does the same in one step
    again = await api.click(USER, "later", message_id=greeting.message_id)
    assert again[0].method == "editMessageText" and again[0].text == "Bạn chọn: later"


async def test_application_user_photo_round_trip(api: FakeBotAPI, app: Application) -> None:
    data = bytes(range(256)) * 3
    mark = api.mark()
    api.push_photo(USER, data, caption="hiện trường")
    [reply] = await api.wait_sent(USER, since=mark)
    assert reply.text == f"{len(data)} bytes, caption=hiện trường"
    assert any(c.method == "getFile" and c.ok for c in api.calls)


async def test_application_survives_injected_errors(api: FakeBotAPI, app: Application) -> None:
    api.fail("sendMessage", chat_id=USER, status=403)
    mark = api.mark()
    api.push_text(USER, "/start")
    failed = await api.wait_for(lambda c: c.method == "sendMessage", since=mark)
    assert not failed.ok and failed.status == 403 and api.sent(USER, since=mark) == []
    # the next /start is answered again
    assert len(await api.ask(USER, "/start")) == 1


# ------------------------------------------------------------------------------ faults


async def test_error_statuses_map_to_ptb_exceptions(api: FakeBotAPI, bot: Bot) -> None:
    api.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter) as excinfo:
        await bot.send_message(1, "x")
    assert _retry_after(excinfo.value) == 3
    await bot.send_message(1, "x")  # times=1: next one passes

    api.fail("sendMessage", status=403)
    with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
        await bot.send_message(1, "x")

    api.fail("sendMessage", status=400)
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(1, "x")

    api.fail("sendMessage", chat_id=5, status=502, times=2)
    await bot.send_message(6, "other chats are not affected")
    for _ in range(2):
        with pytest.raises(NetworkError, match="(?i)Bad Gateway"):
            await bot.send_message(5, "x")
    await bot.send_message(5, "x")

    api.fail(None, status=500, description="Internal Server Error: boom")  # any method
    with pytest.raises(NetworkError, match="(?i)boom"):
        await bot.get_me()

    failed = [c for c in api.calls if not c.ok]
    assert [c.status for c in failed] == [429, 403, 400, 502, 502, 500]
    assert len(api.sent(5)) == 1


async def test_blocked_and_deactivated_chats(api: FakeBotAPI, bot: Bot) -> None:
    api.blocked_chats.add(11)
    api.deactivated_chats.add(12)
    with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
        await bot.send_message(11, "x")
    with pytest.raises(Forbidden, match="(?i)user is deactivated"):
        await bot.send_photo(12, photo=b"x")
    await bot.send_message(13, "fine")

    api.push_my_chat_member(14, blocked=True)
    assert 14 in api.blocked_chats
    with pytest.raises(Forbidden):
        await bot.send_chat_action(14, "typing")
    api.push_my_chat_member(14, blocked=False)
    assert await bot.send_chat_action(14, "typing")


async def test_latency_applies_and_overlaps(api: FakeBotAPI, bot: Bot) -> None:
    api.latency = 0.1
    start = time.perf_counter()
    await bot.send_message(1, "one")
    assert time.perf_counter() - start >= 0.1  # a lower bound: the fake slept

    mark, answered = api.mark(), []

    async def send(chat: int) -> None:
        await bot.send_message(chat, "x")
        answered.append(time.monotonic())

    await asyncio.gather(*(send(i) for i in range(1, 11)))
    arrived = [c.at for c in api.calls[mark:] if c.method == "sendMessage"]
    assert len(arrived) == 10 and max(arrived) < min(answered)  # all ten were in the fake at once

    api.latency = 30.0
    async with asyncio.timeout(10):  # a send would wait 30 s; getMe is not a send-type call
        await bot.get_me()


async def test_hang_triggers_client_timeout(api: FakeBotAPI, bot: Bot) -> None:
    api.hang("sendMessage", chat_id=3, seconds=30)
    with pytest.raises(TimedOut):
        await bot.send_message(3, "x", read_timeout=0.2)
    await bot.send_message(3, "y", read_timeout=2)  # times=1


async def test_rate_limit_and_max_in_window(api: FakeBotAPI, bot: Bot) -> None:
    api.rate_limit_per_s = 5
    results = []
    for i in range(8):
        try:
            await bot.send_message(i + 1, "x")
            results.append("ok")
        except RetryAfter as exc:
            assert _retry_after(exc) == 1
            results.append("429")
    assert results[:5] == ["ok"] * 5 and api.max_in_window("sendMessage") <= 5
    sent = [c for c in api.calls if c.method == "sendMessage"]
    for call, result in zip(sent, results, strict=True):  # each refusal had five sends in the second before it
        if result == "429":
            assert sum(1 for c in sent if c.ok and call.at - 1.0 < c.at <= call.at) == 5


def test_max_in_window_counts_only_successful_calls_of_the_method() -> None:
    api = FakeBotAPI()
    for at in (10.0, 10.1, 10.5, 10.99, 11.0, 11.05, 12.5):
        api.calls.append(Call("sendMessage", {}, at, 1))
    api.calls.append(Call("sendMessage", {}, 10.6, 1, ok=False, status=429))
    api.calls.append(Call("sendPhoto", {}, 10.7, 1))
    # [10.1, 11.1) holds 10.1, 10.5, 10.99, 11.0, 11.05
    assert api.max_in_window("sendMessage", window=1.0) == 5
    assert api.max_in_window("sendMessage", window=0.5) == 3  # 10.99, 11.0, 11.05
    assert api.max_in_window("sendMessage", window=0.001) == 1
    assert api.max_in_window("sendPhoto") == 1
    assert api.max_in_window("getMe") == 0


# ------------------------------------------------------------------------------ updates


async def test_get_updates_long_polling(api: FakeBotAPI, bot: Bot) -> None:
    start = time.perf_counter()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.3)) == ()
    assert time.perf_counter() - start >= 0.25

    asyncio.get_running_loop().call_later(0.05, api.push_text, USER, "/start@danvan_test_bot hello")
    async with asyncio.timeout(20):  # returned on arrival, not after the poll's 60 s
        updates = await bot.get_updates(timeout=60, read_timeout=70)
    [update] = updates
    assert update.message.text == "/start@danvan_test_bot hello"
    assert update.message.entities[0].type == "bot_command"
    assert update.message.entities[0].length == len("/start@danvan_test_bot")
    assert update.effective_user.first_name == "Lan" and update.effective_user.language_code == "vi"
    assert update.effective_chat.id == USER and update.effective_chat.type == "private"

    api.push_text(USER, "hai")
    api.push_text(USER, "ba")
    unconfirmed = await bot.get_updates()
    assert [u.update_id for u in unconfirmed] == [update.update_id, update.update_id + 1, update.update_id + 2]
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [update.update_id]
    rest = await bot.get_updates(offset=update.update_id + 1)
    assert [u.message.text for u in rest] == ["hai", "ba"]
    assert [u.message.message_id for u in rest] == [2, 3]  # message ids count per chat

    with pytest.raises(TimeoutError):
        await api.wait_delivered(timeout=0.02)
    delivered = asyncio.create_task(api.wait_delivered())
    await asyncio.sleep(0)
    assert not delivered.done()
    assert await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0) == ()  # confirms them
    await delivered
    await api.wait_delivered(timeout=0.01)  # nothing pending: returns at once


async def test_unconfirmed_updates_survive_a_restart(api: FakeBotAPI, bot: Bot) -> None:
    """Telegram's offset semantics, which bench.faults relies on: an update is acknowledged only when a later
    getUpdates passes a higher offset; until then a restarted bot (no offset) receives it again."""
    first, second = api.push_text(USER, "một"), api.push_callback(USER, "1:x", message_id=1)
    fetched = await bot.get_updates(timeout=0)
    assert [u.update_id for u in fetched] == [first["update_id"], second["update_id"]]
    assert not api.acknowledged(first["update_id"]) and not api.acknowledged(second["update_id"])
    await bot.get_updates(offset=first["update_id"] + 1, timeout=0)  # handled the first, then killed
    assert api.acknowledged(first["update_id"]) and not api.acknowledged(second["update_id"])
    again = await bot.get_updates(timeout=0)  # the restarted bot knows no offset
    assert [u.update_id for u in again] == [second["update_id"]]
    assert api.acknowledged(first["update_id"]), "a confirmation is never taken back"


async def test_update_builders_parse_in_ptb(api: FakeBotAPI, bot: Bot) -> None:
    command = Update.de_json(api.text_update(USER, "/help"), bot)
    assert filters.COMMAND.check_update(command)
    assert not filters.COMMAND.check_update(Update.de_json(api.text_update(USER, "chào"), bot))

    sent = await bot.send_message(
        USER, "chọn", reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("X", callback_data="x"))
    )
    callback = Update.de_json(api.callback_update(USER, "x"), bot)
    assert callback.callback_query.data == "x"
    assert callback.callback_query.message.message_id == sent.message_id
    assert callback.callback_query.message.reply_markup == sent.reply_markup
    assert callback.callback_query.from_user.id == USER

    photo = Update.de_json(api.photo_update(USER, b"abc", caption="c"), bot)
    assert photo.message.photo[-1].file_size == 3 and photo.message.caption == "c"
    location = Update.de_json(api.location_update(USER, 21.03, 105.85), bot)
    assert (location.message.location.latitude, location.message.location.longitude) == (21.03, 105.85)
    contact = Update.de_json(api.contact_update(USER, "+84901234567"), bot)
    assert contact.message.contact.phone_number == "+84901234567" and contact.message.contact.user_id == USER
    sticker = Update.de_json(api.sticker_update(USER), bot)
    assert sticker.message.sticker.file_id in api.files
    blocked = Update.de_json(api.my_chat_member_update(USER, blocked=True), bot)
    assert blocked.my_chat_member.new_chat_member.status == "kicked"
    assert blocked.my_chat_member.old_chat_member.status == "member"
    unblocked = Update.de_json(api.my_chat_member_update(USER, blocked=False), bot)
    assert unblocked.my_chat_member.new_chat_member.status == "member"

    ids = [u.update_id for u in (command, callback, photo, location, contact, sticker, blocked, unblocked)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert api.pending_updates == []  # builders do not queue


async def test_webhook_methods(api: FakeBotAPI, bot: Bot) -> None:
    assert await bot.set_webhook("https://example.invalid/hook", secret_token="s3cret")
    info = await bot.get_webhook_info()
    assert info.url == "https://example.invalid/hook"
    with pytest.raises(Conflict):
        await bot.get_updates()

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    update = api.text_update(USER, "/start")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await api.post_to_webhook(update, client=client)
    assert response.status_code == 200
    assert seen[0].headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
    assert json.loads(seen[0].content) == update

    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == ()


async def test_commands_and_menu_button(api: FakeBotAPI, bot: Bot) -> None:
    assert await bot.set_my_commands([BotCommand("start", "Bắt đầu")], language_code="vi")
    assert await bot.set_my_commands([BotCommand("help", "Help")], scope=BotCommandScopeChat(USER))
    assert [c.command for c in await bot.get_my_commands(language_code="vi")] == ["start"]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(USER))] == ["help"]
    assert await bot.get_my_commands() == ()
    assert api.get_commands(language_code="vi") == [{"command": "start", "description": "Bắt đầu"}]
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Start-Now", "x")])
    assert await bot.delete_my_commands(language_code="vi")
    assert await bot.get_my_commands(language_code="vi") == ()

    assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert api.menu_buttons[None] == {"type": "commands"}
    assert await bot.close() and await bot.log_out()


async def test_telegram_validation_errors(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(1, "<b>chưa đóng", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(1, "a < b", parse_mode="HTML")
    ok = await bot.send_message(1, "<b>Chào</b> &amp; <a href='https://t.me'>bạn</a>", parse_mode="HTML")
    assert ok.text == "Chào & bạn"
    assert (await bot.send_message(1, "a < b")).text == "a < b"  # no parse_mode: anything goes
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(1, "  ")
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(1, "x" * 4097)
    await bot.send_message(1, "x" * 4096)
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            1, "x", reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("b", callback_data="d" * 65))
        )

    keyboard = InlineKeyboardMarkup.from_button(InlineKeyboardButton("b", callback_data="d"))
    message = await bot.send_message(2, "gốc", reply_markup=keyboard)
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("gốc", chat_id=2, message_id=message.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("mới", chat_id=2, message_id=message.message_id, reply_markup=keyboard)
    assert edited.text == "mới" and edited.edit_date is not None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat_id=2, message_id=message.message_id, reply_markup=keyboard)
    assert (await bot.edit_message_reply_markup(chat_id=2, message_id=message.message_id)).reply_markup is None
    assert await bot.delete_message(2, message.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=2, message_id=message.message_id)
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(2, message.message_id)
    with pytest.raises(BadRequest, match="(?i)query ID is invalid"):
        await bot.answer_callback_query("12345")


async def test_raw_http_bodies_and_unknown_method(api: FakeBotAPI) -> None:
    url = f"{api.base_url}{api.token}"
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{url}/noSuchMethod", json={})
        assert response.status_code == 404
        assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

        markup = {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
        response = await client.post(
            f"{url}/sendMessage", json={"chat_id": "77", "text": "json", "reply_markup": json.dumps(markup)}
        )
        assert response.json()["result"]["reply_markup"] == markup
        response = await client.post(
            f"{url}/sendMessage", data={"chat_id": "77", "text": "form", "reply_markup": json.dumps(markup)}
        )
        assert response.json()["ok"]
        response = await client.post(
            f"{url}/sendmessage",  # method names are case-insensitive, as on Telegram
            data={"chat_id": "77", "text": "multipart", "reply_markup": json.dumps(markup)},
            files={"unused": ("a.txt", b"x", "text/plain")},
        )
        assert response.json()["ok"]
        for call in api.sent(77):
            assert call.chat_id == 77 and call.reply_markup == markup and call.method == "sendMessage"
        assert [c.text for c in api.sent(77)] == ["json", "form", "multipart"]

        response = await client.get(f"{url}/getMe")
        assert response.json()["result"]["id"] == api.bot_id
        response = await client.get(f"{api.base_url}not-a-token/getMe")
        assert response.status_code == 404
        response = await client.get(f"{api.base_file_url}{api.token}/photos/nothing.jpg")
        assert response.status_code == 404
    assert api.server_errors == []


async def test_wait_helpers(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(5, "đã có")
    # already recorded calls are found immediately
    assert (await api.wait_for(lambda c: c.method == "sendMessage", timeout=0.01)).text == "đã có"
    assert [c.text for c in await api.wait_sent(5, timeout=0.01)] == ["đã có"]

    mark = api.mark()
    with pytest.raises(TimeoutError, match="(?i)sendMessage"):
        await api.wait_sent(5, since=mark, timeout=0.05)  # message lists the recent calls
    waiter = asyncio.create_task(api.wait_sent(5, count=2, since=mark, timeout=5))
    await bot.send_message(5, "một")
    await bot.send_message(6, "khác")
    assert not waiter.done()
    await bot.send_message(5, "hai")
    assert [c.text for c in await waiter] == ["một", "hai"]
    assert api._waiters == []


async def test_stop_is_clean_and_frees_the_port() -> None:
    api = FakeBotAPI()
    await api.start()
    port = api.port
    api.hang("sendMessage", seconds=60)
    url = f"{api.base_url}{api.token}"
    async with httpx.AsyncClient(timeout=30) as client:
        await client.post(f"{url}/getMe")  # leaves an idle keep-alive connection
        poll = asyncio.create_task(client.post(f"{url}/getUpdates", data={"timeout": "30"}))
        hung = asyncio.create_task(client.post(f"{url}/sendMessage", data={"chat_id": "1", "text": "x"}))
        await api.wait_for(lambda c: c.method == "getMe")
        while api.mark() < 3:  # noqa: ASYNC110 -- wait until both requests have arrived
            await asyncio.sleep(0.01)

        async with asyncio.timeout(20):  # not held up by the 60 s hang nor the 30 s poll
            await api.stop()
        results = await asyncio.gather(poll, hung, return_exceptions=True)
        assert [r.json()["ok"] if isinstance(r, httpx.Response) else r for r in results] == [True, True]

    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    with socket.socket() as sock:  # a new server could listen there
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    await api.stop()  # idempotent
