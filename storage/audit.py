"""The audit log: every cadre and admin action, who did it and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.clock import iso
from storage.db import Database


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
