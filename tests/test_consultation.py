"""Consultations in chat: reading section by section, commenting (a paragraph, anonymously), consent before the
first comment and never before reading, coming back and changing comments, staff handling within scope, and
the outcome told when the consultation closes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.base import split_text
from bot.consultation_file import read
from storage.broadcasts import Audience
from storage.consultations import Draft, Paragraph
from tests.dialog import ONBOARD, turns

pytestmark = pytest.mark.backends

SAMPLE = Path(__file__).parent.parent / "messages" / "samples" / "quy-uoc-thon-long-hung.md"


async def consultation(store, clock, code="QU-LONGHUNG", days=14):
    saved = await store.consultations.save(code, read(SAMPLE), clock(), clock() + timedelta(days=days), Audience(),
                                           clock())
    assert await store.consultations.publish(saved.id, None, clock())
    return saved


async def staff(harness, store, user_id, role, commune=None, name="Cán bộ Bình"):
    p = harness.person(user_id, name=name)
    await p.say("/huongdan")
    user = await store.users.find("test", user_id)
    await store.users.update(user.id, harness.clock(), role=role, unit_name="Ban Dân vận", display_name=name)
    if commune:
        place = (await store.localities.search(commune, level=1))[0]
        await store.roles.set_scope(user.id, {place.id}, set())
    return p


READ_AND_COMMENT = [
    ("/gopyvankien", ["Dự thảo Quy ước thôn Long Hưng", "Mục 1. Những quy định chung", "Mục 5.", "đến 10/12/2026",
                      "!nhạy cảm"]),
    ("[Mục 1.]", ["Mục 1/5. Những quy định chung", "<b>(1)</b> Quy ước này áp dụng", "<b>(3)</b>", "Đồng ý",
                  "Có ý kiến", "Bỏ qua", "Mục sau", "!nhạy cảm"]),
    ("[Đồng ý]", ["dữ liệu cá nhân nhạy cảm", "Không, tôi chỉ đọc"]),  # agreeing is an opinion too
    ("[Đồng ý]", ["đồng ý với mục 1", "Mục 2/5. Giữ gìn vệ sinh", "<b>(4)</b> Hộ nào vi phạm"]),
    ("[Có ý kiến]", ["viết ý kiến về <b>Mục 2. Giữ gìn vệ sinh môi trường, cảnh quan</b>", "4 đoạn"]),
    ("đoạn 9: đề nghị bỏ", ["không có đoạn 9", "1, 2, 3, 4", "«đề nghị bỏ»"]),  # what was typed comes back
    ("đoạn 4: Đề nghị không nêu tên hộ vi phạm trên loa, chỉ nhắc nhở riêng.", ["kèm tên hay ẩn danh"]),
    ("[Ẩn danh]", ["đã góp ý cho mục 2 (Ẩn danh)", "Thêm ý kiến", "Mục sau"]),
    ("[Mục sau]", ["Mục 3/5. Việc cưới, việc tang"]),
    ("[Bỏ qua]", ["bỏ qua mục 3", "Mục 4/5"]),
]


async def test_reading_then_commenting_on_a_paragraph_anonymously(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT)
    user = await store.users.find("test", "1001")
    [comment] = await store.consultations.comments_of(1, user.id)
    assert (comment.position, comment.paragraph, comment.anonymous) == (2, 4, True)
    assert comment.text == "Đề nghị không nêu tên hộ vi phạm trên loa, chỉ nhắc nhở riêng."
    assert (await store.localities.get(comment.commune_id)).name == "Hải Lăng"  # the commune, not the village
    assert await store.consultations.answers_of(1, user.id) == {1: "agree", 2: "comment", 3: "skip"}
    assert (await store.users.consents(user.id))["sensitive"].granted


async def test_reading_asks_no_consent_and_declining_keeps_reading(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()  # never started: reads from the invitation's link
    await turns(p, [
        ("/start v_QU-LONGHUNG", ["Dự thảo Quy ước thôn Long Hưng", "Mục 3.", "!Mục đích 1/2", "!nhạy cảm"]),
        ("[Mục 3.]", ["Mục 3/5. Việc cưới", "không mở loa đài quá 22 giờ", "!nhạy cảm"]),
        ("[Mục sau]", ["Mục 4/5"]),
        ("[Có ý kiến]", ["cần đồng ý cho bot lưu nội dung", "Gửi góp ý, phản ánh"]),
        ("[Không, tôi chỉ đọc]", ["vẫn đọc được toàn bộ dự thảo", "Mục 4/5"]),
    ])
    user = await store.users.find("test", "1001")
    assert await store.consultations.progress(1, user.id) is None  # nothing kept before a purpose is accepted
    await turns(p, [
        ("[Đồng ý]", ["cần đồng ý cho bot lưu nội dung"]),
        ("[Đồng ý]", ["dữ liệu cá nhân nhạy cảm"]),
        ("[Đồng ý]", ["đồng ý với mục 4", "Mục 5/5"]),
        ("[Có ý kiến]", ["viết ý kiến về <b>Mục 5."]),
        ("Đề nghị cấm karaoke sau 22 giờ tối", ["kèm tên hay ẩn danh"]),
        ("[Gửi kèm tên]", ["đã góp ý cho mục 5 (Gửi kèm tên)"]),
    ])
    assert await store.consultations.progress(1, user.id) == 5
    user = await store.users.find("test", "1001")
    consents = await store.users.consents(user.id)
    assert consents["opinions"].granted and consents["sensitive"].granted and "news" not in consents
    [comment] = await store.consultations.comments_of(1, user.id)
    assert comment.commune_id is None and not comment.anonymous and comment.paragraph is None


async def test_coming_back_reading_and_changing_my_comments(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:8])
    await turns(p, [
        ("/huy", []),
        ("góp ý văn kiện", ["✅ Mục 1.", "💬 Mục 2.", "▫️ Mục 3.", "Đọc tiếp từ mục 2", "Ý kiến của tôi (1)"]),
        ("[Ý kiến của tôi]", ["Mục 2, đoạn 4 (Ẩn danh)", "Đề nghị không nêu tên"]),
        ("[Xem, sửa ý kiến 1]", ["Đề nghị không nêu tên hộ vi phạm", "Sửa", "Xóa"]),
        ("[Sửa]", ["Ý kiến trước đây của Ông/Bà", "Đề nghị không nêu tên"]),
        ("đoạn 3: Đề nghị cho phép nuôi gà thả vườn có rào.", ["kèm tên hay ẩn danh"]),
        ("[Gửi kèm tên]", ["đã góp ý cho mục 2 (Gửi kèm tên)"]),
        ("[Mục lục]", ["💬 Mục 2."]),
        ("[Ý kiến của tôi]", ["Mục 2, đoạn 3 (Gửi kèm tên)", "nuôi gà thả vườn", "!không nêu tên"]),
        ("[Xem, sửa ý kiến 1]", []),
        ("[Xóa]", ["Đã xóa ý kiến", "chưa có ý kiến nào"]),
    ])
    user = await store.users.find("test", "1001")
    assert await store.consultations.comments_of(1, user.id) == []
    assert (await store.consultations.answers_of(1, user.id)) == {1: "agree"}


async def test_after_closing_comments_can_be_read_not_written_or_changed(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:8])
    clock.advance(days=15)
    await turns(p, [
        ("/gopyvankien", ["không có dự thảo nào đang lấy ý kiến"]),
        ("/start v_QU-LONGHUNG", ["Đã hết thời hạn góp ý", "Ý kiến của tôi (1)"]),
        ("[Mục 2.]", ["Mục 2/5", "Mục sau", "!Có ý kiến"]),
        ("[Mục lục]", []),
        ("[Ý kiến của tôi]", []),
        ("[Xem, sửa ý kiến 1]", ["Đề nghị không nêu tên", "!Sửa", "!Xóa"]),
    ])


async def test_staff_see_their_scope_mark_outcomes_and_commenters_are_told_on_closing(harness, store, clock):
    await consultation(store, clock)
    citizen = harness.person()
    await turns(citizen, ONBOARD)
    await turns(citizen, READ_AND_COMMENT[:8])
    elsewhere = await staff(harness, store, "8002", "cadre", commune="Đông Hà")
    await turns(elsewhere, [("/vankien", ["Mục 2. Giữ gìn vệ sinh", "👍 0 · ✍️ 0 (0 chưa xử lý)"]),
                            ("[Mục 2.]", ["0 ý kiến", "!không nêu tên"])])
    # A forged button for the comment is refused and audited.
    await elsewhere.choose("1:vks.list:o:1")
    assert "chỉ dành cho cán bộ" in elsewhere.text()
    cadre = await staff(harness, store, "8001", "cadre", commune="Hải Lăng")
    await turns(cadre, [
        ("/vankien", ["Mục 1. Những quy định chung: 👍 1",
                      "Mục 2. Giữ gìn vệ sinh môi trường, cảnh quan: 👍 0 · ✍️ 1 (1 chưa xử lý)",
                      "!Báo cáo tổng hợp", "!Kết thúc"]),
        ("[Mục 2.]", ["1 ý kiến", "Mục 2, đoạn 4", "xã Hải Lăng", "Ẩn danh", "Chưa xử lý", "!Nguyễn Thị Lan"]),
        ("[Xử lý ý kiến #1]", ["Tiếp thu", "Giải trình", "Không tiếp thu"]),
        ("[Giải trình]", ["nội dung giải trình"]),
        ("ok", ["từ 5 đến 500"]),
        ("Nêu tên trên loa chỉ khi tái phạm nhiều lần, theo biểu quyết của hội nghị thôn.", ["#1: Giải trình"]),
    ])
    comment = await store.consultations.comment(1)
    assert comment.outcome == "explained" and comment.explanation.startswith("Nêu tên trên loa")
    admin = await staff(harness, store, "9000", "admin", name="Quản trị")
    await turns(admin, [
        ("/vankien", ["Báo cáo tổng hợp ý kiến góp ý", "Kết thúc và công bố"]),
        ("[Kết thúc và công bố]", ["Kết thúc lấy ý kiến", "Còn 0 ý kiến chưa xử lý"]),
        ("[Kết thúc và báo kết quả]", ["báo kết quả cho 1 người góp ý", "đã kết thúc"]),
    ])
    told = [r.text for chat, r, _ in harness.channel.sent if chat == "1001" and "Kết quả xử lý" in r.text]
    assert len(told) == 1 and "giải trình 1" in told[0] and "tiếp thu 0" in told[0]
    await turns(citizen, [("/start v_QU-LONGHUNG", []), ("[Ý kiến của tôi]", ["Giải trình"]),
                          ("[Xem, sửa ý kiến 1]", ["Giải trình: Nêu tên trên loa"])])


async def test_the_admin_button_sends_the_report_and_the_workbook(harness, store, clock):
    await consultation(store, clock)
    citizen = harness.person()
    await turns(citizen, ONBOARD)
    await turns(citizen, READ_AND_COMMENT[:8])
    admin = await staff(harness, store, "9000", "admin", name="Quản trị")
    await turns(admin, [("/vankien", []), ("[Báo cáo tổng hợp ý kiến góp ý]", ["Báo cáo tổng hợp ý kiến góp ý"])])
    documents = [r.document.filename for r in admin.last if r.document]
    assert documents == ["bao-cao-QU-LONGHUNG.docx", "y-kien-QU-LONGHUNG.xlsx"]
    cadre = await staff(harness, store, "8001", "cadre", commune="Hải Lăng")
    await turns(cadre, [("/vankien", ["!Báo cáo tổng hợp"])])
    await cadre.choose("1:vks.over:r")
    assert "chỉ dành cho cán bộ" in cadre.text() and not any(r.document for r in cadre.last)


async def test_my_data_holds_my_comments_and_erasure_deletes_them(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:8])
    await p.say("/dulieu")
    assert "Góp ý văn kiện" in p.last[0].text and "• Ông/Bà đã gửi 1 ý kiến" in p.last[0].text
    [export] = [json.loads(r.document.content) for r in p.last if r.document]
    [comment] = export["consultations"]["comments"]
    assert comment["consultation"] == "QU-LONGHUNG" and comment["paragraph"] == 4 and comment["anonymous"]
    assert {a["answer"] for a in export["consultations"]["answers"]} == {"agree", "comment"}
    assert [r["consultation"] for r in export["consultations"]["reading"]] == ["QU-LONGHUNG"]
    user = await store.users.find("test", p.id)
    await turns(p, [("/xoadulieu", []), ("[Xóa]", [])])
    assert await store.consultations.comments(1) == []
    assert await store.consultations.stances(1) == {}
    assert await store.consultations.progress_by_user(user.id) == []


async def test_a_long_section_is_shown_whole_in_parts_at_the_channel_limit(harness, store, clock):
    paragraphs = (Paragraph(1, "Một " * 900 + "HẾT1"), Paragraph(2, "Hai " * 900 + "HẾT2"))
    long = Draft("Dự thảo dài", (("Mục rất dài", paragraphs),))
    saved = await store.consultations.save("DAI", long, clock(), clock() + timedelta(days=3), Audience(), clock())
    await store.consultations.publish(saved.id, None, clock())
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, [("/gopyvankien", ["Mục 1. Mục rất dài"])])
    await turns(p, [("[Mục 1.]", ["HẾT1", "HẾT2", "Đồng ý"])])  # whole, nothing cut
    # The channel sends it in parts at its limit (bot/channels/base.py), each part within it.
    [section] = [r.text for r in p.last if "HẾT1" in r.text]
    limit = harness.channel.capabilities.max_text
    parts = split_text(section, limit)
    assert len(parts) >= 2 and all(len(part) <= limit for part in parts)
    assert "HẾT2" in parts[-1]
    await turns(p, [("[Đồng ý]", ["nhạy cảm"]), ("[Đồng ý]", ["đọc đến mục cuối"])])


async def test_the_demo_shows_the_sample_open_with_comments(harness, store, clock):
    from bot.demo import seed_demo

    await seed_demo(store, clock())
    await seed_demo(store, clock())  # idempotent
    demo = await store.consultations.by_code("QU-LONGHUNG")
    assert demo.accepts(clock()) and len(await store.consultations.sections(demo.id)) == 5
    comments = await store.consultations.comments(demo.id)
    assert len(comments) == 4 and sum(c.anonymous for c in comments) == 1
    for comment in comments:  # each commenter accepted the sensitive purpose
        assert (await store.users.consents(comment.user_id))["sensitive"].granted
    assert (await store.consultations.stances(demo.id))[1]["agree"] == 2
    p = harness.person()
    await turns(p, [("/gopyvankien", ["Dự thảo Quy ước thôn Long Hưng", "Mục 5."])])


async def test_two_cadres_marking_one_comment_the_second_is_told_and_a_changed_comment_is_not_marked(harness, store,
                                                                                                      clock):
    await consultation(store, clock)
    citizen = harness.person()
    await turns(citizen, ONBOARD)
    await turns(citizen, READ_AND_COMMENT[:8])
    first = await staff(harness, store, "8001", "cadre", commune="Hải Lăng")
    second = await staff(harness, store, "9000", "admin", name="Quản trị")
    for cadre in (first, second):
        await turns(cadre, [("/vankien", []), ("[Mục 2.]", []), ("[Xử lý ý kiến #1]", ["Tiếp thu"])])
    await turns(first, [("[Tiếp thu]", ["#1: Tiếp thu"])])
    await turns(second, [("[Không tiếp thu]", ["vừa được đồng chí khác xử lý", "Tiếp thu"])])  # shown as it is now
    assert (await store.consultations.comment(1)).outcome == "accepted"
    # The author rewrites it while a cadre has it open: the mark of the old text is refused.
    await turns(second, [("[Không tiếp thu]", [])])
    assert (await store.consultations.comment(1)).outcome == "rejected"
    await turns(first, [("[Xử lý ý kiến #1]", ["Không tiếp thu"])])
    clock.advance(minutes=5)
    await turns(citizen, [("/gopyvankien", []), ("[Ý kiến của tôi]", []), ("[Xem, sửa ý kiến 1]", []), ("[Sửa]", []),
                          ("đoạn 4: Đề nghị chỉ nêu tên khi tái phạm lần thứ ba.", []), ("[Ẩn danh]", [])])
    assert (await store.consultations.comment(1)).outcome is None  # a handling of the earlier text is void
    await turns(first, [("[Tiếp thu]", ["hoặc người góp ý vừa sửa", "tái phạm lần thứ ba"])])
    assert (await store.consultations.comment(1)).outcome is None


async def test_a_link_to_no_consultation_says_so_and_starts_as_usual(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, [("/start v_KHONG-CO", ["không hợp lệ", "Kính chào", "Mục đích 1/2"])])
    draft = await store.consultations.save("NHAP", read(SAMPLE), clock(), clock() + timedelta(days=3), Audience(),
                                           clock())
    assert draft.status == "draft"  # not published: not readable
    await turns(p, [("/start v_NHAP", ["không hợp lệ", "!Dự thảo Quy ước"])])


async def test_linking_accounts_moves_what_was_said_only_to_an_account_with_the_sensitive_consent(store, clock):
    saved = await consultation(store, clock)
    sections = {s.position: s.id for s in await store.consultations.sections(saved.id)}

    async def person(channel, external_id, sensitive):
        user = await store.users.ensure(channel, external_id, external_id, "Lan", "vi", clock())
        await store.users.update(user.id, clock(), onboarded=1)
        if sensitive:
            await store.users.record_consent(user.id, "sensitive", True, "vi-test", clock())
        return user.id

    async def link(keep, move, channel):
        code = await store.links.new_code(keep, clock(), timedelta(minutes=10))
        await store.links.redeem(code, move, channel, clock(), timedelta(hours=1))

    kept, moved = await person("telegram", "t1", True), await person("zalo", "z1", True)
    await store.consultations.answer(sections[1], kept, "agree", clock())
    await store.consultations.answer(sections[1], moved, "skip", clock())
    await store.consultations.answer(sections[2], moved, "agree", clock())
    await store.consultations.add_comment(sections[3], moved, 1, "Đề nghị tổ chức lễ hội gọn nhẹ", False, "zalo", None,
                                          clock())
    await store.consultations.set_progress(saved.id, moved, 3, clock())
    await link(kept, moved, "zalo")
    assert [c.text for c in await store.consultations.comments_of(saved.id, kept)] == ["Đề nghị tổ chức lễ hội gọn nhẹ"]
    assert await store.consultations.answers_of(saved.id, kept) == {1: "agree", 2: "agree", 3: "comment"}
    assert await store.consultations.progress(saved.id, kept) == 3
    assert await store.consultations.answers_of(saved.id, moved) == {}

    without, other = await person("telegram", "t2", False), await person("zalo", "z2", True)
    await store.consultations.add_comment(sections[4], other, None, "Đề nghị giữ 22 giờ", True, "zalo", None, clock())
    await link(without, other, "zalo")
    assert await store.consultations.comments_of(saved.id, without) == []
    assert len(await store.consultations.comments_of(saved.id, other)) == 1


async def test_an_admin_publishes_a_loaded_draft_from_the_chat_and_only_an_admin(harness, store, clock):
    draft = await store.consultations.save("QU-LONGHUNG", read(SAMPLE), clock(), clock() + timedelta(days=14),
                                           Audience(), clock())
    cadre = await staff(harness, store, "8001", "cadre", commune="Hải Lăng")
    await turns(cadre, [("/vankien", ["Chưa có dự thảo nào", "!Bản nháp"])])
    await cadre.choose(f"1:vkd:{draft.id}")
    assert "chỉ dành cho" in cadre.text()
    admin = await staff(harness, store, "9000", "admin", name="Quản trị")
    other = await staff(harness, store, "9001", "admin", name="Quản trị hai")
    await turns(other, [("/vankien", ["Bản nháp: Dự thảo Quy ước thôn Long Hưng"]), ("[Bản nháp]", ["Gửi lời mời"])])
    await turns(admin, [
        ("/vankien", ["Bản nháp: Dự thảo Quy ước thôn Long Hưng"]),
        ("[Bản nháp]", ["Mục 1. Những quy định chung (", "Mục 5.", "đến 10/12/2026", "người nhận tin", "Gửi lời mời"]),
        ("[Gửi lời mời]", ["Đã mở lấy ý kiến <b>Dự thảo Quy ước thôn Long Hưng", "thông báo #1",
                           "start=v_QU-LONGHUNG", "(sửa đổi năm 2026)</b> — đang lấy ý kiến"]),
    ])
    published = await store.consultations.get(draft.id)
    broadcast = await store.broadcasts.get(published.broadcast_id)
    assert published.status == "open" and "Lấy ý kiến dự thảo" in broadcast.text_vi
    assert broadcast.created_by == (await store.users.find("test", "9000")).id  # the report comes back to them
    await turns(other, [("[Gửi lời mời]", ["đã được công bố rồi"])])  # the same draft, a second time: not sent
    assert [b.id for b in await store.broadcasts.recent() if b.status != "cancelled"] == [broadcast.id]
    demoted = await store.users.find("test", "9001")
    await store.consultations.save("QU-KHAC", read(SAMPLE), clock(), clock() + timedelta(days=14), Audience(), clock())
    await turns(other, [("/vankien", []), ("[Bản nháp]", ["Gửi lời mời"])])
    await store.users.update(demoted.id, clock(), role="cadre")  # the role is checked where the invitation is sent
    await turns(other, [("[Gửi lời mời]", ["chỉ dành cho"])])
    assert (await store.consultations.by_code("QU-KHAC")).status == "draft"


async def test_a_comment_over_several_lines_is_one_line_in_the_lists_and_whole_when_opened(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:5])
    await turns(p, [("Dòng một của ý kiến.\nDòng hai của ý kiến.", ["kèm tên hay ẩn danh"]), ("[Gửi kèm tên]", []),
                    ("[Mục lục]", []),
                    ("[Ý kiến của tôi]", ["«Dòng một của ý kiến. Dòng hai của ý kiến.»"]),
                    ("[Xem, sửa ý kiến 1]", ["«Dòng một của ý kiến.\nDòng hai của ý kiến.»"])])
    cadre = await staff(harness, store, "8001", "cadre", commune="Hải Lăng")
    await turns(cadre, [("/vankien", []), ("[Mục 2.]", ["«Dòng một của ý kiến. Dòng hai của ý kiến.»"])])


async def test_a_comment_too_long_comes_back_to_be_shortened(harness, store, clock):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:5])
    long = "Đề nghị giữ nguyên đoạn này, " * 110  # 3,190 characters
    await turns(p, [(long, ["cần dài từ 5 đến 3000 ký tự (hiện có 3189)", "để rút gọn rồi gửi lại",
                            "«Đề nghị giữ nguyên đoạn này, Đề nghị", "viết ý kiến về"])])
    assert await store.consultations.comments(1) == []
