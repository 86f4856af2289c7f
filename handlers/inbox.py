"""/hopthu: a cadre's inbox of cases in their scope, and every action on a case.

Scope is checked in the handler that acts, on every event: a cadre of commune A cannot list, open or
act on a case of commune B by any route, forged buttons included. Anonymous senders are never shown.
"""

from __future__ import annotations

import html
from datetime import timedelta

from handlers.base import ADMIN, STAFF, Ctx, Document, Option, Reply, allowed, cb, registry, step_key
from handlers.features import Command, Feature
from handlers.pickers import cadre_rows, locality_name, locality_steps, page_note, page_row, pages_of, turned_page
from handlers.similar import similar_open_case
from messages import Key, cut, join
from storage.cases import Case, CaseMoved, InboxQuery
from storage.clock import parse
from storage.conversations import Conversation
from storage.localities import Locality

FLOW = "inb"
registry.flow(FLOW, roles=STAFF)
PAGE_SIZE = 6
VIEWS = ("new", "overdue", "due_soon", "open", "all")
SOON = timedelta(days=2)
LABEL = 40  # characters of a button a phone shows whole
TEXT_ACTIONS = {"answer": "ans", "decline": "dec", "note": "note", "dup": "dup", "fwdnote": "fwd"}  # hide: admins
TO_CITIZEN = ("answer", "decline")  # texts the citizen reads: previewed and confirmed before they go
TEXT_STEPS = {"answer": (2, 3000), "decline": (5, 1000), "note": (2, 2000), "dup": (4, 20), "hide": (5, 500),
              "fwdnote": (0, 1000)}


def _key(step: str) -> str:
    return step_key(FLOW, step)


# ---- who may see what -------------------------------------------------------------------------------


async def inbox_query(ctx: Ctx, **filters) -> InboxQuery:
    if ctx.user.role == "admin":
        return InboxQuery(paths=None, **filters)
    scope = await ctx.store.roles.scope(ctx.user.id)
    return InboxQuery(paths=await ctx.store.roles.scope_paths(ctx.user.id), topics=scope.topic_ids,
                      assignee=ctx.user.id, **filters)


async def can_see(ctx: Ctx, case: Case | None) -> bool:
    if case is None or not allowed(ctx.user, STAFF):
        return False
    if ctx.user.role == "admin" or case.assigned_to == ctx.user.id:
        return True
    scope = await ctx.store.roles.scope(ctx.user.id)
    in_place = any(case.locality_path.startswith(p) for p in await ctx.store.roles.scope_paths(ctx.user.id))
    return in_place and (not scope.topic_ids or case.topic_id in scope.topic_ids or case.urgent)


async def responsible_cadres(ctx: Ctx, case: Case) -> list[int]:
    cadres = await ctx.store.roles.cadres_covering(case.locality_path, case.topic_id)
    if case.assigned_to and case.assigned_to not in cadres:
        cadres.append(case.assigned_to)
    return cadres


async def urgent_recipients(ctx: Ctx, case: Case) -> list[int]:
    """Who hears of an urgent report at once, never nobody: the cadres of its place whatever their topics, else
    those of the level above (up to the province), else the admins."""
    place = await ctx.store.localities.get(case.locality_id)
    while place is not None:
        cadres = await ctx.store.roles.cadres_holding(place.id)
        if cadres:
            return cadres
        place = await ctx.store.localities.get(place.parent_id) if place.parent_id else None
    return [u.id for u in await ctx.store.users.staff() if u.role == "admin" and u.reachable]


async def _case_or_refuse(ctx: Ctx, case_id: object) -> Case | None:
    case = await ctx.store.cases.get(int(case_id)) if str(case_id).isdigit() else None
    if not await can_see(ctx, case):
        await ctx.audit("denied", f"case:{case_id}")
        ctx.finish()
        ctx.say(ctx.t("inbox.not_yours"))
        return None
    return case


# ---- the list ---------------------------------------------------------------------------------------


@registry.command("hopthu", "inbox")
async def inbox_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", view="open", page=0)


