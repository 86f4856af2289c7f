"""Inbound load through the Telegram channel (or, with `--channel zalo`, the Zalo channel): the real bot and
its HTTP stack long-polling the fake Bot API (tests/fakes/telegram_api.py or zalo_api.py) on loopback, the
database on disk.

    python -m bench.inbound            # about 45 s; progress on stderr, one JSON line last on stdout
    python -m bench.inbound --channel zalo   # the same load on Zalo: people type the number of a choice

Scenarios (each a small async function returning its JSON fields; add new ones to SCENARIOS):

* onboarding_throughput (a): 100 people onboard as fast as the bot answers (closed loop), each round a new
  person; updates answered per second over the measuring window.
* echo_ceiling: the same harness and concurrency against a bare echo bot (python-telegram-bot; on Zalo, a
  loop on the channel's own client, bot/channels/zalo_api.py).
* channel_ceiling: the same echo through the bot's own channel (router, handlers, database cut out).
* mixed_load (c): half the people send cases (phản ánh) one after another while the rest onboard;
  "cases_per_s" is the cases stored within the window.
* steady_latency (b): 100 people each sending one update every 2 s (open loop, ~50 updates/s), half of them
  onboarding and half already onboarded; time from pushing an update to the first reply at the fake.

Everything (bot, fake server, simulated people) shares one process and one event loop: see bench/README.md.
With `--workers N` (on PostgreSQL) the bot is N `danvan run` processes in webhook mode behind a round-robin proxy
(tests/workers.py), the fake posting each update to the proxy; the channel ceiling is then not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import re
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench.databases import Databases, cores
from bot.app import App
from bot.channels.zalo_api import ZaloAPI, ZaloError
from bot.config import Config
from handlers.base import Inbound, Reply
from storage import Store
from tests.fakes import zalo_api
from tests.fakes.telegram_api import MESSAGE_METHODS, Call, FakeBotAPI
from tests.fakes.zalo_api import FakeZaloAPI
from tests.workers import PostsToWebhook, Worker, workers

STEP_TIMEOUT = 10.0  # seconds a person waits for the bot's answer before the bench fails


class BenchError(Exception):
    """The bot answered wrongly, too late or not at all: the figures would mean nothing."""


def say(message: str) -> None:
    print(f"[bench.inbound {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the fake, with an O(1) way for 100 people to wait for their answers ---------------------------------


class Box:
    """The messages the bot sent to one chat since its person's last update."""

    __slots__ = ("calls", "want", "future")

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.want = 0
        self.future: asyncio.Future[None] | None = None

    def add(self, call: Call) -> None:
        self.calls.append(call)
        future = self.future
        if future is not None and len(self.calls) >= self.want and not future.done():
            future.set_result(None)


class Boxed:
    """A fake whose recorded message calls are also routed to a per-chat Box (mixed into each platform's fake).

    The fakes' wait_sent checks every waiter on every call (100 waiters x every call); a dict lookup
    keeps the harness's own cost flat. Hooks the fake's `_record` (the one place calls are recorded)."""

    message_methods: frozenset[str] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[int | str, Box] = {}
        self.counts: Counter[str] = Counter()

    def _record(self, call) -> None:
        super()._record(call)
        self.counts[call.method if call.ok else f"{call.method}:{call.status}"] += 1
        if call.ok and call.chat_id is not None and call.method in self.message_methods:
            box = self.boxes.get(call.chat_id)
            if box is not None:
                box.add(call)

    def check_calls(self) -> None:
        if self.server_errors:
            raise BenchError(f"the fake Bot API crashed: {self.server_errors[:3]!r}")
        failed = {k: v for k, v in self.counts.items() if ":" in k}
        if failed:
            raise BenchError(f"failed Bot API calls: {failed}; last calls:\n{self.describe_calls()}")


