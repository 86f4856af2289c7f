"""/thongbao: an admin composes a broadcast; /huythongbao stops one. Also what a broadcast looks like
to the person who receives it, and quiet hours.

campaign → text (plain, with *đậm* and _nghiêng_ marks) → photo → buttons (a link, "Góp ý ngay") → English version →
audience (topics × locality subtrees × roles, with the number of people) → when (now or a local date
and time; quiet hours postpone to their end unless overridden) → preview exactly as a citizen sees it →
confirm. The role is checked again where the broadcast is created and where it is stopped. Sending is
bot/broadcasts.py's work: the handler writes the broadcast and wakes it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers import images
from handlers.base import ADMIN, Ctx, Document, Option, Reply, allowed, cb, registry, step_key
from handlers.features import Command, Feature, broadcast_rows
from handlers.pickers import locality_name, locality_steps, topic_steps
from handlers.richtext import HtmlProblem, check, marked
from messages import Key, Safe, Texts, cut, join
from storage.broadcasts import ROLES, Audience, Broadcast, NewBroadcast
from storage.clock import iso, parse
from storage.localities import Locality

FLOW = "bc"
registry.flow(FLOW, roles=ADMIN)
MAX_TEXT = 3500  # characters a person reads; the catalog's footer is added, Telegram allows 4096
MAX_CAPTION = 900  # with a photo the text is its caption: Telegram allows 1024
MAX_PHOTO = images.MAX_BYTES
MAX_AHEAD = timedelta(days=90)
URL = re.compile(r"^https?://[^\s<>\"']{3,500}$", re.IGNORECASE)
WHEN = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2})[:h](\d{2})\s*$")


def _key(step: str) -> str:
    return step_key(FLOW, step)




# ---- what a recipient sees ----------------------------------------------------------------------------


def render(t: Texts, text: str, rows: tuple[tuple[Option, ...], ...], *, photo: Document | None = None,
           link: str | None = None) -> Reply:
    """The broadcast in one person's language: the text, how to stop receiving them, its link and the rows of the
    button kinds features declare (handlers/features.py `Buttons`)."""
    linked = ((Option(t("broadcast.link_button"), url=link),),) if link else ()
    return Reply(Safe(f"{text}\n\n{t('broadcast.footer')}"), linked + rows, photo=photo)


async def render_broadcast(store, broadcast: Broadcast, language: str, photo: bytes | None) -> Reply:
    t = Texts(language)
    return render(t, broadcast.text(language), await broadcast_rows(store, broadcast, t),
                  photo=Document("thongbao.jpg", photo, "image/jpeg") if photo else None, link=broadcast.link_url)


# ---- quiet hours ---------------------------------------------------------------------------------------

Quiet = tuple[time, time] | None


def in_quiet(moment: datetime, quiet: Quiet, tz: ZoneInfo) -> bool:
    if not quiet:
        return False
    start, end = quiet
    local = moment.astimezone(tz).time()
    return (local >= start or local < end) if start > end else start <= local < end


def quiet_end(moment: datetime, quiet: Quiet, tz: ZoneInfo) -> datetime:
    """The first moment after `moment` when quiet hours are over."""
    assert quiet is not None
    local = moment.astimezone(tz)
    end = local.replace(hour=quiet[1].hour, minute=quiet[1].minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(UTC)


def plan_start(requested: datetime, quiet: Quiet, tz: ZoneInfo, override: bool) -> datetime:
    """When a broadcast asked for `requested` starts: then, or when quiet hours end."""
    if override or not in_quiet(requested, quiet, tz):
        return requested
    return quiet_end(requested, quiet, tz)


def parse_when(text: str, tz: ZoneInfo) -> datetime | None:
    """"27/11/2026 07:30" (local time) → UTC; None when it is not such a date."""
    match = WHEN.match(text)
    if match is None:
        return None
    day, month, year, hour, minute = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


# ---- audience ------------------------------------------------------------------------------------------


def audience_of(data: dict) -> Audience:
    return Audience(tuple(int(t) for t in data.get("topics", [])), tuple(int(p) for p in data.get("places", [])),
                    tuple(r for r in data.get("roles", []) if r in ROLES))


async def describe_audience(ctx: Ctx, audience: Audience) -> str:
    parts = []
    if audience.topics:
        names = [t.name(ctx.t.language) for t in await ctx.store.topics.all() if t.id in audience.topics]
        parts.append(ctx.t("broadcast.aud_topics", names=", ".join(names)))
    if audience.localities:
        places = [await locality_name(ctx, p) for p in audience.localities]
        parts.append(ctx.t("broadcast.aud_places", names=join("; ", places)))
    if audience.roles:
        parts.append(ctx.t("broadcast.aud_roles", names=join(", ", (ctx.t(f"role.{r}") for r in audience.roles))))
    return "\n".join(parts) if parts else ctx.t("broadcast.aud_everyone")


# ---- starting: /thongbao ---------------------------------------------------------------------------------


@registry.command("thongbao", "broadcast")
async def broadcast_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "camp", roles=["citizen"], topics=[], places=[], feedback=False)


@registry.action("bcnew", roles=ADMIN)
async def broadcast_for_campaign(ctx: Ctx) -> None:
    """A campaign's "Gửi thông báo" button: the composer with the campaign chosen."""
    campaign = await ctx.store.campaigns.get(int(ctx.args[0])) if len(ctx.args) == 1 and ctx.args[0].isdigit() \
        else None
    if campaign is None:
        ctx.say(ctx.t(ctx.stale_key))
        return
    ctx.conversation = None
    await ctx.goto(FLOW, "text", roles=["citizen"], topics=[campaign.topic_id] if campaign.topic_id else [],
                   places=[], feedback=True, campaign_id=campaign.id)


