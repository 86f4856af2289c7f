"""Several workers on one PostgreSQL: one scheduler leader at a time, its place taken when it dies, jobs every
worker runs, a wake-up forwarded to the leader, and the idempotency keys that hold while two schedulers overlap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from bot.app import App
from bot.config import load
from bot.server import build_asgi
from handlers.base import Inbound, Reply
from storage import Store
from storage.broadcasts import NewBroadcast
from storage.notify import TOPIC_LIST, WEB
from tests.dialog import Clock
from tests.people import make_people
from tests.schedule_kit import local, schedule, staff, timed_harness
from tests.test_web_api import WebClient, served, text_of

pytestmark = pytest.mark.backends("postgresql")
GUARD = 10  # seconds a signal may take before the test gives up (a hang, not a measure)


async def worker(database: str, clock: Clock, name: str) -> App:
    app = await App.build(load(_env_file=None, db=database, demo=False, telegram_token=None, worker=name,
                               quiet_hours="off"), clock=clock)
    await app.signals.start()
    return app


@pytest.fixture
async def workers(database, clock):
    apps = [await worker(database, clock, name) for name in ("w1", "w2")]
    yield apps
    for app in apps:
        await app.stop()


def kill(cluster, application: str) -> None:
    """End a worker's session as a crash would (its process killed, its machine gone): the server side."""
    ended = cluster.admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                                  " WHERE application_name = %s", (application,)).fetchall()
    assert ended == [(True,)]


def recorder(runs: list[str], name: str) -> Callable:
    async def job(now) -> None:
        runs.append(name)
    return job


