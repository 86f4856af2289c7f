"""Consent per purpose, recorded with the time and the version of the exact text shown."""

from __future__ import annotations

import hashlib

from handlers.base import Ctx
from storage.users import PURPOSES

__all__ = ["PURPOSES", "consent_history", "consent_version", "has_consent", "record_consent"]


def consent_version(text: str, language: str) -> str:
    """The version of a consent text is its language and a digest of exactly what was shown."""
    return f"{language}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


async def record_consent(ctx: Ctx, purpose: str, granted: bool) -> None:
    """Record the answer; the first purpose accepted is when the person's platform name and language start
    being kept (before, nothing about them is)."""
    t = ctx.t
    identify = (ctx.inbound.display_name, t.language) if granted and not ctx.user.consented else None
    user = await ctx.store.users.record_consent(ctx.user.id, purpose, granted,
                                                consent_version(t(f"consent.{purpose}"), t.language), ctx.now, identify)
    if user is not None:
        ctx.user = user


async def has_consent(ctx: Ctx, purpose: str) -> bool:
    consent = (await ctx.store.users.consents(ctx.user.id)).get(purpose)
    return consent is not None and consent.granted


async def consent_history(ctx: Ctx, user_id: int) -> list[dict]:
    """Every consent decision of an account, as /dulieu gives them."""
    return [{"purpose": c.purpose, "granted": c.granted, "text_version": c.text_version, "at": c.at}
            for c in await ctx.store.users.consent_history(user_id)]
