"""The inbound journal: updates as received, before the platform is told so, until they are handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import iso
from storage.db import Database


@dataclass(frozen=True)
class Entry:
    id: int
    channel: str
    chat_id: str
    event: str  # JSON, made and read by bot/intake.py
    applied: bool = False  # its change of the conversation is saved; only its answer may be missing


class JournalRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def accept(self, channel: str, items: list[tuple[str, str, str]], now: datetime) -> list[Entry]:
        """Journal (update id, chat id, event) items in one statement, so in one transaction and one trip to the
        database; returns those not seen before, in order (a redelivered update is already there and is left
        out)."""
        if not items:
            return []
        received = iso(now)
        rows = await self.db.returning(
            "INSERT INTO inbound_journal (channel, update_id, chat_id, event, received_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(items))
            + " ON CONFLICT (channel, update_id) DO NOTHING RETURNING id, update_id",
            [value for update_id, chat_id, event in items for value in (channel, update_id, chat_id, event, received)])
        new = {r["update_id"]: r["id"] for r in rows}
        fresh = [Entry(new.pop(update_id), channel, chat_id, event) for update_id, chat_id, event in items
                 if update_id in new]  # popped: an update twice in one batch was inserted once
        return sorted(fresh, key=lambda entry: entry.id)

    async def done(self, entry_id: int, now: datetime) -> None:
        await self.db.execute("UPDATE inbound_journal SET done_at = ? WHERE id = ?", (iso(now), entry_id))

    async def pending(self) -> list[Entry]:
        rows = await self.db.fetchall("SELECT id, channel, chat_id, event, applied_at IS NOT NULL AS applied"
                                      " FROM inbound_journal WHERE done_at IS NULL ORDER BY id")
        return [Entry(r["id"], r["channel"], r["chat_id"], r["event"], bool(r["applied"])) for r in rows]
