"""The router: failures are told and lose nothing; one person's events in order, people concurrently."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from handlers.base import Inbound
from storage.conversations import Conversation
from tests.dialog import ONBOARD, turns

pytestmark = pytest.mark.backends


async def test_a_failing_write_is_told_and_the_draft_survives(harness, store, monkeypatch):
    p = harness.person()
    await turns(p, ONBOARD[:6])  # at the topics step
    before = await store.conversations.get("test", "1001")

    async def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(store.users, "set_topics", broken)
    await p.click("Xây dựng nông thôn mới")
    done = p.option("Xong")  # the button stays on the person's screen
    replies = await p.choose(done)
    assert "hệ thống gặp sự cố" in replies[0].text and "vẫn được giữ" in replies[0].text
    assert await p.offers(done)  # without buttons: the number they typed still means «Xong»
    after = await store.conversations.get("test", "1001")
    assert after.step == "topics" and after.data["topics"] == before.data.get("topics", []) + [
        (await store.topics.by_code("nong-thon-moi")).id]
    monkeypatch.undo()
    replies = await p.choose(done)
    assert "Thông tin của Ông/Bà" in replies[0].text and "Xây dựng nông thôn mới" in replies[0].text


async def test_a_first_message_that_cannot_be_stored_gets_an_apology(harness, store, monkeypatch):
    async def full(*args, **kwargs):
        raise OSError("database or disk is full")

    monkeypatch.setattr(store.users, "arrive", full)
    replies = await harness.person().say("/start")
    assert len(replies) == 1 and "hệ thống gặp sự cố" in replies[0].text
    assert harness.channel.sent[-1][1] == replies[0]  # delivered, not only produced


async def test_one_persons_events_are_handled_in_order(harness, store):
    seen: list[str] = []
    original = harness.channel.send

    async def slow_send(chat_id, reply, edit_ref=None):
        await asyncio.sleep(0.01)
        seen.append(chat_id)
        return await original(chat_id, reply, edit_ref)

    harness.channel.send = slow_send
    p = harness.person()
    events = [Inbound("test", "1001", "1001", "command", command="start"),
              Inbound("test", "1001", "1001", "choice", payload="1:onb.news:y"),
              Inbound("test", "1001", "1001", "choice", payload="1:onb.opinions:y")]
    await asyncio.gather(*(harness.router.handle(e) for e in events))
    conversation = await store.conversations.get("test", "1001")
    assert conversation.step == "commune"  # each answer met the step it was meant for
    del p


async def test_different_people_are_handled_concurrently(harness):
    started, release = asyncio.Event(), asyncio.Event()
    original = harness.channel.send

    async def gated_send(chat_id, reply, edit_ref=None):
        if chat_id == "1":
            started.set()
            await release.wait()
        return await original(chat_id, reply, edit_ref)

    harness.channel.send = gated_send
    first = asyncio.create_task(harness.router.handle(Inbound("test", "1", "1", "command", command="huongdan")))
    await started.wait()
    # Person 2 is answered while person 1's reply is still blocked.
    await asyncio.wait_for(harness.router.handle(Inbound("test", "2", "2", "command", command="huongdan")), 2)
    release.set()
    await first


async def test_a_flow_that_no_longer_exists_is_left_for_the_menu(harness, store, clock):
    p = harness.person()
    await turns(p, ONBOARD)
    await store.conversations.save("test", "1001", Conversation("gone", "away", {}), clock())
    await turns(p, [("anything", ["Ông/Bà có thể chọn"])])
    assert await store.conversations.get("test", "1001") is None


async def test_locks_are_released(harness):
    await harness.router.handle(Inbound("test", "1", "1", "command", command="huongdan"))
    assert harness.router._locks._locks == {}


def test_plain_texts_are_joined_onto_the_next_reply():
    from bot.outbound import joined
    from handlers.base import Document, Option, Reply

    menu = Reply("Chọn:", ((Option("A", "1:m:caidat"),),))
    assert [r.text for r in joined([Reply("Đã lưu."), menu], 4096)] == ["Đã lưu.\n\nChọn:"]
    assert joined([Reply("Đã lưu."), menu], 4096)[0].options == menu.options
    # Buttons, edits and files keep their own message; nothing grows past the channel's limit.
    assert len(joined([menu, Reply("x")], 4096)) == 2
    assert len(joined([Reply("a"), Reply("b", edit=True)], 4096)) == 2
    assert len(joined([Reply("a"), Reply("b", document=Document("f.json", b"{}"))], 4096)) == 2
    assert len(joined([Reply("a" * 3000), Reply("b" * 2000)], 4096)) == 2


async def test_a_notice_kept_from_going_out_by_a_crash_goes_out_at_the_next_start(harness, store, clock):
    """The cadre's answer is stored and the cadre told, then the process dies before the citizen is told: the
    notice waits in the outbox and the next start delivers it, once."""
    from tests.schedule_kit import add_case
    from tests.test_cases import cadre_of, citizen

    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    user = await store.users.find("test", lan.id)
    case = await add_case(store, clock(), user.id, user.locality_id)
    await binh.choose(f"1:cs:{case.id}")
    await turns(binh, [("[Trả lời]", ["ký tên đơn vị"]),
                       ("UBND xã sẽ cho sửa đoạn đường trong tuần tới.", ["Xem trước"])])
    deliver = harness.router.deliver_notice

    async def dies(notice):
        raise asyncio.CancelledError  # the process ends here

    harness.router.deliver_notice = dies
    with contextlib.suppress(asyncio.CancelledError):
        await binh.click("Gửi")
    assert (await store.cases.get(case.id)).status == "answered"
    told = [r for chat, r, _ in harness.channel.sent if chat == lan.id]
    harness.router.deliver_notice = deliver
    assert await harness.router.resend_notices() == 1
    [notice] = [r for chat, r, _ in harness.channel.sent if chat == lan.id][len(told):]
    assert "UBND xã sẽ cho sửa" in notice.text and case.code in notice.text
    assert await harness.router.resend_notices() == 0
