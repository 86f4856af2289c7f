"""The main menu, help, cancel, and the command list each role sees in the platform's menu."""

from __future__ import annotations

from handlers.base import Ctx, Option, allowed, cb, registry
from handlers.features import Command, Feature, commands_for, menu_buttons


async def show_menu(ctx: Ctx, intro: str | None = None) -> None:
    buttons = [Option(ctx.t(c.menu), cb("m", c.name)) for c in menu_buttons() if allowed(ctx.user, c.roles)]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    ctx.say(intro or ctx.t("menu.title"), rows)


@registry.action("m")
async def menu_button(ctx: Ctx) -> None:
    """A main-menu button runs its command, with the same role check as the typed command."""
    command = ctx.args[0] if len(ctx.args) == 1 else ""
    guarded = registry.commands.get(command)
    if guarded is None or command not in {c.name for c in menu_buttons()}:
        ctx.say(ctx.t(ctx.stale_key))
        return
    if not allowed(ctx.user, guarded.roles):
        await ctx.audit("denied", f"menu:{command}")
        ctx.say(ctx.t("common.not_allowed"))
        return
    ctx.conversation = None
    ctx.dirty = True
    await guarded.handler(ctx)


@registry.command("menu")
async def menu_command(ctx: Ctx) -> None:
    """The main menu: "menu" or "0" typed on a channel without buttons (bot/render.py), or /menu."""
    await show_menu(ctx)


@registry.command("huongdan", "help")
async def help_command(ctx: Ctx) -> None:
    lines = [ctx.t("help.intro")]
    lines += [ctx.t("help.line", command=name, text=ctx.t(f"cmd.{name}")) for name in commands_for(ctx.user.role)]
    ctx.say("\n".join(lines))


@registry.command("huy", "cancel")
async def cancel_command(ctx: Ctx) -> None:
    # The router has already left any flow (a command always escapes one) and says which.
    await show_menu(ctx, ctx.t("common.cancelled" if ctx.left_flow else "common.nothing_to_cancel"))


# "menu" is what typing "menu" or "0" runs (bot/render.py): every menu offers it already.
FEATURE = Feature("menu", commands=(Command("huongdan", menu="menu.help", place=60), Command("huy"),
                                    Command("menu", listed=False)))
