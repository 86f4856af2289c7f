"""What the bot says and does, channel-neutral: importing this package registers every feature."""

from handlers import (  # noqa: F401  (they register themselves)
    cases,
    inbox,
    menu,
    onboarding,
    privacy,
    profile,
    staff,
    tracking,
)
from handlers.base import registry

__all__ = ["registry"]