@registry.action("ib", roles=STAFF)
async def inbox_button(ctx: Ctx) -> None:
    """Digest and notification buttons: open the inbox on a view."""
    view = ctx.args[0] if len(ctx.args) == 1 and ctx.args[0] in VIEWS else "open"
    ctx.conversation = None
    await ctx.goto(FLOW, "list", view=view, page=0)


@registry.action("cs", roles=STAFF)
async def open_case_button(ctx: Ctx) -> None:
    if len(ctx.args) != 1:
        ctx.say(ctx.t(ctx.stale_key))
        return
    case = await _case_or_refuse(ctx, ctx.args[0])
    if case is not None:
        ctx.conversation = None
        await ctx.goto(FLOW, "case", case_id=case.id, view="open", page=0)


async def _list_prompt(ctx: Ctx) -> None:
    data = ctx.data
    filters = {"topic_id": data.get("topic_id")}
    if data.get("place_id"):
        place = await ctx.store.localities.get(data["place_id"])
        filters["locality_path"] = place.path if place else None
    soon = ctx.now + SOON
    counts = {}
    for view in VIEWS[:4]:
        _, counts[view] = await ctx.store.cases.inbox(await inbox_query(ctx, view=view, **filters), ctx.now, soon,
                                                      limit=0)
    view, page = data.get("view", "open"), int(data.get("page", 0))
    cases, total = await ctx.store.cases.inbox(await inbox_query(ctx, view=view, **filters), ctx.now, soon,
                                               offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    key = _key("list")
    rows = [tuple(Option(ctx.t(f"inbox.view_{v}", count=counts[v]) + (" •" if v == view else ""), cb(key, "v", v))
                  for v in VIEWS[:2]),
            tuple(Option(ctx.t(f"inbox.view_{v}", count=counts[v]) + (" •" if v == view else ""), cb(key, "v", v))
                  for v in VIEWS[2:4])]
    items = []
    for case in cases:
        label, item = await _line(ctx, case)
        rows.append((Option(label, cb(key, "o", case.id)),))
        items.append(item)
    pages = pages_of(total, PAGE_SIZE)
    rows += page_row(ctx, key, page, pages, "p")
    rows.append((Option(ctx.t("inbox.filter_topic"), cb(key, "ft")), Option(ctx.t("inbox.filter_place"), cb(key, "fl")),
                 Option(ctx.t("inbox.filter_clear"), cb(key, "fc"))))
    topic = await ctx.store.topics.get(data["topic_id"]) if data.get("topic_id") else None
    ctx.say(ctx.t("inbox.title", view=Key(f"inbox.name_{view}"), total=total,
                  topic=topic.name(ctx.t.language) if topic else ctx.t("inbox.any"),
                  place=await locality_name(ctx, data["place_id"]) if data.get("place_id") else ctx.t("inbox.any"))
            + ("\n\n" + join("\n", items) if items else "\n" + ctx.t("inbox.empty")) + page_note(ctx, page, pages),
            rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] in (("v",), ("p",)))


async def _line(ctx: Ctx, case: Case) -> tuple[str, str]:
    """A case in the list: its button (short enough for a phone: the code and what it is about) and its lines in
    the message (topic, place, status, due, overdue). Without buttons the numbered line carries it all."""
    late = _overdue(ctx, case)
    mark = "🔴" if case.urgent else ("⏰" if late else "•")
    place = await ctx.store.localities.get(case.shown_locality_id)
    topic = await ctx.store.topics.get(case.topic_id)
    about = ctx.t("inbox.hidden_short") if case.hidden_reason else case.content
    values = dict(mark=mark, code=case.code, place=place.name if place else "", topic=topic.name(ctx.t.language),
                  status=Key(f"status.{case.status}"), due=ctx.local(parse(case.answer_due))[:5], overdue=late)
    if not ctx.capabilities.buttons:  # a label is plain text: the values as they read
        values.update(status=ctx.t.plain(f"status.{case.status}"), overdue=ctx.t.plain("inbox.overdue") if late else "")
        return ctx.t.plain("inbox.line_numbered", excerpt=cut(about, 70), **values), ""
    label = f"{mark} {case.code} · "
    return label + cut(about, LABEL - len(label)), ctx.t("inbox.item", **values)


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if len(args) == 2 and args[0] == "v" and args[1] in VIEWS:
        ctx.data.update(view=args[1], page=0)
        ctx.dirty = True
        await _list_prompt(ctx)
    elif len(args) == 2 and args[0] == "o":
        case = await _case_or_refuse(ctx, args[1])
        if case is not None:
            await ctx.goto(FLOW, "case", case_id=case.id)
    elif args == ("ft",):
        await ctx.goto(FLOW, "ftopic")
    elif args == ("fl",):
        await ctx.goto(FLOW, "commune", page=0)
    elif args == ("fc",):
        ctx.data.update(topic_id=None, place_id=None, page=0)
        await ctx.goto(FLOW, "list")
    else:
        await ctx.wrong()


