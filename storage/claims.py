"""Which worker does what, when several run on one PostgreSQL (issue 19): PostgreSQL session advisory locks, so
that a worker that dies (its session ends) lets go of all it held.

- A chat: the worker holding its lock is the only one handling its journalled updates (bot/drainers.py).
- Polling a channel: only one worker may long-poll a platform for the bot's updates.

The locks are held on a connection of their own: taking and letting go of a chat's lock, twice per update, then
never waits behind the writer's commits (which wait for the disk), and its session asks the server to probe the
connection, so that the locks of a machine that vanished (no process left to close its sockets) go within half a
minute (storage/leader.py's keepalives), not after the system's two hours. A lock's key is a 64-bit hash of a name
computed by the server, so every worker computes the same one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from storage.clock import iso
from storage.db import Database
from storage.journal import Entry

UNDONE = ("SELECT id, channel, chat_id, event, applied_at IS NOT NULL AS applied FROM inbound_journal"
          " WHERE channel = ? AND chat_id = ? AND done_at IS NULL ORDER BY id")


class Claims:
    def __init__(self, db: Database) -> None:
        from storage.pg import KEEPALIVES, Connection, probed  # psycopg is loaded only where PostgreSQL is used

        self.db = db
        # Connects at its first use, and again after a loss; probed both ways, as the scheduler leader's connection.
        self.conn = Connection(probed(db.path), KEEPALIVES)
        self._lock = asyncio.Lock()  # one call at a time: two connecting at once would make two sessions

    @property
    def session(self) -> int:
        """Changes when the connection was made again: the locks taken before went with the old one."""
        return self.conn.sessions

    async def close(self) -> None:
        """Every lock still held goes with the session."""
        async with self._lock:
            await self.conn.close()

    async def take_chat(self, channel: str, chat_id: str) -> list[Entry] | None:
        """The chat's lock and then its updates not done, in the order they came (migrations/pg/0027: one round
        trip); None when another worker holds it."""
        rows = await self._rows("SELECT taken, id, event, applied FROM take_chat(?, ?, ?)",
                                (f"chat:{channel}:{chat_id}", channel, chat_id))
        if rows and not rows[0]["taken"]:
            return None
        return [Entry(r["id"], channel, chat_id, r["event"], r["applied"]) for r in rows]

    async def release_chat(self, channel: str, chat_id: str) -> bool:
        """Let the chat's lock go; whether updates of it are left, read after letting go (see bot/drainers.py)."""
        [row] = await self._rows("SELECT release_chat(?, ?, ?)", (f"chat:{channel}:{chat_id}", channel, chat_id))
        return bool(row[0])

    async def undone(self, channel: str, chat_id: str) -> list[Entry]:
        """The chat's updates not done, for the holder of its lock, in the order they came."""
        rows = await self.db.fetchall(UNDONE, (channel, chat_id))
        return [Entry(r["id"], r["channel"], r["chat_id"], r["event"], bool(r["applied"])) for r in rows]

    async def stranded(self, before: datetime) -> list[tuple[str, str]]:
        """Chats with updates received before `before` and not done: their worker may have died holding them."""
        rows = await self.db.fetchall("SELECT DISTINCT channel, chat_id FROM inbound_journal"
                                      " WHERE done_at IS NULL AND received_at < ?", (iso(before),))
        return [(r[0], r[1]) for r in rows]

    async def take_polling(self, channel: str) -> bool:
        """The right to long-poll the channel's platform, held for as long as this worker runs."""
        return await self._take(f"poller:{channel}")

    async def _take(self, name: str) -> bool:
        [row] = await self._rows("SELECT pg_try_advisory_lock(hashtextextended(?, 0))", (name,))
        return bool(row[0])

    async def _rows(self, sql: str, params: tuple) -> list:
        async with self._lock:
            return await self.conn.execute_fetchall(sql, params)
