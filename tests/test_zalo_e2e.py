"""End to end on Zalo with the bot as its own process (`python -m bot.cli run`, tests/bot_process.py): the fake
Zalo and Telegram platforms in this process, on loopback, the cadres made with the `danvan` command. What only a
separate process shows: both channels in one running bot, Zalo's webhook posted over real HTTP, a SIGKILL."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from storage import Store
from tests.bot_process import bot_env, danvan, kill_bot, start_bot, stop_bot, until
from tests.fakes.telegram_api import FakeBotAPI
from tests.fakes.zalo_api import FakeZaloAPI
from tests.images import jpeg, opened
from tests.people import make_people
from tests.test_telegram_e2e import button
from tests.test_zalo import AN, choose, number, onboard

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.backends]
CADRE = 7001  # on Telegram
HAI_LANG = "19702"
STARTUP = 30  # seconds a bot process may take to start serving (a bound for a stuck run, not a measurement)
REPORT = "Đường bê tông thôn 3 bị sụt lún sau mưa lũ, xe máy đi lại rất nguy hiểm."


class Bot:
    """One bot process at a time on one database, started again after a kill; its output in bot.log."""

    def __init__(self, tmp: Path, db: Path | str, **variables: str) -> None:
        self.tmp, self.db, self.log = tmp, db, tmp / "bot.log"
        self.env = bot_env(self.db, tmp, DANVAN_TICK_SECONDS="0.2", **variables)
        self.url = f"http://127.0.0.1:{self.env['DANVAN_PORT']}"
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        """Start, and wait until it serves HTTP (its channels have started before that)."""
        with self.log.open("a") as log:
            self.process = start_bot(self.env, self.tmp, log)

        async def serving() -> bool:
            assert self.process.poll() is None, f"the bot exited:\n{self.output()}"
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{self.url}/healthz"):
                    return True
            except aiohttp.ClientError:
                return False

        await until(serving, STARTUP, "the bot serving HTTP")

    def output(self) -> str:
        return self.log.read_text()


@asynccontextmanager
async def running(bot: Bot):
    await bot.start()
    try:
        yield bot
    finally:
        await stop_bot(bot.process)
    assert "Traceback" not in bot.output(), bot.output()


@asynccontextmanager
async def platforms():
    async with FakeZaloAPI() as zalo, FakeBotAPI() as telegram:
        yield zalo, telegram
        assert not zalo.server_errors and not telegram.server_errors


def both(zalo: FakeZaloAPI, telegram: FakeBotAPI) -> dict[str, str]:
    return {"ZALO_BOT_TOKEN": zalo.token, "ZALO_API_URL": zalo.base_url, "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_API_URL": telegram.base_url}


async def press(api: FakeBotAPI, chat: int, calls, label: str, count: int = 1):
    """A Telegram person presses the button so labelled on the latest of `calls` that has buttons."""
    last = next(c for c in reversed(calls) if c.buttons)
    return await api.click(chat, button(last, label), message_id=last.message_id, count=count)


async def test_a_citizen_on_zalo_and_a_cadre_on_telegram_through_one_bot_process(tmp_path, database):
    """Onboarding and a report with a photo on Zalo (numbered choices), the answer from a cadre on Telegram who
    joined with an invite from the `danvan` command, the answer and its rating back on Zalo."""
    async with platforms() as (zalo, telegram):
        bot = Bot(tmp_path, database, **both(zalo, telegram))
        invite = await danvan(bot.env, tmp_path, "invite", "create", "--locality", HAI_LANG, "--unit",
                              "Ban Dân vận xã Hải Lăng")
        token = re.search(r"/start (i_\S+)", invite).group(1)
        async with running(bot):
            await onboard(zalo)
            calls = await zalo.ask(AN, "/phananh")
            calls = await choose(zalo, calls, "Xây dựng nông thôn mới")
            await choose(zalo, calls, "Đúng")
            mark = zalo.mark()
            zalo.push_image(AN, jpeg(64, 48))
            assert "Đã nhận ảnh" in (await zalo.wait_sent(AN, 1, since=mark))[0].text
            calls = await zalo.ask(AN, REPORT)
            for label in ("Tiếp tục", "Gửi kèm tên", "Không khẩn cấp"):
                calls = await choose(zalo, calls, label)
            assert "ảnh ×1" in calls[-1].text
            calls = await choose(zalo, calls, "Gửi")
            code = re.search(r"PA-\d\d-\d{6}", calls[-1].text).group(0)

            calls = await telegram.ask(CADRE, f"/start {token}", first_name="Bình")
            assert "Ban Dân vận xã Hải Lăng" in calls[-1].text
            calls = await telegram.ask(CADRE, "/hopthu")
            calls = await press(telegram, CADRE, calls, code, count=2)
            assert calls[0].method == "sendPhoto" and REPORT in calls[1].text
            assert opened(telegram.file_bytes(calls[0].result["photo"][-1]["file_id"])).size == (64, 48)
            calls = await press(telegram, CADRE, calls, "Trả lời")
            assert "ký tên đơn vị" in calls[-1].text
            mark = zalo.mark()
            calls = await telegram.ask(CADRE, "UBND xã sẽ sửa đoạn đường trong tuần tới.")
            assert "Xem trước" in calls[-1].text  # sent once confirmed: the preview becomes the outcome, the card
            calls = await press(telegram, CADRE, calls, "Gửi", count=2)  # is updated
            assert [c.method for c in calls] == ["editMessageText"] * 2 and "đã trả lời" in calls[-1].text

            answered = await zalo.wait_for(lambda c: c.chat_id == AN and "đã được trả lời" in (c.text or ""),
                                           since=mark)
            assert "UBND xã sẽ sửa" in answered.text and "— Ban Dân vận xã Hải Lăng" in answered.text
            calls = await choose(zalo, [answered], "Xem")
            assert code in calls[-1].text and "Hài lòng" in calls[-1].text
            calls = await choose(zalo, calls, "Hài lòng")
            assert "Cảm ơn Ông/Bà đã đánh giá" in calls[0].text
        store = await Store.open(bot.db)
        try:
            case = await store.cases.by_code(code)
            citizen = await store.users.find("zalo", AN)
            assert case.user_id == citizen.id and case.status == "answered" and case.rating == "good"
            assert [a.kind for a in await store.cases.attachments(case.id)] == ["photo"]
        finally:
            await store.close()
        assert all(len(c.text or "") <= 2000 for c in zalo.sent(AN))


class WebhookZalo(FakeZaloAPI):
    """The platform in webhook mode: what a test pushes is POSTed to the webhook the bot set, over HTTP."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[asyncio.Task] = []

    def push_update(self, update: dict) -> dict:
        self.posts.append(asyncio.create_task(self.post_to_webhook(update)))
        return update

    async def answers(self) -> set[int]:
        """The webhook's answers to every POST so far (once they are all in)."""
        return {reply.status for reply in await asyncio.gather(*self.posts)}