async def _camp_prompt(ctx: Ctx) -> None:
    key = _key("camp")
    rows = [(Option(cut(c.title(ctx.t.language), 60), cb(key, "c", c.id)),)
            for c in (await ctx.store.campaigns.all())[:20]]
    rows.append((Option(ctx.t("broadcast.no_campaign"), cb(key, "none")),))
    ctx.say(ctx.t("broadcast.ask_campaign"), rows)


@registry.step(FLOW, "camp", _camp_prompt)
async def _camp_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("none",):
        ctx.data["campaign_id"] = None
        await ctx.goto(FLOW, "text")
        return
    campaign = await ctx.store.campaigns.get(int(choice[1])) if len(choice) == 2 and choice[0] == "c" \
        and choice[1].isdigit() else None
    if campaign is None:
        await ctx.wrong()
        return
    ctx.data.update(campaign_id=campaign.id, feedback=True,
                    topics=[campaign.topic_id] if campaign.topic_id else ctx.data.get("topics", []))
    await ctx.goto(FLOW, "text")


# ---- the text, the photo, the buttons, the English version ----------------------------------------------


def _limit(ctx: Ctx) -> int:
    return MAX_CAPTION if ctx.data.get("photo") else MAX_TEXT


async def _checked(ctx: Ctx, text: str, limit: int) -> str | None:
    """The admin's text with its marks as HTML; None after telling them what is wrong (empty, too long)."""
    if not text.strip():
        await ctx.reask("broadcast.text_empty")
        return None
    checked = marked(text.strip())
    if not checked.plain.strip():
        await ctx.reask("broadcast.text_empty")
        return None
    if checked.length > limit:
        await ctx.reask("broadcast.text_long", limit=limit, length=checked.length)
        return None
    return checked.html


async def _text_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("broadcast.ask_text", limit=_limit(ctx)))


@registry.step(FLOW, "text", _text_prompt)
async def _text_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind != "text":
        await ctx.reask("broadcast.expect_text")
        return
    text = await _checked(ctx, ctx.inbound.text, _limit(ctx))
    if text is not None:
        ctx.data["text_vi"] = text
        await ctx.goto(FLOW, "en" if ctx.data.get("editing") else "photo")


async def _photo_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("broadcast.ask_photo", limit=MAX_CAPTION), [ctx.row(_key("photo"), ("broadcast.skip", "skip"))])


