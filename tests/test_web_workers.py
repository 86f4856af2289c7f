"""The web chat on several workers sharing one PostgreSQL, each maybe on a machine of its own: whatever a page asks,
any worker answers as the one that handled its last request would (files, the rate limit, the demo's persona, the
edits of its messages)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from bot import webchat
from bot.app import App
from bot.channels import web as web_channel
from bot.config import load
from bot.server import build_asgi
from handlers.base import Document, Media, Reply
from handlers.images import normalise
from storage.broadcasts import NewBroadcast
from tests.test_leader import GUARD
from tests.test_web_api import WebClient, png

pytestmark = pytest.mark.backends("postgresql")


@contextlib.asynccontextmanager
async def workers(database, clock, **settings) -> AsyncIterator[list[App]]:
    apps = []
    try:
        for name in ("w1", "w2"):
            apps.append(await App.build(load(_env_file=None, db=database, telegram_token=None, worker=name,
                                             quiet_hours="off", **{"demo": False, "web_burst": 1000, **settings}),
                                        clock=clock))
            await apps[-1].signals.start()
        yield apps
    finally:
        for app in apps:
            await app.stop()


@contextlib.asynccontextmanager
async def pages(apps: list[App]) -> AsyncIterator[list[WebClient]]:
    """One browser whose requests a load balancer sends to each worker in turn: a page per worker, one cookie."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://t")
               for app in apps]
    try:
        browsers = [WebClient(http) for http in clients]
        opened = await browsers[0].open()
        for browser in browsers[1:]:
            browser.http.cookies, browser.csrf = clients[0].cookies, opened["csrf"]
        yield browsers
    finally:
        for http in clients:
            await http.aclose()


def elsewhere(tmp_path, monkeypatch, name: str) -> None:
    """Go on as a worker on another machine: its working directory (its data/ folder) is not the first's."""
    (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / name)


async def test_a_photo_and_a_document_kept_by_one_worker_are_served_by_another(database, clock, tmp_path,
                                                                               monkeypatch):
    async with workers(database, clock) as (one, other), pages([one, other]) as (here, there):
        await here.say("/start")
        answer = await here.http.post("/api/upload", content=png(), headers={"X-CSRF-Token": here.csrf,
                                                                             "Content-Type": "image/png"})
        assert answer.status_code == 200, answer.text
        photo = answer.json()["messages"][0]["photo"]["url"]
        chat_id = (await one.store.db.fetchone("SELECT chat_id FROM web_sessions"))[0]
        await one.web.send(chat_id, _document("ket-qua.txt", b"Danh sach"))
        document = (await here.history())[-1]["document"]["url"]

        elsewhere(tmp_path, monkeypatch, "machine-2")
        shown = await there.http.get(photo)
        assert (shown.status_code, shown.content) == (200, normalise(png()))
        assert (await other.web.fetch(Media("photo", photo.rsplit("/", 1)[1], len(shown.content), "image/jpeg"))
                == shown.content)  # what a handler on this worker reads of the upload
        downloaded = await there.http.get(document)
        assert (downloaded.status_code, downloaded.content) == (200, b"Danh sach")

        await other.web.forget(chat_id)  # the person erased their data
        assert [(await here.http.get(url)).status_code for url in (photo, document)] == [404, 404]
        assert (await one.store.db.fetchone("SELECT count(*) FROM files"))[0] == 0


async def test_old_web_files_go_but_the_bytes_a_broadcast_names_stay(database, clock):
    async with workers(database, clock) as (one, _):
        kept = await one.web.save_upload("wcase", b"anh cua phan anh")
        # An admin composed a broadcast with the photo: it is kept in the file store under the same digest.
        await one.store.broadcasts.create(NewBroadcast("Ảnh của xã", clock(), photo_sha256=await one.store.files.put(
            b"anh cua phan anh")), clock())
        old = await one.web.save_upload("wold", b"anh cu")
        new = await one.web.save_upload("wold", b"anh moi")
        await one.store.db.execute("UPDATE web_files SET created_at = now() - interval '8 days' WHERE name <> ?",
                                   (new,))
        assert await one.web.prune_uploads(timedelta(days=7)) == 2
        assert [await one.web.files.get(owner, name) for owner, name in
                ((kept[:16], kept), (old[:16], old), (new[:16], new))] == [None, None, b"anh moi"]
        assert await one.store.files.get(_sha256(b"anh cua phan anh")) == b"anh cua phan anh"
        assert await one.store.files.get(_sha256(b"anh cu")) is None


