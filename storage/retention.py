"""Retention: what is kept only for a while, and its end (the scheduled job is bot/retention.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from storage import audit
from storage.cases import OPEN, drop_attachments
from storage.clock import iso
from storage.db import Database
from storage.files import FileStore, unreferenced

BATCH = 200  # cases per transaction
RECIPIENTS_BATCH = 5000  # delivery rows per transaction: a broadcast to a province has tens of thousands
ENDED = "('done', 'cancelled')"  # a broadcast scheduled or still sending needs its rows to deliver once


class RetentionRepo:
    def __init__(self, db: Database, files: FileStore) -> None:
        self.db = db
        self.files = files

    async def sweep(self, *, cases_closed_before: datetime, journal_before: datetime, stale_before: datetime,
                    chats_idle_before: datetime, broadcasts_ended_before: datetime, now: datetime) -> dict[str, int]:
        """End what has been kept long enough; returns the counts (also in the audit log, when there were any).
        Running it again finds nothing more to do.

        A case closed (or answered and left) before `cases_closed_before` no longer names its sender, and its
        files and precise locations go (topic, place, text, dates and status stay). Handled updates in the
        journal before `journal_before` go, so do notices and numbered options older than `stale_before`, expired
        web chat sessions, and the whole history of a web chat with no message since `chats_idle_before`. The
        delivery record of a broadcast that ended (done or cancelled) before `broadcasts_ended_before` goes: who
        it was sent to and how it went (the broadcast itself and its total stay). Files nothing refers to any more
        are deleted from disk after each commit.
        Cases and delivery records go in batches, each its own short transaction, so that the first run on years
        of them never holds the write lock for long."""
        counts: dict[str, int] = defaultdict(int)
        after = 0
        while (after := await self._cases(cases_closed_before, after, counts)) is not None:
            pass
        while await self._recipients(broadcasts_ended_before, counts):
            pass
        async with self.db.tx() as conn:
            for name, statement, before in (
                ("journal", "DELETE FROM inbound_journal WHERE done_at IS NOT NULL AND done_at < ?", journal_before),
                ("notices", "DELETE FROM notice_outbox WHERE created_at < ?", stale_before),
                ("options", "DELETE FROM chat_options WHERE updated_at < ?", stale_before),
                ("sessions", "DELETE FROM web_sessions WHERE expires_at <= ?", now),
                # A chat in use keeps its history, which its page shows; one left idle that long goes whole.
                ("web_messages", "DELETE FROM web_messages WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM"
                 " web_messages m WHERE m.channel = web_messages.channel AND m.chat_id = web_messages.chat_id"
                 " AND m.created_at >= ?)", chats_idle_before),
            ):
                cur = await conn.execute(statement, (iso(before),) * statement.count("?"))
                counts[name] = cur.rowcount
            if any(counts.values()):
                await audit.write(conn, None, "retention.swept", None, now, **counts)
        return dict(counts)

    async def _cases(self, closed_before: datetime, after: int, counts: dict[str, int]) -> int | None:
        """One batch of old cases with ids above `after`: unlinked, files and locations dropped; returns the last
        id done, None once there are no more."""
        digests: set[str] = set()
        async with self.db.tx() as conn:
            async with conn.execute(
                f"SELECT id FROM cases WHERE status NOT IN {OPEN} AND COALESCE(closed_at, answered_at) < ?"
                " AND (user_id IS NOT NULL OR EXISTS (SELECT 1 FROM case_attachments a WHERE a.case_id = cases.id))"
                " AND id > ? ORDER BY id LIMIT ?",
                (iso(closed_before), after, BATCH),
            ) as cur:
                cases = [r[0] for r in await cur.fetchall()]
            if not cases:
                return None
            ids = ",".join("?" * len(cases))
            await drop_attachments(conn, cases, counts, digests)
            await conn.execute(f"UPDATE case_events SET actor_id = NULL WHERE case_id IN ({ids}) AND actor_id ="
                               " (SELECT user_id FROM cases c WHERE c.id = case_events.case_id)", cases)
            cur = await conn.execute(f"UPDATE cases SET user_id = NULL WHERE id IN ({ids}) AND user_id IS NOT NULL",
                                     cases)
            counts["senders"] += cur.rowcount
            free = await unreferenced(conn, digests)
        counts["files_deleted"] += await self.files.delete(free)
        return cases[-1]

    async def _recipients(self, ended_before: datetime, counts: dict[str, int]) -> bool:
        """One batch of the delivery rows of a broadcast that ended before `ended_before`; False once none is left."""
        async with self.db.tx() as conn:
            async with conn.execute(
                f"SELECT id FROM broadcasts b WHERE status IN {ENDED} AND finished_at < ? AND EXISTS"
                " (SELECT 1 FROM broadcast_recipients r WHERE r.broadcast_id = b.id) ORDER BY id LIMIT 1",
                (iso(ended_before),),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            cur = await conn.execute(
                "DELETE FROM broadcast_recipients WHERE broadcast_id = ? AND user_id IN (SELECT user_id FROM"
                " broadcast_recipients WHERE broadcast_id = ? ORDER BY user_id LIMIT ?)",
                (row[0], row[0], RECIPIENTS_BATCH))
            counts["recipients"] += cur.rowcount
        return True
