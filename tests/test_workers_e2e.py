"""Several workers on one PostgreSQL (issue 19), as deployed: three `danvan run` processes in webhook mode behind a
round-robin proxy, the fake Bot API posting every update to the proxy (so one chat's updates land on every worker in
turn). Meanwhile 200 people onboard, report and then send a burst of commands; a broadcast goes to 5,000 people; a
day of digests is due. The scheduler's leader is killed with SIGKILL mid-run; more digests become due after.

Checked at the fake: each chat's answers in the order of its updates, no message twice, one case per report, each
digest once, the broadcast once to everyone (but those in flight at the kill, which stay 'uncertain'), and never
more than the cap (TELEGRAM_RATE) in any 1-second window across all workers together."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import bench.inbound
from bench.inbound import ONBOARD, REPORT, BenchAPI, Load, Person, Step, crowd
from storage import Store
from storage.broadcasts import FINAL, Audience, NewBroadcast
from storage.clock import iso
from tests.bot_process import kill_bot, until
from tests.fakes.telegram_api import MESSAGE_METHODS, Call
from tests.people import BASE_CHAT, make_people
from tests.workers import PostsToWebhook, leader, log_of, workers

pytestmark = [pytest.mark.backends("postgresql"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PEOPLE = 200
RECIPIENTS = 5000
CADRES = 10  # whose digests are due from the start; as many again are made due after the leader's death
RATE = 200  # TELEGRAM_RATE: the cap every worker together keeps to
BROADCAST_RATE = 150
CONCURRENCY = 20  # broadcast recipients in flight at once: at most these are 'uncertain' after the kill
FIRST_CADRE = 6_000_000
MARK = "Lịch chi trả trợ cấp tháng 12"
DIGEST = "Bản tin tổng hợp"
# Sent back to back without waiting (Telegram delivers them in order, each to whichever worker the balancer picks):
# the answers must come in the same order.
BURST = [Step("/huongdan", 1, "Hướng dẫn sử dụng"), Step("/theodoi", 1, "Ý kiến của Ông/Bà")] * 2
UPDATES = len(ONBOARD) + len(REPORT) + len(BURST)  # each person's, each answered with one message


class WebhookAPI(PostsToWebhook, BenchAPI):
    """Counts the announcements and digests each chat received as they come (the test asks often)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[str, Counter] = {MARK: Counter(), DIGEST: Counter()}

    def _record(self, call: Call) -> None:
        super()._record(call)
        if call.ok and call.method in MESSAGE_METHODS:
            for marker, chats in self.received.items():
                if marker in (call.text or ""):
                    chats[call.chat_id] += 1


def busiest(api: WebhookAPI) -> str:
    """The busiest second at the fake, by kind of message: for a failure's message."""
    calls = sorted(api.sent(), key=lambda c: c.at)
    start, best = 0, (0, 0, 0)
    for end, call in enumerate(calls):
        while call.at - calls[start].at >= 1.0:
            start += 1
        best = max(best, (end - start + 1, start, end))
    window = calls[best[1]:best[2] + 1]
    kinds = Counter("broadcast" if MARK in (c.text or "") else "digest" if DIGEST in (c.text or "") else "reply"
                    for c in window)
    return f"{best[0]} messages in {window[-1].at - window[0].at:.3f} s: {dict(kinds)}"


async def life(person: Person) -> None:
    await person.run(ONBOARD)
    await person.run(REPORT)
    box = person.box
    box.calls, box.want = [], len(BURST)
    box.future = asyncio.get_running_loop().create_future()
    for step in BURST:
        person.api.push_text(person.id, step.send)
    async with asyncio.timeout(bench.inbound.STEP_TIMEOUT):
        await box.future
    answers = [call.text or "" for call in box.calls]
    assert all(step.expect in text for step, text in zip(BURST, answers, strict=True)), (person.id, answers)


async def seed(store: Store) -> tuple[int, list[int], list[int]]:
    """5,000 people following a topic no one onboarding picks, a broadcast to them due now, and cadres whose daily
    digest is due now (the other half have it off until later)."""
    now = datetime.now(UTC)
    recipients = await make_people(store, RECIPIENTS, topics=("an-sinh",))
    cadres = await make_people(store, 2 * CADRES, first_chat=FIRST_CADRE, role="cadre", topics=())
    for n, cadre in enumerate(cadres):
        # Due at 00:00 local time each day; the last one covered ended yesterday: today's is due.
        await store.digests.update(cadre, now, mode="daily" if n < CADRES else "off", at_minute=0)
    await store.db.execute("UPDATE digest_settings SET last_end = ?", (iso(now - timedelta(days=1)),))
    topic = (await store.topics.by_code("an-sinh")).id
    broadcast = await store.broadcasts.create(NewBroadcast(text_vi=f"<b>{MARK}</b> tại UBND xã", scheduled_at=now,
                                                           audience=Audience(topics=(topic,))), now)
    return broadcast.id, recipients, cadres


