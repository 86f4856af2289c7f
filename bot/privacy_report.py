"""`danvan privacy report`: the processing report for the operator's data-protection file (Decree 13/2023, Law
91/2025), in Vietnamese, as Markdown: what personal data is held by channel and purpose, consents by the version of
the text shown, erasures and retention in the period, and staff access (from the audit log).

The numbers come from storage/privacy_report.py; every sentence from the catalog's [report] section. Writing the
report is itself audited.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.console import help_text as _h
from bot.console import operator, say
from handlers.auditlog import group_label
from handlers.reports import number
from messages import Key, Texts, channel_key
from storage import Store, privacy_report
from storage.clock import parse
from storage.users import PURPOSES

ERASURE = ("user.erased", "retention.")  # actions that erase personal data: on request, or when it is due
# The access table's columns: (column, the actions it counts: exact, or a group ending in ".").
ACCESS = (("exports", ("cases.exported",)), ("cases", ("case.",)), ("log_reads", ("auditlog.viewed",)),
          ("log_exports", ("auditlog.exported",)), ("reports", ("privacy.report",)), ("denied", ("denied",)))


def add_parsers(sub: argparse._SubParsersAction, date_type) -> None:
    privacy = sub.add_parser("privacy", help=_h("report.privacy")).add_subparsers(dest="privacy_command",
                                                                                   required=True)
    report = privacy.add_parser("report", help=_h("report.report"))
    report.add_argument("--from", dest="since", type=date_type, metavar="YYYY-MM-DD", help=_h("report.since"))
    report.add_argument("--to", dest="until", type=date_type, metavar="YYYY-MM-DD", help=_h("report.until"))
    report.add_argument("--out", type=Path, help=_h("report.out"))


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now: datetime) -> int | None:
    """The command's exit status, or None when it is not this command."""
    if args.command != "privacy":
        return None
    tz = ZoneInfo(config.tz)
    first = args.since or date(now.astimezone(tz).year, 1, 1)
    last = args.until or now.astimezone(tz).date()
    if first > last:
        say("report.empty_period", error=True, since=first.strftime("%d/%m/%Y"), until=last.strftime("%d/%m/%Y"))
        return 2
    text = await build(store, first, last, tz, now, config.operator_name)
    await store.audit.record(None, "privacy.report", None, now, via="cli", os_user=operator(),
                             since=first.isoformat(), until=last.isoformat(), out=str(args.out) if args.out else None)
    if args.out:
        await asyncio.to_thread(args.out.write_text, text, encoding="utf-8")
        say("report.written", file=args.out)
    else:
        sys.stdout.write(text)
    return 0


