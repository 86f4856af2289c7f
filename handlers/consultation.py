"""/gopyvankien: reading a draft document section by section and commenting on it (staff's side, /vankien, is
handlers/consultation_staff.py).

Reading asks nothing; the first answer to a section («Đồng ý», «Có ý kiến», «Bỏ qua») asks the consent to send
opinions and the sensitive one (what a person says of a Party document may reveal a political opinion), in that
order, never before. A person comes back where they
stopped, and reads, changes or deletes their comments until the consultation closes.
"""

from __future__ import annotations

import re
import unicodedata

from handlers.base import STAFF, Ctx, Option, cb, registry, step_key
from handlers.consent import has_consent, record_consent
from handlers.features import Command, Feature
from messages import Key, cut, join
from storage.clock import parse
from storage.consultations import PERSONAL_TABLES, Comment, Consultation, Section

FLOW = "vk"
registry.flow(FLOW)
MIN_TEXT, MAX_TEXT = 5, 3000
MARKS = {"agree": "✅", "comment": "💬", "skip": "⏭"}
PARAGRAPH = re.compile(r"^\s*(?:đoạn|doan|paragraph|para)\s*(\d{1,3})\s*[:.,)\-–]?\s*(.*)$", re.IGNORECASE | re.DOTALL)


def _key(step: str) -> str:
    return step_key(FLOW, step)


def num(ctx: Ctx, name: str) -> int:
    """A number of the draft; 0 (nothing has it) where the draft lacks it or holds something else."""
    value = ctx.data.get(name)
    return value if isinstance(value, int) and value > 0 else 0


def lost(ctx: Ctx) -> None:
    """The consultation, section or comment the conversation was about is not there (any more)."""
    ctx.finish()
    ctx.say(ctx.t("consultation.lost"))


async def current(ctx: Ctx) -> Consultation | None:
    """The consultation of the conversation, where people may read it (published)."""
    consultation = await ctx.store.consultations.get(num(ctx, "cid"))
    return consultation if consultation is not None and consultation.status != "draft" else None


async def sections_of(ctx: Ctx, consultation_id: int) -> list[Section]:
    """The document, read once however many steps one button press passes through (a saved draft's text does not
    change: a new version is a new consultation)."""
    key = ("consultation.sections", consultation_id)
    if key not in ctx.memo:
        ctx.memo[key] = await ctx.store.consultations.sections(consultation_id)
    return ctx.memo[key]


async def section_at(ctx: Ctx, position: int) -> tuple[Section | None, int]:
    sections = await sections_of(ctx, num(ctx, "cid"))
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


async def named(ctx: Ctx) -> Consultation | None:
    """The published consultation a button names; None, the person told so, when it is gone or a draft."""
    consultation = await ctx.store.consultations.get(int(ctx.args[0])) \
        if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if consultation is None or consultation.status == "draft":
        ctx.say(ctx.t(ctx.stale_key))
        return None
    return consultation


@registry.action("vko")
async def open_button(ctx: Ctx) -> None:
    """A consultation chosen from the list, or from a notice."""
    if (consultation := await named(ctx)) is not None:
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
    consultation = await current(ctx)
    if consultation is None:
        lost(ctx)
        return
    store = ctx.store
    sections = await sections_of(ctx, consultation.id)
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
    section, _ = await section_at(ctx, position)
    if section is None:
        await ctx.reask(ctx.stale_key)
        return
    await ctx.goto(FLOW, "sec", pos=position)


# ---- a section ----------------------------------------------------------------------------------------


async def _sec_prompt(ctx: Ctx) -> None:
    consultation = await current(ctx)
    section, total = await section_at(ctx, num(ctx, "pos"))
    if consultation is None or section is None:
        lost(ctx)
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
    consultation = await current(ctx)
    position = num(ctx, "pos")
    section, total = await section_at(ctx, position)
    if consultation is None or section is None:
        lost(ctx)
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
    position = num(ctx, "pos")
    section, total = await section_at(ctx, position)
    if not await ctx.store.consultations.answer(section.id, ctx.user.id, stance, ctx.now):  # closed meanwhile
        ctx.say(ctx.t("consultation.closed"))
        await ctx.goto(FLOW, "sec")
        return
    ctx.say(ctx.t(f"consultation.answered_{stance}", position=position))
    await _next(ctx, position, total)


async def _consent_prompt(ctx: Ctx) -> None:
    purpose = ctx.data.get("purpose")
    if purpose not in ("opinions", "sensitive") or ctx.data.get("stance") not in ("agree", "skip", "comment"):
        lost(ctx)
        return
    key = _key("consent")
    intro = [ctx.t("consultation.needs_opinions")] if purpose == "opinions" else []
    ctx.say("\n\n".join([*intro, ctx.t(f"consent.{purpose}")]), [  # the very text record_consent versions
        (Option(ctx.t("consent.yes"), cb(key, "y")),), (Option(ctx.t("consultation.only_read"), cb(key, "n")),)])


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    section, _ = await section_at(ctx, num(ctx, "pos"))
    if await current(ctx) is None or section is None or ctx.data.get("purpose") not in ("opinions", "sensitive"):
        lost(ctx)
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
    section, _ = await section_at(ctx, num(ctx, "pos"))
    if section is None:
        lost(ctx)
        return
    earlier = ctx.data.get("earlier")
    ctx.say(ctx.t("consultation.ask_comment", position=section.position, title=section.title,
                  count=len(section.paragraphs))
            + (("\n\n" + ctx.t("consultation.earlier", text=earlier)) if earlier else ""),
            [ctx.row(_key("write"), ("common.back", "b"))])


