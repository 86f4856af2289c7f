"""/quyenriengtu (the notice), /dulieu (export everything held about me), /xoadulieu (erase)."""

from __future__ import annotations

import json

from handlers.base import Ctx, Document, Option, cb, registry, step_key
from handlers.consent import consent_version

FLOW = "del"
registry.flow(FLOW)


@registry.command("quyenriengtu", "privacy")
async def privacy_notice(ctx: Ctx) -> None:
    ctx.say(ctx.t("privacy.notice", operator=ctx.settings.operator_name))


@registry.command("dulieu", "mydata")
async def export_data(ctx: Ctx) -> None:
    user, store = ctx.user, ctx.store
    locality = await store.localities.get(user.locality_id) if user.locality_id else None
    topics = {t.id: t for t in await store.topics.all()}
    export = {
        "exported_at": ctx.now.isoformat(timespec="seconds"),
        "controller": ctx.settings.operator_name,
        "profile": {
            "channel": user.channel,
            "account_id": user.external_id,
            "display_name": user.display_name,
            "language": user.language,
            "role": user.role,
            "unit": user.unit_name,
            "locality": {"code": locality.code, "name": locality.name} if locality else None,
            "receives_news": user.news_enabled,
            "joined_at": user.created_at,
        },
        "topics": [topics[i].name_vi for i in sorted(await store.users.topic_ids(user.id)) if i in topics],
        "consents": [
            {"purpose": c.purpose, "granted": c.granted, "text_version": c.text_version, "at": c.at}
            for c in await store.users.consent_history(user.id)
        ],
        "conversation": (
            {"flow": ctx.conversation.flow, "step": ctx.conversation.step, "draft": ctx.conversation.data}
            if ctx.conversation else None
        ),
        "actions_as_staff": [
            {"at": e.at, "action": e.action, "target": e.target} for e in await store.audit.by_actor(user.id)
        ],
    }
    if user.role != "citizen":
        scope = await store.roles.scope(user.id)
        export["scope"] = {
            "localities": [(await store.localities.get(i)).name for i in sorted(scope.locality_ids)],
            "topics": [topics[i].name_vi for i in sorted(scope.topic_ids) if i in topics],
        }
    content = json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")
    ctx.say(ctx.t("privacy.export_caption"),
            document=Document("du-lieu-cua-toi.json", content, "application/json"))


@registry.command("xoadulieu", "deletedata")
async def delete_data(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "confirm")


async def _confirm_prompt(ctx: Ctx) -> None:
    key = step_key(FLOW, "confirm")
    ctx.say(ctx.t("privacy.delete_confirm"), [
        (Option(ctx.t("privacy.delete_yes"), cb(key, "yes")), Option(ctx.t("privacy.delete_no"), cb(key, "no"))),
    ])


@registry.step(FLOW, "confirm", _confirm_prompt)
async def _confirm_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("no",):
        ctx.finish()
        ctx.say(ctx.t("privacy.delete_kept"), edit=True)
        return
    if choice != ("yes",):
        await ctx.wrong()
        return
    version = consent_version(ctx.t("privacy.delete_confirm"), ctx.t.language)
    if ctx.user.role != "citizen":
        await ctx.audit("user.erased_self", f"user:{ctx.user.id}", role=ctx.user.role)
    await ctx.store.users.erase(ctx.user.id, version, ctx.now)
    ctx.conversation = None
    ctx.dirty = False  # erase() already removed the conversation row
    ctx.say(ctx.t("privacy.deleted"), edit=True)
