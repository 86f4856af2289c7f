"""Text, a photo, a voice note, a document or a location sent outside any flow: rather than a generic menu, the
bot offers to send it as a report or a suggestion, and carries it into the case flow (handlers/cases.py)."""

from __future__ import annotations

from dataclasses import asdict

from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.cases import KINDS, LIMITS, MAX_TEXT, MIN_TEXT, start_case
from handlers.cases import _excerpt as excerpt
from handlers.menu import show_menu

FLOW = "offer"
registry.flow(FLOW)
MIN_WORDS = 3  # a greeting ("xin chào", "alo") gets the menu, not an offer to make it a report


async def offer_case(ctx: Ctx) -> bool:
    """Offer what the person just sent as a case; False when it is nothing a case could carry."""
    inbound = ctx.inbound
    text = inbound.text.strip()
    if inbound.kind == "text" and MIN_TEXT <= len(text) <= MAX_TEXT and len(text.split()) >= MIN_WORDS:
        carried = {"text": text}
    elif inbound.kind == "media" and inbound.media is not None and inbound.media.kind in LIMITS:
        carried = {"media": asdict(inbound.media)}
        if MIN_TEXT <= len(text) <= MAX_TEXT:  # a caption
            carried["text"] = text
    elif inbound.kind == "location" and inbound.location is not None:
        carried = {"location": list(inbound.location)}
    else:
        return False
    ctx.conversation = None
    await ctx.goto(FLOW, "ask", carried=carried)
    return True


async def _ask_prompt(ctx: Ctx) -> None:
    carried = ctx.data["carried"]
    what = (excerpt(carried["text"]) if "text" in carried
            else ctx.t(f"case.att_{carried['media']['kind']}") if "media" in carried else ctx.t("case.att_location"))
    key = step_key(FLOW, "ask")
    ctx.say(ctx.t("offer.ask", what=what), [
        (Option(ctx.t("offer.phananh"), cb(key, "phananh")), Option(ctx.t("offer.gopy"), cb(key, "gopy"))),
        (Option(ctx.t("offer.no"), cb(key, "no")),),
    ])


@registry.step(FLOW, "ask", _ask_prompt)
async def _ask_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if len(choice) == 1 and choice[0] in KINDS:
        carried = ctx.data["carried"]
        ctx.finish()
        await start_case(ctx, choice[0], carried=carried)
    elif choice == ("no",):
        ctx.finish()
        await show_menu(ctx)
    elif ctx.inbound.kind == "choice":
        await ctx.wrong()
    else:  # something else sent instead of an answer: offered in its turn
        ctx.finish()
        if not await offer_case(ctx):
            await show_menu(ctx, ctx.t("common.use_menu"))
