"""Typing instead of pressing (a channel without buttons, as Zalo): keywords, numbers and labels typed, the way out
of a flow said at every step; and, on every channel, the words of a free-text answer kept as they were written."""

from __future__ import annotations

import pytest

from tests.dialog import ONBOARD, TEXT_ONLY, Harness, RecordingChannel, turns
from tests.test_cases import REPORT, citizen

pytestmark = pytest.mark.backends

LEAVE = "Gõ «hủy» để dừng."


@pytest.fixture
def zalo(store, clock) -> Harness:
    return Harness(store, clock, RecordingChannel(capabilities=TEXT_ONLY))


async def test_a_report_that_begins_with_a_keyword_stays_the_report_and_only_huy_leaves(harness, store):
    p = await citizen(harness)
    await turns(p, [*REPORT[:3],
                    ("góp ý: đường bê tông thôn 3 bị sụt lún sau mưa lũ", ["Đã nhận nội dung", "!lĩnh vực nào"]),
                    ("menu", ["từ 5 đến 3000", "!Ông/Bà có thể chọn"]),
                    ("hủy", ["Đã hủy"])])
    assert await store.conversations.get("test", p.id) is None
    draft = await store.cases.draft((await store.users.find("test", p.id)).id)
    assert draft["content"].startswith("góp ý: đường bê tông thôn 3")


async def test_every_step_of_a_flow_says_how_to_leave_it(zalo, store):
    p = await citizen(zalo)
    await turns(p, [("/phananh", ["lĩnh vực nào", "1. Xây dựng nông thôn mới", "gõ «hủy» để dừng"]),
                    ("1", ["về địa bàn xã Hải Lăng"]),
                    ("[Đúng]", ["mô tả sự việc", LEAVE]),
                    ("Đường bê tông thôn 3 bị sụt lún sau mưa lũ.", ["Đã nhận nội dung"]),
                    ("huy", ["Đã hủy", f"!{LEAVE}"])])
    assert await store.conversations.get("test", p.id) is None


async def test_the_prompt_of_a_free_text_step_says_nothing_of_huy_where_buttons_are(harness):
    p = await citizen(harness)
    await turns(p, [*REPORT[:2], ("[Đúng]", ["mô tả sự việc", f"!{LEAVE}" if p.buttons else LEAVE])])


async def test_a_number_not_in_the_list_is_told_and_the_list_shown_again(zalo):
    p = await citizen(zalo)
    await turns(p, REPORT[:4])
    assert p.labels() == ["Tiếp tục »"]
    await turns(p, [("2", ["Số này không có trong danh sách", "Nội dung hiện có", "1. Tiếp tục »"]),
                    ("1", ["gửi kèm tên hay gửi ẩn danh"])])


async def test_a_label_typed_without_diacritics_is_that_option(zalo, store):
    p = zalo.person()
    await turns(p, [("/start", ["Mục đích 1/2", "1. Đồng ý", "2. Không đồng ý"]),
                    ("KHONG DONG Y", ["Đã ghi nhận", "Mục đích 2/2"])])
    await turns(p, [("Dong y.", ["xã, phường nào"]), ("hai lang", ["Tìm thấy"]), ("xa hai lang", ["thôn, tổ dân phố"])])
    consents = await store.users.consents((await store.users.find("test", p.id)).id)
    assert sorted(c.granted for c in consents.values()) == [False, True]


@pytest.mark.parametrize("typed", ["menu", "0", "Danh mục"])
async def test_menu_or_zero_outside_a_flow_shows_the_main_menu_as_a_numbered_list(zalo, typed):
    p = zalo.person()
    await turns(p, ONBOARD)
    await turns(p, [(typed, ["Ông/Bà có thể chọn", "1. 💬 Gửi góp ý", "2. 📣 Phản ánh, kiến nghị", "trả lời bằng số"]),
                    ("2", ["lĩnh vực nào"])])
