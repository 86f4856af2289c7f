"""/start: a short greeting, consent to the two ordinary purposes, locality, topics, then the main menu; deep
links. The sensitive purpose is asked only of someone who chooses its topic (handlers/pickers.py, cases.py)."""

from __future__ import annotations

from handlers import consultation, surveys
from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.consent import consent_history, record_consent
from handlers.features import Command, Feature
from handlers.menu import show_menu
from handlers.pickers import locality_name, locality_steps, place_path, topic_steps
from handlers.staff import describe_scope
from storage.localities import Locality
from storage.roles import InviteError
from storage.users import IDENTITY

FLOW = "onb"
registry.flow(FLOW)


@registry.command("start")
async def start(ctx: Ctx) -> None:
    payload = ctx.inbound.text.strip()
    draft: dict = {}
    if payload:
        applied = await _apply_payload(ctx, payload, draft)
        if not applied:
            ctx.say(ctx.t("start.bad_link"))
        if payload.startswith("i_") or (applied and payload.startswith("v_")):  # a consultation opens at its contents
            return
    if ctx.user.onboarded:
        await _welcome_back(ctx, draft)
        return
    ctx.say(ctx.t("start.greeting", operator=ctx.settings.operator_name))
    await ctx.goto(FLOW, "news", **draft)


async def _apply_payload(ctx: Ctx, payload: str, draft: dict) -> bool:
    """Deep links: l_<locality>, c_<campaign>, s_<survey>, i_<invite>, v_<consultation>. False when the payload is not
    valid."""
    prefix, _, value = payload.partition("_")
    if not value or len(payload) > 64:
        return False
    if prefix == "l":
        loc = await ctx.store.localities.by_code(value)
        if loc is None or loc.level == 0:
            return False
        draft["preset_locality"] = loc.id
        return True
    if prefix == "c":
        campaign = await ctx.store.campaigns.by_code(value)
        if campaign is None:
            return False
        draft["campaign_id"] = campaign.id
        if campaign.topic_id:
            draft["topics"] = [campaign.topic_id]
        if ctx.user.onboarded:  # someone new is counted once they accept a purpose (_finish)
            await ctx.store.campaigns.record_open(campaign.id, ctx.user.id, ctx.now)
        ctx.say(ctx.t("start.campaign", title=campaign.title(ctx.t.language),
                      description=campaign.description(ctx.t.language)),
                [(Option(ctx.t("broadcast.feedback_button"), cb("new", "gopy", campaign.id)),)])
        return True
    if prefix == "v":
        return await consultation.from_link(ctx, value)
    if prefix == "s":
        return await surveys.deep_link(ctx, value)
    if prefix == "i":
        if not ctx.capabilities.staff:
            ctx.say(ctx.t("invite.wrong_channel"))
            return True
        try:
            invite = await ctx.store.roles.accept_invite(value, ctx.user.id, ctx.now)
        except InviteError as err:
            ctx.say(ctx.t(f"invite.{err.reason}"))
            await ctx.store.audit.record(ctx.user.id, "invite.refused", None, ctx.now, reason=err.reason)
            if ctx.user.onboarded:
                await show_menu(ctx)
            else:
                ctx.say(ctx.t("start.greeting", operator=ctx.settings.operator_name))
                await ctx.goto(FLOW, "news")
            return True
        # Staff are named in what they do (the audit log, answers to citizens): kept from now on.
        ctx.user = await ctx.store.users.identify(ctx.user.id, ctx.inbound.display_name, ctx.t.language, ctx.now)
        await ctx.audit("invite.accepted", f"invite:{invite.id}", scope=list(invite.locality_codes))
        ctx.say(ctx.t("invite.accepted", unit=invite.unit_name or ctx.t("common.none")))
        await describe_scope(ctx)
        await show_menu(ctx)
        return True
    return False


async def _welcome_back(ctx: Ctx, draft: dict) -> None:
    consents = await ctx.store.users.consents(ctx.user.id)
    if "preset_locality" in draft:
        ctx.say(ctx.t("start.locality_hint", place=await locality_name(ctx, ctx.user.locality_id)))
    for topic_id in draft.get("topics", []):
        if "news" in consents and consents["news"].granted:
            await ctx.store.users.add_topic(ctx.user.id, topic_id)
            topic = await ctx.store.topics.get(topic_id)
            ctx.say(ctx.t("start.topic_added", topic=topic.name(ctx.t.language)))
    await show_menu(ctx, ctx.t("start.welcome_back", operator=ctx.settings.operator_name))


# ---- consent, one purpose at a time -----------------------------------------------------------------


def _consent_step(purpose: str, next_step) -> None:
    key = step_key(FLOW, purpose)

    async def prompt(ctx: Ctx) -> None:
        ctx.say(ctx.t(f"consent.{purpose}"), [
            (Option(ctx.t("consent.yes"), cb(key, "y")), Option(ctx.t("consent.no"), cb(key, "n"))),
            (Option(ctx.t("consent.read_notice"), cb(key, "more")),),
        ])

    async def handle(ctx: Ctx) -> None:
        answer = ctx.args if ctx.inbound.kind == "choice" else ()
        if answer == ("more",):
            ctx.say(ctx.t("privacy.notice", operator=ctx.settings.operator_name,
                          months=ctx.settings.retention_months))
            await prompt(ctx)
            return
        if answer not in (("y",), ("n",)):
            await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "consent.use_buttons")
            return
        granted = answer == ("y",)
        await record_consent(ctx, purpose, granted)
        ctx.data.setdefault("granted", {})[purpose] = granted
        ctx.say(ctx.t("consent.recorded_yes" if granted else "consent.recorded_no"))
        await next_step(ctx)

    registry.step(FLOW, purpose, prompt)(handle)


