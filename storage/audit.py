"""The audit log: every cadre and admin action, who did it and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.clock import iso
from storage.db import Database

SYSTEM = "system"  # the actor of what the command line and the scheduler did (no person)


@dataclass(frozen=True)
class AuditEntry:
    at: str
    actor_id: int | None
    action: str
    target: str | None
    detail: dict


_INSERT = "INSERT INTO audit_log (at, actor_id, action, target, detail) VALUES (?, ?, ?, ?, ?)"


async def write(conn: aiosqlite.Connection, actor_id: int | None, action: str, target: str | None, now: datetime,
                **detail) -> None:
    """Record an action inside the transaction that performs it: both happen, or neither."""
    await conn.execute(_INSERT, (iso(now), actor_id, action, target, json.dumps(detail, ensure_ascii=False)))


@dataclass(frozen=True)
class AuditQuery:
    """Which entries: one actor (a user id, or SYSTEM), an action ("case.answered") or its group ("case"), a
    period [since, until), and none written after `up_to` (the newest id when a listing began, so that its pages
    stay put while new entries arrive)."""

    actor: int | str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    up_to: int | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["1 = 1"], []
        if self.actor == SYSTEM:
            clauses.append("a.actor_id IS NULL")
        elif self.actor is not None:
            clauses.append("a.actor_id = ?")
            params.append(self.actor)
        if self.action:
            group = self.action + "."
            clauses.append("(a.action = ? OR substr(a.action, 1, ?) = ?)")
            params += [self.action, len(group), group]
        if self.since:
            clauses.append("a.at >= ?")
            params.append(iso(self.since))
        if self.until:
            clauses.append("a.at < ?")
            params.append(iso(self.until))
        if self.up_to is not None:
            clauses.append("a.id <= ?")
            params.append(self.up_to)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class LogLine:
    """An audit entry as staff read it: with who the actor is now (None for the system, or an erased person)."""

    id: int
    at: str
    actor_id: int | None
    actor_name: str | None
    actor_role: str | None
    action: str
    target: str | None
    detail: dict


@dataclass(frozen=True)
class Actor:
    id: int
    name: str | None
    role: str


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor_id: int | None, action: str, target: str | None, now: datetime,
                     **detail) -> None:
        await self.db.execute(_INSERT, (iso(now), actor_id, action, target, json.dumps(detail, ensure_ascii=False)))

    async def by_actor(self, actor_id: int, limit: int = 1000) -> list[AuditEntry]:
        rows = await self.db.fetchall(
            "SELECT at, actor_id, action, target, detail FROM audit_log WHERE actor_id = ? ORDER BY id DESC LIMIT ?",
            (actor_id, limit),
        )
        return [AuditEntry(r["at"], r["actor_id"], r["action"], r["target"], json.loads(r["detail"])) for r in rows]

    async def recent(self, limit: int = 100) -> list[AuditEntry]:
        rows = await self.db.fetchall(
            "SELECT at, actor_id, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry(r["at"], r["actor_id"], r["action"], r["target"], json.loads(r["detail"])) for r in rows]

    async def last_id(self) -> int:
        row = await self.db.fetchone("SELECT max(id) FROM audit_log")
        return row[0] or 0

    async def count(self, query: AuditQuery) -> int:
        where, params = query.where()
        return (await self.db.fetchone(f"SELECT count(*) FROM audit_log a WHERE {where}", params))[0]

    async def search(self, query: AuditQuery, offset: int = 0, limit: int = 10) -> tuple[list[LogLine], int]:
        """A page of matching entries, newest first, and how many match in all."""
        where, params = query.where()
        total = await self.count(query)
        rows = await self.db.fetchall(
            "SELECT a.id, a.at, a.actor_id, u.display_name, u.role, a.action, a.target, a.detail"
            f" FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id WHERE {where}"
            " ORDER BY a.id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        return [LogLine(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows], total

    async def actors(self, limit: int = 200) -> list[Actor]:
        """The people who appear in the log, the most recently active first."""
        rows = await self.db.fetchall(
            "SELECT a.actor_id, u.display_name, u.role, max(a.id) AS latest FROM audit_log a"
            " JOIN users u ON u.id = a.actor_id GROUP BY a.actor_id, u.display_name, u.role"
            " ORDER BY latest DESC LIMIT ?", (limit,))
        return [Actor(r[0], r[1], r[2]) for r in rows]

    async def actions(self) -> list[str]:
        rows = await self.db.fetchall("SELECT DISTINCT action FROM audit_log ORDER BY action")
        return [r[0] for r in rows]
