"""An anonymous opinion (góp ý) shows staff its commune only; an anonymous report (phản ánh) its village, the place
to act on. Every view of a case to staff obeys it: inbox lines and cards, notices, digests, charts, reminders,
CSV and Excel exports, the inbox filter by place. The person is told before they choose."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from bot.exports import cases_csv, cases_xlsx
from handlers.base import Settings
from handlers.digest import Shared, chart_data, compose
from handlers.reminders import render as reminder
from handlers.reports import case_scope
from messages import Texts
from storage.cases import InboxQuery
from tests.dialog import ONBOARD, turns
from tests.schedule_kit import TZ, add_case, citizen, local, staff

pytestmark = pytest.mark.backends


async def _anonymous_pair(store, now):
    """An anonymous opinion and an anonymous urgent report from one village of Hải Lăng, both overdue."""
    lan = await citizen(store, now)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    village = (await store.localities.children(hai_lang.id))[0]
    opinion = await add_case(store, now - timedelta(days=20), lan, village.id, kind="gopy", anonymous=True,
                             due=now - timedelta(days=3), content="Nên công khai chi tiêu quỹ thôn")
    report = await add_case(store, now - timedelta(days=20), lan, village.id, kind="phananh", anonymous=True,
                            urgent=True, due=now - timedelta(days=3), content="Cống thoát nước bị tắc")
    return hai_lang, village, opinion, report


def _line_of(text: str, code: str) -> str:
    """The line, or the button, that names the case `code`."""
    return next(line for line in re.split(r"\n| \[", text) if code in line)


async def test_the_anonymity_step_says_what_cadres_will_see_of_the_place(harness, store):
    lan = harness.person()
    await turns(lan, ONBOARD[:5])
    village = (await store.localities.children((await store.localities.search("hai lang", level=1))[0].id))[0]
    await lan.click(village.name)
    await turns(lan, [("[Xong]", [])])
    opinion = [("/gopy", []), ("[Khác]", []), ("[Đúng]", []), ("Nên công khai chi tiêu quỹ thôn", []),
               ("[Tiếp tục]", ["chỉ thấy góp ý đến từ xã Hải Lăng", f"!{village.name}", "Gửi ẩn danh"])]
    await turns(lan, opinion)
    await turns(lan, [("/huy", []), ("/phananh", []), ("[Viết ý kiến mới]", []), ("[Khác]", []), ("[Đúng]", []),
                      ("Cống thoát nước bị tắc", []),
                      ("[Tiếp tục]", ["vẫn thấy nơi cần xử lý", f"{village.name}, xã Hải Lăng", "Gửi ẩn danh"])])


async def test_cadres_see_an_anonymous_opinion_by_its_commune_in_the_inbox(harness, store):
    now = harness.clock()
    await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    hai_lang, village, opinion, report = await _anonymous_pair(store, now)
    binh = harness.person("8001", name="Cán bộ Bình")
    await turns(binh, [("/hopthu", [opinion.code, report.code])])
    inbox = binh.text()
    assert village.name not in _line_of(inbox, opinion.code) and "Hải Lăng" in _line_of(inbox, opinion.code)
    assert village.name in _line_of(inbox, report.code)
    await turns(binh, [(f"[{opinion.code}]", ["Địa bàn: xã Hải Lăng\n", f"!{village.name}", "ẩn danh"])])
    await turns(binh, [("/hopthu", []), (f"[{report.code}]", [f"Địa bàn: {village.name}, xã Hải Lăng"])])
    filtered = await store.cases.all_matching(InboxQuery(paths=None, view="all", locality_path=village.path), now, now)
    assert [c.code for c in filtered] == [report.code]  # a filter by village would name the opinion's village
    in_commune = await store.cases.all_matching(InboxQuery(paths=None, view="all", locality_path=hai_lang.path),
                                                now, now)
    assert {c.code for c in in_commune} == {opinion.code, report.code}


async def test_the_sender_still_sees_their_own_village(harness, store):
    now = harness.clock()
    _, village, opinion, _ = await _anonymous_pair(store, now)
    lan = harness.person("1001")
    await turns(lan, [("/theodoi", [opinion.code]), (f"[{opinion.code}]", [village.name])])


async def test_digests_charts_and_reminders_show_an_anonymous_opinion_by_its_commune(store):
    now = local(2026, 11, 30, 7, 30)
    user_id = await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    hai_lang, village, opinion, report = await _anonymous_pair(store, now - timedelta(days=1))
    user = await store.users.get(user_id)
    digest = (await compose(store, Settings(), user, now - timedelta(days=30), now, now, weekly=False)).replies[0].text
    assert "xã Hải Lăng 1" in digest and f"{village.name} 1" in digest  # by place: the report's village only
    assert village.name not in _line_of(digest, opinion.code) and village.name in _line_of(digest, report.code)
    shared = await Shared.load(store, now, TZ)
    t = Texts("vi")
    chart = await chart_data(store, t, await case_scope(store, user), shared.places, shared.topics,
                             now - timedelta(days=30), now, now, TZ)
    assert sorted(chart.overdue) == sorted([("xã Hải Lăng", 1), (village.name, 1)])
    due = await store.digests.overdue_not_escalated(now)
    text = reminder(t, "overdue", due, shared.places, shared.topics, now, TZ, 3).text
    assert village.name not in _line_of(text, opinion.code) and village.name in _line_of(text, report.code)


async def test_exports_show_an_anonymous_opinion_by_its_commune(store, clock):
    now = clock()
    hai_lang, village, opinion, report = await _anonymous_pair(store, now)
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(await cases_csv(store, now)))}
    assert rows[opinion.code]["commune"] == "Hải Lăng" and rows[opinion.code]["locality"] == "Hải Lăng"
    assert rows[report.code]["locality"] == village.name
    content, _ = await cases_xlsx(store, now)
    sheet = load_workbook(io.BytesIO(content))["Ý kiến"]
    header = [c.value for c in sheet[1]]
    cells = {r[0]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells[opinion.code]["Xã, phường"] == "xã Hải Lăng" and cells[opinion.code]["Thôn, tổ dân phố"] is None
    assert cells[report.code]["Thôn, tổ dân phố"] == village.name
    # An export of one village would name the opinion's village: it is left out (the commune's has it).
    by_village = list(csv.DictReader(io.StringIO(await cases_csv(store, now, locality=village.code))))
    assert [r["code"] for r in by_village] == [report.code]
    assert (await cases_xlsx(store, now, locality=village.code))[1] == 1
    assert (await cases_xlsx(store, now, locality=hai_lang.code))[1] == 2


async def test_the_urgent_notice_of_an_anonymous_report_names_its_village(harness, store):
    now = harness.clock()
    await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",))
    lan = harness.person()
    await turns(lan, ONBOARD[:5])
    village = (await store.localities.children((await store.localities.search("hai lang", level=1))[0].id))[0]
    await lan.click(village.name)
    await turns(lan, [("[Xong]", []), ("/phananh", []), ("[Khác]", []), ("[Đúng]", []),
                      ("Cống thoát nước bị tắc", []), ("[Tiếp tục]", []), ("[Gửi ẩn danh]", []),
                      ("[Khẩn cấp]", []), ("[Gửi]", ["PA-26-"])])
    [notice] = [r.text for chat, r, _ in harness.channel.sent if chat == "8001"]
    assert "Phản ánh khẩn cấp" in notice and f"{village.name}, xã Hải Lăng" in notice