async def _after_consents(ctx: Ctx) -> None:
    granted = ctx.data.get("granted", {})
    if not (granted.get("news") or granted.get("opinions")):
        await _finish(ctx, locality_id=None)
        return
    preset = ctx.data.get("preset_locality")
    loc = await ctx.store.localities.get(preset) if preset else None
    if loc is not None and loc.level >= 2:
        await _locality_chosen(ctx, loc)
    elif loc is not None and loc.level == 1 and await ctx.store.localities.count_children(loc.id):
        ctx.say(ctx.t("start.locality_preset", place=await locality_name(ctx, loc.id)))
        await ctx.goto(FLOW, "village", commune_id=loc.id, vpage=0)
    elif loc is not None and loc.level == 1:
        await _locality_chosen(ctx, loc)
    else:
        await ctx.goto(FLOW, "commune", page=0)


async def _go_opinions(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "opinions")


_consent_step("news", _go_opinions)
_consent_step("opinions", _after_consents)


async def _locality_chosen(ctx: Ctx, loc: Locality | None) -> None:
    ctx.data["locality_id"] = loc.id if loc else None
    if ctx.data.get("granted", {}).get("news"):
        await ctx.goto(FLOW, "topics")
    else:
        await _finish(ctx, loc.id if loc else None)


async def _topics_chosen(ctx: Ctx, topic_ids: set[int]) -> None:
    await ctx.store.users.set_topics(ctx.user.id, topic_ids)
    await _finish(ctx, ctx.data.get("locality_id"))


locality_steps(FLOW, then=_locality_chosen)
topic_steps(FLOW, then=_topics_chosen, sensitive_consent=True)


async def _finish(ctx: Ctx, locality_id: int | None) -> None:
    granted = ctx.data.get("granted", {})
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, onboarded=1, locality_id=locality_id,
                                            news_enabled=int(bool(granted.get("news"))))
    if ctx.data.get("campaign_id") and (granted.get("news") or granted.get("opinions")):
        await ctx.store.campaigns.record_open(ctx.data["campaign_id"], ctx.user.id, ctx.now)
    ctx.finish()
    await profile_summary(ctx)
    if not (granted.get("news") or granted.get("opinions")):
        ctx.say(ctx.t("start.no_data_mode"))
    await show_menu(ctx)


async def profile_summary(ctx: Ctx) -> None:
    consents = await ctx.store.users.consents(ctx.user.id)
    chosen = await ctx.store.users.topic_ids(ctx.user.id)
    topics = [t for t in await ctx.store.topics.all() if t.id in chosen]
    yes, no = ctx.t("profile.yes"), ctx.t("profile.no")
    ctx.say(ctx.t(
        "profile.summary",
        place=await locality_name(ctx, ctx.user.locality_id),
        topics=", ".join(t.name(ctx.t.language) for t in topics) or ctx.t("common.none"),
        language=ctx.t(f"language.{ctx.t.language}"),
        news=yes if consents.get("news") and consents["news"].granted and ctx.user.news_enabled else no,
        opinions=yes if consents.get("opinions") and consents["opinions"].granted else no,
        sensitive=yes if consents.get("sensitive") and consents["sensitive"].granted else no,
    ))


async def export(ctx: Ctx) -> dict:
    """What /dulieu says of the person themselves: their account, followed topics, consents, and the conversation
    they are in."""
    user, store = ctx.user, ctx.store
    locality = await store.localities.get(user.locality_id) if user.locality_id else None
    topics = {t.id: t for t in await store.topics.all()}
    return {
        "profile": {
            "channel": user.channel,
            "account_id": user.external_id,
            "display_name": user.display_name,
            "language": user.language,
            "role": user.role,
            "unit": user.unit_name,
            "locality": {"code": locality.code, "name": await place_path(ctx, locality.id)} if locality else None,
            "receives_news": user.news_enabled,
            "joined_at": user.created_at,
        },
        "topics": [topics[i].name_vi for i in sorted(await store.users.topic_ids(user.id)) if i in topics],
        "consents": await consent_history(ctx, user.id),
        "conversation": (
            {"flow": ctx.conversation.flow, "step": ctx.conversation.step, "draft": ctx.conversation.data}
            if ctx.conversation else None
        ),
    }


# The person themselves, from their first message: the account row, consents, topics, and what the chat's machinery
# keeps of them.
FEATURE = Feature(
    "onboarding", commands=(Command("start"),),
    export=export, exported=("users", "user_topics", "consents", "conversations"),
    unexported={"inbound_journal": "each update for the few days until it is handled (its content is in the rest)",
                "chat_options": "the numbers last shown in the chat, a copy of the bot's own buttons",
                "chat_menus": "which command menu the chat was given",
                "web_messages": "the web chat's page history, shown on the page itself",
                "web_sessions": "a web chat cookie's hash",
                "web_files": "the names of the files of the web chat's history (the files are in the cases it kept)",
                "notice_outbox": "messages to the person waiting to be delivered"},
    erased=IDENTITY, kept={"users": "the anonymous row itself: commune and join date"},
)
