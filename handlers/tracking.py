"""/theodoi: a citizen follows their cases — status, history, the answer; then rates it or reopens it."""

from __future__ import annotations

from datetime import timedelta

from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.features import Command, Feature
from handlers.inbox import LABEL, responsible_cadres
from handlers.pickers import locality_name, page_note, page_row, pages_of, turned_page
from handlers.workdays import add_working_days
from messages import Key, cut, join
from storage.cases import Case, CaseMoved
from storage.clock import parse

FLOW = "trk"
registry.flow(FLOW)
PAGE_SIZE = 6
RATINGS = ("good", "ok", "bad")
REOPEN_WINDOW = timedelta(days=7)


def _key(step: str) -> str:
    return step_key(FLOW, step)


@registry.command("theodoi", "mycases")
async def track_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", page=0)


@registry.action("trk")
async def track_button(ctx: Ctx) -> None:
    """From a notification or the "received" message: open that case (only one's own)."""
    case = await _own(ctx, ctx.args[0] if len(ctx.args) == 1 else "")
    if case is not None:
        ctx.conversation = None
        await ctx.goto(FLOW, "case", case_id=case.id, page=0)


async def _own(ctx: Ctx, case_id: str) -> Case | None:
    case = await ctx.store.cases.get(int(case_id)) if case_id.isdigit() else None
    if case is None or case.user_id != ctx.user.id:
        ctx.finish()
        ctx.say(ctx.t("track.not_yours"))
        return None
    return case


async def _list_prompt(ctx: Ctx) -> None:
    page = int(ctx.data.get("page", 0))
    cases, total = await ctx.store.cases.of_user(ctx.user.id, page * PAGE_SIZE, PAGE_SIZE)
    if not total:
        ctx.finish()
        ctx.say(ctx.t("track.none"), [(Option(ctx.t("menu.gopy"), cb("new", "gopy")),
                                       Option(ctx.t("menu.phananh"), cb("new", "phananh")))])
        return
    key = _key("list")
    rows, items = [], []
    for c in cases:  # the button says what the case is about; the message, where it stands
        topic = await ctx.store.topics.get(c.topic_id)
        status = ctx.t.plain(f"status.{c.status}")
        if ctx.capabilities.buttons:
            label = f"{c.code} · "
            rows.append((Option(label + cut(c.content, LABEL - len(label)), cb(key, "o", c.id)),))
            items.append(ctx.t("track.item", code=c.code, topic=topic.name(ctx.t.language), status=status))
        else:
            rows.append((Option(ctx.t.plain("track.line", code=c.code, topic=topic.name(ctx.t.language),
                                             status=status, excerpt=cut(c.content, 70)),
                                cb(key, "o", c.id)),))
    pages = pages_of(total, PAGE_SIZE)
    rows += page_row(ctx, key, page, pages, "p")
    title = ctx.t("track.title", total=total)
    ctx.say(join("", [join("\n\n", [title, join("\n", items)]) if items else title, page_note(ctx, page, pages)]),
            rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("p",))


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if len(args) == 2 and args[0] == "o":
        case = await _own(ctx, args[1])
        if case is not None:
            await ctx.goto(FLOW, "case", case_id=case.id)
    else:
        await ctx.wrong()


def _can_reopen(ctx: Ctx, case: Case) -> bool:
    answered = case.answered_at or case.closed_at
    return (case.status in ("answered", "resolved") and answered is not None
            and ctx.now - parse(answered) <= REOPEN_WINDOW)