async def test_three_workers_behind_a_balancer_with_the_leader_killed(database, store, tmp_path, monkeypatch):
    broadcast, recipients, cadres = await seed(store)
    monkeypatch.setattr(bench.inbound, "STEP_TIMEOUT", 45.0)  # an update the dead worker held waits for the sweep
    async with WebhookAPI() as api, workers(3, database, api, tmp_path, DANVAN_TICK_SECONDS="0.5",
                                            TELEGRAM_RATE=str(RATE), DANVAN_BROADCAST_RATE=str(BROADCAST_RATE),
                                            DANVAN_BROADCAST_CONCURRENCY=str(CONCURRENCY),
                                            DANVAN_CASE_LIMIT="10") as (running, proxy):
        sent = api.received

        async def until_then(check, timeout: float, what: str) -> None:
            try:
                await until(check, timeout, what)
            except AssertionError as failed:
                raise AssertionError(f"{failed}; by then {len(sent[DIGEST])} digests, {len(sent[MARK])} announcements,"
                                     f" {load.sent} updates sent, {len(api.calls)} calls at the fake") from None

        ids, load = iter(range(1, PEOPLE + 1)), Load(math.inf, math.inf)
        people = crowd([(Person(api, load, ids), life) for _ in range(PEOPLE)], load)
        everyone = asyncio.create_task(people)
        try:
            async def halfway() -> bool:
                assert not everyone.done() or everyone.exception() is None, everyone.exception()
                return (len(sent[DIGEST]) == CADRES and len(sent[MARK]) >= RECIPIENTS // 3
                        and load.sent >= PEOPLE * UPDATES // 3)
            await until_then(halfway, 60, "the first digests out, a third of the broadcast and of the updates")
            dead = await leader(running)
            await kill_bot(dead.process)
            alive = [w for w in running if w is not dead]
            now = datetime.now(UTC)
            for cadre in cadres[CADRES:]:
                await store.digests.update(cadre, now, mode="daily")

            async def finished() -> bool:
                assert not everyone.done() or everyone.exception() is None, everyone.exception()
                return (everyone.done() and len(sent[DIGEST]) == 2 * CADRES
                        and (await store.broadcasts.get(broadcast)).status == "done")
            await until_then(finished, 90, "everyone answered, every digest out and the broadcast done")
            await api.settle()
            await leader(alive)  # one of the others took the lead
        finally:
            everyone.cancel()
            await asyncio.gather(everyone, return_exceptions=True)
        await asyncio.sleep(1)  # whatever a worker still had on its way would land now
        outcome = await store.broadcasts.recipients(broadcast)
        cases = await store.db.fetchall("SELECT code, user_id FROM cases")
        logs = {w.name: log_of(tmp_path, w) for w in alive}

    assert not api.server_errors and not api.pending_updates
    assert min(proxy.forwarded) > 0, proxy.forwarded  # every worker took updates
    for person in range(1, PEOPLE + 1):  # not one message more than the answers the person waited for
        assert len(api.sent(person)) == UPDATES, api.sent(person)
    assert len(cases) == PEOPLE and len({code for code, _ in cases}) == len({user for _, user in cases}) == PEOPLE
    digests = sent[DIGEST]
    assert set(digests) == {FIRST_CADRE + n for n in range(2 * CADRES)} and set(digests.values()) == {1}
    delivered = sent[MARK]
    assert max(delivered.values()) == 1, delivered.most_common(3)
    chat_of = dict(zip(recipients, range(BASE_CHAT, BASE_CHAT + RECIPIENTS), strict=True))
    assert all(status in FINAL for status, _, _ in outcome.values())
    missed = {chat_of[user] for user, (status, _, _) in outcome.items() if status != "sent"}
    uncertain = {chat_of[user] for user, (status, _, _) in outcome.items() if status == "uncertain"}
    assert set(chat_of.values()) - set(delivered) <= uncertain and missed == uncertain
    assert len(uncertain) <= CONCURRENCY
    assert api.max_in_window(None) <= RATE, busiest(api)
    for name, text in logs.items():
        assert "Traceback" not in text, (name, text)
