"""What a cadre reads and downloads: /bantin settings, the digest's numbers and dates, the weekly chart (read
back with Pillow), /xuat and the Excel workbook (read back with openpyxl), the same export from the CLI."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.cli import main
from handlers import charts
from handlers.base import Settings
from handlers.digest import compose, latest_slot, parse_time
from handlers.reports import number
from storage import Store
from storage.digests import DigestSettings
from tests.dialog import turns
from tests.people import make_people
from tests.schedule_kit import TZ, add_case, citizen, local, staff
from tests.test_web_browser import OUTPUT

pytestmark = pytest.mark.backends


async def _cadre(harness, store):
    user_id = await staff(store, harness.clock(), "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    return harness.person("8001", name="Cán bộ Bình"), user_id


async def test_bantin_settings(harness, store):
    binh, user_id = await _cadre(harness, store)
    await turns(binh, [
        ("/bantin", ["Bản tin tổng hợp", "hằng ngày lúc 07:30", "Bỏ qua khi không có gì mới: không.",
                     "Hằng ngày •", "Đổi giờ nhận (07:30)", "▫️ Bỏ qua"]),
        ("[Hằng tuần]", ["vào ngày nào", "Thứ Hai", "Chủ nhật"]),
        ("thứ sáu nhé", [binh.use_options]),
        ("[Thứ Sáu]", ["Đã lưu", "hằng tuần vào Thứ Sáu, lúc 07:30, kèm biểu đồ", "Hằng tuần •",
                       "Đổi ngày nhận (Thứ Sáu)"]),
        ("[Đổi giờ nhận]", ["lúc mấy giờ", "06:30", "17:00"]),
        ("25:00", ["Giờ chưa đúng"]),
        ("6h45", ["Đã lưu", "hằng tuần vào Thứ Sáu, lúc 06:45"]),
        ("[Bỏ qua khi không có gì mới]", ["Bỏ qua khi không có gì mới: có.", "✅ Bỏ qua"]),
        ("[Hằng ngày]", ["hằng ngày lúc 06:45", "!Đổi ngày nhận"]),
        ("[Tắt]", ["không nhận (đã tắt)", "Tắt •"]),
        ("[Đổi giờ nhận]", []), ("[17:00]", ["Đã lưu", "không nhận"]),
        ("[Xem bản tin ngay]", ["Bản tin tổng hợp</b> — Ban Dân vận xã Hải Lăng", "Không có ý kiến mới",
                                "Quá hạn (0)"]),
    ])
    s = await store.digests.get(user_id, harness.clock())
    assert (s.mode, s.at_minute, s.weekday, s.skip_empty) == ("off", 17 * 60, 4, True)
    assert "digest.settings" in {e.action for e in await store.audit.recent()}
    lan = harness.person("1001")
    await turns(lan, [("/bantin", ["chỉ dành cho cán bộ"])])


def test_times_and_slots():
    assert [parse_time(t) for t in ("7:30", "07:30", "7h30", "7g", "17.00", "6 giờ", "24:00", "7:61", "abc")] == [
        450, 450, 450, 420, 1020, None, None, None, None]
    s = DigestSettings(1, "weekly", 17 * 60, 0, False, "")
    slot, name = latest_slot(s, local(2026, 12, 2, 9), TZ)  # a Wednesday: last Monday's
    assert slot == local(2026, 11, 30, 17) and name == "2026-W49"
    slot, name = latest_slot(s, local(2026, 11, 30, 16, 59), TZ)
    assert slot == local(2026, 11, 23, 17) and name == "2026-W48"
    daily = DigestSettings(1, "daily", 450, 0, False, "")
    assert latest_slot(daily, local(2026, 12, 1, 7, 29), TZ) == (local(2026, 11, 30, 7, 30), "2026-11-30")
    assert latest_slot(DigestSettings(1, "off", 450, 0, False, ""), local(2026, 12, 1), TZ) is None
    assert number(1234567, "vi") == "1.234.567" and number(1234567, "en") == "1,234,567" and number(12, "vi") == "12"


async def test_digest_counts_in_vietnamese_numbers(store):
    now = local(2026, 11, 26, 7, 30)
    user_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    lan = await citizen(store, now)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    first = await add_case(store, now - timedelta(hours=5), lan, hai_lang.id, urgent=True,
                           content="Sạt lở bờ sông uy hiếp 12 hộ dân")
    await store.db.executemany(  # 1,233 more, quickly
        "INSERT INTO cases (code, kind, user_id, topic_id, locality_id, locality_path, content, created_at, ack_due,"
        " answer_due) VALUES (?, 'gopy', ?, 2, ?, ?, 'Góp ý', ?, ?, ?)",
        [(f"GY-26-{n:06d}", lan, hai_lang.id, hai_lang.path, first.created_at, first.ack_due, first.answer_due)
         for n in range(1, 1234)])
    user = await store.users.get(user_id)
    digest = await compose(store, Settings(), user, now - timedelta(days=1), now, now, weekly=False)
    text = digest.replies[0].text
    assert "Ý kiến mới: 1.234</b> (🔴 khẩn cấp: 1)" in text
    assert "Đô thị văn minh 1.233, Xây dựng nông thôn mới 1" in text and "xã Hải Lăng 1.234" in text
    assert f"🔴 <b>{first.code}</b>" in text.split("Cần chú ý:")[1].split("\n")[1]  # urgent first
    assert "Từ 25/11/2026 07:30 đến 26/11/2026 07:30" in text
    assert not digest.empty
    english = await store.users.update(user_id, now, language="en")
    text = (await compose(store, Settings(), english, now - timedelta(days=1), now, now, weekly=False)).replies[0].text
    assert "New cases: 1,234</b>" in text


async def test_campaign_reach_and_cases_in_the_area(store):
    now = local(2026, 11, 26, 7, 30)
    user_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    dong_ha = (await store.localities.search("dong ha", level=1))[0]
    ntm = await store.topics.by_code("nong-thon-moi")
    campaign = await store.campaigns.upsert("ntm-2026", "Chung tay xây dựng nông thôn mới", "…", ntm.id)
    await store.campaigns.upsert("chung", "Thông báo chung của tỉnh", "…", None)
    for n, (place, topics, news) in enumerate([(hai_lang, {ntm.id}, True), (hai_lang, {ntm.id}, True),
                                               (hai_lang, {ntm.id}, False), (hai_lang, set(), True),
                                               (dong_ha, {ntm.id}, True)]):
        person = await citizen(store, now, f"20{n}")
        await store.users.set_topics(person, topics)
        await store.users.update(person, now, locality_id=place.id, news_enabled=int(news))
    case = await add_case(store, now - timedelta(hours=2), person, hai_lang.id)
    await store.db.execute("UPDATE cases SET campaign_id = ? WHERE id = ?", (campaign, case.id))
    digest = await compose(store, Settings(), await store.users.get(user_id), now - timedelta(days=1), now, now,
                           weekly=False)
    text = digest.replies[0].text
    assert "• Chung tay xây dựng nông thôn mới: 2 người dân trên địa bàn nhận tin, 1 ý kiến mới" in text
    assert "• Thông báo chung của tỉnh: 3 người dân trên địa bàn nhận tin, 0 ý kiến mới" in text


async def test_weekly_chart_fits_a_phone_and_counts_what_the_text_counts(store):
    now = local(2026, 11, 30, 7, 30)  # Monday
    user_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    lan = await citizen(store, now)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    villages = await store.localities.children(hai_lang.id)
    expected_per_day = {}
    for n in range(14):  # n+1 cases on day 16/11 + n, alternating topics
        day = local(2026, 11, 16, 9) + timedelta(days=n)
        for k in range(n + 1):
            await add_case(store, day, lan, hai_lang.id, topic="nong-thon-moi" if k % 2 else "an-sinh",
                           due=local(2026, 12, 20))
        expected_per_day[day.strftime("%d/%m")] = n + 1
    for place, count in ((villages[0], 3), (villages[1], 1), (hai_lang, 2)):
        for _ in range(count):
            await add_case(store, local(2026, 11, 1), lan, place.id, due=local(2026, 11, 20))
    user = await store.users.get(user_id)
    digest = await compose(store, Settings(), user, now - timedelta(days=7), now, now, weekly=True)
    assert len(digest.replies) == 2 and digest.replies[1].photo.mime == "image/png"
    image = Image.open(io.BytesIO(digest.replies[1].photo.content))
    image.load()
    assert image.format == "PNG" and image.size == (1050, 1650)
    numbers = json.loads(image.text["danvan"])
    # The digest's own period, Monday 23/11 07:30 to Monday 30/11 07:30: the text and the chart count the same.
    assert numbers["days"] == ["23/11", "24/11", "25/11", "26/11", "27/11", "28/11", "29/11", "30/11"]
    totals = [sum(values[i] for values in numbers["series"].values()) for i in range(len(numbers["days"]))]
    in_period = {d: n for d, n in expected_per_day.items() if d >= "23/11"} | {"30/11": 0}
    assert dict(zip(numbers["days"], totals, strict=True)) == in_period
    assert f"Ý kiến mới: {sum(totals)}<" in digest.replies[0].text and "23/11/2026 07:30" in digest.replies[0].text
    assert "23/11–30/11" in digest.replies[1].text
    assert set(numbers["series"]) == {"Xây dựng nông thôn mới", "An sinh xã hội – hỗ trợ khó khăn"}
    assert numbers["overdue"] == {villages[0].name: 3, "xã Hải Lăng": 2, villages[1].name: 1}
    assert "Bản tin tuần 23/11 – 30/11/2026" in image.text["Title"]
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "weekly-chart.png").write_bytes(digest.replies[1].photo.content)
    # On a phone 390 pixels wide, the smallest text (ticks, legend) is still 12 pixels high.
    shown = 390 / image.size[0]
    assert charts.SMALLEST / 72 * round(image.info["dpi"][0]) * shown >= 12
    assert "Quá hạn (6)" in " ".join(o.label for row in digest.replies[0].options for o in row)


async def _export_cases(store, now):
    lan = await citizen(store, now)
    hung = await citizen(store, now, "1002", "Trần Văn Hùng")
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    dong_ha = (await store.localities.search("dong ha", level=1))[0]
    village = (await store.localities.children(hai_lang.id))[0]
    named = await add_case(store, local(2026, 11, 20, 9, 15), lan, village.id, content="Đèn đường thôn hỏng")
    anonymous = await add_case(store, local(2026, 11, 21, 10), hung, hai_lang.id, anonymous=True,
                               content="Cán bộ thôn thu tiền không có biên lai")
    formula = await add_case(store, local(2026, 11, 22, 11), lan, hai_lang.id, content='=HYPERLINK("http://x","y")')
    hidden = await add_case(store, local(2026, 11, 23, 8), lan, hai_lang.id, content="Lời lẽ xúc phạm cán bộ")
    await store.cases.record(hidden.id, None, "hidden", now, body="xúc phạm", internal=True, hidden_reason="xúc phạm")
    answered = await add_case(store, local(2026, 11, 23, 8), lan, hai_lang.id)
    await store.cases.record(answered.id, None, "answered", now, body="Đã sửa", expect="new", status="answered",
                             answered_at=now)
    await add_case(store, local(2026, 11, 23, 8), lan, hai_lang.id, topic="an-sinh")
    await add_case(store, local(2026, 11, 23, 8), lan, dong_ha.id)
    await add_case(store, local(2026, 10, 15, 8), lan, hai_lang.id)
    return named, anonymous, formula, hidden


async def test_xuat_gives_a_workbook_of_my_scope_with_the_filters(harness, store):
    binh, _ = await _cadre(harness, store)
    named, anonymous, formula, hidden = await _export_cases(store, harness.clock())
    await turns(binh, [
        ("/xuat", ["Xuất danh sách ý kiến ra Excel", "30 ngày gần đây (từ 28/10/2026)", "Trạng thái: Tất cả"]),
        ("[Thời gian]", ["khoảng thời gian nào", "7 ngày", "Năm nay"]),
        ("hôm qua", ["Khoảng ngày chưa đúng"]),
        ("26/11/2026 - 01/11/2026", ["Thời gian gửi: từ 01/11/2026 đến 26/11/2026"]),
        ("[Trạng thái]", ["trạng thái nào", "Quá hạn"]),
        ("[Đang mở]", ["Trạng thái: Đang mở"]),
        ("[Lĩnh vực]", ["lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", ["Lĩnh vực: Xây dựng nông thôn mới"]),
    ])
    assert harness.channel.typed == []  # a plain answer is there at once
    await turns(binh, [("[Tải tệp Excel]", ["Tệp Excel gồm 4 ý kiến", "ẩn danh"])])
    # "typing…" while the workbook was built, just before it came
    assert harness.channel.typed == [(binh.id, len(harness.channel.sent) - 1)]
    document = binh.last[0].document
    assert document.filename == "y-kien-20261126-0730.xlsx" and document.mime.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(document.content))
    sheet = book["Ý kiến"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:N5"
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["Mã", "Loại", "Trạng thái"] and header[-2:] == ["Người gửi", "Nội dung"]
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {named.code, anonymous.code, formula.code, hidden.code}
    assert rows[named.code]["Ngày gửi"] == datetime(2026, 11, 20, 9, 15)
    assert rows[named.code]["Hạn trả lời"] == datetime(2026, 12, 4, 9, 15)
    assert rows[named.code]["Người gửi"] == "Nguyễn Thị Lan" and rows[named.code]["Xã, phường"] == "xã Hải Lăng"
    assert rows[named.code]["Thôn, tổ dân phố"] and rows[anonymous.code]["Thôn, tổ dân phố"] is None
    assert rows[anonymous.code]["Người gửi"] is None
    assert "Trần Văn Hùng" not in str(list(sheet.values)) and "Hùng" not in str(list(book["Thông tin"].values))
    assert rows[formula.code]["Nội dung"] == '=HYPERLINK("http://x","y")'
    assert sheet.cell(list(rows).index(formula.code) + 2, 14).data_type == "s"
    assert rows[hidden.code]["Nội dung"] == "Nội dung đã được ẩn, lý do: xúc phạm"
    assert sheet.cell(2, 8).number_format == "dd/mm/yyyy hh:mm"
    info = dict(book["Thông tin"].iter_rows(values_only=True))
    assert info["Số ý kiến"] == "4" and info["Phạm vi"] == "Ban Dân vận xã Hải Lăng"
    assert info["Thời gian gửi"] == "từ 01/11/2026 đến 26/11/2026" and info["Trạng thái"] == "Đang mở"
    assert "cases.exported" in {e.action for e in await store.audit.recent()}


def test_cli_exports_the_same_workbook(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))

    async def seed():
        store = await Store.open(tmp_path / "cli.db")
        try:
            return await _export_cases(store, local(2026, 11, 26, 7, 30))
        finally:
            await store.close()

    named, anonymous, formula, hidden = asyncio.run(seed())
    out = tmp_path / "y-kien.xlsx"
    assert main(["export", "cases", "--locality", "19702", "--from", "2026-11-01", "--out", str(out)]) == 0
    assert "Đã xuất 6 ý kiến" in capsys.readouterr().out  # Hải Lăng since 01/11, every status and topic
    sheet = load_workbook(out)["Ý kiến"]
    contents = {r[0]: r[13] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert contents[hidden.code] == "Lời lẽ xúc phạm cán bộ"  # as an admin sees it
    assert {r[12] for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == anonymous.code} == {None}
    assert main(["export", "cases", "--format", "xlsx"]) == 2


async def test_a_chart_that_cannot_be_drawn_does_not_stop_the_digest(store, monkeypatch):
    from handlers import charts

    def broken(data, t):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(charts, "render", broken)
    now = local(2026, 11, 30, 7, 30)
    user_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    digest = await compose(store, Settings(), await store.users.get(user_id), now - timedelta(days=7), now, now,
                           weekly=True)
    assert len(digest.replies) == 1 and "Bản tin tổng hợp" in digest.replies[0].text


async def test_a_person_on_two_linked_channels_is_counted_once_in_a_campaigns_reach(store, clock):
    [kept] = await make_people(store, 1, first_chat=1000)
    [linked] = await make_people(store, 1, channel="zalo", first_chat=1000, locality="19333")
    ttl = timedelta(minutes=15)
    await store.links.redeem(await store.links.new_code(kept, clock(), ttl), linked, "zalo", clock(), ttl)
    hai_lang = (await store.localities.by_code("19702")).id
    assert await store.digests.audience({None}) == {(hai_lang, None): 1}
