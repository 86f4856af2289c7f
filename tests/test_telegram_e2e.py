"""End to end on Telegram: the bot's Telegram channel (its getUpdates loop over python-telegram-bot's Bot)
long-polling a fake Bot API server on loopback over HTTP."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import httpx
import pytest
from PIL import Image

from bot.app import App, utc_now
from bot.config import Config
from tests.fakes.telegram_api import FakeBotAPI
from tests.images import RED, encoded, gps_of, iphone_photo, jpeg, opened, phone_photo

pytestmark = pytest.mark.backends

LAN = 424242


def config_for(api: FakeBotAPI, db, **extra) -> Config:
    return Config(DANVAN_DB=db, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_URL=api.base_url, **extra)


@asynccontextmanager
async def running(config: Config):
    app = await App.build(config)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def button(call, label: str) -> str:
    for b in call.buttons:
        if label in b["text"]:
            return b["callback_data"]
    raise AssertionError(f"no button {label!r} in {[b['text'] for b in call.buttons]}")


async def click(api: FakeBotAPI, calls, label: str, count: int = 1):
    last = next(c for c in reversed(calls) if c.buttons)
    return await api.click(LAN, button(last, label), message_id=last.message_id, count=count)


async def test_onboarding_over_telegram_and_restart_mid_flow(database):
    async with FakeBotAPI() as api:
        config = config_for(api, database)
        async with running(config) as app:
            commands = api.get_commands(None, "vi")
            assert [c["command"] for c in commands][:2] == ["start", "gopy"]
            calls = await api.ask(LAN, "/start", first_name="Lan", language_code="vi")
            assert "Kính chào" in calls[0].text and calls[0].params["parse_mode"] == "HTML"
            calls = await click(api, calls, "Đồng ý")
            calls = await click(api, calls, "Đồng ý")
            assert "xã, phường nào" in calls[-1].text
            calls = await api.ask(LAN, "hai lang")
            calls = await click(api, calls, "xã Hải Lăng")
            assert "thôn, tổ dân phố" in calls[-1].text
            user = await app.store.users.find("telegram", str(LAN))
            assert user.display_name == "Lan"
        # The bot restarts; the person carries on at the same step with the buttons on screen.
        async with running(config) as app:
            calls = await click(api, calls, "Bỏ qua")
            assert "lĩnh vực nào" in calls[-1].text
            calls = await click(api, calls, "Dân vận khéo")
            assert calls[-1].method == "editMessageText"  # toggles edit the message in place
            assert "✅ Dân vận khéo" in str(calls[-1].reply_markup)
            calls = await click(api, calls, "Xong")
            assert "Thông tin của Ông/Bà" in calls[0].text and "xã Hải Lăng" in calls[0].text
            assert calls[0].buttons, "the profile and the main menu come as one message"
            user = await app.store.users.find("telegram", str(LAN))
            assert user.onboarded and user.locality_id is not None
        assert not api.server_errors


async def test_export_arrives_as_a_document_and_photos_get_an_answer(database):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)):
            await api.ask(LAN, "/start")
            mark = api.mark()
            api.push_photo(LAN, b"\x89PNG\r\n\x1a\n" + b"0" * 100)
            calls = await api.wait_sent(LAN, 1, since=mark)
            assert "«Đồng ý»" in calls[0].text and "Mục đích 1/2" in calls[0].text  # asked again, politely
            calls = await api.ask(LAN, "/dulieu")
            assert "không lưu thông tin nào" in calls[0].text  # nothing is kept before a purpose is accepted
            await click(api, await api.ask(LAN, "/start"), "Đồng ý")
            calls = await api.ask(LAN, "/dulieu", 2)
            assert "Dữ liệu bot đang lưu" in calls[0].text and calls[1].method == "sendDocument"
            [typing] = api.calls_of("sendChatAction", LAN)  # while the export was built
            assert typing.params["action"] == "typing" and typing.seq < calls[0].seq
            assert b'"consents"' in api.file_bytes(calls[1].result["document"]["file_id"])


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
async def test_photos_over_telegram_are_cleaned_and_shrunk_and_bad_ones_refused(database):
    """A phone's 12 MB photo, sent as a photo and as a file (an iPhone's HEIC too), is kept upright, ≤ 2560 px,
    without EXIF or GPS;
    a decompression bomb and a broken JPEG are refused with a clear message and nothing is kept."""
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)) as app:
            await click(api, await to_topics(api), "Xong")
            calls = await api.ask(LAN, "/phananh")
            calls = await click(api, calls, "Khác")
            await click(api, calls, "Đúng")
            photo = phone_photo()
            for send in (lambda: api.push_photo(LAN, photo),
                         lambda: api.push_document(LAN, photo, "IMG_2041.jpg", "image/jpeg"),
                         lambda: api.push_document(LAN, iphone_photo(), "IMG_0001.HEIC", "image/heic")):
                mark = api.mark()
                send()
                assert "Đã nhận ảnh" in (await api.wait_sent(LAN, 1, since=mark))[0].text
            for bad, said in ((encoded(Image.new("L", (10000, 10000)), "PNG"), "quá nhiều điểm ảnh"),
                              (photo[:2000] + bytes(range(256)) * 40, "không đọc được ảnh")):
                mark = api.mark()
                api.push_photo(LAN, bad)
                assert said in (await api.wait_sent(LAN, 1, since=mark))[0].text
            user = await app.store.users.find("telegram", str(LAN))
            attachments = (await app.store.cases.draft(user.id))["attachments"]
            assert [(a["kind"], a["mime"], a["filename"]) for a in attachments] == [("photo", "image/jpeg", None)] * 3
            heic = await app.store.files.get(attachments.pop()["sha256"])
            assert opened(heic).size == (96, 64) and not gps_of(heic)
            for attachment in attachments:
                kept = await app.store.files.get(attachment["sha256"])
                image = opened(kept)
                assert image.size == (1920, 2560) and image.getpixel((1900, 20)) == pytest.approx(RED, abs=40)
                assert not gps_of(kept) and not image.getexif() and b"Galaxy" not in kept


async def to_topics(api: FakeBotAPI) -> list:
    """Onboarding over Telegram up to the topics step; the bot's last messages."""
    calls = await api.ask(LAN, "/start")
    for label in ("Đồng ý", "Đồng ý"):
        calls = await click(api, calls, label)
    calls = await api.ask(LAN, "hai lang")
    calls = await click(api, calls, "xã Hải Lăng")
    return await click(api, calls, "Bỏ qua")