class BenchAPI(Boxed, FakeBotAPI):
    """Telegram: people press buttons (callback queries), which the bot must answer."""

    message_methods = MESSAGE_METHODS

    def __init__(self) -> None:
        super().__init__()
        self._answered = asyncio.Event()

    @staticmethod
    def user(n: int) -> int:
        return n

    @staticmethod
    def shows(call: Call, text: str) -> bool:
        return text in (call.text or "") or any(text in b["text"] for b in call.buttons)

    def choose(self, user_id: int, label: str, last: list[Call]) -> None:
        """Press the button labelled `label` in the bot's latest answer."""
        for call in reversed(last):
            for button in call.buttons:
                if label in button["text"] and "callback_data" in button:
                    self.push_callback(user_id, button["callback_data"], message_id=call.message_id)
                    return
        raise BenchError(f"person {user_id}: no button {label!r} in {[c.buttons for c in last]!r}")

    def _record(self, call: Call) -> None:
        super()._record(call)
        if call.method == "answerCallbackQuery" and not self._open_callbacks:
            self._answered.set()

    async def settle(self) -> None:
        """Let the bot's fire-and-forget answerCallbackQuery calls land before it stops (up to 3 s)."""
        if self._open_callbacks:
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self._answered.wait()

    def check(self) -> None:
        self.check_calls()
        if self._open_callbacks:
            raise BenchError(f"{len(self._open_callbacks)} button presses never answered (answerCallbackQuery)")


class WebhookBenchAPI(PostsToWebhook, BenchAPI):
    """Telegram posting each update to the workers' webhook, through the round-robin proxy."""


class BenchZaloAPI(Boxed, FakeZaloAPI):
    """Zalo: no buttons; people type the number the bot's text gives a choice ("1. Đồng ý"). Ids are strings."""

    message_methods = zalo_api.MESSAGE_METHODS

    @staticmethod
    def user(n: int) -> str:
        return str(n)

    @staticmethod
    def shows(call: zalo_api.Call, text: str) -> bool:
        return text in (call.text or "")

    def choose(self, user_id: str, label: str, last: list[zalo_api.Call]) -> None:
        """Type the number of the choice `label` in the bot's latest answer."""
        pattern = re.compile(rf"^(\d+)\. [^\n]*{re.escape(label)}", re.M)
        for call in reversed(last):
            found = pattern.search(call.text or "")
            if found:
                self.push_text(user_id, found.group(1))
                return
        raise BenchError(f"person {user_id}: no choice {label!r} in {[c.text for c in last]!r}")

    async def settle(self) -> None:
        """Nothing is left in flight once every person has had their answer (no callback queries)."""

    def check(self) -> None:
        self.check_calls()


Fake = BenchAPI | BenchZaloAPI


