"""/xuat: an Excel workbook of the cases in my scope, filtered by dates, status and topic.

One row per case; dates are Excel dates (local time); the header row is frozen and has filters. An
anonymous sender is never named, and a cadre sees a hidden content's reason, not the content (as in the
inbox). Text from people is always written as text, never as a formula. `danvan export cases --format
xlsx` builds the same workbook from the command line.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.base import STAFF, Ctx, Document, Option, cb, registry, step_key
from handlers.features import Command, Feature
from handlers.reports import Places, case_scope, number, when
from messages import Texts
from storage import Store
from storage.cases import OPEN
from storage.clock import parse
from storage.digests import CaseScope, ExportRow
from storage.topics import Topic

FLOW = "xuat"
registry.flow(FLOW, roles=STAFF)
MAX_ROWS = 50_000
PERIODS = ("7", "30", "90", "year", "all")
CASE_STATUSES = ("new", "acknowledged", "in_progress", "answered", "resolved", "declined", "duplicate",
                 "withdrawn")
STATUSES = {"all": (), "open": OPEN, "overdue": OPEN, "answered": ("answered",), "resolved": ("resolved",),
            "declined": ("declined",), "duplicate": ("duplicate",)}
COLUMNS = (("code", 14), ("kind", 16), ("status", 16), ("urgent", 10), ("topic", 26), ("commune", 22),
           ("village", 22), ("created", 17), ("due", 17), ("answered", 17), ("closed", 17), ("rating", 16),
           ("sender", 22), ("content", 60))
DATE_FORMAT = "dd/mm/yyyy hh:mm"
_RANGE = re.compile(r"^\s*(\d{1,2}/\d{1,2}/\d{4})\s*(?:-|–|đến|den|to)\s*(\d{1,2}/\d{1,2}/\d{4})\s*$", re.IGNORECASE)


def _key(step: str) -> str:
    return step_key(FLOW, step)


def plain(text: str) -> str:
    """A catalog text for a cell: no HTML entities."""
    return html.unescape(str(text))


def text_cell(text: str) -> str:
    """What a person wrote, for a CSV cell: never read as a formula by a spreadsheet ("=HYPERLINK(…)")."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ---- the workbook -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    status: str = "all"  # a key of STATUSES, or one case status
    topic_id: int | None = None


