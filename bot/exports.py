"""Exports of cases from the command line: CSV, and the Excel workbook cadres get with /xuat.

A sender is named only when they did not choose to be anonymous.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.export import Filters, export_cases
from handlers.export import text_cell as _cell
from messages import Texts
from storage import Store
from storage.cases import InboxQuery
from storage.clock import parse
from storage.digests import CaseScope

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
EXCEL_ROWS = 1_000_000  # a worksheet holds 1,048,576 rows
COLUMNS = ["code", "kind", "status", "urgent", "topic", "commune", "locality", "created_at", "answer_due",
           "answered_at", "rating", "sender", "content", "hidden_reason"]


async def cases_csv(store: Store, now: datetime, *, status: str | None = None, topic: str | None = None,
                    locality: str | None = None, since: datetime | None = None, until: datetime | None = None,
                    tz: ZoneInfo = LOCAL) -> str:
    topics = {t.id: t for t in await store.topics.all()}
    topic_id = next((t.id for t in topics.values() if t.code == topic), -1) if topic else None
    place = await store.localities.by_code(locality) if locality else None
    query = InboxQuery(paths=None, view="all", topic_id=topic_id,
                       locality_path=place.path if place else ("-" if locality else None))
    cases = await store.cases.all_matching(query, now, now, since=since, until=until)
    if status:
        cases = [c for c in cases if c.status == status]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    names: dict[int, str] = {}

    def local(text: str | None) -> str:
        return parse(text).astimezone(tz).strftime("%d/%m/%Y %H:%M") if text else ""

    for case in cases:
        place = await store.localities.get(case.shown_locality_id)
        chain = await store.localities.ancestors(place)
        commune = next((a.name for a in chain if a.level == 1), "")
        sender = ""
        if not case.anonymous and case.user_id:
            if case.user_id not in names:
                user = await store.users.get(case.user_id)
                names[case.user_id] = (user.display_name or "") if user else ""
            sender = names[case.user_id]
        writer.writerow([case.code, case.kind, case.status, int(case.urgent), topics[case.topic_id].name_vi, commune,
                         place.name, local(case.created_at), local(case.answer_due), local(case.answered_at),
                         case.rating or "", _cell(sender), _cell(case.content), _cell(case.hidden_reason or "")])
    return out.getvalue()


async def cases_xlsx(store: Store, now: datetime, *, status: str | None = None, topic: str | None = None,
                     locality: str | None = None, since: datetime | None = None, until: datetime | None = None,
                     tz: ZoneInfo = LOCAL) -> tuple[bytes, int]:
    """The /xuat workbook (as an admin sees it) of a subtree or the whole province; (bytes, rows)."""
    t = Texts("vi")
    place = await store.localities.by_code(locality) if locality else None
    topic_row = await store.topics.by_code(topic) if topic else None
    scope = CaseScope((place.path,) if place else ("/",))
    if since and until:
        period = t("xlsx.period_range", since=since.astimezone(tz).strftime("%d/%m/%Y"),
                   until=(until.astimezone(tz) - timedelta(days=1)).strftime("%d/%m/%Y"))
    elif since:
        period = t("xlsx.period_range", since=since.astimezone(tz).strftime("%d/%m/%Y"),
                   until=now.astimezone(tz).strftime("%d/%m/%Y"))
    else:
        period = t("xlsx.period_all")
    content, rows, _ = await export_cases(
        store, t, scope, Filters(since, until, status or "all", topic_row.id if topic_row else None), tz, now,
        show_hidden=True, scope_name=t(f"kind.{place.kind}", name=place.name) if place else t("digest.whole_province"),
        period_name=period, limit=EXCEL_ROWS)
    return content, rows
