"""The demo's text-only view of the web chat ("Xem như trên Zalo"): the same bot through the capabilities of a
channel without buttons, HTML or edits, answered by typing; and the web chat's HTTP API apart from its channel."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from playwright.async_api import expect

from tests.test_web_api import build_app, client, served, text_of
from tests.test_web_browser import OUTPUT, phone_page, require_chromium

ROOT = Path(__file__).resolve().parents[1]
CASE_CODE = re.compile(r"PA-\d{2}-\d{6}")


def test_the_web_channel_and_its_http_api_do_not_import_the_app():
    """The HTTP module is given the services it uses; the channel is transport only: no import circle with bot.app."""
    for path in (ROOT / "bot" / "channels" / "web.py", ROOT / "bot" / "webchat.py"):
        imported = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)}
        assert "bot.app" not in imported and "bot.server" not in imported, path


async def test_the_text_only_view_answers_by_numbers_in_plain_text(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with client(app) as web:
            assert (await web.open())["views"] == ["web", "webtext"]
            switched = await web.post("/api/view", {"view": "webtext"})
            assert switched.status_code == 200 and switched.json()["view"] == "webtext"
            assert (await web.open())["view"] == "webtext", "the session remembers its view"

            greeting = await web.say("/start")
            assert all("html" not in m and m["options"] == [] for m in greeting if m["from"] == "bot")
            assert "1. Đồng ý" in text_of(greeting) and "trả lời bằng số" in text_of(greeting)
            assert "<b>" not in text_of(greeting)
            consent = await web.say("1")
            assert "Mục đích 2/2" in text_of(consent)

            # The text-only view is a channel of its own: the browser is a new person there.
            assert await app.store.users.find("webtext", web_chat(app)) is not None
            assert await app.store.users.find("web", web_chat(app)) is None

            # Personas are people of the web chat: not played in the text-only view.
            refused = await web.post("/api/persona", {"persona": "admin"})
            assert refused.status_code == 400
            back = await web.post("/api/view", {"view": "web"})
            assert back.status_code == 200 and (await web.history()) == []
            assert (await web.post("/api/persona", {"persona": "admin"})).status_code == 200
            assert (await web.post("/api/view", {"view": "zalo"})).status_code == 400
    finally:
        await app.stop()


def web_chat(app) -> str:
    return next(iter(app.webtext._chats))


async def test_production_has_no_text_only_view(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False)
    try:
        assert app.webtext is None and list(app.outbound.channels) == ["web"]
        async with client(app) as web:
            assert (await web.open())["views"] == ["web"]
            assert (await web.post("/api/view", {"view": "webtext"})).status_code in (404, 405)
    finally:
        await app.stop()


async def test_onboarding_and_a_report_in_the_text_only_view_by_typing_only(tmp_path, clock):
    require_chromium()
    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with served(app) as url, phone_page() as page:
            try:
                await page.goto(url + "/")
                log = page.locator("#log")
                await expect(log).to_contain_text("Mục đích 1/2")
                await expect(page.locator("#log button.option").first).to_be_visible()

                switch = page.get_by_label("Xem như trên Zalo")
                await switch.check()
                await expect(page.locator("#text-view-hint")).to_be_visible()
                await expect(page.locator("#persona")).to_be_hidden()
                await expect(page.locator("#commands-toggle")).to_be_hidden()
                await expect(page.locator("#log .msg.bot").last).to_contain_text("1. Đồng ý")

                async def say(text: str, expected: str) -> None:
                    await page.locator("#text").fill(text)
                    await page.locator("#text").press("Enter")
                    await expect(page.locator("#log .msg.bot").last).to_contain_text(expected)

                await say("1", "Mục đích 2/2")
                await say("1", "xã, phường nào")
                await say("hai lang", "1. xã Hải Lăng")
                await say("1", "thôn, tổ dân phố nào")
                await say("2", "lĩnh vực nào")  # 2. Bỏ qua
                await say("1", "1. ✅ Xây dựng nông thôn mới")  # a toggle comes back as a new message
                await say("7", "Lĩnh vực theo dõi: Xây dựng nông thôn mới")  # 7. Xong
                await page.screenshot(path=str(OUTPUT / "web-text-onboarding.png"))

                await say("phản ánh", "thuộc lĩnh vực nào")
                await say("1", "đúng không?")
                await say("1", "mô tả sự việc")
                report = "Đèn đường thôn Thượng Xá hỏng <b>hai tuần</b> nay, tối đi lại nguy hiểm."
                await say(report, "Tiếp tục")
                await say("1", "gửi ẩn danh")
                await say("2", "khẩn cấp")
                await say("2", "xem lại trước khi gửi")
                review = page.locator("#log .msg.bot").last
                await expect(review).to_contain_text(report)  # the bot's plain text is shown as text, never markup
                assert await page.locator("#log .msg b, #log button.option").count() == 0
                await say("1", "PA-26-")
                sent = await page.locator("#log .msg.bot").last.inner_text()
                code = CASE_CODE.search(sent).group(0)
                case = await app.store.cases.by_code(code)
                assert case is not None and case.content == report

                await page.locator("#log").evaluate("el => el.scrollTop = el.scrollHeight")
                await page.screenshot(path=str(OUTPUT / "web-text-report.png"))

                await switch.uncheck()  # back to the web chat: its own conversation, with buttons
                await expect(page.locator("#log button.option", has_text="Đồng ý").last).to_be_visible()
                await expect(log).not_to_contain_text(code)
            finally:
                app.webtext.close()
    finally:
        await app.stop()
