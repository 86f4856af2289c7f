"""The numbers of the processing report (`danvan privacy report`): what personal data is held, by channel and
purpose; consents by the version of the text shown; and who did what in a period, from the audit log.

Erased people are not counted among those whose data is held (their row keeps only statistics), nor among the
consents in force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from storage.clock import iso
from storage.db import Database

_IN_FORCE = "SELECT max(id) FROM consents GROUP BY user_id, purpose"


@dataclass
class Held:
    """What is held about the people of one channel ("" for cases no longer linked to anyone)."""

    channel: str
    accounts: int = 0
    onboarded: int = 0
    named: int = 0  # a platform display name is kept
    placed: int = 0  # a place of residence is kept
    staff: int = 0
    consents: dict[str, int] = field(default_factory=dict)  # purpose → people consenting now
    topics_followed: int = 0
    cases: int = 0
    anonymous: int = 0
    sensitive: int = 0  # cases in a topic that may reveal political opinions
    files: int = 0  # photos, voice notes, documents
    locations: int = 0  # GPS points
    nominations: int = 0  # "Dân vận khéo" models proposed, with what the nominator wrote about someone
    nomination_photos: int = 0
    votes: int = 0  # "Dân vận khéo" votes (each keeps the voter's commune)
    drafts: int = 0  # half-written cases and conversations waiting for their author
    # Survey responses, apart from those in surveys asking political opinions (the sensitive consent); anonymous
    # ones are kept unlinked once the person erases their data.
    responses: int = 0
    anonymous_responses: int = 0
    political_responses: int = 0
    political_anonymous: int = 0
    consultation_answers: int = 0  # «Đồng ý», «Có ý kiến», «Bỏ qua» on a draft document's sections
    consultation_comments: int = 0  # comments on a draft document: political opinion, sensitive
    anonymous_comments: int = 0


@dataclass(frozen=True)
class ConsentVersion:
    purpose: str
    text_version: str
    granted_now: int  # people whose consent in force is this version, granted
    refused_now: int  # … refused or withdrawn
    recorded_in_period: int
    first_at: str
    last_at: str


@dataclass(frozen=True)
class Activity:
    """How often one actor (None: the command line, the scheduler) did one action in the period."""

    actor_id: int | None
    name: str | None
    role: str | None
    action: str
    count: int
    last_at: str


async def held(db: Database) -> list[Held]:
    by_channel: dict[str, Held] = {}

    def of(channel: str) -> Held:
        return by_channel.setdefault(channel, Held(channel))

    rows = await db.fetchall(
        "SELECT channel, count(*), sum(CASE WHEN onboarded = 1 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN display_name IS NOT NULL THEN 1 ELSE 0 END),"
        " sum(CASE WHEN locality_id IS NOT NULL THEN 1 ELSE 0 END),"
        " sum(CASE WHEN role <> 'citizen' THEN 1 ELSE 0 END)"
        " FROM users WHERE deleted_at IS NULL GROUP BY channel")
    for channel, accounts, onboarded, named, placed, staff in rows:
        h = of(channel)
        h.accounts, h.onboarded, h.named, h.placed, h.staff = accounts, onboarded, named, placed, staff
    rows = await db.fetchall(
        "SELECT u.channel, c.purpose, count(*) FROM consents c JOIN users u ON u.id = c.user_id"
        f" WHERE c.id IN ({_IN_FORCE}) AND c.granted = 1 AND u.deleted_at IS NULL GROUP BY u.channel, c.purpose")
    for channel, purpose, count in rows:
        of(channel).consents[purpose] = count
    rows = await db.fetchall(
        "SELECT u.channel, count(*) FROM user_topics t JOIN users u ON u.id = t.user_id"
        " WHERE u.deleted_at IS NULL GROUP BY u.channel")
    for channel, count in rows:
        of(channel).topics_followed = count
    rows = await db.fetchall(
        "SELECT coalesce(u.channel, ''), count(*), sum(CASE WHEN c.anonymous = 1 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN t.sensitive = 1 THEN 1 ELSE 0 END)"
        " FROM cases c JOIN topics t ON t.id = c.topic_id LEFT JOIN users u ON u.id = c.user_id"
        " GROUP BY coalesce(u.channel, '')")
    for channel, cases, anonymous, sensitive in rows:
        h = of(channel)
        h.cases, h.anonymous, h.sensitive = cases, anonymous, sensitive
    rows = await db.fetchall(
        "SELECT coalesce(u.channel, ''), sum(CASE WHEN a.sha256 IS NOT NULL THEN 1 ELSE 0 END),"
        " sum(CASE WHEN a.latitude IS NOT NULL THEN 1 ELSE 0 END)"
        " FROM case_attachments a JOIN cases c ON c.id = a.case_id LEFT JOIN users u ON u.id = c.user_id"
        " GROUP BY coalesce(u.channel, '')")
    for channel, files, locations in rows:
        h = of(channel)
        h.files, h.locations = files, locations
    rows = await db.fetchall(
        "SELECT coalesce(u.channel, ''), count(*),"
        " sum((SELECT count(*) FROM dvk_photos p WHERE p.model_id = m.id))"
        " FROM dvk_models m LEFT JOIN users u ON u.id = m.user_id GROUP BY coalesce(u.channel, '')")
    for channel, nominations, photos in rows:
        h = of(channel)
        h.nominations, h.nomination_photos = nominations, photos
    rows = await db.fetchall("SELECT coalesce(u.channel, ''), count(*) FROM dvk_votes v"
                             " LEFT JOIN users u ON u.id = v.user_id GROUP BY coalesce(u.channel, '')")
    for channel, votes in rows:
        of(channel).votes = votes
    rows = await db.fetchall(
        "SELECT coalesce(u.channel, ''), s.political, count(*), sum(CASE WHEN s.anonymous = 1 THEN 1 ELSE 0 END)"
        " FROM survey_responses r JOIN surveys s ON s.id = r.survey_id LEFT JOIN users u ON u.id = r.user_id"
        " GROUP BY coalesce(u.channel, ''), s.political")
    for channel, political, responses, anonymous in rows:
        h = of(channel)
        if political:
            h.political_responses, h.political_anonymous = responses, anonymous
        else:
            h.responses, h.anonymous_responses = responses, anonymous
    rows = await db.fetchall("SELECT u.channel, count(*) FROM consultation_answers a JOIN users u ON u.id = a.user_id"
                             " GROUP BY u.channel")
    for channel, answers in rows:
        of(channel).consultation_answers = answers
    rows = await db.fetchall("SELECT channel, count(*), sum(CASE WHEN anonymous = 1 THEN 1 ELSE 0 END)"
                             " FROM consultation_comments GROUP BY channel")
    for channel, comments, anonymous in rows:
        h = of(channel)
        h.consultation_comments, h.anonymous_comments = comments, anonymous
    rows = await db.fetchall(
        "SELECT channel, count(*) FROM ("
        " SELECT u.channel AS channel FROM case_drafts d JOIN users u ON u.id = d.user_id"
        " UNION ALL SELECT channel FROM conversations) drafts GROUP BY channel")
    for channel, count in rows:
        of(channel).drafts = count
    return sorted(by_channel.values(), key=lambda h: (h.channel == "", h.channel))


async def consent_versions(db: Database, since: datetime, until: datetime) -> list[ConsentVersion]:
    rows = await db.fetchall(
        "SELECT c.purpose, c.text_version,"
        f" sum(CASE WHEN c.id IN ({_IN_FORCE}) AND c.granted = 1 THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN c.id IN ({_IN_FORCE}) AND c.granted = 0 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN c.at >= ? AND c.at < ? THEN 1 ELSE 0 END), min(c.at), max(c.at)"
        " FROM consents c JOIN users u ON u.id = c.user_id WHERE u.deleted_at IS NULL"
        " GROUP BY c.purpose, c.text_version ORDER BY c.purpose, min(c.at)", (iso(since), iso(until)))
    return [ConsentVersion(*r) for r in rows]


async def withdrawals(db: Database, since: datetime, until: datetime) -> int:
    """Consents refused or withdrawn in the period, erased people's included: an erasure withdraws those in force
    and keeps only a count of them (its audit entry's `consents_withdrawn`)."""
    row = await db.fetchone("SELECT count(*) FROM consents WHERE granted = 0 AND at >= ? AND at < ?",
                            (iso(since), iso(until)))
    erasures = await db.fetchall("SELECT detail FROM audit_log WHERE action = 'user.erased' AND at >= ? AND at < ?",
                                 (iso(since), iso(until)))
    return row[0] + sum(json.loads(r[0]).get("consents_withdrawn", 0) for r in erasures)


async def activity(db: Database, since: datetime, until: datetime) -> list[Activity]:
    rows = await db.fetchall(
        "SELECT a.actor_id, u.display_name, u.role, a.action, count(*), max(a.at)"
        " FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id WHERE a.at >= ? AND a.at < ?"
        " GROUP BY a.actor_id, u.display_name, u.role, a.action ORDER BY a.actor_id, a.action",
        (iso(since), iso(until)))
    return [Activity(*r) for r in rows]