async def role(app: App) -> tuple[str, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://t") as http:
        body = (await http.get("/healthz")).json()
    return body["worker"], body["role"]


async def test_one_worker_leads_and_runs_the_jobs(workers):
    runs: list[str] = []
    for app in workers:
        app.scheduler.every_tick("probe", recorder(runs, app.config.worker_name))
    await workers[0].scheduler.tick()
    for _ in range(3):
        runs.clear()
        await asyncio.gather(*(app.scheduler.tick() for app in workers))
        assert runs == ["w1"]
    assert [app.scheduler.is_leader for app in workers] == [True, False]
    assert [await role(app) for app in workers] == [("w1", "leader"), ("w2", "follower")]


async def test_every_worker_runs_a_job_registered_everywhere(workers):
    runs: list[str] = []
    for app in workers:
        app.scheduler.every_tick("sweep", recorder(runs, app.config.worker_name), everywhere=True)
    await asyncio.gather(*(app.scheduler.tick() for app in workers))
    assert sorted(runs) == ["w1", "w2"]


async def test_a_dead_leaders_place_is_taken_at_the_next_tick_and_its_broadcast_resumed_once(
        workers, postgres_cluster, clock):
    first, second = workers
    await first.scheduler.tick()
    await second.scheduler.tick()
    assert first.scheduler.is_leader and not second.scheduler.is_leader
    # The leader was sending a broadcast when it died: two recipients in flight.
    store = first.store
    await make_people(store, 5, channel="web")
    broadcast = await store.broadcasts.create(NewBroadcast(text_vi="Lịch tiêm chủng", scheduled_at=clock()), clock())
    assert await store.schedule.claim(f"broadcast:{broadcast.id}", clock())
    assert await store.broadcasts.start(broadcast.id, clock())
    await store.broadcasts.resolve(broadcast.id)
    assert len(await store.broadcasts.claim(broadcast.id, 2, clock())) == 2
    recovered = []
    recover = second.store.broadcasts.recover

    async def counted(broadcast_id: int, resend: bool) -> int:
        recovered.append(broadcast_id)
        return await recover(broadcast_id, resend)

    second.store.broadcasts.recover = counted
    kill(postgres_cluster, "danvan w1 leader")

    await second.scheduler.tick()
    assert second.scheduler.is_leader and await role(second) == ("w2", "leader")
    await second.broadcasts.wait(broadcast.id)
    for _ in range(3):
        await second.scheduler.tick()
    assert recovered == [broadcast.id]
    counts = await store.broadcasts.counts(broadcast.id)
    assert (counts.get("uncertain"), counts.get("sent"), (await store.broadcasts.get(broadcast.id)).status) == \
        (2, 3, "done")
    await first.scheduler.tick()  # the old leader, back, finds the lock taken
    assert not first.scheduler.is_leader and second.scheduler.is_leader


async def test_a_wake_on_a_follower_runs_the_job_on_the_leader(workers):
    leader, follower = workers
    await leader.scheduler.tick()
    await follower.scheduler.tick()
    runs: list[str] = []
    ran = asyncio.Event()
    for app in workers:
        job = recorder(runs, app.config.worker_name)

        async def probe(now, job=job) -> None:
            await job(now)
            ran.set()
        app.scheduler.every_tick("probe", probe)
    follower.router.wake("probe")
    async with asyncio.timeout(GUARD):
        await ran.wait()
    assert runs == ["w1"]


async def test_the_listening_connection_is_made_again_when_lost(workers, postgres_cluster):
    listener, sender = workers
    heard: asyncio.Queue[str | None] = asyncio.Queue()
    listener.signals.listen(WEB, heard.put_nowait)
    lost = listener.signals.pid
    kill(postgres_cluster, "danvan w1 signals")
    async with asyncio.timeout(GUARD):
        assert await heard.get() is None  # "whatever was signalled meanwhile may have been missed"
        assert listener.signals.pid != lost
        await sender.signals.notify(WEB, "web 1 chat")
        assert await heard.get() == "web 1 chat"


async def test_two_schedulers_ticking_at_once_send_each_digest_once(database, postgres_cluster):
    """While a leader hands over (its connection lost in the middle of a tick) two schedulers may run the jobs at
    the same moment: each digest's key is claimed by one of them only."""
    clock = Clock(local(2026, 11, 26, 7, 29))
    stores = [await Store.open(database) for _ in range(2)]
    try:
        workers = [timed_harness(store, clock) for store in stores]
        cadres = [await staff(stores[0], clock(), str(8000 + n), communes=("hai lang",)) for n in range(12)]
        schedulers = [schedule(harness) for harness, _ in workers]
        await asyncio.gather(*(s.tick() for s in schedulers))  # each cadre is first seen before 07:30
        clock.now = local(2026, 11, 26, 7, 31)
        await asyncio.gather(*(s.tick() for s in schedulers))
        sent = [chat for _, channel in workers for _, chat, reply in channel.timed if "Bản tin tổng hợp" in reply.text]
        assert sorted(sent) == sorted(str(8000 + n) for n in range(len(cadres)))
    finally:
        for store in stores:
            await store.close()


async def test_the_web_chat_page_hears_what_another_worker_wrote_to_it(workers):
    """The browser's event stream is held by one worker; the person's next message, a cadre's answer or a broadcast
    may be written by another."""
    holder, other = workers
    async with served(holder) as url, httpx.AsyncClient(base_url=url) as http:
        web = WebClient(http)
        await web.open()
        await web.say("/start")
        chat_id = (await holder.store.db.fetchone("SELECT chat_id FROM web_sessions"))[0]
        async with http.stream("GET", "/api/events") as stream:
            lines = stream.aiter_lines()

            async def next_event() -> dict:
                while True:
                    line = await asyncio.wait_for(anext(lines), GUARD)
                    if line.startswith("data: "):
                        return json.loads(line[6:])

            assert (await next_event())["type"] == "reset"
            snapshot = [await next_event() for _ in range(2)]
            assert [m["from"] for m in snapshot] == ["me", "bot"]

            ref = await other.web.send(chat_id, Reply("Thông báo của xã: lịch tiêm chủng"))
            pushed = await next_event()
            assert "lịch tiêm chủng" in pushed["html"] and pushed["id"] == ref and pushed["v"] > snapshot[-1]["v"]
            await other.web.send(chat_id, Reply("Thông báo của xã: lịch tiêm chủng đã đổi"), edit_ref=ref)
            edited = await next_event()
            assert (edited["id"], "đã đổi" in edited["html"], edited["v"] > pushed["v"]) == (ref, True, True)

            # The person writes here; the other worker handles it (it owns the chat meanwhile).
            mine = await holder.web.record(chat_id, text="/huongdan")
            assert (await next_event())["id"] == mine["id"]
            await other.intake.handle("web", f"{chat_id}:x1", Inbound("web", chat_id, chat_id, "command",
                                                                      command="huongdan"))
            answer = await next_event()
            assert answer["from"] == "bot" and answer["v"] > mine["v"] > edited["v"]
            assert [m["id"] for m in await web.history()][-3:] == [ref, mine["id"], answer["id"]]

            await other.router.refresh_commands("web", chat_id, "admin", "en")  # a new role, another language
            menu = await next_event()
            assert menu["type"] == "commands" and menu["language"] == "en"
            assert "thongbao" in [c["command"] for c in menu["commands"]]


async def test_a_page_gets_what_was_written_while_its_worker_was_not_listening(workers, postgres_cluster):
    holder, other = workers
    chat_id = "wlost"
    stream = holder.web.stream(chat_id)
    assert await anext(stream) == "retry: 2000\n\n" and "reset" in await anext(stream)
    back = asyncio.Event()
    connect = holder.signals._connect

    async def later():
        await back.wait()
        return await connect()

    holder.signals._connect = later
    kill(postgres_cluster, "danvan w1 signals")
    await other.web.send(chat_id, Reply("Thông báo của xã"))  # its signal goes to nobody on the holder
    back.set()
    async with asyncio.timeout(GUARD):
        assert "Thông báo của xã" in await anext(stream)
    await stream.aclose()


async def test_a_web_chat_session_is_answered_by_any_worker(workers):
    """A load balancer sends each of a page's requests where it likes."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://t")
               for app in workers]
    try:
        pages = [WebClient(http) for http in clients]
        opened = await pages[0].open()
        clients[1].cookies = clients[0].cookies
        pages[1].csrf = opened["csrf"]
        assert "Kính chào Ông/Bà" in text_of(await pages[1].say("/start"))
        await pages[0].click("Đồng ý", exact=True)
        assert "Mục đích 2/2" in text_of(await pages[1].history())
        assert (await pages[1].open())["csrf"] == opened["csrf"]
    finally:
        for http in clients:
            await http.aclose()


async def test_a_topic_renamed_on_one_worker_is_read_again_by_the_others(workers):
    """Topics are kept in each worker's memory: a rename an admin makes on one (/linhvuc) must not leave the others
    showing the old name until their restart."""
    one, other = workers
    topic = (await other.store.topics.all())[0]  # read, so kept
    heard = asyncio.Event()
    other.signals.listen(TOPIC_LIST, lambda _: heard.set())  # after the App's own listener: it has forgotten by then
    await one.store.topics.update(topic.id, name_vi="Giao thông nông thôn")
    async with asyncio.timeout(GUARD):
        await heard.wait()
    assert (await other.store.topics.get(topic.id)).name_vi == "Giao thông nông thôn"
