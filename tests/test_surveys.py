"""Surveys: loaded from YAML (checked whole, problems on their line), answered in chat on both kinds of
channel, resumed, changed, turned into a report; what a person's export and erasure do with the answers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.survey_cli import check_surveys
from handlers.base import Settings
from handlers.digest import compose
from tests.dialog import ONBOARD, turns
from tests.schedule_kit import staff

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "messages/samples/ra-soat-ho-tro.yaml").read_text(encoding="utf-8")
GREEN = (ROOT / "docs/surveys/chu-nhat-xanh.yaml").read_text(encoding="utf-8")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
POLL = """\
code: cnx-gio
title_vi: Giờ ra quân Chủ nhật xanh
intro_vi: Tổ dân phố chọn giờ ra quân theo ý kiến đông nhất.
opens: 26/11/2026 07:00
closes: 06/12/2026
poll: yes
audience:
  topics: [an-sinh]
questions:
  - key: gio
    kind: single
    text_vi: Ông/Bà tham gia được vào giờ nào?
    choices:
      - {key: sang, vi: Sáng sớm}
      - {key: chieu, vi: Chiều}
      - {key: khong, vi: Không tham gia được}
"""



async def load(store, source: str = SAMPLE, now=datetime(2026, 11, 26, 0, 0, tzinfo=UTC)):
    surveys = await check_surveys(store, source, TZ)
    await store.surveys.save_all(surveys, now)
    return await store.surveys.by_code(surveys[0].code)


async def resident(harness, topic: str = "[An sinh xã hội – hỗ trợ khó khăn]", user_id: str = "1001"):
    """Someone of xã Hải Lăng who follows the topic the survey is for."""
    p = harness.person(user_id)
    await turns(p, [*ONBOARD[:6], (topic, []), ("[Xong]", ["Thông tin của Ông/Bà"])])
    return p


# ---- loading --------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "DANVAN_TZ", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    monkeypatch.setattr("bot.cli.utc_now", lambda: datetime(2026, 11, 26, 3, 0, tzinfo=UTC))
    assert main(["db", "migrate"]) == 0
    return tmp_path


def test_survey_load_saves_the_samples(cli, capsys):
    for sample in ("messages/samples/ra-soat-ho-tro.yaml", "docs/surveys/chu-nhat-xanh.yaml"):
        assert main(["survey", "load", str(ROOT / sample)]) == 0
    assert "Đã nạp 1 khảo sát: chu-nhat-xanh" in capsys.readouterr().out
    with sqlite3.connect(cli / "cli.db") as db:
        assert db.execute("SELECT code, anonymous FROM surveys ORDER BY id").fetchall() == [
            ("ra-soat-ho-tro", 1), ("chu-nhat-xanh", 0)]
        assert db.execute("SELECT action FROM audit_log WHERE action = 'survey.loaded'").fetchall()


@pytest.mark.parametrize(("change", "expected"), [
    (("kind: yesno", "kind: maybe"), "dòng 40: questions[3].kind: loại câu hỏi 'maybe' không có"),
    (("min: 1", "min: 40"), "dòng 65: questions[6]: min (40) phải nhỏ hơn max (30)"),
    (("show_if: {question: received, in: [yes]}\n    choices:\n      - {key: cash",
      "show_if: {question: received, in: [maybe]}\n    choices:\n      - {key: cash"),
     "dòng 32: questions[2].show_if: giá trị maybe không có trong câu hỏi đó (các giá trị: yes, not_yet"),
    (("key: on_time", "key: kinds"), "dòng 39: questions[3].key: mã kinds đã dùng ở trên"),
    (("closes: 10/12/2026 17:00", "closes: 20/11/2026"), "dòng 14: closes: thời điểm kết thúc phải sau"),
    (("topics: [an-sinh]", "topics: [an-sinh-2]"), "dòng 18: audience: không có lĩnh vực 'an-sinh-2'"),
    (("labels_vi: [Rất không hài lòng, ", "labels_vi: ["), "dòng 58: questions[5].labels_vi: cần đúng 5 nhãn"),
])
def test_a_bad_file_is_refused_on_its_line_and_saves_nothing(cli, capsys, change, expected):
    old, new = change
    assert old in SAMPLE
    bad = cli / "bad.yaml"
    # the good sample first, then a bad second survey: nothing of either is saved
    bad.write_text(SAMPLE.replace(old, new), encoding="utf-8")
    assert main(["survey", "load", str(bad)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    with sqlite3.connect(cli / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM surveys").fetchone() == (0,)


def test_a_file_of_several_surveys_is_saved_whole_or_not_at_all(cli, capsys):
    def indented(text: str) -> str:
        return "\n".join("    " + line for line in text.splitlines())

    both = cli / "both.yaml"
    broken = GREEN.replace("kind: locality", "kind: place")
    both.write_text(f"surveys:\n  -\n{indented(SAMPLE)}\n  -\n{indented(broken)}\n", encoding="utf-8")
    assert main(["survey", "load", str(both)]) == 1
    assert "dòng " in capsys.readouterr().err
    with sqlite3.connect(cli / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM surveys").fetchone() == (0,)
    both.write_text(f"surveys:\n  -\n{indented(SAMPLE)}\n  -\n{indented(GREEN)}\n", encoding="utf-8")
    assert main(["survey", "load", str(both)]) == 0
    with sqlite3.connect(cli / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM surveys").fetchone() == (2,)


# ---- answering ------------------------------------------------------------------------------------------

async def test_a_resident_answers_every_kind_of_question(harness, store):
    survey = await load(store)
    p = await resident(harness)
    await turns(p, [
        ("/khaosat", ["Các cuộc khảo sát", "Rà soát việc tiếp cận chính sách hỗ trợ"]),
        ("[Rà soát việc tiếp cận]", ["Gồm 3 câu hỏi", "ẩn danh", "Câu 1/3", "đã nhận được hỗ trợ"]),
        ("[Đã nhận được]", ["Câu 2/7", "hình thức hỗ trợ nào", "▫️ Tiền mặt"]),
    ])
    if p.buttons:
        await turns(p, [("[Tiền mặt]", ["✅ Tiền mặt", "▫️ Gạo"]), ("[Gạo, lương thực]", ["✅ Gạo"]),
                        ("[Xong]", ["Câu 3/7", "đúng thời hạn"])])
    else:
        await turns(p, [("1, 2", ["Câu 3/7", "đúng thời hạn"])])
    await turns(p, [
        ("[Có]", ["Câu 4/7", "đúng như mức"]),
        ("[Đúng mức]", ["Câu 5/7", "1 · Rất không hài lòng", "5 · Rất hài lòng"]),
        ("[4 · Hài lòng]", ["Câu 6/7", "bao nhiêu người", "Không bắt buộc", "Bỏ qua"]),
        ("năm", ["một số từ 1 đến 30"]),
        ("31", ["một số từ 1 đến 30"]),
        ("5", ["Câu 7/7", "điều chưa đúng"]),
        ("Danh sách hộ nghèo chậm cập nhật", ["Cảm ơn Ông/Bà đã trả lời khảo sát", "10/12/2026 17:00"]),
    ])
    user = await store.users.find("test", "1001")
    response = await store.surveys.response(survey.id, user.id)
    assert response.finished_at is not None
    assert response.answers == {"received": ("yes",), "kinds": ("cash", "rice"), "on_time": ("yes",),
                                "amount": ("right",), "satisfied": ("4",), "members": ("5",),
                                "problem": ("Danh sách hộ nghèo chậm cập nhật",)}


async def test_a_number_is_read_the_vietnamese_way_and_a_decimal_is_refused_politely(harness, store):
    """Dots group thousands; "2.5" and "2,5" are decimals, which a whole-number question refuses (was: 2.5 read
    as 25, 2,5 refused as if it were no number)."""
    survey = await load(store, SAMPLE.replace("max: 30", "max: 20000"))
    p = await resident(harness)
    await turns(p, [
        ("/khaosat", []), ("[Rà soát việc tiếp cận]", []), ("[Không thuộc diện được hỗ trợ]", ["Câu 2/3"]),
        ("2.5", ["cần một số nguyên, không có phần thập phân", "một số từ 1 đến 20000", "Câu 2/3"]),
        ("2,5", ["cần một số nguyên", "Câu 2/3"]),
        ("1.000,5", ["cần một số nguyên"]),
        ("0.500", ["cần một số nguyên"]),  # a dot after a lone 0 is a decimal point
        ("1.2.3", ["!số nguyên", "Ông/Bà vui lòng gõ một số từ 1 đến 20000"]),
        ("12.500", ["Câu 3/3"]),
    ])
    user = await store.users.find("test", "1001")
    assert (await store.surveys.response(survey.id, user.id)).answers["members"] == ("12500",)


async def test_back_resume_and_change_until_it_closes(harness, store, clock):
    survey = await load(store)
    p = await resident(harness)
    await turns(p, [
        ("/khaosat", []), ("[Rà soát việc tiếp cận]", ["Câu 1/3"]), ("[Đã nhận được]", ["Câu 2/7"]),
        ("[« Quay lại]", ["Câu 1/7", "Câu trả lời hiện tại: <i>Đã nhận được</i>", "Giữ nguyên"]),
        ("[Giữ nguyên »]", ["Câu 2/7"]),
        ("/huy", ["Đã hủy"]),
        ("khảo sát", ["Rà soát việc tiếp cận"]),
        ("[Rà soát việc tiếp cận]", ["đang trả lời dở", "Câu 2/7"]),
        ("[« Quay lại]", ["Câu 1/7"]),
        ("[Không thuộc diện được hỗ trợ]", ["Câu 2/3", "bao nhiêu người"]),  # the questions on support are gone
        ("bỏ qua", ["Câu 3/3"]),
        ("bỏ qua", ["Cảm ơn Ông/Bà"]),
        ("/khaosat", []),
        ("[Rà soát việc tiếp cận]", ["đã trả lời khảo sát", "1. Gia đình Ông/Bà đã nhận", "Không thuộc diện",
                                     "(bỏ qua)", "Sửa câu trả lời"]),
        ("[Sửa câu trả lời]", ["Câu 1/3"]),
        ("[Chưa nhận được]", ["gửi ngay một phản ánh", "Gửi phản ánh về việc này", "Câu 2/3"]),
    ])
    user = await store.users.find("test", "1001")
    assert (await store.surveys.response(survey.id, user.id)).answers == {"received": ("not_yet",)}
    clock.advance(days=15)  # closed
    await turns(p, [("bỏ qua", ["đã kết thúc"]), ("/khaosat", ["Hiện không có cuộc khảo sát"])])


async def test_a_not_received_answer_opens_a_prefilled_report(harness, store):
    await load(store, SAMPLE.replace("theo chính sách chưa?", "theo chính sách (tiền & hiện vật) chưa?"))
    p = await resident(harness)
    await turns(p, [
        ("/khaosat", []), ("[Rà soát việc tiếp cận]", []),
        ("[Chưa nhận được]", ["Gửi phản ánh về việc này", "Câu 2/3"]),
        ("[Gửi phản ánh về việc này]", ["về địa bàn xã Hải Lăng"]),
        ("[Đúng]", ["Nội dung hiện có", "Khảo sát «Rà soát việc tiếp cận chính sách hỗ trợ»", "Tiếp tục"]),
        ("Hộ ông Lê Văn Ba thôn Long Hưng chưa được nhận tiền hỗ trợ.", ["Đã nhận nội dung"]),
        ("[Tiếp tục]", ["gửi kèm tên hay gửi ẩn danh"]),
        ("[Gửi kèm tên]", ["khẩn cấp"]),
        ("[Không khẩn cấp]", ["An sinh xã hội", "Chưa nhận được"]),
        ("[Gửi]", ["PA-26-000001"]),
    ])
    case = await store.cases.by_code("PA-26-000001")
    assert case.content.startswith("Khảo sát «Rà soát") and "Lê Văn Ba" in case.content
    assert "(tiền & hiện vật)" in case.content  # what the person wrote, not HTML
    assert (await store.topics.get(case.topic_id)).code == "an-sinh"


async def test_opinions_consent_and_for_a_political_survey_the_sensitive_one(harness, store):
    political = SAMPLE.replace("anonymous: yes", "anonymous: yes\npolitical: yes")
    await load(store, political)
    p = harness.person()
    await turns(p, [*ONBOARD[:1], ("[Đồng ý]", []), ("[Không đồng ý]", ["xã, phường nào"]), ("hải lăng", []),
                    ("[xã Hải Lăng]", []), ("[Bỏ qua]", []), ("[An sinh xã hội – hỗ trợ khó khăn]", []),
                    ("[Xong]", [])])
    await turns(p, [
        ("/khaosat", []),
        ("[Rà soát việc tiếp cận]", ["cần đồng ý cho bot lưu ý kiến"]),
        ("[Đồng ý]", ["dữ liệu nhạy cảm"]),
        ("[Đồng ý]", ["Câu 1/3"]),
    ])
    consents = await store.users.consents((await store.users.find("test", "1001")).id)
    assert consents["opinions"].granted and consents["sensitive"].granted


async def test_a_deep_link_shows_the_survey_and_its_button(harness, store):
    await load(store)
    p = await resident(harness)
    await turns(p, [("/start s_ra-soat-ho-tro", ["Khảo sát: Rà soát việc tiếp cận", "10/12/2026 17:00",
                                                 "Trả lời khảo sát"]),
                    ("[Trả lời khảo sát]", ["Câu 1/3"]),
                    ("/start s_khong-co", ["không hợp lệ"])])


async def test_someone_outside_the_audience_is_not_offered_it(harness, store):
    await load(store)
    p = await resident(harness, topic="[Đô thị văn minh]")
    await turns(p, [("/khaosat", ["Hiện không có cuộc khảo sát", "!Rà soát"])])


# ---- privacy --------------------------------------------------------------------------------------------


async def test_export_holds_the_answers_and_erasure_unlinks_anonymous_ones(harness, store):
    anonymous = await load(store)
    named = await load(store, GREEN.replace("topics: [do-thi-van-minh]", "topics: [an-sinh]"))
    p = await resident(harness)
    await turns(p, [("/khaosat", []), ("[Rà soát việc tiếp cận]", []), ("[Không thuộc diện]", []),
                    ("/khaosat", []), ("[Thăm dò trước]", ["Câu 1/2"]), ("[Không]", ["Câu 2/2"])])
    replies = await p.say("/dulieu")
    document = next(r.document for r in replies if r.document)
    assert b'"surveys"' in document.content and "Không thuộc diện".encode() not in document.content
    assert b'"ra-soat-ho-tro"' in document.content and b'"not_eligible"' in document.content
    user = await store.users.find("test", "1001")
    await turns(p, [("/xoadulieu", []), ("[Xóa dữ liệu của tôi]", ["Đã xóa dữ liệu"])])
    assert await store.surveys.response(named.id, user.id) is None
    assert await store.surveys.respondents(named.id) == (0, 0)
    assert await store.surveys.respondents(anonymous.id) == (1, 0)  # kept, linked to no one
    assert await store.surveys.response(anonymous.id, user.id) is None


async def test_dulieu_in_the_chat_names_each_survey_answered_finished_or_not(harness, store):
    await load(store)
    await load(store, POLL)
    p = await resident(harness)
    await turns(p, [("/dulieu", ["!Khảo sát Ông/Bà đã trả lời"]),
                    ("/khaosat", []), ("[Rà soát việc tiếp cận]", []), ("[Không thuộc diện]", []),
                    ("/khaosat", []), ("[Giờ ra quân]", []), ("[Sáng sớm]", [])])
    summary = (await p.say("/dulieu"))[0].text
    assert "Khảo sát Ông/Bà đã trả lời" in summary and "Góp ý văn kiện" not in summary
    assert "• Rà soát việc tiếp cận chính sách hỗ trợ — đang trả lời dở" in summary
    assert "• Giờ ra quân Chủ nhật xanh — đã trả lời xong lúc" in summary


async def test_a_digest_lists_the_surveys_open_in_the_readers_scope_with_responses_there(harness, store, clock):
    dong_ha = (await store.localities.search("dong ha", level=1))[0]
    await load(store)  # the whole province
    await load(store, POLL.replace("  topics: [an-sinh]", f"  topics: [an-sinh]\n  localities: ['{dong_ha.code}']"))
    await turns(await resident(harness), [("/khaosat", []), ("[Rà soát việc tiếp cận]", []),
                                         ("[Không thuộc diện]", [])])
    now = clock()
    readers = {"Hải Lăng": await staff(store, now, "8001", communes=("Hải Lăng",)),
               "Đông Hà": await staff(store, now, "8002", communes=("dong ha",)),
               "admin": await staff(store, now, "9001", role="admin")}
    digests = {}
    for name, user_id in readers.items():
        user = await store.users.get(user_id)
        digests[name] = (await compose(store, Settings(), user, now - timedelta(days=1), now, now, weekly=False))
    hai_lang = digests["Hải Lăng"].replies[0]
    assert "Khảo sát đang mở trên địa bàn:</b> 1" in hai_lang.text
    assert "• Rà soát việc tiếp cận chính sách hỗ trợ: 0 người trả lời xong, 1 người đã bắt đầu · hạn 10/12/2026" \
        in hai_lang.text
    assert [o.label for o in hai_lang.options[-1]] == ["📊 Kết quả: Rà soát việc tiếp cận…"]
    assert "Khảo sát đang mở trên địa bàn:</b> 2" in digests["Đông Hà"].replies[0].text
    assert "chính sách hỗ trợ: 0 người trả lời xong, 0 người đã bắt đầu" in digests["Đông Hà"].replies[0].text
    assert "Khảo sát đang mở trên địa bàn:</b> 2" in digests["admin"].replies[0].text


async def test_the_demo_shows_the_hardship_check_half_answered(store, clock):
    from bot.demo import seed_demo

    await seed_demo(store, clock())
    survey = await store.surveys.by_code("ra-soat-ho-tro")
    assert survey.is_open(clock()) and survey.anonymous
    assert await store.surveys.respondents(survey.id) == (15, 15)  # of 31 residents
    clock.advance(days=1)
    await seed_demo(store, clock())  # again at the next start: brought up to date, nothing answered twice
    assert await store.surveys.respondents(survey.id) == (15, 15)
    assert (await store.surveys.get(survey.id)).closes_at > survey.closes_at


def test_a_quick_poll_has_one_question_of_at_most_five_choices(cli, capsys):
    bad = cli / "poll.yaml"
    bad.write_text(POLL.replace("kind: single", "kind: multiple"), encoding="utf-8")
    assert main(["survey", "load", str(bad)]) == 1
    assert "dòng 6: poll: một cuộc thăm dò nhanh chỉ có một câu hỏi loại single" in capsys.readouterr().err


async def test_linking_two_accounts_keeps_one_response_per_survey(store, clock):
    from tests.test_linking import code_in, two_channels

    support = await load(store)
    green = await load(store, GREEN.replace("topics: [do-thi-van-minh]", "topics: [an-sinh]"))
    tg, zl = two_channels(store, clock)
    lan_tg = await resident(tg, user_id="1001")
    lan_zl = await resident(zl, user_id="z-77")
    await turns(lan_tg, [("/khaosat", []), ("[Rà soát việc tiếp cận]", []), ("[Đã nhận được]", ["Câu 2/7"])])
    await turns(lan_zl, [("/khaosat", []), ("[Rà soát việc tiếp cận]", []), ("[Chưa nhận được]", ["Câu 2/3"]),
                         ("/khaosat", []), ("[Thăm dò trước]", []), ("[Không]", ["Câu 2/2"])])
    await turns(lan_tg, [("/lienket", ["Mã liên kết"])])
    await turns(lan_zl, [("/huy", []), (f"liên kết {code_in(lan_tg)}", ["Đã liên kết hai tài khoản"])])
    kept = await store.users.find("telegram", "1001")
    assert (await store.surveys.response(support.id, kept.id)).answers == {"received": ("yes",)}
    assert (await store.surveys.response(green.id, kept.id)).answers == {"join": ("no",)}
    assert await store.surveys.respondents(support.id) == (1, 0)


async def test_a_named_poll_with_a_place_question_and_typed_numbers(harness, store):
    survey = await load(store, GREEN.replace("topics: [do-thi-van-minh]", "topics: [an-sinh]"))
    p = await resident(harness)
    await turns(p, [("/khaosat", []), ("[Thăm dò trước]", ["Gồm 2 câu hỏi", "Cán bộ phụ trách địa bàn sẽ xem"]),
                    ("[Có]", ["Câu 2/5", "▫️ Quét dọn đường phố"])])
    if p.buttons:
        await turns(p, [("[Xong]", ["chọn ít nhất một ý"]), ("[Trồng và chăm cây xanh]", ["✅ Trồng"]),
                        ("[Góp dụng cụ, nước uống]", []), ("[Xong]", ["Câu 3/5"])])
    else:
        await turns(p, [("2, 9", ["Có số không nằm trong danh sách", "Câu 2/5"]), ("2, 4", ["Câu 3/5"])])
    await turns(p, [
        ("[8h00 – 10h00]", ["Câu 4/5", "xã Hải Lăng"]),
        ("long hung", ["Thôn Long Hưng, xã Hải Lăng"]),
        ("[Thôn Long Hưng]", ["Câu 5/5", "«bỏ qua»" if not p.buttons else "Bỏ qua"]),
        ("Nên chuẩn bị thêm bao tải đựng rác", ["Cảm ơn Ông/Bà"]),
    ])
    user = await store.users.find("test", "1001")
    answers = (await store.surveys.response(survey.id, user.id)).answers
    place = await store.localities.by_code("19702-02")
    assert answers == {"join": ("yes",), "tasks": ("tools", "trees"), "time": ("morning",), "where": (str(place.id),),
                       "idea": ("Nên chuẩn bị thêm bao tải đựng rác",)}


async def test_a_survey_not_yet_open_or_closed_says_so(harness, store, clock):
    survey = await load(store)
    p = await resident(harness)
    clock.now = clock.now.replace(year=2026, month=11, day=25)
    await p.choose(f"1:sv:{survey.id}")
    assert "chưa bắt đầu" in p.text()
    clock.now = clock.now.replace(month=12, day=11)
    await p.choose(f"1:sv:{survey.id}")
    assert "đã kết thúc" in p.text()


async def test_a_button_of_an_earlier_question_is_refused(harness, store):
    survey = await load(store)
    p = await resident(harness)
    await turns(p, [("/khaosat", []), ("[Rà soát việc tiếp cận]", ["Câu 1/3"])])
    received = p.option("Đã nhận được")  # its value is "yes", as a yes/no question's is
    await turns(p, [("[Đã nhận được]", ["Câu 2/7"])])
    if p.buttons:
        await turns(p, [("[Tiền mặt]", []), ("[Xong]", ["Câu 3/7"])])
    else:
        await turns(p, [("1, 2", ["Câu 3/7"])])
    await p.choose(received)  # pressed again at the yes/no question
    assert p.stale in p.text() and "Câu 3/7" in p.text()
    user = await store.users.find("test", "1001")
    assert "on_time" not in (await store.surveys.response(survey.id, user.id)).answers
