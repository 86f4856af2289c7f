"""The web chat's history: each chat's messages as its page shows them, kept across restarts.

One process numbers a chat's versions itself (`add`, `update`). Several workers on one PostgreSQL take them from the
database instead (`append`, `revise`), one writer of a chat at a time, and signal each change as it commits
(storage/notify.py: WEB), so that a worker holding the chat's open page reads what it has not pushed yet.
"""

from __future__ import annotations

import json
from datetime import datetime

from storage.clock import iso
from storage.db import Database
from storage.notify import WEB

# With a hash of the chat, the key of the transaction lock that makes one writer of a chat's versions at a time (the
# two-number keys are a space apart from the one-number keys other locks use).
CHAT_LOCK = 0x77656263  # "webc"
_UPDATE = "UPDATE web_messages SET v = ?, body = ? WHERE channel = ? AND chat_id = ? AND id = ?"


class WebMessageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, channel: str, chat_id: str, message: dict, now: datetime, keep: int) -> None:
        """Append a message (its `v` is its place in the chat) and forget the ones beyond the newest `keep`."""
        async with self.db.tx() as conn:
            await _insert(conn, channel, chat_id, message, now, keep)

    async def append(self, channel: str, chat_id: str, message: dict, now: datetime, keep: int) -> None:
        """PostgreSQL, several workers: `add`, the message's `v` the chat's next version, the change signalled."""
        async with self.db.tx() as conn:
            message["v"] = await _next_version(conn, channel, chat_id)
            await _insert(conn, channel, chat_id, message, now, keep)
            await _signal(conn, channel, message["v"], chat_id)

    async def revise(self, channel: str, chat_id: str, message: dict) -> bool:
        """PostgreSQL, several workers: `update`, the message's `v` the chat's next version, the change signalled
        (nothing is, when the message is no longer in the history)."""
        async with self.db.tx() as conn:
            message["v"] = await _next_version(conn, channel, chat_id)
            cur = await conn.execute(_UPDATE, (message["v"], _dump(message), channel, chat_id, message["id"]))
            if not cur.rowcount:
                return False
            await _signal(conn, channel, message["v"], chat_id)
        return True

    async def update(self, channel: str, chat_id: str, message: dict) -> bool:
        """Whether the message was still in the history (the newest `keep` of its chat) to be changed."""
        return bool(await self.db.returning(f"{_UPDATE} RETURNING id",
                                            (message["v"], _dump(message), channel, chat_id, message["id"])))

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


async def _insert(conn, channel: str, chat_id: str, message: dict, now: datetime, keep: int) -> None:
    await conn.execute(
        "INSERT INTO web_messages (channel, chat_id, pos, id, v, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (channel, chat_id, message["v"], message["id"], message["v"], _dump(message), iso(now)))
    await conn.execute(
        "DELETE FROM web_messages WHERE channel = ? AND chat_id = ? AND pos <= ("
        "SELECT pos FROM web_messages WHERE channel = ? AND chat_id = ? ORDER BY pos DESC LIMIT 1 OFFSET ?)",
        (channel, chat_id, channel, chat_id, keep))


async def _next_version(conn, channel: str, chat_id: str) -> int:
    await conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (CHAT_LOCK, f"{channel} {chat_id}"))
    async with conn.execute("SELECT coalesce(max(v), 0) + 1 FROM web_messages WHERE channel = ? AND chat_id = ?",
                            (channel, chat_id)) as cursor:
        return (await cursor.fetchone())[0]


async def _signal(conn, channel: str, v: int, chat_id: str) -> None:
    """Sent when the transaction commits, in commit order: a chat's versions reach the listeners in order."""
    await conn.execute("SELECT pg_notify(?, ?)", (WEB, f"{channel} {v} {chat_id}"))


def _dump(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