@registry.step(FLOW, "write", _write_prompt)
async def _write_handle(ctx: Ctx) -> None:
    section, _ = await section_at(ctx, num(ctx, "pos"))
    if section is None:
        lost(ctx)
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
    if ctx.length(text) > MAX_TEXT:  # given back, to be shortened rather than written again
        await ctx.reask("consultation.comment_too_long", low=MIN_TEXT, high=MAX_TEXT, length=ctx.length(text),
                        text=text)
        return
    if ctx.length(text) < MIN_TEXT:
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
    consultation = await current(ctx)
    section, _ = await section_at(ctx, num(ctx, "pos"))
    if consultation is None or section is None or not isinstance(ctx.data.get("text"), str):
        lost(ctx)
        return
    data, store = ctx.data, ctx.store
    anonymous = choice == ("a",)
    paragraph = data.get("paragraph") if isinstance(data.get("paragraph"), int) else None
    if not consultation.accepts(ctx.now):
        saved = False
    elif data.get("cmt"):
        saved = await store.consultations.change_comment(num(ctx, "cmt"), ctx.user.id, paragraph,
                                                         data["text"], anonymous, ctx.now)
    else:
        saved = await store.consultations.add_comment(section.id, ctx.user.id, paragraph, data["text"], anonymous,
                                                      ctx.inbound.channel, await _commune(ctx), ctx.now) is not None
    if not saved:  # closed (maybe in the instant since the check above), or the comment changed was deleted
        fresh = await current(ctx)
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
    consultation = await current(ctx)
    key = _key("saved")
    ctx.say(ctx.t("consultation.saved", position=num(ctx, "pos"),
                  sender=Key("consultation.anonymous" if ctx.data.get("anonymous") else "consultation.named")), [
        ctx.row(key, ("consultation.comment_more", "k")),
        ctx.row(key, ("consultation.next", "n"), ("consultation.toc_button", "t")),
    ] if consultation is not None else [])


@registry.step(FLOW, "saved", _saved_prompt)
async def _saved_handle(ctx: Ctx) -> None:
    await _navigate(ctx)


# ---- my comments ----------------------------------------------------------------------------------------


def where(ctx: Ctx, comment: Comment) -> str:
    return ctx.t("consultation.where_paragraph", position=comment.position, paragraph=comment.paragraph) \
        if comment.paragraph else ctx.t("consultation.where_section", position=comment.position)


def _comment_line(ctx: Ctx, number: int, comment: Comment) -> str:
    outcome = ctx.t(f"consultation.outcome_{comment.outcome}") if comment.outcome else ""
    return ctx.t("consultation.mine_line", number=number, where=where(ctx, comment), text=cut(comment.text, 120),
                 sender=Key("consultation.anonymous" if comment.anonymous else "consultation.named"), outcome=outcome)


async def _mine_prompt(ctx: Ctx) -> None:
    consultation = await current(ctx)
    if consultation is None:
        lost(ctx)
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
    comment = await _own(ctx, num(ctx, "cmt"))
    consultation = await current(ctx)
    if comment is None or consultation is None:
        await ctx.goto(FLOW, "mine")
        return
    key = _key("one")
    rows = [ctx.row(key, ("consultation.change", "w"), ("consultation.delete", "d"))] \
        if consultation.accepts(ctx.now) else []
    rows.append(ctx.row(key, ("common.back", "b")))
    explanation = ctx.t("consultation.explained_as", text=comment.explanation) if comment.explanation else ""
    outcome = f"consultation.outcome_{comment.outcome}" if comment.outcome else "consultation.pending"
    ctx.say(ctx.t("consultation.one", where=where(ctx, comment), text=comment.text, explanation=explanation,
                  sender=Key("consultation.anonymous" if comment.anonymous else "consultation.named"),
                  outcome=Key(outcome)), rows)


@registry.step(FLOW, "one", _one_prompt)
async def _one_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    comment = await _own(ctx, num(ctx, "cmt"))
    consultation = await current(ctx)
    if choice == ("b",) or comment is None or consultation is None:
        ctx.data.pop("cmt", None)
        await ctx.goto(FLOW, "mine")
    elif choice in (("w",), ("d",)) and not consultation.accepts(ctx.now):
        await ctx.reask("consultation.closed")
    elif choice == ("w",):
        await ctx.goto(FLOW, "write", pos=comment.position, earlier=comment.text)
    elif choice == ("d",):
        deleted = await ctx.store.consultations.delete_comment(comment.id, ctx.user.id, ctx.now)
        if not deleted and not (await current(ctx)).accepts(ctx.now):  # closed since the check above
            await ctx.reask("consultation.closed")  # the comment stays, shown as it is
            return
        ctx.data.pop("cmt", None)
        ctx.say(ctx.t("consultation.deleted"))
        await ctx.goto(FLOW, "mine")
    else:
        await ctx.wrong()


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

