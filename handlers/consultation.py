"""/gopyvankien: reading a draft document section by section and commenting on it; /vankien: staff handle the
comments, admins publish a loaded draft (its invitation), close the consultation and get the summary report.

Reading asks nothing; the first answer to a section («Đồng ý», «Có ý kiến», «Bỏ qua») asks the consent to send
opinions and the sensitive one (what a person says of a Party document may reveal a political opinion), in that
order, never before. A person comes back where they
stopped, and reads, changes or deletes their comments until the consultation closes. Staff see comments of
communes in their scope only, checked on every action; an anonymous commenter is never shown.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time
from zoneinfo import ZoneInfo

from handlers.base import ADMIN, STAFF, Ctx, Document, Option, allowed, cb, registry, step_key
from handlers.broadcast import describe_audience, plan_start
from handlers.consent import has_consent, record_consent
from handlers.consultation_report import report_docx, report_xlsx
from handlers.features import Command, Feature
from handlers.pickers import locality_name, page_row, pages_of, turned_page
from handlers.reports import when
from messages import Key, Texts, cut, join
from storage.broadcasts import Broadcast, NewBroadcast
from storage.clock import parse
from storage.consultations import OUTCOMES, PERSONAL_TABLES, Comment, Consultation, Section

FLOW = "vk"
registry.flow(FLOW)
STAFF_FLOW = "vks"
registry.flow(STAFF_FLOW, roles=STAFF)
MIN_TEXT, MAX_TEXT = 5, 3000
MIN_WHY, MAX_WHY = 5, 500
PAGE_SIZE = 6
MARKS = {"agree": "✅", "comment": "💬", "skip": "⏭"}
PARAGRAPH = re.compile(r"^\s*(?:đoạn|doan|paragraph|para)\s*(\d{1,3})\s*[:.,)\-–]?\s*(.*)$", re.IGNORECASE | re.DOTALL)


def _key(step: str) -> str:
    return step_key(FLOW, step)


def _skey(step: str) -> str:
    return step_key(STAFF_FLOW, step)


def _num(ctx: Ctx, name: str) -> int:
    """A number of the draft; 0 (nothing has it) where the draft lacks it or holds something else."""
    value = ctx.data.get(name)
    return value if isinstance(value, int) and value > 0 else 0


def _lost(ctx: Ctx) -> None:
    """The consultation, section or comment the conversation was about is not there (any more)."""
    ctx.finish()
    ctx.say(ctx.t("consultation.lost"))


async def _consultation(ctx: Ctx) -> Consultation | None:
    consultation = await ctx.store.consultations.get(_num(ctx, "cid"))
    return consultation if consultation is not None and consultation.status != "draft" else None


async def _sections(ctx: Ctx, consultation_id: int) -> list[Section]:
    """The document, read once however many steps one button press passes through (a saved draft's text does not
    change: a new version is a new consultation)."""
    key = ("consultation.sections", consultation_id)
    if key not in ctx.memo:
        ctx.memo[key] = await ctx.store.consultations.sections(consultation_id)
    return ctx.memo[key]


async def _section(ctx: Ctx, position: int) -> tuple[Section | None, int]:
    sections = await _sections(ctx, _num(ctx, "cid"))
    return next((s for s in sections if s.position == position), None), len(sections)


# ---- entering -----------------------------------------------------------------------------------------


@registry.command("gopyvankien", "consult")
async def consult_command(ctx: Ctx) -> None:
    readable = [c for c in await ctx.store.consultations.published() if c.accepts(ctx.now)]
    if not readable:
        ctx.say(ctx.t("consultation.none_open"))
        return
    if len(readable) == 1:
        await ctx.goto(FLOW, "toc", cid=readable[0].id)
        return
    ctx.say(ctx.t("consultation.choose"), [(Option(c.title, cb("vko", c.id)),) for c in readable])


@registry.action("vko")
async def open_button(ctx: Ctx) -> None:
    """A consultation chosen from the list, or from a notice."""
    consultation = await ctx.store.consultations.get(int(ctx.args[0])) \
        if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if consultation is None or consultation.status == "draft":
        ctx.say(ctx.t(ctx.stale_key))
        return
    ctx.conversation = None
    await ctx.goto(FLOW, "toc", cid=consultation.id)


async def from_link(ctx: Ctx, code: str) -> bool:
    """/start v_<code>: the consultation's table of contents; False when there is no such consultation."""
    consultation = await ctx.store.consultations.by_code(code)
    if consultation is None or consultation.status == "draft":
        return False
    ctx.conversation = None
    await ctx.goto(FLOW, "toc", cid=consultation.id)
    return True