@registry.step(FLOW, "photo", _photo_prompt)
async def _photo_handle(ctx: Ctx) -> None:
    inbound = ctx.inbound
    if ctx.choice == ("skip",):
        ctx.data.pop("photo", None)
        await ctx.goto(FLOW, "btns")
        return
    if inbound.kind != "media" or inbound.media is None or inbound.media.kind != "photo" or ctx.fetch is None:
        await ctx.reask("broadcast.expect_photo")
        return
    longest = max(check(t).length for t in (ctx.data.get("text_vi") or "x", ctx.data.get("text_en") or "x"))
    if longest > MAX_CAPTION:
        await ctx.reask("broadcast.caption_long", limit=MAX_CAPTION, length=longest)
        return
    kept = await ctx.keep(inbound.media, MAX_PHOTO, "broadcast.photo_large", mb=MAX_PHOTO // (1024 * 1024))
    if kept is None:
        return
    ctx.data["photo"] = kept[0]
    ctx.say(ctx.t("broadcast.photo_saved"))
    await ctx.goto(FLOW, "btns")


async def _btns_prompt(ctx: Ctx) -> None:
    key, data = _key("btns"), ctx.data
    rows = [(Option(ctx.t("broadcast.btn_link_change" if data.get("link") else "broadcast.btn_link_add"),
                    cb(key, "link")),),
            (Option(ctx.t("topics.on" if data.get("feedback") else "topics.off",
                          name=ctx.t("broadcast.feedback_button")), cb(key, "fb")),)]
    if data.get("link"):
        rows.append((Option(ctx.t("broadcast.btn_link_remove"), cb(key, "nolink")),))
    rows.append((Option(ctx.t("broadcast.next"), cb(key, "next")),))
    ctx.say(ctx.t("broadcast.ask_buttons", link=data.get("link") or ctx.t("common.none")), rows,
            edit=ctx.inbound.kind == "choice" and ctx.choice in (("fb",), ("nolink",)))


@registry.step(FLOW, "btns", _btns_prompt)
async def _btns_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("link",):
        await ctx.goto(FLOW, "link")
    elif choice == ("fb",):
        ctx.data["feedback"] = not ctx.data.get("feedback")
        ctx.dirty = True
        await _btns_prompt(ctx)
    elif choice == ("nolink",):
        ctx.data.pop("link", None)
        ctx.dirty = True
        await _btns_prompt(ctx)
    elif choice == ("next",):
        await ctx.goto(FLOW, "en")
    else:
        await ctx.wrong()


async def _link_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("broadcast.ask_link"), [ctx.row(_key("link"), ("common.back", "back"))])


@registry.step(FLOW, "link", _link_prompt)
async def _link_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "btns")
        return
    url = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not URL.match(url):
        await ctx.reask("broadcast.bad_link")
        return
    ctx.data["link"] = url
    await ctx.goto(FLOW, "btns")


async def _en_prompt(ctx: Ctx) -> None:
    key = _key("en")
    rows = [ctx.row(key, ("broadcast.skip_en", "skip"))]
    if ctx.data.get("text_en"):
        rows.insert(0, ctx.row(key, ("broadcast.keep_en", "keep")))
    ctx.say(ctx.t("broadcast.ask_en", limit=_limit(ctx)), rows)


@registry.step(FLOW, "en", _en_prompt)
async def _en_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("skip",):
        ctx.data["text_en"] = None
    elif choice == ("keep",) and ctx.data.get("text_en"):
        pass
    elif ctx.inbound.kind == "text":
        text = await _checked(ctx, ctx.inbound.text, _limit(ctx))
        if text is None:
            return
        ctx.data["text_en"] = text
    else:
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "broadcast.expect_text")
        return
    await ctx.goto(FLOW, "preview" if ctx.data.pop("editing", False) else "aud")


# ---- the audience ----------------------------------------------------------------------------------------


async def _aud_prompt(ctx: Ctx) -> None:
    key, audience = _key("aud"), audience_of(ctx.data)
    count = await ctx.store.broadcasts.count_audience(audience)
    rows = [ctx.row(key, ("broadcast.aud_all", "all"), ("broadcast.aud_by_topic", "top")),
            ctx.row(key, ("broadcast.aud_by_place", "loc"), ("broadcast.aud_by_role", "role"))]
    if audience.localities:
        rows.append((Option(ctx.t("broadcast.aud_clear_places"), cb(key, "noloc")),))
    rows.append((Option(ctx.t("broadcast.next"), cb(key, "next")),))
    ctx.say(ctx.t("broadcast.ask_audience", who=Safe(await describe_audience(ctx, audience)), count=count), rows)


