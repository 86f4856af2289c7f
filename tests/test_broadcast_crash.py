"""A crash in the middle of a broadcast: the real bot (`python -m bot.cli run`, Telegram) in a subprocess,
the fake Bot API in this process (it keeps the record of every delivery across the crash). The bot is
killed with SIGKILL mid-broadcast and started again: every recipient reaches a final state, nobody is
lost, and the duplicates are at most the recipients that were in flight at the crash (bounded by the
configured concurrency)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import Store
from storage.broadcasts import FINAL, NewBroadcast
from tests.bot_process import bot_env, kill_bot, start_bot, stop_bot, until
from tests.fakes.telegram_api import FakeBotAPI
from tests.people import BASE_CHAT, make_people

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.backends]
RECIPIENTS = 3000
CONCURRENCY = 40
MARK = "Lịch tiêm chủng mở rộng"


def environment(api: FakeBotAPI, db: Path | str, workdir: Path) -> dict[str, str]:
    return bot_env(db, workdir, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_URL=api.base_url, DANVAN_TICK_SECONDS="0.2",
                   TELEGRAM_RATE="600", DANVAN_BROADCAST_RATE="600", DANVAN_BROADCAST_CONCURRENCY=str(CONCURRENCY),
                   DANVAN_BROADCAST_RESEND_UNCERTAIN="true")


def delivered(api: FakeBotAPI) -> Counter:
    return Counter(c.chat_id for c in api.sent() if MARK in (c.text or ""))


async def test_sigkill_mid_broadcast_then_restart(tmp_path, database):
    db = database
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
        bot = start_bot(environment(api, db, tmp_path), tmp_path, log)
        try:
            async def some_sent() -> bool:
                assert bot.poll() is None, "the bot exited"
                return len(delivered(api)) >= RECIPIENTS // 3
            await until(some_sent, 30, "a third delivered")
            await kill_bot(bot)
            await asyncio.sleep(0.1)  # the fake finishes the requests it had (they count as delivered)
        finally:
            await stop_bot(bot)
        at_crash = sum(delivered(api).values())
        store = await Store.open(db)
        try:
            in_flight = (await store.broadcasts.counts(broadcast.id))["sending"]
            assert 0 < at_crash < RECIPIENTS
            assert in_flight <= CONCURRENCY
            bot = start_bot(environment(api, db, tmp_path), tmp_path, log)
            try:
                async def all_final() -> bool:
                    assert bot.poll() is None, "the bot exited"
                    return (await store.broadcasts.get(broadcast.id)).status == "done"
                await until(all_final, 30, "the broadcast done")
            finally:
                await stop_bot(bot)
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
