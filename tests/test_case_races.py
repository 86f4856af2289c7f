"""Status changes are conditional: when two people act on one case at the same instant exactly one of
them wins; the other is told, gets their text back, and the citizen hears of the change once."""

from __future__ import annotations

import asyncio

import pytest

from tests.dialog import render, turns
from tests.schedule_kit import add_case
from tests.test_cases import cadre_of, citizen

pytestmark = pytest.mark.backends

ANSWER = "UBND xã sẽ cho sửa đoạn đường trong tuần tới."
DECLINE = "Việc này thuộc thẩm quyền của Công ty điện lực."


async def two_cadres(harness, store):
    """A citizen of Hải Lăng (and their user row) and two cadres who both hold the commune."""
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    hoa = await cadre_of(harness, store, "hai lang", user_id="8002", unit="Ban Dân vận huyện")
    return lan, binh, hoa, await store.users.find("test", lan.id)


async def test_two_cadres_closing_one_case_at_once_exactly_one_wins(harness, store, clock):
    lan, binh, hoa, user = await two_cadres(harness, store)
    for round_ in range(40):
        case = await add_case(store, clock(), user.id, user.locality_id)
        await binh.choose(f"1:cs:{case.id}")
        await turns(binh, [("[Trả lời]", ["ký tên đơn vị"])])
        await hoa.choose(f"1:cs:{case.id}")
        await turns(hoa, [("[Không thuộc thẩm quyền]", [])])
        sent = len(harness.channel.sent)
        await binh.say(ANSWER)
        await hoa.say(DECLINE)
        answered, declined = await asyncio.gather(binh.click("Gửi"), hoa.click("Gửi"))
        closing = [e.kind for e in await store.cases.events(case.id, internal=True)
                   if e.kind in ("answered", "declined")]
        assert len(closing) == 1, f"round {round_}: {closing}"
        to_citizen = [r.text for chat, r, _ in harness.channel.sent[sent:] if chat == lan.id]
        assert len(to_citizen) == 1, f"round {round_}: {to_citizen}"
        loser, text = (declined, DECLINE) if closing == ["answered"] else (answered, ANSWER)
        told = render(loser)
        assert "vừa được đồng chí khác xử lý" in told and text in told, f"round {round_}: {told}"
        assert (await store.cases.get(case.id)).status == closing[0]


async def test_two_cadres_pressing_buttons_at_once_exactly_one_wins(harness, store, clock):
    lan, binh, hoa, user = await two_cadres(harness, store)
    for round_ in range(20):
        case = await add_case(store, clock(), user.id, user.locality_id)
        await binh.choose(f"1:cs:{case.id}")
        await hoa.choose(f"1:cs:{case.id}")
        sent = len(harness.channel.sent)
        first, second = await asyncio.gather(binh.click("Đã tiếp nhận"), hoa.click("Đang xử lý"))
        kinds = [e.kind for e in await store.cases.events(case.id, internal=True) if e.kind != "created"]
        assert len(kinds) == 1, f"round {round_}: {kinds}"
        assert len([1 for chat, _, _ in harness.channel.sent[sent:] if chat == lan.id]) == 1
        loser = second if kinds == ["acknowledged"] else first
        assert "vừa được đồng chí khác xử lý" in render(loser), f"round {round_}: {render(loser)}"


async def test_a_citizen_reopening_while_a_cadre_resolves_one_wins(harness, store, clock):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    user = await store.users.find("test", lan.id)
    reason = "Đường vẫn còn sụt, chưa ai đến sửa"
    for round_ in range(20):
        case = await add_case(store, clock(), user.id, user.locality_id)
        await binh.choose(f"1:cs:{case.id}")
        await turns(binh, [("[Trả lời]", []), ("Đã sửa xong.", []), ("[Gửi]", ["đã trả lời"])])
        await lan.choose(f"1:trk:{case.id}")
        await turns(lan, [("[Mở lại]", ["vì sao chưa hài lòng"])])
        reopened, resolved = await asyncio.gather(lan.say(reason), binh.click("Giải quyết xong"))
        kinds = [e.kind for e in await store.cases.events(case.id, internal=True) if e.kind in ("reopened", "resolved")]
        assert len(kinds) == 1, f"round {round_}: {kinds}"
        if kinds == ["resolved"]:
            assert "vừa được cán bộ cập nhật" in render(reopened) and reason in render(reopened), round_
        else:
            assert "vừa được đồng chí khác xử lý" in render(resolved), round_


async def test_a_button_pressed_on_a_card_the_citizen_changed_since_is_not_taken(harness, store, clock):
    """Not at the same instant: the citizen has reopened the case (with a reason the cadre has not seen) before
    the cadre presses "resolved" on the card shown earlier. The case stays reopened and the cadre is told."""
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    user = await store.users.find("test", lan.id)
    case = await add_case(store, clock(), user.id, user.locality_id)
    await binh.choose(f"1:cs:{case.id}")
    await turns(binh, [("[Trả lời]", []), ("Đã sửa xong.", []), ("[Gửi]", ["đã trả lời"])])
    resolve = binh.option("Giải quyết xong")
    await lan.choose(f"1:trk:{case.id}")
    await turns(lan, [("[Mở lại]", ["vì sao chưa hài lòng"]),
                      ("Đường vẫn còn sụt, chưa ai đến sửa", ["mở lại"])])
    told = render(await binh.choose(resolve))  # on Zalo, a number the cadre typed from the card above
    assert "vừa được đồng chí khác xử lý (hiện: đang xử lý)" in told, told
    assert (await store.cases.get(case.id)).status == "in_progress"
    assert "resolved" not in [e.kind for e in await store.cases.events(case.id, internal=True)]
