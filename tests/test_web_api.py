"""The web chat over HTTP: the real App (router, handlers, SQLite) behind the real ASGI application,
driven as the page drives it: a session, CSRF-carrying posts, history, server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import struct
import time
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from PIL import Image

from bot.app import App
from bot.config import load
from bot.demo import RESIDENTS, content, personas, seed_demo
from bot.server import build_asgi
from bot.webchat import MAX_JSON, MAX_TEXT, MAX_UPLOAD
from handlers.base import Document, Reply
from handlers.images import normalise
from storage import Store
from tests.images import RED, encoded, gps_of, iphone_photo, opened, phone_photo

# ---- helpers, shared with the browser test ----------------------------------------------------------


async def build_app(tmp_path, clock, *, demo: bool, **settings) -> App:
    """The App on a temporary database; tests that are not about the rate limit lift it."""
    settings.setdefault("web_burst", 1000)
    config = load(db=tmp_path / "danvan.db", demo_db=tmp_path / "demo.db", demo=demo, telegram_token=None,
                  **settings)
    return await App.build(config, clock=clock)


class WebClient:
    """One browser: a cookie jar, the CSRF token, and the page's calls."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def open(self) -> dict:
        answer = await self.http.post("/api/session", headers={"X-Danvan": "1"})
        assert answer.status_code == 200, answer.text
        self.csrf = answer.json()["csrf"]
        return answer.json()

    async def post(self, path: str, body: dict) -> httpx.Response:
        return await self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    async def say(self, text: str) -> list[dict]:
        answer = await self.post("/api/message", {"text": text})
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]

    async def history(self) -> list[dict]:
        answer = await self.http.get("/api/history")
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]

    async def click(self, label: str, *, exact: bool = False) -> list[dict]:
        """Press the newest button whose label is (or contains) `label`, as the page does."""
        for message in reversed(await self.history()):
            for row in message.get("options", []):
                for option in row:
                    if (option["label"] == label if exact else label in option["label"]) and "data" in option:
                        answer = await self.post("/api/message", {"choice": option["data"], "ref": message["id"]})
                        assert answer.status_code == 200, answer.text
                        return answer.json()["messages"]
        raise AssertionError(f"no button {label!r}")


def text_of(messages: list[dict]) -> str:
    return "\n".join(m.get("html") or m.get("text") or "" for m in messages)


