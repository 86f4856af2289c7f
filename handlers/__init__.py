"""What the bot says and does, channel-neutral: importing this package registers every feature."""

from handlers import (  # noqa: F401  (they register themselves)
    auditlog,
    broadcast,
    campaigns,
    cases,
    consultation,
    consultation_staff,
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
from handlers.features import declare

# In this order: /huongdan and the platform's command menus, /dulieu's sections, the digest's (the main menu's
# buttons have their own places).
declare(onboarding.FEATURE, cases.FEATURE, tracking.FEATURE, profile.FEATURE, privacy.FEATURE, menu.FEATURE,
        linking.FEATURE, surveys.FEATURE, inbox.FEATURE, staff.SCOPE_FEATURE, digest.FEATURE, tasks.FEATURE,
        export.FEATURE, staff.CADRES_FEATURE, topics.FEATURE, place_qr.FEATURE, broadcast.FEATURE, campaigns.FEATURE,
        auditlog.FEATURE, dvk_staff.FEATURE, consultation.FEATURE)

__all__ = ["registry"]
