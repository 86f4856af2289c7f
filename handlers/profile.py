"""/caidat (locality, topics, language, consent), /dunggui and /nhantin."""

from __future__ import annotations

from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.consent import PURPOSES, has_consent, record_consent
from handlers.features import Command, Feature
from handlers.menu import show_menu
from handlers.onboarding import profile_summary
from handlers.pickers import locality_steps, topic_steps
from messages import LANGUAGES
from storage.localities import Locality

FLOW = "set"
registry.flow(FLOW)
MENU_KEY = step_key(FLOW, "menu")


@registry.command("caidat", "settings")
async def settings_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "menu")


async def _menu_prompt(ctx: Ctx) -> None:
    await profile_summary(ctx)
    ctx.say(ctx.t("settings.ask"), [
        (Option(ctx.t("settings.locality"), cb(MENU_KEY, "loc")),
         Option(ctx.t("settings.topics"), cb(MENU_KEY, "top"))),
        (Option(ctx.t("settings.language"), cb(MENU_KEY, "lang")),
         Option(ctx.t("settings.consent"), cb(MENU_KEY, "cons"))),
        (Option(ctx.t("settings.close"), cb(MENU_KEY, "close")),),
    ])


@registry.step(FLOW, "menu", _menu_prompt)
async def _menu_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("loc",):
        await ctx.goto(FLOW, "commune", page=0)
    elif choice == ("top",):
        await ctx.goto(FLOW, "topics", topics=sorted(await ctx.store.users.topic_ids(ctx.user.id)))
    elif choice == ("lang",):
        await ctx.goto(FLOW, "language")
    elif choice == ("cons",):
        await ctx.goto(FLOW, "consent")
    elif choice == ("close",):
        ctx.finish()
        await show_menu(ctx)
    else:
        await ctx.wrong()


async def _locality_chosen(ctx: Ctx, loc: Locality | None) -> None:
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, locality_id=loc.id if loc else None)
    ctx.say(ctx.t("settings.saved"))
    await ctx.goto(FLOW, "menu")


async def _topics_chosen(ctx: Ctx, topic_ids: set[int]) -> None:
    await ctx.store.users.set_topics(ctx.user.id, topic_ids)
    ctx.say(ctx.t("settings.saved"))
    await ctx.goto(FLOW, "menu")


locality_steps(FLOW, then=_locality_chosen)
topic_steps(FLOW, then=_topics_chosen, sensitive_consent=True)


async def _language_prompt(ctx: Ctx) -> None:
    key = step_key(FLOW, "language")
    ctx.say(ctx.t("settings.ask_language"),
            [tuple(Option(ctx.t(f"language.{lang}"), cb(key, lang)) for lang in LANGUAGES)])


@registry.step(FLOW, "language", _language_prompt)
async def _language_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if len(choice) != 1 or choice[0] not in LANGUAGES:
        await ctx.wrong()
        return
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, language=choice[0])
    ctx.say(ctx.t("settings.saved"))
    await ctx.goto(FLOW, "menu")


async def _consent_prompt(ctx: Ctx) -> None:
    key = step_key(FLOW, "consent")
    consents = await ctx.store.users.consents(ctx.user.id)
    rows = []
    for purpose in PURPOSES:
        granted = purpose in consents and consents[purpose].granted
        label = ctx.t("settings.consent_on" if granted else "settings.consent_off",
                      purpose=ctx.t(f"purpose.{purpose}"))
        rows.append((Option(label, cb(key, purpose)),))
    rows.append((Option(ctx.t("common.back"), cb(key, "back")),))
    ctx.say(ctx.t("settings.ask_consent"), rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] != ("cons",))


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("back",):
        await ctx.goto(FLOW, "menu")
        return
    if len(choice) != 1 or choice[0] not in PURPOSES:
        await ctx.wrong()
        return
    purpose = choice[0]
    granted = not await has_consent(ctx, purpose)
    await record_consent(ctx, purpose, granted)
    if purpose == "news":
        ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, news_enabled=int(granted))
    if purpose == "sensitive" and not granted:  # following the topic says as much as commenting on it
        sensitive = {t.id for t in await ctx.store.topics.all() if t.sensitive}
        followed = await ctx.store.users.topic_ids(ctx.user.id)
        if followed & sensitive:
            await ctx.store.users.set_topics(ctx.user.id, followed - sensitive)
    ctx.say(ctx.t("consent.recorded_yes" if granted else "consent.withdrawn", purpose=ctx.t(f"purpose.{purpose}")))
    await _consent_prompt(ctx)


@registry.command("dunggui", "stop")
async def stop_news(ctx: Ctx) -> None:
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, news_enabled=0)
    ctx.say(ctx.t("news.stopped"))


@registry.command("nhantin", "resume")
async def resume_news(ctx: Ctx) -> None:
    if not await has_consent(ctx, "news"):
        await ctx.goto("news", "ask")
        return
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, news_enabled=1)
    ctx.say(ctx.t("news.resumed"))


registry.flow("news")


async def _news_consent_prompt(ctx: Ctx) -> None:
    key = step_key("news", "ask")
    ctx.say(ctx.t("news.needs_consent"))
    ctx.say(ctx.t("consent.news"),
            [(Option(ctx.t("consent.yes"), cb(key, "y")), Option(ctx.t("consent.no"), cb(key, "n")))])


@registry.step("news", "ask", _news_consent_prompt)
async def _news_consent_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice not in (("y",), ("n",)):
        await ctx.wrong()
        return
    ctx.finish()
    if choice == ("n",):
        ctx.say(ctx.t("news.still_off"))
        return
    await record_consent(ctx, "news", True)
    ctx.user = await ctx.store.users.update(ctx.user.id, ctx.now, news_enabled=1)
    ctx.say(ctx.t("news.resumed"))


FEATURE = Feature("profile", commands=(Command("caidat", menu="menu.settings", place=50), Command("nhantin"),
                                       Command("dunggui")))
