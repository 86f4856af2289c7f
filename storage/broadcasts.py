"""Broadcasts and their recipients: one row per (broadcast, person) with its delivery status.

The audience is resolved inside the database (INSERT … SELECT over ranges of user ids, one transaction
per range), so memory stays flat however large the province. Sending claims a few rows at a time
('queued' → 'sending', one transaction) and settles their outcomes in batches; a crash leaves exactly
the claimed rows as 'sending', which a restart turns into 'uncertain'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from storage.clock import iso, parse
from storage.db import Database

STATUSES = ("queued", "sending", "sent", "blocked", "failed", "uncertain", "skipped")
FINAL = ("sent", "blocked", "failed", "uncertain", "skipped")
ROLES = ("citizen", "cadre", "admin")
RESOLVE_BATCH = 5000  # user ids per audience transaction


@dataclass(frozen=True)
class Audience:
    """Who a broadcast is for; an empty tuple means no condition on that dimension."""

    topics: tuple[int, ...] = ()
    localities: tuple[int, ...] = ()  # subtrees
    roles: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"topics": list(self.topics), "localities": list(self.localities),
                           "roles": list(self.roles)})

    @classmethod
    def from_json(cls, text: str) -> Audience:
        data = json.loads(text or "{}")
        return cls(tuple(int(t) for t in data.get("topics", [])), tuple(int(i) for i in data.get("localities", [])),
                   tuple(r for r in data.get("roles", []) if r in ROLES))


@dataclass(frozen=True)
class NewBroadcast:
    text_vi: str
    scheduled_at: datetime
    audience: Audience = field(default_factory=Audience)
    text_en: str | None = None
    campaign_id: int | None = None
    created_by: int | None = None
    photo_sha256: str | None = None
    link_url: str | None = None
    feedback: bool = False
    quiet_override: bool = False
    survey_id: int | None = None  # a survey's invitation or reminder: it carries the survey's button


# One statement for every way a broadcast is written (here, and a survey's reminder with its recipients).
INSERT = ("INSERT INTO broadcasts (campaign_id, created_by, text_vi, text_en, photo_sha256, link_url, feedback,"
          " audience, scheduled_at, quiet_override, survey_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def insert_params(new: NewBroadcast, now: datetime) -> tuple:
    return (new.campaign_id, new.created_by, new.text_vi, new.text_en, new.photo_sha256, new.link_url,
            int(new.feedback), new.audience.to_json(), iso(new.scheduled_at), int(new.quiet_override), new.survey_id,
            iso(now))


@dataclass(frozen=True)
class Broadcast:
    id: int
    campaign_id: int | None
    created_by: int | None
    text_vi: str
    text_en: str | None
    photo_sha256: str | None
    link_url: str | None
    feedback: bool
    audience: Audience
    status: str
    scheduled_at: str
    quiet_override: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    resolved: bool
    resolved_upto: int
    total: int | None
    report_channel: str | None
    report_chat: str | None
    report_ref: str | None
    survey_id: int | None = None  # an invitation to a survey: its «Trả lời khảo sát» button (storage/surveys.py)

    def text(self, language: str) -> str:
        return self.text_en if language == "en" and self.text_en else self.text_vi


@dataclass(frozen=True)
class Target:
    """A claimed recipient: where to send and in which language."""

    user_id: int
    channel: str
    chat_id: str
    language: str
    attempts: int  # this one included


@dataclass(frozen=True)
class Outcome:
    user_id: int
    status: str  # sent, blocked, failed, or queued again (a retry at next_at)
    reason: str | None = None
    next_at: datetime | None = None


_COLUMNS = ("id, campaign_id, created_by, text_vi, text_en, photo_sha256, link_url, feedback, audience, status,"
            " scheduled_at, quiet_override, created_at, started_at, finished_at, resolved, resolved_upto, total,"
            " report_channel, report_chat, report_ref, survey_id")


def _row(r) -> Broadcast:
    return Broadcast(r["id"], r["campaign_id"], r["created_by"], r["text_vi"], r["text_en"], r["photo_sha256"],
                     r["link_url"], bool(r["feedback"]), Audience.from_json(r["audience"]), r["status"],
                     r["scheduled_at"], bool(r["quiet_override"]), r["created_at"], r["started_at"],
                     r["finished_at"], bool(r["resolved"]), r["resolved_upto"], r["total"], r["report_channel"],
                     r["report_chat"], r["report_ref"], r["survey_id"])


def _audience_where(audience: Audience) -> tuple[str, list]:
    """Who may receive news at all (onboarded, not opted out, reachable, consent for citizens), then the
    broadcast's own conditions (`audience_conditions`). A person on two linked channels receives it once, where
    their account is kept: the linked account's own settings are the ones from before the link and no longer say
    anything."""
    return audience_conditions(audience, [
        "u.deleted_at IS NULL", "u.linked_to IS NULL", "u.onboarded = 1", "u.news_enabled = 1", "u.reachable = 1",
        "u.chat_id IS NOT NULL", "(u.role <> 'citizen' OR (SELECT c.granted FROM consents c WHERE c.user_id = u.id"
        " AND c.purpose = 'news' ORDER BY c.id DESC LIMIT 1) = 1)"])


def audience_conditions(audience: Audience, where: list[str]) -> tuple[str, list]:
    """`where` and an audience's own conditions on the person `u`: any of its topics, inside any of its locality
    subtrees, any of its roles (broadcasts, surveys)."""
    params: list = []
    if audience.roles:
        where.append(f"u.role IN ({','.join('?' * len(audience.roles))})")
        params += list(audience.roles)
    if audience.topics:
        where.append("EXISTS (SELECT 1 FROM user_topics ut WHERE ut.user_id = u.id"
                     f" AND ut.topic_id IN ({','.join('?' * len(audience.topics))}))")
        params += list(audience.topics)
    if audience.localities:
        where.append("EXISTS (SELECT 1 FROM localities l JOIN localities s"
                     " ON substr(l.path, 1, length(s.path)) = s.path"
                     f" WHERE l.id = u.locality_id AND s.id IN ({','.join('?' * len(audience.localities))}))")
        params += list(audience.localities)
    return " AND ".join(where), params


class BroadcastRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the broadcast

    async def create(self, new: NewBroadcast, now: datetime) -> Broadcast:
        return await self.get(await self.db.execute(INSERT, insert_params(new, now)))

    async def get(self, broadcast_id: int) -> Broadcast | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = ?", (broadcast_id,))
        return _row(r) if r else None

    async def active(self) -> list[Broadcast]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE status IN ('scheduled', 'running') ORDER BY id")
        return [_row(r) for r in rows]

    async def recent(self, limit: int = 20) -> list[Broadcast]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,))
        return [_row(r) for r in rows]

    async def due(self, now: datetime) -> list[Broadcast]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE status = 'scheduled' AND scheduled_at <= ? ORDER BY id",
            (iso(now),))
        return [_row(r) for r in rows]

    async def running(self) -> list[Broadcast]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM broadcasts WHERE status = 'running' ORDER BY id")
        return [_row(r) for r in rows]

    async def start(self, broadcast_id: int, now: datetime) -> bool:
        """scheduled → running; False if it is no longer scheduled (cancelled, or started already)."""
        async with self.db.tx() as conn:
            cur = await conn.execute("UPDATE broadcasts SET status = 'running', started_at = ? WHERE id = ?"
                                     " AND status = 'scheduled'", (iso(now), broadcast_id))
            return cur.rowcount == 1

    async def set_report(self, broadcast_id: int, channel: str, chat_id: str, ref: str | None) -> None:
        await self.db.execute("UPDATE broadcasts SET report_channel = ?, report_chat = ?, report_ref = ? WHERE id = ?",
                              (channel, chat_id, ref, broadcast_id))

    async def finish(self, broadcast_id: int, now: datetime) -> None:
        await self.db.execute("UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id = ?"
                              " AND status = 'running'", (iso(now), broadcast_id))

    async def cancel(self, broadcast_id: int, now: datetime) -> bool:
        """Stop the rest: the broadcast is cancelled and whoever is still queued is skipped. Recipients in
        flight finish as they will."""
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id = ?"
                " AND status IN ('scheduled', 'running')", (iso(now), broadcast_id))
            if cur.rowcount != 1:
                return False
            await conn.execute("UPDATE broadcast_recipients SET status = 'skipped', reason = 'cancelled'"
                               " WHERE broadcast_id = ? AND status = 'queued'", (broadcast_id,))
            return True

    async def status(self, broadcast_id: int) -> str | None:
        r = await self.db.fetchone("SELECT status FROM broadcasts WHERE id = ?", (broadcast_id,))
        return r[0] if r else None

    # -- the audience

    async def count_audience(self, audience: Audience) -> int:
        where, params = _audience_where(audience)
        r = await self.db.fetchone(f"SELECT count(*) FROM users u WHERE {where}", params)
        return int(r[0])

    async def resolve(self, broadcast_id: int, batch: int = RESOLVE_BATCH) -> int:
        """Give every person of the audience a 'queued' row, one range of user ids per transaction, from
        where a previous (crashed) run stopped; returns the number of recipients."""
        broadcast = await self.get(broadcast_id)
        if broadcast.resolved:
            return broadcast.total or 0
        where, params = _audience_where(broadcast.audience)
        top = (await self.db.fetchone("SELECT coalesce(max(id), 0) FROM users"))[0]
        done = broadcast.resolved_upto
        while done < top:
            upto = min(done + batch, top)
            async with self.db.tx() as conn:
                await conn.execute(
                    "INSERT INTO broadcast_recipients (broadcast_id, user_id)"
                    f" SELECT ?, u.id FROM users u WHERE u.id > ? AND u.id <= ? AND {where} ON CONFLICT DO NOTHING",
                    (broadcast_id, done, upto, *params))
                await conn.execute("UPDATE broadcasts SET resolved_upto = ? WHERE id = ?", (upto, broadcast_id))
            done = upto
        async with self.db.tx() as conn:
            async with conn.execute("SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = ?",
                                    (broadcast_id,)) as cur:
                total = (await cur.fetchone())[0]
            await conn.execute("UPDATE broadcasts SET resolved = 1, total = ? WHERE id = ?", (total, broadcast_id))
        return total

    # -- delivery

    async def recover(self, broadcast_id: int, resend: bool) -> int:
        """After a crash: the rows that were in flight become 'uncertain' (or queued again when `resend`)."""
        async with self.db.tx() as conn:
            if resend:
                cur = await conn.execute("UPDATE broadcast_recipients SET status = 'queued', next_at = NULL"
                                         " WHERE broadcast_id = ? AND status = 'sending'", (broadcast_id,))
            else:
                cur = await conn.execute("UPDATE broadcast_recipients SET status = 'uncertain',"
                                         " reason = 'in flight at a restart' WHERE broadcast_id = ?"
                                         " AND status = 'sending'", (broadcast_id,))
            return cur.rowcount

    async def claim(self, broadcast_id: int, limit: int, now: datetime) -> list[Target]:
        """The next recipients due ('queued', retry time passed), marked 'sending' in one transaction.
        People who opted out, blocked the bot or left since the audience was resolved are skipped."""
        return await self.step(broadcast_id, [], limit, now)

    async def settle(self, broadcast_id: int, outcomes: list[Outcome], now: datetime) -> None:
        """Record what happened to claimed recipients; people who blocked the bot are marked unreachable."""
        await self.step(broadcast_id, outcomes, 0, now)

    async def step(self, broadcast_id: int, outcomes: list[Outcome], limit: int, now: datetime) -> list[Target]:
        """Settle `outcomes` and claim up to `limit` more, in one transaction (a sender does both often)."""
        async with self.db.tx() as conn:
            if outcomes:
                await conn.executemany(
                    "UPDATE broadcast_recipients SET status = ?, reason = ?, next_at = ?"
                    " WHERE broadcast_id = ? AND user_id = ? AND status = 'sending'",
                    [(o.status, o.reason, iso(o.next_at) if o.next_at else None, broadcast_id, o.user_id)
                     for o in outcomes])
                gone = [(iso(now), o.user_id) for o in outcomes if o.status == "blocked"]
                if gone:
                    await conn.executemany("UPDATE users SET reachable = 0, updated_at = ? WHERE id = ?", gone)
            if limit <= 0:
                return []
            async with conn.execute(
                "SELECT r.user_id, r.attempts, u.channel, u.chat_id, u.language,"
                " CASE WHEN u.deleted_at IS NOT NULL OR u.chat_id IS NULL THEN 'deleted'"
                "      WHEN u.news_enabled = 0 THEN 'opted out' WHEN u.reachable = 0 THEN 'unreachable' END"
                " FROM broadcast_recipients r JOIN users u ON u.id = r.user_id"
                " WHERE r.broadcast_id = ? AND r.status = 'queued' AND (r.next_at IS NULL OR r.next_at <= ?)"
                f" ORDER BY r.user_id LIMIT ?{self.db.dialect.skip_locked('r')}", (broadcast_id, iso(now), limit)
            ) as cur:
                rows = await cur.fetchall()
            skipped = [(r[5], broadcast_id, r[0]) for r in rows if r[5] is not None]
            taken = [r for r in rows if r[5] is None]
            if skipped:
                await conn.executemany("UPDATE broadcast_recipients SET status = 'skipped', reason = ?"
                                       " WHERE broadcast_id = ? AND user_id = ?", skipped)
            if taken:
                await conn.executemany("UPDATE broadcast_recipients SET status = 'sending', attempts = attempts + 1"
                                       " WHERE broadcast_id = ? AND user_id = ?", [(broadcast_id, r[0]) for r in taken])
        return [Target(r[0], r[2], r[3], r[4], r[1] + 1) for r in taken]

    async def pending(self, broadcast_id: int) -> tuple[int, datetime | None]:
        """(recipients still queued, when the earliest retry is due: None if one is due now)."""
        r = await self.db.fetchone(
            "SELECT count(*), max(CASE WHEN next_at IS NULL THEN 1 ELSE 0 END), min(next_at) FROM broadcast_recipients"
            " WHERE broadcast_id = ? AND status = 'queued'", (broadcast_id,))
        if not r[0]:
            return 0, None
        return r[0], None if r[1] else parse(r[2])

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, count(*) FROM broadcast_recipients WHERE broadcast_id = ?"
                                      " GROUP BY status", (broadcast_id,))
        found = {s: 0 for s in STATUSES}
        found.update({r[0]: r[1] for r in rows})
        return found

    async def of_user(self, user_id: int) -> list[tuple[int, str, str]]:
        """The announcements addressed to one person: (broadcast id, when it was scheduled, their status)."""
        rows = await self.db.fetchall(
            "SELECT b.id, b.scheduled_at, r.status FROM broadcast_recipients r JOIN broadcasts b"
            " ON b.id = r.broadcast_id WHERE r.user_id = ? ORDER BY b.id", (user_id,))
        return [(r[0], r[1], r[2]) for r in rows]

    async def recipients(self, broadcast_id: int) -> dict[int, tuple[str, int, str | None]]:
        """Every recipient's (status, attempts, reason), by user id: for reports and tests."""
        rows = await self.db.fetchall("SELECT user_id, status, attempts, reason FROM broadcast_recipients"
                                      " WHERE broadcast_id = ?", (broadcast_id,))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}