# ---- the table of contents ----------------------------------------------------------------------------


async def _toc_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    if consultation is None:
        _lost(ctx)
        return
    store = ctx.store
    sections = await _sections(ctx, consultation.id)
    answers = await store.consultations.answers_of(consultation.id, ctx.user.id)
    lines = [ctx.t("consultation.toc_line", mark=MARKS.get(answers.get(s.position), "▫️"), position=s.position,
                   title=s.title) for s in sections]
    state = "consultation.until" if consultation.accepts(ctx.now) else "consultation.closed_note"
    ctx.say(ctx.t("consultation.toc", title=consultation.title, intro=consultation.intro,
                  state=Key(state), closes=ctx.local(parse(consultation.closes_at)), lines=join("\n", lines)),
            await _toc_rows(ctx, consultation, sections))


async def _toc_rows(ctx: Ctx, consultation: Consultation, sections: list[Section]) -> list:
    key = _key("toc")
    rows = [(Option(ctx.t("consultation.section_button", position=s.position, title=cut(s.title, 40)),
                    cb(key, "s", s.position)),) for s in sections]
    stopped = await ctx.store.consultations.progress(consultation.id, ctx.user.id)
    if stopped is not None:
        rows.insert(0, (Option(ctx.t("consultation.continue", position=stopped), cb(key, "s", stopped)),))
    mine = await ctx.store.consultations.comments_of(consultation.id, ctx.user.id)
    if mine:
        rows.append((Option(ctx.t("consultation.mine_button", count=len(mine)), cb(key, "m")),))
    return rows


@registry.step(FLOW, "toc", _toc_prompt)
async def _toc_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if len(choice) == 2 and choice[0] == "s" and choice[1].isdigit():
        await _show_section(ctx, int(choice[1]))
    elif choice == ("m",):
        await ctx.goto(FLOW, "mine")
    else:
        await ctx.wrong()


async def _show_section(ctx: Ctx, position: int) -> None:
    section, _ = await _section(ctx, position)
    if section is None:
        await ctx.reask(ctx.stale_key)
        return
    await ctx.goto(FLOW, "sec", pos=position)


# ---- a section ----------------------------------------------------------------------------------------


async def _sec_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    section, total = await _section(ctx, _num(ctx, "pos"))
    if consultation is None or section is None:
        _lost(ctx)
        return
    if ctx.user.consented:  # before a purpose is accepted nothing but the chat is kept, not where they read
        await ctx.store.consultations.set_progress(consultation.id, ctx.user.id, section.position, ctx.now)
    paragraphs = join("\n\n", (ctx.t("consultation.paragraph", number=p.number, text=p.text)
                               for p in section.paragraphs))
    stance = (await ctx.store.consultations.answers_of(consultation.id, ctx.user.id)).get(section.position)
    ctx.say(ctx.t("consultation.section", position=section.position, total=total, title=section.title,
                  paragraphs=paragraphs,
                  stance=Key(f"consultation.your_{stance}") if stance else ""), _section_rows(ctx, consultation, "sec"))


def _section_rows(ctx: Ctx, consultation: Consultation, step: str) -> list:
    key = _key(step)
    rows = []
    if consultation.accepts(ctx.now):
        rows.append(ctx.row(key, ("consultation.agree", "a"), ("consultation.comment", "k")))
        rows.append(ctx.row(key, ("consultation.skip", "b"), ("consultation.next", "n")))
    else:
        rows.append(ctx.row(key, ("consultation.next", "n")))
    rows.append(ctx.row(key, ("consultation.toc_button", "t")))
    return rows


@registry.step(FLOW, "sec", _sec_prompt)
async def _sec_handle(ctx: Ctx) -> None:
    await _navigate(ctx)