async def _ftopic_prompt(ctx: Ctx) -> None:
    rows = [(Option(t.name(ctx.t.language), cb(_key("ftopic"), t.id)),) for t in await ctx.store.topics.all()]
    ctx.say(ctx.t("inbox.ask_topic"), rows)


@registry.step(FLOW, "ftopic", _ftopic_prompt)
async def _ftopic_handle(ctx: Ctx) -> None:
    args = ctx.choice
    topic = await ctx.store.topics.get(int(args[0])) if len(args) == 1 and args[0].isdigit() else None
    if topic is None:
        await ctx.wrong()
        return
    await ctx.goto(FLOW, "list", topic_id=topic.id, page=0)


async def _place_filter(ctx: Ctx, loc: Locality | None) -> None:
    await ctx.goto(FLOW, "list", place_id=loc.id, page=0)


locality_steps(FLOW, on_commune=_place_filter, then=_place_filter)


# ---- one case ---------------------------------------------------------------------------------------

ACTIONS = {
    "new": ("ack", "prog", "ans", "fwd", "dec", "dup", "note"),
    "acknowledged": ("prog", "ans", "fwd", "dec", "dup", "note"),
    "in_progress": ("ans", "res", "fwd", "dec", "note"),
    "answered": ("res", "ans", "note"),
    "resolved": ("note",),
    "declined": ("note",),
    "duplicate": ("note",),
    "withdrawn": ("note",),
}


async def _card(ctx: Ctx, case: Case) -> tuple[str, list[tuple[Option, ...]]]:
    """A case's card: what it is about, where it stands, its history, and the actions its status allows."""
    topic = await ctx.store.topics.get(case.topic_id)
    sender = ctx.t("inbox.sender_anonymous")
    if not case.anonymous and case.user_id:
        person = await ctx.store.users.get(case.user_id)
        sender = person.display_name if person and person.display_name else ctx.t("inbox.sender_unnamed")
    elif not case.anonymous:  # not a choice of the sender's: they erased their data, or its time was up
        sender = ctx.t("inbox.sender_unlinked")
    content = case.content
    if case.hidden_reason:
        shown = [ctx.t("inbox.hidden", reason=case.hidden_reason)]
        if ctx.user.role == "admin":
            shown.append(ctx.t("inbox.hidden_original", content=case.content))
        content = join("\n", shown)
    attachments = await ctx.store.cases.attachments(case.id)
    history = [ctx.t("inbox.event", at=ctx.local(parse(e.at)), what=Key(f"event.{e.kind}"),
                     body=f": {e.body}" if e.body else "", internal=ctx.t("inbox.internal") if e.internal else "")
               for e in await ctx.store.cases.events(case.id, internal=True)]
    text = ctx.t("inbox.case", code=case.code, kind=Key(f"case.kind_{case.kind}"),
                 urgent=ctx.t("inbox.urgent") if case.urgent else "", status=Key(f"status.{case.status}"),
                 overdue=_overdue(ctx, case), topic=topic.name(ctx.t.language),
                 place=await locality_name(ctx, case.shown_locality_id), sender=sender,
                 created=ctx.local(parse(case.created_at)), due=ctx.local(parse(case.answer_due)),
                 content=content,
                 attachments=len(attachments), history=join("\n", history))
    if (twin := await similar_open_case(ctx.store, case, ctx.settings.similarity)) is not None:
        text += "\n" + ctx.t("similar.case", code=twin)
    key = _key("case")
    buttons = [Option(ctx.t(f"inbox.do_{a}"), cb(key, a)) for a in ACTIONS[case.status]]
    if ctx.user.role == "admin":
        buttons += [Option(ctx.t("inbox.do_asg"), cb(key, "asg")), Option(ctx.t("inbox.do_hide"), cb(key, "hide"))]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    rows.append((Option(ctx.t("inbox.back"), cb(key, "back")),))
    return text, rows


