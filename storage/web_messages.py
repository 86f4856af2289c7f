"""The web chat's history: each chat's messages as its page shows them, kept across restarts."""

from __future__ import annotations

import json
from datetime import datetime

from storage.clock import iso
from storage.db import Database


class WebMessageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, channel: str, chat_id: str, message: dict, now: datetime, keep: int) -> None:
        """Append a message (its `v` is its place in the chat) and forget the ones beyond the newest `keep`."""
        async with self.db.tx() as conn:
            await conn.execute(
                "INSERT INTO web_messages (channel, chat_id, pos, id, v, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (channel, chat_id, message["v"], message["id"], message["v"], _dump(message), iso(now)))
            await conn.execute(
                "DELETE FROM web_messages WHERE channel = ? AND chat_id = ? AND pos <= ("
                "SELECT pos FROM web_messages WHERE channel = ? AND chat_id = ? ORDER BY pos DESC LIMIT 1 OFFSET ?)",
                (channel, chat_id, channel, chat_id, keep))

    async def update(self, channel: str, chat_id: str, message: dict) -> None:
        await self.db.execute("UPDATE web_messages SET v = ?, body = ? WHERE channel = ? AND chat_id = ? AND id = ?",
                              (message["v"], _dump(message), channel, chat_id, message["id"]))

    async def get(self, channel: str, chat_id: str, message_id: str) -> dict | None:
        row = await self.db.fetchone("SELECT body FROM web_messages WHERE channel = ? AND chat_id = ? AND id = ?",
                                     (channel, chat_id, message_id))
        return json.loads(row["body"]) if row else None

    async def since(self, channel: str, chat_id: str, after: int = 0) -> list[dict]:
        """The chat's messages added or edited after version `after`, oldest first."""
        rows = await self.db.fetchall(
            "SELECT body FROM web_messages WHERE channel = ? AND chat_id = ? AND v > ? ORDER BY pos",
            (channel, chat_id, after))
        return [json.loads(r["body"]) for r in rows]

    async def mentions(self, channel: str, chat_id: str, text: str) -> bool:
        """Whether a message of the chat still holds `text` (a file's name: once erased, it is no longer served)."""
        row = await self.db.fetchone(
            "SELECT 1 FROM web_messages WHERE channel = ? AND chat_id = ? AND body LIKE ? LIMIT 1",
            (channel, chat_id, f"%{text}%"))
        return row is not None

    async def version(self, channel: str, chat_id: str) -> int:
        """The chat's latest version: a restarted server numbers on from it."""
        row = await self.db.fetchone("SELECT max(v) FROM web_messages WHERE channel = ? AND chat_id = ?",
                                     (channel, chat_id))
        return row[0] or 0


def _dump(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