async def _navigate(ctx: Ctx) -> None:
    """The buttons under a section, and under a comment just saved."""
    choice = ctx.choice
    consultation = await _consultation(ctx)
    position = _num(ctx, "pos")
    section, total = await _section(ctx, position)
    if consultation is None or section is None:
        _lost(ctx)
        return
    if choice == ("t",):
        await ctx.goto(FLOW, "toc")
    elif choice == ("n",):
        await _next(ctx, position, total)
    elif choice in (("a",), ("b",), ("k",)) and not consultation.accepts(ctx.now):
        await ctx.reask("consultation.closed")
    elif choice in (("a",), ("b",), ("k",)):
        await _answer(ctx, {"a": "agree", "b": "skip", "k": "comment"}[choice[0]])
    else:
        await ctx.wrong()


async def _next(ctx: Ctx, position: int, total: int) -> None:
    if position >= total:
        ctx.say(ctx.t("consultation.read_all"))
        await ctx.goto(FLOW, "toc")
    else:
        await ctx.goto(FLOW, "sec", pos=position + 1)


# ---- consent, then the comment -------------------------------------------------------------------------


async def _answer(ctx: Ctx, stance: str) -> None:
    """Whatever a person says of a section is kept only with their consent to send opinions and the sensitive
    one (agreeing with a Party document says as much as commenting on it), asked the first time."""
    for purpose in ("opinions", "sensitive"):
        if not await has_consent(ctx, purpose):
            await ctx.goto(FLOW, "consent", purpose=purpose, stance=stance)
            return
    if stance == "comment":
        await ctx.goto(FLOW, "write")
        return
    position = _num(ctx, "pos")
    section, total = await _section(ctx, position)
    if not await ctx.store.consultations.answer(section.id, ctx.user.id, stance, ctx.now):  # closed meanwhile
        ctx.say(ctx.t("consultation.closed"))
        await ctx.goto(FLOW, "sec")
        return
    ctx.say(ctx.t(f"consultation.answered_{stance}", position=position))
    await _next(ctx, position, total)


async def _consent_prompt(ctx: Ctx) -> None:
    purpose = ctx.data.get("purpose")
    if purpose not in ("opinions", "sensitive") or ctx.data.get("stance") not in ("agree", "skip", "comment"):
        _lost(ctx)
        return
    key = _key("consent")
    intro = [ctx.t("consultation.needs_opinions")] if purpose == "opinions" else []
    ctx.say("\n\n".join([*intro, ctx.t(f"consent.{purpose}")]), [  # the very text record_consent versions
        (Option(ctx.t("consent.yes"), cb(key, "y")),), (Option(ctx.t("consultation.only_read"), cb(key, "n")),)])


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    section, _ = await _section(ctx, _num(ctx, "pos"))
    if await _consultation(ctx) is None or section is None or ctx.data.get("purpose") not in ("opinions", "sensitive"):
        _lost(ctx)
    elif choice == ("y",):
        await record_consent(ctx, ctx.data.pop("purpose"), True)
        await _answer(ctx, ctx.data.pop("stance", "comment"))
    elif choice == ("n",):
        ctx.data.pop("purpose")
        ctx.data.pop("stance", None)
        ctx.say(ctx.t("consultation.no_consent"))
        await ctx.goto(FLOW, "sec")
    else:
        await ctx.wrong()


async def _write_prompt(ctx: Ctx) -> None:
    section, _ = await _section(ctx, _num(ctx, "pos"))
    if section is None:
        _lost(ctx)
        return
    earlier = ctx.data.get("earlier")
    ctx.say(ctx.t("consultation.ask_comment", position=section.position, title=section.title,
                  count=len(section.paragraphs))
            + (("\n\n" + ctx.t("consultation.earlier", text=earlier)) if earlier else ""),
            [ctx.row(_key("write"), ("common.back", "b"))])


@registry.step(FLOW, "write", _write_prompt)
async def _write_handle(ctx: Ctx) -> None:
    section, _ = await _section(ctx, _num(ctx, "pos"))
    if section is None:
        _lost(ctx)
        return
    if ctx.choice == ("b",):
        for name in ("cmt", "earlier"):
            ctx.data.pop(name, None)
        await ctx.goto(FLOW, "sec")
        return
    if ctx.inbound.kind != "text":
        await ctx.reask("consultation.write_text")
        return
    text = unicodedata.normalize("NFC", ctx.inbound.text.strip())
    paragraph = None
    named = PARAGRAPH.match(text)
    if named:
        paragraph, text = int(named.group(1)), named.group(2).strip()
        if paragraph not in {p.number for p in section.paragraphs}:
            await ctx.reask("consultation.no_such_paragraph", number=paragraph, text=text,
                            numbers=", ".join(str(p.number) for p in section.paragraphs))
            return
    if not MIN_TEXT <= ctx.length(text) <= MAX_TEXT:
        await ctx.reask("consultation.comment_length", low=MIN_TEXT, high=MAX_TEXT, length=ctx.length(text))
        return
    ctx.data.update(text=text, paragraph=paragraph)
    await ctx.goto(FLOW, "anon")