def _overdue(ctx: Ctx, case: Case) -> str:
    return ctx.t("inbox.overdue") if case.is_open and parse(case.answer_due) < ctx.now else ""


async def show_case(ctx: Ctx, case: Case) -> None:
    """The whole card, its photos and files first: shown once, when the case is opened."""
    ctx.data["seen"] = case.status
    text, rows = await _card(ctx, case)
    attachments = await ctx.store.cases.attachments(case.id)
    shown_files = attachments if not case.hidden_reason or ctx.user.role == "admin" else []  # hidden is hidden
    for number, item in enumerate(shown_files, start=1):
        if item.kind == "location":
            ctx.say(ctx.t("inbox.location", lat=f"{item.latitude:.5f}", lon=f"{item.longitude:.5f}"))
            continue
        content_bytes = await ctx.store.files.get(item.sha256) if item.sha256 else None
        if content_bytes is None:
            continue
        name = item.filename or f"{case.code}-{number}.{_extension(item.mime)}"
        document = Document(name, content_bytes, item.mime or "application/octet-stream")
        if item.kind == "photo":
            ctx.replies.append(Reply(ctx.t("inbox.attachment", n=number, code=case.code), photo=document))
        else:
            ctx.say(ctx.t("inbox.attachment", n=number, code=case.code), document=document)
    ctx.say(text, rows)


async def _card_again(ctx: Ctx, case_id: int, line: str = "") -> None:
    """After an action, the case's one card shows where it stands: edited in place where the channel can edit
    (the message pressed, a preview or a question, becomes the outcome line), elsewhere a short message with
    the actions. Never the whole card and its photos again."""
    case = await _case_or_refuse(ctx, case_id)  # another cadre may have forwarded it out of this one's places
    if case is None:
        return
    draft = {k: v for k, v in ctx.data.items() if k not in ("text", "then")} | {"seen": case.status}
    ctx.conversation = Conversation(FLOW, "case", draft)
    ctx.dirty = True
    text, rows = await _card(ctx, case)
    card = draft.get("card")
    if not (ctx.capabilities.edits and card):
        topic = await ctx.store.topics.get(case.topic_id)
        short = ctx.t("inbox.short", code=case.code, topic=topic.name(ctx.t.language),
                      status=Key(f"status.{case.status}"), overdue=_overdue(ctx, case),
                      excerpt=cut(ctx.t.plain("inbox.hidden_short") if case.hidden_reason else case.content, 80))
        ctx.say(join("\n", [line, short]) if line else short, rows)
        return
    pressed = ctx.inbound.message_ref if ctx.inbound.kind == "choice" else None
    if pressed != card:
        line = line or ctx.t("inbox.back_to_card", code=case.code)
        ctx.replies.append(Reply(line, edit=pressed is not None))
        line = ""
    ctx.replies.append(Reply(join("\n\n", [line, text]) if line else text, tuple(rows), edit=True, target=card))


def _extension(mime: str | None) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "audio/ogg": "ogg",
            "application/pdf": "pdf"}.get(mime or "", "bin")


async def _case_prompt(ctx: Ctx) -> None:
    case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
    if case is not None:
        ctx.data.pop("card", None)  # a new card: its message is known when one of its buttons is pressed
        await show_case(ctx, case)


