"""Staff work on one case card: each action updates it where the channel can edit, a short message where it
cannot; what reaches the citizen is previewed and confirmed first."""

from __future__ import annotations

from tests.dialog import turns
from tests.images import jpeg
from tests.test_cases import REPORT, cadre_of, citizen

ANSWER = "UBND xã sẽ sửa đoạn đường trong tuần tới."


async def report_with_photo(harness, store, lan):
    await turns(lan, [(said, []) for said, _ in REPORT[:4]])
    await lan.photo(jpeg())
    await turns(lan, [("[Tiếp tục]", []), ("[Gửi kèm tên]", []), ("[Không khẩn cấp]", []), ("[Gửi]", [])])
    return (await store.cases.of_user((await store.users.find("test", lan.id)).id))[0][0]


async def test_acknowledge_and_answer_update_one_card(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await report_with_photo(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", ["Diễn biến", "Đường bê tông"])])
    opened = len(harness.channel.sent)
    await turns(binh, [("[Đã tiếp nhận]", ["Đã cập nhật", "đã tiếp nhận"]),
                       ("[Trả lời]", ["ký tên đơn vị"]), (ANSWER, ["Xem trước"]), ("[Gửi]", ["đã trả lời"])])
    after = [reply for chat, reply, _ in harness.channel.sent[opened:] if chat == binh.id]
    assert not [r for r in after if r.photo or r.document], "the photos are shown once, when the case is opened"
    screen = harness.channel.screen(binh.id)
    cards = [r for r in screen if "Diễn biến" in r.text]
    if binh.buttons:  # the card is edited in place: one card, showing where the case stands now
        assert len(cards) == 1, [r.text[:60] for r in cards]
        assert "đã trả lời" in cards[0].text and ANSWER in cards[0].text
        assert "Đã gửi" in screen[-1].text or "Đã cập nhật" in screen[-1].text
    else:  # no edits: each action answers with a short message, not the whole card again
        assert len(cards) == 1
        assert all(len(r.text) < 700 for r in after), [len(r.text) for r in after]


async def test_an_answer_is_previewed_and_only_sent_when_confirmed(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await report_with_photo(harness, store, lan)
    told = len([1 for chat, _, _ in harness.channel.sent if chat == lan.id])
    await turns(binh, [
        ("/hopthu", []), (f"[{case.code}]", []), ("[Trả lời]", []),
        ("Xã se sua duong", ["Xem trước", "Người dân sẽ nhận được", "«Xã se sua duong»", "Ban Dân vận xã Hải Lăng",
                             "Gửi", "Sửa", "Hủy"]),
        ("[Sửa]", ["Gõ nội dung trả lời"]),
        ("Xã sẽ sửa đường.", ["«Xã sẽ sửa đường.»"]),
        ("[Hủy]", ["chưa gửi gì"]),
    ])
    assert (await store.cases.get(case.id)).status == "new"
    assert len([1 for chat, _, _ in harness.channel.sent if chat == lan.id]) == told
    await turns(binh, [("[Trả lời]", []), (ANSWER, ["Xem trước"]), ("[Gửi]", ["đã trả lời"])])
    assert (await store.cases.get(case.id)).status == "answered"
    to_lan = [r.text for chat, r, _ in harness.channel.sent if chat == lan.id][told:]
    assert len(to_lan) == 1 and ANSWER in to_lan[0] and "Xã se sua" not in to_lan[0]


async def test_a_decline_is_previewed_too(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await report_with_photo(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", []), ("[Không thuộc thẩm quyền]", []),
                       ("Việc này do Công ty điện lực xử lý", ["Xem trước", "Lý do: Việc này do Công ty điện lực"])])
    assert (await store.cases.get(case.id)).status == "new"
    await turns(binh, [("[Gửi]", ["không thuộc thẩm quyền"])])
    assert (await store.cases.get(case.id)).status == "declined"