async def _anon_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("consultation.ask_anonymous"), [
        (Option(ctx.t("consultation.named"), cb(_key("anon"), "n")),),
        (Option(ctx.t("consultation.anonymous"), cb(_key("anon"), "a")),),
    ])


@registry.step(FLOW, "anon", _anon_prompt)
async def _anon_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice not in (("n",), ("a",)):
        await ctx.wrong()
        return
    consultation = await _consultation(ctx)
    section, _ = await _section(ctx, _num(ctx, "pos"))
    if consultation is None or section is None or not isinstance(ctx.data.get("text"), str):
        _lost(ctx)
        return
    data, store = ctx.data, ctx.store
    anonymous = choice == ("a",)
    paragraph = data.get("paragraph") if isinstance(data.get("paragraph"), int) else None
    if not consultation.accepts(ctx.now):
        saved = False
    elif data.get("cmt"):
        saved = await store.consultations.change_comment(_num(ctx, "cmt"), ctx.user.id, paragraph,
                                                         data["text"], anonymous, ctx.now)
    else:
        saved = await store.consultations.add_comment(section.id, ctx.user.id, paragraph, data["text"], anonymous,
                                                      ctx.inbound.channel, await _commune(ctx), ctx.now) is not None
    if not saved:  # closed (maybe in the instant since the check above), or the comment changed was deleted
        fresh = await _consultation(ctx)
        closed = fresh is None or not fresh.accepts(ctx.now)
        ctx.finish()
        ctx.say(ctx.t("consultation.closed" if closed else ctx.stale_key) + "\n\n"
                + ctx.t("consultation.your_text", text=data["text"]))
        return
    for name in ("cmt", "earlier", "text", "paragraph"):
        data.pop(name, None)
    await ctx.goto(FLOW, "saved", anonymous=anonymous)


async def _commune(ctx: Ctx) -> int | None:
    """The commune the commenter lives in (not their village): what staff and the report may know of them."""
    place = await ctx.store.localities.get(ctx.user.locality_id) if ctx.user.locality_id else None
    if place is None or place.level < 1:
        return None
    return place.id if place.level == 1 else place.parent_id


async def _saved_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    key = _key("saved")
    ctx.say(ctx.t("consultation.saved", position=_num(ctx, "pos"),
                  sender=Key("consultation.anonymous" if ctx.data.get("anonymous") else "consultation.named")), [
        ctx.row(key, ("consultation.comment_more", "k")),
        ctx.row(key, ("consultation.next", "n"), ("consultation.toc_button", "t")),
    ] if consultation is not None else [])


@registry.step(FLOW, "saved", _saved_prompt)
async def _saved_handle(ctx: Ctx) -> None:
    await _navigate(ctx)


# ---- my comments ----------------------------------------------------------------------------------------


def _where(ctx: Ctx, comment: Comment) -> str:
    return ctx.t("consultation.where_paragraph", position=comment.position, paragraph=comment.paragraph) \
        if comment.paragraph else ctx.t("consultation.where_section", position=comment.position)


def _comment_line(ctx: Ctx, number: int, comment: Comment) -> str:
    outcome = ctx.t(f"consultation.outcome_{comment.outcome}") if comment.outcome else ""
    return ctx.t("consultation.mine_line", number=number, where=_where(ctx, comment), text=cut(comment.text, 120),
                 sender=Key("consultation.anonymous" if comment.anonymous else "consultation.named"), outcome=outcome)


