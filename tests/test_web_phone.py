"""The web chat as a phone shows it (390×844), in Debian's Chromium: what survives a restart and a reload, what
a person typed and the bot refused, the "tin mới ↓" marker and the unread count, a photo shrunk before upload,
a voice note from a (fake) microphone and the current location. One browser for the module."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import uvicorn
from PIL import Image
from playwright.async_api import Page, async_playwright, expect

from bot.server import build_asgi
from handlers.base import Reply
from tests.test_web_api import build_app, serving
from tests.test_web_browser import ARGS, CHROMIUM, OUTPUT, button, require_chromium

ZONE = "Asia/Ho_Chi_Minh"
# What the page posts as a file: its type and, for an image, its size (Playwright does not show a Blob body).
SENT_FILES = """() => {
  const send = window.fetch;
  window.sentFiles = [];
  window.fetch = async (url, init) => {
    if (init && init.body instanceof Blob) {
      const image = await createImageBitmap(init.body).catch(() => null);
      window.sentFiles.push([init.body.type, image && image.width, image && image.height]);
    }
    return send(url, init);
  };
}"""
MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@contextlib.asynccontextmanager
async def phone() -> AsyncIterator[Page]:
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS + MEDIA, headless=True)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True, locale="vi-VN", timezone_id=ZONE,
                                            permissions=["geolocation", "microphone"],
                                            geolocation={"latitude": 16.75, "longitude": 107.19})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        try:
            yield page
        finally:
            await browser.close()
        assert errors == [], errors


def bound(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.asynccontextmanager
async def server(app, sock: socket.socket) -> AsyncIterator[str]:
    config = uvicorn.Config(build_asgi(app), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    async with serving(config, sock) as (port, _):
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for web in app.web_channels:
                web.close()


async def test_the_web_chat_on_a_phone(tmp_path, clock):
    require_chromium()
    OUTPUT.mkdir(exist_ok=True)
    log_rows = "#log .msg"
    async with phone() as page:
        # -- a restart keeps what the page shows, and what was being typed
        sock = bound()
        port = sock.getsockname()[1]
        app = await build_app(tmp_path, clock, demo=False)
        try:
            async with server(app, sock) as url:
                await page.goto(url + "/")
                await expect(page.locator("#log")).to_contain_text("Mục đích 1/2")
                await button(page, "Đồng ý").click()
                await expect(page.locator("#log")).to_contain_text("Mục đích 2/2")
                await expect(page.locator("#log time").first).to_be_visible()
                day = clock().astimezone(ZoneInfo(ZONE)).strftime("%d/%m/%Y")  # the test's clock is not today's
                await expect(page.locator("#log .day")).to_have_text([day])
                shown = await page.locator(log_rows).count()
                await page.locator("#text").fill("Đường thôn Tân Hiệp bị sạt lở")
        finally:
            await app.stop()
        await expect(page.locator("#status")).to_contain_text("Mất kết nối")
        await expect(page.locator(log_rows)).to_have_count(shown)  # the page never empties what it shows

        app = await build_app(tmp_path, clock, demo=False)
        try:
            async with server(app, bound(port)) as url:
                # The page retries every 2 s, then waits 3 s to open a session again: a generous cap, not a measure.
                await expect(page.locator("#status")).to_be_hidden(timeout=30_000)
                await expect(page.locator(log_rows)).to_have_count(shown)
                await expect(page.locator("#log button.option.used")).to_have_count(1)  # the pressed "Đồng ý"
                await page.reload()
                await expect(page.locator("#log")).to_contain_text("Mục đích 1/2")  # the history, from the server
                await expect(page.locator(log_rows)).to_have_count(shown)
                await expect(page.locator("#text")).to_have_value("Đường thôn Tân Hiệp bị sạt lở")
                await button(page, "Đồng ý").click()
                await expect(page.locator("#log")).to_contain_text("xã, phường nào")
                await page.locator("#text").fill("hai lang")
                await page.locator("#text").press("Enter")
                await button(page, "xã Hải Lăng").click()
                await button(page, "Bỏ qua").click()
                await button(page, "Xong").click()
                await expect(page.locator("#log .msg.bot").last).to_contain_text("Thông tin của Ông/Bà")
                await page.screenshot(path=str(OUTPUT / "web-phone-after-restart.png"))

                # -- a text over the limit is refused and stays in the composer, whole
                long = "Ông Bà góp ý " * 508  # 6,604 characters
                await page.locator("#text").fill(long)
                await expect(page.locator("#counter")).to_have_text(f"{len(long)}/4096 ký tự")
                await page.locator("#text").press("Enter")
                await expect(page.locator("#status")).to_contain_text("dài quá 4096 ký tự")
                await expect(page.locator("#text")).to_have_value(long)
                await page.screenshot(path=str(OUTPUT / "web-phone-too-long.png"))
                await page.locator("#text").fill("")

                # -- someone reading older messages gets a marker, not a jump; a hidden tab counts what came
                for _ in range(3):
                    await page.locator("#text").fill("/huongdan")
                    await page.locator("#text").press("Enter")
                await expect(page.locator("#log .msg.me", has_text="/huongdan")).to_have_count(3)
                await expect(page.locator("#log .msg").last).to_have_class("msg bot")  # all answered
                await page.locator("#log").evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')) }")
                await page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
                chat_id = next(iter(app.web._chats))
                await app.web.send(chat_id, Reply("Thông báo mới của xã"))
                await expect(page.locator("#new-marker")).to_be_visible()
                await expect(page.locator("#new-marker")).to_have_text("Tin mới ↓")
                assert await page.locator("#log").evaluate("el => el.scrollTop") == 0
                await expect(page).to_have_title("(1) Trao đổi với Ban Dân vận Tỉnh ủy Quảng Trị")
                await page.screenshot(path=str(OUTPUT / "web-phone-new-marker.png"))
                await page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
                                    "document.dispatchEvent(new Event('visibilitychange'))")
                await expect(page).to_have_title("Trao đổi với Ban Dân vận Tỉnh ủy Quảng Trị")
                await page.locator("#new-marker").click()
                await expect(page.locator("#new-marker")).to_be_hidden()
                # a /command in the bot's text is tappable
                await page.locator("#log .msg.bot .command", has_text="/caidat").last.click()
                await expect(page.locator("#log .msg.me .body").last).to_have_text("/caidat")
                await page.locator("#text").fill("/huy")
                await page.locator("#text").press("Enter")
                await expect(page.locator("#log .msg.bot").last).to_contain_text("Đã hủy")

                # -- a phone's photo is shrunk in the browser before it is sent
                photo = tmp_path / "IMG_0001.png"
                Image.new("RGB", (4000, 3000), (40, 120, 60)).save(photo)
                await page.evaluate(SENT_FILES)
                await page.locator("#photo").set_input_files(str(photo))
                await expect(page.locator("#log .msg.me img.photo")).to_be_visible()
                assert await page.evaluate("window.sentFiles") == [["image/jpeg", 2560, 1920]]
                # outside a flow, what was sent is offered as a report (handlers/offer.py)
                await expect(page.locator("#log .msg.bot").last).to_contain_text("Ông/Bà vừa gửi: «ảnh»")
                await page.locator("#log .msg.me img.photo").last.click()
                await expect(page.locator("#viewer img")).to_be_visible()
                await page.screenshot(path=str(OUTPUT / "web-phone-photo-viewer.png"))
                await page.locator("#viewer button").click()

                # -- a voice note from the microphone, and the current location
                await page.locator("#record").click()
                await expect(page.locator("#status")).to_contain_text("Đang ghi âm")
                await page.wait_for_timeout(600)  # some sound to record, not an assertion on time
                async with page.expect_response("**/api/upload") as answered:
                    await page.locator("#record").click()
                response = await answered.value
                assert response.status == 200 and response.request.headers["content-type"].startswith("audio/")
                await expect(page.locator("#log .msg.me audio.voice")).to_have_count(1)
                # The voice note plays back: the page's audio element (asked for again at each poll, since a history
                # refresh may draw it anew) has loaded the recording's metadata. A generous cap for a loaded machine.
                await page.wait_for_function("() => { const a = document.querySelector('#log .msg.me audio.voice');"
                                             " return a !== null && a.readyState >= 1 && !a.error; }", timeout=30_000)
                await expect(page.locator("#log .msg.bot").last).to_contain_text("Ông/Bà vừa gửi: «ảnh, ghi âm»")
                await page.locator("#locate").click()
                await expect(page.locator("#log .msg.me").last).to_contain_text("Vị trí hiện tại")
                offered = page.locator("#log .msg.bot").last
                await expect(offered).to_contain_text("Ông/Bà vừa gửi: «ảnh, ghi âm, vị trí»")
                await button(page, "Gửi thành phản ánh").click()
                await expect(page.locator("#log .msg.bot").last).to_contain_text("lĩnh vực nào")
                await button(page, "An sinh xã hội – hỗ trợ khó khăn").click()
                await button(page, "Đúng").click()
                await expect(page.locator("#log .msg.bot").last).to_contain_text(
                    "Đã nhận ảnh, ghi âm, vị trí. Ông/Bà vui lòng viết thêm vài dòng mô tả nội dung.")

                # -- a report's content is counted against its own limit (3,000), and kept when over it
                report = "Cầu tràn ngập. " * 220  # 3,300 characters
                await page.locator("#text").fill(report)
                await expect(page.locator("#counter")).to_have_text(f"{len(report)}/3000 ký tự")
                await page.locator("#text").press("Enter")
                await expect(page.locator("#status")).to_contain_text("dài quá 3000 ký tự")
                await expect(page.locator("#text")).to_have_value(report)
                await page.screenshot(path=str(OUTPUT / "web-phone-voice-location.png"))
        finally:
            await app.stop()