@registry.step(FLOW, "aud", _aud_prompt)
async def _aud_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("all",):
        ctx.data.update(topics=[], places=[], roles=[])
        await ctx.goto(FLOW, "aud")
    elif choice == ("top",):
        await ctx.goto(FLOW, "atop")
    elif choice == ("loc",):
        await ctx.goto(FLOW, "acom", page=0)
    elif choice == ("role",):
        await ctx.goto(FLOW, "arole")
    elif choice == ("noloc",):
        ctx.data["places"] = []
        await ctx.goto(FLOW, "aud")
    elif choice == ("next",):
        if await ctx.store.broadcasts.count_audience(audience_of(ctx.data)) == 0:
            await ctx.reask("broadcast.aud_nobody")
            return
        await ctx.goto(FLOW, "when")
    else:
        await ctx.wrong()


async def _topics_chosen(ctx: Ctx, topic_ids: set[int]) -> None:
    ctx.data["topics"] = sorted(topic_ids)
    await ctx.goto(FLOW, "aud")


async def _place_added(ctx: Ctx, loc: Locality | None) -> None:
    places = [p for p in ctx.data.get("places", []) if p != loc.id]
    ctx.data["places"] = [*places, loc.id][-10:]
    await ctx.goto(FLOW, "aud")


topic_steps(FLOW, step="atop", prompt_key="broadcast.ask_topics", then=_topics_chosen)
locality_steps(FLOW, commune_step="acom", village_step="avil", then=_place_added)


async def _arole_prompt(ctx: Ctx) -> None:
    chosen = set(ctx.data.get("roles", []))
    key = _key("arole")
    rows = [(Option(ctx.t("topics.on" if role in chosen else "topics.off", name=ctx.t(f"role.{role}")),
                    cb(key, "r", role)),) for role in ROLES]
    rows.append((Option(ctx.t("topics.done"), cb(key, "done")),))
    ctx.say(ctx.t("broadcast.ask_roles"), rows, edit=ctx.inbound.kind == "choice" and ctx.choice[:1] == ("r",))


@registry.step(FLOW, "arole", _arole_prompt)
async def _arole_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("done",):
        await ctx.goto(FLOW, "aud")
    elif len(choice) == 2 and choice[0] == "r" and choice[1] in ROLES:
        ctx.data["roles"] = sorted(set(ctx.data.get("roles", [])) ^ {choice[1]})
        ctx.dirty = True
        await _arole_prompt(ctx)
    else:
        await ctx.wrong()


# ---- when ------------------------------------------------------------------------------------------------


def _quiet_label(ctx: Ctx) -> str:
    quiet = ctx.settings.quiet_hours
    return f"{quiet[0]:%H:%M}–{quiet[1]:%H:%M}" if quiet else ""


async def _when_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("broadcast.ask_when"), [ctx.row(_key("when"), ("broadcast.now", "now"), ("broadcast.later", "at"))])


async def _planned(ctx: Ctx, requested: datetime | None) -> None:
    """Now (None) or a time: straight to the preview, or first the quiet-hours question."""
    settings = ctx.settings
    moment = requested or ctx.now
    if in_quiet(moment, settings.quiet_hours, settings.tz):
        ctx.data.update(at=iso(requested) if requested else None, override=False)
        await ctx.goto(FLOW, "quiet")
        return
    ctx.data.update(at=iso(requested) if requested else None, override=False)
    await ctx.goto(FLOW, "preview")


@registry.step(FLOW, "when", _when_prompt)
async def _when_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("now",):
        await _planned(ctx, None)
    elif choice == ("at",):
        await ctx.goto(FLOW, "at")
    else:
        await ctx.wrong()


async def _at_prompt(ctx: Ctx) -> None:
    example = ctx.local(ctx.now + timedelta(days=1)).split(" ")[0] + " 07:30"
    ctx.say(ctx.t("broadcast.ask_at", example=example), [ctx.row(_key("at"), ("common.back", "back"))])


@registry.step(FLOW, "at", _at_prompt)
async def _at_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "when")
        return
    moment = parse_when(ctx.inbound.text, ctx.settings.tz) if ctx.inbound.kind == "text" else None
    if moment is None:
        await ctx.reask("broadcast.bad_when")
    elif moment <= ctx.now:
        await ctx.reask("broadcast.when_past", now=ctx.local(ctx.now))
    elif moment > ctx.now + MAX_AHEAD:
        await ctx.reask("broadcast.when_far", days=MAX_AHEAD.days)
    else:
        await _planned(ctx, moment)


