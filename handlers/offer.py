"""Text, a photo, a voice note, a document or a location sent outside any flow: rather than a generic menu, the
bot offers to send it as a report or a suggestion, and carries it into the case flow (handlers/cases.py)."""

from __future__ import annotations

from dataclasses import asdict

from handlers.base import Ctx, Inbound, Option, cb, registry, step_key
from handlers.cases import KINDS, LIMITS, MAX_TEXT, MIN_TEXT, start_case
from handlers.menu import show_menu
from messages import cut

FLOW = "offer"
registry.flow(FLOW)
MIN_WORDS = 3  # a greeting ("xin chào", "alo") gets the menu, not an offer to make it a report
MAX_FILES = sum(n for kind, n in LIMITS.items() if kind != "location")  # as many files as a case takes


async def offer_case(ctx: Ctx) -> bool:
    """Offer what the person just sent as a case; False when it is nothing a case could carry."""
    carried = _with(ctx.inbound, {})
    if carried is None:
        return False
    ctx.conversation = None
    await ctx.goto(FLOW, "ask", carried=carried)
    return True


def _with(inbound: Inbound, carried: dict) -> dict | None:
    """`carried` with what `inbound` brings added (text, a file, a location), or None when it brings nothing."""
    text = inbound.text.strip()
    if inbound.kind == "text" and MIN_TEXT <= len(text) <= MAX_TEXT and len(text.split()) >= MIN_WORDS:
        return {**carried, "text": _joined(carried.get("text"), text)}
    if inbound.kind == "media" and inbound.media is not None and inbound.media.kind in LIMITS:
        added = {**carried, "media": [*carried.get("media", []), asdict(inbound.media)][-MAX_FILES:]}
        if MIN_TEXT <= len(text) <= MAX_TEXT:  # a caption
            added["text"] = _joined(carried.get("text"), text)
        return added
    if inbound.kind == "location" and inbound.location is not None:
        return {**carried, "location": list(inbound.location)}
    return None


def _joined(earlier: str | None, text: str) -> str:
    return f"{earlier}\n{text}"[:MAX_TEXT] if earlier else text


async def _ask_prompt(ctx: Ctx) -> None:
    carried = ctx.data["carried"]
    parts = [cut(carried["text"], 80)] if carried.get("text") else []
    parts += [ctx.t(f"case.att_{media['kind']}") for media in carried.get("media", [])]
    parts += [ctx.t("case.att_location")] if carried.get("location") else []
    key = step_key(FLOW, "ask")
    ctx.say(ctx.t("offer.ask", what=", ".join(parts)), [
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
    elif (carried := _with(ctx.inbound, ctx.data["carried"])) is not None:  # more sent: offered all together
        await ctx.goto(FLOW, "ask", carried=carried)
    else:
        await ctx.wrong()
