"""/nhatky: admins read the audit log in the chat, filtered by person, action and date, a page at a time, and
take it away as CSV.

Reading the log is itself written to it (who read what, with which filter), and so is every CSV. A listing keeps
the newest id it began with, so that its pages stay put while new entries (its own reads among them) arrive.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta

from handlers.base import ADMIN, Ctx, Document, Option, allowed, cb, registry, step_key
from handlers.export import parse_range, plain, text_cell
from handlers.features import Command, Feature
from handlers.reports import number
from messages import Texts, join
from storage.audit import SYSTEM, AuditQuery, LogLine
from storage.clock import parse
from storage.text import fold

FLOW = "nhatky"
registry.flow(FLOW, roles=ADMIN)
PAGE = 8
CSV_ROWS = 100_000
PERIODS = ("7", "30", "90", "all")
DETAIL_CHARS = 100  # of an entry's detail in the chat; the CSV has all of it
COLUMNS = ("id", "at", "actor_id", "actor", "role", "action", "target", "detail")


def _key(step: str) -> str:
    return step_key(FLOW, step)


def query(data: dict, now: datetime, tz) -> AuditQuery:
    """The filter a listing's draft describes."""
    today = now.astimezone(tz).date()
    since = until = None
    period = data.get("period", "all")
    if period in ("7", "30", "90"):
        since = datetime.combine(today - timedelta(days=int(period) - 1), time(0), tzinfo=tz)
    elif period == "range":
        since = datetime.combine(date.fromisoformat(data["since"]), time(0), tzinfo=tz)
        until = datetime.combine(date.fromisoformat(data["until"]) + timedelta(days=1), time(0), tzinfo=tz)
    return AuditQuery(actor=data.get("actor"), action=data.get("action"), since=since, until=until,
                      up_to=data.get("up_to"))


def _period_name(t: Texts, data: dict, q: AuditQuery) -> str:
    period = data.get("period", "all")
    if period in ("7", "30", "90") and q.since:
        return t("xlsx.period_last", days=period, since=q.since.strftime("%d/%m/%Y"))
    if period == "range" and q.since and q.until:
        return t("xlsx.period_range", since=q.since.strftime("%d/%m/%Y"),
                 until=(q.until - timedelta(days=1)).strftime("%d/%m/%Y"))
    return t("xlsx.period_all")


def _who(t: Texts, name: str | None, role: str | None, actor_id: int | None) -> str:
    if actor_id is None:
        return t("auditlog.system")
    return t("auditlog.person", name=name or t("auditlog.no_name"), id=actor_id,
             role=t(f"role.{role}") if role else t("auditlog.erased"))


def group_label(t: Texts, action: str) -> str:
    """A group of actions ("case"), in words where the catalog has them, else its code."""
    key = f"auditlog.group_{action}"
    return t(key) if t.has(key) else action


def _filter_detail(data: dict, q: AuditQuery) -> dict:
    """What the audit log records of a filter: as the admin chose it, dates in local time."""
    detail = {"by": q.actor, "actions": q.action, "period": data.get("period", "all")}
    if data.get("period") == "range":
        detail |= {"since": data["since"], "until": data["until"]}
    return detail


async def _may_read(ctx: Ctx) -> bool:
    """Checked where the log is read, not only when the command was typed: an admin removed mid-listing reads
    no further."""
    if allowed(ctx.user, ADMIN):
        return True
    await ctx.audit("denied", "auditlog")
    ctx.finish()
    ctx.say(ctx.t("common.not_allowed"))
    return False


@registry.command("nhatky", "auditlog")
async def auditlog_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", page=1, up_to=await ctx.store.audit.last_id())


async def _restart(ctx: Ctx, **changes: object) -> None:
    """Back to the first page of the listing, with a new filter and the entries written so far."""
    await ctx.goto(FLOW, "list", page=1, up_to=await ctx.store.audit.last_id(), **changes)


