"""/lienket: one person on Telegram and Zalo links the two accounts with a short one-time code."""

from __future__ import annotations

from datetime import timedelta

from handlers.base import Ctx, registry
from handlers.consent import consent_history
from handlers.features import Command, Feature
from handlers.pickers import place_path
from messages import channel_key
from storage.links import LinkError

CODE_TTL = timedelta(minutes=15)


@registry.command("lienket", "link")
async def link_command(ctx: Ctx) -> None:
    """Without a code: give one to type on the other channel. With one: link this account to the one given it."""
    code = ctx.inbound.text.strip()
    if not code:
        if await ctx.store.links.linked(ctx.user.id) or ctx.user.channel != ctx.inbound.channel:
            ctx.say(ctx.t("link.already_linked"))
            return
        if not ctx.user.onboarded:
            ctx.say(ctx.t("common.start_first"))
            return
        code = await ctx.store.links.new_code(ctx.user.id, ctx.now, CODE_TTL)
        ctx.say(ctx.t("link.code", code=code, minutes=int(CODE_TTL.total_seconds() // 60)))
        return
    try:
        link = await ctx.store.links.redeem(code[:16], ctx.user.id, ctx.inbound.channel, ctx.now, CODE_TTL)
    except LinkError as err:
        await ctx.audit("link.refused", None, reason=err.reason)
        ctx.say(ctx.t(f"link.{err.reason}"))
        return
    await ctx.store.audit.record(link.person_id, "account.linked", f"user:{link.other_id}", ctx.now,
                                 channel=link.other_channel)
    gave_code = link.other_id if link.person_id == ctx.user.id else link.person_id
    ctx.notify(gave_code, "link.done_other", channel=channel_key(ctx.inbound.channel))
    ctx.user = await ctx.store.users.get(link.person_id)
    ctx.say(ctx.t("link.done"))


async def export(ctx: Ctx) -> dict:
    """Each account on another channel linked to this one: what it still holds from before the link (its name, its
    locality, its consents where the account kept had its own) is the person's too."""
    out = []
    for other_id, _, _ in await ctx.store.links.linked(ctx.user.id):
        other = await ctx.store.users.get(other_id)
        locality = await ctx.store.localities.get(other.locality_id) if other.locality_id else None
        out.append({"channel": other.channel, "account_id": other.external_id, "display_name": other.display_name,
                    "locality": {"code": locality.code, "name": await place_path(ctx, locality.id)} if locality
                    else None, "joined_at": other.created_at, "consents": await consent_history(ctx, other_id)})
    return {"linked_accounts": out}


FEATURE = Feature("linking", commands=(Command("lienket"),), export=export, exported=("users",),
                  unexported={"link_codes": "a code's hash, for the minutes until it is typed on the other channel"},
                  erased=(("link_codes", "user", None),))