# ---- simulated people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One update a person sends: text/command, or "[Label]" to press the button so labelled in the bot's
    latest answer; `replies` messages (sends and edits) make the bot's complete answer, the last one
    must contain `expect` (in its text or a button label)."""

    send: str
    replies: int
    expect: str

    @property
    def label(self) -> str | None:
        return self.send[1:-1] if self.send.startswith("[") and self.send.endswith("]") else None


# tests/dialog.py ONBOARD, with the number of messages the bot answers each step with (a plain text is
# joined onto the reply that follows it, so each answer is one message).
ONBOARD = [
    Step("/start", 1, "Mục đích 1/2"),
    Step("[Đồng ý]", 1, "Mục đích 2/2"),
    Step("[Đồng ý]", 1, "xã, phường nào"),
    Step("hai lang", 1, "xã Hải Lăng"),
    Step("[xã Hải Lăng]", 1, "thôn, tổ dân phố"),
    Step("[Bỏ qua]", 1, "lĩnh vực nào"),
    Step("[Xây dựng nông thôn mới]", 1, "✅ Xây dựng nông thôn mới"),
    Step("[Xong]", 1, "Hướng dẫn"),  # the profile summary with the main menu
]
# An onboarded person: asks for help, writes a greeting (the bot shows the menu; three words or more would be
# offered as a report, handlers/offer.py), presses [Hướng dẫn].
REGULAR = [
    Step("/huongdan", 1, "Hướng dẫn sử dụng"),
    Step("xin chào", 1, "Hướng dẫn"),
    Step("[Hướng dẫn]", 1, "Hướng dẫn sử dụng"),
]


# An onboarded person sends a report (phản ánh), step by step, and starts the next one.
REPORT = [
    Step("/phananh", 1, "lĩnh vực nào"),
    Step("[Khác]", 1, "về địa bàn"),
    Step("[Đúng]", 1, "mô tả sự việc"),
    Step("Đèn chiếu sáng đường liên thôn bị hỏng từ tuần trước, buổi tối đi lại rất tối.", 1, "Đã nhận nội dung"),
    Step("[Tiếp tục]", 1, "ẩn danh"),
    Step("[Gửi kèm tên]", 1, "khẩn cấp"),
    Step("[Không khẩn cấp]", 1, "xem lại"),
    Step("[✅ Gửi]", 1, "đã được tiếp nhận"),
]


class Stop(Exception):
    """The run is over for this person: nothing more is sent."""


@dataclass
class Load:
    """What a crowd shares: the measuring window [begin, end) and what was seen in it.

    Updates count when their answer completes inside the window; latency samples are taken for the
    updates pushed inside it. Nobody pushes at or after `end` (in-flight answers are awaited)."""

    begin: float
    end: float
    updates: int = 0
    messages: int = 0  # message calls awaited by people (compared with what the fake saw)
    sent: int = 0  # updates pushed, whole run
    callbacks: int = 0  # of which button presses (typed numbers on Zalo)
    late: int = 0  # open loop: pushes that could not keep to the schedule
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (first reply, complete answer)
    cpu: float = 0.0  # process CPU seconds (every thread: bot, fake, people) spent inside the window
    cases: int = 0  # cases acknowledged with their code inside the window
    cases_sent: int = 0  # … in the whole run

    @property
    def cpu_ms_per_update(self) -> float:
        return round(self.cpu * 1000 / max(self.updates, 1), 2)

    def record(self, pushed: float, done: float, calls: list[Call]) -> None:
        self.messages += len(calls)
        if "đã được tiếp nhận với mã" in (calls[-1].text or ""):
            self.cases_sent += 1
            self.cases += self.begin <= done < self.end
        if self.begin <= done < self.end:
            self.updates += 1
        if self.begin <= pushed < self.end:
            self.latencies.append((calls[0].at - pushed, calls[-1].at - pushed))


class Person:
    """Sends a Step, waits for the bot's complete answer. Closed loop (`period` None): the next step as
    soon as the answer is in; open loop: one step every `period` seconds from `first_at`."""

    def __init__(self, api: Fake, load: Load, ids: Iterator[int], *, period: float | None = None,
                 first_at: float = 0.0) -> None:
        self.api, self.load, self.ids = api, load, ids
        self.period, self.next_at = period, first_at
        self.id: int | str = 0
        self.box = Box()
        self.last: list[Call] = []
        self.renew()

    def renew(self) -> None:
        """Become a new person (a new user id), so the next onboarding is a real one."""
        self.api.boxes.pop(self.id, None)
        self.id = self.api.user(next(self.ids))
        self.box = self.api.boxes[self.id] = Box()
        self.last = []

    async def _pace(self) -> None:
        load = self.load
        if self.period is None:
            if time.monotonic() >= load.end:
                raise Stop
            return
        if self.next_at >= load.end:
            raise Stop
        delay = self.next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            load.late += 1
        self.next_at += self.period

    async def step(self, step: Step) -> list[Call]:
        await self._pace()
        api, box, load = self.api, self.box, self.load
        box.calls, box.want = [], step.replies
        box.future = future = asyncio.get_running_loop().create_future()
        label = step.label
        if label is not None:
            pushed = time.monotonic()
            api.choose(self.id, label, self.last)
            load.callbacks += 1
        else:
            pushed = time.monotonic()
            api.push_text(self.id, step.send)
        load.sent += 1
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await future
        except TimeoutError:
            raise BenchError(f"person {self.id}, {step.send!r}: {len(box.calls)} of {step.replies} replies in "
                             f"{STEP_TIMEOUT}s: {box.calls!r}") from None
        done = time.monotonic()
        calls, box.future = box.calls, None
        last = calls[-1]
        if not api.shows(last, step.expect):
            raise BenchError(f"person {self.id}, {step.send!r}: expected {step.expect!r} in {calls!r}")
        self.last = calls
        load.record(pushed, done, calls)
        return calls

    async def run(self, steps: list[Step]) -> None:
        for step in steps:
            await self.step(step)


Script = Callable[[Person], Awaitable[None]]


async def onboard_forever(person: Person) -> None:
    while True:
        await person.run(ONBOARD)
        person.renew()


async def regular_forever(person: Person) -> None:
    while True:
        await person.run(REGULAR)


async def report_forever(person: Person) -> None:
    while True:
        await person.run(REPORT)


async def echo_forever(person: Person) -> None:
    for n in itertools.count():
        await person.step(Step(f"xin chào {n}", 1, f"xin chào {n}"))


async def crowd(people: list[tuple[Person, Script]], load: Load) -> None:
    """Run every person's script until the window closes; any failure stops them all."""

    async def one(person: Person, script: Script) -> None:
        with contextlib.suppress(Stop):
            await script(person)

    async def progress() -> None:
        while True:
            await asyncio.sleep(2.0)
            now = time.monotonic()
            phase = ("setting up" if load.begin == math.inf else "warm-up" if now < load.begin
                     else f"{now - load.begin:.0f}s in window")
            say(f"  {phase}: {load.sent} updates sent, {load.updates} counted")

    ticker = asyncio.create_task(progress())
    try:
        async with asyncio.TaskGroup() as group:
            for person, script in people:
                group.create_task(one(person, script))
    finally:
        ticker.cancel()


