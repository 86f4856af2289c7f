"""/gopy and /phananh: a citizen sends a suggestion or a report, step by step, and gets a reference code.

topic → locality (the profile's by default) → content (text, up to 5 photos, a voice note, a document,
a location) → anonymous? → urgent? (reports only) → review → send. Every step is saved as a draft, so a
person who leaves finds it again next time. The case is committed before the bot says "received".
"""

from __future__ import annotations

import secrets

from handlers import images
from handlers.base import Ctx, Media, Option, cb, registry, step_key
from handlers.consent import has_consent, record_consent
from handlers.features import Buttons, Command, Feature
from handlers.inbox import urgent_recipients
from handlers.pickers import locality_name, locality_steps, place_path
from handlers.workdays import add_working_days
from messages import Key, Safe, cut, join
from storage.cases import Attachment, Case, NewCase
from storage.clock import parse
from storage.localities import Locality

FLOW = "case"
registry.flow(FLOW)
KINDS = ("gopy", "phananh")
MIN_TEXT, MAX_TEXT = 5, 3000
MIN_NAME, MAX_NAME = 2, 100  # "Gửi kèm tên" where the channel gives no name: a name, perhaps a phone number
URGENT_DAYS = 1  # working days to answer an urgent report
LIMITS = {"photo": 5, "voice": 1, "audio": 1, "document": 1, "location": 1}
MAX_BYTES = {"photo": images.MAX_BYTES, "voice": 20 * 1024 * 1024, "audio": 20 * 1024 * 1024,
             "document": 20 * 1024 * 1024}
STEPS = ("consent", "resume", "topic", "sensitive", "place", "commune", "village", "content", "anon", "name", "urgent",
         "review")


def _key(step: str) -> str:
    return step_key(FLOW, step)


def case_step(step: str, prompt):
    """Register a step whose every answer also saves the draft (or drops it when the flow ends)."""

    def register(handle):
        async def handle_and_save(ctx: Ctx) -> None:
            await handle(ctx)
            if ctx.conversation is not None and ctx.conversation.flow == FLOW:
                draft = {**ctx.conversation.data, "_step": ctx.conversation.step}
                await ctx.store.cases.save_draft(ctx.user.id, draft, ctx.now)

        registry.step(FLOW, step, prompt)(handle_and_save)
        return handle

    return register


# ---- starting ---------------------------------------------------------------------------------------


async def start_case(ctx: Ctx, kind: str, campaign_id: int | None = None, carried: dict | None = None) -> None:
    """`carried`: what the person sent before choosing to make it a case (handlers/offer.py), or a survey's answer
    and its topic (handlers/surveys.py), taken in as content once they have consented."""
    if not await has_consent(ctx, "opinions"):
        await ctx.goto(FLOW, "consent", kind=kind, campaign_id=campaign_id, carried=carried)
        return
    if await _slowed_down(ctx):
        return
    draft = await ctx.store.cases.draft(ctx.user.id)
    if draft and draft.get("kind") in KINDS:
        await ctx.goto(FLOW, "resume", kind=kind, campaign_id=campaign_id, carried=carried)
        return
    await _fresh(ctx, kind, campaign_id, carried)


async def _fresh(ctx: Ctx, kind: str, campaign_id: int | None, carried: dict | None = None) -> None:
    ctx.conversation = None
    data = {"kind": kind, "campaign_id": campaign_id, "attachments": [], "key": _new_key()}
    await _carry(ctx, data, carried)
    if carried and carried.get("topic_id"):  # a survey's answer knows its topic (handlers/surveys.py)
        await ctx.goto(FLOW, "place", topic_id=carried["topic_id"], **data)
        return
    if campaign_id:
        campaign = await _campaign(ctx, campaign_id)
        if campaign and campaign.topic_id:
            await ctx.goto(FLOW, "place", topic_id=campaign.topic_id, **data)
            return
    await ctx.goto(FLOW, "topic", **data)


def _new_key() -> str:
    """A draft's submission key: «Gửi» carries it, and the case is stored under it once."""
    return secrets.token_urlsafe(12)


