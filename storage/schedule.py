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
        that died before finishing. False when it is done, or being done right now.

        One statement, so that two workers claiming at once on PostgreSQL cannot both see the key free (a read
        then a write, each its own snapshot, could): the second waits for the first's row and finds it claimed."""
        rows = await self.db.returning(
            "INSERT INTO scheduled_runs (key, claimed_at) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET claimed_at = excluded.claimed_at"
            " WHERE scheduled_runs.done_at IS NULL AND scheduled_runs.claimed_at <= ? RETURNING key",
            (key, iso(now), iso(now - stale_after)))
        return bool(rows)

    async def complete(self, key: str, now: datetime) -> None:
        await self.db.execute("UPDATE scheduled_runs SET done_at = ? WHERE key = ?", (iso(now), key))

    async def release(self, key: str) -> None:
        """The work failed before anything was sent: let the next tick try again."""
        await self.db.execute("DELETE FROM scheduled_runs WHERE key = ? AND done_at IS NULL", (key,))

    async def done(self, key: str) -> bool:
        row = await self.db.fetchone("SELECT done_at FROM scheduled_runs WHERE key = ?", (key,))
        return row is not None and row[0] is not None