async def test_the_leader_alone_prunes_the_web_chat_and_a_new_session_does_not(database, clock):
    async with workers(database, clock) as apps:
        old = await apps[0].web.save_upload("wold", b"anh cu")
        await apps[0].store.db.execute("UPDATE web_files SET created_at = now() - interval '8 days'")
        async with pages(apps):  # a person opens the chat
            pass
        assert await apps[0].web.files.get(old[:16], old) == b"anh cu"

        for app in apps:
            await app.scheduler.elect()
        [leader] = [app for app in apps if app.scheduler.is_leader]
        [follower] = [app for app in apps if app is not leader]
        await follower.scheduler.tick()
        assert await apps[0].web.files.get(old[:16], old) == b"anh cu"
        await leader.scheduler.tick()
        assert await apps[0].web.files.get(old[:16], old) is None


def _document(name: str, content: bytes) -> Reply:
    return Reply("Tệp của Ông/Bà", document=Document(name, content, "text/plain"))


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def test_an_edit_of_a_message_pushed_out_of_the_history_meanwhile_comes_as_a_new_message(database, clock,
                                                                                                 monkeypatch):
    """The history keeps each chat's newest messages; a message being edited on one worker may be pushed out by one
    another worker adds at that moment. The page then gets the edit as a new message, not nothing."""
    monkeypatch.setattr(web_channel, "HISTORY", 2)
    async with workers(database, clock) as (holder, other):
        stream = holder.web.stream("wedit")
        assert await anext(stream) == "retry: 2000\n\n" and "reset" in await anext(stream)
        card = await other.web.send("wedit", Reply("Phản ánh PA-26-000001: đang xử lý"))
        await holder.web.send("wedit", Reply("Thông báo của xã"))
        read = other.store.web_messages.get

        async def read_then_pushed_out(*args):
            found = await read(*args)
            await holder.web.send("wedit", Reply("Lịch tiếp dân"))
            return found

        monkeypatch.setattr(other.store.web_messages, "get", read_then_pushed_out)
        edit = await other.web.send("wedit", Reply("Phản ánh PA-26-000001: đã giải quyết"), edit_ref=card)
        shown = []
        async with asyncio.timeout(GUARD):
            while not shown or "đã giải quyết" not in shown[-1]:
                frame = await anext(stream)
                if frame.startswith("data: "):
                    shown.append(json.loads(frame[6:])["html"])
        assert edit != card and shown[-1] == "Phản ánh PA-26-000001: đã giải quyết"
        assert [m["html"] for m in await holder.web.history("wedit")] == ["Lịch tiếp dân", shown[-1]]
        await stream.aclose()


async def test_a_session_sending_to_each_worker_in_turn_has_one_limit_not_one_per_worker(database, clock):
    async with workers(database, clock, web_burst=3, web_rate=0.01) as apps, pages(apps) as browsers:
        answers = [await browsers[n % 2].post("/api/message", {"text": f"Tin {n}"}) for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert 90 < answers[-1].json()["retry_after"] <= 100  # 100 s a message, less the seconds the posts took


async def test_new_sessions_from_one_address_are_limited_across_the_workers(database, clock, monkeypatch):
    monkeypatch.setattr(webchat, "SESSION_RATE", 0.001)  # none given back while the test runs
    async with workers(database, clock) as apps:
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://t")
                   for app in apps]
        try:
            opened = []
            for n in range(webchat.SESSION_BURST + 1):
                clients[n % 2].cookies.clear()  # a new visitor from the same address
                opened.append((await clients[n % 2].post("/api/session", headers={"X-Danvan": "1"})).status_code)
        finally:
            for http in clients:
                await http.aclose()
        assert opened == [200] * webchat.SESSION_BURST + [429]
        # The address is kept in the database only keyed with the deployment's secret, not as a bare hash
        # that hashing every IPv4 address would undo.
        keys = [r[0] for r in await apps[0].store.db.fetchall(
            "SELECT channel FROM send_gate WHERE channel LIKE 'web address %'")]
        assert keys and hashlib.sha256(b"127.0.0.1").hexdigest() not in " ".join(keys)