async def _campaign(ctx: Ctx, campaign_id: int):
    return await ctx.store.campaigns.get(campaign_id)


async def _slowed_down(ctx: Ctx) -> bool:
    recent = await ctx.store.cases.count_since(ctx.user.id, ctx.now - ctx.settings.case_window)
    if recent >= ctx.settings.case_limit:
        ctx.finish()
        ctx.say(ctx.t("case.slow_down", limit=ctx.settings.case_limit,
                      minutes=int(ctx.settings.case_window.total_seconds() // 60)))
        return True
    return False


@registry.command("gopy", "suggest")
async def gopy_command(ctx: Ctx) -> None:
    await start_case(ctx, "gopy")


@registry.command("phananh", "report")
async def phananh_command(ctx: Ctx) -> None:
    await start_case(ctx, "phananh")


@registry.action("new")
async def new_case_button(ctx: Ctx) -> None:
    """Buttons that open the flow: the main menu's, and a campaign's "Góp ý ngay" (with its id)."""
    args = ctx.args
    if not args or args[0] not in KINDS or (len(args) == 2 and not args[1].isdigit()) or len(args) > 2:
        ctx.say(ctx.t(ctx.stale_key))
        return
    campaign_id = int(args[1]) if len(args) == 2 else None
    if campaign_id is not None and await ctx.store.campaigns.get(campaign_id) is None:
        campaign_id = None
    ctx.conversation = None
    ctx.dirty = True
    await start_case(ctx, args[0], campaign_id)


async def _consent_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("case.needs_consent"), [
        ctx.row(_key("consent"), ("consent.yes", "y"), ("consent.no", "n")),
    ])


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("n",):
        ctx.finish()
        ctx.say(ctx.t("case.no_consent"))
    elif choice == ("y",):
        await record_consent(ctx, "opinions", True)
        kind, campaign_id, carried = ctx.data["kind"], ctx.data.get("campaign_id"), ctx.data.get("carried")
        ctx.conversation = None
        await start_case(ctx, kind, campaign_id, carried)
    else:
        await ctx.wrong()


async def _resume_prompt(ctx: Ctx) -> None:
    draft = await ctx.store.cases.draft(ctx.user.id) or {}
    ctx.say(ctx.t("case.resume", kind=Key(f"case.kind_{draft.get('kind', 'gopy')}"),
                  excerpt=cut(draft.get("content") or "", 80)),
            [ctx.row(_key("resume"), ("case.resume_yes", "y"), ("case.resume_no", "n"))])


@case_step("resume", _resume_prompt)
async def _resume_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("y",):
        draft = await ctx.store.cases.draft(ctx.user.id) or {}
        step = draft.pop("_step", "topic")
        await _carry(ctx, draft, ctx.data.get("carried"))
        ctx.conversation = None
        await ctx.goto(FLOW, step if step in STEPS and step not in ("resume", "consent") else "topic", **draft)
    elif choice == ("n",):
        await ctx.store.cases.drop_draft(ctx.user.id)
        await _fresh(ctx, ctx.data["kind"], ctx.data.get("campaign_id"), ctx.data.get("carried"))
    else:
        await ctx.wrong()


async def _carry(ctx: Ctx, data: dict, carried: dict | None) -> None:
    """Take what was carried into a draft: text as (more) content, a file or a location as an attachment."""
    if not carried:
        return
    if carried.get("text"):
        data["content"] = f"{data['content']}\n{carried['text']}" if data.get("content") else carried["text"]
    for media in (Media(**item) for item in carried.get("media", [])):
        if _count(data, media.kind) < LIMITS[media.kind]:
            kept = await ctx.keep(media, MAX_BYTES[media.kind], "case.too_large", kind=Key(f"case.att_{media.kind}"),
                                  mb=MAX_BYTES[media.kind] // (1024 * 1024))
            if kept is not None:
                data.setdefault("attachments", []).append(_attachment(media, *kept))
    if carried.get("location") and _count(data, "location") < LIMITS["location"]:
        latitude, longitude = carried["location"]
        data.setdefault("attachments", []).append({"kind": "location", "latitude": latitude, "longitude": longitude})


# ---- topic and place --------------------------------------------------------------------------------


async def _topic_prompt(ctx: Ctx) -> None:
    topics = await ctx.store.topics.all()
    rows = [(Option(t.name(ctx.t.language), cb(_key("topic"), t.id)),) for t in topics]
    ctx.say(ctx.t("case.ask_topic", kind=Key(f"case.kind_{ctx.data['kind']}")), rows)


@case_step("topic", _topic_prompt)
async def _topic_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    topic = await ctx.store.topics.get(int(choice[0])) if len(choice) == 1 and choice[0].isdigit() else None
    if topic is None:
        await ctx.wrong()
        return
    ctx.data["topic_id"] = topic.id
    if topic.sensitive and not await has_consent(ctx, "sensitive"):
        await ctx.goto(FLOW, "sensitive")
    else:
        await ctx.goto(FLOW, "place")


async def _sensitive_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("consent.sensitive"), [  # the very text record_consent versions
        (Option(ctx.t("consent.yes"), cb(_key("sensitive"), "y")),),
        (Option(ctx.t("case.other_topic"), cb(_key("sensitive"), "n")),),
    ])


@case_step("sensitive", _sensitive_prompt)
async def _sensitive_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("y",):
        await record_consent(ctx, "sensitive", True)
        await ctx.goto(FLOW, "place")
    elif choice == ("n",):
        ctx.data.pop("topic_id", None)
        await ctx.goto(FLOW, "topic")
    else:
        await ctx.wrong()


async def _place_prompt(ctx: Ctx) -> None:
    if ctx.user.locality_id is None:
        await ctx.goto(FLOW, "commune", page=0)
        return
    ctx.say(ctx.t("case.ask_place", place=await locality_name(ctx, ctx.user.locality_id)), [
        ctx.row(_key("place"), ("case.place_yes", "y"), ("case.place_other", "o")),
    ])


@case_step("place", _place_prompt)
async def _place_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("y",) and ctx.user.locality_id is not None:
        ctx.data["locality_id"] = ctx.user.locality_id
        await ctx.goto(FLOW, "content")
    elif choice == ("o",):
        await ctx.goto(FLOW, "commune", page=0)
    else:
        await ctx.wrong()


async def _place_chosen(ctx: Ctx, loc: Locality | None) -> None:
    ctx.data["locality_id"] = loc.id
    await ctx.goto(FLOW, "content")


locality_steps(FLOW, then=_place_chosen)


# ---- content and attachments ------------------------------------------------------------------------


def _counts(ctx: Ctx) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in ctx.data.get("attachments", []):
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    return counts


def _next_row(ctx: Ctx) -> list[tuple[Option, ...]]:
    return [(Option(ctx.t("case.continue"), cb(_key("content"), "next")),)] if ctx.data.get("content") else []


async def _content_prompt(ctx: Ctx) -> None:
    if ctx.data.get("content"):
        ctx.say(ctx.t("case.content_have", excerpt=cut(ctx.data["content"], 80),
                      photos=_counts(ctx).get("photo", 0)), _next_row(ctx), limit=MAX_TEXT)
    elif ctx.data.get("attachments"):  # files without words yet, carried in from outside the flow (handlers/offer.py)
        kinds = join(", ", (Safe(ctx.t(f"case.att_{kind}")) for kind in _counts(ctx)))
        ctx.say(ctx.t("case.attached_need_text", kind=kinds), limit=MAX_TEXT)
    else:
        ctx.say(ctx.t(f"case.ask_content_{ctx.data['kind']}"), limit=MAX_TEXT)


@case_step("content", _content_prompt)
async def _content_handle(ctx: Ctx) -> None:
    inbound = ctx.inbound
    if inbound.kind == "choice":
        if ctx.args == ("next",) and ctx.data.get("content"):
            await ctx.goto(FLOW, "anon")
        elif ctx.args == ("next",):
            await ctx.reask("case.content_missing")
        else:
            await ctx.wrong()
        return
    if inbound.kind == "text":
        text = inbound.text.strip()
        earlier = ctx.data.get("content")
        if earlier and MIN_TEXT <= len(text):  # a report written in several messages: nothing is dropped
            text = f"{earlier}\n{text}"
        if not MIN_TEXT <= ctx.length(text) <= MAX_TEXT:  # as the channel counts: on Telegram an emoji is 2
            await ctx.reask("case.content_length", low=MIN_TEXT, high=MAX_TEXT, length=ctx.length(text))
            return
        ctx.data["content"] = text
        ctx.dirty = True
        ctx.say(ctx.t("case.content_saved", photos=_counts(ctx).get("photo", 0)), _next_row(ctx))
        return
    if inbound.kind == "media" and inbound.media is not None:
        await _attach_media(ctx, inbound.media)
        return
    if inbound.kind == "location" and inbound.location is not None:
        if _counts(ctx).get("location", 0) >= LIMITS["location"]:
            await ctx.reask("case.too_many", kind=Key("case.att_location"), limit=LIMITS["location"])
            return
        lat, lon = inbound.location
        ctx.data["attachments"].append({"kind": "location", "latitude": lat, "longitude": lon})
        ctx.dirty = True
        ctx.say(ctx.t("case.attached", kind=Key("case.att_location")), _next_row(ctx))
        return
    await ctx.reask("case.content_unsupported")


async def _attach_media(ctx: Ctx, media: Media) -> None:
    kind = media.kind if media.kind in LIMITS else None
    if kind is None or ctx.fetch is None:
        await ctx.reask("case.content_unsupported")
        return
    if _counts(ctx).get(kind, 0) >= LIMITS[kind]:
        await ctx.reask("case.too_many", kind=Key(f"case.att_{kind}"), limit=LIMITS[kind])
        return
    kept = await ctx.keep(media, MAX_BYTES[kind], "case.too_large", kind=Key(f"case.att_{kind}"),
                          mb=MAX_BYTES[kind] // (1024 * 1024))
    if kept is None:
        return
    ctx.data["attachments"].append(_attachment(media, *kept))
    caption = ctx.inbound.text.strip()
    if caption and not ctx.data.get("content") and MIN_TEXT <= len(caption) <= MAX_TEXT:
        ctx.data["content"] = caption
    ctx.dirty = True
    ctx.say(ctx.t("case.attached", kind=Key(f"case.att_{kind}")) if ctx.data.get("content")
            else ctx.t("case.attached_need_text", kind=Key(f"case.att_{kind}")), _next_row(ctx))


def _attachment(media: Media, digest: str, size: int) -> dict:
    photo = media.kind == "photo"  # kept as a JPEG of our making: its type is ours and the sender's file name is not
    return {"kind": media.kind, "sha256": digest, "mime": images.MIME if photo else media.mime, "size": size,
            "filename": None if photo else (media.filename or "")[:120] or None}


def _count(data: dict, kind: str) -> int:
    return sum(1 for item in data.get("attachments", []) if item["kind"] == kind)


# ---- anonymous, urgent, review ----------------------------------------------------------------------


async def _anon_prompt(ctx: Ctx) -> None:
    """What cadres will see of the place is said before the choice (storage/cases.py SHOWN_LOCALITY)."""
    place = await ctx.store.localities.get(ctx.data["locality_id"])
    commune = place.parent_id if place is not None and place.level > 1 else ctx.data["locality_id"]
    shown = commune if ctx.data["kind"] == "gopy" else ctx.data["locality_id"]
    ctx.say(ctx.t(f"case.ask_anonymous_{ctx.data['kind']}", place=await locality_name(ctx, shown)), [
        (Option(ctx.t("case.named"), cb(_key("anon"), "n")),),
        (Option(ctx.t("case.anonymous"), cb(_key("anon"), "a")),),
    ])


@case_step("anon", _anon_prompt)
async def _anon_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice not in (("n",), ("a",)):
        await ctx.wrong()
        return
    ctx.data["anonymous"] = choice == ("a",)
    if not ctx.data["anonymous"] and not ctx.user.display_name:  # the web chat knows no one's name
        await ctx.goto(FLOW, "name")
        return
    await _after_sender(ctx)


async def _after_sender(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "urgent" if ctx.data["kind"] == "phananh" else "review")


async def _name_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("case.ask_name"), [(Option(ctx.t("case.anonymous"), cb(_key("name"), "a")),)])


@case_step("name", _name_prompt)
async def _name_handle(ctx: Ctx) -> None:
    """A name (and a phone number, if the person wants a call back) for "Gửi kèm tên" where the channel gives
    none; kept as the person's name, so the cadre sees it as on any other channel."""
    if ctx.inbound.kind == "choice" and ctx.choice == ("a",):
        ctx.data["anonymous"] = True
        await _after_sender(ctx)
        return
    name = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not MIN_NAME <= len(name) <= MAX_NAME:
        await ctx.reask("case.name_length", low=MIN_NAME, high=MAX_NAME)
        return
    await ctx.store.users.update(ctx.user.id, ctx.now, display_name=name)
    await _after_sender(ctx)


async def _urgent_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("case.ask_urgent"), [
        ctx.row(_key("urgent"), ("case.urgent_yes", "y"), ("case.urgent_no", "n")),
    ])


@case_step("urgent", _urgent_prompt)
async def _urgent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice not in (("y",), ("n",)):
        await ctx.wrong()
        return
    ctx.data["urgent"] = choice == ("y",)
    await ctx.goto(FLOW, "review")


async def _review_prompt(ctx: Ctx) -> None:
    data = ctx.data
    if "key" not in data:  # a draft begun before drafts had keys
        data["key"] = _new_key()
        ctx.dirty = True
    topic = await ctx.store.topics.get(data["topic_id"])
    counts = _counts(ctx)
    ctx.say(ctx.t(
        "case.review",
        kind=Key(f"case.kind_{data['kind']}"),
        topic=topic.name(ctx.t.language),
        place=await locality_name(ctx, data["locality_id"]),
        content=data["content"],
        attachments=join(", ", (Safe(f"{ctx.t('case.att_' + k)} ×{n}") for k, n in counts.items()))
        or ctx.t("common.none"),
        sender=Key("case.anonymous" if data.get("anonymous") else "case.named"),
        urgent=Key("case.urgent_yes" if data.get("urgent") else "case.urgent_no"),
    ), [
        (Option(ctx.t("case.send"), cb(_key("review"), "send", data["key"])),),
        ctx.row(_key("review"), ("case.edit", "edit"), ("case.discard", "drop")),
    ])


@case_step("review", _review_prompt)
async def _review_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("edit",):
        await ctx.goto(FLOW, "content")
    elif choice == ("drop",):
        ctx.finish()
        await ctx.store.cases.drop_draft(ctx.user.id)
        ctx.say(ctx.t("case.discarded"))
    elif choice == ("send", ctx.data.get("key")):
        await _submit(ctx)
    elif len(choice) == 2 and choice[0] == "send" and await _sent_before(ctx, choice[1]):
        return  # an earlier report's «Gửi»: its code again, and this draft stays at its review
    else:
        await ctx.wrong()


@registry.action(_key("review"))
async def _review_over(ctx: Ctx) -> None:
    """A review button pressed when no review is open: «Gửi» again after its case was stored (a double tap, an
    update redelivered or replayed after a crash) gets the same answer with the same code."""
    if not (len(ctx.args) == 2 and ctx.args[0] == "send" and await _sent_before(ctx, ctx.args[1])):
        ctx.say(ctx.t(ctx.stale_key))


async def _sent_before(ctx: Ctx, key: str) -> bool:
    """Say again that the case stored under `key` was received, if it is this person's."""
    case = await ctx.store.cases.by_key(ctx.user.id, key)
    if case is None:
        return False
    _received(ctx, case)
    return True


async def _submit(ctx: Ctx) -> None:
    if await _slowed_down(ctx):
        return
    data = ctx.data
    topic = await ctx.store.topics.get(data["topic_id"])
    tz = ctx.settings.tz
    case = await ctx.store.cases.create(NewCase(
        kind=data["kind"], user_id=ctx.user.id, anonymous=bool(data.get("anonymous")), topic_id=topic.id,
        locality_id=data["locality_id"], content=data["content"], urgent=bool(data.get("urgent")),
        campaign_id=data.get("campaign_id"), ack_due=add_working_days(ctx.now, 1, tz),
        answer_due=add_working_days(ctx.now, URGENT_DAYS if data.get("urgent") else topic.answer_days, tz),
        attachments=tuple(Attachment(a["kind"], a.get("sha256"), a.get("mime"), a.get("size"), a.get("filename"),
                                     a.get("latitude"), a.get("longitude")) for a in data.get("attachments", [])),
        key=data["key"],
    ), ctx.now, ends=(ctx.inbound.channel, ctx.inbound.chat_id))
    ctx.ended_in_storage()
    _received(ctx, case)
    if case.urgent:
        for cadre_id in await urgent_recipients(ctx, case):
            ctx.notify(cadre_id, "inbox.urgent_new", (("inbox.open", cb("cs", case.id)),), code=case.code,
                       place=await locality_name(ctx, case.shown_locality_id), excerpt=cut(case.content, 200))


def _received(ctx: Ctx, case: Case) -> None:
    ctx.say(ctx.t("case.received", code=case.code, due=ctx.local(parse(case.answer_due)).split(" ")[0]),
            [(Option(ctx.t("case.track"), cb("trk", case.id)),)])


# ---- /dulieu --------------------------------------------------------------------------------------------------


async def export(ctx: Ctx) -> dict:
    """The person's own cases, anonymous ones included, with their files (described, not attached) and the history
    they can see (internal notes of the cadres are the unit's, not the person's); the case they are writing."""
    store = ctx.store
    topics = {t.id: t for t in await store.topics.all()}
    cases, _total = await store.cases.of_user(ctx.user.id, 0, 1_000_000)
    out = []
    for case in reversed(cases):
        out.append({
            "code": case.code, "kind": case.kind, "topic": topics[case.topic_id].name_vi if case.topic_id in topics
            else None, "locality": await place_path(ctx, case.locality_id), "anonymous": case.anonymous,
            "urgent": case.urgent, "content": case.content, "status": case.status, "created_at": case.created_at,
            "answered_at": case.answered_at, "closed_at": case.closed_at, "rating": case.rating,
            "files": [{"kind": a.kind, "filename": a.filename, "size": a.size, "sha256": a.sha256,
                       "location": [a.latitude, a.longitude] if a.latitude is not None else None}
                      for a in await store.cases.attachments(case.id)],
            "history": [{"at": e.at, "event": e.kind, "text": e.body, "unit": e.unit}
                        for e in await store.cases.events(case.id, internal=False)],
        })
    return {"case_draft": await store.cases.draft(ctx.user.id), "cases": out}


async def feedback_button(store, broadcast, t) -> tuple[tuple[Option, ...], ...]:
    """A broadcast's «Góp ý ngay»: a suggestion, on the broadcast's campaign when it has one."""
    if not broadcast.feedback:
        return ()
    campaign = (broadcast.campaign_id,) if broadcast.campaign_id else ()
    return ((Option(t("broadcast.feedback_button"), cb("new", "gopy", *campaign)),),)


FEATURE = Feature(
    "cases", commands=(Command("gopy", menu="menu.gopy", place=10), Command("phananh", menu="menu.phananh", place=20)),
    buttons=(Buttons("feedback", feedback_button),),
    export=export, exported=("cases", "case_events", "case_drafts"),
    erased=(("case_drafts", "user", None),),
    # Unlinked by the erasure itself (storage/users.py `_unlink_cases`): the withdrawn ones' cadres are told.
    kept={"cases": "unlinked, their content erased by default",
          "case_events": "a case's history: the person's own unlinked; a cadre's answers are the unit's record"},
)
