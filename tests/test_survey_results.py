"""A survey's results: counts and percentages per question by commune and village, live; small places of an
anonymous survey only inside their parent's total; a cadre sees their scope; the chart and the workbook."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from PIL import Image

from handlers.survey_results import by_place
from storage.surveys import Tally
from tests.dialog import turns
from tests.people import make_people
from tests.test_cases import cadre_of
from tests.test_roles import make_admin
from tests.test_surveys import GREEN, SAMPLE, TZ, load

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


async def answered(store, survey, place: str, answers: list[dict], first_chat: int, names: bool = True) -> None:
    """People of `place` (a commune or village code), each answering as one dict of `answers` says."""
    ids = await make_people(store, len(answers), locality=place, first_chat=first_chat, topics=("an-sinh",))
    loc = await store.localities.by_code(place)
    commune, village = (loc.parent_id, loc.id) if loc.level == 2 else (loc.id, None)
    for user_id, given in zip(ids, answers, strict=True):
        await store.surveys.start(survey.id, user_id, commune, village, survey.questions[0].key, NOW)
        response = await store.surveys.response(survey.id, user_id)
        for key, values in given.items():
            await store.surveys.answer(response.id, survey.id, key, tuple(values), (), None, NOW)


def test_small_places_of_an_anonymous_survey_show_only_in_their_parents_total():
    tallies = [Tally(1, None, 6, {"yes": 4, "no": 2}), Tally(1, 11, 3, {"yes": 3}), Tally(1, 12, 5, {"no": 5}),
               Tally(2, None, 4, {"yes": 4})]
    total, rows = by_place(tallies, anonymous=True)
    assert (total.respondents, total.counts) == (18, {"yes": 11, "no": 7})
    assert [(r.commune_id, r.village_id, r.respondents) for r in rows] == [(1, None, 14), (1, 12, 5)]
    _, named = by_place(tallies, anonymous=False)
    assert [(r.commune_id, r.village_id) for r in named] == [(1, None), (1, 12), (1, 11), (2, None)]


async def test_admin_reads_results_by_commune_with_a_chart_and_a_workbook(harness, store):
    survey = await load(store)  # anonymous
    await answered(store, survey, "19702-01", [{"received": ["yes"], "kinds": ["cash", "rice"]}] * 3
                   + [{"received": ["not_yet"], "problem": ["Chưa ai đến rà soát"]}] * 3, 6_000_000)
    await answered(store, survey, "19735", [{"received": ["yes"], "kinds": ["cash"]}] * 2, 6_100_000)
    admin = await make_admin(harness, store)
    await admin.say("/khaosat")
    assert "Kết quả: Rà soát" in admin.text()
    await admin.click("Kết quả: Rà soát")
    text = admin.text()
    assert "8 người đã bắt đầu" in text and "toàn tỉnh" in text
    assert "Câu 1. Gia đình Ông/Bà đã nhận được hỗ trợ" in text and "— 8 người trả lời" in text
    assert "• Đã nhận được: 5 (62%)" in text and "• Chưa nhận được: 3 (38%)" in text
    assert "• Tiền mặt: 5 (100%)" in text and "• Gạo, lương thực: 3 (60%)" in text
    replies = await admin.click("Câu 1")
    text = admin.text()
    assert harness.seen("<b>xã Hải Lăng</b> (6 người): • Đã nhận được: 3 (50%)") in text
    assert "↳ Thôn Thượng Xá (6 người)" in text
    assert "Nam Hải Lăng" not in text  # 2 answers: inside the province's total only
    assert "dưới 5 người trả lời" in text
    photo = next(r.photo for r in replies if r.photo)
    image = Image.open(io.BytesIO(photo.content))
    assert image.width >= 1000 and json.loads(image.info["danvan"]) == {
        "Đã nhận được": 5, "Chưa nhận được": 3, "Không thuộc diện được hỗ trợ": 0}
    await admin.say("/khaosat")
    await admin.click("Kết quả: Rà soát")
    await admin.click("Câu 7")
    # 3 answers, one small commune: pooled, it would still be known, so they are counted, not shown
    assert "3 người trả lời" in admin.text() and "3 câu trả lời của xã, phường có dưới 5" in admin.text()
    assert "Chưa ai đến rà soát" not in admin.text()
    await admin.say("/khaosat")
    await admin.click("Kết quả: Rà soát")
    replies = await admin.click("Tải tệp Excel")
    book = load_workbook(io.BytesIO(next(r.document for r in replies if r.document).content))
    summary = list(book["1. received"].iter_rows(values_only=True))
    assert summary[1][:3] == ("Xã, phường", "Số người trả lời", "Đã nhận được")
    assert summary[-2][:5] == ("xã Hải Lăng", 6, 3, 3, 0) and summary[-1][:2] == ("Tổng", 8)
    responses = [row for row in book["Các câu trả lời"].iter_rows(values_only=True)]
    assert responses[0][:3] == ("Phiếu", "Xã, phường", "Đã trả lời hết") and len(responses) == 8
    assert responses[-1][0].startswith("2 câu trả lời của xã, phường có dưới 5")  # one small commune: withheld
    assert not any("Người" in str(cell) for row in responses for cell in row)  # nobody named
    assert await store.audit.by_actor((await store.users.find("test", "9000")).id)


@pytest.mark.backends
async def test_free_text_of_an_anonymous_survey_names_only_communes_of_five_or_more(harness, store):
    """Free-text answers and the responses sheet follow by_place's rule: a commune with fewer than 5 answers is not
    named, and its answers come after the others, not where its name would sort them (was: every commune named).
    Pooled, such answers hide their commune only among 5 or more such communes: with fewer, a reader would know
    which, so they are counted and withheld."""
    survey = await load(store)  # anonymous
    await answered(store, survey, "19702", [{"problem": [f"Hải Lăng {n}"]} for n in range(5)], 6_400_000)
    await answered(store, survey, "19735", [{"problem": [f"Nam Hải Lăng {n}"]} for n in range(2)], 6_500_000)
    admin = await make_admin(harness, store)
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", []), ("[Câu 7]", [
        "• xã Hải Lăng: Hải Lăng 0", "• xã Hải Lăng: Hải Lăng 4",
        "2 câu trả lời của xã, phường có dưới 5 người trả lời không được hiển thị", "!Nam Hải Lăng"])])
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", [])])
    replies = await admin.click("Tải tệp Excel")
    book = load_workbook(io.BytesIO(next(r.document for r in replies if r.document).content))
    texts = list(book["7. problem"].iter_rows(values_only=True))[2:]
    withheld = "2 câu trả lời của xã, phường có dưới 5 người trả lời không được hiển thị, để giữ ẩn danh."
    assert texts == [*(("xã Hải Lăng", f"Hải Lăng {n}") for n in range(5)), (withheld, None)]
    responses = list(book["Các câu trả lời"].iter_rows(values_only=True))[1:]
    assert [row[1] for row in responses[:-1]] == ["xã Hải Lăng"] * 5 and responses[-1][0] == withheld
    # Among five small communes, pooled answers are shown, under «a commune with fewer than 5 respondents», last.
    others = [loc.code for loc in (await store.localities.page(0, 20))[0] if loc.code not in ("19702", "19735")][:4]
    for n, code in enumerate(others):
        await answered(store, survey, code, [{"problem": [f"Nơi khác {n}"]}], 6_700_000 + 10 * n)
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", []), ("[Câu 7]", [
        "• xã Hải Lăng: Hải Lăng 4", "• một xã, phường có dưới 5 người trả lời: Nam Hải Lăng 0",
        "• một xã, phường có dưới 5 người trả lời: Nơi khác 3", "!không được hiển thị", "!xã Nam Hải Lăng"])])
    assert admin.text().index("Hải Lăng 4") < admin.text().index("Nam Hải Lăng 0")
    named = await load(store, SAMPLE.replace("anonymous: yes", "anonymous: no").replace("ra-soat-ho-tro", "rs-2"))
    await answered(store, named, "19735", [{"problem": ["Có tên"]}], 6_600_000)
    assert [(a.small, a.text) for a in await store.surveys.texts(named.id, "problem")] == [(False, "Có tên")]


async def test_a_text_withheld_on_its_question_sheet_is_blank_in_the_responses_sheet(harness, store):
    """A commune of 5 respondents of whom one wrote the free text: small on that question, so its text is withheld
    there; the responses sheet, where the commune is named (5 responses), leaves that cell blank."""
    survey = await load(store)  # anonymous
    await answered(store, survey, "19702", [{"problem": [f"Hải Lăng {n}"]} for n in range(5)], 7_100_000)
    await answered(store, survey, "19735", [{"received": ["not_yet"]}] * 4 + [{"problem": ["Chỉ một người viết"]}],
                   7_200_000)
    admin = await make_admin(harness, store)
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", []), ("[Câu 7]", [
        "6 người trả lời", "1 câu trả lời của xã, phường có dưới 5 người trả lời", "!Chỉ một người viết"])])
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", [])])
    replies = await admin.click("Tải tệp Excel")
    book = load_workbook(io.BytesIO(next(r.document for r in replies if r.document).content))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row]
    assert "Chỉ một người viết" not in cells
    responses = list(book["Các câu trả lời"].iter_rows(values_only=True))[1:]
    assert [row[1] for row in responses].count("xã Nam Hải Lăng") == 5


async def test_a_text_pooled_on_its_question_sheet_is_blank_in_the_responses_sheet(harness, store):
    """The same commune, small on the question among five small ones: its text is pooled, unnamed, on the question's
    sheet, so the responses sheet, which names the commune, leaves that cell blank too."""
    survey = await load(store)  # anonymous
    await answered(store, survey, "19735", [{"received": ["not_yet"]}] * 4 + [{"problem": ["Chỉ một người viết"]}],
                   7_200_000)
    for n, commune in enumerate(("18901", "18904", "18919", "18922")):
        await answered(store, survey, commune, [{"problem": [f"Ý kiến {n}"]}], 7_300_000 + 1000 * n)
    admin = await make_admin(harness, store)
    await turns(admin, [("/khaosat", []), ("[Kết quả: Rà soát]", [])])
    replies = await admin.click("Tải tệp Excel")
    book = load_workbook(io.BytesIO(next(r.document for r in replies if r.document).content))
    question = [row for sheet in book.worksheets if sheet.title.startswith("7.")
                for row in sheet.iter_rows(values_only=True)]
    assert ("một xã, phường có dưới 5 người trả lời", "Chỉ một người viết") in question
    responses = list(book["Các câu trả lời"].iter_rows(values_only=True))[1:]
    assert [row[1] for row in responses].count("xã Nam Hải Lăng") == 5
    assert not any("Chỉ một người viết" in row for row in responses)


async def test_a_cadre_sees_only_their_scope_and_a_named_survey_names_people(harness, store):
    survey = await load(store, GREEN.replace("topics: [do-thi-van-minh]", "topics: [an-sinh]"))
    await answered(store, survey, "19702", [{"join": ["yes"]}, {"join": ["no"]}], 6_200_000)
    await answered(store, survey, "19735", [{"join": ["yes"]}], 6_300_000)
    cadre = await cadre_of(harness, store, "Hải Lăng")
    await cadre.say("/khaosat")
    await cadre.click("Kết quả: Thăm dò")
    text = cadre.text()
    assert "trong phạm vi đồng chí phụ trách" in text and "2 người đã bắt đầu" in text
    assert "• Có: 1 (50%)" in text
    replies = await cadre.click("Tải tệp Excel")
    book = load_workbook(io.BytesIO(next(r.document for r in replies if r.document).content))
    rows = list(book["Các câu trả lời"].iter_rows(values_only=True))
    assert rows[0][:4] == ("Phiếu", "Xã, phường", "Thôn, tổ dân phố", "Người trả lời")
    assert sorted(r[3] for r in rows[1:]) == ["Người 0", "Người 1"]


@pytest.mark.backends("sqlite")  # counts calls to SQLite's connections
async def test_the_workbook_reads_respondents_names_with_their_answers(store, monkeypatch):
    """However many people answered a named survey, the workbook makes the same number of database calls (was: one
    more per respondent, to read their name)."""
    from handlers.survey_results import workbook
    from messages import Texts
    from tests.test_storage import trips

    survey = await load(store, GREEN.replace("topics: [do-thi-van-minh]", "topics: [an-sinh]"))
    calls = []
    for first_chat, count in ((6_700_000, 2), (6_800_000, 5)):
        await answered(store, survey, "19702", [{"join": ["yes"]}] * count, first_chat)
        seen = trips(monkeypatch)
        content = await workbook(store, survey, None, TZ, Texts("vi"))
        calls.append(len(seen))
        monkeypatch.undo()
    assert calls[0] == calls[1]
    rows = list(load_workbook(io.BytesIO(content))["Các câu trả lời"].iter_rows(values_only=True))[1:]
    assert sorted(r[3] for r in rows) == sorted(f"Người {n}" for n in (0, 1, 0, 1, 2, 3, 4))


async def test_a_citizen_cannot_read_results(harness, store):
    survey = await load(store)
    p = harness.person()
    await p.choose(f"1:svr:{survey.id}")
    assert "chỉ dành cho cán bộ" in p.text()


def test_the_streamed_workbook_reads_back_in_excel_terms():
    from handlers.xlsx_stream import StreamedWorkbook

    book = StreamedWorkbook()
    first = book.sheet("1. received")
    first(["=HYPERLINK(\"http://x\")", 3, 0.25, None, "a\x01b <&>"])
    book.sheet("1. received")([1])  # the same name again: made unique
    read = load_workbook(io.BytesIO(book.content()))
    assert read.sheetnames[0] == "1. received" and len(read.sheetnames) == 2
    assert next(read["1. received"].iter_rows(values_only=True)) == ('=HYPERLINK("http://x")', 3, 0.25, None,
                                                                     "ab <&>")
    assert read["1. received"]["A1"].data_type == "s"  # text, never a formula


async def test_admin_gets_the_survey_link_and_its_qr_for_posters(harness, store):
    await load(store)
    admin = await make_admin(harness, store)
    await admin.say("/khaosat")
    await admin.click("Kết quả: Rà soát")
    replies = await admin.click("Mã QR")
    [poster] = [r for r in replies if r.document]
    assert "https://t.me/danvan_test_bot?start=s_ra-soat-ho-tro" in poster.text
    assert poster.document.content.startswith(b"\x89PNG")
