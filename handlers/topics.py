"""/linhvuc: admins keep the topics (lĩnh vực) in chat: rename them in both languages, set the working days a
case has for its answer, hide one from new choices (its cases stay), add a new one."""

from __future__ import annotations

import re

from handlers.base import ADMIN, Ctx, Option, allowed, cb, registry, step_key
from handlers.features import Command, Feature
from messages import Key, cut
from storage.text import fold

FLOW = "lv"
registry.flow(FLOW, roles=ADMIN)
NAME = (2, 80)
DAYS = (1, 60)
TEXTS = {"vi": "name_vi", "en": "name_en"}


def _key(step: str) -> str:
    return step_key(FLOW, step)


@registry.command("linhvuc", "topics")
async def topics_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list")


async def _list_prompt(ctx: Ctx) -> None:
    key = _key("list")
    rows = [(Option(cut(("" if t.active else "🚫 ") + t.name(ctx.t.language), 60), cb(key, "o", t.id)),)
            for t in await ctx.store.topics.every()]
    rows.append(ctx.row(key, ("topic.add", "new")))
    ctx.say(ctx.t("topic.list"), rows)


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("new",):
        await ctx.goto(FLOW, "new")
        return
    topic = await ctx.store.topics.get(int(choice[1])) if len(choice) == 2 and choice[0] == "o" \
        and choice[1].isdigit() else None
    if topic is None:
        await ctx.wrong()
        return
    await ctx.goto(FLOW, "topic", topic_id=topic.id)


async def _topic_prompt(ctx: Ctx) -> None:
    topic = await ctx.store.topics.get(int(ctx.data["topic_id"]))
    key = _key("topic")
    # What the admin sees here is what a rename or new answer days expects to find when written (`_save`).
    ctx.data["seen"] = {"name_vi": topic.name_vi, "name_en": topic.name_en, "answer_days": topic.answer_days}
    ctx.dirty = True
    ctx.say(ctx.t("topic.card", vi=topic.name_vi, en=topic.name_en, days=topic.answer_days,
                  state=Key("topic.shown" if topic.active else "topic.hidden")), [
        ctx.row(key, ("topic.rename_vi", "vi"), ("topic.rename_en", "en")),
        (Option(ctx.t("topic.set_days"), cb(key, "days")),
         # The state asked for, so that the press names the one the admin saw (handlers/topics.py `_save`).
         Option(ctx.t("topic.hide" if topic.active else "topic.show"), cb(key, "act", int(not topic.active)))),
        ctx.row(key, ("common.back", "back")),
    ])


@registry.step(FLOW, "topic", _topic_prompt)
async def _topic_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    topic = await ctx.store.topics.get(int(ctx.data["topic_id"]))
    if choice == ("back",):
        await ctx.goto(FLOW, "list")
    elif choice in (("vi",), ("en",)):
        await ctx.goto(FLOW, "name", language=choice[0])
    elif choice == ("days",):
        await ctx.goto(FLOW, "days")
    elif len(choice) == 2 and choice[0] == "act" and choice[1] in ("0", "1") and topic is not None:
        active = int(choice[1])
        await _save(ctx, topic.id, expect={"active": 1 - active}, active=active)
    else:
        await ctx.wrong()


async def _name_prompt(ctx: Ctx) -> None:
    language = ctx.data.get("language") if ctx.data.get("language") in TEXTS else "vi"
    ctx.say(ctx.t(f"topic.ask_name_{language}"), [ctx.row(_key("name"), ("common.back", "back"))])


@registry.step(FLOW, "name", _name_prompt)
async def _name_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "topic")
        return
    name = _name(ctx)
    if name is None:
        await ctx.reask("topic.name_length", low=NAME[0], high=NAME[1])
        return
    field = TEXTS.get(ctx.data.get("language"), "name_vi")
    await _save(ctx, int(ctx.data["topic_id"]), expect=_seen(ctx, field), typed=name, **{field: name})


async def _days_prompt(ctx: Ctx) -> None:
    # The answer is a number: where options are numbers too, the way back is «hủy», not a numbered option.
    back = [ctx.row(_key("days"), ("common.back", "back"))] if ctx.capabilities.buttons else []
    ctx.say(ctx.t("topic.ask_days", low=DAYS[0], high=DAYS[1]), back)


@registry.step(FLOW, "days", _days_prompt)
async def _days_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "topic")
        return
    typed = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not typed.isdigit() or not DAYS[0] <= int(typed) <= DAYS[1]:
        await ctx.reask("topic.days_range", low=DAYS[0], high=DAYS[1])
        return
    await _save(ctx, int(ctx.data["topic_id"]), expect=_seen(ctx, "answer_days"), typed=typed,
                answer_days=int(typed))


async def _new_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("topic.ask_new"), [ctx.row(_key("new"), ("common.back", "back"))])


@registry.step(FLOW, "new", _new_prompt)
async def _new_handle(ctx: Ctx) -> None:
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "list")
        return
    name = _name(ctx)
    if name is None:
        await ctx.reask("topic.name_length", low=NAME[0], high=NAME[1])
        return
    if not allowed(ctx.user, ADMIN):
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    # The English name starts as the Vietnamese one: English readers see it until an admin names it.
    topic = await ctx.store.topics.create(_code(name), name, name)
    if topic is None:
        await ctx.reask("topic.exists", name=name)
        return
    await ctx.audit("topic.created", f"topic:{topic.code}", name=name)
    ctx.say(ctx.t("topic.created", name=name))
    await ctx.goto(FLOW, "topic", topic_id=topic.id)


def _name(ctx: Ctx) -> str | None:
    name = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    return name if NAME[0] <= len(name) <= NAME[1] else None


def _seen(ctx: Ctx, field: str) -> dict[str, object] | None:
    """The value of `field` the card showed; None for a conversation begun before the card kept it."""
    seen = ctx.data.get("seen") or {}
    return {field: seen[field]} if field in seen else None


def _code(name: str) -> str:
    """"Chuyển đổi số" → "chuyen-doi-so": the stable code a topic is known by in files and exports."""
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:40] or "linh-vuc"


async def _save(ctx: Ctx, topic_id: int, *, expect: dict[str, object] | None = None, typed: str | None = None,
                **fields: object) -> None:
    """Write the change; with `expect`, only over the state the admin saw: when another admin changed it meanwhile,
    this one is told (and given back what they `typed`, not to lose it) and sees the topic as it is now."""
    if not allowed(ctx.user, ADMIN):  # checked again where the topic is written
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    topic = await ctx.store.topics.update(topic_id, expect=expect, **fields)
    if topic is None:
        ctx.say(ctx.t("topic.changed_meanwhile") if typed is None else ctx.t("topic.typed_not_saved", text=typed))
        await ctx.goto(FLOW, "topic", topic_id=topic_id)
        return
    await ctx.audit("topic.changed", f"topic:{topic.code}", **fields)
    ctx.say(ctx.t("topic.saved"))
    await ctx.goto(FLOW, "topic", topic_id=topic_id)


FEATURE = Feature("topics", commands=(Command("linhvuc", ADMIN, menu="menu.linhvuc", place=150),))
