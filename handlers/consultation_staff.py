"""/vankien: staff handle the comments on a draft document (handlers/consultation.py is the readers' side), admins
publish a loaded draft (its invitation), close the consultation and get the summary report.

Staff see comments of communes in their scope only, checked on every action; an anonymous commenter is never shown.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from handlers.base import ADMIN, STAFF, Ctx, Document, Option, allowed, cb, registry, step_key
from handlers.broadcast import describe_audience, plan_start
from handlers.consultation import current, lost, named, num, section_at, sections_of, where
from handlers.consultation_report import report_docx, report_xlsx
from handlers.pickers import locality_name, page_row, pages_of, turned_page
from handlers.reports import when
from messages import Key, Texts, cut, join
from storage.broadcasts import Broadcast, NewBroadcast
from storage.clock import parse
from storage.consultations import OUTCOMES, Comment, Consultation

STAFF_FLOW = "vks"
registry.flow(STAFF_FLOW, roles=STAFF)
MIN_WHY, MAX_WHY = 5, 500
PAGE_SIZE = 6


def _skey(step: str) -> str:
    return step_key(STAFF_FLOW, step)


async def _paths(ctx: Ctx) -> tuple[str, ...] | None:
    """Where the comments this person may see come from: everywhere for an admin, a cadre's scope otherwise."""
    return None if ctx.user.role == "admin" else await ctx.store.roles.scope_paths(ctx.user.id)


async def _in_scope(ctx: Ctx, comment: Comment | None) -> bool:
    """A comment on the conversation's consultation (not another's, by a forged button) from the staff member's
    communes."""
    if comment is None or not allowed(ctx.user, STAFF):
        return False
    if comment.section_id not in {s.id for s in await sections_of(ctx, num(ctx, "cid"))}:
        return False
    paths = await _paths(ctx)
    if paths is None:
        return True
    place = await ctx.store.localities.get(comment.commune_id) if comment.commune_id else None
    return place is not None and any(place.path.startswith(p) for p in paths)


@registry.command("vankien", "drafts")
async def drafts_command(ctx: Ctx) -> None:
    published = await ctx.store.consultations.published()
    drafts = await ctx.store.consultations.drafts() if ctx.user.role == "admin" else []
    if not published and not drafts:
        ctx.say(ctx.t("consultation.none_published"))
        return
    if len(published) == 1 and not drafts:
        await ctx.goto(STAFF_FLOW, "over", cid=published[0].id)
        return
    ctx.say(ctx.t("consultation.choose_staff"), [(Option(c.title, cb("vks", c.id)),) for c in published] +
            [(Option(ctx.t("consultation.draft_button", title=cut(c.title, 50)), cb("vkd", c.id)),) for c in drafts])


@registry.action("vks", roles=STAFF)
async def staff_open_button(ctx: Ctx) -> None:
    if (consultation := await named(ctx)) is not None:
        ctx.conversation = None
        await ctx.goto(STAFF_FLOW, "over", cid=consultation.id)


async def _over_prompt(ctx: Ctx) -> None:
    consultation = await current(ctx)
    if consultation is None:
        lost(ctx)
        return
    paths = await _paths(ctx)
    stances = await ctx.store.consultations.stances(consultation.id, paths)
    counts = await ctx.store.consultations.counts(consultation.id, paths)
    key = _skey("over")
    lines, rows = [], []
    for section in await sections_of(ctx, consultation.id):
        s = stances.get(section.position, {})
        comments, pending = counts.get(section.position, (0, 0))
        lines.append(ctx.t("consultation.over_line", position=section.position, title=cut(section.title, 50),
                           agree=s.get("agree", 0), comments=comments, pending=pending, skip=s.get("skip", 0)))
        rows.append((Option(ctx.t("consultation.section_button", position=section.position,
                                  title=cut(section.title, 30)), cb(key, "s", section.position)),))
    if ctx.user.role == "admin":
        rows.append((Option(ctx.t("consultation.report_button"), cb(key, "r")),))
        if consultation.status == "open":
            rows.append((Option(ctx.t("consultation.close_button"), cb(key, "c")),))
    ctx.say(ctx.t("consultation.over", title=consultation.title,
                  status=Key(f"consultation.status_{consultation.status}"), lines=join("\n", lines)), rows)


