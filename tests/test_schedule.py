"""The cadre schedule in simulated time: two weeks of digests in milliseconds, restarts, downtime, the
"nothing new" setting, deadline reminders across weekends and Tết, escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import Store
from tests.dialog import Clock
from tests.schedule_kit import add_case, citizen, local, run, schedule, staff, timed_harness

pytestmark = pytest.mark.backends


async def _people(store, now):
    hai_lang = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    dong_ha = await staff(store, now, "8002", unit="Ban Dân vận phường Đông Hà", communes=("dong ha",))
    quiet = await staff(store, now, "8003", unit="MTTQ xã Hải Lăng", communes=("hai lang",))
    admin = await staff(store, now, "9001", role="admin")
    await store.digests.update(dong_ha, now, mode="weekly", weekday=0, at_minute=17 * 60)
    await store.digests.update(quiet, now, at_minute=6 * 60, skip_empty=True)
    return hai_lang, dong_ha, quiet, admin


async def _places(store):
    return (await store.localities.search("hai lang", level=1))[0], (await store.localities.search("dong ha",
                                                                                                    level=1))[0]


async def test_two_weeks_of_digests_each_at_its_local_time_and_never_twice(store, capabilities):
    clock = Clock(local(2026, 11, 26, 7, 0))  # Thursday
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    await _people(store, clock())
    lan = await citizen(store, clock())
    hai_lang, dong_ha = await _places(store)
    codes = {}
    for n in range(14):
        day = local(2026, 11, 26, 10, 0) + timedelta(days=n)
        await run(scheduler, clock, day)
        if day.weekday() < 5:
            codes[day.date()] = (await add_case(store, clock(), lan, hai_lang.id)).code
        if day.weekday() == 2:
            await add_case(store, clock(), lan, dong_ha.id, topic="do-thi-van-minh")
    await run(scheduler, clock, local(2026, 12, 10, 7, 0))

    days = [local(2026, 11, 26) + timedelta(days=n) for n in range(14)]
    for chat in ("8001", "9001"):  # daily at 07:30, the default
        sent = channel.to(chat, "Bản tin tổng hợp")
        assert [at for at, _ in sent] == [d + timedelta(hours=7, minutes=30) for d in days], chat
    first = channel.to("8001", "Bản tin tổng hợp")[1][1]  # Friday's: Thursday's case
    assert "Từ 26/11/2026 07:30 đến 27/11/2026 07:30" in first.text and "Ý kiến mới: 1" in first.text
    assert codes[days[0].date()] in first.text and "Xây dựng nông thôn mới 1" in first.text
    assert channel.choices(first) == ["1:ib:new", "1:ib:overdue", "1:ib:due_soon",
                                                              "1:ib:open"]
    # Weekly on Monday at 17:00, with a chart; Đông Hà's cases only.
    weekly = channel.to("8002")
    assert [(at, bool(r.photo)) for at, r in weekly] == [(local(2026, 11, 30, 17), False),
                                                         (local(2026, 11, 30, 17), True),
                                                         (local(2026, 12, 7, 17), False),
                                                         (local(2026, 12, 7, 17), True)]
    assert "Ý kiến mới: 1" in weekly[2][1].text and "Hải Lăng" not in weekly[2][1].text
    # 06:00 and "skip when nothing is new": no digest after a weekend day without cases.
    expected = [d + timedelta(days=1, hours=6) for d in days if d.weekday() < 5]
    assert [at for at, _ in channel.to("8003", "Bản tin tổng hợp")] == expected
    # Every digest has its key, done once.
    keys = await store.db.fetchall("SELECT key FROM scheduled_runs WHERE key LIKE 'digest:%'"
                                   " AND done_at IS NOT NULL")
    assert len(keys) == 14 + 14 + 2 + 14  # the quiet cadre's skipped digests are done too


async def _simulate(path, *, restart: bool) -> list[tuple]:
    """Three days in ticks of 37 minutes (every hour and minute gets one), with cases coming in; with
    `restart`, the store, the router and the jobs are rebuilt after every tick."""
    clock = Clock(local(2026, 11, 26, 7, 0))
    store = await Store.open(path)
    harness, channel = timed_harness(store, clock)
    scheduler = schedule(harness)
    await _people(store, clock())
    lan = await citizen(store, clock())
    hai_lang, dong_ha = await _places(store)
    sent = channel.timed
    try:
        for n in range(1, 120):
            clock.advance(minutes=37)
            if n % 5 == 0:
                await add_case(store, clock(), lan, hai_lang.id if n % 2 else dong_ha.id,
                               due=clock() + timedelta(days=2))
            await scheduler.tick()
            if restart:
                await store.close()
                store = await Store.open(path)
                harness, channel = timed_harness(store, clock)
                channel.timed = sent
                scheduler = schedule(harness)
    finally:
        await store.close()
    return [(at, chat, r.text, bool(r.photo)) for at, chat, r in sent]


async def test_a_restart_at_any_moment_neither_repeats_nor_skips(tmp_path):
    steady = await _simulate(tmp_path / "steady.db", restart=False)
    restarted = await _simulate(tmp_path / "restarted.db", restart=True)
    assert restarted == steady
    daily = [at for at, chat, text, _ in restarted if chat == "8001" and "Bản tin" in text]
    # 07:30 is off the 37-minute grid: each digest comes at the first tick after it, once a day. The first
    # tick (07:37) is when the cadre was first seen, so the digests start the next day.
    assert len(daily) == 3
    assert all(timedelta(0) <= at - local(2026, 11, 27 + i, 7, 30) < timedelta(minutes=37)
               for i, at in enumerate(daily))
    assert any("Nhắc hạn" in text for _, chat, text, _ in restarted if chat == "8001")


async def test_a_crash_while_sending_is_retried_once_after_the_claim_goes_stale(store, capabilities):
    clock = Clock(local(2026, 11, 26, 7, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    await _people(store, clock())
    send, failed = channel.send, []

    async def crashing(chat_id, reply, edit_ref=None):
        if chat_id == "8001" and not failed:
            failed.append(clock())
            raise RuntimeError("the process died here")
        return await send(chat_id, reply, edit_ref)

    channel.send = crashing
    await run(scheduler, clock, local(2026, 11, 27, 9, 0), timedelta(minutes=5))
    assert failed == [local(2026, 11, 26, 7, 30)]
    assert [at for at, _ in channel.to("8001")] == [local(2026, 11, 26, 7, 40), local(2026, 11, 27, 7, 30)]
    assert [at for at, _ in channel.to("9001")] == [local(2026, 11, 26, 7, 30), local(2026, 11, 27, 7, 30)]


async def test_a_week_of_downtime_catches_up_with_one_digest_per_cadre(store, capabilities):
    clock = Clock(local(2026, 11, 26, 7, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    await _people(store, clock())
    lan = await citizen(store, clock())
    hai_lang, _ = await _places(store)
    await run(scheduler, clock, local(2026, 11, 26, 8, 0))
    for day in (28, 30):  # while the bot was down
        await add_case(store, local(2026, 11, day, 9), lan, hai_lang.id)
    await add_case(store, local(2026, 12, 3, 9), lan, hai_lang.id)  # after the slot: tomorrow's digest
    clock.now = local(2026, 12, 3, 10, 0)
    for _ in range(12):
        clock.advance(minutes=10)
        await scheduler.tick()
    caught_up = channel.to("8001")
    assert [at for at, _ in caught_up] == [local(2026, 11, 26, 7, 30), local(2026, 12, 3, 10, 10)]
    assert "Từ 26/11/2026 07:30 đến 03/12/2026 07:30" in caught_up[1][1].text
    assert "Ý kiến mới: 2" in caught_up[1][1].text
    # The weekly digest missed on Monday comes once too, with its chart; the quiet cadre's once.
    assert [(at, bool(r.photo)) for at, r in channel.to("8002")] == [(local(2026, 12, 3, 10, 10), False),
                                                                     (local(2026, 12, 3, 10, 10), True)]
    assert len(channel.to("8003")) == 1
    await run(scheduler, clock, local(2026, 12, 4, 8, 0))
    assert [at for at, _ in channel.to("8001")][2:] == [local(2026, 12, 4, 7, 30)]
    assert "Ý kiến mới: 1" in channel.to("8001")[2][1].text


async def test_nothing_new_is_skipped_only_when_asked(store, capabilities):
    clock = Clock(local(2026, 11, 26, 7, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    await _people(store, clock())
    await run(scheduler, clock, local(2026, 11, 28, 8, 0))
    assert len(channel.to("8001", "Không có ý kiến mới")) == 3
    assert channel.to("8003") == []
    quiet = (await store.users.find("test", "8003")).id
    for day in ("2026-11-27", "2026-11-28"):  # skipped, but done: never sent later
        assert await store.schedule.done(f"digest:{quiet}:{day}")


async def _reminded(store, capabilities, start, end, due, escalate_after=3):
    """A Hải Lăng case due at `due`, a commune cadre, a province cadre and an admin; ticks every hour."""
    clock = Clock(start)
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness, escalate_after)
    await staff(store, clock(), "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    await staff(store, clock(), "8005", unit="Ban Dân vận Tỉnh ủy", province=True)
    await staff(store, clock(), "9001", role="admin")
    for user_id in (8001, 8005, 9001):  # reminders only here, not the digests
        user = await store.users.find("test", str(user_id))
        await store.digests.update(user.id, clock(), mode="off")
    lan = await citizen(store, clock())
    hai_lang, _ = await _places(store)
    village = (await store.localities.children(hai_lang.id))[0]
    case = await add_case(store, start - timedelta(days=10), lan, village.id, due=due)
    answered = await add_case(store, start - timedelta(days=10), lan, village.id, due=due)
    await store.cases.record(answered.id, None, "answered", start, body="Đã xử lý", expect="new", status="answered",
                             answered_at=start)
    await run(scheduler, clock, end, timedelta(hours=1))
    return channel, case, answered


def _when(channel, chat, text):
    return [at for at, r in channel.to(chat, text)]


async def test_reminders_before_and_after_a_deadline_across_a_weekend_then_escalation(store, capabilities):
    due = local(2026, 12, 7, 23, 59) + timedelta(seconds=59)  # Monday
    channel, case, answered = await _reminded(store, capabilities, local(2026, 12, 3), local(2026, 12, 14), due)
    assert _when(channel, "8001", "Nhắc hạn trả lời") == [local(2026, 12, 4, 8)]  # Friday, not the weekend
    assert _when(channel, "8001", "Ý kiến quá hạn") == [local(2026, 12, 8, 8)]  # Tuesday
    assert _when(channel, "8001", "báo cáo lên cấp trên") == [local(2026, 12, 10, 8)]  # 3 working days late
    for chat in ("8005", "9001"):  # the level above: the province's cadre and the admins
        assert _when(channel, chat, "Báo cáo lên cấp trên") == [local(2026, 12, 10, 8)]
        assert [r.text for _, r in channel.to(chat)] == [r.text for _, r in channel.to(chat, "Báo cáo lên")]
    reminder = channel.to("8001", "Nhắc hạn")[0][1]
    assert case.code in reminder.text and answered.code not in reminder.text
    assert "hạn 07/12/2026" in reminder.text and "xã Hải Lăng" in reminder.text
    assert channel.choices(reminder) == [f"1:cs:{case.id}", "1:ib:due_soon"]
    assert "quá 3 ngày làm việc" in channel.to("9001")[0][1].text
    audit = [e for e in await store.audit.recent() if e.action == "case.escalated"]
    assert [e.target for e in audit] == [f"case:{case.code}"]


async def test_reminders_across_tet(store, capabilities):
    due = local(2027, 2, 11, 23, 59) + timedelta(seconds=59)  # the first working day after Tết 2027
    channel, case, _ = await _reminded(store, capabilities, local(2027, 1, 30), local(2027, 2, 18), due)
    assert _when(channel, "8001", "Nhắc hạn trả lời") == [local(2027, 2, 3, 8)]  # the last day before Tết
    assert _when(channel, "8001", "Ý kiến quá hạn") == [local(2027, 2, 12, 8)]
    assert _when(channel, "9001", "Báo cáo lên cấp trên") == [local(2027, 2, 16, 8)]  # Fri, Mon, Tue


async def test_escalation_after_a_configured_number_of_working_days(store, capabilities):
    due = local(2026, 12, 7, 23, 59) + timedelta(seconds=59)
    channel, case, _ = await _reminded(store, capabilities, local(2026, 12, 7), local(2026, 12, 10), due,
                                       escalate_after=1)
    assert _when(channel, "8001", "Ý kiến quá hạn") == []
    assert _when(channel, "9001", "Báo cáo lên cấp trên") == [local(2026, 12, 8, 8)]


async def test_a_reopened_case_with_a_new_deadline_is_reminded_again(store, capabilities):
    due = local(2026, 12, 7, 23, 59) + timedelta(seconds=59)
    channel, case, _ = await _reminded(store, capabilities, local(2026, 12, 4), local(2026, 12, 5), due)
    assert len(channel.to("8001", "Nhắc hạn")) == 1
    new_due = local(2026, 12, 15, 23, 59) + timedelta(seconds=59)
    await store.cases.record(case.id, None, "reopened", local(2026, 12, 5), body="Chưa sửa", expect="new",
                             status="in_progress", answer_due=new_due)
    clock = Clock(local(2026, 12, 14, 9))
    harness, channel = timed_harness(store, clock, capabilities)
    await schedule(harness).tick()
    assert [at for at, _ in channel.to("8001", "Nhắc hạn")] == [local(2026, 12, 14, 9)]
