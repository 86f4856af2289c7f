"""The inbound journal: updates as received, before the platform is told so, until they are handled."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from storage.clock import iso
from storage.db import Database

log = logging.getLogger(__name__)
SOON_SECONDS = 0.01  # how long a `done_soon` mark waits for the journal's next write to carry it
DONE = "UPDATE inbound_journal SET done_at = ? WHERE id IN ({})"


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
        # Done marks not yet on their way to the database, and what their write will come to; see `done`.
        self._marks: list[int] = []
        self._written: asyncio.Future | None = None
        self._writing = asyncio.Lock()
        # `done_soon` marks waiting for a write to carry them, and the timer that writes them alone.
        self._soon: list[int] = []
        self._soon_at: datetime | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task] = set()

    async def accept(self, channel: str, items: list[tuple[str, str, str]], now: datetime) -> list[Entry]:
        """Journal (update id, chat id, event) items in one statement, so in one transaction and one trip to the
        database; returns those not seen before, in order (a redelivered update is already there and is left
        out)."""
        if not items:
            return []
        received = iso(now)
        insert = ("INSERT INTO inbound_journal (channel, update_id, chat_id, event, received_at) VALUES "
                  + ", ".join(["(?, ?, ?, ?, ?)"] * len(items))
                  + " ON CONFLICT (channel, update_id) DO NOTHING RETURNING id, update_id",
                  [value for update_id, chat_id, event in items
                   for value in (channel, update_id, chat_id, event, received)])
        if self._soon:  # the done marks waiting go in the same transaction: no commit of their own
            marks = self._take_soon()
            try:
                rows = (await self.db.atomic([(DONE.format(_params(marks)), (iso(self._soon_at or now), *marks)),
                                              insert]))[1]
            except BaseException:
                self._soon[:0] = marks
                raise
        else:
            rows = await self.db.returning(*insert)
        new = {r["update_id"]: r["id"] for r in rows}
        fresh = [Entry(new.pop(update_id), channel, chat_id, event) for update_id, chat_id, event in items
                 if update_id in new]  # popped: an update twice in one batch was inserted once
        return sorted(fresh, key=lambda entry: entry.id)

    async def done(self, entry_id: int, now: datetime) -> None:
        """Mark an entry done; returns once the mark is committed. Marks that come while another is being written
        go together in the next statement (group commit): under load one trip to the database serves many."""
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        self._marks.append(entry_id)
        async with self._writing:
            if written is self._written:  # nobody took this batch yet: write it, for everyone in it
                marks, self._marks, self._written = self._marks, [], None
                try:
                    await self.db.execute(DONE.format(_params(marks)), (iso(now), *marks))
                except BaseException as err:
                    written.set_exception(err)
                    written.exception()  # retrieved: the others in the batch raise it, or nobody is left to
                    raise
                written.set_result(None)
        await written

    def done_soon(self, entry_id: int, now: datetime) -> None:
        """Mark an entry done without waiting for a commit of its own: the mark goes in the transaction of the
        journal's next `accept` (under load, the next update's), or alone after SOON_SECONDS. Only where one
        process handles every chat (with several workers a chat's next update is read by its mark: `done`). A crash
        in that instant leaves the entry to the replay, as a crash between the answer and `done` does."""
        self._soon.append(entry_id)
        self._soon_at = now
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SOON_SECONDS, self._write_soon)

    async def flush(self) -> None:
        """Write the `done_soon` marks still waiting (at a stop), after the timer's write already under way."""
        if self._flushing:  # it took its marks: returning before it is written would let a stop cut it
            await asyncio.gather(*self._flushing, return_exceptions=True)
        await self._write_waiting()

    async def _write_waiting(self) -> None:
        if self._soon:
            marks = self._take_soon()
            try:
                await self.db.execute(DONE.format(_params(marks)), (iso(self._soon_at), *marks))
            except BaseException:
                self._soon[:0] = marks
                raise

    def _take_soon(self) -> list[int]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        marks, self._soon = self._soon, []
        return marks

    def _write_soon(self) -> None:
        self._timer = None

        async def write() -> None:
            try:
                await self._write_waiting()
            except Exception as err:  # kept: the journal's next write carries them (the next accept, or the next
                # mark's timer); at worst a stop's flush, or the replay after a crash
                log.warning("done marks of the inbound journal not written yet: %s", err)

        task = asyncio.get_running_loop().create_task(write())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def pending(self) -> list[Entry]:
        await self.flush()
        rows = await self.db.fetchall("SELECT id, channel, chat_id, event, applied_at IS NOT NULL AS applied"
                                      " FROM inbound_journal WHERE done_at IS NULL ORDER BY id")
        return [Entry(r["id"], r["channel"], r["chat_id"], r["event"], bool(r["applied"])) for r in rows]


def _params(values: list) -> str:
    return ", ".join("?" * len(values))