@registry.step(FLOW, "case", _case_prompt)
async def _case_handle(ctx: Ctx) -> None:
    args = ctx.choice
    case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
    if case is None:
        return
    if args and ctx.inbound.message_ref:
        ctx.data["card"] = ctx.inbound.message_ref  # the card pressed: later steps edit it
    action = args[0] if len(args) == 1 else None
    if action == "back":
        await ctx.goto(FLOW, "list")
        return
    admin_only = {"asg", "hide"}
    if action in admin_only and not allowed(ctx.user, ADMIN):
        await ctx.audit("denied", f"case:{case.code}:{action}")
        await ctx.reask("common.not_allowed")
        return
    if action not in ACTIONS[case.status] and action not in admin_only:
        await ctx.wrong()
        return
    if action == "ack":
        await _transition(ctx, case, "acknowledged", "acknowledged", acknowledged_at=ctx.now)
    elif action == "prog":
        await _transition(ctx, case, "in_progress", "in_progress",
                          acknowledged_at=case.acknowledged_at or ctx.now)
    elif action == "res":
        await _transition(ctx, case, "resolved", "resolved", closed_at=ctx.now)
    elif action == "fwd":
        await ctx.goto(FLOW, "fwd")
    elif action == "asg":
        await ctx.goto(FLOW, "assign", apage=0)
    else:  # answer, decline, note, duplicate, hide: a text comes next
        await ctx.goto(FLOW, {"ans": "answer", "dec": "decline", "note": "note", "dup": "dup", "hide": "hide"}[action])


async def _transition(ctx: Ctx, case: Case, status: str, event: str, *, body: str | None = None,
                      **changes: object) -> None:
    try:
        await ctx.store.cases.record(case.id, ctx.user.id, event, ctx.now, body=body, unit=ctx.user.unit_name,
                                     expect=_seen(ctx, case), status=status, **changes)
    except CaseMoved as moved:
        await _moved(ctx, moved.case, body)
        return
    await ctx.audit(f"case.{event}", f"case:{case.code}")
    if case.user_id:
        key = {"answered": "track.answered", "declined": "track.declined", "duplicate": "track.duplicate"}
        ctx.notify(case.user_id, key.get(event, "track.update"), (("track.open", cb("trk", case.id)),),
                   code=case.code, status=Key(f"status.{status}"), body=body or "",
                   unit=ctx.user.unit_name or ctx.settings.operator_name)
    await _card_again(ctx, case.id, ctx.t("inbox.done", code=case.code, status=Key(f"status.{status}")))


def _seen(ctx: Ctx, case: Case) -> str:
    """The status the cadre's card showed: an action expects to find it, so that one pressed on a card the
    citizen or another cadre has changed since (a reopening with its reason) is not taken, and the card is shown
    again as it is now."""
    return ctx.data.get("seen", case.status)


async def _moved(ctx: Ctx, case: Case, text: str | None) -> None:
    """Someone else acted on the case first: this cadre is told, gets back what they wrote, and sees the case
    as it is now; nothing was stored and nobody else is told."""
    status = Key(f"status.{case.status}")
    if text:
        await _card_again(ctx, case.id, ctx.t("inbox.changed_meanwhile", code=case.code, status=status, text=text))
    else:
        await _card_again(ctx, case.id, ctx.t("inbox.moved_meanwhile", code=case.code, status=status))


# ---- steps that take a text -------------------------------------------------------------------------


def _text_step(step: str) -> None:
    low, high = TEXT_STEPS[step]

    async def prompt(ctx: Ctx) -> None:
        rows = [(Option(ctx.t("common.back"), cb(_key(step), "back")),)]
        if step == "fwdnote":
            rows.insert(0, (Option(ctx.t("inbox.no_note"), cb(_key(step), "skip")),))
        ask = ctx.t(f"inbox.ask_{step}")
        if ctx.data.get("then") == step and ctx.data.get("text"):  # «Sửa» on the preview, which this may replace
            ask = join("\n\n", [ask, ctx.t("inbox.draft", text=ctx.data["text"])])
        pressed = ctx.inbound.message_ref if ctx.inbound.kind == "choice" else None
        if pressed is None or not ctx.capabilities.edits:
            ctx.say(ask, rows)
            return
        if pressed == ctx.data.get("card"):  # the card keeps showing the case while its answer is written
            case = await ctx.store.cases.get(int(ctx.data["case_id"]))
            ask = join("\n\n", [(await _card(ctx, case))[0], ask])
        ctx.replies.append(Reply(ask, tuple(rows), edit=True))

    async def handle(ctx: Ctx) -> None:
        case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
        if case is None:
            return
        if ctx.inbound.kind == "choice" and ctx.args == ("back",):
            await _card_again(ctx, case.id)
            return
        skipped = step == "fwdnote" and ctx.inbound.kind == "choice" and ctx.args == ("skip",)
        text = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
        if not skipped and not (max(low, 1) <= ctx.length(text) <= high):
            await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "inbox.text_length",
                            low=max(low, 1), high=high)
            return
        action = TEXT_ACTIONS.get(step)
        if action is not None and action not in ACTIONS[case.status]:  # a colleague closed it meanwhile
            await _moved(ctx, case, text)
            return
        if step in TO_CITIZEN:
            await ctx.goto(FLOW, "sure", text=text, then=step)
            return
        await _apply_text(ctx, case, step, text)

    registry.step(FLOW, step, prompt)(handle)


