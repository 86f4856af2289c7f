"""Cadre scopes and one-time invites."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.clock import iso, parse
from storage.db import Database


@dataclass(frozen=True)
class Scope:
    locality_ids: frozenset[int]
    topic_ids: frozenset[int]  # empty: every topic


@dataclass(frozen=True)
class Invite:
    id: int
    locality_codes: tuple[str, ...]
    topic_codes: tuple[str, ...]
    unit_name: str | None
    expires_at: str
    used_at: str | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InviteError(Exception):
    """The invite is unknown, used or expired; `reason` is one of those words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LastAdmin(Exception):
    """Removing this admin would leave the bot with none: nobody could invite cadres or read the audit log."""


SCOPE_PARTS = {"places": ("cadre_localities", "locality_id"), "topics": ("cadre_topics", "topic_id")}


class RoleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def scope(self, user_id: int) -> Scope:
        locs = await self.db.fetchall("SELECT locality_id FROM cadre_localities WHERE user_id = ?", (user_id,))
        tops = await self.db.fetchall("SELECT topic_id FROM cadre_topics WHERE user_id = ?", (user_id,))
        return Scope(frozenset(r[0] for r in locs), frozenset(r[0] for r in tops))

    async def create_invite(self, locality_codes: list[str], topic_codes: list[str], unit_name: str | None,
                            created_by: int | None, now: datetime, ttl: timedelta) -> tuple[str, Invite]:
        """Returns the token (shown once, never stored) and the invite."""
        token = secrets.token_urlsafe(18)  # 24 URL-safe characters; "i_" + token fits a deep link
        scope = json.dumps({"localities": locality_codes, "topics": topic_codes}, ensure_ascii=False)
        invite_id = await self.db.execute(
            "INSERT INTO invites (token_hash, scope, unit_name, created_by, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (hash_token(token), scope, unit_name, created_by, iso(now), iso(now + ttl)),
        )
        return token, Invite(invite_id, tuple(locality_codes), tuple(topic_codes), unit_name, iso(now + ttl), None)

    async def accept_invite(self, token: str, user_id: int, now: datetime) -> Invite:
        """Make the person a cadre with the invite's scope; the invite can't be used again."""
        async with self.db.tx() as conn:
            async with conn.execute(
                "SELECT id, scope, unit_name, expires_at, used_at FROM invites WHERE token_hash = ?",
                (hash_token(token),),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise InviteError("unknown")
            if row["used_at"] is not None:
                raise InviteError("used")
            if parse(row["expires_at"]) <= now:
                raise InviteError("expired")
            scope = json.loads(row["scope"])
            await conn.execute("UPDATE invites SET used_at = ?, used_by = ? WHERE id = ?",
                               (iso(now), user_id, row["id"]))
            await conn.execute(
                "UPDATE users SET role = CASE WHEN role = 'admin' THEN 'admin' ELSE 'cadre' END,"
                " unit_name = ?, updated_at = ? WHERE id = ?",
                (row["unit_name"], iso(now), user_id),
            )
            await conn.execute("DELETE FROM cadre_localities WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM cadre_topics WHERE user_id = ?", (user_id,))
            await conn.execute(
                "INSERT INTO cadre_localities (user_id, locality_id) SELECT ?, id FROM localities"
                f" WHERE code IN ({','.join('?' * len(scope['localities']))})",
                (user_id, *scope["localities"]),
            )
            if scope["topics"]:
                await conn.execute(
                    "INSERT INTO cadre_topics (user_id, topic_id) SELECT ?, id FROM topics"
                    f" WHERE code IN ({','.join('?' * len(scope['topics']))})",
                    (user_id, *scope["topics"]),
                )
        return Invite(row["id"], tuple(scope["localities"]), tuple(scope["topics"]), row["unit_name"],
                      row["expires_at"], iso(now))

    async def set_scope(self, user_id: int, locality_ids: set[int], topic_ids: set[int]) -> None:
        """Replace a cadre's scope (no topics: every topic)."""
        async with self.db.tx() as conn:
            await conn.execute("DELETE FROM cadre_localities WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM cadre_topics WHERE user_id = ?", (user_id,))
            await conn.executemany("INSERT INTO cadre_localities (user_id, locality_id) VALUES (?, ?)",
                                   [(user_id, i) for i in sorted(locality_ids)])
            await conn.executemany("INSERT INTO cadre_topics (user_id, topic_id) VALUES (?, ?)",
                                   [(user_id, i) for i in sorted(topic_ids)])

    async def change_scope(self, user_id: int, part: str, seen: set[int], new: set[int]) -> bool:
        """Replace a cadre's places or topics (`part`) with `new`, only while they are still `seen`, as the admin
        saw them: of two admins at once the second does not silently undo the first. False when they changed
        meanwhile (nothing is written)."""
        table, column = SCOPE_PARTS[part]
        async with self.db.tx() as conn:
            # The cadre's row is locked first: on PostgreSQL two changes of one scope then run one after the other,
            # and the second reads what the first wrote (SQLite's writers are one at a time already).
            await conn.execute("UPDATE users SET updated_at = updated_at WHERE id = ?", (user_id,))
            async with conn.execute(f"SELECT {column} FROM {table} WHERE user_id = ?", (user_id,)) as cur:
                if {r[0] for r in await cur.fetchall()} != seen:
                    return False
            await conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            await conn.executemany(f"INSERT INTO {table} (user_id, {column}) VALUES (?, ?)",
                                   [(user_id, i) for i in sorted(new)])
        return True

    async def revoke(self, user_id: int, now: datetime) -> None:
        async with self.db.tx() as conn:
            await conn.execute("DELETE FROM cadre_localities WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM cadre_topics WHERE user_id = ?", (user_id,))
            await conn.execute(
                "UPDATE users SET role = 'citizen', unit_name = NULL, updated_at = ? WHERE id = ? AND role = 'cadre'",
                (iso(now), user_id),
            )

    async def cadres_covering(self, locality_path: str, topic_id: int) -> list[int]:
        """Cadres whose scope holds this place (as a subtree) and this topic."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT u.id FROM users u JOIN cadre_localities cl ON cl.user_id = u.id"
            " JOIN localities l ON l.id = cl.locality_id"
            " WHERE u.role <> 'citizen' AND u.role = 'cadre' AND u.deleted_at IS NULL"  # <>: the users_role index
            " AND substr(?, 1, length(l.path)) = l.path"
            " AND (NOT EXISTS (SELECT 1 FROM cadre_topics t WHERE t.user_id = u.id)"
            "      OR EXISTS (SELECT 1 FROM cadre_topics t WHERE t.user_id = u.id AND t.topic_id = ?))"
            " ORDER BY u.id",
            (locality_path, topic_id))
        return [r[0] for r in rows]

    async def cadres_holding(self, locality_id: int) -> list[int]:
        """Reachable cadres whose scope is this very place (one of its roots), whatever their topics."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT u.id FROM users u JOIN cadre_localities cl ON cl.user_id = u.id"
            " WHERE u.role <> 'citizen' AND u.role = 'cadre' AND u.deleted_at IS NULL AND u.reachable <> 0"
            " AND cl.locality_id = ? ORDER BY u.id", (locality_id,))
        return [r[0] for r in rows]

    async def scope_paths(self, user_id: int) -> tuple[str, ...]:
        rows = await self.db.fetchall(
            "SELECT l.path FROM cadre_localities cl JOIN localities l ON l.id = cl.locality_id WHERE cl.user_id = ?"
            " ORDER BY l.path", (user_id,))
        return tuple(r[0] for r in rows)

    async def remove_admin(self, user_id: int, now: datetime, *, force: bool = False) -> str | None:
        """Take an admin's rights away: they stay a cadre where they have a scope, else become a citizen. Returns
        the new role; None when they were not an admin. The last admin stays one unless `force` (LastAdmin)."""
        async with self.db.tx() as conn:
            async with conn.execute("SELECT role FROM users WHERE id = ? AND deleted_at IS NULL", (user_id,)) as cur:
                row = await cur.fetchone()
            if row is None or row[0] != "admin":
                return None
            async with conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND deleted_at IS NULL") as cur:
                admins = (await cur.fetchone())[0]
            if admins <= 1 and not force:
                raise LastAdmin
            async with conn.execute("SELECT count(*) FROM cadre_localities WHERE user_id = ?", (user_id,)) as cur:
                role = "cadre" if (await cur.fetchone())[0] else "citizen"
            await conn.execute("UPDATE users SET role = ?, updated_at = ? WHERE id = ? AND role = 'admin'",
                               (role, iso(now), user_id))
        return role