@contextlib.asynccontextmanager
async def client(app: App) -> AsyncIterator[WebClient]:
    transport = httpx.ASGITransport(app=build_asgi(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield WebClient(http)


@contextlib.asynccontextmanager
async def serving(config: uvicorn.Config, sock: socket.socket | None = None
                  ) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    """A real uvicorn server on 127.0.0.1 and a free port (or on `sock`, bound already by a test that must know
    its address before it builds the app), started; yields the port and the server."""
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1], server
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    """The app's ASGI application on a real uvicorn server; yields its URL."""
    config = uvicorn.Config(build_asgi(app), log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    async with serving(config) as (port, _):
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            app.web.close()


async def onboard(web: WebClient) -> list[dict]:
    """The whole onboarding: buttons, one typed search; returns the bot's last answer."""
    await web.say("/start")
    for _ in range(3):
        await web.click("Đồng ý", exact=True)
    await web.say("hai lang")
    await web.click("xã Hải Lăng", exact=True)
    await web.click("Bỏ qua", exact=True)
    await web.click("Xây dựng nông thôn mới")
    return await web.click("Xong", exact=True)


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xa3\x1d\x1d" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# ---- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
async def demo_app(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=True)
    yield app
    await app.stop()


@pytest.fixture
async def prod_app(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False)
    yield app
    await app.stop()


@pytest.fixture
async def web(prod_app):
    async with client(prod_app) as c:
        await c.open()
        yield c


# ---- a whole onboarding ------------------------------------------------------------------------------


async def test_whole_onboarding_over_http(web):
    greeting = await web.say("/start")
    assert [m["from"] for m in greeting] == ["me", "bot"], "the greeting and the question come as one message"
    assert greeting[0]["text"] == "/start"
    assert "Kính chào Ông/Bà" in greeting[1]["html"] and "Mục đích 1/2" in greeting[1]["html"]
    assert [o["label"] for o in greeting[1]["options"][0]] == ["Đồng ý", "Không đồng ý"]

    for _ in range(2):
        answer = await web.click("Đồng ý", exact=True)
    assert "xã, phường nào" in text_of(answer)
    asked = next(m for m in await web.history() if m["id"] == greeting[1]["id"])
    assert asked["chosen"] == greeting[1]["options"][0][0]["data"], "the page shows the pressed button as used"

    found = await web.say("hai lang")
    labels = [o["label"] for m in found for row in m.get("options", []) for o in row]
    assert "xã Hải Lăng" in labels and "xã Nam Hải Lăng" in labels

    answer = await web.click("xã Hải Lăng", exact=True)
    assert "thôn, tổ dân phố nào của xã Hải Lăng" in text_of(answer)
    answer = await web.click("Bỏ qua", exact=True)
    topics = answer[-1]
    assert "lĩnh vực nào" in topics["html"]

    toggled = await web.click("Xây dựng nông thôn mới")
    assert [m["id"] for m in toggled] == [topics["id"]], "a toggle edits the same message in place"
    assert toggled[0]["v"] > topics["v"]
    assert "chosen" not in toggled[0], "a keyboard its answer replaced is live again"
    assert any(o["label"] == "✅ Xây dựng nông thôn mới" for row in toggled[0]["options"] for o in row)

    done = await web.click("Xong", exact=True)
    summary = text_of(done)
    assert "<b>Thông tin của Ông/Bà</b>" in summary
    assert "Địa bàn: xã Hải Lăng" in summary and "Lĩnh vực theo dõi: Xây dựng nông thôn mới" in summary
    history = await web.history()
    assert len({m["id"] for m in history}) == len(history)
    assert text_of(history).count("lĩnh vực nào") == 1

    commands = (await web.http.get("/api/history")).json()["commands"]
    assert {"command": "caidat", "text": "Đổi địa bàn, lĩnh vực, ngôn ngữ, sự đồng ý"} in commands
    assert all(c["command"] not in ("moicanbo", "phamvi") for c in commands)


async def test_language_choice_changes_the_page_texts(web):
    await onboard(web)
    await web.say("/caidat")
    await web.click("Ngôn ngữ", exact=True)
    answer = await web.post("/api/message", {"choice": await _data(web, "English"), "ref": None})
    assert answer.json()["language"] == "en"
    assert "Saved." in text_of(answer.json()["messages"])
    session = await web.open()
    assert session["language"] == "en" and session["texts"]["en"]["web.send"] == "Send"


async def _data(web: WebClient, label: str) -> str:
    for message in reversed(await web.history()):
        for row in message.get("options", []):
            for option in row:
                if option["label"] == label:
                    return option["data"]
    raise AssertionError(label)


# ---- bad input ---------------------------------------------------------------------------------------


async def test_oversize_bodies_are_refused(web):
    answer = await web.http.post("/api/message", content=b'{"text": "' + b"a" * MAX_JSON + b'"}',
                                 headers={"X-CSRF-Token": web.csrf, "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"

    answer = await web.post("/api/message", {"text": "à" * (MAX_TEXT + 1)})
    assert answer.status_code == 413 and answer.json()["error"] == "too_long"
    assert "4096" in answer.json()["message"]

    answer = await web.http.post("/api/upload", content=png() + b"\0" * MAX_UPLOAD,
                                 headers={"X-CSRF-Token": web.csrf, "Content-Type": "image/png"})
    assert answer.status_code == 413 and "20 MB" in answer.json()["message"]
    assert await web.history() == []


async def test_bad_json_and_bad_shapes_are_400(web):
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"text": 5}', b'{"text": "   "}', b'{"choice": ""}',
                 b'{"text": "a", "choice": "1:m:x"}', json.dumps({"choice": "x" * 65}).encode()):
        answer = await web.http.post("/api/message", content=body,
                                     headers={"X-CSRF-Token": web.csrf, "Content-Type": "application/json"})
        assert answer.status_code == 400, body
        assert answer.json()["error"] == "bad_request" and answer.json()["message"]


async def test_deeply_nested_json_is_400_not_a_recursion_error(web, caplog):
    """5,000 nested arrays fit in 16 KB; the parser recurses, so depth is checked before it runs."""
    brackets = [b"[" * 5000 + b"]" * 5000, b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b'{"a":' * 2000 + b"1" + b"}" * 2000, b"[" * 21 + b"]" * 21]
    for body in brackets:
        answer = await web.http.post("/api/message", content=body,
                                     headers={"X-CSRF-Token": web.csrf, "Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"] == "bad_request", body[:30]
    quoted = "[" * 100  # brackets inside a string are text, not nesting
    assert text_of(await web.say(quoted)) and "Traceback" not in caplog.text


async def test_unknown_or_expired_session_is_401(prod_app, clock):
    async with client(prod_app) as stranger:
        answer = await stranger.post("/api/message", {"text": "xin chào"})
        assert answer.status_code == 401 and answer.json()["error"] == "session_expired"
        stranger.http.cookies.set("danvan_session", "A" * 43, domain="testserver.local")
        assert (await stranger.post("/api/message", {"text": "xin chào"})).status_code == 401
        assert (await stranger.http.get("/api/history")).status_code == 401
        assert (await stranger.http.get("/api/events")).status_code == 401

    async with client(prod_app) as web:
        await web.open()
        assert await web.say("xin chào")
        clock.advance(days=181)  # DANVAN_WEB_SESSION_DAYS is 180
        answer = await web.post("/api/message", {"text": "xin chào"})
        assert answer.status_code == 401
        await web.open()  # an expired cookie starts a new, empty chat
        assert await web.history() == []


async def test_csrf_token_is_required_on_every_post(web):
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": "ü".encode()}):
        answer = await web.http.post("/api/message", json={"text": "xin chào"}, headers=headers)
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        answer = await web.http.post("/api/upload", content=png(), headers=headers)
        assert answer.status_code == 403
    # a cross-site form cannot open a session either: it cannot send the custom header
    assert (await web.http.post("/api/session")).status_code == 403
    assert await web.history() == []


async def test_what_a_person_types_comes_back_as_text(web):
    await web.say("/start")
    for _ in range(3):
        await web.click("Đồng ý", exact=True)
    attack = "<script>alert(1)</script>"
    answer = await web.say(attack)
    assert answer[0] == {**answer[0], "from": "me", "text": attack}
    bot = text_of(answer[1:])
    assert "«&lt;script&gt;alert(1)&lt;/script&gt;»" in bot and "<script>" not in bot


async def test_a_flood_from_one_session_is_slowed_down(tmp_path, clock):
    prod_app = await build_app(tmp_path, clock, demo=False, web_burst=10, web_rate=1.0)
    async with client(prod_app) as web:
        await web.open()
        statuses = [(await web.post("/api/message", {"text": f"tin {i}"})) for i in range(15)]
        codes = [a.status_code for a in statuses]
        assert codes[:10] == [200] * 10 and 429 in codes
        refused = next(a for a in statuses if a.status_code == 429)
        assert "gửi nhanh quá" in refused.json()["message"] and int(refused.headers["Retry-After"]) >= 1
        async with client(prod_app) as other:  # another person is not affected
            await other.open()
            assert (await other.post("/api/message", {"text": "xin chào"})).status_code == 200
    await prod_app.stop()


# ---- production and demo ------------------------------------------------------------------------------


async def test_production_is_an_anonymous_citizen_channel(prod_app, web):
    session = await web.open()
    assert session["mode"] == "production" and session["personas"] == []
    answer = await web.post("/api/persona", {"persona": "admin"})
    assert answer.status_code == 404
    refused = await web.say("/start i_AbCdEfGhIjKlMnOpQrStUvWx")
    assert "Lời mời cán bộ không dùng được trên kênh này" in text_of(refused)
    assert prod_app.web.deep_link("i_x") is None and prod_app.web.deep_link("c_ntm-2026").endswith("?start=c_ntm-2026")
    page = await web.http.get("/")
    assert page.status_code == 200 and "Chế độ thử nghiệm" not in page.text and 'id="persona"' not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    health = await web.http.get("/healthz")
    assert health.json() == {"status": "ok", "database": "ok", "mode": "production", "problems": [],
                             "worker": f"{socket.gethostname()}:{os.getpid()}", "role": "leader"}
    async with client(prod_app) as fresh:
        cookie = (await fresh.http.post("/api/session", headers={"X-Danvan": "1"})).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


async def test_demo_page_personas_and_health(demo_app):
    async with client(demo_app) as web:
        session = await web.open()
        assert session["mode"] == "demo" and session["personas"] == ["me", "lan", "hung", "cadre", "admin"]
        assert {c["code"] for c in session["campaigns"]} == {c["code"] for c in content()["campaigns"]} \
            >= {"ntm-2026", "dtvm-dongha", "dvk-2026"}
        page = await web.http.get("/")
        assert "Chế độ thử nghiệm (demo) — dữ liệu không thật" in page.text and "DEMO ·" in page.text
        assert (await web.http.get("/healthz")).json()["mode"] == "demo"

        mine = await web.say("/start")
        assert "Mục đích 1/2" in text_of(mine)
        assert (await web.post("/api/persona", {"persona": "root"})).status_code == 400
        assert (await web.post("/api/persona", {"persona": "admin"})).json()["persona"] == "admin"
        assert await web.history() == []
        admin = await web.say("/start")
        labels = [o["label"] for m in admin for row in m.get("options", []) for o in row]
        assert "➕ Mời cán bộ" in labels and "Kính chào đồng chí đã trở lại" in text_of(admin)
        assert "moicanbo" in [c["command"] for c in (await web.http.get("/api/history")).json()["commands"]]

        await web.post("/api/persona", {"persona": "cadre"})
        scope = text_of(await web.say("/phamvi"))
        assert "Ban Dân vận Đảng ủy xã Hải Lăng" in scope and "xã Hải Lăng" in scope

        await web.post("/api/persona", {"persona": "me"})
        assert "Mục đích 1/2" in text_of(await web.history()), "each persona keeps its own chat"


async def test_demo_invite_link_opens_in_the_web_chat(demo_app):
    async with client(demo_app) as admin, client(demo_app) as newcomer:
        await admin.open()
        await admin.post("/api/persona", {"persona": "admin"})
        await admin.say("/moicanbo")
        await admin.click("Toàn tỉnh", exact=True)
        await admin.click("Xong", exact=True)
        created = text_of(await admin.say("Ban Dân vận Đảng ủy phường Đông Hà"))
        link = created.split("?start=", 1)[1].split("\n", 1)[0]
        assert "http://127.0.0.1:8080/?start=i_" in created and link.startswith("i_")

        await newcomer.open()
        accepted = text_of(await newcomer.say(f"/start {link}"))
        assert "vai trò <b>cán bộ</b>" in accepted


async def test_seed_demo_is_idempotent(tmp_path, clock):
    store = await Store.open(tmp_path / "demo.db")
    try:
        await seed_demo(store, clock())
        counts = [(await store.db.fetchone(f"SELECT count(*) FROM {t}"))[0]  # noqa: S608
                  for t in ("users", "campaigns", "consents", "user_topics", "cadre_localities", "cadre_topics")]
        await seed_demo(store, clock())
        again = [(await store.db.fetchone(f"SELECT count(*) FROM {t}"))[0]  # noqa: S608
                 for t in ("users", "campaigns", "consents", "user_topics", "cadre_localities", "cadre_topics")]
        residents = sum(count for _, count in RESIDENTS)  # the survey's respondents (bot/demo.py)
        assert counts == again and counts[0] == len(content()["people"]) + residents
        assert counts[1] == len(content()["campaigns"])
        lan = await store.users.find("web", "demo-lan")
        hung = await store.users.find("web", "demo-hung")
        assert lan.onboarded and (await store.localities.get(lan.locality_id)).name == "Hải Lăng"
        assert (await store.localities.get(hung.locality_id)).name == "Đông Hà"
        cadre = await store.users.find("web", "demo-cadre")
        assert cadre.role == "cadre" and (await store.roles.scope(cadre.id)).locality_ids
        assert (await store.users.find("web", "demo-admin")).role == "admin"
        ntm = await store.campaigns.by_code("ntm-2026")
        assert ntm.title("vi").startswith("Chung tay xây dựng nông thôn mới") and ntm.title("en")
        assert [p.key for p in personas()] == ["lan", "hung", "cadre", "admin"]
    finally:
        await store.close()


async def test_demo_never_opens_the_production_database(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=True)
    await app.stop()
    assert (tmp_path / "demo.db").exists() and not (tmp_path / "danvan.db").exists()
    with pytest.raises(Exception, match="DANVAN_DEMO_DB"):
        load(db=tmp_path / "same.db", demo_db=tmp_path / "same.db")


# ---- files --------------------------------------------------------------------------------------------


async def test_photo_upload_is_kept_for_its_owner_only(prod_app, web):
    await onboard(web)
    answer = await web.http.post("/api/upload", content=png(), headers={"X-CSRF-Token": web.csrf,
                                                                         "Content-Type": "image/png"})
    assert answer.status_code == 200, answer.text
    mine = answer.json()["messages"][0]
    assert mine["from"] == "me" and mine["photo"]["url"].startswith("/api/files/")
    photo = await web.http.get(mine["photo"]["url"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == normalise(png())

    bad = await web.http.post("/api/upload", content=b"GIF89a not allowed",
                              headers={"X-CSRF-Token": web.csrf, "Content-Type": "image/gif"})
    assert bad.status_code == 422 and "JPEG, PNG, WebP hay HEIC" in bad.json()["message"]
    # An iPhone's HEIC that the browser could not turn into JPEG: the server does.
    heic = await web.http.post("/api/upload", content=iphone_photo(),
                               headers={"X-CSRF-Token": web.csrf, "Content-Type": "image/heic"})
    assert heic.status_code == 200, heic.text
    shown = (await web.http.get(heic.json()["messages"][0]["photo"]["url"])).content
    assert opened(shown).size == (96, 64) and not gps_of(shown) and b"iPhone" not in shown

    async with client(prod_app) as other:
        await other.open()
        assert (await other.http.get(mine["photo"]["url"])).status_code == 404
    assert (await web.http.get("/api/files/..%2f..%2fdanvan.db")).status_code == 404


async def test_a_phone_photo_is_taken_cleaned_and_shrunk_and_a_bad_image_refused(prod_app, web):
    await onboard(web)
    await web.say("/phananh")
    await web.click("An sinh xã hội")
    await web.click("Đúng", exact=True)
    headers = {"X-CSRF-Token": web.csrf, "Content-Type": "image/jpeg"}
    photo = phone_photo()
    assert len(photo) > 10 * 1024 * 1024 and gps_of(photo)
    answer = await web.http.post("/api/upload", content=photo, headers=headers)
    assert answer.status_code == 200 and "Đã nhận ảnh" in text_of(answer.json()["messages"])
    shown = (await web.http.get(answer.json()["messages"][0]["photo"]["url"])).content
    image = opened(shown)
    assert image.format == "JPEG" and image.size == (1920, 2560)  # upright (EXIF orientation 6), ≤ 2560 px
    assert image.getpixel((1900, 20)) == pytest.approx(RED, abs=40)  # the stored top-left shows top right
    assert not gps_of(shown) and not image.getexif() and b"Exif" not in shown and b"Galaxy" not in shown
    [chat] = prod_app.web.files.root.iterdir()
    kept = [await prod_app.store.files.get(a["sha256"]) for a in await _attachments(prod_app)]
    assert kept == [shown]

    bomb = encoded(Image.new("L", (10000, 10000)), "PNG")
    assert len(bomb) < 200 * 1024
    before = await web.history()
    for bad, said in ((bomb, "quá nhiều điểm ảnh"), (photo[:2000] + bytes(range(256)) * 40, "không đọc được ảnh"),
                      ("Không phải ảnh, chỉ là chữ.".encode() * 10, "không đọc được ảnh")):
        refused = await web.http.post("/api/upload", content=bad, headers=headers)
        assert refused.status_code == 422 and said in refused.json()["message"]
    assert await web.history() == before and len(list(chat.iterdir())) == 1
    assert len(await _attachments(prod_app)) == 1


async def _attachments(app: App) -> list[dict]:
    """The attachments of the case draft the one web chat is writing."""
    user = await app.store.users.find("web", next(iter(app.web._chats)))
    return (await app.store.cases.draft(user.id))["attachments"]


async def test_old_uploads_are_deleted(prod_app, web):
    await onboard(web)
    headers = {"X-CSRF-Token": web.csrf, "Content-Type": "image/png"}
    old = (await web.http.post("/api/upload", content=png(), headers=headers)).json()["messages"][0]
    new = (await web.http.post("/api/upload", content=png() + b"\0", headers=headers)).json()["messages"][0]
    folder = prod_app.web.files.root
    [old_file] = folder.glob(f"*/{old['photo']['url'].rsplit('/', 1)[1]}")
    eight_days_ago = time.time() - 8 * 86400
    os.utime(old_file, (eight_days_ago, eight_days_ago))
    assert await prod_app.web.prune_uploads(timedelta(days=7)) == 1
    assert (await web.http.get(old["photo"]["url"])).status_code == 404
    assert (await web.http.get(new["photo"]["url"])).status_code == 200
    os.utime(next(folder.glob("*/*")), (eight_days_ago, eight_days_ago))
    assert await prod_app.web.prune_uploads(timedelta(days=7)) == 1
    assert list(folder.iterdir()) == []  # the chat's folder went with its last photo


async def test_a_new_session_does_not_prune_the_hourly_job_of_the_scheduler_does(tmp_path, clock):
    """Expired sessions and old uploads go in the scheduler's job (bot/web_upkeep.py), never in the request of a
    person opening the chat."""
    app = await build_app(tmp_path, clock, demo=False)
    try:
        await app.store.web_sessions.create("t" * 43, "wgone", clock() - timedelta(days=400), timedelta(days=30))
        await app.web.files.put("owner1", "cu.jpg", b"anh cu")
        eight_days_ago = time.time() - 8 * 86400
        os.utime(app.web.files.root / "owner1" / "cu.jpg", (eight_days_ago, eight_days_ago))

        async with client(app) as browser:
            await browser.open()
        assert await app.web.files.get("owner1", "cu.jpg") == b"anh cu"
        assert await _sessions(app) == 2  # the expired one, and the new one

        await app.scheduler.tick()
        assert await app.web.files.get("owner1", "cu.jpg") is None
        assert await _sessions(app) == 1

        await app.web.files.put("owner1", "nua.jpg", b"anh nua")  # an hour has not gone by: kept till it has
        os.utime(app.web.files.root / "owner1" / "nua.jpg", (eight_days_ago, eight_days_ago))
        await app.scheduler.tick()
        assert await app.web.files.get("owner1", "nua.jpg") == b"anh nua"
        clock.advance(hours=1)
        await app.scheduler.tick()
        assert await app.web.files.get("owner1", "nua.jpg") is None
    finally:
        await app.stop()


async def test_old_uploads_go_even_when_the_sessions_sweep_fails(tmp_path, clock, monkeypatch, caplog):
    app = await build_app(tmp_path, clock, demo=False)
    try:
        await app.web.files.put("owner1", "cu.jpg", b"anh cu")
        eight_days_ago = time.time() - 8 * 86400
        os.utime(app.web.files.root / "owner1" / "cu.jpg", (eight_days_ago, eight_days_ago))

        async def locked(now):
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(app.store.web_sessions, "delete_expired", locked)
        await app.scheduler.tick()
        assert await app.web.files.get("owner1", "cu.jpg") is None
        assert "scheduled job web upkeep failed" in caplog.text  # and the failure is still told
    finally:
        await app.stop()


async def _sessions(app: App) -> int:
    return (await app.store.db.fetchone("SELECT count(*) FROM web_sessions"))[0]


async def test_documents_are_downloads(prod_app, web):
    await onboard(web)
    answer = await web.say("/dulieu")
    document = answer[-1]["document"]
    assert document["name"] == "du-lieu-cua-toi.json" and document["mime"] == "application/json"
    download = await web.http.get(document["url"])
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert json.loads(download.content)["profile"]["channel"] == "web"
    async with client(prod_app) as other:
        await other.open()
        assert (await other.http.get(document["url"])).status_code == 404

    chat_id = next(iter(prod_app.web._chats))
    await prod_app.web.send(chat_id, Reply("Mã QR của chiến dịch", photo=Document("qr.png", png(), "image/png")))
    shown = (await web.history())[-1]
    assert shown["html"] == "Mã QR của chiến dịch" and shown["photo"]["mime"] == "image/png"
    assert (await web.http.get(shown["photo"]["url"])).content == png()


# ---- restarts and pushes -------------------------------------------------------------------------------


async def test_a_restart_keeps_the_person(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False)
    async with client(app) as web:
        await web.open()
        await onboard(web)
        cookie = web.http.cookies["danvan_session"]
    await app.stop()

    app = await build_app(tmp_path, clock, demo=False)
    try:
        async with client(app) as web:
            web.http.cookies.set("danvan_session", cookie, domain="testserver.local")
            assert (await web.post("/api/message", {"text": "/start"})).status_code == 401
            await web.open()  # what the page does on a 401
            assert web.http.cookies["danvan_session"] == cookie
            assert "Kính chào Ông/Bà đã trở lại" in text_of(await web.say("/start"))
    finally:
        await app.stop()


async def test_new_messages_are_pushed_to_the_open_page(prod_app):
    async with served(prod_app) as url, httpx.AsyncClient(base_url=url) as http:
        web = WebClient(http)
        await web.open()
        await web.say("/start")
        async with http.stream("GET", "/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()

            async def next_event() -> dict:
                while True:
                    line = await asyncio.wait_for(anext(lines), 5)
                    if line.startswith("data: "):
                        return json.loads(line[6:])

            assert (await next_event())["type"] == "reset"
            snapshot = [await next_event() for _ in range(2)]
            assert [m["from"] for m in snapshot] == ["me", "bot"]
            consent = snapshot[-1]
            await web.post("/api/message", {"choice": consent["options"][0][0]["data"], "ref": consent["id"]})
            pressed = await next_event()
            assert pressed["id"] == consent["id"] and pressed["chosen"] == consent["options"][0][0]["data"]
            pushed = await next_event()
            assert pushed["type"] == "message" and "Đã ghi nhận sự đồng ý" in pushed["html"]


async def test_a_retried_post_is_handled_once(web):
    """The page gives each message an id and keeps it when it posts again (after a lost answer)."""
    await web.say("/start")
    first = await web.post("/api/message", {"text": "/huongdan", "id": "a1b2c3d4e5f6"})
    again = await web.post("/api/message", {"text": "/huongdan", "id": "a1b2c3d4e5f6"})
    assert first.status_code == again.status_code == 200
    assert [m["from"] for m in first.json()["messages"]] == ["me", "bot"]
    assert [m["from"] for m in again.json()["messages"]] == ["me"]  # shown as sent; not answered twice
    other = await web.post("/api/message", {"text": "/huongdan", "id": "f6e5d4c3b2a1"})
    assert [m["from"] for m in other.json()["messages"]] == ["me", "bot"]


# ---- a restart ---------------------------------------------------------------------------------------


async def test_a_restart_keeps_the_history_files_and_demo_role(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with client(app) as web:
            await web.open()
            await web.say("/start")
            mine = await web.history()
            await web.post("/api/persona", {"persona": "admin"})
            await web.say("/start")
            chart = Reply("Biểu đồ", photo=Document("c.png", png(), "image/png"))
            await app.web.send(demo_persona_chat("admin"), chart)
            admins = await web.history()
            cookies = dict(web.http.cookies)
    finally:
        await app.stop()

    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with client(app) as web:
            web.http.cookies.update(cookies)
            assert (await web.open())["persona"] == "admin", "the demo role survives the restart"
            assert await web.history() == admins
            assert admins[-1]["at"] == clock().isoformat(timespec="seconds"), "each message carries its time"
            chart = await web.http.get(admins[-1]["photo"]["url"])
            assert chart.status_code == 200 and chart.content == png()
            await web.post("/api/persona", {"persona": "me"})
            assert await web.history() == mine
            later = await web.say("/huongdan")
            assert later[0]["v"] > mine[-1]["v"], "versions go on from where they were"
    finally:
        await app.stop()


async def test_erasure_deletes_the_web_history_and_its_files(web, prod_app):
    await onboard(web)
    sent = await web.http.post("/api/upload", content=png(), headers={"X-CSRF-Token": web.csrf,
                                                                       "Content-Type": "image/png"})
    photo = sent.json()["messages"][0]["photo"]["url"]
    assert (await web.http.get(photo)).status_code == 200
    await web.say("/xoadulieu")
    erased = await web.click("Xóa dữ liệu của tôi", exact=True)
    assert await web.history() == erased, "only the erasure's own answer is left"
    assert (await web.http.get(photo)).status_code == 404, "nor is the photo served any more"


def demo_persona_chat(key: str) -> str:
    return next(p.external_id for p in personas() if p.key == key)


# ---- a report with a voice note, a document, the location and a name ----------------------------------


async def test_a_web_report_takes_voice_document_location_and_asks_the_name(prod_app, web):
    await onboard(web)
    await web.say("/phananh")
    await web.click("Đồng ý", exact=True)
    await web.click("An sinh xã hội")
    await web.click("Đúng", exact=True)
    asked = (await web.history())[-1]
    assert "mô tả sự việc" in asked["html"] and asked["limit"] == 3000, "the page counts the content against it"
    await web.say("Cầu tràn thôn 3 ngập sâu, học sinh không qua được.")
    headers = {"X-CSRF-Token": web.csrf}
    voice = await web.http.post("/api/upload", content=b"\x1aE\xdf\xa3 webm voice",
                                headers={**headers, "Content-Type": "audio/webm;codecs=opus"})
    assert voice.status_code == 200 and "Đã nhận ghi âm" in text_of(voice.json()["messages"])
    mine = voice.json()["messages"][0]
    assert mine["from"] == "me" and mine["voice"]["url"].startswith("/api/files/")
    played = await web.http.get(mine["voice"]["url"])
    assert played.headers["content-type"] == "audio/webm" and played.content.endswith(b"webm voice")
    document = await web.http.post("/api/upload", content=b"%PDF-1.4 minutes", headers={
        **headers, "Content-Type": "application/pdf", "X-File-Name": "bi%C3%AAn-b%E1%BA%A3n.pdf"})
    assert "Đã nhận tài liệu" in text_of(document.json()["messages"])
    assert document.json()["messages"][0]["document"]["name"] == "biên-bản.pdf"
    place = await web.post("/api/message", {"location": {"latitude": 16.75, "longitude": 107.19}})
    assert "Đã nhận vị trí" in text_of(place.json()["messages"])
    assert (await web.post("/api/message", {"location": {"latitude": 91, "longitude": 0}})).status_code == 400

    await web.click("Tiếp tục")
    asked = text_of(await web.click("Gửi kèm tên", exact=True))
    assert "họ và tên" in asked, "the web chat knows no name: it asks for one"
    assert "Họ tên cần dài" in text_of(await web.say("A"))
    assert "khẩn cấp" in text_of(await web.say("Nguyễn Văn An,  0912 345 678"))
    await web.click("Không khẩn cấp", exact=True)
    review = text_of(await web.history())
    assert "ghi âm ×1" in review and "tài liệu ×1" in review and "vị trí ×1" in review
    sent = text_of((await web.click("✅ Gửi", exact=True))[-1:])
    case = await prod_app.store.cases.by_code(sent.split("<b>")[1].split("</b>")[0])
    assert not case.anonymous and (await prod_app.store.users.get(case.user_id)).display_name == \
        "Nguyễn Văn An, 0912 345 678"


async def test_a_message_the_database_cannot_keep_still_reaches_the_open_page(prod_app, monkeypatch):
    async def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(prod_app.store.web_messages, "add", full)
    stream = prod_app.web.stream("wfull")
    assert await anext(stream) == "retry: 2000\n\n" and "reset" in await anext(stream)
    assert await prod_app.web.send("wfull", Reply("Thông báo của xã")) is not None
    assert "Thông báo của xã" in await anext(stream)
    await stream.aclose()