async def _sure_prompt(ctx: Ctx) -> None:
    """What the citizen will read, exactly, before it goes."""
    case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
    if case is None:
        return
    if ctx.data.get("then") not in TO_CITIZEN or not ctx.data.get("text"):
        await _card_again(ctx, case.id)
        return
    ctx.say(ctx.t(f"inbox.preview_{ctx.data['then']}", code=case.code, text=ctx.data["text"],
                  unit=ctx.user.unit_name or ctx.settings.operator_name),
            [ctx.row(_key("sure"), ("inbox.preview_send", "send"), ("inbox.preview_edit", "edit"),
                     ("inbox.preview_drop", "drop"))])


@registry.step(FLOW, "sure", _sure_prompt)
async def _sure_handle(ctx: Ctx) -> None:
    case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
    if case is None:
        return
    step, text = ctx.data.get("then"), ctx.data.get("text")
    if step not in TO_CITIZEN or not text:  # nothing to preview (a draft from before this step)
        await _card_again(ctx, case.id)
    elif ctx.choice == ("send",):
        if TEXT_ACTIONS[step] not in ACTIONS[case.status]:
            await _moved(ctx, case, text)
        else:
            await _apply_text(ctx, case, step, text)
    elif ctx.choice == ("edit",):
        await ctx.goto(FLOW, step)
    elif ctx.choice == ("drop",):
        await _card_again(ctx, case.id, ctx.t("inbox.preview_dropped"))
    else:
        await ctx.wrong()


async def _apply_text(ctx: Ctx, case: Case, step: str, text: str) -> None:
    if step == "answer":
        await _transition(ctx, case, "answered", "answered", body=text, answered_at=ctx.now)
    elif step == "decline":
        await _transition(ctx, case, "declined", "declined", body=text, closed_at=ctx.now)
    elif step == "note":
        await ctx.store.cases.record(case.id, ctx.user.id, "note", ctx.now, body=text, internal=True,
                                     unit=ctx.user.unit_name)
        await ctx.audit("case.note", f"case:{case.code}")
        await _card_again(ctx, case.id, ctx.t("inbox.noted"))
    elif step == "dup":
        original = await ctx.store.cases.by_code(text)
        if original is None or original.id == case.id or not await can_see(ctx, original):
            await ctx.reask("inbox.dup_unknown", code=text)
            return
        await _transition(ctx, case, "duplicate", "duplicate", body=original.code, duplicate_of=original.id,
                          closed_at=ctx.now)
    elif step == "hide":
        if not allowed(ctx.user, ADMIN):
            ctx.finish()
            ctx.say(ctx.t("common.not_allowed"))
            return
        await ctx.store.cases.record(case.id, ctx.user.id, "hidden", ctx.now, body=text, internal=True,
                                     hidden_reason=text)
        await ctx.audit("case.hidden", f"case:{case.code}", reason=text)
        await _card_again(ctx, case.id, ctx.t("inbox.hidden_done"))
    elif step == "fwdnote":
        target = await ctx.store.localities.get(ctx.data["forward_to"])
        place = await locality_name(ctx, target.id)
        # Stored as plain text (shown escaped, like every event's body). The citizen sees where it went; the
        # note is for the unit that receives it, so it is an internal one.
        body = ctx.t.plain("inbox.forwarded_to", place=html.unescape(place))
        try:
            await ctx.store.cases.record(case.id, ctx.user.id, "forwarded", ctx.now, body=body,
                                         unit=ctx.user.unit_name, expect=_seen(ctx, case), locality_id=target.id)
        except CaseMoved as moved:
            await _moved(ctx, moved.case, text)
            return
        if text:
            await ctx.store.cases.record(case.id, ctx.user.id, "note", ctx.now, body=text, internal=True,
                                         unit=ctx.user.unit_name)
        await ctx.audit("case.forwarded", f"case:{case.code}", to=target.code)
        moved = await ctx.store.cases.get(case.id)
        if case.user_id:
            ctx.notify(case.user_id, "track.forwarded", (("track.open", cb("trk", case.id)),), code=case.code,
                       place=place)
        for cadre_id in await responsible_cadres(ctx, moved):
            if cadre_id != ctx.user.id:
                ctx.notify(cadre_id, "inbox.forwarded_in", (("inbox.open", cb("cs", case.id)),), code=case.code,
                           place=place)
        done = ctx.t("inbox.forward_done", code=case.code, place=place)
        if await can_see(ctx, moved):
            await _card_again(ctx, case.id, done)
        else:
            ctx.say(done)
            await ctx.goto(FLOW, "list")


