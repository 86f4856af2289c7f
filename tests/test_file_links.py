"""Files the bot sends where a channel takes only a URL: signed, expiring links served at /f/<token>, and Zalo
sending photos by such a link (the fake fetches it from the bot's own HTTP server) and documents as a link."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from bot.app import App
from bot.channels.base import DeliveryError
from bot.cli import main
from bot.config import ConfigError, load
from bot.server import build_asgi
from handlers.base import Document, Reply
from tests.fakes.zalo_api import DEFAULT_TOKEN, FakeZaloAPI
from tests.images import phone_photo
from tests.test_web_api import serving
from tests.test_zalo import AN, choose, config_for, onboard

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def bot_on_zalo(api: FakeZaloAPI, tmp_path, clock=None):
    """The bot polling the fake, with its HTTP server on loopback as DANVAN_PUBLIC_URL: the fake fetches the
    bot's links from it as Zalo would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = await App.build(config_for(api, tmp_path / "zalo.db", DANVAN_PUBLIC_URL=url),
                          **({"clock": clock} if clock else {}))
    await app.start()
    try:
        async with serving(uvicorn.Config(build_asgi(app), log_level="warning", lifespan="off"), sock):
            yield app
    finally:
        await app.stop()


async def test_a_link_serves_its_bytes_until_it_expires_and_not_when_altered(tmp_path):
    clock = Clock()
    config = load(db=tmp_path / "danvan.db", telegram_token=None, public_url="https://bot.example.vn")
    app = await App.build(config, clock=clock)
    try:
        url = await app.links.document(Document("du-lieu.json", b'{"a": 1}', "application/json"))
        assert url.startswith("https://bot.example.vn/f/")
        path = url.removeprefix("https://bot.example.vn")
        token = path.removeprefix("/f/")
        body, signature = token.split(".")
        flipped = "A" if body[5] != "A" else "B"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://t") as web:
            answer = await web.get(path)
            assert answer.status_code == 200 and answer.content == b'{"a": 1}'
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.headers["content-disposition"].startswith("attachment")
            for bad in (f"{body[:5]}{flipped}{body[6:]}.{signature}", f"{body}.{signature[::-1]}", body, "x.y",
                        f"{body}.{signature}A"):
                assert (await web.get(f"/f/{bad}")).status_code == 404, bad
            clock.now += timedelta(hours=23)
            assert (await web.get(path)).status_code == 200
            clock.now += timedelta(hours=1)
            assert (await web.get(path)).status_code == 404
        photo = await app.links.photo(Document("anh.jpg", b"jpeg", "image/jpeg"))
        clock.now += timedelta(days=6)
        assert app.links.open(photo.rsplit("/", 1)[1]) is not None
    finally:
        await app.stop()


async def test_links_outlive_a_restart_and_are_not_valid_for_another_key(tmp_path):
    config = load(db=tmp_path / "danvan.db", telegram_token=None)
    first = await App.build(config)
    url = await first.links.photo(Document("a.png", b"png", "image/png"))
    await first.stop()
    again = await App.build(config)
    other = await App.build(load(db=tmp_path / "danvan.db", telegram_token=None, file_secret="k" * 32))
    try:
        token = url.rsplit("/", 1)[1]
        assert again.links.open(token) is not None and other.links.open(token) is None
    finally:
        await again.stop()
        await other.stop()


async def test_a_photo_goes_to_zalo_by_a_link_the_platform_fetches(tmp_path):
    photo = phone_photo()
    async with FakeZaloAPI() as api, bot_on_zalo(api, tmp_path) as app:
        await api.ask(AN, "/start")  # the platform answers only a chat that wrote to the bot
        await app.zalo.send(AN, Reply("Ảnh hiện trường", photo=Document("anh.jpg", photo, "image/jpeg")))
        [sent] = api.calls_of("sendPhoto", AN)
        assert not api.calls_of("sendChatAction")  # a photo alone (a broadcast's) is not announced: it is there
        assert sent.ok and sent.photo == photo and sent.text == "Ảnh hiện trường"
        assert await app.store.files.get(hashlib.sha256(photo).hexdigest()) == photo
        mark = api.mark()
        long_text = "Thông báo. " * 300
        await app.zalo.send(AN, Reply(long_text, photo=Document("anh.png", b"\x89PNG small", "image/png")))
        calls = [c for c in api.calls if c.seq >= mark]
        assert [c.method for c in calls] == ["sendMessage", "sendMessage", "sendPhoto"]
        assert calls[-1].photo == b"\x89PNG small" and "caption" not in calls[-1].params
        assert not api.server_errors