async def _list_prompt(ctx: Ctx) -> None:
    if not await _may_read(ctx):
        return
    tz = ctx.settings.tz
    q = query(ctx.data, ctx.now, tz)
    total = await ctx.store.audit.count(q)
    pages = max(1, -(-total // PAGE))
    page = min(ctx.data.get("page", 1), pages)
    ctx.data["page"] = page
    lines, _ = await ctx.store.audit.search(q, (page - 1) * PAGE, PAGE)
    await ctx.audit("auditlog.viewed", None, page=page, **_filter_detail(ctx.data, q))
    t, key = ctx.t, _key("list")
    who = t("auditlog.everyone")
    if q.actor == SYSTEM:
        who = t("auditlog.system")
    elif q.actor is not None:
        actor = await ctx.store.users.get(q.actor)
        who = _who(t, actor.display_name if actor else None, actor.role if actor else None, q.actor)
    body = join("\n", (_line(t, line, tz) for line in lines)) or t("auditlog.empty")
    text = t("auditlog.header", total=number(total, t.language), page=page, pages=pages, who=who,
             action=group_label(t, q.action) if q.action else t("auditlog.every_action"),
             period=_period_name(t, ctx.data, q), lines=body)
    rows = []
    paging = ([Option(t("common.prev"), cb(key, "prev"))] if page > 1 else []) + (
        [Option(t("common.next"), cb(key, "next"))] if page < pages else [])
    if paging:
        rows.append(tuple(paging))
    rows.append(ctx.row(key, ("auditlog.choose_who", "who"), ("auditlog.choose_action", "what")))
    rows.append(ctx.row(key, ("auditlog.choose_period", "when"), ("auditlog.csv", "csv")))
    if q.actor is not None or q.action or ctx.data.get("period", "all") != "all":
        rows.append(ctx.row(key, ("auditlog.clear", "clear")))
    ctx.say(text, rows)


def _line(t: Texts, line: LogLine, tz) -> str:
    detail = json.dumps(line.detail, ensure_ascii=False) if line.detail else ""
    if len(detail) > DETAIL_CHARS:
        detail = detail[: DETAIL_CHARS - 1] + "…"
    return t("auditlog.line", at=parse(line.at).astimezone(tz).strftime("%d/%m/%Y %H:%M"),
             who=_who(t, line.actor_name, line.actor_role, line.actor_id), action=line.action,
             target=line.target or "", detail=detail)


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    page = ctx.data.get("page", 1)
    match ctx.choice:
        case ("prev",) if page > 1:
            await ctx.goto(FLOW, "list", page=page - 1)
        case ("next",):
            await ctx.goto(FLOW, "list", page=page + 1)
        case ("who",):
            await ctx.goto(FLOW, "who", who_query=None)
        case ("what",):
            await ctx.goto(FLOW, "what")
        case ("when",):
            await ctx.goto(FLOW, "when")
        case ("clear",):
            await _restart(ctx, actor=None, action=None, period="all")
        case ("csv",):
            await _csv(ctx)
        case _:
            await ctx.wrong()


async def _csv(ctx: Ctx) -> None:
    if not await _may_read(ctx):
        return
    await ctx.typing()
    tz = ctx.settings.tz
    q = query(ctx.data, ctx.now, tz)
    lines, total = await ctx.store.audit.search(q, 0, CSV_ROWS)
    await ctx.audit("auditlog.exported", None, format="csv", rows=len(lines), **_filter_detail(ctx.data, q))
    ctx.finish()
    name = f"nhat-ky-{ctx.now.astimezone(tz).strftime('%Y%m%d-%H%M')}.csv"
    ctx.say(ctx.t("auditlog.csv_ready_cut" if total > len(lines) else "auditlog.csv_ready",
                  rows=number(len(lines), ctx.t.language), total=number(total, ctx.t.language)),
            document=Document(name, audit_csv(ctx.t, lines, tz).encode("utf-8-sig"), "text/csv"))


def audit_csv(t: Texts, lines: list[LogLine], tz) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([plain(t(f"auditlog.col_{name}")) for name in COLUMNS])
    for line in lines:
        writer.writerow([line.id, parse(line.at).astimezone(tz).strftime("%d/%m/%Y %H:%M:%S"),
                         line.actor_id if line.actor_id is not None else "", text_cell(line.actor_name or ""),
                         plain(t(f"role.{line.actor_role}")) if line.actor_role else "", line.action,
                         text_cell(line.target or ""),
                         text_cell(json.dumps(line.detail, ensure_ascii=False) if line.detail else "")])
    return out.getvalue()


# ---- the filters -------------------------------------------------------------------------------------


async def _who_prompt(ctx: Ctx) -> None:
    key, t = _key("who"), ctx.t
    actors = await ctx.store.audit.actors()
    typed = ctx.data.get("who_query")
    if typed:
        folded = fold(typed)
        actors = [a for a in actors if str(a.id) == folded or folded in fold(a.name or "")]
    rows = [(Option(plain(_who(t, a.name, a.role, a.id)), cb(key, a.id)),) for a in actors[:10]]
    rows.append((Option(t("auditlog.everyone"), cb(key, "all")), Option(t("auditlog.system"), cb(key, "sys"))))
    rows.append((Option(t("common.back"), cb(key, "back")),))
    ctx.say(t("auditlog.ask_who_found" if typed else "auditlog.ask_who", query=typed or ""), rows)


@registry.step(FLOW, "who", _who_prompt)
async def _who_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind == "text" and 0 < len(ctx.inbound.text.strip()) <= 60:
        typed = ctx.inbound.text.strip()
        folded = fold(typed)
        if not any(str(a.id) == folded or folded in fold(a.name or "") for a in await ctx.store.audit.actors()):
            await ctx.reask("auditlog.who_not_found", query=typed)
            return
        await ctx.goto(FLOW, "who", who_query=typed)
        return
    match ctx.choice:
        case ("all",):
            await _restart(ctx, actor=None)
        case ("sys",):
            await _restart(ctx, actor=SYSTEM)
        case ("back",):
            await ctx.goto(FLOW, "list")
        case (chosen,) if chosen.isdigit():
            await _restart(ctx, actor=int(chosen))
        case _:
            await ctx.wrong()


def _groups(actions: list[str]) -> list[str]:
    return sorted({action.split(".", 1)[0] for action in actions})


async def _what_prompt(ctx: Ctx) -> None:
    key = _key("what")
    buttons = [Option(group_label(ctx.t, g), cb(key, g)) for g in _groups(await ctx.store.audit.actions())
               if len(g) <= 24]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    rows.append(ctx.row(key, ("auditlog.every_action", "_all"), ("common.back", "_back")))
    ctx.say(ctx.t("auditlog.ask_action"), rows)


@registry.step(FLOW, "what", _what_prompt)
async def _what_handle(ctx: Ctx) -> None:
    actions = await ctx.store.audit.actions()
    if ctx.inbound.kind == "text":  # an exact action, "case.answered", or a group
        typed = ctx.inbound.text.strip().lower()
        if typed in actions or typed in _groups(actions):
            await _restart(ctx, action=typed)
        else:
            await ctx.reask("auditlog.action_not_found", action=typed[:40])
        return
    match ctx.choice:
        case ("_all",):
            await _restart(ctx, action=None)
        case ("_back",):
            await ctx.goto(FLOW, "list")
        case (group,) if group in _groups(actions):
            await _restart(ctx, action=group)
        case _:
            await ctx.wrong()


async def _when_prompt(ctx: Ctx) -> None:
    key = _key("when")
    ctx.say(ctx.t("auditlog.ask_period"), [
        tuple(Option(ctx.t(f"xlsx.last_{p}"), cb(key, p)) for p in PERIODS),
        (Option(ctx.t("common.back"), cb(key, "back")),),
    ])


@registry.step(FLOW, "when", _when_prompt)
async def _when_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind == "text":
        typed = ctx.inbound.text.strip()
        chosen = (parse_range(typed) or parse_range(f"{typed} - {typed}")) if len(typed) < 60 else None
        if chosen is None:
            await ctx.reask("auditlog.date_invalid")
            return
        await _restart(ctx, period="range", since=chosen[0].isoformat(), until=chosen[1].isoformat())
        return
    match ctx.choice:
        case (period,) if period in PERIODS:
            await _restart(ctx, period=period)
        case ("back",):
            await ctx.goto(FLOW, "list")
        case _:
            await ctx.wrong()


async def export(ctx: Ctx) -> dict:
    """What the person did as staff, as the audit log keeps it."""
    return {"actions_as_staff": [{"at": e.at, "action": e.action, "target": e.target}
                                 for e in await ctx.store.audit.by_actor(ctx.user.id)]}


FEATURE = Feature("auditlog", commands=(Command("nhatky", ADMIN, menu="menu.nhatky", place=190),),
                  export=export, exported=("audit_log",),
                  kept={"audit_log": "who did what as staff, for accountability; the anonymous row names nobody"})
