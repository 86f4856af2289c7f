"""The inbound journal (DESIGN.md §3, issue 10): an update is journalled before the platform is told it
arrived, a redelivered one is handled once, what a crash left undone is handled at the next start, an update
that cannot be journalled is neither acknowledged nor met with silence, and a refused token stops the bot."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.intake import KEEP, decode, encode
from bot.retention import Retention
from handlers.base import Inbound, Media
from tests.fakes.telegram_api import FakeBotAPI
from tests.test_telegram_e2e import LAN, button, click, config_for, eventually, running, to_topics

pytestmark = pytest.mark.backends

SECRET = "s3cret-Value_1"


def test_an_event_survives_the_journal_unchanged():
    event = Inbound("telegram", "1", "2", "media", text="ảnh 🌾", media=Media("photo", "f1", 10, "image/jpeg"),
                    display_name="Lan", language="vi", location=(16.7, 107.1))
    assert decode(encode(event)) == event
    plain = Inbound("web", "w1", "u1", "choice", payload="1:ob.consent:y", message_ref="abc123-1")
    assert decode(encode(plain)) == plain


async def test_a_redelivered_webhook_update_is_answered_once(tmp_path):
    from bot.server import build_asgi

    async with FakeBotAPI() as api:
        config = config_for(api, tmp_path / "wh.db", TELEGRAM_WEBHOOK_URL="https://bot.example.vn/telegram/webhook",
                            TELEGRAM_WEBHOOK_SECRET=SECRET)
        async with running(config) as app:
            transport = httpx.ASGITransport(app=build_asgi(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
                update = api.text_update(LAN, "/huongdan")
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                first = await client.post("/telegram/webhook", json=update, headers=headers)
                again = await client.post("/telegram/webhook", json=update, headers=headers)
                assert first.status_code == again.status_code == 200
                await api.wait_sent(LAN, 1)
                await app.intake.drain(5)
                assert len(api.sent(LAN)) == 1, api.sent(LAN)


async def test_a_click_journalled_before_a_crash_is_handled_at_the_next_start(tmp_path):
    """The bot dies after journalling (so after Telegram was told) but before handling: the next start
    handles it, once, and Telegram does not deliver it again."""
    async with FakeBotAPI() as api:
        config = config_for(api, tmp_path / "tg.db")
        async with running(config) as app:
            await api.ask(LAN, "/start")
            app.intake._start = lambda entry, inbound=None: None  # the crash: journalled, never handled
            mark = api.mark()
            api.push_text(LAN, "/huongdan")
            await api.wait_delivered()
            await asyncio.sleep(0.1)
            assert not api.sent(LAN, since=mark)
            assert len(await app.store.journal.pending()) == 1
        assert not api.pending_updates  # acknowledged: Telegram will not send it again
        async with running(config) as app:
            calls = await api.wait_sent(LAN, 1, since=mark)
            assert "/caidat" in calls[0].text
            await eventually(lambda: _none_pending(app))
        assert len(api.sent(LAN, since=mark)) == 1


async def test_done_marks_still_waiting_at_a_stop_are_written_so_nothing_is_answered_twice(tmp_path, monkeypatch):
    """A handled update's done mark waits for the journal's next write (storage/journal.py `done_soon`); a stop
    writes it, so the next start does not handle the update again."""
    monkeypatch.setattr("storage.journal.SOON_SECONDS", 600.0)
    async with FakeBotAPI() as api:
        config = config_for(api, tmp_path / "tg.db")
        async with running(config) as app:
            mark = api.mark()
            await api.ask(LAN, "/huongdan")
        async with running(config) as app:
            assert await app.store.journal.pending() == []
            await asyncio.sleep(0.2)
        assert len(api.sent(LAN, since=mark)) == 1


async def _none_pending(app) -> bool:
    return not await app.store.journal.pending()


async def test_an_update_that_cannot_be_journalled_is_apologized_for_and_taken_later(tmp_path, monkeypatch):
    """A full disk: the person is told (once), the update is not acknowledged, and once the journal can be
    written again it is handled."""
    async with FakeBotAPI() as api:
        async with running(config_for(api, tmp_path / "tg.db")) as app:
            await api.ask(LAN, "/start")
            monkeypatch.setattr("bot.channels.telegram.JOURNAL_PAUSE", 0.2)
            accept, failures = app.store.journal.accept, []

            async def full_disk(*args, **kwargs):
                if len(failures) < 3:
                    failures.append(1)
                    raise OSError("database or disk is full")
                return await accept(*args, **kwargs)

            monkeypatch.setattr(app.store.journal, "accept", full_disk)
            mark = api.mark()
            api.push_text(LAN, "/huongdan")
            calls = await api.wait_sent(LAN, 2, since=mark, timeout=10)
            assert "gặp sự cố" in calls[0].text  # said once, though the journal failed three times
            assert "/caidat" in calls[1].text
            assert len(failures) == 3 and not api.pending_updates
        assert len(api.sent(LAN, since=mark)) == 2


async def test_a_token_refused_while_polling_stops_the_bot(tmp_path):
    async with FakeBotAPI() as api:
        async with running(config_for(api, tmp_path / "tg.db")) as app:
            api.fail("getUpdates", status=401, description="Unauthorized", times=None)
            async with asyncio.timeout(30):
                await app.halted.wait()
            assert "token" in app.fatal


async def test_other_polling_failures_are_retried(tmp_path, monkeypatch):
    monkeypatch.setattr("bot.channels.telegram.MAX_PAUSE", 0.1)
    async with FakeBotAPI() as api:
        async with running(config_for(api, tmp_path / "tg.db")) as app:
            api.fail("getUpdates", status=502, description="Bad Gateway", times=3)
            calls = await api.ask(LAN, "/start", timeout=30)
            assert "Kính chào" in calls[0].text and not app.halted.is_set()


async def test_a_batch_is_journalled_once_each_in_order(store, clock):
    """A batch holding a redelivered update (and one update twice) gives each new update once, in its order."""
    [first] = await store.journal.accept("telegram", [("7", "c1", '"seen"')], clock())
    fresh = await store.journal.accept("telegram", [("9", "c2", '"a"'), ("7", "c1", '"again"'), ("8", "c1", '"b"'),
                                                    ("9", "c2", '"a"')], clock())
    assert [(e.chat_id, e.event) for e in fresh] == [("c2", '"a"'), ("c1", '"b"')]
    assert first.id < fresh[0].id < fresh[1].id
    assert [e.id for e in await store.journal.pending()] == [first.id, fresh[0].id, fresh[1].id]
    assert await store.journal.accept("zalo", [("7", "c1", "{}")], clock())  # another channel's update 7


async def test_handled_updates_are_pruned_after_a_few_days(store, clock):
    [handled, waiting] = await store.journal.accept("web", [("a", "c1", "{}"), ("b", "c1", "{}")], clock())
    await store.journal.done(handled.id, clock())
    clock.advance(seconds=(KEEP + timedelta(days=1)).total_seconds())
    await Retention(store, 24, ZoneInfo("Asia/Ho_Chi_Minh")).tick(clock())
    assert [e.id for e in await store.journal.pending()] == [waiting.id]
    assert await store.journal.accept("web", [("a", "c1", "{}")], clock())  # forgotten, so new again


async def test_the_bot_process_exits_when_its_token_is_revoked(tmp_path):
    """`danvan run` as its own process: polling meets a 401 and the process ends with status 1 and a clear
    message, instead of staying up with nobody polling."""
    import os
    import socket
    import sys

    async with FakeBotAPI() as api:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
               "DANVAN_DB": str(tmp_path / "bot.db"), "DANVAN_PORT": str(port), "LANG": "C.UTF-8"}
        api.fail("getUpdates", status=401, description="Unauthorized", times=None)  # getMe passes: revoked since
        bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(60):
                _, err = await bot.communicate()
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
        assert bot.returncode == 1
        assert "Bot dừng: kênh Telegram" in err.decode() and api.token not in err.decode()


async def test_a_click_applied_but_not_answered_before_a_crash_is_not_applied_again(tmp_path, monkeypatch):
    """The bot dies after saving what a toggle changed but before answering: the next start does not toggle
    it back (the entry was marked applied with the conversation); the question is asked again instead."""
    monkeypatch.setattr("bot.app.DRAIN_SECONDS", 0.1)
    async with FakeBotAPI() as api:
        config = config_for(api, tmp_path / "tg.db")
        async with running(config) as app:
            calls = await to_topics(api)
            assert "lĩnh vực nào" in calls[-1].text

            async def dies_while_answering(*args, **kwargs):
                await asyncio.Event().wait()

            monkeypatch.setattr(app.router.outbound, "replies", dies_while_answering)
            last, toggle = calls[-1], button(calls[-1], "Xây dựng nông thôn mới")
            api.push_callback(LAN, toggle, message_id=last.message_id)

            async def applied() -> bool:
                return any(e.applied and decode(e.event).payload == toggle for e in await app.store.journal.pending())

            await eventually(applied)
        async with running(config) as app:
            mark = api.mark()
            calls = await api.ask(LAN, "alo")
            await asyncio.sleep(0.2)
            assert len(api.sent(LAN, since=mark)) == 1 and "lĩnh vực nào" in calls[0].text
            assert button(calls[0], "✅ Xây dựng nông thôn mới")  # toggled once, not back
            calls = await click(api, calls, "Xong")
            assert "Xây dựng nông thôn mới" in calls[0].text
