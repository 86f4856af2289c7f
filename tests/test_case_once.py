"""A case is created once: however often «Gửi» arrives (a double tap, a redelivered or replayed update,
a retry after a failure), there is one case and the person is given its code each time."""

from __future__ import annotations

import pytest

from storage.dialect import POSTGRES
from tests.dialog import render, turns
from tests.test_cases import REPORT, citizen

pytestmark = pytest.mark.backends


async def _codes(store, p) -> list[str]:
    user = await store.users.find("test", p.id)
    return sorted(c.code for c in (await store.cases.of_user(user.id))[0])


async def test_a_second_send_answers_with_the_same_code_and_stores_nothing_more(harness, store):
    p = await citizen(harness)
    await turns(p, REPORT[:7])
    send = p.option("Gửi")
    await turns(p, [("[Gửi]", ["PA-26-000001"])])
    again = render(await p.choose(send))  # a double tap, or Telegram delivering the update again
    assert "PA-26-000001" in again and "đã được tiếp nhận" in again and p.stale not in again
    assert await _codes(store, p) == ["PA-26-000001"]
    # Later, with the next report waiting at its review, the old button still names the old case only.
    await turns(p, REPORT[:7])
    send_next = p.option("Gửi")
    assert send_next != send
    again = render(await p.choose(send))
    assert "PA-26-000001" in again and "PA-26-000002" not in again
    assert (await store.conversations.get("test", p.id)).step == "review"
    assert "PA-26-000002" in render(await p.choose(send_next))
    assert await _codes(store, p) == ["PA-26-000001", "PA-26-000002"]


async def _fail_ending_the_conversation(store, monkeypatch):
    """The conversation's end fails, whoever performs it; returns what lets it succeed again."""
    db = store.db
    if db.dialect is POSTGRES:
        await db.execute("CREATE FUNCTION no_end() RETURNS trigger LANGUAGE plpgsql"
                         " AS 'BEGIN RAISE EXCEPTION ''disk I/O error''; END'")
        await db.execute("CREATE TRIGGER no_end BEFORE DELETE ON conversations FOR EACH ROW EXECUTE FUNCTION no_end()")
        return lambda: db.execute("DROP TRIGGER no_end ON conversations")

    async def on_each_writer(sql: str) -> None:  # a TEMP trigger is the connection's own (storage/db.py: two write)
        await db.conn.execute_fetchall(sql)
        db.loopside.writes.execute(sql)

    await on_each_writer("CREATE TEMP TRIGGER no_end BEFORE DELETE ON conversations"
                         " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    return lambda: on_each_writer("DROP TRIGGER no_end")


async def _fail_just_after_the_insert(store, monkeypatch):
    insert = store.cases._insert

    async def inserted_then_killed(*args):
        await insert(*args)
        raise OSError("disk I/O error")

    monkeypatch.setattr(store.cases, "_insert", inserted_then_killed)
    return None  # monkeypatch.undo() ends it


@pytest.mark.parametrize("inject", [_fail_ending_the_conversation, _fail_just_after_the_insert])
async def test_a_failure_between_storing_the_case_and_ending_the_conversation_stores_nothing(harness, store,
                                                                                             monkeypatch, inject):
    p = await citizen(harness)
    await turns(p, REPORT[:7])
    send = p.option("Gửi")
    undo = await inject(store, monkeypatch)
    replies = await p.choose(send)
    assert "hệ thống gặp sự cố" in render(replies) and "tiếp nhận" not in render(replies)
    assert await _codes(store, p) == []
    conversation = await store.conversations.get("test", p.id)
    assert conversation.step == "review" and conversation.data["content"].startswith("Đường bê tông")
    user = await store.users.find("test", p.id)
    assert (await store.cases.draft(user.id))["content"].startswith("Đường bê tông")
    if undo:
        await undo()
    monkeypatch.undo()
    assert "PA-26-000001" in render(await p.choose(send))
    assert "PA-26-000001" in render(await p.choose(send))
    assert await _codes(store, p) == ["PA-26-000001"]
    assert await store.conversations.get("test", p.id) is None and await store.cases.draft(user.id) is None


async def test_a_forged_or_someone_elses_send_button_is_refused(harness, store):
    lan = await citizen(harness)
    await turns(lan, REPORT[:7])
    send = lan.option("Gửi")
    await turns(lan, [("[Gửi]", ["PA-26-000001"])])
    mai = await citizen(harness, "1002", "Trần Thị Mai")
    for data in (send, "1:case.review:send:Zz9forgedKey", "1:case.review:send", "1:case.review:edit"):
        answer = render(await mai.choose(data))
        assert mai.stale in answer and "PA-26-000001" not in answer, data
    assert await _codes(store, mai) == []
    # Inside Mai's own review, Lan's button neither sends Mai's report nor shows Lan's code.
    await turns(mai, REPORT[:7])
    answer = render(await mai.choose(send))
    assert mai.stale in answer and "PA-26-000001" not in answer and "xem lại trước khi gửi" in answer
    assert await _codes(store, mai) == []


async def test_a_review_begun_before_drafts_had_keys_asks_once_more_then_sends(harness, store):
    p = await citizen(harness)
    await turns(p, REPORT[:7])
    conversation = await store.conversations.get("test", p.id)
    del conversation.data["key"]
    await store.conversations.save("test", p.id, conversation, harness.clock())
    answer = render(await p.choose("1:case.review:send"))  # the button as it was before the upgrade
    assert p.stale in answer and "xem lại trước khi gửi" in answer
    await turns(p, [("[Gửi]", ["PA-26-000001"])])
    assert await _codes(store, p) == ["PA-26-000001"]