async def test_webhook_mode_handles_a_redelivered_update_once(tmp_path, database):
    """The platform POSTs to /zalo/webhook; the update that sends a report comes twice at once (its first answer
    lost) and once more later: one case, one confirmation."""
    async with WebhookZalo() as zalo, FakeBotAPI() as telegram:
        bot = Bot(tmp_path, database, **both(zalo, telegram), ZALO_WEBHOOK_SECRET="zalo-hook-secret-1")
        bot.env["ZALO_WEBHOOK_URL"] = f"{bot.url}/zalo/webhook"
        async with running(bot):
            assert zalo.webhook == {**zalo.webhook, "url": f"{bot.url}/zalo/webhook",
                                    "secret_token": "zalo-hook-secret-1"}
            await onboard(zalo)
            calls = await zalo.ask(AN, "/phananh")
            calls = await choose(zalo, calls, "Xây dựng nông thôn mới")
            calls = await choose(zalo, calls, "Đúng")
            calls = await zalo.ask(AN, REPORT)
            for label in ("Tiếp tục", "Gửi kèm tên", "Không khẩn cấp"):
                calls = await choose(zalo, calls, label)
            mark = zalo.mark()
            send = zalo.text_update(AN, number(calls, "Gửi"))
            zalo.push_update(send)
            zalo.redeliver(send)
            [received] = await zalo.wait_sent(AN, 1, since=mark)
            code = re.search(r"PA-\d\d-\d{6}", received.text).group(0)
            zalo.redeliver(send)
            assert await zalo.answers() == {200}  # all taken; what the redelivery caused would come before:
            calls = await zalo.ask(AN, "/theodoi")
            assert code in calls[-1].text
            assert zalo.sent(AN, since=mark) == [received, *calls]
        assert not telegram.calls_of("sendMessage") and not zalo.calls_of("getUpdates")
        store = await Store.open(bot.db)
        try:
            citizen = await store.users.find("zalo", AN)
            cases, count = await store.cases.of_user(citizen.id)
            assert [case.code for case in cases] == [code] and count == 1
        finally:
            await store.close()


