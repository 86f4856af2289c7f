"""/lienket: one person on Telegram and Zalo links the two accounts with a short one-time code."""

from __future__ import annotations

from datetime import timedelta

from handlers.base import Ctx, registry
from handlers.features import Command, Feature
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
    ctx.notify(gave_code, "link.done_other", channel=ctx.inbound.channel)
    ctx.user = await ctx.store.users.get(link.person_id)
    ctx.say(ctx.t("link.done"))


FEATURE = Feature("linking", commands=(Command("lienket"),))
