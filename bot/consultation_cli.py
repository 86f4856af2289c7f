"""`danvan consultation load|publish|report`: a draft document from .docx or Markdown, shown as a table of
contents before it is saved; its invitation through the broadcast outbox; the summary report."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import consultation_file
from bot.campaign_cli import start_link
from bot.config import Config
from bot.console import texts
from handlers.broadcast import parse_when
from handlers.campaigns import qr_png
from handlers.consultation_report import report_docx, report_xlsx
from handlers.consultation_staff import publish
from handlers.reports import when
from messages import Texts
from storage import Store
from storage.broadcasts import ROLES, Audience
from storage.consultations import CODE, ConsultationError

DAY = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")


def _h(key: str) -> str:
    return texts().plain(f"consultation.help.{key}")


def _say(key: str, **values: object) -> None:
    print(texts().plain(f"consultation.cli.{key}", **values), flush=True)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    consultation = sub.add_parser("consultation", help=_h("consultation")).add_subparsers(
        dest="consultation_command", required=True)
    load = consultation.add_parser("load", help=_h("load"))
    load.add_argument("file", type=Path)
    load.add_argument("--code", help=_h("code"))
    load.add_argument("--opens", metavar="DD/MM/YYYY[ HH:MM]", help=_h("opens"))
    load.add_argument("--closes", metavar="DD/MM/YYYY[ HH:MM]", required=True, help=_h("closes"))
    load.add_argument("--locality", action="append", default=[], metavar="CODE", help=_h("locality"))
    load.add_argument("--topic", action="append", default=[], metavar="CODE", help=_h("topic"))
    load.add_argument("--role", action="append", default=[], choices=ROLES, help=_h("role"))
    load.add_argument("--yes", action="store_true", help=_h("yes"))
    publish = consultation.add_parser("publish", help=_h("publish"))
    publish.add_argument("code")
    publish.add_argument("--qr", type=Path, metavar="FILE.png", help=_h("qr"))
    publish.add_argument("--web", action="store_true", help=_h("web"))
    report = consultation.add_parser("report", help=_h("report"))
    report.add_argument("code")
    report.add_argument("--out", type=Path, required=True, metavar="FILE.docx", help=_h("out"))
    report.add_argument("--threshold", type=int, choices=range(50, 101), metavar="50-100", help=_h("threshold"))


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now: datetime) -> int | None:
    """The command's exit status, or None when it is not one of these commands."""
    if args.command != "consultation":
        return None
    command = {"load": _load, "publish": _publish, "report": _report}[args.consultation_command]
    try:
        return await command(store, config, args, now)
    except consultation_file.Problem as problem:
        print(f"{getattr(args, 'file', None) or args.code}: {problem}", file=sys.stderr, flush=True)
        return 1
    except ConsultationError as err:
        print(texts().plain(f"consultation.file.{err.key}", **err.values), file=sys.stderr, flush=True)
        return 1


def _when(text: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime:
    """"27/11/2026 07:30" or "27/11/2026" (local; a closing day ends at midnight) → UTC."""
    moment = parse_when(text, tz)
    if moment is not None:
        return moment
    day = DAY.match(text)
    try:
        if day is None:
            raise ValueError(text)
        local = datetime(int(day.group(3)), int(day.group(2)), int(day.group(1)), tzinfo=tz)
    except ValueError:
        raise consultation_file.Problem("bad_when", value=text) from None
    return datetime.combine(local.date(), time(), tz) + (timedelta(days=1) if end_of_day else timedelta())


async def _audience(store: Store, args: argparse.Namespace) -> Audience:
    places, topics = [], []
    for code in args.locality:
        place = await store.localities.by_code(code)
        if place is None:
            raise consultation_file.Problem("unknown_locality", code=code)
        places.append(place.id)
    for code in args.topic:
        topic = await store.topics.by_code(code)
        if topic is None:
            raise consultation_file.Problem("unknown_topic", code=code)
        topics.append(topic.id)
    return Audience(tuple(topics), tuple(places), tuple(args.role))


async def _load(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    draft = await asyncio.to_thread(consultation_file.read, args.file)
    code = args.code or re.sub(r"[^A-Za-z0-9-]+", "-", args.file.stem).strip("-")[:40]
    if not CODE.match(code):
        raise ConsultationError("code", code=code)
    tz = ZoneInfo(config.tz)
    opens = _when(args.opens, tz, end_of_day=False) if args.opens else now
    closes = _when(args.closes, tz, end_of_day=True)
    audience = await _audience(store, args)
    _say("toc_title", code=code, title=draft.title)
    _say("toc_period", opens=when(opens, tz), closes=when(closes, tz))
    for position, (title, paragraphs) in enumerate(draft.sections, start=1):
        _say("toc_line", position=position, title=title, paragraphs=len(paragraphs))
    if not args.yes:
        _say("confirm_with_yes")
        return 0
    consultation = await store.consultations.save(code, draft, opens, closes, audience, now)
    await store.audit.record(None, "consultation.loaded", f"consultation:{code}", now, via="cli",
                             sections=len(draft.sections))
    _say("saved", code=consultation.code, sections=len(draft.sections))
    return 0


async def _publish(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    consultation = await store.consultations.by_code(args.code)
    if consultation is None:
        raise ConsultationError("unknown", code=args.code)
    if consultation.status != "draft":
        raise ConsultationError("published", code=args.code)
    tz = ZoneInfo(config.tz)
    link = await start_link(config, f"v_{consultation.code}", args.web)
    broadcast = await publish(store, consultation, link, config.quiet, tz, now, None)
    if broadcast is None:
        raise ConsultationError("published", code=args.code)
    if args.qr:
        await asyncio.to_thread(args.qr.write_bytes, qr_png(link))
    count = await store.broadcasts.count_audience(consultation.audience)
    await store.audit.record(None, "consultation.published", f"consultation:{consultation.code}", now, via="cli",
                             broadcast=broadcast.id)
    _say("published", code=consultation.code, id=broadcast.id, count=count,
         when=when(broadcast.scheduled_at, tz), link=link)
    return 0


async def _report(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    consultation = await store.consultations.by_code(args.code)
    if consultation is None:
        raise ConsultationError("unknown", code=args.code)
    tz = ZoneInfo(config.tz)
    report = await report_docx(store, consultation, Texts("vi"), tz, args.threshold or config.similarity)
    workbook = await report_xlsx(store, consultation, Texts("vi"), tz)
    xlsx = args.out.with_suffix(".xlsx")
    await asyncio.to_thread(args.out.write_bytes, report)
    await asyncio.to_thread(xlsx.write_bytes, workbook)
    await store.audit.record(None, "consultation.report", f"consultation:{consultation.code}", now, via="cli")
    _say("report_written", docx=args.out, xlsx=xlsx)
    return 0
