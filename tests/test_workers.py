"""Several workers on one PostgreSQL (issue 19): each chat's updates answered in the order they came and once
whichever worker received them, a worker that dies holding a chat leaves it to the others, two senders never
claim one recipient of a broadcast, and a second worker may not long-poll the platform."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import pytest

from bot.app import App
from bot.intake import Intake
from bot.render import plain
from handlers.base import Inbound
from storage import Store
from storage.broadcasts import NewBroadcast
from storage.claims import Claims
from tests.bot_process import free_port
from tests.dialog import TEXT_ONLY, Clock, Harness, RecordingChannel, turns
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import make_people
from tests.test_telegram_e2e import LAN, config_for, eventually, running

pytestmark = pytest.mark.backends("postgresql")

# Onboarding as typed on a channel without buttons: each answer depends on the one before, so an update handled
# out of its turn, or twice, shows.
TYPED = [
    ("/start", ["Kính chào", "Mục đích 1/2"]),
    ("Đồng ý", ["Đã ghi nhận", "Mục đích 2/2"]),
    ("Đồng ý", ["xã, phường nào"]),
    ("hai lang", ["Tìm thấy"]),
    ("xa hai lang", ["thôn, tổ dân phố nào của xã Hải Lăng"]),
    ("Bỏ qua", ["lĩnh vực nào"]),
    ("Xây dựng nông thôn mới", ["✅ Xây dựng nông thôn mới"]),
    ("Xong", ["Thông tin của Ông/Bà", "xã Hải Lăng", "Xây dựng nông thôn mới"]),
]


class Worker:
    """What one `danvan run` brings to the shared database: its own connections, router and intake."""

    def __init__(self, store: Store, clock: Clock, channel: RecordingChannel) -> None:
        self.store = store
        self.harness = Harness(store, clock, channel)
        self.claims = Claims(store.db)
        self.intake = Intake(store, self.harness.router, clock, self.claims)

    async def write(self, chat: str, said: str, update_id: str, *, wait: bool = False) -> None:
        """The person's update as a platform delivers it to this worker; `wait`: as the web chat, for the answer."""
        event = Inbound("test", chat, chat, "text", text=said, display_name="Nguyễn Thị Lan", language="vi")
        if wait:
            await self.intake.handle("test", update_id, event)
        else:
            await self.intake.accept("test", [(update_id, event)])


@pytest.fixture
async def workers(database, clock):
    channel = RecordingChannel(capabilities=TEXT_ONLY)  # one platform: what every worker sends lands here
    stores = [await Store.open(database), await Store.open(database)]
    workers = [Worker(store, clock, channel) for store in stores]
    yield workers
    for worker in workers:
        await worker.intake.drain(0)
        await worker.claims.close()
        await worker.store.close()


async def settled(workers: list[Worker]) -> None:
    """Until no worker is handling anything; an update then left undone would have been forgotten."""
    while tasks := [task for worker in workers for task in worker.intake._tasks]:
        await asyncio.gather(*tasks)


def screen(worker: Worker, chat: str) -> list[str]:
    return [plain(reply.text) for reply in worker.harness.channel.screen(chat)]


async def alone(worker: Worker, chat: str, table: list[tuple[str, list[str]]]) -> list[str]:
    """The turn table for one person on one worker, nobody else about: what they see."""
    await turns(worker.harness.person(chat), table)
    return screen(worker, chat)


async def test_two_workers_fed_one_chats_updates_in_turn_answer_them_in_order_and_once(workers):
    a, b = workers
    expected = await alone(a, "1000", TYPED)
    people = [str(2000 + n) for n in range(6)]
    for n, chat in enumerate(people):  # each update goes to the other worker than the one before, without a pause
        for step, (said, _) in enumerate(TYPED):
            await workers[(step + n) % 2].write(chat, said, f"{chat}-{step}")
    await settled(workers)
    for chat in people:
        assert screen(a, chat) == expected
    assert not await a.store.journal.pending()


async def test_an_update_that_reaches_another_worker_while_one_holds_the_chat_is_handled_by_the_holder(workers):
    a, b = workers
    two = await alone(a, "1000", TYPED[:2])
    handle, holding, go_on = a.harness.router.handle, asyncio.Event(), asyncio.Event()

    async def slowly(inbound, entry_id=None):
        holding.set()
        await go_on.wait()
        return await handle(inbound, entry_id)

    a.harness.router.handle = slowly
    await a.write("5000", "/start", "w1")
    await holding.wait()
    await b.write("5000", "Đồng ý", "w2", wait=True)  # B cannot take the chat: it returns, A will see the update
    go_on.set()
    await settled(workers)  # no sweep: A reads what is left once it lets the chat go
    assert screen(a, "5000") == two


