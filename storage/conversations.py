"""Conversation state per (channel, chat): which flow, which step, and the draft so far."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from storage.clock import iso
from storage.db import Database


@dataclass
class Conversation:
    flow: str
    step: str
    data: dict = field(default_factory=dict)
    unasked: bool = False  # the step's question could not be delivered: ask it again first


class ConversationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, channel: str, chat_id: str) -> Conversation | None:
        r = await self.db.fetchone("SELECT flow, step, data, unasked FROM conversations"
                                   " WHERE channel = ? AND chat_id = ?", (channel, chat_id))
        return Conversation(r["flow"], r["step"], json.loads(r["data"]), bool(r["unasked"])) if r else None

    async def get_and_shown(self, channel: str, chat_id: str) -> tuple[Conversation | None, list[tuple[str, str]]]:
        """`get` and `shown` in one read: on a channel without buttons, every typed text needs both."""
        r = await self.db.fetchone(
            "SELECT c.flow, c.step, c.data, c.unasked, o.options FROM (SELECT ? AS channel, ? AS chat_id) AS k"
            " LEFT JOIN conversations AS c ON c.channel = k.channel AND c.chat_id = k.chat_id"
            " LEFT JOIN chat_options AS o ON o.channel = k.channel AND o.chat_id = k.chat_id", (channel, chat_id))
        conversation = Conversation(r["flow"], r["step"], json.loads(r["data"]), bool(r["unasked"])) \
            if r["flow"] is not None else None
        return conversation, [tuple(pair) for pair in json.loads(r["options"])] if r["options"] else []

    async def save(self, channel: str, chat_id: str, conversation: Conversation, now: datetime,
                   applied: int | None = None) -> None:
        """`applied`: the inbound journal entry that moved the conversation, marked so in the same transaction
        (replaying it after a crash would apply it twice: a toggle would flip back)."""
        async with self.db.tx() as conn:
            await conn.execute(
                "INSERT INTO conversations (channel, chat_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(channel, chat_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
                " data = excluded.data, updated_at = excluded.updated_at, unasked = 0",
                (channel, chat_id, conversation.flow, conversation.step,
                 json.dumps(conversation.data, ensure_ascii=False), iso(now)),
            )
            await _applied(conn, applied, now)

    async def clear(self, channel: str, chat_id: str, now: datetime | None = None,
                    applied: int | None = None) -> None:
        async with self.db.tx() as conn:
            await conn.execute("DELETE FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id))
            await _applied(conn, applied, now)

    async def mark_unasked(self, channel: str, chat_id: str) -> None:
        await self.db.execute("UPDATE conversations SET unasked = 1 WHERE channel = ? AND chat_id = ?",
                              (channel, chat_id))

    async def shown(self, channel: str, chat_id: str) -> list[tuple[str, str]]:
        """The options last shown to a chat as numbers (label, data)."""
        r = await self.db.fetchone("SELECT options FROM chat_options WHERE channel = ? AND chat_id = ?",
                                   (channel, chat_id))
        return [tuple(pair) for pair in json.loads(r[0])] if r else []

    async def show(self, channel: str, chat_id: str, options: list[tuple[str, str]], now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO chat_options (channel, chat_id, options, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(channel, chat_id) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at",
            (channel, chat_id, json.dumps(options, ensure_ascii=False), iso(now)))

    async def menu(self, channel: str, chat_id: str) -> str | None:
        """The command menu the chat was given of its own ("role:language"); None: the default one."""
        r = await self.db.fetchone("SELECT menu FROM chat_menus WHERE channel = ? AND chat_id = ?", (channel, chat_id))
        return r[0] if r else None

    async def set_menu(self, channel: str, chat_id: str, menu: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO chat_menus (channel, chat_id, menu, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(channel, chat_id) DO UPDATE SET menu = excluded.menu, updated_at = excluded.updated_at",
            (channel, chat_id, menu, iso(now)))


async def _applied(conn, entry_id: int | None, now: datetime | None) -> None:
    if entry_id is not None:
        await conn.execute("UPDATE inbound_journal SET applied_at = ? WHERE id = ?", (iso(now), entry_id))
