"""What the bot says and does, channel-neutral: importing this package registers every feature."""

from handlers import menu, onboarding, privacy, profile, staff  # noqa: F401  (they register themselves)
from handlers.base import registry

__all__ = ["registry"]
