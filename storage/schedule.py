"""Idempotency keys for scheduled sends: claim a key once, mark it done when the work is delivered."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.clock import iso
from storage.db import Database


class ScheduleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, key: str, now: datetime, stale_after: timedelta = timedelta(minutes=10)) -> bool:
        """True if this caller should do the work of `key`: never claimed, or claimed long ago by a run
        that died before finishing. False when it is done, or being done right now."""
        async with self.db.tx() as conn:
            async with conn.execute("SELECT claimed_at, done_at FROM scheduled_runs WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            if row is not None and (row["done_at"] is not None or row["claimed_at"] > iso(now - stale_after)):
                return False
            await conn.execute(
                "INSERT INTO scheduled_runs (key, claimed_at) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET claimed_at = excluded.claimed_at", (key, iso(now)))
            return True

    async def complete(self, key: str, now: datetime) -> None:
        await self.db.execute("UPDATE scheduled_runs SET done_at = ? WHERE key = ?", (iso(now), key))

    async def release(self, key: str) -> None:
        """The work failed before anything was sent: let the next tick try again."""
        await self.db.execute("DELETE FROM scheduled_runs WHERE key = ? AND done_at IS NULL", (key,))

    async def done(self, key: str) -> bool:
        row = await self.db.fetchone("SELECT done_at FROM scheduled_runs WHERE key = ?", (key,))
        return row is not None and row[0] is not None