async def test_a_failed_typing_sign_is_not_retried_and_does_not_stop_the_export(tmp_path):
    async with FakeZaloAPI() as api, bot_on_zalo(api, tmp_path):
        await onboard(api)
        api.fail("sendChatAction", AN, status=500, times=None)
        calls = await api.ask(AN, "/dulieu")
        assert "📎 Tải tệp du-lieu-cua-toi.json" in calls[-1].text
        assert len(api.calls_of("sendChatAction", AN)) == 1


async def test_my_data_on_zalo_comes_as_a_download_link(tmp_path):
    async with FakeZaloAPI() as api, bot_on_zalo(api, tmp_path) as app:
        await onboard(api)
        calls = await api.ask(AN, "/dulieu")  # the summary, the document's link joined on: a link is a text
        assert "Dữ liệu bot đang lưu" in calls[0].text
        line = calls[-1].text.splitlines()[-1]
        assert line.startswith("📎 Tải tệp du-lieu-cua-toi.json") and "một ngày" in line
        url = re.search(r"https?://\S+", line).group(0)
        assert url.startswith(app.config.web_url + "/f/")
        async with httpx.AsyncClient() as web:
            answer = await web.get(url)
        assert answer.status_code == 200
        export = json.loads(answer.content)
        assert export["cases"] == [] and not api.calls_of("sendPhoto")
        [action] = api.calls_of("sendChatAction", AN)  # "typing…" while the export was built
        assert action.params["action"] == "typing" and action.seq < calls[0].seq


async def test_the_zalo_channel_itself_takes_no_file(tmp_path):
    """A document reaches Zalo only as the rendering step's link; handed the file, the channel refuses it (the
    outbound path then says so to the person)."""
    async with FakeZaloAPI() as api, bot_on_zalo(api, tmp_path) as app:
        with pytest.raises(DeliveryError) as refused:
            await app.zalo.send(AN, Reply("Tệp", document=Document("a.json", b"{}", "application/json")))
        assert refused.value.kind == "permanent" and not api.sent(AN)


async def test_the_download_link_is_in_the_readers_language(tmp_path):
    """The rendering step writes the link's line, in the language the person chose, not the channel."""
    async with FakeZaloAPI() as api, bot_on_zalo(api, tmp_path) as app:
        await onboard(api)
        calls = await api.ask(AN, "/caidat")
        calls = await choose(api, calls, "Ngôn ngữ")
        calls = await choose(api, calls, "English")
        calls = await api.ask(AN, "/dulieu")
        line = calls[-1].text.splitlines()[-1]
        assert line.startswith("📎 Download du-lieu-cua-toi.json (the link works for one day): ")
        assert line.split(": ", 1)[1].startswith(app.config.web_url + "/f/")
        assert "Tải tệp" not in calls[-1].text


@pytest.mark.parametrize(("public_url", "host", "ok"), [
    ("http://bot.example.vn", "127.0.0.1", False),
    ("http://10.0.0.5:8080", "127.0.0.1", False),
    (None, "0.0.0.0", False),  # noqa: S104 (the address people are sent to would be made from it)
    ("https://bot.example.vn", "0.0.0.0", True),  # noqa: S104
    ("http://127.0.0.1:8080", "127.0.0.1", True),
    ("http://localhost:8080", "127.0.0.1", True),
    ("http://[::1]:8080", "127.0.0.1", True),
    (None, "127.0.0.1", True),
])
def test_zalo_needs_an_https_public_address_except_on_loopback(monkeypatch, tmp_path, public_url, host, ok):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DANVAN_DEMO", raising=False)
    settings = {"zalo_token": DEFAULT_TOKEN, "host": host, "public_url": public_url, "db": tmp_path / "z.db"}
    if ok:
        load(**settings)
    else:
        with pytest.raises(ConfigError, match="DANVAN_PUBLIC_URL"):
            load(**settings)


def test_zalo_with_an_http_public_address_refuses_to_start(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "DANVAN_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "z.db"))
    monkeypatch.setenv("ZALO_BOT_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("DANVAN_PUBLIC_URL", "http://bot.example.vn")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "DANVAN_PUBLIC_URL" in err and "https" in err and "Traceback" not in err
