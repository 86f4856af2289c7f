"""What the bot says and does, channel-neutral: importing this package registers every feature."""

from handlers import (  # noqa: F401  (they register themselves)
    auditlog,
    broadcast,
    campaigns,
    cases,
    digest,
    export,
    inbox,
    linking,
    menu,
    onboarding,
    privacy,
    profile,
    staff,
    survey_builder,
    survey_results,
    surveys,
    tasks,
    tracking,
)
from handlers.base import registry

__all__ = ["registry"]
