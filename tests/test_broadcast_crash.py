"""A crash in the middle of a broadcast: the real bot (`python -m bot.cli run`, Telegram) in a subprocess,
the fake Bot API in this process (it keeps the record of every delivery across the crash). The bot is
killed with SIGKILL mid-broadcast and started again: every recipient reaches a final state, nobody is
lost, and the duplicates are at most the recipients that were in flight at the crash (bounded by the
configured concurrency)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import Store
from storage.broadcasts import FINAL, NewBroadcast
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import BASE_CHAT, make_people

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ROOT = Path(__file__).resolve().parents[1]
RECIPIENTS = 3000
CONCURRENCY = 40
MARK = "Lịch tiêm chủng mở rộng"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_bot(api: FakeBotAPI, db: Path, workdir: Path, log) -> subprocess.Popen:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "PYTHONPATH": str(ROOT),
           "DANVAN_DB": str(db), "DANVAN_PORT": str(free_port()), "TELEGRAM_BOT_TOKEN": api.token,
           "TELEGRAM_API_URL": api.base_url, "DANVAN_TICK_SECONDS": "0.2", "TELEGRAM_RATE": "600",
           "DANVAN_BROADCAST_RATE": "600", "DANVAN_BROADCAST_CONCURRENCY": str(CONCURRENCY),
           "DANVAN_BROADCAST_RESEND_UNCERTAIN": "true", "DANVAN_QUIET_HOURS": "off", "DANVAN_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=workdir, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def delivered(api: FakeBotAPI) -> Counter:
    return Counter(c.chat_id for c in api.sent() if MARK in (c.text or ""))


async def until(check, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_sigkill_mid_broadcast_then_restart(tmp_path):
    db = tmp_path / "crash.db"
    store = await Store.open(db)
    try:
        await make_people(store, RECIPIENTS)
        now = datetime.now(UTC)
        broadcast = await store.broadcasts.create(NewBroadcast(text_vi=f"<b>{MARK}</b> tại trạm y tế xã",
                                                               scheduled_at=now), now)
    finally:
        await store.close()
    log = (tmp_path / "bot.log").open("w+")
    async with FakeBotAPI() as api:
        api.latency = 0.02  # so that messages are in flight when the bot dies
        bot = start_bot(api, db, tmp_path, log)
        try:
            async def some_sent() -> bool:
                assert bot.poll() is None, "the bot exited"
                return len(delivered(api)) >= RECIPIENTS // 3
            await until(some_sent, 30, "a third delivered")
            bot.send_signal(signal.SIGKILL)
            await asyncio.to_thread(bot.wait, 10)
            await asyncio.sleep(0.1)  # the fake finishes the requests it had (they count as delivered)
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
        at_crash = sum(delivered(api).values())
        store = await Store.open(db)
        try:
            in_flight = (await store.broadcasts.counts(broadcast.id))["sending"]
            assert 0 < at_crash < RECIPIENTS
            assert in_flight <= CONCURRENCY
            bot = start_bot(api, db, tmp_path, log)
            try:
                async def all_final() -> bool:
                    assert bot.poll() is None, "the bot exited"
                    return (await store.broadcasts.get(broadcast.id)).status == "done"
                await until(all_final, 30, "the broadcast done")
            finally:
                bot.send_signal(signal.SIGTERM)
                try:  # in a thread: the fake in this event loop must answer the bot's last calls
                    await asyncio.to_thread(bot.wait, 15)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    bot.wait()
            rows = await store.broadcasts.recipients(broadcast.id)
        finally:
            await store.close()
        got = delivered(api)
        assert not api.server_errors
    log.seek(0)
    output = log.read()
    assert "Traceback" not in output, output
    assert len(rows) == RECIPIENTS and all(status in FINAL for status, _, _ in rows.values())
    lost = {BASE_CHAT + i for i in range(RECIPIENTS)} - set(got)
    duplicates = sum(n - 1 for n in got.values())
    assert lost == set()
    assert duplicates <= in_flight <= CONCURRENCY
