"""Opinions and cases: both citizen flows, every cadre action, anonymity, scope, deadlines, failures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.base import Media
from handlers.images import normalise
from handlers.workdays import add_working_days, is_working_day, working_days_between
from storage.clock import parse
from tests.dialog import ONBOARD, render, turns
from tests.images import jpeg
from tests.schedule_kit import add_case

pytestmark = pytest.mark.backends

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PHOTO = jpeg()


async def citizen(harness, user_id="1001", name="Nguyễn Thị Lan"):
    p = harness.person(user_id, name=name)
    await turns(p, ONBOARD)
    return p


async def cadre_of(harness, store, commune_name: str, user_id="8001", unit="Ban Dân vận xã Hải Lăng",
                   topics: set[int] | None = None):
    p = harness.person(user_id, name="Cán bộ Bình")
    await p.say("/huongdan")
    user = await store.users.find("test", user_id)
    commune = (await store.localities.search(commune_name, level=1))[0]
    # As an invite would have made them: staff, named
    await store.users.update(user.id, harness.clock(), role="cadre", unit_name=unit, display_name="Cán bộ Bình")
    await store.roles.set_scope(user.id, {commune.id}, topics or set())
    return p


REPORT = [
    ("/phananh", ["lĩnh vực nào"]),
    ("[Xây dựng nông thôn mới]", ["về địa bàn xã Hải Lăng"]),
    ("[Đúng]", ["mô tả sự việc"]),
    ("Đường bê tông thôn 3 bị sụt lún sau mưa lũ, xe máy đi lại rất nguy hiểm.", ["Đã nhận nội dung", "Tiếp tục"]),
    ("[Tiếp tục]", ["gửi kèm tên hay gửi ẩn danh"]),
    ("[Gửi kèm tên]", ["khẩn cấp"]),
    ("[Không khẩn cấp]", ["xem lại trước khi gửi", "Đường bê tông", "Gửi kèm tên"]),
    ("[Gửi]", ["đã được tiếp nhận", "PA-26-000001", "trước ngày"]),
]


async def test_report_flow_stores_case_before_answering(harness, store):
    p = await citizen(harness)
    await turns(p, REPORT)
    case = await store.cases.by_code("PA-26-000001")
    assert case.kind == "phananh" and case.status == "new" and not case.anonymous
    assert case.content.startswith("Đường bê tông")
    assert (await store.localities.get(case.locality_id)).name == "Hải Lăng"
    # Thursday 26/11/2026 07:30 local: one working day → Friday; ten → Thursday 10/12.
    assert parse(case.ack_due).astimezone(TZ).date().isoformat() == "2026-11-27"
    assert parse(case.answer_due).astimezone(TZ).date().isoformat() == "2026-12-10"
    assert "10/12/2026" in p.text()
    assert await store.cases.draft((await store.users.find("test", "1001")).id) is None


async def test_a_file_too_large_or_not_fetched_is_refused_and_the_draft_kept(harness, store):
    p = await citizen(harness)
    await turns(p, [("/gopy", ["lĩnh vực nào"]), ("[Đô thị văn minh]", []), ("[Đúng]", ["viết nội dung góp ý"])])
    huge = Media("photo", "huge", 21 * 1024 * 1024, "image/jpeg")  # the platform says how big before fetching
    replies = await p.send(p._event("media", text="", media=huge))
    assert "quá lớn (tối đa 20 MB)" in render(replies) and "viết nội dung góp ý" in render(replies)
    lost = Media("photo", "not-on-the-server", 2048, "image/jpeg")  # the fetch fails (RecordingChannel: KeyError)
    replies = await p.send(p._event("media", text="", media=lost))
    assert "chưa tải được tệp" in render(replies)
    replies = await p.photo(PHOTO)
    assert "ảnh kèm theo: 1" in render(replies) or "viết thêm vài dòng" in render(replies)
    user = await store.users.find("test", "1001")
    draft = await store.cases.draft(user.id)
    assert [a["kind"] for a in draft["attachments"]] == ["photo"]
    assert await store.files.get(draft["attachments"][0]["sha256"]) == normalise(PHOTO)


async def test_a_report_written_in_two_messages_keeps_both(harness, store):
    p = await citizen(harness)
    await turns(p, [("/gopy", []), ("[Đô thị văn minh]", []), ("[Đúng]", ["viết nội dung góp ý"]),
                    ("Đề nghị lắp thêm đèn chiếu sáng ở đường Lê Duẩn", []),
                    ("và sửa lại vỉa hè trước chợ.", [])])
    draft = await store.cases.draft((await store.users.find("test", "1001")).id)
    assert draft["content"] == "Đề nghị lắp thêm đèn chiếu sáng ở đường Lê Duẩn\nvà sửa lại vỉa hè trước chợ."


async def test_suggestion_with_photos_location_and_anonymity(harness, store):
    p = await citizen(harness)
    await turns(p, [("/gopy", ["lĩnh vực nào"]), ("[Đô thị văn minh]", []), ("[Chọn nơi khác]", ["xã, phường nào"]),
                    ("dong ha", []), ("[phường Đông Hà]", []), ("[Bỏ qua]", ["viết nội dung góp ý"])])
    replies = await p.photo(PHOTO)
    assert "viết thêm vài dòng" in replies[0].text
    await turns(p, [("Đề nghị lắp thêm đèn chiếu sáng ở đường Lê Duẩn", ["ảnh kèm theo: 1"])])
    for _ in range(4):
        await p.photo(PHOTO + b"x")
    replies = await p.photo(PHOTO)
    assert "tối đa 5 ảnh" in replies[0].text
    await p.location(16.8163, 107.1003)
    await turns(p, [("[Tiếp tục]", []), ("[Gửi ẩn danh]", ["xem lại", "ảnh ×5", "vị trí ×1", "Gửi ẩn danh"]),
                    ("[Gửi]", ["GY-26-000001"])])
    case = await store.cases.by_code("GY-26-000001")
    assert case.anonymous and case.kind == "gopy"
    attachments = await store.cases.attachments(case.id)
    assert [a.kind for a in attachments] == ["photo"] * 5 + ["location"]
    assert await store.files.get(attachments[0].sha256) == normalise(PHOTO)


async def test_every_step_validates_and_reasks(harness):
    p = await citizen(harness)
    await turns(p, [
        ("/phananh", []),
        ("nông thôn", [p.use_options, "lĩnh vực nào"]),
        ("[Khác]", []), ("[Đúng]", []),
        ("ngắn", ["từ 5 đến 3000", "(hiện có 4)"]),
        ("x" * 3001, ["từ 5 đến 3000"]),
    ])
    replies = await p.sticker()
    assert "chưa nhận được loại tin này" in replies[0].text
    await turns(p, [("Cống thoát nước bị tắc", []), ("[Tiếp tục]", []), ("có tên", [p.use_options])])


async def test_cancel_keeps_a_draft_offered_next_time(harness, store):
    p = await citizen(harness)
    await turns(p, REPORT[:4])
    await turns(p, [("/huy", ["Đã hủy"]), ("/phananh", ["bản phản ánh, kiến nghị viết dở", "Đường bê tông"]),
                    ("[Viết tiếp]", ["Nội dung hiện có", "Đường bê tông"]),
                    ("[Tiếp tục]", ["ẩn danh"])])
    await turns(p, [("/huy", []), ("/gopy", ["viết dở"]), ("[Viết ý kiến mới]", ["lĩnh vực nào"])])
    assert (await store.cases.draft((await store.users.find("test", "1001")).id))["kind"] == "gopy"


async def test_restart_in_the_middle_of_a_case(tmp_path, clock):
    from storage import Store
    from tests.dialog import Harness

    first = await Store.open(tmp_path / "c.db")
    p = Harness(first, clock).person()
    await turns(p, ONBOARD)
    await turns(p, REPORT[:5])
    await first.close()
    second = await Store.open(tmp_path / "c.db")
    try:
        p2 = Harness(second, clock).person()
        p2.last = p.last
        await turns(p2, REPORT[5:])
        assert await second.cases.by_code("PA-26-000001") is not None
    finally:
        await second.close()


async def test_database_failing_at_confirm_tells_and_keeps_the_draft(harness, store, monkeypatch):
    p = await citizen(harness)
    await turns(p, REPORT[:7])
    send = p.option("Gửi")

    async def broken(*args, **kwargs):
        raise OSError("database is locked")

    monkeypatch.setattr(store.cases, "create", broken)
    replies = await p.choose(send)
    assert "hệ thống gặp sự cố" in replies[0].text
    assert "tiếp nhận" not in replies[0].text
    conversation = await store.conversations.get("test", "1001")
    assert conversation.step == "review" and conversation.data["content"].startswith("Đường bê tông")
    monkeypatch.undo()
    replies = await p.choose(send)
    assert "PA-26-000001" in replies[0].text


async def test_sensitive_topic_needs_sensitive_consent(harness, store):
    p = await citizen(harness)  # declined purpose 3 during onboarding
    await turns(p, [("/gopy", []), ("[Góp ý văn kiện Đại hội]", ["dữ liệu cá nhân nhạy cảm"]),
                    ("[Chọn lĩnh vực khác]", ["lĩnh vực nào"]),
                    ("[Góp ý văn kiện Đại hội]", []), ("[Đồng ý]", ["về địa bàn"])])
    user = await store.users.find("test", "1001")
    assert (await store.users.consents(user.id))["sensitive"].granted


async def test_no_opinions_consent_is_explained_and_offered(harness, store):
    p = harness.person()
    await turns(p, [("/start", []), ("[Không đồng ý]", []), ("[Không đồng ý]", [])])
    await turns(p, [("/gopy", ["cần đồng ý"]), ("[Không đồng ý]", ["chưa thể nhận"])])
    await turns(p, [("/gopy", []), ("[Đồng ý]", ["lĩnh vực nào"])])


async def test_too_many_cases_are_slowed_down(harness, store, clock):
    p = await citizen(harness)
    for n in range(5):
        await turns(p, REPORT[:7])
        await turns(p, [("[Gửi]", [f"PA-26-00000{n + 1}"])])
    await turns(p, [("/phananh", ["đã gửi 5 ý kiến trong 60 phút"])])
    clock.advance(hours=1, minutes=1)
    await turns(p, [("/phananh", ["lĩnh vực nào"])])


async def test_campaign_button_opens_the_flow_with_its_topic(harness, store):
    topic = await store.topics.by_code("dan-van-kheo")
    campaign_id = await store.campaigns.upsert("dvk-2026", "Dân vận khéo 2026", "…", topic.id)
    p = await citizen(harness)
    await p.choose(f"1:new:gopy:{campaign_id}")
    assert "về địa bàn" in p.text()
    await turns(p, [("[Đúng]", []), ("Mô hình dân vận khéo ở thôn em rất hay", []), ("[Tiếp tục]", []),
                    ("[Gửi kèm tên]", ["Dân vận khéo"]), ("[Gửi]", ["GY-26"])])
    assert await store.cases.campaign_cases(campaign_id) == 1


# ---- cadres -----------------------------------------------------------------------------------------


async def send_report(harness, store, p, urgent=False, anonymous=False):
    table = [(said, []) for said, _ in REPORT]
    if anonymous:
        table[5] = ("[Gửi ẩn danh]", [])
    if urgent:
        table[6] = ("[Khẩn cấp]", [])
    await turns(p, table[:7])
    await p.click("Gửi")
    return (await store.cases.of_user((await store.users.find("test", p.id)).id))[0][0]


async def test_cadre_answers_and_citizen_rates(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await send_report(harness, store, lan)
    await turns(binh, [
        ("/hopthu", ["Hộp thư ý kiến", "Mới (1)", case.code]),
        (f"[{case.code}]", ["Đường bê tông", "Nguyễn Thị Lan", "Đã tiếp nhận"]),
        ("[Đã tiếp nhận]", ["cán bộ đã tiếp nhận"]),
        ("[Đang xử lý]", ["đang xử lý"]),
        ("[Ghi chú]", ["ghi chú nội bộ"]),
        ("Đã báo UBND xã cử người kiểm tra", ["Đã lưu ghi chú"]),
        ("[Trả lời]", ["ký tên đơn vị"]),
        ("UBND xã sẽ sửa đoạn đường trong tuần tới. Cảm ơn Bà đã phản ánh.", ["Xem trước", "UBND xã sẽ sửa"]),
        ("[Gửi]", ["đã trả lời"]),
    ])
    notices = [r.text for chat, r, _ in harness.channel.sent if chat == "1001"]
    assert any("cán bộ đã tiếp nhận" in n for n in notices)
    answer = next(n for n in notices if "đã được trả lời" in n)
    assert "UBND xã sẽ sửa" in answer and "Ban Dân vận xã Hải Lăng" in answer and "Cán bộ Bình" not in answer
    assert not any("Đã báo UBND" in n for n in notices)  # internal notes stay internal
    await turns(lan, [
        ("/theodoi", ["Ý kiến của Ông/Bà", case.code]),
        (f"[{case.code}]", ["UBND xã sẽ sửa", "Ban Dân vận xã Hải Lăng", "!Đã báo UBND", "Hài lòng", "Mở lại"]),
        ("[Hài lòng]", ["Cảm ơn Ông/Bà đã đánh giá", "!😊 Hài lòng]"]),
    ])
    assert (await store.cases.get(case.id)).rating == "good"
    actions = [e.action for e in await store.audit.recent()]
    assert {"case.acknowledged", "case.in_progress", "case.note", "case.answered"} <= set(actions)


async def test_what_people_wrote_is_escaped_once_in_every_history(harness, store):
    """An answer or a note with & < > reads as written: the history lines are catalog output already,
    escaping them again showed "&amp;amp;" to the citizen."""
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await send_report(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", []), ("[Ghi chú]", []),
                       ("Gọi điện cho ông A & bà B <trưởng thôn>", ["Đã lưu ghi chú"]),
                       ("[« Danh sách]", []),
                       (f"[{case.code}]", ["ông A &amp; bà B &lt;trưởng thôn&gt;", "!&amp;amp;", "!&amp;lt;"]),
                       ("[Trả lời]", []), ("Xã & huyện sẽ sửa trong tuần <sớm nhất>.", []),
                       ("[Gửi]", ["đã trả lời"])])
    await turns(lan, [("/theodoi", []), (f"[{case.code}]", ["Xã &amp; huyện sẽ sửa trong tuần &lt;sớm nhất&gt;.",
                                                              "xã Hải Lăng", "!&amp;amp;", "!&amp;lt;"])])


async def test_a_case_closed_while_a_cadre_writes_is_not_answered_and_the_text_is_given_back(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    hoa = await cadre_of(harness, store, "hai lang", user_id="8002", unit="Ban Dân vận huyện")
    case = await send_report(harness, store, lan)
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", []), ("[Trả lời]", ["ký tên đơn vị"])])
    await turns(hoa, [("/hopthu", []), (f"[{case.code}]", []), ("[Không thuộc thẩm quyền]", []),
                      ("Không thuộc thẩm quyền của xã, đề nghị gửi Sở Giao thông.", []), ("[Gửi]", [])])
    assert (await store.cases.get(case.id)).status == "declined"
    await turns(binh, [("Xã sẽ sửa đường trong tuần tới.", ["chưa được lưu", "Xã sẽ sửa đường trong tuần tới.",
                                                            "không thuộc thẩm quyền"])])
    assert (await store.cases.get(case.id)).status == "declined"
    assert not [e for e in await store.cases.events(case.id, internal=True) if e.kind == "answered"]


async def test_reopen_within_seven_days_only(harness, store, clock):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    case = await send_report(harness, store, lan)
    await binh.choose(f"1:cs:{case.id}")
    await turns(binh, [("[Trả lời]", []), ("Đã sửa xong.", []), ("[Gửi]", [])])
    await turns(lan, [("/theodoi", []), (f"[{case.code}]", []), ("[Mở lại]", ["vì sao chưa hài lòng"]),
                      ("Chưa", ["từ 5 đến 1000"]), ("Đường vẫn còn sụt, chưa ai đến sửa", ["Đã mở lại"])])
    reopened = await store.cases.get(case.id)
    assert reopened.status == "in_progress"
    assert any("mở lại" in r.text for chat, r, _ in harness.channel.sent if chat == "8001")
    await binh.choose(f"1:cs:{case.id}")
    await turns(binh, [("[Trả lời]", []), ("Đã sửa lần hai.", []), ("[Gửi]", [])])
    clock.advance(days=8)
    await turns(lan, [("/theodoi", []), (f"[{case.code}]", ["!Mở lại"])])
    replies = await lan.choose("1:trk.case:reopen")
    assert lan.stale in replies[0].text


async def test_forward_decline_duplicate_resolve(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    first = await send_report(harness, store, lan)
    second = await send_report(harness, store, lan)
    third = await send_report(harness, store, lan)
    await binh.choose(f"1:cs:{second.id}")
    await turns(binh, [("[Trùng ý kiến]", ["mã ý kiến gốc"]), ("PA-99-000009", ["Không tìm thấy"]),
                       (first.code, ["trùng với ý kiến khác"])])
    await binh.choose(f"1:cs:{third.id}")
    await turns(binh, [("[Không thuộc thẩm quyền]", []), ("Việc này do Công ty điện lực xử lý", []),
                       ("[Gửi]", ["không thuộc"])])
    await binh.choose(f"1:cs:{first.id}")
    await turns(binh, [("[Chuyển]", ["đến đâu"]), ("[Lên cấp tỉnh]", ["ghi chú"]), ("[Không ghi chú]", ["Đã chuyển"])])
    moved = await store.cases.get(first.id)
    assert (await store.localities.get(moved.locality_id)).level == 0
    # The commune cadre no longer sees it; the citizen was told.
    assert "không thuộc phạm vi" in (await binh.choose(f"1:cs:{first.id}"))[0].text
    assert any("chuyển đến tỉnh Quảng Trị" in r.text for chat, r, _ in harness.channel.sent if chat == "1001")
    statuses = {c.code: c.status for c in (await store.cases.of_user(moved.user_id))[0]}
    assert statuses == {first.code: "new", second.code: "duplicate", third.code: "declined"}
    fourth = await send_report(harness, store, lan)
    await binh.choose(f"1:cs:{fourth.id}")
    await turns(binh, [("[Chuyển]", []), ("[Lên cấp tỉnh]", []), ("Đề nghị tỉnh chỉ đạo sớm", ["Đã chuyển"])])
    events = await store.cases.events(fourth.id, internal=True)
    assert [(e.kind, e.internal) for e in events if e.body and "chỉ đạo" in e.body] == [("note", True)]
    await turns(lan, [("/theodoi", []), (f"[{fourth.code}]", ["Chuyển đến tỉnh Quảng Trị", "!chỉ đạo"])])


async def test_urgent_report_is_pushed_to_the_communes_cadres_whatever_their_topics(harness, store):
    lan = await citizen(harness)
    await cadre_of(harness, store, "hai lang", "8001")
    await cadre_of(harness, store, "dong ha", "8002", unit="Ban Dân vận phường Đông Hà")
    nong_thon = await store.topics.by_code("nong-thon-moi")
    khac = await store.topics.by_code("khac")
    await cadre_of(harness, store, "hai lang", "8003", topics={khac.id})
    await cadre_of(harness, store, "hai lang", "8004", topics={nong_thon.id})
    case = await send_report(harness, store, lan, urgent=True)
    pushed = {chat for chat, r, _ in harness.channel.sent if "Phản ánh khẩn cấp" in r.text}
    assert pushed == {"8001", "8003", "8004"}  # not Đông Hà's; 8003 holds only «Khác», and still hears of it
    # ... and may open and act on it, from the notice or the inbox; it is due in one working day
    khac_only = harness.person("8003")
    await turns(khac_only, [("/hopthu", [case.code]), (f"[{case.code}]", ["KHẨN CẤP", "Hạn trả lời: 27/11/2026"])])


async def test_urgent_report_goes_up_a_level_then_to_the_admins(harness, store):
    lan = await citizen(harness)
    admin = harness.person("9001", name="Quản trị")
    await admin.say("/huongdan")
    await store.users.update((await store.users.find("test", "9001")).id, harness.clock(), role="admin")
    await send_report(harness, store, lan, urgent=True)
    assert {chat for chat, r, _ in harness.channel.sent if "Phản ánh khẩn cấp" in r.text} == {"9001"}
    khac = await store.topics.by_code("khac")
    province = await cadre_of(harness, store, "dong ha", "8005", unit="Ban Dân vận Tỉnh ủy")
    province_id = (await store.users.find("test", "8005")).id
    await store.roles.set_scope(province_id, {(await store.localities.children(None))[0].id}, {khac.id})
    sent = len(harness.channel.sent)
    case = await send_report(harness, store, lan, urgent=True)
    assert {chat for chat, r, _ in harness.channel.sent[sent:] if "Phản ánh khẩn cấp" in r.text} == {"8005"}
    assert working_days_between(parse(case.created_at), parse(case.answer_due), TZ) == 1
    await turns(province, [("/hopthu", [case.code])])


async def test_anonymous_sender_is_never_shown_to_cadres(harness, store):
    lan = await citizen(harness, name="Nguyễn Thị Lan")
    binh = await cadre_of(harness, store, "hai lang")
    case = await send_report(harness, store, lan, anonymous=True, urgent=True)
    seen_by_cadre = []
    await turns(binh, [("/hopthu", []), (f"[{case.code}]", ["ẩn danh"])])
    await turns(binh, [("[Trả lời]", []), ("Cảm ơn, xã đã xử lý.", []), ("[Gửi]", [])])
    seen_by_cadre = [r.text for chat, r, _ in harness.channel.sent if chat == "8001"]
    assert seen_by_cadre and not any("Lan" in text or "1001" in text for text in seen_by_cadre)
    from bot.exports import cases_csv

    rows = list(csv.DictReader(io.StringIO(await cases_csv(store, datetime(2026, 11, 26, tzinfo=UTC)))))
    assert rows[0]["code"] == case.code and rows[0]["sender"] == "" and "Lan" not in str(rows)
    # The citizen still got the answer.
    assert any("Cảm ơn, xã đã xử lý" in r.text for chat, r, _ in harness.channel.sent if chat == "1001")


async def test_scope_cadre_of_another_commune_cannot_list_open_or_act(harness, store):
    lan = await citizen(harness)
    other = await cadre_of(harness, store, "dong ha", "8002", unit="Ban Dân vận phường Đông Hà")
    case = await send_report(harness, store, lan)
    await turns(other, [("/hopthu", ["Mới (0)", f"!{case.code}"])])
    for data in (f"1:cs:{case.id}", f"1:inb.list:o:{case.id}", "1:inb.case:ans", "1:inb.case:res"):
        replies = await other.choose(data)
        assert any("không thuộc phạm vi" in r.text or other.stale in r.text for r in replies), data
    # Even with a forged conversation pointing at the case, every action is refused.
    from storage.conversations import Conversation

    for step, event in (("case", {"kind": "choice", "payload": "1:inb.case:res"}),
                        ("answer", {"kind": "text", "text": "Tôi trả lời thay"}),
                        ("decline", {"kind": "text", "text": "Không thuộc thẩm quyền"})):
        await store.conversations.save("test", "8002", Conversation("inb", step, {"case_id": case.id}),
                                       harness.clock())
        from handlers.base import Inbound

        replies = await harness.router.handle(Inbound("test", "8002", "8002", **event))
        assert "không thuộc phạm vi" in replies[0].text
    assert (await store.cases.get(case.id)).status == "new"
    assert len(await store.cases.events(case.id, internal=True)) == 1
    # A citizen cannot open the inbox or someone else's case either.
    hung = await citizen(harness, "1002", "Trần Văn Hùng")
    await turns(hung, [("/hopthu", ["chỉ dành cho cán bộ"])])
    assert "Không tìm thấy ý kiến này" in (await hung.choose(f"1:trk:{case.id}"))[0].text


async def test_inbox_views_and_filters(harness, store, clock):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "hai lang")
    old = await send_report(harness, store, lan)
    clock.advance(days=20)
    await send_report(harness, store, lan)
    await turns(binh, [("/hopthu", ["Quá hạn (1)", "Đang mở (2)"]), ("[Quá hạn (1)]", [old.code, "quá hạn: 1"]),
                       ("[Lọc lĩnh vực]", ["Lọc theo lĩnh vực"]), ("[Khác]", ["Mới (0)"]), ("[Bỏ lọc]", ["Mới (2)"]),
                       ("[Lọc địa bàn]", ["Chọn địa bàn"]), ("dong ha", []), ("[phường Đông Hà]", ["Mới (0)"])])


async def test_admin_sees_everything_reassigns_and_hides(harness, store):
    lan = await citizen(harness)
    binh = await cadre_of(harness, store, "dong ha", "8002", unit="Ban Dân vận phường Đông Hà")
    admin = harness.person("9000", name="Quản trị")
    await admin.say("/huongdan")
    await store.users.update((await store.users.find("test", "9000")).id, harness.clock(), role="admin")
    case = await send_report(harness, store, lan)
    photo = await store.files.put(PHOTO)
    await store.db.execute("INSERT INTO case_attachments (case_id, kind, sha256, mime, size) VALUES (?, 'photo', ?,"
                           " 'image/jpeg', ?)", (case.id, photo, len(PHOTO)))
    await turns(admin, [("/hopthu", [case.code]), (f"[{case.code}]", ["Giao cán bộ", "Ẩn nội dung"]),
                        ("[Giao cán bộ]", ["Ban Dân vận phường Đông Hà"]),
                        ("[Ban Dân vận phường Đông Hà · Cán bộ Bình]", ["Đã giao"]),
                        ("[Ẩn nội dung]", ["lý do ẩn"]), ("Nội dung có lời lẽ xúc phạm", ["Đã ẩn"])])
    # The assigned cadre now sees it (though outside their scope), with the content hidden.
    await turns(binh, [("/hopthu", [case.code]), (f"[{case.code}]", ["Nội dung đã được ẩn", "!Đường bê tông"])])
    assert not [r for r in binh.last if r.photo is not None]  # nor its photos
    await turns(admin, [("/hopthu", []), (f"[{case.code}]", ["Nội dung gốc"])])
    assert [r for r in admin.last if r.photo is not None]  # the admin still sees everything
    assert (await store.cases.get(case.id)).content.startswith("Đường bê tông")  # kept, not deleted
    replies = await binh.choose("1:inb.case:hide")
    assert any("chỉ dành cho" in r.text for r in replies)


async def test_export_csv_with_filters(harness, store):
    from bot.exports import cases_csv

    lan = await citizen(harness)
    await send_report(harness, store, lan)
    await send_report(harness, store, lan, anonymous=True)
    text = await cases_csv(store, harness.clock(), status="new")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["sender"] for r in rows] == ["Nguyễn Thị Lan", ""]
    assert rows[0]["commune"] == "Hải Lăng" and rows[0]["topic"] == "Xây dựng nông thôn mới"
    assert list(csv.DictReader(io.StringIO(await cases_csv(store, harness.clock(), status="resolved")))) == []
    formula = await add_case(store, harness.clock(), (await store.users.find("test", "1001")).id,
                             (await store.localities.search("Hải Lăng", level=1))[0].id,
                             content='=HYPERLINK("http://x.invalid","Bấm vào đây")')
    rows = list(csv.DictReader(io.StringIO(await cases_csv(store, harness.clock(), status="new"))))
    assert next(r for r in rows if r["code"] == formula.code)["content"].startswith("'=HYPERLINK")  # not a formula


# ---- the calendar -----------------------------------------------------------------------------------


def test_working_days_skip_weekends_and_tet():
    tz = TZ
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=tz)
    assert add_working_days(friday, 1, tz).date().isoformat() == "2026-11-30"  # Monday
    # Tết 2027: 04/02–10/02 are holidays (Thursday to Wednesday).
    before_tet = datetime(2027, 2, 3, 9, 0, tzinfo=tz)
    assert add_working_days(before_tet, 1, tz).date().isoformat() == "2027-02-11"
    assert not is_working_day(datetime(2027, 2, 8).date())
    assert not is_working_day(datetime(2026, 9, 2).date())  # National Day
    assert is_working_day(datetime(2026, 11, 26).date())
    assert working_days_between(before_tet, datetime(2027, 2, 12, 9, 0, tzinfo=tz), tz) == 2


def test_deadline_is_counted_in_local_time():
    # 23:30 UTC on Thursday is already Friday 06:30 in Vietnam.
    late = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    assert add_working_days(late, 1, TZ).date().isoformat() == "2026-11-30"
    assert add_working_days(late, 10, TZ) - add_working_days(late, 9, TZ) >= timedelta(days=1)


# ---- what is sent outside a flow --------------------------------------------------------------------


async def test_text_sent_outside_a_flow_is_offered_as_a_report_and_carried_into_it(harness, store):
    p = await citizen(harness)
    await turns(p, [
        ("Đèn đường thôn 2 hỏng cả tuần nay, tối đi lại rất nguy hiểm.",
         ["Ông/Bà vừa gửi", "Đèn đường thôn 2", "thành phản ánh / góp ý", "Gửi thành phản ánh", "!chọn một mục"]),
        ("[Gửi thành phản ánh]", ["lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", ["về địa bàn xã Hải Lăng"]),
        ("[Đúng]", ["Nội dung hiện có", "Đèn đường thôn 2", "Tiếp tục"]),
        ("[Tiếp tục]", ["gửi kèm tên hay gửi ẩn danh"]),
        ("[Gửi kèm tên]", ["khẩn cấp"]),
        ("[Không khẩn cấp]", ["xem lại trước khi gửi", "Đèn đường thôn 2"]),
        ("[Gửi]", ["đã được tiếp nhận", "PA-26-000001"]),
    ])
    case = await store.cases.by_code("PA-26-000001")
    assert case.content.startswith("Đèn đường thôn 2")


async def test_a_photo_sent_outside_a_flow_becomes_a_suggestion_with_it(harness, store):
    p = await citizen(harness)
    await p.photo(PHOTO)
    assert "Ông/Bà vừa gửi: «ảnh»" in p.text()
    await turns(p, [
        ("ok", [p.use_options]),  # the offer stays, with what it carries
        ("Nên làm thêm sân chơi cho trẻ em ở nhà văn hóa thôn.",
         ["Ông/Bà vừa gửi: «Nên làm thêm sân chơi cho trẻ em ở nhà văn hóa thôn., ảnh»"]),
        ("[Gửi thành góp ý]", ["lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", ["về địa bàn xã Hải Lăng"]),
        ("[Đúng]", ["Nội dung hiện có", "Nên làm thêm sân chơi", "(ảnh: 1)"]),
    ])
    await p.say("/huy")
    await turns(p, [
        ("ok", ["chọn một mục"]),  # too short to be a report: the menu, as before
        ("Cảm ơn cán bộ xã nhiều.", ["thành phản ánh / góp ý"]),
        ("[Không, mở menu]", ["Ông/Bà có thể chọn", "Theo dõi ý kiến", "!Ông/Bà vừa gửi"]),
    ])


async def test_a_location_sent_outside_a_flow_is_carried_and_words_are_asked_for(harness, store):
    p = await citizen(harness)
    await p.location(16.75, 107.19)
    assert "Ông/Bà vừa gửi: «vị trí»" in p.text()
    await turns(p, [
        ("[Gửi thành phản ánh]", ["lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", ["về địa bàn xã Hải Lăng"]),
        ("[Đúng]", ["Đã nhận vị trí. Ông/Bà vui lòng viết thêm vài dòng"]),
    ])
