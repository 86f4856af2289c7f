"""Web chat sessions: which chat a browser's cookie opens, until when."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.clock import iso, parse
from storage.db import Database


@dataclass(frozen=True)
class WebSession:
    chat_id: str
    seen_at: datetime
    expires_at: datetime
    persona: str | None = None  # demo only: the role being played
    view: str = "web"  # demo only: the web chat or its text-only view


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebSessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, token: str, chat_id: str, now: datetime, ttl: timedelta) -> WebSession:
        await self.db.execute(
            "INSERT INTO web_sessions (token_hash, chat_id, created_at, seen_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (hash_token(token), chat_id, iso(now), iso(now), iso(now + ttl)),
        )
        return WebSession(chat_id, now, now + ttl)

    async def get(self, token: str, now: datetime) -> WebSession | None:
        """The session of a cookie, unless it is unknown or expired."""
        r = await self.db.fetchone(
            "SELECT chat_id, seen_at, expires_at, persona, view FROM web_sessions WHERE token_hash = ?",
            (hash_token(token),))
        if r is None or parse(r["expires_at"]) <= now:
            return None
        return WebSession(r["chat_id"], parse(r["seen_at"]), parse(r["expires_at"]), r["persona"], r["view"])

    async def play(self, token: str, persona: str | None, view: str) -> None:
        """Demo only: remember the role and view a session switched to, so a restart keeps them."""
        await self.db.execute("UPDATE web_sessions SET persona = ?, view = ? WHERE token_hash = ?",
                              (persona, view, hash_token(token)))

    async def touch(self, token: str, now: datetime, ttl: timedelta) -> None:
        await self.db.execute("UPDATE web_sessions SET seen_at = ?, expires_at = ? WHERE token_hash = ?",
                              (iso(now), iso(now + ttl), hash_token(token)))

    async def delete_expired(self, now: datetime) -> None:
        await self.db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (iso(now),))
