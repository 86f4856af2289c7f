"""The main menu, help, cancel, and the command list each role sees in the platform's menu."""

from __future__ import annotations

from handlers.base import ADMIN, STAFF, Ctx, Option, allowed, cb, registry

# (command, roles that see it); texts are "cmd.<command>" in the catalogs.
COMMANDS: list[tuple[str, frozenset[str]]] = [
    ("start", frozenset({"citizen", "cadre", "admin"})),
    ("gopy", frozenset({"citizen", "cadre", "admin"})),
    ("phananh", frozenset({"citizen", "cadre", "admin"})),
    ("theodoi", frozenset({"citizen", "cadre", "admin"})),
    ("caidat", frozenset({"citizen", "cadre", "admin"})),
    ("nhantin", frozenset({"citizen", "cadre", "admin"})),
    ("dunggui", frozenset({"citizen", "cadre", "admin"})),
    ("quyenriengtu", frozenset({"citizen", "cadre", "admin"})),
    ("dulieu", frozenset({"citizen", "cadre", "admin"})),
    ("xoadulieu", frozenset({"citizen", "cadre", "admin"})),
    ("huongdan", frozenset({"citizen", "cadre", "admin"})),
    ("huy", frozenset({"citizen", "cadre", "admin"})),
    ("lienket", frozenset({"citizen", "cadre", "admin"})),
    ("khaosat", frozenset({"citizen", "cadre", "admin"})),
    ("hopthu", STAFF),
    ("phamvi", STAFF),
    ("bantin", STAFF),
    ("nhiemvu", STAFF),
    ("xuat", STAFF),
    ("moicanbo", ADMIN),
    ("thuhoi", ADMIN),
    ("canbo", ADMIN),
    ("linhvuc", ADMIN),
    ("qrdiaban", ADMIN),
    ("thongbao", ADMIN),
    ("huythongbao", ADMIN),
    ("chiendich", ADMIN),
    ("nhatky", ADMIN),
    ("danvankheo", frozenset({"citizen", "cadre", "admin"})),
    ("mohinhhay", frozenset({"citizen", "cadre", "admin"})),
    ("dvk", STAFF),
]

# Main-menu buttons: (command they run, label key).
MENU: list[tuple[str, str]] = [
    ("gopy", "menu.gopy"),
    ("phananh", "menu.phananh"),
    ("theodoi", "menu.theodoi"),
    ("khaosat", "menu.khaosat"),
    ("hopthu", "menu.hopthu"),
    ("caidat", "menu.settings"),
    ("huongdan", "menu.help"),
    ("quyenriengtu", "menu.privacy"),
    ("phamvi", "menu.scope"),
    ("bantin", "menu.bantin"),
    ("nhiemvu", "menu.nhiemvu"),
    ("xuat", "menu.xuat"),
    ("moicanbo", "menu.invite"),
    ("thuhoi", "menu.revoke"),
    ("canbo", "menu.canbo"),
    ("linhvuc", "menu.linhvuc"),
    ("qrdiaban", "menu.qrdiaban"),
    ("thongbao", "menu.thongbao"),
    ("chiendich", "menu.chiendich"),
    ("nhatky", "menu.nhatky"),
    ("danvankheo", "menu.danvankheo"),
    ("mohinhhay", "menu.mohinhhay"),
    ("dvk", "menu.dvk"),
]


def commands_for(role: str) -> list[str]:
    return [name for name, roles in COMMANDS if role in roles]


async def show_menu(ctx: Ctx, intro: str | None = None) -> None:
    buttons = [Option(ctx.t(label), cb("m", command)) for command, label in MENU
               if allowed(ctx.user, registry.commands[command].roles)]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    ctx.say(intro or ctx.t("menu.title"), rows)


@registry.action("m")
async def menu_button(ctx: Ctx) -> None:
    """A main-menu button runs its command, with the same role check as the typed command."""
    command = ctx.args[0] if len(ctx.args) == 1 else ""
    guarded = registry.commands.get(command)
    if guarded is None or command not in {c for c, _ in MENU}:
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