async def _mine_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    if consultation is None:
        _lost(ctx)
        return
    mine = await ctx.store.consultations.comments_of(consultation.id, ctx.user.id)
    key = _key("mine")
    rows = [(Option(ctx.t("consultation.open_comment", number=n), cb(key, "o", c.id)),)
            for n, c in enumerate(mine, start=1)]
    rows.append(ctx.row(key, ("consultation.toc_button", "t")))
    ctx.say(ctx.t("consultation.mine", lines=join("\n", (_comment_line(ctx, n, c) for n, c in enumerate(mine, 1))))
            if mine else ctx.t("consultation.mine_none"), rows)


@registry.step(FLOW, "mine", _mine_prompt)
async def _mine_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("t",):
        await ctx.goto(FLOW, "toc")
    elif len(choice) == 2 and choice[0] == "o" and choice[1].isdigit() and await _own(ctx, int(choice[1])):
        await ctx.goto(FLOW, "one", cmt=int(choice[1]))
    else:
        await ctx.wrong()


async def _own(ctx: Ctx, comment_id: int) -> Comment | None:
    comment = await ctx.store.consultations.comment(comment_id)
    return comment if comment is not None and comment.user_id == ctx.user.id else None


async def _one_prompt(ctx: Ctx) -> None:
    comment = await _own(ctx, _num(ctx, "cmt"))
    consultation = await _consultation(ctx)
    if comment is None or consultation is None:
        await ctx.goto(FLOW, "mine")
        return
    key = _key("one")
    rows = [ctx.row(key, ("consultation.change", "w"), ("consultation.delete", "d"))] \
        if consultation.accepts(ctx.now) else []
    rows.append(ctx.row(key, ("common.back", "b")))
    explanation = ctx.t("consultation.explained_as", text=comment.explanation) if comment.explanation else ""
    outcome = f"consultation.outcome_{comment.outcome}" if comment.outcome else "consultation.pending"
    ctx.say(ctx.t("consultation.one", where=_where(ctx, comment), text=comment.text, explanation=explanation,
                  sender=Key("consultation.anonymous" if comment.anonymous else "consultation.named"),
                  outcome=Key(outcome)), rows)


@registry.step(FLOW, "one", _one_prompt)
async def _one_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    comment = await _own(ctx, _num(ctx, "cmt"))
    consultation = await _consultation(ctx)
    if choice == ("b",) or comment is None or consultation is None:
        ctx.data.pop("cmt", None)
        await ctx.goto(FLOW, "mine")
    elif choice in (("w",), ("d",)) and not consultation.accepts(ctx.now):
        await ctx.reask("consultation.closed")
    elif choice == ("w",):
        await ctx.goto(FLOW, "write", pos=comment.position, earlier=comment.text)
    elif choice == ("d",):
        deleted = await ctx.store.consultations.delete_comment(comment.id, ctx.user.id, ctx.now)
        if not deleted and not (await _consultation(ctx)).accepts(ctx.now):  # closed since the check above
            await ctx.reask("consultation.closed")  # the comment stays, shown as it is
            return
        ctx.data.pop("cmt", None)
        ctx.say(ctx.t("consultation.deleted"))
        await ctx.goto(FLOW, "mine")
    else:
        await ctx.wrong()


# ---- staff ------------------------------------------------------------------------------------------------


async def _paths(ctx: Ctx) -> tuple[str, ...] | None:
    """Where the comments this person may see come from: everywhere for an admin, a cadre's scope otherwise."""
    return None if ctx.user.role == "admin" else await ctx.store.roles.scope_paths(ctx.user.id)


async def _in_scope(ctx: Ctx, comment: Comment | None) -> bool:
    if comment is None or not allowed(ctx.user, STAFF):
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
    consultation = await ctx.store.consultations.get(int(ctx.args[0])) \
        if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if consultation is None or consultation.status == "draft":
        ctx.say(ctx.t(ctx.stale_key))
        return
    ctx.conversation = None
    await ctx.goto(STAFF_FLOW, "over", cid=consultation.id)