async def test_a_worker_that_dies_holding_a_chat_leaves_its_updates_to_another_workers_sweep(workers, clock):
    a, b = workers
    two, three = await alone(b, "1000", TYPED[:2]), await alone(b, "1001", TYPED[:3])
    holding = asyncio.Event()

    async def dies_while_handling(inbound, entry_id=None):
        holding.set()
        await asyncio.Event().wait()

    a.harness.router.handle = dies_while_handling
    await a.write("3000", "/start", "u1")
    await holding.wait()
    async with asyncio.timeout(30):  # a bound for a hang, not a measure: it returns at once, A holds the chat
        await b.write("3000", "Đồng ý", "u2", wait=True)
    clock.advance(minutes=1)
    await b.intake.replay()  # B starts, or sweeps, while A is alive: the chat is A's
    await b.intake.drainers.sweep(clock())
    await settled([b])
    assert screen(b, "3000") == []
    await a.claims.close()  # A dies: its sessions end, and the chat's lock with them
    await a.store.close()

    async def let_go() -> bool:  # the server ends a session on its own time
        return not await b.store.db.fetchone("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database ="
                                             " (SELECT oid FROM pg_database WHERE datname = current_database())")

    await eventually(let_go, timeout=30)
    await b.intake.drainers.sweep(clock())
    await settled([b])
    assert screen(b, "3000") == two
    await b.write("3000", "Đồng ý", "u3", wait=True)  # B holds nothing now: it answers before it returns
    assert screen(b, "3000") == three
    assert not await b.store.journal.pending()


async def test_an_update_that_cannot_be_handled_holds_back_its_chats_next_ones_until_the_sweep(workers, clock):
    a, _ = workers
    two = await alone(a, "1000", TYPED[:2])
    handle, broken = a.harness.router.handle, [True]

    async def out_of_reach(inbound, entry_id=None):  # the database, say, for a while
        if broken[0]:
            raise OSError("database or disk is full")
        return await handle(inbound, entry_id)

    a.harness.router.handle = out_of_reach
    await a.write("4000", "/start", "v1")
    await a.write("4000", "Đồng ý", "v2")
    await settled([a])
    assert screen(a, "4000") == [] and len(await a.store.journal.pending()) == 2  # not the second before the first
    broken[0] = False
    clock.advance(minutes=1)
    await a.intake.drainers.sweep(clock())
    await settled([a])
    assert screen(a, "4000") == two


async def test_two_senders_claiming_at_once_take_different_recipients(store, clock):
    ids = await make_people(store, 6)
    broadcast = await store.broadcasts.create(NewBroadcast(text_vi="Họp dân thôn Hà Lộc", scheduled_at=clock()),
                                              clock())
    assert await store.broadcasts.resolve(broadcast.id) == 6
    other = await Store.open(store.db.path)  # another worker's sender
    try:
        inside, go_on = asyncio.Event(), asyncio.Event()
        executemany = store.db.conn.executemany

        async def claims_slowly(sql, rows):  # the first sender's transaction stays open after its claim
            await executemany(sql, rows)
            if "'sending'" in sql:
                inside.set()
                await go_on.wait()

        store.db.conn.executemany = claims_slowly
        first = asyncio.create_task(store.broadcasts.claim(broadcast.id, 3, clock()))
        await inside.wait()
        second = asyncio.create_task(other.broadcasts.claim(broadcast.id, 3, clock()))

        async def second_answered_or_waits() -> bool:
            row = await store.db.fetchone("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                          " AND datname = current_database()")
            return second.done() or row[0] > 0

        await eventually(second_answered_or_waits, timeout=30)
        go_on.set()
        taken = [{target.user_id for target in await first}, {target.user_id for target in await second}]
    finally:
        await other.close()
    assert not taken[0] & taken[1]
    assert taken[0] | taken[1] == set(ids)


async def test_a_second_polling_worker_is_refused_with_a_plain_message(database, tmp_path):
    async with FakeBotAPI() as api:
        async with running(config_for(api, database)) as app:
            calls = await api.ask(LAN, "/start")
            assert "Kính chào" in calls[0].text
            env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
                   "DANVAN_DB": database, "DANVAN_PORT": str(free_port()), "LANG": "C.UTF-8"}
            second = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", cwd=tmp_path,
                                                          env=env, stdout=asyncio.subprocess.PIPE,
                                                          stderr=asyncio.subprocess.PIPE)
            try:
                async with asyncio.timeout(60):
                    _, err = await second.communicate()
            finally:
                if second.returncode is None:
                    second.kill()
                    await second.wait()
            assert second.returncode == 1
            assert "một tiến trình danvan khác đang nhận tin Telegram bằng long polling" in err.decode()
            calls = await api.ask(LAN, "/huongdan")  # the first goes on polling
            assert "/caidat" in calls[0].text and not app.halted.is_set()


async def test_in_webhook_mode_several_workers_start_on_one_database(database, caplog):
    caplog.set_level(logging.INFO, logger="bot.app")
    async with FakeBotAPI() as api:
        config = config_for(api, database, TELEGRAM_WEBHOOK_URL="https://bot.example.vn/telegram/webhook",
                            TELEGRAM_WEBHOOK_SECRET="s3cret-Value_1")
        async with running(config), running(config):
            said = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
            assert said.count("on PostgreSQL in webhook mode: several workers may run on this database") == 2


async def test_app_wiring_takes_the_chat_order_path_only_on_postgresql(database, tmp_path):
    async with FakeBotAPI() as api:
        for db, shared in ((database, True), (tmp_path / "one.db", False)):
            app = await App.build(config_for(api, db))
            try:
                assert (app.intake.drainers is not None) is shared
                assert ("stranded chats" in app.scheduler.everywhere) is shared  # every worker sweeps, at every tick
            finally:
                await app.store.close()
