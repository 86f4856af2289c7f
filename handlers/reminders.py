"""Deadline reminders for cases, and escalation.

A case whose deadline is the next working day (or today) reminds the cadres responsible; once overdue it
reminds them again; after `escalate_after` working days overdue it goes to the level above — the cadres
whose scope is the next wider one (the province's) and the admins — and the responsible cadres are told.
"The cadres responsible" are those of the narrowest scope that holds the case (a commune's cadres, not
the province's), plus the cadre an admin assigned it to. bot/jobs.py decides when to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.base import Option, Reply, cb
from handlers.reports import Places, day, number
from handlers.workdays import working_days_between
from messages import Safe, Texts
from storage import Store
from storage.clock import parse
from storage.digests import DueCase
from storage.topics import Topic

LISTED = 10  # cases named in one message
BUTTONS = 5


def case_reminder_kind(case: DueCase, now: datetime, tz: ZoneInfo, escalate_after: int) -> str | None:
    """"soon", "overdue", "escalate" or nothing, for an open case at `now`."""
    due = parse(case.answer_due)
    if now < due:
        return "soon" if working_days_between(now, due, tz) <= 1 else None
    late = working_days_between(due, now, tz)
    if late >= escalate_after:
        return "escalate"
    return "overdue" if late >= 1 else None


def reminder_key(kind: str, case: DueCase) -> str:
    """One per case, kind and deadline: a case reopened with a new deadline is reminded again."""
    if kind == "escalate":
        return f"escalate:{case.id}:{case.answer_due}"  # storage.digests.overdue_not_escalated reads this form
    return f"remind:{case.id}:{kind}:{case.answer_due}"


@dataclass(frozen=True)
class Recipients:
    responsible: list[int]
    above: list[int]


async def recipients(store: Store, case: DueCase) -> Recipients:
    covering = await store.roles.cadres_covering(case.locality_path, case.topic_id)
    depths = await store.digests.cover_depths(covering, case.locality_path)
    narrowest = max(depths.values(), default=0)
    responsible = [u for u in covering if depths.get(u) == narrowest]
    if case.assigned_to and case.assigned_to not in responsible:
        responsible.append(case.assigned_to)
    wider = [d for d in set(depths.values()) if d < narrowest]
    above = [u for u in covering if wider and depths.get(u) == max(wider)]
    above += [u.id for u in await store.users.staff() if u.role == "admin" and u.id not in above]
    return Recipients(responsible, [u for u in above if u not in responsible])


def render(t: Texts, kind: str, cases: list[DueCase], places: Places, topics: dict[int, Topic], now: datetime,
           tz: ZoneInfo, escalate_after: int) -> Reply:
    """One message for one person: every case of one kind ("soon", "overdue", "escalated" to the level above,
    "escalated_mine" to the cadres responsible)."""
    lines = [t(f"remind.{kind}", count=number(len(cases), t.language), days=escalate_after)]
    for case in cases[:LISTED]:
        due = parse(case.answer_due)
        topic = topics.get(case.topic_id)
        lines.append(t("remind.line", code=case.code, place=places.full_name(t, case.locality_id),
                       topic=topic.name(t.language) if topic else "?", due=day(due, tz),
                       late=t("remind.late", days=working_days_between(due, now, tz)) if due < now else ""))
    if len(cases) > LISTED:
        lines.append(t("remind.and_more", count=number(len(cases) - LISTED, t.language)))
    rows = [(Option(t("remind.open", code=case.code), cb("cs", case.id)),) for case in cases[:BUTTONS]]
    view = "due_soon" if kind == "soon" else "overdue"
    rows.append((Option(t(f"remind.inbox_{view}"), cb("ib", view)),))
    return Reply(Safe("\n".join(lines)), tuple(rows))
