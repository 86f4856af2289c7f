"""/qrdiaban: an admin gets the poster QR code of a commune's or a village's deep link, as campaigns have one:
whoever scans it starts with that place chosen (`l_<code>`, handlers/onboarding.py)."""

from __future__ import annotations

from handlers.base import ADMIN, Ctx, registry
from handlers.campaigns import say_qr
from handlers.features import Command, Feature
from handlers.pickers import locality_name, locality_steps
from storage.localities import Locality

FLOW = "qrp"
registry.flow(FLOW, roles=ADMIN)


@registry.command("qrdiaban", "placeqr")
async def place_qr_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "commune", page=0)


async def _chosen(ctx: Ctx, place: Locality | None) -> None:
    ctx.finish()
    if say_qr(ctx, f"l_{place.code}", place.code, "placeqr.caption", place=await locality_name(ctx, place.id)):
        await ctx.audit("locality.qr", f"locality:{place.code}")


locality_steps(FLOW, then=_chosen)


FEATURE = Feature("place_qr", commands=(Command("qrdiaban", ADMIN, menu="menu.qrdiaban", place=160),))
