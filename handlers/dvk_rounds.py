"""Admins' rounds of "Dân vận khéo" (đợt bình xét): a name, a year, the period whose nominations it gathers, the
criteria, and optionally a vote by residents with its own period; each round's report as Excel and .docx.

name → year → period → criteria → vote period or none.
"""

from __future__ import annotations

import re
from datetime import date

from handlers import dvk_report
from handlers.base import ADMIN, Ctx, Document, Option, cb, registry, step_key
from storage.dvk import Round, repo

FLOW = "dvkr"
registry.flow(FLOW, roles=ADMIN)
PERIOD = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*[-–—]\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _key(step: str) -> str:
    return step_key(FLOW, step)


def parse_period(text: str) -> tuple[date, date] | None:
    """"01/03/2026 - 30/11/2026" → the two dates, the first not after the second; None otherwise."""
    match = PERIOD.match(text)
    if match is None:
        return None
    d1, m1, y1, d2, m2, y2 = (int(g) for g in match.groups())
    try:
        first, last = date(y1, m1, d1), date(y2, m2, d2)
    except ValueError:
        return None
    return (first, last) if first <= last else None


def _day(text: str | None) -> str:
    return date.fromisoformat(text).strftime("%d/%m/%Y") if text else ""


@registry.action("dvkr", roles=ADMIN)
async def rounds_button(ctx: Ctx) -> None:
    ctx.conversation = None
    await ctx.goto(FLOW, "list")


async def _list_prompt(ctx: Ctx) -> None:
    key = _key("list")
    rows = [(Option(ctx.t("dvk.round_line", name=r.name, year=r.year), cb(key, "r", r.id)),)
            for r in (await repo(ctx.store).rounds())[:10]]
    rows.append((Option(ctx.t("dvk.round_add"), cb(key, "add")),))
    ctx.say(ctx.t("dvk.rounds_title", count=len(rows) - 1), rows)


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if args == ("add",):
        await ctx.goto(FLOW, "name")
    elif len(args) == 2 and args[0] == "r" and args[1].isdigit() and await repo(ctx.store).round(int(args[1])):
        await ctx.goto(FLOW, "round", round_id=int(args[1]))
    else:
        await ctx.wrong()


def describe(ctx: Ctx, r: Round) -> str:
    vote = ctx.t("dvk.round_vote", start=_day(r.vote_starts_on), end=_day(r.vote_ends_on)) if r.vote_starts_on \
        else ctx.t("dvk.round_no_vote")
    return ctx.t("dvk.round", name=r.name, year=r.year, start=_day(r.starts_on), end=_day(r.ends_on),
                 criteria=r.criteria, vote=vote)


async def _round_prompt(ctx: Ctx) -> None:
    r = await repo(ctx.store).round(int(ctx.data["round_id"]))
    if r is None:
        await ctx.goto(FLOW, "list")
        return
    ctx.say(describe(ctx, r), [ctx.row(_key("round"), ("dvk.report", "rep")),
                               ctx.row(_key("round"), ("common.back", "back"))])


@registry.step(FLOW, "round", _round_prompt)
async def _round_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "list")
    elif ctx.choice == ("rep",) and (r := await repo(ctx.store).round(int(ctx.data["round_id"]))):
        t = ctx.t
        await ctx.typing()
        report = await dvk_report.gather(ctx.store, t, r)
        xlsx = await dvk_report.workbook(t, report)
        docx = await dvk_report.summary(t, report, ctx.settings.operator_name)
        await ctx.audit("dvk.report", f"dvk_round:{r.id}")
        ctx.say(t("dvk.report_xlsx", name=r.name), document=Document(f"dan-van-kheo-{r.year}-{r.id}.xlsx", xlsx, XLSX))
        ctx.say(t("dvk.report_docx", name=r.name), document=Document(f"dan-van-kheo-{r.year}-{r.id}.docx", docx, DOCX))
    else:
        await ctx.wrong()


# ---- a new round ------------------------------------------------------------------------------------------------


def _ask(step: str):
    async def prompt(ctx: Ctx) -> None:
        ctx.say(ctx.t(f"dvk.ask_round_{step}"), [ctx.row(_key(step), ("dvk.round_no_vote_button", "none"))]
                if step == "vote" else [])

    return prompt


@registry.step(FLOW, "name", _ask("name"))
async def _name_handle(ctx: Ctx) -> None:
    text = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not 5 <= len(text) <= 120:
        await ctx.reask("dvk.length", low=5, high=120, length=len(text))
        return
    await ctx.goto(FLOW, "year", name=text)


@registry.step(FLOW, "year", _ask("year"))
async def _year_handle(ctx: Ctx) -> None:
    text = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not (text.isdigit() and 2000 <= int(text) <= 2100):
        await ctx.reask("dvk.bad_year")
        return
    await ctx.goto(FLOW, "period", year=int(text))


@registry.step(FLOW, "period", _ask("period"))
async def _period_handle(ctx: Ctx) -> None:
    period = parse_period(ctx.inbound.text) if ctx.inbound.kind == "text" else None
    if period is None:
        await ctx.reask("dvk.bad_period")
        return
    await ctx.goto(FLOW, "criteria", period=[d.isoformat() for d in period])


@registry.step(FLOW, "criteria", _ask("criteria"))
async def _criteria_handle(ctx: Ctx) -> None:
    text = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not 10 <= len(text) <= 3000:
        await ctx.reask("dvk.length", low=10, high=3000, length=len(text))
        return
    await ctx.goto(FLOW, "vote", criteria=text)


@registry.step(FLOW, "vote", _ask("vote"))
async def _vote_handle(ctx: Ctx) -> None:
    if ctx.choice == ("none",):
        vote = None
    else:
        vote = parse_period(ctx.inbound.text) if ctx.inbound.kind == "text" else None
        if vote is None:
            await ctx.reask("dvk.bad_period")
            return
    data = ctx.data
    first, last = (date.fromisoformat(d) for d in data["period"])
    r = await repo(ctx.store).add_round(data["name"], data["year"], first, last, data["criteria"], vote, ctx.user.id,
                                        ctx.now)
    await ctx.audit("dvk.round_added", f"dvk_round:{r.id}")
    ctx.say(ctx.t("dvk.round_added", name=r.name))
    await ctx.goto(FLOW, "round", round_id=r.id)