@registry.step(STAFF_FLOW, "over", _over_prompt)
async def _over_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if await current(ctx) is None:
        lost(ctx)
    elif len(choice) == 2 and choice[0] == "s" and choice[1].isdigit():
        await ctx.goto(STAFF_FLOW, "list", pos=int(choice[1]), page=0)
    elif choice == ("r",) and allowed(ctx.user, ADMIN):
        await _report(ctx)
    elif choice == ("c",) and allowed(ctx.user, ADMIN):
        await ctx.goto(STAFF_FLOW, "close")
    elif choice in (("r",), ("c",)):
        await ctx.audit("denied", f"consultation:{ctx.data['cid']}")
        ctx.say(ctx.t("common.not_allowed"))
    else:
        await ctx.wrong()


async def _report(ctx: Ctx) -> None:
    consultation = await current(ctx)
    report = await report_docx(ctx.store, consultation, ctx.t, ctx.settings.tz, ctx.settings.similarity)
    workbook = await report_xlsx(ctx.store, consultation, ctx.t, ctx.settings.tz)
    await ctx.audit("consultation.report", f"consultation:{consultation.code}")
    ctx.say(ctx.t("consultation.report_caption", title=consultation.title),
            document=Document(f"bao-cao-{consultation.code}.docx", report,
                              "application/vnd.openxmlformats-officedocument.wordprocessingml.document"))
    ctx.say(ctx.t("consultation.xlsx_caption"),
            document=Document(f"y-kien-{consultation.code}.xlsx", workbook,
                              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


async def _list_prompt(ctx: Ctx) -> None:
    consultation = await current(ctx)
    position, page = num(ctx, "pos"), int(ctx.data.get("page", 0))
    section, _ = await section_at(ctx, position)
    if consultation is None or section is None:
        await ctx.goto(STAFF_FLOW, "over")
        return
    comments = await ctx.store.consultations.comments(consultation.id, await _paths(ctx), position)
    shown = comments[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    key = _skey("list")
    lines = [await _staff_line(ctx, c) for c in shown]
    rows = [(Option(ctx.t("consultation.comment_button", id=c.id), cb(key, "o", c.id)),) for c in shown]
    rows += page_row(ctx, key, page, pages_of(len(comments), PAGE_SIZE), "p")
    rows.append(ctx.row(key, ("common.back", "b")))
    ctx.say(ctx.t("consultation.list", position=position, title=section.title, total=len(comments),
                  lines=join("\n\n", lines) if lines else ctx.t("common.none")), rows)


async def _staff_line(ctx: Ctx, comment: Comment) -> str:
    sender = ctx.t("consultation.anonymous") if comment.anonymous else (comment.sender or ctx.t("common.none"))
    place = await locality_name(ctx, comment.commune_id) if comment.commune_id else ctx.t("common.none")
    outcome = ctx.t(f"consultation.outcome_{comment.outcome}") if comment.outcome else ctx.t("consultation.pending")
    return ctx.t("consultation.staff_line", id=comment.id, where=where(ctx, comment), text=cut(comment.text, 300),
                 sender=sender, place=place, outcome=outcome)


@registry.step(STAFF_FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if choice == ("b",):
        await ctx.goto(STAFF_FLOW, "over")
    elif len(choice) == 2 and choice[0] == "o" and choice[1].isdigit():
        comment = await ctx.store.consultations.comment(int(choice[1]))
        if not await _in_scope(ctx, comment):
            await ctx.audit("denied", f"consultation_comment:{choice[1]}")
            await ctx.reask("common.not_allowed")
            return
        await ctx.goto(STAFF_FLOW, "cmt", cmt=comment.id)
    else:
        await ctx.wrong()


async def _cmt_prompt(ctx: Ctx) -> None:
    comment = await ctx.store.consultations.comment(num(ctx, "cmt"))
    consultation = await current(ctx)
    if consultation is None:
        lost(ctx)
        return
    if comment is None:  # its author deleted it
        ctx.say(ctx.t("consultation.comment_gone"))
        await ctx.goto(STAFF_FLOW, "list")
        return
    ctx.data["seen"] = [comment.outcome, comment.updated_at]  # what a mark expects to find (storage handle)
    key = _skey("cmt")
    rows = [ctx.row(key, ("consultation.outcome_accepted", "accepted"),
                    ("consultation.outcome_explained", "explained")),
            ctx.row(key, ("consultation.outcome_rejected", "rejected"))] if consultation.status == "open" else []
    rows.append(ctx.row(key, ("common.back", "b")))
    explanation = ctx.t("consultation.explained_as", text=comment.explanation) if comment.explanation else ""
    ctx.say(await _staff_line(ctx, comment) + "\n\n" + ctx.t("consultation.full_text", text=comment.text)
            + explanation, rows)


@registry.step(STAFF_FLOW, "cmt", _cmt_prompt)
async def _cmt_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    comment = await ctx.store.consultations.comment(num(ctx, "cmt"))
    if choice == ("b",):
        await ctx.goto(STAFF_FLOW, "list")
    elif comment is None:
        await _cmt_prompt(ctx)
    elif not await _in_scope(ctx, comment):  # checked again on every action: a forged button included
        await ctx.audit("denied", f"consultation_comment:{ctx.data['cmt']}")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
    elif choice == ("explained",):
        await ctx.goto(STAFF_FLOW, "why")
    elif len(choice) == 1 and choice[0] in OUTCOMES:
        await _mark(ctx, comment, choice[0], None)
    else:
        await ctx.wrong()


async def _mark(ctx: Ctx, comment: Comment, outcome: str, explanation: str | None) -> None:
    seen = tuple(ctx.data.get("seen") or (None, ""))
    if not await ctx.store.consultations.handle(comment.id, outcome, explanation, ctx.user.id, ctx.now, seen):
        consultation = await current(ctx)
        ctx.say(ctx.t("consultation.mark_closed" if consultation.status != "open" else "consultation.changed_meanwhile",
                      id=comment.id) + _why_back(ctx, explanation))
        await ctx.goto(STAFF_FLOW, "cmt")
        return
    await ctx.audit("consultation.handled", f"consultation_comment:{comment.id}", outcome=outcome)
    ctx.say(ctx.t("consultation.marked", id=comment.id, outcome=Key(f"consultation.outcome_{outcome}")))
    await ctx.goto(STAFF_FLOW, "list")


def _why_back(ctx: Ctx, explanation: str | None) -> str:
    """An explanation that was not saved, given back to the one who wrote it."""
    return "\n\n" + ctx.t("consultation.why_kept", text=explanation) if explanation else ""


async def _why_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("consultation.ask_why", low=MIN_WHY, high=MAX_WHY), [ctx.row(_skey("why"), ("common.back", "b"))])


@registry.step(STAFF_FLOW, "why", _why_prompt)
async def _why_handle(ctx: Ctx) -> None:
    if ctx.choice == ("b",):
        await ctx.goto(STAFF_FLOW, "cmt")
        return
    text = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not MIN_WHY <= len(text) <= MAX_WHY:
        await ctx.reask("consultation.why_length", low=MIN_WHY, high=MAX_WHY)
        return
    comment = await ctx.store.consultations.comment(num(ctx, "cmt"))
    if comment is None:  # its author deleted it meanwhile
        ctx.say(ctx.t("consultation.comment_gone") + _why_back(ctx, text))
        await ctx.goto(STAFF_FLOW, "list")
    elif not await _in_scope(ctx, comment):
        await ctx.audit("denied", f"consultation_comment:{ctx.data['cmt']}")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed") + _why_back(ctx, text))
    else:
        await _mark(ctx, comment, "explained", text)


async def _close_prompt(ctx: Ctx) -> None:
    consultation = await current(ctx)
    if consultation is None:
        lost(ctx)
        return
    pending = sum(p for _, p in (await ctx.store.consultations.counts(consultation.id)).values())
    ctx.say(ctx.t("consultation.close_confirm", title=consultation.title, pending=pending),
            [ctx.row(_skey("close"), ("consultation.close_yes", "y"), ("common.back", "b"))])


@registry.step(STAFF_FLOW, "close", _close_prompt)
async def _close_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("b",):
        await ctx.goto(STAFF_FLOW, "over")
    elif await current(ctx) is None:
        lost(ctx)
    elif choice == ("y",) and allowed(ctx.user, ADMIN):
        await _close(ctx)
    elif choice == ("y",):  # staff who are not (or no longer) admins
        await ctx.audit("denied", f"consultation:{ctx.data['cid']}")
        await ctx.reask("common.not_allowed")
    else:
        await ctx.wrong()


async def _close(ctx: Ctx) -> None:
    """Close, and tell each commenter what became of their comments (one notice each)."""
    consultation = await current(ctx)
    if not await ctx.store.consultations.close(consultation.id, ctx.now):
        ctx.say(ctx.t("consultation.closed"))
        await ctx.goto(STAFF_FLOW, "over")
        return
    await ctx.audit("consultation.closed", f"consultation:{consultation.code}")
    tallies = await ctx.store.consultations.tallies(consultation.id)
    for tally in tallies:
        ctx.notify(tally.user_id, "consultation.outcome_notice",
                   (("consultation.open_mine", cb("vko", consultation.id)),), title=consultation.title,
                   count=tally.comments, accepted=tally.accepted, explained=tally.explained, rejected=tally.rejected,
                   pending=tally.pending)
    ctx.say(ctx.t("consultation.closed_done", title=consultation.title, told=len(tallies)))
    await ctx.goto(STAFF_FLOW, "over")


# ---- publishing a loaded draft -------------------------------------------------------------------------------


def invitation(t: Texts, title: str, intro: str, closes: str) -> str:
    """The invitation's text in one language (Telegram HTML, escaped by the catalog)."""
    return t("consultation.invitation", title=title, intro=intro, closes=closes)


async def publish(store, consultation: Consultation, link: str | None, quiet: tuple[time, time] | None, tz: ZoneInfo,
                  now: datetime, by: int | None) -> Broadcast | None:
    """draft → open, with its invitation through the broadcast outbox from when it opens (after quiet hours); the
    command line's and the chat's. None when it was published meanwhile: the invitation made is cancelled."""
    closes = when(consultation.closes_at, tz)
    start = plan_start(max(now, parse(consultation.opens_at)), quiet, tz, False)
    broadcast = await store.broadcasts.create(NewBroadcast(
        text_vi=invitation(Texts("vi"), consultation.title, consultation.intro, closes),
        text_en=invitation(Texts("en"), consultation.title, consultation.intro, closes),
        scheduled_at=start, audience=consultation.audience, link_url=link, created_by=by), now)
    if not await store.consultations.publish(consultation.id, broadcast.id, now):
        await store.broadcasts.cancel(broadcast.id, now)
        return None
    return broadcast


@registry.action("vkd", roles=ADMIN)
async def draft_button(ctx: Ctx) -> None:
    consultation = await ctx.store.consultations.get(int(ctx.args[0])) \
        if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if consultation is None:
        ctx.say(ctx.t(ctx.stale_key))
        return
    ctx.conversation = None
    await ctx.goto(STAFF_FLOW, "draft" if consultation.status == "draft" else "over", cid=consultation.id)


async def _draft_prompt(ctx: Ctx) -> None:
    """The draft as it will be published: its table of contents, period and audience, to confirm."""
    consultation = await _loaded(ctx)
    if consultation is None:
        lost(ctx)
        return
    if consultation.status != "draft":  # published meanwhile, by another admin or the command line
        await ctx.goto(STAFF_FLOW, "over")
        return
    lines = [ctx.t("consultation.draft_line", position=s.position, title=cut(s.title, 60),
                   paragraphs=len(s.paragraphs)) for s in await sections_of(ctx, consultation.id)]
    ctx.say(ctx.t("consultation.draft", title=consultation.title, lines=join("\n", lines),
                  opens=ctx.local(parse(consultation.opens_at)), closes=ctx.local(parse(consultation.closes_at)),
                  who=await describe_audience(ctx, consultation.audience),
                  count=await ctx.store.broadcasts.count_audience(consultation.audience)),
            [ctx.row(_skey("draft"), ("consultation.publish_button", "p"), ("common.back", "b"))])


@registry.step(STAFF_FLOW, "draft", _draft_prompt)
async def _draft_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("b",):
        ctx.finish()
        await drafts_command(ctx)
    elif await _loaded(ctx) is None:
        lost(ctx)
    elif choice == ("p",) and allowed(ctx.user, ADMIN):  # the flow lets staff in; publishing is the admins'
        await _publish(ctx)
    elif choice == ("p",):
        await ctx.audit("denied", f"consultation:{ctx.data['cid']}")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
    else:
        await ctx.wrong()


async def _loaded(ctx: Ctx) -> Consultation | None:
    """The consultation of the conversation, a draft too (`current` is what people may read)."""
    return await ctx.store.consultations.get(num(ctx, "cid"))


async def _publish(ctx: Ctx) -> None:
    consultation = await _loaded(ctx)
    links = ctx.deep_links(f"v_{consultation.code}")
    broadcast = await publish(ctx.store, consultation, links[0] if links else None, ctx.settings.quiet_hours,
                              ctx.settings.tz, ctx.now, ctx.user.id)
    if broadcast is None:
        ctx.say(ctx.t("consultation.published_before", title=consultation.title))
    else:
        await ctx.audit("consultation.published", f"consultation:{consultation.code}", broadcast=broadcast.id)
        ctx.wake("broadcasts")
        ctx.say(ctx.t("consultation.published", title=consultation.title, id=broadcast.id,
                      count=await ctx.store.broadcasts.count_audience(consultation.audience),
                      when=ctx.local(parse(broadcast.scheduled_at)), links=join("\n", links) or ctx.t("common.none")))
    await ctx.goto(STAFF_FLOW, "over")
