"""Staff work on one case card: each action updates it where the channel can edit, a short message where it
cannot; what reaches the citizen is previewed and confirmed first."""

from __future__ import annotations

from datetime import timedelta

from tests.dialog import render, turns
from tests.images import jpeg
from tests.schedule_kit import add_case
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


async def test_changing_a_previewed_answer_keeps_the_draft_in_view(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await report_with_photo(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", []), ("[Trả lời]", []),
                       ("Xã se sua duong trong tuan", ["Xem trước"]),
                       ("[Sửa]", ["Gõ nội dung trả lời", "Xã se sua duong trong tuan"])])
    # Where the preview is edited into the question, the question carries the draft; elsewhere the preview stays.
    assert any("Xã se sua duong trong tuan" in r.text for r in harness.channel.screen(binh.id)[-2:])
    await turns(binh, [("x" * 3001, ["Xã se sua duong trong tuan"]),  # asked again: the draft still shown
                       ("Xã sẽ sửa đường trong tuần.", ["«Xã sẽ sửa đường trong tuần.»", "!tuan"])])


async def test_a_decline_is_previewed_too(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await report_with_photo(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", []), ("[Không thuộc thẩm quyền]", []),
                       ("Việc này do Công ty điện lực xử lý", ["Xem trước", "Lý do: Việc này do Công ty điện lực"])])
    assert (await store.cases.get(case.id)).status == "new"
    await turns(binh, [("[Gửi]", ["không thuộc thẩm quyền"])])
    assert (await store.cases.get(case.id)).status == "declined"


LONG = ("Đường bê tông liên thôn 3 bị sụt lún một đoạn dài sau đợt mưa lũ vừa qua, xe máy và xe đạp của học sinh đi "
        "lại rất nguy hiểm, đề nghị xã sớm kiểm tra và sửa chữa.")


async def test_lists_say_what_a_case_is_about_and_which_are_overdue(harness, store, clock):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    user = await store.users.find("test", lan.id)
    late = await add_case(store, clock() - timedelta(days=20), user.id, user.locality_id, content=LONG,
                          due=clock() - timedelta(days=6))
    await add_case(store, clock(), user.id, user.locality_id, topic="do-thi-van-minh",
                   content="Đề nghị lắp đèn chiếu sáng ở đường Lê Duẩn")
    listed = await binh.say("/hopthu")
    text = render(listed)
    assert "Xây dựng nông thôn mới" in text and "Đô thị văn minh" in text and "quá hạn" in text
    assert "Đường bê tông liên" in text and "Đề nghị lắp đèn" in text
    cases = [label for label in binh.labels() if "-26-" in label]
    assert len(cases) == 2
    if binh.buttons:  # a button a phone shows whole; a cut excerpt says it is cut
        assert all(len(label) <= 40 for label in cases), cases
        assert any(label.endswith("…") and "Đường bê tông" in label for label in cases), cases
    else:
        assert any("quá hạn" in label and "Đường bê tông" in label and "…" in label for label in cases), cases
    await turns(binh, [(f"[{late.code}]", ["quá hạn"])])
    await turns(lan, [("/theodoi", ["Xây dựng nông thôn mới", "Đô thị văn minh"])])
    assert any("Đường bê tông" in label and late.code in label for label in lan.labels())


async def test_digest_case_lines_say_topic_excerpt_and_overdue(store, clock):
    from handlers.base import Settings
    from handlers.digest import compose
    from tests.schedule_kit import citizen as a_citizen
    from tests.schedule_kit import staff

    now = clock()
    staff_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    lan = await a_citizen(store, now)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    await add_case(store, now - timedelta(days=3), lan, hai_lang.id, content=LONG, due=now - timedelta(days=1))
    digest = await compose(store, Settings(), await store.users.get(staff_id), now - timedelta(days=7), now, now,
                           weekly=False)
    text = digest.replies[0].text
    line = text.split("Cần chú ý:")[1]
    assert "Xây dựng nông thôn mới" in line and "quá hạn" in line and "«Đường bê tông" in line and "…»" in line
    assert all(len(piece) <= 70 for piece in line.split("\n")), line