async def _quiet_prompt(ctx: Ctx) -> None:
    settings = ctx.settings
    requested = parse(ctx.data["at"]) if ctx.data.get("at") else ctx.now
    postponed = quiet_end(requested, settings.quiet_hours, settings.tz) if settings.quiet_hours else requested
    key = _key("quiet")
    ctx.say(ctx.t("broadcast.quiet", hours=_quiet_label(ctx), requested=ctx.local(requested),
                  postponed=ctx.local(postponed)), [
        (Option(ctx.t("broadcast.quiet_wait", postponed=ctx.local(postponed)), cb(key, "wait")),),
        (Option(ctx.t("broadcast.quiet_force"), cb(key, "force")),),
        (Option(ctx.t("common.back"), cb(key, "back")),),
    ])


@registry.step(FLOW, "quiet", _quiet_prompt)
async def _quiet_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("wait",):
        ctx.data["override"] = False
        await ctx.goto(FLOW, "preview")
    elif choice == ("force",):
        ctx.data["override"] = True
        await ctx.goto(FLOW, "preview")
    elif choice == ("back",):
        await ctx.goto(FLOW, "when")
    else:
        await ctx.wrong()


def _start_at(ctx: Ctx) -> datetime:
    settings = ctx.settings
    requested = parse(ctx.data["at"]) if ctx.data.get("at") else ctx.now
    return plan_start(requested, settings.quiet_hours, settings.tz, bool(ctx.data.get("override")))


# ---- preview and confirmation ------------------------------------------------------------------------------


async def _photo(ctx: Ctx) -> Document | None:
    digest = ctx.data.get("photo")
    content = await ctx.store.files.get(digest) if isinstance(digest, str) and len(digest) == 64 else None
    return Document("thongbao.jpg", content, "image/jpeg") if content else None


async def _preview_prompt(ctx: Ctx) -> None:
    data = ctx.data
    photo = await _photo(ctx)
    versions = [("vi", data.get("text_vi"))] + ([("en", data["text_en"])] if data.get("text_en") else [])
    draft = _draft(ctx, data.get("text_vi") or "", data.get("text_en"))
    for language, text in versions:
        if not text:
            continue
        ctx.say(ctx.t("broadcast.preview_of", language=Key(f"language.{language}")))
        t = Texts(language)
        ctx.replies.append(render(t, text, await broadcast_rows(ctx.store, draft, t), photo=photo,
                                  link=data.get("link")))
    audience = audience_of(data)
    campaign = await ctx.store.campaigns.get(int(data["campaign_id"])) if data.get("campaign_id") else None
    start = _start_at(ctx)
    key = _key("preview")
    ctx.say(ctx.t("broadcast.summary", campaign=campaign.title(ctx.t.language) if campaign else ctx.t("common.none"),
                  who=Safe(await describe_audience(ctx, audience)),
                  count=await ctx.store.broadcasts.count_audience(audience),
                  when=ctx.t("broadcast.when_now") if start <= ctx.now else ctx.local(start),
                  quiet=ctx.t("broadcast.quiet_overridden") if data.get("override") else ""), [
        (Option(ctx.t("broadcast.confirm"), cb(key, "send")),),
        ctx.row(key, ("broadcast.edit_text", "text"), ("broadcast.edit_audience", "aud")),
        ctx.row(key, ("broadcast.edit_when", "when"), ("broadcast.discard", "drop")),
    ])


@registry.step(FLOW, "preview", _preview_prompt)
async def _preview_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("text",):
        await ctx.goto(FLOW, "text", editing=True)
    elif choice == ("aud",):
        await ctx.goto(FLOW, "aud")
    elif choice == ("when",):
        await ctx.goto(FLOW, "when")
    elif choice == ("drop",):
        ctx.finish()
        ctx.say(ctx.t("broadcast.discarded"))
    elif choice == ("send",):
        await _create(ctx)
    else:
        await ctx.wrong()


def _draft(ctx: Ctx, text_vi: str, text_en: str | None) -> NewBroadcast:
    """The broadcast being composed: what the preview shows and what is created."""
    data = ctx.data
    return NewBroadcast(text_vi=text_vi, text_en=text_en, scheduled_at=_start_at(ctx), audience=audience_of(data),
                        campaign_id=data.get("campaign_id"), created_by=ctx.user.id, link_url=data.get("link"),
                        feedback=bool(data.get("feedback")), quiet_override=bool(data.get("override")))


