"""Notices waiting to be delivered (migration 0011): written when the event that caused them is handled,
deleted once delivered."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from storage.clock import iso
from storage.db import Database


async def keep(conn: aiosqlite.Connection, notices: list[tuple[int, str]], now: datetime) -> list[int]:
    """Keep (recipient user id, notice JSON) items inside the transaction of the event that causes them; their
    ids, in order."""
    ids = []
    for user_id, notice in notices:
        cur = await conn.execute("INSERT INTO notice_outbox (user_id, notice, created_at) VALUES (?, ?, ?)",
                                 (user_id, notice, iso(now)))
        ids.append(cur.lastrowid)
    return ids


class NoticeRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, notices: list[tuple[int, str]], now: datetime) -> list[int]:
        """Keep (recipient user id, notice JSON) items; their ids, in order."""
        async with self.db.tx() as conn:
            return await keep(conn, notices, now)

    async def pending(self) -> list[tuple[int, int, str]]:
        """(id, recipient user id, notice JSON), oldest first."""
        rows = await self.db.fetchall("SELECT id, user_id, notice FROM notice_outbox ORDER BY id")
        return [(r["id"], r["user_id"], r["notice"]) for r in rows]

    async def done(self, notice_id: int) -> None:
        await self.db.execute("DELETE FROM notice_outbox WHERE id = ?", (notice_id,))