def workbook(t: Texts, rows: list[ExportRow], places: Places, topics: dict[int, Topic], tz: ZoneInfo, *,
             show_hidden: bool, info: list[tuple[str, str]]) -> bytes:
    """The .xlsx file. CPU-bound: call it in a thread."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = plain(t("xlsx.sheet_cases"))
    sheet.append([plain(t(f"xlsx.col_{name}")) for name, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F4E79")
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    labels = {key: plain(t(key)) for key in (
        "case.kind_gopy", "case.kind_phananh", "xlsx.yes", "xlsx.rating_good", "xlsx.rating_ok", "xlsx.rating_bad",
        *(f"status.{s}" for s in CASE_STATUSES))}

    def local(moment: str | None) -> datetime | None:
        return parse(moment).astimezone(tz).replace(tzinfo=None) if moment else None

    for number_, row in enumerate(rows, start=2):
        commune = places.at_level(row.locality_id, 1)
        village = places.at_level(row.locality_id, 2)
        topic = topics.get(row.topic_id)
        content = row.content
        if row.hidden_reason and not show_hidden:
            content = f"{plain(t('xlsx.hidden'))}: {row.hidden_reason}"
        values = [row.code, labels[f"case.kind_{row.kind}"], labels[f"status.{row.status}"],
                  labels["xlsx.yes"] if row.urgent else "", topic.name(t.language) if topic else "",
                  plain(places.name(t, commune)) if commune is not None else "",
                  plain(places.name(t, village)) if village is not None and village != commune else "",
                  local(row.created_at), local(row.answer_due), local(row.answered_at), local(row.closed_at),
                  labels[f"xlsx.rating_{row.rating}"] if row.rating else "", row.sender or "", content]
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(number_, column, value if value != "" else None)
            if isinstance(value, datetime):
                cell.number_format = DATE_FORMAT
            elif isinstance(value, str) and value:
                cell.data_type = "s"  # "=…" from a person stays text, never a formula
    for column, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{max(len(rows) + 1, 2)}"

    about = book.create_sheet(plain(t("xlsx.sheet_info")))
    for label, value in info:
        about.append([label, value])
        about.cell(about.max_row, 2).data_type = "s"
    about.column_dimensions["A"].width = 28
    about.column_dimensions["B"].width = 70
    for cell in about["A"]:
        cell.font = Font(bold=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def export_cases(store: Store, t: Texts, scope: CaseScope, filters: Filters, tz: ZoneInfo, now: datetime, *,
                       show_hidden: bool, scope_name: str, period_name: str,
                       limit: int = MAX_ROWS) -> tuple[bytes, int, bool]:
    """(the workbook, rows written, whether rows were left out over `limit`: the newest are kept)."""
    statuses = STATUSES.get(filters.status, (filters.status,) if filters.status in CASE_STATUSES else ())
    rows = await store.digests.export(
        scope, since=filters.since, until=filters.until, statuses=statuses,
        due_before=now if filters.status == "overdue" else None, topic_id=filters.topic_id, limit=limit + 1)
    cut = len(rows) > limit
    rows = rows[:limit]
    places = await Places.load(store)
    topics = {tp.id: tp for tp in await store.topics.all()}
    topic = topics.get(filters.topic_id) if filters.topic_id else None
    info = [(plain(t("xlsx.info_scope")), plain(scope_name)),
            (plain(t("xlsx.info_period")), plain(period_name)),
            (plain(t("xlsx.info_status")), plain(t(f"xlsx.status_{filters.status}") if filters.status in STATUSES
                                                  else t(f"status.{filters.status}"))),
            (plain(t("xlsx.info_topic")), topic.name(t.language) if topic else plain(t("xlsx.any"))),
            (plain(t("xlsx.info_rows")), number(len(rows), t.language)),
            (plain(t("xlsx.info_at")), when(now, tz)),
            (plain(t("xlsx.info_privacy")), plain(t("xlsx.privacy")))]
    content = await asyncio.to_thread(workbook, t, rows, places, topics, tz, show_hidden=show_hidden, info=info)
    return content, len(rows), cut


# ---- /xuat --------------------------------------------------------------------------------------------


def _filters(data: dict, now: datetime, tz: ZoneInfo) -> Filters:
    today = now.astimezone(tz).date()
    period = data.get("period", "30")
    since = until = None
    if period in ("7", "30", "90"):
        since = datetime.combine(today - timedelta(days=int(period) - 1), time(0), tzinfo=tz)
    elif period == "year":
        since = datetime.combine(date(today.year, 1, 1), time(0), tzinfo=tz)
    elif period == "range" and isinstance(data.get("since"), str) and isinstance(data.get("until"), str):
        since = datetime.combine(date.fromisoformat(data["since"]), time(0), tzinfo=tz)
        until = datetime.combine(date.fromisoformat(data["until"]) + timedelta(days=1), time(0), tzinfo=tz)
    status = data.get("status") if data.get("status") in STATUSES else "all"
    topic_id = data.get("topic_id") if isinstance(data.get("topic_id"), int) else None
    return Filters(since, until, status, topic_id)


def _period_name(t: Texts, data: dict, filters: Filters, tz: ZoneInfo) -> str:
    period = data.get("period", "30")
    if period in ("7", "30", "90") and filters.since:
        return t("xlsx.period_last", days=period, since=filters.since.strftime("%d/%m/%Y"))
    if period == "year" and filters.since:
        return t("xlsx.period_year", year=filters.since.year)
    if period == "range" and filters.since and filters.until:
        return t("xlsx.period_range", since=filters.since.strftime("%d/%m/%Y"),
                 until=(filters.until - timedelta(days=1)).strftime("%d/%m/%Y"))
    return t("xlsx.period_all")


@registry.command("xuat", "export")
async def export_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "menu", period="30", status="all", topic_id=None)


async def _menu_prompt(ctx: Ctx) -> None:
    filters = _filters(ctx.data, ctx.now, ctx.settings.tz)
    topic = await ctx.store.topics.get(filters.topic_id) if filters.topic_id else None
    key = _key("menu")
    ctx.say(ctx.t("xlsx.menu", period=_period_name(ctx.t, ctx.data, filters, ctx.settings.tz),
                  status=ctx.t(f"xlsx.status_{filters.status}"),
                  topic=topic.name(ctx.t.language) if topic else ctx.t("xlsx.any")),
            [(Option(ctx.t("xlsx.choose_period"), cb(key, "p")), Option(ctx.t("xlsx.choose_status"), cb(key, "s"))),
             (Option(ctx.t("xlsx.choose_topic"), cb(key, "t")),),
             (Option(ctx.t("xlsx.download"), cb(key, "go")),)])


@registry.step(FLOW, "menu", _menu_prompt)
async def _menu_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if args == ("p",):
        await ctx.goto(FLOW, "period")
    elif args == ("s",):
        await ctx.goto(FLOW, "status")
    elif args == ("t",):
        await ctx.goto(FLOW, "topic")
    elif args == ("go",):
        await _download(ctx)
    else:
        await ctx.wrong()


async def _download(ctx: Ctx) -> None:
    await ctx.typing()
    tz = ctx.settings.tz
    filters = _filters(ctx.data, ctx.now, tz)
    scope = await case_scope(ctx.store, ctx.user)
    scope_name = ctx.user.unit_name if ctx.user.role == "cadre" and ctx.user.unit_name else ctx.t(
        "digest.whole_province")
    content, rows, cut = await export_cases(
        ctx.store, ctx.t, scope, filters, tz, ctx.now, show_hidden=ctx.user.role == "admin", scope_name=scope_name,
        period_name=_period_name(ctx.t, ctx.data, filters, tz))
    await ctx.audit("cases.exported", None, via="chat", format="xlsx", rows=rows, status=filters.status,
                    topic=filters.topic_id, period=ctx.data.get("period"), since=ctx.data.get("since"),
                    until=ctx.data.get("until"))
    ctx.finish()
    name = f"y-kien-{ctx.now.astimezone(tz).strftime('%Y%m%d-%H%M')}.xlsx"
    ctx.say(ctx.t("xlsx.ready_cut" if cut else "xlsx.ready", rows=number(rows, ctx.t.language),
                  limit=number(MAX_ROWS, ctx.t.language)),
            document=Document(name, content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


async def _period_prompt(ctx: Ctx) -> None:
    key = _key("period")
    ctx.say(ctx.t("xlsx.ask_period"), [
        tuple(Option(ctx.t(f"xlsx.last_{p}"), cb(key, p)) for p in PERIODS[:3]),
        tuple(Option(ctx.t(f"xlsx.last_{p}"), cb(key, p)) for p in PERIODS[3:]),
    ])


def parse_range(text: str) -> tuple[date, date] | None:
    """"01/11/2026 - 26/11/2026" → the two dates, in order; None if it is no such range."""
    match = _RANGE.match(text)
    if match is None:
        return None
    try:
        first, last = (datetime.strptime(part, "%d/%m/%Y").date() for part in match.groups())
    except ValueError:
        return None
    return (first, last) if first <= last else (last, first)


@registry.step(FLOW, "period", _period_prompt)
async def _period_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind == "choice":
        if ctx.args in tuple((p,) for p in PERIODS):
            await ctx.goto(FLOW, "menu", period=ctx.args[0])
        else:
            await ctx.reask(ctx.stale_key)
        return
    chosen = parse_range(ctx.inbound.text) if ctx.inbound.kind == "text" and len(ctx.inbound.text) < 60 else None
    if chosen is None:
        await ctx.reask("xlsx.range_invalid")
        return
    await ctx.goto(FLOW, "menu", period="range", since=chosen[0].isoformat(), until=chosen[1].isoformat())


async def _status_prompt(ctx: Ctx) -> None:
    key = _key("status")
    buttons = [Option(ctx.t(f"xlsx.status_{s}"), cb(key, s)) for s in STATUSES]
    ctx.say(ctx.t("xlsx.ask_status"), [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)])


@registry.step(FLOW, "status", _status_prompt)
async def _status_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if len(args) == 1 and args[0] in STATUSES:
        await ctx.goto(FLOW, "menu", status=args[0])
    else:
        await ctx.wrong()


async def _topic_prompt(ctx: Ctx) -> None:
    key = _key("topic")
    rows = [(Option(ctx.t("xlsx.any"), cb(key, "all")),)]
    rows += [(Option(tp.name(ctx.t.language), cb(key, tp.id)),) for tp in await ctx.store.topics.all()]
    ctx.say(ctx.t("xlsx.ask_topic"), rows)


@registry.step(FLOW, "topic", _topic_prompt)
async def _topic_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if args == ("all",):
        await ctx.goto(FLOW, "menu", topic_id=None)
        return
    topic = await ctx.store.topics.get(int(args[0])) if len(args) == 1 and args[0].isdigit() else None
    if topic is None:
        await ctx.wrong()
        return
    await ctx.goto(FLOW, "menu", topic_id=topic.id)


FEATURE = Feature("export", commands=(Command("xuat", STAFF, menu="menu.xuat", place=110),))