def _cell(text: object) -> str:
    """A value inside a Markdown table: a "|" would split the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _row(*cells: object) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(head: str, rows: list[str], empty: str = "") -> list[str]:
    """A Markdown table, or the sentence `empty` when it has no rows."""
    if not rows and empty:
        return [empty]
    return [head, "|" + "---|" * (head.count("|") - 1), *rows]


@dataclass
class _Access:
    who: str
    role: str
    counts: dict[str, int] = field(default_factory=dict)
    last: str = ""


class _Report:
    """The report's sections, in Vietnamese, for one period."""

    def __init__(self, store: Store, first: date, last: date, tz: ZoneInfo) -> None:
        self.store, self.first, self.last, self.tz = store, first, last, tz
        self.since = datetime.combine(first, time(0), tzinfo=tz)
        self.until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
        self.t = Texts("vi")

    def n(self, value: int) -> str:
        return number(value or 0, "vi")

    def day(self, moment: str) -> str:
        return parse(moment).astimezone(self.tz).strftime("%d/%m/%Y")

    def channel(self, channel: str) -> str:
        if not channel:
            return self.t.plain("report.unlinked")
        name = channel_key(channel)
        name = self.t.plain(name) if isinstance(name, Key) else name
        return name[:1].upper() + name[1:]  # a column's heading

    async def held(self) -> list[str]:
        t, n = self.t, self.n
        held = await privacy_report.held(self.store.db)
        people = [h for h in held if h.channel]
        columns = (lambda h: h.accounts, lambda h: h.onboarded, lambda h: h.named, lambda h: h.placed,
                   lambda h: h.staff, *((lambda h, p=p: h.consents.get(p, 0)) for p in PURPOSES))
        rows = [_row(self.channel(h.channel), *(n(value(h)) for value in columns)) for h in people]
        rows.append(_row(t.plain("report.total"), *(n(sum(value(h) for h in people)) for value in columns)))
        out = [t.plain("report.held_title"), "", *_table(t.plain("report.held_head"), rows), "",
               t.plain("report.held_note"), "", t.plain("report.purpose_title"), ""]
        items = [("news", "consent_news", lambda h: h.consents.get("news", 0)),
                 ("news", "placed", lambda h: h.placed), ("news", "topics", lambda h: h.topics_followed),
                 ("opinions", "consent_opinions", lambda h: h.consents.get("opinions", 0)),
                 ("opinions", "cases", lambda h: h.cases), ("opinions", "anonymous", lambda h: h.anonymous),
                 ("opinions", "files", lambda h: h.files), ("opinions", "locations", lambda h: h.locations),
                 ("opinions", "nominations", lambda h: h.nominations),
                 ("opinions", "nomination_photos", lambda h: h.nomination_photos),
                 ("opinions", "votes", lambda h: h.votes),
                 ("opinions", "responses", lambda h: h.responses),
                 ("opinions", "anonymous_responses", lambda h: h.anonymous_responses),
                 ("sensitive", "consent_sensitive", lambda h: h.consents.get("sensitive", 0)),
                 ("sensitive", "sensitive_cases", lambda h: h.sensitive),
                 ("sensitive", "political_responses", lambda h: h.political_responses),
                 ("sensitive", "political_anonymous", lambda h: h.political_anonymous),
                 ("sensitive", "consultation_comments", lambda h: h.consultation_comments),
                 ("sensitive", "anonymous_comments", lambda h: h.anonymous_comments),
                 ("sensitive", "consultation_answers", lambda h: h.consultation_answers),
                 ("service", "named", lambda h: h.named), ("service", "drafts", lambda h: h.drafts)]
        rows, previous = [], None
        for purpose, item, value in items:
            label = t.plain(f"report.purpose_{purpose}") if purpose != previous else ""
            previous = purpose
            rows.append(_row(label, t.plain(f"report.item_{item}"), *(n(value(h)) for h in held),
                             n(sum(value(h) for h in held))))
        head = _row(t.plain("report.col_purpose"), t.plain("report.col_data"), *(self.channel(h.channel) for h in held),
                    t.plain("report.total"))
        return [*out, *_table(head, rows), ""]

    async def consents(self) -> list[str]:
        t, n = self.t, self.n
        rows = [_row(t.plain(f"purpose.{v.purpose}"), f"`{v.text_version}`", n(v.granted_now), n(v.refused_now),
                     n(v.recorded_in_period), self.day(v.first_at), self.day(v.last_at))
                for v in await privacy_report.consent_versions(self.store.db, self.since, self.until)]
        return [t.plain("report.consents_title"), "", t.plain("report.consents_note"), "",
                *_table(t.plain("report.consents_head"), rows, t.plain("report.consents_none")), ""]

    async def erasures(self, activity: list[privacy_report.Activity]) -> list[str]:
        t = self.t
        erased: dict[str, int] = {}
        for a in activity:
            if a.action.startswith(ERASURE):
                erased[a.action] = erased.get(a.action, 0) + a.count
        rows = [_row(group_label(t, action.split(".", 1)[0]), f"`{action}`", self.n(count))
                for action, count in sorted(erased.items())]
        withdrawn = await privacy_report.withdrawals(self.store.db, self.since, self.until)
        return [t.plain("report.erasure_title"), "",
                *_table(t.plain("report.erasure_head"), rows, t.plain("report.erasure_none")), "",
                t.plain("report.withdrawals", count=self.n(withdrawn)), ""]

    def access(self, activity: list[privacy_report.Activity]) -> list[str]:
        t = self.t
        access: dict[int | None, _Access] = {}
        for a in activity:
            column = next((c for c, actions in ACCESS if a.action in actions
                           or any(x.endswith(".") and a.action.startswith(x) for x in actions)), None)
            if column is None:
                continue
            who = access.setdefault(a.actor_id, _Access(
                t.plain("report.system") if a.actor_id is None else
                t.plain("report.person", name=a.name or t.plain("report.no_name"), id=a.actor_id),
                t.plain(f"role.{a.role}") if a.role else ""))
            who.counts[column] = who.counts.get(column, 0) + a.count
            who.last = max(who.last, a.last_at)
        rows = [_row(x.who, x.role, *(self.n(x.counts.get(c, 0)) for c, _ in ACCESS), self.day(x.last))
                for _, x in sorted(access.items(), key=lambda item: (item[0] is not None, item[0] or 0))]
        return [t.plain("report.access_title"), "",
                *_table(t.plain("report.access_head"), rows, t.plain("report.access_none")), "",
                t.plain("report.access_note"), ""]


async def build(store: Store, first: date, last: date, tz: ZoneInfo, now: datetime, operator_name: str) -> str:
    report = _Report(store, first, last, tz)
    t = report.t
    activity = await privacy_report.activity(store.db, report.since, report.until)
    out = [t.plain("report.title"), "",
           t.plain("report.intro", operator=operator_name, since=first.strftime("%d/%m/%Y"),
                   until=last.strftime("%d/%m/%Y"), at=now.astimezone(tz).strftime("%d/%m/%Y %H:%M")), "",
           *await report.held(), *await report.consents(), *await report.erasures(activity),
           *report.access(activity)]
    return "\n".join(out)