async def eventually(check, timeout: float = 5.0):
    """Wait until an async check holds (the bot acts on updates in its own tasks)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_blocked_person_is_marked_unreachable(database):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)) as app:
            await api.ask(LAN, "/start")

            async def reachable():
                return (await app.store.users.find("telegram", str(LAN))).reachable

            api.push_my_chat_member(LAN, blocked=True)
            await eventually(lambda: _not(reachable))
            api.push_my_chat_member(LAN, blocked=False)
            await eventually(reachable)
            # A send refused with 403 marks the person too.
            api.blocked_chats.add(LAN)
            mark = api.mark()
            api.push_text(LAN, "/huongdan")
            await api.wait_for(lambda c: c.method == "sendMessage" and c.status == 403, since=mark)
            await eventually(lambda: _not(reachable))


async def _not(check) -> bool:
    return not await check()


async def test_retry_after_is_honoured_for_replies(database):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)):
            api.fail("sendMessage", chat_id=LAN, status=429, retry_after=1, times=1)
            calls = await api.ask(LAN, "/huongdan", timeout=10)
            assert "/caidat" in calls[0].text
            failed = [c for c in api.calls_of("sendMessage", LAN) if c.status == 429]
            assert len(failed) == 1 and calls[0].at - failed[0].at >= 0.9


async def test_webhook_mode_checks_the_secret(database):
    from bot.server import build_asgi

    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_WEBHOOK_URL="https://bot.example.vn/telegram/webhook",
                            TELEGRAM_WEBHOOK_SECRET="s3cret-Value_1")
        async with running(config) as app:
            assert api.webhook["url"] == "https://bot.example.vn/telegram/webhook"
            assert api.webhook["secret_token"] == "s3cret-Value_1"
            transport = httpx.ASGITransport(app=build_asgi(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                update = api.text_update(LAN, "/huongdan")
                wrong = await client.post("/telegram/webhook", json=update,
                                          headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
                missing = await client.post("/telegram/webhook", json=update)
                assert wrong.status_code == missing.status_code == 403
                bad = await client.post("/telegram/webhook", content=b"{not json",
                                        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Value_1"})
                assert bad.status_code == 400
                mark = api.mark()
                ok = await client.post("/telegram/webhook", json=update,
                                       headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Value_1"})
                assert ok.status_code == 200
                calls = await api.wait_sent(LAN, 1, since=mark)
                assert "/caidat" in calls[0].text
            assert not api.calls_of("getUpdates")


async def test_webhook_refuses_what_is_not_an_update_without_a_traceback(database, caplog, monkeypatch):
    from bot import server
    from bot.server import build_asgi

    secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Value_1"}
    monkeypatch.setattr(server, "MAX_UPDATE_BYTES", 64 * 1024)
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_WEBHOOK_URL="https://bot.example.vn/telegram/webhook",
                            TELEGRAM_WEBHOOK_SECRET="s3cret-Value_1")
        async with running(config) as app:
            transport = httpx.ASGITransport(app=build_asgi(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                foreign = await client.post("/telegram/webhook", json={"update_id": 1},
                                            headers={"X-Telegram-Bot-Api-Secret-Token": "mật khẩu".encode()})
                assert foreign.status_code == 403
                update = api.text_update(LAN, "/huongdan")
                bodies = [[], None, 5, "x", {"update_id": "x"}, {"update_id": True}, {"message": {}},
                          {**update, "message": "x"}, {**update, "message": {**update["message"], "text": 5}},
                          {**update, "message": {**update["message"], "chat": []}}]
                for body in bodies:
                    answer = await client.post("/telegram/webhook", json=body, headers=secret)
                    assert answer.status_code == 400, body
                deep = await client.post("/telegram/webhook", content=b"[" * 5000 + b"]" * 5000, headers=secret)
                assert deep.status_code == 400

                async def endless():  # no Content-Length: the cap holds while the body streams in
                    for _ in range(100):
                        yield b" " * 1024

                assert (await client.post("/telegram/webhook", content=endless(), headers=secret)).status_code == 413
                assert not await app.store.journal.pending()
                mark = api.mark()
                ok = await client.post("/telegram/webhook", json=update, headers=secret)
                assert ok.status_code == 200
                assert "/caidat" in (await api.wait_sent(LAN, 1, since=mark))[0].text
                assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]

                async def full_disk(*args, **kwargs):
                    raise OSError("disk full")

                monkeypatch.setattr(app.store.journal, "accept", full_disk)
                again = await client.post("/telegram/webhook", json=api.text_update(LAN, "/huongdan"), headers=secret)
                assert again.status_code == 503  # not journalled: Telegram delivers it again


async def test_case_with_photo_answered_and_rated_over_telegram(database):
    """A citizen sends a report with a photo, a cadre answers, the citizen sees the answer and rates it."""
    cadre_id = 777000
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)) as app:
            calls = await click(api, await to_topics(api), "Xong")
            # The cadre of Hải Lăng.
            await api.ask(cadre_id, "/huongdan", first_name="Bình")
            cadre = await app.store.users.find("telegram", str(cadre_id))
            hai_lang = (await app.store.localities.search("hai lang", level=1))[0]
            await app.store.users.update(cadre.id, app.clock(), role="cadre", unit_name="Ban Dân vận xã Hải Lăng")
            await app.store.roles.set_scope(cadre.id, {hai_lang.id}, set())
            # The report, with a photo uploaded through the Bot API.
            calls = await api.ask(LAN, "/phananh")
            calls = await click(api, calls, "Khác")
            calls = await click(api, calls, "Đúng")
            mark = api.mark()
            api.push_photo(LAN, jpeg(), caption="Cột điện nghiêng sắp đổ ở thôn 2")
            calls = await api.wait_sent(LAN, 1, since=mark)
            assert "Đã nhận ảnh" in calls[0].text
            calls = await click(api, calls, "Tiếp tục")
            calls = await click(api, calls, "Gửi kèm tên")
            calls = await click(api, calls, "Khẩn cấp")
            mark = api.mark()
            calls = await click(api, calls, "Gửi")
            assert f"PA-{utc_now():%y}-000001" in calls[0].text
            pushed = await api.wait_sent(cadre_id, 1, since=mark)
            assert "khẩn cấp" in pushed[0].text.lower() and "Cột điện" in pushed[0].text
            # Telegram refuses the photo: a note takes its place and the case still opens, with its buttons.
            api.fail("sendPhoto", chat_id=cadre_id, status=400, description="Bad Request: IMAGE_PROCESS_FAILED")
            mark = api.mark()
            api.push_callback(cadre_id, button(pushed[0], "Mở ý kiến"), message_id=pushed[0].message_id)
            shown = await api.wait_sent(cadre_id, 2, since=mark)
            assert [c.method for c in shown] == ["sendMessage", "sendMessage"]
            assert "không hiển thị được" in shown[0].text and button(shown[1], "Trả lời")
            # Opened again: the photo comes along.
            mark = api.mark()
            api.push_callback(cadre_id, button(pushed[0], "Mở ý kiến"), message_id=pushed[0].message_id)
            shown = await api.wait_sent(cadre_id, 2, since=mark)
            assert shown[0].method == "sendPhoto"
            assert api.file_bytes(shown[0].result["photo"][-1]["file_id"]).startswith(b"\xff\xd8")
            mark = api.mark()
            api.push_callback(cadre_id, button(shown[1], "Trả lời"), message_id=shown[1].message_id)
            await api.wait_sent(cadre_id, 1, since=mark)
            mark = api.mark()
            api.push_text(cadre_id, "Điện lực đã cử người đến chằng chống cột điện.")
            preview = await api.wait_sent(cadre_id, 1, since=mark)
            assert "Xem trước" in preview[0].text
            mark = api.mark()
            api.push_callback(cadre_id, button(preview[0], "Gửi"), message_id=preview[0].message_id)
            answer = await api.wait_sent(LAN, 1, since=mark)
            assert "Điện lực đã cử người" in answer[0].text and "Ban Dân vận xã Hải Lăng" in answer[0].text
            calls = await api.click(LAN, button(answer[0], "Xem"), message_id=answer[0].message_id)
            calls = await click(api, calls, "Hài lòng")
            assert "Cảm ơn Ông/Bà đã đánh giá" in calls[0].text
            case = await app.store.cases.by_code(f"PA-{utc_now():%y}-000001")
            assert case.rating == "good" and case.status == "answered"
        assert not api.server_errors


async def test_a_question_that_could_not_be_delivered_is_asked_again(database):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)):
            calls = await api.ask(LAN, "/start")
            calls = await click(api, calls, "Đồng ý")
            api.fail("sendMessage", chat_id=LAN, status=400, description="Bad Request: message is too long")
            last = next(c for c in reversed(calls) if c.buttons)
            mark = api.mark()
            api.push_callback(LAN, button(last, "Không đồng ý"), message_id=last.message_id)
            lost = await api.wait_for(lambda c: c.method == "sendMessage" and c.status == 400, since=mark)
            # The person never saw "which commune?": what they write next is not taken as the answer.
            mark = api.mark()
            calls = await api.ask(LAN, "alo")
            await asyncio.sleep(0.2)
            assert len(api.sent(LAN, since=mark)) == 1 and "xã, phường nào" in calls[0].text
            assert lost.text.endswith(calls[0].text)  # the lost question, asked again
            calls = await api.ask(LAN, "hai lang")
            assert button(calls[-1], "xã Hải Lăng")


async def test_a_report_is_measured_as_telegram_counts_it(database):
    """2,116 characters full of emoji are over 3,000 UTF-16 units, the most a report may have on Telegram:
    said at once (it used to pass, and then its review could not be shown, so «Gửi» never came)."""
    text = ("Ngập 🌊🌊🌊🌊🌊🌊🌊🌊🌊🌊🌊🌊🌊🌊 " * 200)[:2116]
    assert len(text) == 2116 and len(text.encode("utf-16-le")) // 2 > 3000
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)):
            calls = await click(api, await to_topics(api), "Xong")
            calls = await api.ask(LAN, "/phananh")
            calls = await click(api, calls, "Khác")
            calls = await click(api, calls, "Đúng")
            calls = await api.ask(LAN, text)
            assert "3000" in calls[0].text and str(len(text.encode("utf-16-le")) // 2) in calls[0].text
            calls = await api.ask(LAN, text[:1400])  # 1,400 characters, about 2,000 units: fine
            assert "Đã nhận nội dung" in calls[0].text


async def test_menus_for_every_language_code_and_a_role_given_from_the_command_line(tmp_path):
    async with FakeBotAPI() as api:
        async with running(config_for(api, tmp_path / "tg.db")) as app:
            anyone = [c["command"] for c in api.get_commands(None, "")]  # a Telegram in French, Thai, …
            assert anyone[:2] == ["start", "gopy"] and "thongbao" not in anyone
            await api.ask(LAN, "/huongdan", first_name="Lan", language_code="fr")
            chat = {"type": "chat", "chat_id": LAN}
            assert api.get_commands(chat) == []  # a citizen: the default menu serves
            user = await app.store.users.ensure("telegram", str(LAN), str(LAN), None, "vi", utc_now())
            await app.store.users.update(user.id, utc_now(), role="admin")  # what `danvan admin add` does
            await api.ask(LAN, "/huongdan")
            mine = [c["command"] for c in api.get_commands(chat)]
            assert {"thongbao", "hopthu", "moicanbo"} <= set(mine)
