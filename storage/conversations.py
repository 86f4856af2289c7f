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
        return conversation_of(r) if r else None

    async def save(self, channel: str, chat_id: str, conversation: Conversation | None, now: datetime,
                   applied: int | None = None, options: list[tuple[str, str]] | None = None) -> None:
        """The conversation as it now is (None: ended), in one transaction (and one trip to the database) with
        `applied`, the inbound journal entry that moved it, marked so (replaying it after a crash would apply it
        twice: a toggle would flip back), and with `options`, the options its answer shows as numbers (`show`)."""
        if conversation is None:
            statement = "DELETE FROM conversations WHERE channel = ? AND chat_id = ?"
            params: tuple = (channel, chat_id)
        else:
            statement = (
                "INSERT INTO conversations (channel, chat_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(channel, chat_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
                " data = excluded.data, updated_at = excluded.updated_at, unasked = 0")
            params = (channel, chat_id, conversation.flow, conversation.step,
                      json.dumps(conversation.data, ensure_ascii=False), iso(now))
        statements = [(statement, params)]
        if applied is not None:
            statements.append((APPLIED, (iso(now), applied)))
        if options is not None:
            statements.append((SHOW, _show_params(channel, chat_id, options, now)))
        await self.db.atomic(statements)

    async def mark_unasked(self, channel: str, chat_id: str) -> None:
        await self.db.execute("UPDATE conversations SET unasked = 1 WHERE channel = ? AND chat_id = ?",
                              (channel, chat_id))

    async def shown(self, channel: str, chat_id: str) -> list[tuple[str, str]]:
        """The options last shown to a chat as numbers (label, data)."""
        r = await self.db.fetchone("SELECT options FROM chat_options WHERE channel = ? AND chat_id = ?",
                                   (channel, chat_id))
        return shown_of(r[0] if r else None)

    async def show(self, channel: str, chat_id: str, options: list[tuple[str, str]], now: datetime) -> None:
        """Keep the options shown to a chat as numbers (label, data), so that the number typed next means what it
        showed."""
        await self.db.execute(SHOW, _show_params(channel, chat_id, options, now))

    async def set_menu(self, channel: str, chat_id: str, menu: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO chat_menus (channel, chat_id, menu, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(channel, chat_id) DO UPDATE SET menu = excluded.menu, updated_at = excluded.updated_at",
            (channel, chat_id, menu, iso(now)))


APPLIED = "UPDATE inbound_journal SET applied_at = ? WHERE id = ?"
SHOW = ("INSERT INTO chat_options (channel, chat_id, options, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(channel, chat_id) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at")


def _show_params(channel: str, chat_id: str, options: list[tuple[str, str]], now: datetime) -> tuple:
    return channel, chat_id, json.dumps(options, ensure_ascii=False), iso(now)


def conversation_of(r) -> Conversation:
    """A row's flow, step, data and unasked as a Conversation."""
    return Conversation(r["flow"], r["step"], json.loads(r["data"]), bool(r["unasked"]))


def shown_of(options: str | None) -> list[tuple[str, str]]:
    """chat_options.options as (label, data) pairs; none kept: none shown."""
    return [tuple(pair) for pair in json.loads(options)] if options else []
