"""The daily retention job, on an injected clock: old closed cases lose their sender, files and locations; stale
journal, notice, option and web session rows, idle web chats' history and the delivery records of broadcasts ended
long ago go; once a day, and nothing more the second time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ConfigError, load
from bot.retention import Retention
from bot.scheduler import Scheduler
from storage.broadcasts import NewBroadcast, Outcome
from storage.cases import Attachment, NewCase
from tests.images import jpeg
from tests.people import make_people
from tests.schedule_kit import TZ, citizen, local, run

pytestmark = pytest.mark.backends

PHOTO = jpeg()
MONTHS = 24


async def closed_case(store, at, user_id, text, *, photo=None, close=True):
    topic = (await store.topics.by_code("nong-thon-moi")).id
    village = (await store.localities.children((await store.localities.search("Hải Lăng", level=1))[0].id))[0]
    attachments = (Attachment("location", None, None, None, None, 16.8163, 107.1003),)
    if photo is not None:
        attachments += (Attachment("photo", await store.files.put(photo), "image/jpeg", len(photo), None, None, None),)
    case = await store.cases.create(NewCase("phananh", user_id, False, topic, village.id, text, False, None, at, at,
                                            attachments=attachments), at)
    if close:
        case = await store.cases.record(case.id, None, "resolved", at, expect="new", status="resolved", closed_at=at)
    return case


def daily(store, clock, months=MONTHS) -> Scheduler:
    scheduler = Scheduler(clock)
    Retention(store, months, TZ).register(scheduler)
    return scheduler


async def test_old_closed_cases_lose_sender_files_and_locations(store, clock):
    start = local(2024, 1, 10, 9)
    clock.now = start
    lan = await citizen(store, start)
    old = await closed_case(store, start, lan, "Cống thoát nước bị tắc", photo=PHOTO)
    still_open = await closed_case(store, start, lan, "Đèn đường hỏng", close=False)
    recent = await closed_case(store, start + timedelta(days=60), lan, "Rác thải ven sông", photo=PHOTO + b"2")
    digest = (await store.cases.attachments(old.id))[1].sha256
    scheduler = daily(store, clock)
    await run(scheduler, clock, start + timedelta(days=24 * 30 + 2), step=timedelta(hours=6))
    after = await store.cases.get(old.id)
    assert after.user_id is None and await store.cases.attachments(old.id) == []
    assert after.content == "Cống thoát nước bị tắc" and after.status == "resolved"  # kept for the record
    assert all(e.actor_id is None for e in await store.cases.events(old.id, internal=True))
    assert await store.files.get(digest) is None
    # An open case and one closed less than 24 months ago keep everything.
    for case in (still_open, recent):
        assert (await store.cases.get(case.id)).user_id == lan and len(await store.cases.attachments(case.id)) >= 1
    [entry] = [e for e in await store.audit.recent() if e.action == "retention.swept"]
    assert entry.actor_id is None
    assert (entry.detail["senders"], entry.detail["files"], entry.detail["locations"],
            entry.detail["files_deleted"]) == (1, 1, 1, 1)
    # The next days find nothing more to do, and say nothing.
    await run(scheduler, clock, clock() + timedelta(days=3), step=timedelta(hours=6))
    assert len([e for e in await store.audit.recent() if e.action == "retention.swept"]) == 1
    # Two months on, the second case's turn comes.
    await run(scheduler, clock, clock() + timedelta(days=60), step=timedelta(hours=12))
    assert (await store.cases.get(recent.id)).user_id is None
    assert (await store.cases.get(still_open.id)).user_id == lan


async def test_stale_journal_notices_options_and_sessions_go(store, clock):
    now = clock()
    lan = await citizen(store, now)
    [old, pending] = await store.journal.accept("test", [("u1", "1001", "{}"), ("u2", "1001", "{}")], now)
    await store.journal.done(old.id, now)
    await store.notices.add([(lan, '{"key": "x", "values": {}, "buttons": []}')], now)
    await store.conversations.show("zalo", "1001", [("Đồng ý", "1:x")], now)
    await store.web_sessions.create("cookie", "w1", now, timedelta(days=10))
    await store.web_sessions.create("cookie-2", "w2", now, timedelta(days=90))
    clock.advance(days=31)
    later = clock()
    [fresh] = await store.journal.accept("test", [("u3", "1001", "{}")], later)
    await store.journal.done(fresh.id, later)
    await store.notices.add([(lan, '{"key": "y", "values": {}, "buttons": []}')], later)
    await Retention(store, MONTHS, TZ).tick(later)
    assert [e.id for e in await store.journal.pending()] == [pending.id]  # an update not yet handled stays
    assert not await store.journal.accept("test", [("u3", "1001", "{}")], later)  # handled today: still known
    assert [n for _, _, n in await store.notices.pending()] == ['{"key": "y", "values": {}, "buttons": []}']
    assert await store.conversations.shown("zalo", "1001") == []
    assert await store.web_sessions.get("cookie-2", later) is not None
    [entry] = [e for e in await store.audit.recent() if e.action == "retention.swept"]
    assert {k: v for k, v in entry.detail.items() if v} == {"journal": 1, "notices": 1, "options": 1, "sessions": 1}


async def test_web_chats_idle_for_the_period_lose_their_history(store, clock):
    start = clock()
    for chat, text in (("idle", "Xin chào"), ("busy", "Cho hỏi lịch họp thôn")):
        await store.web_messages.add("web", chat, {"id": f"{chat}-1", "v": 1, "from": "me", "text": text}, start, 100)
    clock.advance(days=MONTHS * 30 - 5)
    await store.web_messages.add("web", "busy", {"id": "busy-2", "v": 2, "from": "bot", "text": "Dạ"}, clock(), 100)
    clock.advance(days=10)
    await Retention(store, MONTHS, TZ).tick(clock())
    assert await store.web_messages.since("web", "idle") == []
    # A chat still in use keeps its whole history, its first message too.
    assert [m["id"] for m in await store.web_messages.since("web", "busy")] == ["busy-1", "busy-2"]
    [entry] = [e for e in await store.audit.recent() if e.action == "retention.swept"]
    assert entry.detail["web_messages"] == 1


async def test_one_run_a_day_even_across_restarts(store, clock):
    start = local(2026, 11, 26, 1)
    clock.now = start
    await run(daily(store, clock), clock, start + timedelta(hours=23), step=timedelta(minutes=30))
    await run(daily(store, clock), clock, start + timedelta(days=2, hours=23), step=timedelta(minutes=30))  # restarted
    keys = [r[0] for r in await store.db.fetchall("SELECT key FROM scheduled_runs WHERE key LIKE 'retention:%'"
                                                  " AND done_at IS NOT NULL ORDER BY key")]
    # 01:00 local is before 03:00: that night still belongs to the 25th.
    assert keys == ["retention:2026-11-25", "retention:2026-11-26", "retention:2026-11-27", "retention:2026-11-28"]


def test_retention_months_is_checked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load().retention_months == 24
    assert load().handler_settings().retention_months == 24
    monkeypatch.setenv("DANVAN_RETENTION_MONTHS", "0")
    with pytest.raises(ConfigError, match="DANVAN_RETENTION_MONTHS"):
        load()
    monkeypatch.setenv("DANVAN_RETENTION_MONTHS", "36")
    assert load().handler_settings().retention_months == 36


async def test_many_old_cases_go_in_several_short_transactions(store, clock, monkeypatch):
    monkeypatch.setattr("storage.retention.BATCH", 2)
    start = clock()
    lan = await citizen(store, start)
    cases = [await closed_case(store, start, lan, f"Ý kiến số {n} về đường làng") for n in range(5)]
    counts = await store.retention.sweep(cases_closed_before=start + timedelta(days=1), journal_before=start,
                                         stale_before=start, chats_idle_before=start, broadcasts_ended_before=start,
                                         now=start + timedelta(days=1))
    assert counts["senders"] == 5 and counts["locations"] == 5
    assert all([(await store.cases.get(c.id)).user_id is None for c in cases])
    assert len([e for e in await store.audit.recent() if e.action == "retention.swept"]) == 1


async def sent_to(store, now, people, *, finish="done") -> int:
    """A broadcast delivered to `people` at `now`; left running when `finish` is None, or cancelled halfway."""
    broadcast = await store.broadcasts.create(NewBroadcast(text_vi="Họp dân thôn Hà Lộc", scheduled_at=now), now)
    await store.broadcasts.start(broadcast.id, now)
    await store.broadcasts.resolve(broadcast.id)
    targets = await store.broadcasts.claim(broadcast.id, len(people) // 2 if finish == "cancelled" else 1000, now)
    await store.broadcasts.settle(broadcast.id, [Outcome(t.user_id, "sent") for t in targets], now)
    if finish == "done":
        await store.broadcasts.finish(broadcast.id, now)
    elif finish == "cancelled":
        await store.broadcasts.cancel(broadcast.id, now)
    return broadcast.id


async def test_broadcasts_ended_for_the_period_lose_their_delivery_record(store, clock, monkeypatch):
    monkeypatch.setattr("storage.retention.RECIPIENTS_BATCH", 2)  # several transactions for one broadcast
    start = clock()
    people = await make_people(store, 5)
    old, cancelled, sending = [await sent_to(store, start, people, finish=finish)
                               for finish in ("done", "cancelled", None)]
    clock.advance(days=60)
    recent = await sent_to(store, clock(), people)
    clock.advance(days=MONTHS * 30 - 30)
    await Retention(store, MONTHS, TZ).tick(clock())
    assert await store.broadcasts.recipients(old) == {} and await store.broadcasts.recipients(cancelled) == {}
    assert (await store.broadcasts.get(old)).total == 5  # the announcement and how many it reached stay
    # One still sending (or scheduled) needs its rows to send once; one ended less than the period ago keeps them.
    assert len(await store.broadcasts.recipients(sending)) == len(await store.broadcasts.recipients(recent)) == 5
    [entry] = [e for e in await store.audit.recent() if e.action == "retention.swept"]
    assert entry.detail["recipients"] == 10