# ---- the bots under test --------------------------------------------------------------------------------


def telegram_settings(api: Fake, rate: int) -> dict:
    return {"TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url, "TELEGRAM_WEBHOOK_URL": None,
            "TELEGRAM_RATE": rate}


def zalo_settings(api: Fake, rate: int) -> dict:
    """Zalo alone (no Telegram token), long polling."""
    return {"TELEGRAM_BOT_TOKEN": None, "ZALO_BOT_TOKEN": api.token, "ZALO_API_URL": api.base_url,
            "ZALO_WEBHOOK_URL": None, "ZALO_RATE": rate}


class Fleet:
    """`--workers N`: what a scenario needs of the bot when it runs as N processes: the database, and the CPU
    the processes spent (theirs is not this process's)."""

    def __init__(self, store: Store, running: list[Worker]) -> None:
        self.store, self.running = store, running

    def cpu(self) -> float:
        """CPU seconds this process and the workers have spent (Linux /proc)."""
        ticks = 0
        for worker in self.running:
            with open(f"/proc/{worker.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return time.process_time() + ticks / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def danvan_bot(opts: Options, db: Path, **settings) -> AsyncIterator[tuple[Fake, App | Fleet]]:
    """The real bot (App.build, the single wiring point) long-polling a fresh fake, database on disk; with
    `opts.workers`, that many `danvan run` processes on the database in webhook mode behind a round-robin proxy.

    `opts.rate` is the channel's outbound cap (TELEGRAM_RATE or ZALO_RATE) in messages/s: at Telegram's
    default of 30 the bench would measure the cap (30 messages/s, ~19 onboarding updates/s), not the bot."""
    platform = PLATFORMS[opts.channel]
    where = opts.databases.fresh(opts.tmp, db.stem) if opts.databases else db
    if opts.workers:
        async with several_workers(opts, where, db.stem, **settings) as bot:
            yield bot
        return
    async with platform.fake() as api:
        config = Config(_env_file=None, DANVAN_DB=where, DANVAN_DEMO=False, **platform.settings(api, opts.rate),
                        **settings)
        app = await App.build(config)
        await app.start()
        try:
            yield api, app
        finally:
            await api.settle()
            await app.stop()
        api.check()


@contextlib.asynccontextmanager
async def several_workers(opts: Options, db: Path | str, name: str,
                          **settings) -> AsyncIterator[tuple[Fake, Fleet]]:
    store = await Store.open(db)  # migrated and seeded once, before the workers start
    variables = {f"DANVAN_{key.upper()}": str(value) for key, value in settings.items()}
    folder = opts.tmp / name
    folder.mkdir()
    try:
        async with WebhookBenchAPI() as api, workers(opts.workers, str(db), api, folder, TELEGRAM_RATE=str(opts.rate),
                                                     **variables) as (running, _proxy):
            try:
                yield api, Fleet(store, running)
            finally:
                await api.settle()
                await api.posted()
            api.check()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def echo_bot() -> AsyncIterator[BenchAPI]:
    """A bare python-telegram-bot echo bot: PTB's default transport (httpx), with the concurrency and
    polling settings of bot/channels/telegram.py (keep those in step with it)."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text)

    async with BenchAPI() as api:
        app: Application = (ApplicationBuilder().token(api.token).base_url(api.base_url)
                            .base_file_url(api.base_file_url).concurrent_updates(True)
                            .connection_pool_size(64).pool_timeout(10.0).build())
        app.add_handler(MessageHandler(filters.TEXT, echo))
        await app.initialize()
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES,
                                        drop_pending_updates=False)
        try:
            yield api
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
        api.check()


@contextlib.asynccontextmanager
async def zalo_echo_bot() -> AsyncIterator[BenchZaloAPI]:
    """A bare echo bot on the Zalo channel's own HTTP client (bot/channels/zalo_api.py), shaped like the
    channel (keep in step with bot/channels/zalo.py): one long poll at a time on a connection of its own, the
    next poll only once the update is taken, each answer from a task of its own through a pool of 64."""
    async with BenchZaloAPI() as api:
        polls = ZaloAPI(api.token, api.base_url, connections=1)
        sends = ZaloAPI(api.token, api.base_url, connections=64)
        answers: set[asyncio.Task] = set()

        async def poll() -> None:
            while True:
                try:
                    update = await polls.call("getUpdates", {"timeout": "30"}, read_timeout=40)
                except ZaloError as err:
                    if err.status == 408:
                        continue
                    raise
                message = update["message"]
                task = asyncio.create_task(sends.call("sendMessage", {"chat_id": message["chat"]["id"],
                                                                      "text": message["text"]}))
                answers.add(task)
                task.add_done_callback(answers.discard)

        poller = asyncio.create_task(poll())
        try:
            yield api
        finally:
            poller.cancel()
            await asyncio.gather(poller, *answers, return_exceptions=True)
            await asyncio.gather(polls.close(), sends.close())
        api.check()


@dataclass(frozen=True)
class Platform:
    """What differs between channels: the fake (and how people choose), the bot's settings, the echo bot."""

    fake: type[BenchAPI] | type[BenchZaloAPI]
    settings: Callable[[Fake, int], dict]
    echo: Callable[[], AbstractAsyncContextManager[Fake]]
    echo_name: str


PLATFORMS = {
    "telegram": Platform(BenchAPI, telegram_settings, echo_bot, "bare python-telegram-bot echo bot"),
    "zalo": Platform(BenchZaloAPI, zalo_settings, zalo_echo_bot, "bare echo loop on bot/channels/zalo_api.py"),
}


def check_counts(api: Fake, *loads: Load) -> None:
    """Every message the bot sent was one a person waited for: the per-step reply counts are right."""
    seen, expected = sum(api.counts[m] for m in api.message_methods), sum(load.messages for load in loads)
    if seen != expected:
        raise BenchError(f"the bot sent {seen} messages, people expected {expected}: a Step.replies is off")


def per_update(api: Fake, load: Load) -> float:
    """Bot API calls (getUpdates aside) the bot made per update: its HTTP work."""
    calls = sum(n for m, n in api.counts.items() if m != "getUpdates")
    return round(calls / max(load.sent, 1), 2)


# ---- scenarios: each returns its JSON fields --------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    people: int = 100
    warmup: float = 1.5
    window: float = 8.0
    period: float = 2.0
    latency_window: float = 10.0
    rate: int = 1000  # TELEGRAM_RATE (ZALO_RATE) for the real bot: the configuration's maximum, out of the way
    channel: str = "telegram"
    tmp: Path = Path(".")
    databases: Databases | None = None  # None: SQLite files in `tmp`
    workers: int = 0  # 0: the bot in this process, long polling; N: N `danvan run` processes behind a proxy


def user_ids(start: int) -> Iterator[int]:
    return itertools.count(start)


async def closed_loop(api: Fake, opts: Options, script: Script, ids: Iterator[int],
                      cpu: Callable[[], float] = time.process_time) -> Load:
    begin = time.monotonic() + opts.warmup
    load = Load(begin, begin + opts.window)

    async def cpu_in_window() -> None:
        await asyncio.sleep(load.begin - time.monotonic())
        start = cpu()
        await asyncio.sleep(load.end - time.monotonic())
        load.cpu = cpu() - start

    meter = asyncio.create_task(cpu_in_window())
    await crowd([(Person(api, load, ids), script) for _ in range(opts.people)], load)
    await meter
    return load


async def onboarding_throughput(opts: Options) -> dict:
    """(a) 100 people onboarding as fast as the bot answers, a new person each round."""
    say(f"(a) onboarding, closed loop: {opts.people} people, {opts.warmup}s warm-up, {opts.window}s window")
    async with danvan_bot(opts, opts.tmp / "throughput.db") as (api, bot):
        cpu = bot.cpu if isinstance(bot, Fleet) else time.process_time
        load = await closed_loop(api, opts, onboard_forever, user_ids(10_000_000), cpu)
    check_counts(api, load)
    rate = load.updates / opts.window
    onboardings = load.sent / len(ONBOARD)
    say(f"(a) {rate:.0f} updates/s ({load.updates} in {opts.window}s; {onboardings:.0f} onboardings started "
        f"in all; {per_update(api, load)} Bot API calls per update; {load.cpu_ms_per_update} ms CPU per update)")
    return {"updates_per_s": round(rate, 1), "onboardings_per_s": round(rate / len(ONBOARD), 1),
            "bot_calls_per_update": per_update(api, load), "cpu_ms_per_update": load.cpu_ms_per_update}


async def echo_ceiling(opts: Options) -> dict:
    """The same closed loop against a bare echo bot: what the harness (and on Zalo, the one-update poll) allows."""
    platform = PLATFORMS[opts.channel]
    say(f"ceiling: {platform.echo_name}, closed loop, {opts.people} people")
    async with platform.echo() as api:
        load = await closed_loop(api, opts, echo_forever, user_ids(20_000_000))
    check_counts(api, load)
    rate = load.updates / opts.window
    say(f"ceiling: {rate:.0f} updates/s ({load.updates} in {opts.window}s; {load.cpu_ms_per_update} ms CPU per update)")
    return {"ceiling_updates_per_s": round(rate, 1), "ceiling_cpu_ms_per_update": load.cpu_ms_per_update}


async def channel_ceiling(opts: Options) -> dict:
    """The same echo through the bot's own channel (built by App.build, replies through the channel's send
    and its sender pools) with the router, handlers, database and outbound cut out: the ceiling for what
    sits above the channel."""
    if opts.workers:  # the channel is cut out of the bot inside this process: not what runs in the workers
        return {"channel_ceiling_updates_per_s": None}
    say(f"channel ceiling: echo through bot/channels/{opts.channel}.py, closed loop, {opts.people} people")
    async with danvan_bot(opts, opts.tmp / "channel.db") as (api, app):
        channel = app.zalo if opts.channel == "zalo" else app.telegram

        tasks: set[asyncio.Task] = set()

        async def echo(name: str, events: list[tuple[str, Inbound]]) -> list[asyncio.Task]:
            for _, inbound in events:  # answered concurrently, as the intake handles updates
                task = asyncio.create_task(channel.send(inbound.chat_id, Reply(inbound.text)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            return []

        channel.accept = echo
        load = await closed_loop(api, opts, echo_forever, user_ids(40_000_000))
    check_counts(api, load)
    rate = load.updates / opts.window
    say(f"channel ceiling: {rate:.0f} updates/s ({load.updates} in {opts.window}s; {load.cpu_ms_per_update} ms CPU "
        "per update)")
    return {"channel_ceiling_updates_per_s": round(rate, 1)}


async def mixed_load(opts: Options) -> dict:
    """(c) Issue 4's mix, closed loop: half the people send reports (cases) one after another while the
    other half onboard; `cases_per_s` is reports stored and acknowledged with their code per second."""
    n = opts.people
    say(f"(c) mixed, closed loop: {n // 2} people sending cases, {n - n // 2} onboarding")
    async with danvan_bot(opts, opts.tmp / "mixed.db", case_limit=10_000) as (api, app):
        ids = user_ids(50_000_000)
        setup = Load(math.inf, math.inf)
        reporters = [Person(api, setup, ids) for _ in range(n // 2)]
        await crowd([(p, lambda p: p.run(ONBOARD)) for p in reporters], setup)
        begin = time.monotonic() + opts.warmup
        load = Load(begin, begin + opts.window)
        for person in reporters:
            person.load = load
        people = [(p, report_forever) for p in reporters]
        people += [(Person(api, load, ids), onboard_forever) for _ in range(n - n // 2)]
        await crowd(people, load)
        stored = (await app.store.db.fetchone("SELECT count(*) FROM cases"))[0]
    check_counts(api, setup, load)
    if stored != load.cases_sent:
        raise BenchError(f"{load.cases_sent} cases acknowledged with a code, {stored} stored")
    rate = load.updates / opts.window
    cases = load.cases / opts.window
    say(f"(c) {rate:.0f} updates/s, {cases:.1f} cases/s ({load.cases} cases acknowledged in the {opts.window}s "
        f"window, {stored} stored in all)")
    return {"mixed_updates_per_s": round(rate, 1), "cases_per_s": round(cases, 1)}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def steady_latency(opts: Options) -> dict:
    """(b) 100 people each sending an update every 2 s (open loop): half onboard (a new person after the
    last step), half are onboarded and cycle /huongdan, a typed question (the menu), [Hướng dẫn]."""
    n = opts.people
    rate = n / opts.period
    say(f"(b) latency, open loop: {n} people, one update each every {opts.period}s (~{rate:.0f}/s), "
        f"{opts.latency_window}s")
    async with danvan_bot(opts, opts.tmp / "latency.db") as (api, _app):
        ids = user_ids(30_000_000)
        setup = Load(math.inf, math.inf)
        regulars = [Person(api, setup, ids) for _ in range(n // 2)]
        await crowd([(p, lambda p: p.run(ONBOARD)) for p in regulars], setup)
        say(f"(b) {len(regulars)} people onboarded beforehand; measuring")
        start = time.monotonic() + 0.2
        load = Load(start, start + opts.latency_window)
        people: list[tuple[Person, Script]] = []
        for i in range(n):
            first_at = start + i * opts.period / n  # evenly staggered
            if i % 2 == 0:
                people.append((Person(api, load, ids, period=opts.period, first_at=first_at), onboard_forever))
            else:
                person = regulars[i // 2]
                person.load, person.period, person.next_at = load, opts.period, first_at
                people.append((person, regular_forever))
        cpu = time.process_time()
        await crowd(people, load)
        cpu = time.process_time() - cpu
    check_counts(api, setup, load)
    if not load.latencies:
        raise BenchError("no latency samples")
    first = [a * 1000 for a, _ in load.latencies]
    complete = [b * 1000 for _, b in load.latencies]
    fields = {"p50_ms": round(percentile(first, 50), 1), "p95_ms": round(percentile(first, 95), 1),
              "max_ms": round(max(first), 1), "p95_complete_ms": round(percentile(complete, 95), 1),
              "latency_updates_per_s": round(len(first) / opts.latency_window, 1), "late_pushes": load.late}
    say(f"(b) first reply after p50 {fields['p50_ms']} ms, p95 {fields['p95_ms']} ms, max {fields['max_ms']} ms; "
        f"complete answer p95 {fields['p95_complete_ms']} ms; {len(first)} updates "
        f"({fields['latency_updates_per_s']}/s), {load.late} late pushes, CPU {cpu:.1f}s "
        f"({cpu / opts.latency_window:.0%} of one core)")
    return fields


SCENARIOS: list[Callable[[Options], Awaitable[dict]]] = [onboarding_throughput, echo_ceiling, channel_ceiling,
                                                         steady_latency, mixed_load]


# ---- the run -----------------------------------------------------------------------------------------------


class MachineLoad:
    """CPU the rest of the machine used meanwhile, in cores (Linux /proc/stat; None elsewhere): the
    figures only compare with each other when this is near 0."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = self._busy(), self._own(), time.monotonic()

    @staticmethod
    def _own() -> float:
        """This process's CPU and that of its children once they ended (the workers of `--workers`)."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as stat:
                ticks = [int(v) for v in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait

    def others(self) -> float | None:
        busy = self._busy()
        if busy is None or self.busy is None:
            return None
        own = self._own() - self.own
        return round(max(0.0, busy - self.busy - own) / (time.monotonic() - self.wall), 2)


class ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def run(opts: Options) -> dict:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    started, load = time.monotonic(), MachineLoad()
    found: dict = {}
    with tempfile.TemporaryDirectory(prefix="danvan-bench-") as tmp:
        opts = Options(**{**opts.__dict__, "tmp": Path(tmp)})
        for scenario in SCENARIOS:
            found.update(await scenario(opts))
    ratio = found["updates_per_s"] / found["ceiling_updates_per_s"]
    channel = found["channel_ceiling_updates_per_s"]
    channel_ratio = round(found["updates_per_s"] / channel, 3) if channel else None
    return {
        "bench": "inbound",
        **({"channel": opts.channel} if opts.channel != "telegram" else {}),
        "updates_per_s": found.pop("updates_per_s"),
        "ceiling_updates_per_s": found.pop("ceiling_updates_per_s"),
        "ratio": round(ratio, 3),
        "p95_ms": found.pop("p95_ms"),
        "channel_ratio": channel_ratio,
        **found,
        "db": opts.databases.kind if opts.databases else "sqlite",
        "workers": opts.workers or 1,
        "inbound": "webhook" if opts.workers else "polling",
        "cores": cores(),
        "people": opts.people,
        "errors": errors.count,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "duration_s": round(time.monotonic() - started, 1),
        "other_load_cores": load.others(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=Options.people)
    parser.add_argument("--warmup", type=float, default=Options.warmup, help="seconds before the window (a)")
    parser.add_argument("--window", type=float, default=Options.window, help="measuring window of (a), seconds")
    parser.add_argument("--latency-window", type=float, default=Options.latency_window, help="(b), seconds")
    parser.add_argument("--rate", type=int, default=Options.rate,
                        help="the bot's TELEGRAM_RATE, or ZALO_RATE (messages/s)")
    parser.add_argument("--channel", choices=sorted(PLATFORMS), default=Options.channel)
    parser.add_argument("--db", default="sqlite",
                        help="sqlite (default), postgresql (a throwaway cluster), or a postgresql:// URL")
    parser.add_argument("--workers", type=int, default=0,
                        help="N `danvan run` processes on the one database, in webhook mode behind a round-robin "
                             "proxy (default: the bot inside the bench process, long polling)")
    args = parser.parse_args(argv)
    if args.workers and (args.channel != "telegram" or (args.workers > 1 and args.db == "sqlite")):
        say("--workers: Telegram only, and several workers need PostgreSQL (--db postgresql)")
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with Databases(args.db) as databases:
            opts = Options(people=args.people, warmup=args.warmup, window=args.window,
                           latency_window=args.latency_window, rate=args.rate, channel=args.channel,
                           databases=databases, workers=args.workers)
            result = asyncio.run(run(opts))
    except Exception:
        traceback.print_exc()
        say("FAILED: no figures")
        sys.stderr.flush()
        # A run that failed half-way can leave a non-daemon thread behind (an aiosqlite connection that was
        # never closed): exit now rather than hang.
        os._exit(1)
    if result["errors"]:
        say(f"FAILED: {result['errors']} error log record(s) during the run (see above)")
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