async def _over_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    if consultation is None:
        _lost(ctx)
        return
    paths = await _paths(ctx)
    stances = await ctx.store.consultations.stances(consultation.id, paths)
    counts = await ctx.store.consultations.counts(consultation.id, paths)
    key = _skey("over")
    lines, rows = [], []
    for section in await _sections(ctx, consultation.id):
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
    if await _consultation(ctx) is None:
        _lost(ctx)
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
    consultation = await _consultation(ctx)
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
    consultation = await _consultation(ctx)
    position, page = _num(ctx, "pos"), int(ctx.data.get("page", 0))
    section, _ = await _section(ctx, position)
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
    return ctx.t("consultation.staff_line", id=comment.id, where=_where(ctx, comment), text=cut(comment.text, 300),
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
    comment = await ctx.store.consultations.comment(_num(ctx, "cmt"))
    consultation = await _consultation(ctx)
    if consultation is None:
        _lost(ctx)
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
    comment = await ctx.store.consultations.comment(_num(ctx, "cmt"))
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
        consultation = await _consultation(ctx)
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
    comment = await ctx.store.consultations.comment(_num(ctx, "cmt"))
    if comment is None:  # its author deleted it meanwhile
        ctx.say(ctx.t("consultation.comment_gone") + _why_back(ctx, text))
        await ctx.goto(STAFF_FLOW, "list")
    elif not await _in_scope(ctx, comment):
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
    else:
        await _mark(ctx, comment, "explained", text)


async def _close_prompt(ctx: Ctx) -> None:
    consultation = await _consultation(ctx)
    if consultation is None:
        _lost(ctx)
        return
    pending = sum(p for _, p in (await ctx.store.consultations.counts(consultation.id)).values())
    ctx.say(ctx.t("consultation.close_confirm", title=consultation.title, pending=pending),
            [ctx.row(_skey("close"), ("consultation.close_yes", "y"), ("common.back", "b"))])


@registry.step(STAFF_FLOW, "close", _close_prompt)
async def _close_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("b",):
        await ctx.goto(STAFF_FLOW, "over")
    elif await _consultation(ctx) is None:
        _lost(ctx)
    elif choice == ("y",) and allowed(ctx.user, ADMIN):
        await _close(ctx)
    else:
        await ctx.wrong()


async def _close(ctx: Ctx) -> None:
    """Close, and tell each commenter what became of their comments (one notice each)."""
    consultation = await _consultation(ctx)
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
        _lost(ctx)
        return
    if consultation.status != "draft":  # published meanwhile, by another admin or the command line
        await ctx.goto(STAFF_FLOW, "over")
        return
    lines = [ctx.t("consultation.draft_line", position=s.position, title=cut(s.title, 60),
                   paragraphs=len(s.paragraphs)) for s in await _sections(ctx, consultation.id)]
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
        _lost(ctx)
    elif choice == ("p",) and allowed(ctx.user, ADMIN):  # the flow lets staff in; publishing is the admins'
        await _publish(ctx)
    elif choice == ("p",):
        await ctx.audit("denied", f"consultation:{ctx.data['cid']}")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
    else:
        await ctx.wrong()


async def _loaded(ctx: Ctx) -> Consultation | None:
    """The consultation of the conversation, a draft too (`_consultation` is what people may read)."""
    return await ctx.store.consultations.get(_num(ctx, "cid"))


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


# ---- a person's data ------------------------------------------------------------------------------------


async def export(ctx: Ctx) -> dict:
    """What /dulieu adds: every comment the person wrote (anonymous ones too: they are the person's), each section
    they answered, and where they stopped reading each draft."""
    store = ctx.store
    return {"consultations": {
        "comments": [{"consultation": code, "section": c.position, "paragraph": c.paragraph, "text": c.text,
                      "anonymous": c.anonymous, "written_at": c.created_at, "changed_at": c.updated_at,
                      "outcome": c.outcome, "explanation": c.explanation}
                     for code, c in await store.consultations.comments_by_user(ctx.user.id)],
        "answers": [{"consultation": code, "section": position, "answer": stance, "at": at}
                    for code, position, stance, at in await store.consultations.answers_by_user(ctx.user.id)],
        "reading": [{"consultation": code, "section": position, "at": at}
                    for code, position, at in await store.consultations.progress_by_user(ctx.user.id)],
    }}


# Comments on drafts are political opinion (sensitive data): an erasure deletes them with the person.
FEATURE = Feature(
    "consultation", commands=(Command("gopyvankien", menu="consultation.menu", place=230),
                              Command("vankien", STAFF, menu="consultation.menu_staff", place=240)),
    export=export, exported=PERSONAL_TABLES, erased=tuple((table, "user", None) for table in PERSONAL_TABLES),
)

