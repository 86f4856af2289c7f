"""The web chat in a real browser: Debian's Chromium, headless, driven by Playwright against the real
App on a real uvicorn server. Nothing is downloaded: the browser must be /usr/bin/chromium."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from handlers.base import Option, Reply
from tests.test_web_api import build_app, png, served

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("The browser tests need Debian's Chromium at /usr/bin/chromium: apt-get install -y chromium "
                    "(.ci/run installs it). Playwright's own browser download is not used.")


@contextlib.asynccontextmanager
async def phone_page() -> AsyncIterator[Page]:
    """A phone-sized page in Debian's Chromium; fails the test on any script error on the page."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True, locale="vi-VN")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
        try:
            yield page
        finally:
            await browser.close()
        assert errors == [], errors


def button(page: Page, label: str):
    """The newest button with exactly this label (older messages keep theirs, as on Telegram)."""
    return page.locator("#log button.option", has_text=re.compile(f"^{re.escape(label)}$")).last


async def test_a_citizen_onboards_by_buttons_then_plays_admin_and_back(tmp_path, clock):
    require_chromium()
    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with served(app) as url, phone_page() as page:
            await page.goto(url + "/")
            await expect(page.locator(".demo .banner")).to_have_text("Chế độ thử nghiệm (demo) — dữ liệu không thật")
            log = page.locator("#log")
            await expect(log).to_contain_text("Mục đích 1/2 — Nhận tin")  # /start is sent on a first visit

            for purpose in ("Mục đích 2/2", "xã, phường nào"):
                await button(page, "Đồng ý").click()
                await expect(log).to_contain_text(purpose)

            await page.locator("#text").fill("hai lang")
            await page.locator("#text").press("Enter")
            await expect(log).to_contain_text("Tìm thấy 2 nơi phù hợp")
            await button(page, "xã Hải Lăng").click()
            await button(page, "Bỏ qua").click()
            await expect(log).to_contain_text("lĩnh vực nào")

            topics_before = await page.locator("#log .msg").count()
            await button(page, "▫️ Xây dựng nông thôn mới").click()
            await expect(button(page, "✅ Xây dựng nông thôn mới")).to_be_visible()
            assert await page.locator("#log .msg").count() == topics_before, "a toggle edits the message in place"
            await button(page, "Xong").click()

            summary = page.locator("#log .msg.bot", has_text="Thông tin của Ông/Bà").last
            await expect(summary).to_contain_text("Địa bàn: xã Hải Lăng")
            await expect(summary).to_contain_text("Lĩnh vực theo dõi: Xây dựng nông thôn mới")
            await expect(summary.locator("b", has_text="Thông tin của Ông/Bà")).to_be_visible()

            # what a person types is shown as text, never as markup
            attack = '<img src=x onerror="alert(1)"><b>đậm</b>'
            await page.locator("#text").fill(attack)
            await page.locator("#send").click()
            await expect(page.locator("#log .msg.me .body").last).to_have_text(attack)
            assert await page.locator("#log img[src='x'], #log .msg.me b").count() == 0

            # a photo upload comes back as a picture in the person's own bubble
            photo = tmp_path / "anh.png"
            photo.write_bytes(png(40, 30))
            await page.locator("#photo").set_input_files(str(photo))
            await expect(page.locator("#log .msg.me img.photo").last).to_be_visible()

            await page.locator("#log").evaluate("el => el.scrollTop = el.scrollHeight")
            OUTPUT.mkdir(exist_ok=True)
            await summary.scroll_into_view_if_needed()
            await page.screenshot(path=str(OUTPUT / "web-onboarding.png"))

            await page.locator("#persona").select_option("admin")
            await expect(button(page, "➕ Mời cán bộ")).to_be_visible()
            await expect(log).not_to_contain_text("Thông tin của Ông/Bà")
            await page.screenshot(path=str(OUTPUT / "web-admin.png"))

            await page.locator("#persona").select_option("me")
            await expect(page.locator("#log .msg.bot", has_text="Thông tin của Ông/Bà")).to_have_count(1)
            await expect(log).not_to_contain_text("Mời cán bộ")
    finally:
        await app.stop()


async def test_pushed_messages_reach_the_open_page(tmp_path, clock):
    """A message the bot sends on its own (later: digests, broadcasts) appears without a refresh."""
    require_chromium()
    app = await build_app(tmp_path, clock, demo=False)
    try:
        async with served(app) as url, phone_page() as page:
            await page.goto(url + "/?start=c_nothing")
            await expect(page.locator("#log")).to_contain_text("Mục đích 1/2")
            assert "start=" not in page.url, "a reload must not repeat the deep link"
            await expect(page.locator(".demo")).to_have_count(0)
            chat_id = next(iter(app.web._chats))
            await app.web.send(chat_id, Reply("<b>Thông báo</b> thử: <a href='javascript:alert(1)'>xấu</a> "
                                              "<a href='https://example.vn/'>tốt</a>",
                                              ((Option("Mở", url="https://example.vn/tin"),),)))
            pushed = page.locator("#log .msg.bot").last
            await expect(pushed).to_contain_text("Thông báo thử: xấu tốt")
            await expect(pushed.locator("b")).to_have_text("Thông báo")
            assert await pushed.locator("a[href^='javascript']").count() == 0
            await expect(pushed.locator(".body a")).to_have_attribute("rel", "noopener noreferrer")
            await expect(pushed.locator("a.option")).to_have_attribute("href", "https://example.vn/tin")
    finally:
        await app.stop()


# What a browser lacks, as the page would find it: no recorder, no geolocation, or a page not served over HTTPS.
LACKING = {
    "nothing": "",
    "recorder": "delete window.MediaRecorder;",
    "geolocation": "delete Navigator.prototype.geolocation;",
    "secure context": "Object.defineProperty(window, 'isSecureContext', {get: () => false});",
}


async def test_voice_and_location_are_offered_only_where_the_browser_can(tmp_path, clock):
    """A button that could only end in «cannot» is not shown: the microphone needs MediaRecorder, the location
    geolocation, and both a secure page (browsers refuse them on plain HTTP)."""
    require_chromium()
    app = await build_app(tmp_path, clock, demo=False)
    try:
        async with served(app) as url, phone_page() as first:
            for lacking, script in LACKING.items():
                page = await first.context.new_page()
                await page.add_init_script(script)
                await page.goto(url + "/")
                await expect(page.locator("#log")).to_contain_text("Mục đích 1/2")
                for button_id, needs in (("#record", ("recorder", "secure context")),
                                         ("#locate", ("geolocation", "secure context"))):
                    shown = page.locator(button_id)
                    await (expect(shown).to_be_hidden() if lacking in needs else expect(shown).to_be_visible())
                await page.close()
    finally:
        await app.stop()
