"""What the bot says and does, channel-neutral: importing this package registers every feature."""

from handlers import (  # noqa: F401  (they register themselves)
    auditlog,
    broadcast,
    campaigns,
    cases,
    digest,
    dvk,
    dvk_browse,
    dvk_rounds,
    dvk_staff,
    export,
    inbox,
    linking,
    menu,
    offer,
    onboarding,
    place_qr,
    privacy,
    profile,
    staff,
    survey_builder,
    survey_results,
    surveys,
    tasks,
    topics,
    tracking,
)
from handlers.base import registry

__all__ = ["registry"]