async def test_a_broadcast_reaches_telegram_and_zalo_once_each_and_marks_who_blocked_the_bot(tmp_path, database):
    """`danvan broadcast send` while the bot runs: a photo (Zalo fetches it from the bot's signed link) to three
    people on each platform and to one on both (linked: once, where their account is kept); the Zalo user who
    blocked the bot is refused by the platform and marked unreachable."""
    mark = "Ngày thứ Bảy xanh"
    async with platforms() as (zalo, telegram):
        bot = Bot(tmp_path, database, **both(zalo, telegram))
        store = await Store.open(bot.db)
        try:
            await make_people(store, 3, first_chat=5_000_000)
            await make_people(store, 3, channel="zalo", first_chat=7_000_000)
            [kept] = await make_people(store, 1, first_chat=5_100_000)
            [linked] = await make_people(store, 1, channel="zalo", first_chat=7_100_000)
            now, ttl = datetime.now(UTC), timedelta(minutes=15)
            await store.links.redeem(await store.links.new_code(kept, now, ttl), linked, "zalo", now, ttl)
        finally:
            await store.close()
        for user in ("7000000", "7000001", "7000002", "7100000"):
            zalo.add_user(user)
        zalo.blocked_users.add("7000002")
        (tmp_path / "poster.jpg").write_bytes(jpeg(320, 240))
        (tmp_path / "news.yaml").write_text(f"text_vi: <b>{mark}</b> — mời bà con ra quân dọn vệ sinh đường làng.\n"
                                            "photo: poster.jpg\n", encoding="utf-8")
        async with running(bot):
            said = await danvan(bot.env, tmp_path, "broadcast", "send", str(tmp_path / "news.yaml"))
            broadcast_id = int(re.search(r"#(\d+): 7 người nhận", said).group(1))
            store = await Store.open(bot.db)
            try:
                async def done() -> bool:
                    return (await store.broadcasts.get(broadcast_id)).status == "done"

                await until(done, 30, "the broadcast done")
                rows = await store.broadcasts.recipients(broadcast_id)
                blocked = await store.users.find("zalo", "7000002")
            finally:
                await store.close()
    on_telegram = Counter(c.chat_id for c in telegram.sent() if mark in (c.text or ""))
    on_zalo = Counter(c.chat_id for c in zalo.sent() if mark in (c.text or ""))
    assert on_telegram == {5_000_000: 1, 5_000_001: 1, 5_000_002: 1, 5_100_000: 1}
    assert on_zalo == {"7000000": 1, "7000001": 1}
    assert all(c.method == "sendPhoto" and opened(c.photo).size == (320, 240) and "<b>" not in c.text
               for c in zalo.sent() if mark in (c.text or ""))
    assert [c.status for c in zalo.calls_of("sendPhoto", "7000002")] == [403] and not zalo.sent("7000002")
    assert Counter(status for status, _, _ in rows.values()) == {"sent": 6, "blocked": 1} and not blocked.reachable


async def test_after_a_sigkill_mid_flow_the_person_carries_on_and_nothing_is_doubled(tmp_path, database):
    """Killed between two onboarding steps, then while a report's text is being answered (the text saved, the
    answer held up at the platform): each time the person carries on where they were, with the numbers they saw;
    the text is in the report once, the greeting and the consents once."""
    async with FakeZaloAPI() as zalo:
        bot = Bot(tmp_path, database, ZALO_BOT_TOKEN=zalo.token, ZALO_API_URL=zalo.base_url)
        await bot.start()
        store = await Store.open(bot.db)
        try:
            calls = await zalo.ask(AN, "/start", display_name="Lan")
            for label in ("Đồng ý", "Đồng ý"):
                calls = await choose(zalo, calls, label)
            calls = await zalo.ask(AN, "hai lang")
            await kill_bot(bot.process)
            await bot.start()
            calls = await choose(zalo, calls, "xã Hải Lăng")
            assert "thôn, tổ dân phố nào của xã Hải Lăng" in calls[-1].text
            for label in ("Bỏ qua", "Xây dựng nông thôn mới", "Xong"):
                calls = await choose(zalo, calls, label)
            calls = await zalo.ask(AN, "/phananh")
            calls = await choose(zalo, calls, "Xây dựng nông thôn mới")
            await choose(zalo, calls, "Đúng")

            zalo.hang("sendMessage", chat_id=AN, seconds=60)
            zalo.push_text(AN, REPORT)

            async def saved_not_answered() -> bool:
                return any(entry.applied and REPORT in entry.event for entry in await store.journal.pending())

            await until(saved_not_answered, 15, "the report's text saved, its answer not sent")
            await kill_bot(bot.process)
            zalo.clear_faults()
            mark = zalo.mark()
            await bot.start()
            calls = await zalo.ask(AN, REPORT)  # no answer came: the person sends it again
            assert zalo.sent(AN, since=mark) == calls and calls[-1].text.count(REPORT) == 1
            for label in ("Tiếp tục", "Gửi kèm tên", "Không khẩn cấp", "Gửi"):
                calls = await choose(zalo, calls, label)
            code = re.search(r"PA-\d\d-\d{6}", calls[-1].text).group(0)
            citizen = await store.users.find("zalo", AN)
            (case,), _ = await store.cases.of_user(citizen.id)
            assert case.code == code and case.content == REPORT
            assert sorted(c.purpose for c in await store.users.consent_history(citizen.id)) == sorted(
                c.purpose for c in (await store.users.consents(citizen.id)).values())

            async def all_done() -> bool:  # marked so just after the answer went out
                return not await store.journal.pending()

            await until(all_done, 15, "every update handled")
        finally:
            await store.close()
            await stop_bot(bot.process)
        assert sum("Kính chào" in (c.text or "") for c in zalo.sent(AN)) == 1
    assert "Traceback" not in bot.output()