async def _case_prompt(ctx: Ctx) -> None:
    case = await _own(ctx, str(ctx.data.get("case_id", "")))
    if case is None:
        return
    topic = await ctx.store.topics.get(case.topic_id)
    history = [ctx.t("track.event", at=ctx.local(parse(e.at)), what=Key(f"event.{e.kind}"),
                     body=ctx.t("track.signed", body=e.body, unit=e.unit or ctx.settings.operator_name)
                     if e.kind == "answered" and e.body else (f": {e.body}" if e.body else ""))
               for e in await ctx.store.cases.events(case.id, internal=False)]
    key = _key("case")
    rows = []
    if case.status in ("answered", "resolved") and case.rating is None:
        rows.append(tuple(Option(ctx.t(f"track.rate_{r}"), cb(key, "r", r)) for r in RATINGS))
    if _can_reopen(ctx, case):
        rows.append((Option(ctx.t("track.reopen"), cb(key, "reopen")),))
    rows.append((Option(ctx.t("track.back"), cb(key, "back")),))
    ctx.say(ctx.t("track.case", code=case.code, kind=Key(f"case.kind_{case.kind}"),
                  status=Key(f"status.{case.status}"), topic=topic.name(ctx.t.language),
                  place=await locality_name(ctx, case.locality_id), content=case.content,
                  created=ctx.local(parse(case.created_at)), due=ctx.local(parse(case.answer_due)).split(" ")[0],
                  rating=ctx.t(f"track.rated_{case.rating}") if case.rating else "",
                  history=join("\n", history)), rows)


@registry.step(FLOW, "case", _case_prompt)
async def _case_handle(ctx: Ctx) -> None:
    case = await _own(ctx, str(ctx.data.get("case_id", "")))
    if case is None:
        return
    args = ctx.choice
    if args == ("back",):
        await ctx.goto(FLOW, "list")
    elif len(args) == 2 and args[0] == "r" and args[1] in RATINGS and case.rating is None \
            and case.status in ("answered", "resolved"):
        await ctx.store.cases.record(case.id, ctx.user.id, "rated", ctx.now, body=None, rating=args[1],
                                     rated_at=ctx.now)
        ctx.say(ctx.t("track.thanks_rating"))
        await ctx.goto(FLOW, "case")
    elif args == ("reopen",) and _can_reopen(ctx, case):
        await ctx.goto(FLOW, "reopen", seen=case.status)  # what the reason answers: a change meanwhile is told
    else:
        await ctx.wrong()


async def _reopen_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("track.ask_reason"), [(Option(ctx.t("common.back"), cb(_key("reopen"), "back")),)])


@registry.step(FLOW, "reopen", _reopen_prompt)
async def _reopen_handle(ctx: Ctx) -> None:
    case = await _own(ctx, str(ctx.data.get("case_id", "")))
    if case is None:
        return
    if ctx.inbound.kind == "choice" and ctx.args == ("back",):
        await ctx.goto(FLOW, "case")
        return
    reason = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not 5 <= len(reason) <= 1000:
        await ctx.reask("track.reason_length")
        return
    if not _can_reopen(ctx, case):
        ctx.finish()
        ctx.say(ctx.t("track.too_late"))
        return
    topic = await ctx.store.topics.get(case.topic_id)
    try:
        await ctx.store.cases.record(case.id, ctx.user.id, "reopened", ctx.now, body=reason,
                                     expect=ctx.data.get("seen", case.status),
                                     status="in_progress", closed_at=None,
                                     answer_due=add_working_days(ctx.now, topic.answer_days, ctx.settings.tz))
    except CaseMoved as moved:  # a cadre acted on it meanwhile: the citizen sees it as it is now
        ctx.say(ctx.t("track.changed_meanwhile", code=case.code, status=Key(f"status.{moved.case.status}"),
                      text=reason))
        await ctx.goto(FLOW, "case")
        return
    for cadre_id in await responsible_cadres(ctx, case):
        ctx.notify(cadre_id, "inbox.reopened", (("inbox.open", cb("cs", case.id)),), code=case.code)
    ctx.say(ctx.t("track.reopened", code=case.code))
    await ctx.goto(FLOW, "case")


FEATURE = Feature("tracking", commands=(Command("theodoi", menu="menu.theodoi", place=30),))