for _step in TEXT_STEPS:
    _text_step(_step)


async def _forward_place(ctx: Ctx, loc: Locality | None) -> None:
    await ctx.goto(FLOW, "fwdnote", forward_to=loc.id)


async def _fwd_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("inbox.ask_forward"), [
        (Option(ctx.t("inbox.forward_province"), cb(_key("fwd"), "prov")),),
        (Option(ctx.t("inbox.forward_commune"), cb(_key("fwd"), "com")),),
        (Option(ctx.t("common.back"), cb(_key("fwd"), "back")),),
    ])


@registry.step(FLOW, "fwd", _fwd_prompt)
async def _fwd_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await _case_or_refuse(ctx, ctx.data.get("case_id")) is None:
        return
    if args == ("prov",):
        province = (await ctx.store.localities.children(None))[0]
        await ctx.goto(FLOW, "fwdnote", forward_to=province.id)
    elif args == ("com",):
        await ctx.goto(FLOW, "fwdc", page=0)
    elif args == ("back",):
        await _card_again(ctx, int(ctx.data["case_id"]))
    else:
        await ctx.wrong()


locality_steps(FLOW, commune_step="fwdc", village_step="fwdv", then=_forward_place)


async def _assign_prompt(ctx: Ctx) -> None:
    case = await ctx.store.cases.get(int(ctx.data["case_id"]))
    covering = set(await ctx.store.roles.cadres_covering(case.locality_path, case.topic_id))
    rows, note = await cadre_rows(ctx, _key("assign"), int(ctx.data.get("apage", 0)), covering)
    rows.append((Option(ctx.t("common.back"), cb(_key("assign"), "back")),))
    ctx.say(ctx.t("inbox.ask_assign") + note, rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("pg",))


@registry.step(FLOW, "assign", _assign_prompt)
async def _assign_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if not allowed(ctx.user, ADMIN):
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    case = await _case_or_refuse(ctx, ctx.data.get("case_id"))
    if case is None or await turned_page(ctx, _assign_prompt, field="apage"):
        return
    if args == ("back",):
        await _card_again(ctx, case.id)
        return
    cadre = await ctx.store.users.get(int(args[0])) if len(args) == 1 and args[0].isdigit() else None
    if cadre is None or cadre.role != "cadre":
        await ctx.wrong()
        return
    try:
        await ctx.store.cases.record(case.id, ctx.user.id, "reassigned", ctx.now, internal=True,
                                     body=cadre.unit_name or cadre.display_name, expect=_seen(ctx, case),
                                     assigned_to=cadre.id)
    except CaseMoved as moved:
        await _moved(ctx, moved.case, None)
        return
    await ctx.audit("case.reassigned", f"case:{case.code}", to=cadre.id)
    ctx.notify(cadre.id, "inbox.assigned_to_you", (("inbox.open", cb("cs", case.id)),), code=case.code)
    await _card_again(ctx, case.id, ctx.t("inbox.assigned", code=case.code))


FEATURE = Feature("inbox", commands=(Command("hopthu", STAFF, menu="menu.hopthu", place=40),))
