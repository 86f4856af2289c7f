"""/chiendich: admins list, create and edit campaigns, see how far each reached, and get its QR code
(a PNG for village posters) that opens the bot on that campaign."""

from __future__ import annotations

import io
import re
from datetime import date

import segno

from handlers.base import ADMIN, Ctx, Document, Option, allowed, cb, registry, step_key
from handlers.features import Command, Feature
from messages import Key, cut
from storage.campaigns import CODE, Campaign

FLOW = "cmp"
registry.flow(FLOW, roles=ADMIN)
# (field, min, max) of the texts; optional fields can be skipped when creating and cleared when editing.
TEXTS = {"title_vi": (3, 120), "description_vi": (10, 1000), "title_en": (3, 120), "description_en": (10, 1000)}
OPTIONAL = ("title_en", "description_en", "period")
NEW_ORDER = ("code", "title_vi", "description_vi", "topic", "period", "title_en", "description_en")
PERIOD = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*[-–—]\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")


def _key(step: str) -> str:
    return step_key(FLOW, step)




def qr_png(url: str) -> bytes:
    """A QR code of `url`, as a PNG large enough to print on an A4 poster."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=12, border=4)
    return out.getvalue()


def period_text(campaign: Campaign) -> str | None:
    if not campaign.starts_on and not campaign.ends_on:
        return None
    shown = [date.fromisoformat(d).strftime("%d/%m/%Y") if d else "…" for d in (campaign.starts_on, campaign.ends_on)]
    return " – ".join(shown)


def parse_period(text: str) -> tuple[date, date] | None:
    match = PERIOD.match(text)
    if match is None:
        return None
    d1, m1, y1, d2, m2, y2 = (int(g) for g in match.groups())
    try:
        start, end = date(y1, m1, d1), date(y2, m2, d2)
    except ValueError:
        return None
    return (start, end) if start <= end else None


async def _campaign(ctx: Ctx) -> Campaign | None:
    campaign_id = ctx.data.get("campaign_id")
    return await ctx.store.campaigns.get(int(campaign_id)) if str(campaign_id).isdigit() else None


# ---- the list and one campaign -----------------------------------------------------------------------


@registry.command("chiendich", "campaigns")
async def campaigns_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list")


async def _list_prompt(ctx: Ctx) -> None:
    key = _key("list")
    rows = [(Option(cut(f"{c.code} · {c.title(ctx.t.language)}", 64), cb(key, "o", c.id)),)
            for c in (await ctx.store.campaigns.all())[:30]]
    rows.append((Option(ctx.t("campaign.create"), cb(key, "new")),))
    ctx.say(ctx.t("campaign.list"), rows)


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("new",):
        ctx.conversation = None
        await ctx.goto(FLOW, "val", field="code", creating=True, values={})
        return
    campaign = await ctx.store.campaigns.get(int(choice[1])) if len(choice) == 2 and choice[0] == "o" \
        and choice[1].isdigit() else None
    if campaign is None:
        await ctx.wrong()
        return
    await ctx.goto(FLOW, "show", campaign_id=campaign.id)


async def _show_prompt(ctx: Ctx) -> None:
    campaign = await _campaign(ctx)
    if campaign is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return
    topic = await ctx.store.topics.get(campaign.topic_id) if campaign.topic_id else None
    links = ctx.deep_links(f"c_{campaign.code}")
    ctx.say(ctx.t("campaign.details", code=campaign.code, title=campaign.title_vi,
                  title_en=campaign.title_en or ctx.t("common.none"), description=campaign.description_vi,
                  description_en=campaign.description_en or ctx.t("common.none"),
                  topic=topic.name(ctx.t.language) if topic else ctx.t("common.none"),
                  period=period_text(campaign) or ctx.t("common.none"),
                  links="\n".join(links) or ctx.t("common.none")))
    await _results(ctx, campaign)


async def _results(ctx: Ctx, campaign: Campaign) -> None:
    """How far the campaign reached, and what can be done with it."""
    stats = await ctx.store.campaigns.stats(campaign.id)
    key = _key("show")
    ctx.say(ctx.t("campaign.stats", broadcasts=stats.broadcasts, recipients=stats.recipients, reached=stats.reached,
                  delivered=stats.delivered, blocked=stats.blocked, failed=stats.failed, opens=stats.opens,
                  cases=stats.cases), [
        (Option(ctx.t("campaign.qr"), cb(key, "qr")), Option(ctx.t("campaign.edit"), cb(key, "edit"))),
        (Option(ctx.t("campaign.broadcast"), cb("bcnew", campaign.id)),),
        (Option(ctx.t("campaign.back"), cb(key, "back")),),
    ])


@registry.step(FLOW, "show", _show_prompt)
async def _show_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    campaign = await _campaign(ctx)
    if campaign is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
    elif choice == ("qr",):
        await send_qr(ctx, campaign)
        await _results(ctx, campaign)
    elif choice == ("edit",):
        await ctx.goto(FLOW, "edit")
    elif choice == ("back",):
        await ctx.goto(FLOW, "list")
    else:
        await ctx.wrong()


def say_qr(ctx: Ctx, payload: str, name: str, caption: str, **values: object) -> bool:
    """The poster QR code of each channel's deep link with `payload` (a file named after `name`), with the catalog
    text `caption` (its `link` filled in); False, after saying so, when no channel has deep links."""
    links = ctx.deep_links(payload)
    if not links:
        ctx.say(ctx.t("campaign.no_links"))
        return False
    for link in links:
        ctx.say(ctx.t(caption, link=link, **values),
                document=Document(f"qr-{name}-{'telegram' if 't.me/' in link else 'web'}.png", qr_png(link),
                                  "image/png"))
    return True


async def send_qr(ctx: Ctx, campaign: Campaign) -> None:
    if say_qr(ctx, f"c_{campaign.code}", campaign.code, "campaign.qr_caption", title=campaign.title_vi):
        await ctx.audit("campaign.qr", f"campaign:{campaign.code}")


# ---- creating and editing ------------------------------------------------------------------------------

EDIT_FIELDS = ("title_vi", "description_vi", "topic", "period", "title_en", "description_en")


async def _edit_prompt(ctx: Ctx) -> None:
    key = _key("edit")
    rows = [(Option(ctx.t(f"campaign.field_{f}"), cb(key, f)),) for f in EDIT_FIELDS]
    rows.append((Option(ctx.t("common.back"), cb(key, "back")),))
    ctx.say(ctx.t("campaign.ask_field"), rows)


@registry.step(FLOW, "edit", _edit_prompt)
async def _edit_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("back",):
        await ctx.goto(FLOW, "show")
    elif len(choice) == 1 and choice[0] in EDIT_FIELDS:
        await ctx.goto(FLOW, "topic" if choice[0] == "topic" else "val", field=choice[0], creating=False)
    else:
        await ctx.wrong()


async def _val_prompt(ctx: Ctx) -> None:
    field = ctx.data.get("field") if ctx.data.get("field") in (*TEXTS, "code", "period") else "title_vi"
    rows = []
    if field in OPTIONAL:
        label = "campaign.skip" if ctx.data.get("creating") else "campaign.clear"
        rows.append(ctx.row(_key("val"), (label, "skip")))
    ctx.say(ctx.t(f"campaign.ask_{field}"), rows)


@registry.step(FLOW, "val", _val_prompt)
async def _val_handle(ctx: Ctx) -> None:
    field = ctx.data.get("field")
    if field not in (*TEXTS, "code", "period"):
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return
    if ctx.choice == ("skip",) and field in OPTIONAL:
        value: object = None
    elif ctx.inbound.kind != "text":
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "campaign.expect_text")
        return
    else:
        text = " ".join(ctx.inbound.text.split()) if field != "description_vi" and field != "description_en" \
            else ctx.inbound.text.strip()
        if field == "code":
            if not CODE.match(text):
                await ctx.reask("campaign.bad_code")
                return
            if await ctx.store.campaigns.by_code(text) is not None:
                await ctx.reask("campaign.code_taken", code=text)
                return
            value = text
        elif field == "period":
            period = parse_period(text)
            if period is None:
                await ctx.reask("campaign.bad_period")
                return
            value = [d.isoformat() for d in period]
        else:
            low, high = TEXTS[field]
            if not low <= ctx.length(text) <= high:
                await ctx.reask("campaign.text_length", low=low, high=high, length=ctx.length(text))
                return
            value = text
    await _save(ctx, field, value)


async def _topic_prompt(ctx: Ctx) -> None:
    key = _key("topic")
    rows = [(Option(t.name(ctx.t.language), cb(key, t.id)),) for t in await ctx.store.topics.all()]
    rows.append((Option(ctx.t("campaign.no_topic"), cb(key, "none")),))
    ctx.say(ctx.t("campaign.ask_topic"), rows)


@registry.step(FLOW, "topic", _topic_prompt)
async def _topic_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("none",):
        await _save(ctx, "topic", None)
        return
    topic = await ctx.store.topics.get(int(choice[0])) if len(choice) == 1 and choice[0].isdigit() else None
    if topic is None:
        await ctx.wrong()
        return
    await _save(ctx, "topic", topic.id)


async def _save(ctx: Ctx, field: str, value: object) -> None:
    """Creating: keep the value and ask the next field (the campaign is written after the last one).
    Editing: write the field now."""
    if not allowed(ctx.user, ADMIN):
        await ctx.audit("denied", "campaign:save")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    if ctx.data.get("creating"):
        values = dict(ctx.data.get("values") or {})
        values[field] = value
        ctx.data["values"] = values
        following = NEW_ORDER[NEW_ORDER.index(field) + 1:] if field in NEW_ORDER else ()
        if following:
            await ctx.goto(FLOW, "topic" if following[0] == "topic" else "val", field=following[0])
            return
        await _create(ctx, values)
        return
    campaign = await _campaign(ctx)
    if campaign is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return
    if field == "period":
        starts, ends = value if value else (None, None)
        await ctx.store.campaigns.update(campaign.id, starts_on=starts, ends_on=ends)
    else:
        await ctx.store.campaigns.update(campaign.id, **{"topic_id" if field == "topic" else field: value})
    await ctx.audit("campaign.edited", f"campaign:{campaign.code}", field=field)
    ctx.say(ctx.t("campaign.saved", field=Key(f"campaign.field_{field}")))
    await ctx.goto(FLOW, "show")


async def _create(ctx: Ctx, values: dict) -> None:
    code = values.get("code")
    if not isinstance(code, str) or not CODE.match(code) or await ctx.store.campaigns.by_code(code) is not None:
        await ctx.goto(FLOW, "val", field="code")
        return
    period = values.get("period") or (None, None)
    campaign_id = await ctx.store.campaigns.upsert(
        code, values.get("title_vi") or code, values.get("description_vi") or "", values.get("topic"),
        values.get("title_en"), values.get("description_en"), starts_on=period[0], ends_on=period[1])
    await ctx.audit("campaign.created", f"campaign:{code}")
    ctx.say(ctx.t("campaign.created", code=code))
    ctx.conversation = None
    await ctx.goto(FLOW, "show", campaign_id=campaign_id)


async def export(ctx: Ctx) -> dict:
    """The campaigns whose link or QR code the person opened."""
    return {"campaigns_opened": [{"campaign": code, "at": at}
                                 for code, at in await ctx.store.campaigns.opened_by(ctx.user.id)]}


FEATURE = Feature("campaigns", commands=(Command("chiendich", ADMIN, menu="menu.chiendich", place=180),),
                  export=export, exported=("campaign_opens",),
                  kept={"campaign_opens": "a campaign's reach; the anonymous row's id names nobody"})
