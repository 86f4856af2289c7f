"""Invitations to a survey go through the broadcast outbox (its audience, opt-out) with a «Trả lời khảo sát»
button; one reminder, N days before it closes, reaches those invited who have not finished, once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

import storage.surveys
from bot.survey_invites import SurveyReminders
from handlers.surveys import invite
from tests.dialog import render, turns
from tests.test_broadcast_flows import deliver, engine_for, sent_to
from tests.test_surveys import POLL, SAMPLE, load, resident

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.backends
async def test_invitation_then_one_reminder_to_the_unfinished(harness, store, clock):
    survey = await load(store)  # for An sinh; closes 10/12/2026 17:00, a reminder 2 days before
    done = await resident(harness, user_id="1001")
    pending = await resident(harness, user_id="1002")
    quiet = await resident(harness, user_id="1003")
    await turns(quiet, [("/dunggui", [])])
    await resident(harness, topic="[Đô thị văn minh]", user_id="1004")
    engine = engine_for(harness)
    broadcast = await invite(store, survey, clock(), None, TZ)
    await deliver(engine, broadcast.id)
    for outside in ("1003", "1004"):  # stopped the news; follows another topic
        assert not any("Khảo sát: Rà soát" in render([r]) for r in sent_to(harness, outside))
    invitation = [r for r in sent_to(harness, "1001") if "Khảo sát: Rà soát" in r.text]
    assert invitation and "10/12/2026 17:00" in invitation[0].text
    done.last = invitation
    if not harness.channel.capabilities.buttons:
        done.shown = await store.conversations.shown("test", "1001")
    await turns(done, [("[Trả lời khảo sát]", ["Câu 1/3"]), ("[Không thuộc diện được hỗ trợ]", ["Câu 2/3"]),
                       ("bỏ qua", []), ("bỏ qua", ["Cảm ơn Ông/Bà đã trả lời"])])
    await turns(pending, [("/khaosat", []), ("[Rà soát việc tiếp cận]", ["Câu 1/3"])])  # begun, not finished

    reminders = SurveyReminders(store, None, TZ)
    clock.advance(days=11)  # 7/12: too early
    assert await reminders.tick(clock()) == []
    clock.advance(days=1, hours=10)  # 8/12 17:30 local
    [reminder] = await reminders.tick(clock())
    assert await reminders.tick(clock()) == []  # once
    before = {chat: len(sent_to(harness, chat)) for chat in ("1001", "1002", "1003", "1004")}
    await deliver(engine, reminder)
    got = {chat: [r.text for r in sent_to(harness, chat)[before[chat]:]] for chat in before}
    assert [("Nhắc: khảo sát" in text) for text in got["1002"]] == [True]
    assert got["1001"] == got["1003"] == got["1004"] == []
    assert (await store.broadcasts.get(reminder)).survey_id == survey.id


async def test_a_quick_poll_is_answered_from_the_announcement_and_its_report_shows_results(harness, store):
    from tests.test_roles import make_admin

    poll = await load(store, POLL)
    first = await resident(harness, user_id="1001")
    second = await resident(harness, user_id="1002")
    admin = await make_admin(harness, store)
    await store.users.update((await store.users.find("test", "9000")).id, harness.clock(), onboarded=1)
    await turns(admin, [("/khaosat", []), ("[Kết quả: Giờ ra quân]", ["0 người đã bắt đầu", "06/12/2026 23:59"]),
                        ("[Gửi lời mời]", ["Đã lên lịch thông báo mời #1 (2 người nhận)"])])
    await deliver(engine_for(harness), 1)
    for person, label in ((first, "Sáng sớm"), (second, "Chiều")):
        [announcement] = [r for r in sent_to(harness, person.id) if "Giờ ra quân Chủ nhật xanh" in r.text]
        assert "Ông/Bà tham gia được vào giờ nào?" in announcement.text
        person.last = [announcement]
        if not harness.channel.capabilities.buttons:
            person.shown = await store.conversations.shown("test", person.id)
        await turns(person, [(f"[{label}]", ["đã ghi nhận: «" + label])])
    report = [r for r in sent_to(harness, "9000") if "Thăm dò: Ông/Bà tham gia được" in r.text]
    assert report and "0 người đã trả lời" in report[-1].text  # when delivery ended; the answers came after
    await turns(admin, [("/khaosat", []), ("[Kết quả: Giờ ra quân]", ["• Sáng sớm: 1 (50%)", "• Chiều: 1 (50%)"]),
                        ("[Gửi lời mời]", ["đã có thông báo mời #1"])])
    await turns(first, [("/khaosat", []), ("[Giờ ra quân]", ["đã trả lời", "Sáng sớm"])])
    assert (await store.surveys.response(poll.id, (await store.users.find("test", "1001")).id)).finished_at



@pytest.mark.backends
async def test_the_reminder_tick_reads_only_the_surveys_whose_reminder_is_due(store, monkeypatch):
    """Open, its reminder due and not yet written: the only surveys a tick reads (was: every survey, every tick)."""
    variants = {"due": SAMPLE,  # closes 10/12 17:00 local (10:00 UTC), the reminder 2 days before
                "none": SAMPLE.replace("remind_days_before: 2\n", ""),
                "later": SAMPLE.replace("closes: 10/12/2026 17:00", "closes: 20/12/2026 17:00"),
                "closed": SAMPLE.replace("closes: 10/12/2026 17:00", "closes: 08/12/2026 12:00"),
                "early": SAMPLE.replace("opens: 26/11/2026 07:00", "opens: 09/12/2026 07:00")}
    ids = {code: (await load(store, source.replace("code: ra-soat-ho-tro", f"code: {code}"))).id
           for code, source in variants.items()}
    read, made = [], storage.surveys._survey
    monkeypatch.setattr(storage.surveys, "_survey", lambda row: read.append(row["code"]) or made(row))
    reminders = SurveyReminders(store, None, TZ)
    assert await reminders.tick(datetime(2026, 12, 8, 9, 59, 59, tzinfo=UTC)) == [] and read == []
    assert await reminders.tick(datetime(2026, 12, 8, 10, 0, tzinfo=UTC)) == [] and read == ["due"]  # none invited
    assert await store.schedule.done(f"{storage.surveys.REMINDER}{ids['due']}")
    read.clear()
    assert await reminders.tick(datetime(2026, 12, 8, 11, 0, tzinfo=UTC)) == [] and read == []  # written: read no more