async def _create(ctx: Ctx) -> None:
    if not allowed(ctx.user, ADMIN):  # the router checks the flow's roles; the act checks again
        await ctx.audit("denied", "broadcast:create")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    data = ctx.data
    texts = [data.get("text_vi"), data.get("text_en")]
    try:
        checked = [check(t).html if t else None for t in texts]
    except HtmlProblem:
        await ctx.goto(FLOW, "text")
        return
    if not checked[0]:
        await ctx.goto(FLOW, "text")
        return
    audience = audience_of(data)
    start = _start_at(ctx)
    broadcast = await ctx.store.broadcasts.create(replace(
        _draft(ctx, checked[0], checked[1]), photo_sha256=data.get("photo") if await _photo(ctx) else None), ctx.now)
    await ctx.audit("broadcast.created", f"broadcast:{broadcast.id}", at=iso(start),
                    audience=audience.to_json(), campaign=broadcast.campaign_id)
    ctx.finish()
    if start <= ctx.now:
        ctx.say(ctx.t("broadcast.starting", id=broadcast.id))
    else:
        ctx.say(ctx.t("broadcast.scheduled", id=broadcast.id, when=ctx.local(start)))
    ctx.wake("broadcasts")


# ---- stopping: /huythongbao -----------------------------------------------------------------------------------


@registry.command("huythongbao", "stopbroadcast")
async def stop_command(ctx: Ctx) -> None:
    active = await ctx.store.broadcasts.active()
    if not active:
        ctx.say(ctx.t("broadcast.none_active"))
        return
    rows = [(Option(ctx.t("broadcast.stop_line", id=b.id, status=Key(f"broadcast.status_{b.status}"),
                          excerpt=cut(check(b.text_vi).plain, 40)), cb("bcstop", b.id)),) for b in active[:20]]
    ctx.say(ctx.t("broadcast.ask_stop"), rows)


@registry.action("bcstop", roles=ADMIN)
async def stop_button(ctx: Ctx) -> None:
    """bcstop:<id> asks to confirm; bcstop:<id>:y stops the rest."""
    args = ctx.args
    if not allowed(ctx.user, ADMIN):
        await ctx.audit("denied", "broadcast:stop")
        ctx.say(ctx.t("common.not_allowed"))
        return
    broadcast = await ctx.store.broadcasts.get(int(args[0])) if args and args[0].isdigit() and len(args) <= 2 \
        else None
    if broadcast is None or args[1:] not in ((), ("y",)):
        ctx.say(ctx.t(ctx.stale_key))
        return
    if broadcast.status not in ("scheduled", "running"):
        ctx.say(ctx.t("broadcast.not_active", id=broadcast.id, status=Key(f"broadcast.status_{broadcast.status}")))
        return
    if args[1:] == ():
        ctx.say(ctx.t("broadcast.confirm_stop", id=broadcast.id), [
            (Option(ctx.t("broadcast.stop_yes"), cb("bcstop", broadcast.id, "y")),),
        ])
        return
    if await ctx.store.broadcasts.cancel(broadcast.id, ctx.now):
        await ctx.audit("broadcast.cancelled", f"broadcast:{broadcast.id}")
        ctx.say(ctx.t("broadcast.stopped", id=broadcast.id))
        ctx.wake("broadcasts")
    else:
        ctx.say(ctx.t("broadcast.not_active", id=broadcast.id, status=Key("broadcast.status_done")))


async def export(ctx: Ctx) -> dict:
    """The announcements the person was sent, and when."""
    return {"announcements": [{"broadcast": b, "scheduled_at": at, "status": status}
                              for b, at, status in await ctx.store.broadcasts.of_user(ctx.user.id)]}


FEATURE = Feature(
    "broadcast", commands=(Command("thongbao", ADMIN, menu="menu.thongbao", place=170), Command("huythongbao", ADMIN)),
    export=export, exported=("broadcast_recipients",),
    unexported={"broadcasts": "an announcement is the unit's; the admin who wrote it is in the audit log"},
    kept={"broadcast_recipients": "an announcement's delivery record; the anonymous row's id names nobody",
          "broadcasts": "an announcement is the unit's; the anonymous row's id names nobody"},
)
