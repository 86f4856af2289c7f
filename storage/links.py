"""One person on two channels: short one-time link codes, and the link that makes two accounts one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import consultations, surveys
from storage.clock import iso, parse
from storage.db import Database
from storage.dvk import move_person as move_dvk
from storage.roles import hash_token

CODE_DIGITS = 6
MAX_FAILURES = 5  # wrong codes a person may type within a code's lifetime: six digits must not be guessed


class LinkError(Exception):
    """The link is refused; `reason`: unknown, expired, same_channel, already_linked, staff_conflict, too_many."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Link:
    person_id: int  # the account that keeps the person's data
    other_id: int  # the account now pointing at it
    other_channel: str


class LinkRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def new_code(self, user_id: int, now: datetime, ttl: timedelta) -> str:
        """A fresh code for this account (an earlier unused one stops working); shown once, only its hash kept."""
        async with self.db.tx() as conn:
            await conn.execute("DELETE FROM link_codes WHERE user_id = ? OR expires_at <= ?", (user_id, iso(now)))
            while True:
                code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
                async with conn.execute("SELECT 1 FROM link_codes WHERE code_hash = ? AND used_at IS NULL",
                                        (hash_token(code),)) as cur:
                    if await cur.fetchone() is None:
                        break
            await conn.execute("INSERT INTO link_codes (user_id, code_hash, created_at, expires_at)"
                               " VALUES (?, ?, ?, ?)", (user_id, hash_token(code), iso(now), iso(now + ttl)))
        return code

    async def redeem(self, code: str, user_id: int, channel: str, now: datetime, window: timedelta) -> Link:
        """Link the account that typed `code` (on `channel`) with the one that was given it, in one transaction.

        The staff account keeps the data if there is one (its role and scope stay where they were given), else
        the account that asked for the code, whose settings are in force. The other account's cases, topics and
        "Dân vận khéo" nominations and votes move over (a sensitive topic only where the kept account consented to
        it); if the keeping account never finished /start, the other's profile and consents do too."""
        async with self.db.tx() as conn:
            async with conn.execute(
                "SELECT count(*) FROM audit_log WHERE actor_id = ? AND action = 'link.refused' AND at > ?",
                (user_id, iso(now - window)),
            ) as cur:
                if (await cur.fetchone())[0] >= MAX_FAILURES:
                    raise LinkError("too_many")
            async with conn.execute("SELECT id, user_id, expires_at, used_at FROM link_codes WHERE code_hash = ?"
                                    " AND used_at IS NULL", (hash_token(code),)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise LinkError("unknown")
            if parse(row["expires_at"]) <= now:
                raise LinkError("expired")
            accounts = {}
            for account in (row["user_id"], user_id):
                async with conn.execute(
                    "SELECT id, channel, role, onboarded, linked_to,"
                    " EXISTS (SELECT 1 FROM users o WHERE o.linked_to = u.id) AS has_link"
                    " FROM users u WHERE id = ? AND deleted_at IS NULL", (account,)) as cur:
                    accounts[account] = await cur.fetchone()
            giver, taker = accounts[row["user_id"]], accounts[user_id]
            if giver is None:
                raise LinkError("unknown")
            if giver["channel"] == channel or giver["id"] == taker["id"]:
                raise LinkError("same_channel")
            if any(a["linked_to"] is not None or a["has_link"] for a in (giver, taker)):
                raise LinkError("already_linked")
            staff = [a for a in (giver, taker) if a["role"] != "citizen"]
            if len(staff) == 2:
                raise LinkError("staff_conflict")
            person, other = (staff[0], taker if staff[0] is giver else giver) if staff else (giver, taker)
            keep, move = person["id"], other["id"]
            await conn.execute("UPDATE link_codes SET used_at = ? WHERE id = ?", (iso(now), row["id"]))
            await conn.execute("UPDATE cases SET user_id = ? WHERE user_id = ?", (keep, move))
            await move_dvk(conn, move, keep)
            await surveys.move(conn, move, keep)
            await conn.execute("INSERT INTO user_topics (user_id, topic_id)"
                               " SELECT ?, topic_id FROM user_topics WHERE user_id = ? ON CONFLICT DO NOTHING",
                               (keep, move))
            await conn.execute("DELETE FROM user_topics WHERE user_id = ?", (move,))
            await conn.execute("DELETE FROM case_drafts WHERE user_id = ?", (move,))
            if not person["onboarded"] and other["onboarded"]:
                await conn.execute(
                    "UPDATE users SET (onboarded, locality_id, news_enabled, language) ="
                    " (SELECT onboarded, locality_id, news_enabled, language FROM users WHERE id = ?) WHERE id = ?",
                    (move, keep))
                await conn.execute("UPDATE consents SET user_id = ? WHERE user_id = ?", (keep, move))
            await consultations.move_person(conn, move, keep)
            # A sensitive topic is followed only with the sensitive consent of the account kept (Decree 13).
            await conn.execute(
                "DELETE FROM user_topics WHERE user_id = ? AND topic_id IN (SELECT id FROM topics WHERE sensitive = 1)"
                " AND COALESCE((SELECT granted FROM consents WHERE user_id = ? AND purpose = 'sensitive'"
                " ORDER BY id DESC LIMIT 1), 0) = 0", (keep, keep))
            await conn.execute("UPDATE users SET linked_to = ?, updated_at = ? WHERE id = ?", (keep, iso(now), move))
        return Link(keep, move, other["channel"])

    async def linked(self, user_id: int) -> list[tuple[int, str, str | None]]:
        """The other accounts of this person: (id, channel, account id)."""
        rows = await self.db.fetchall("SELECT id, channel, external_id FROM users WHERE linked_to = ? ORDER BY id",
                                      (user_id,))
        return [(r[0], r[1], r[2]) for r in rows]
