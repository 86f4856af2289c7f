"""People: identity per channel, profile, followed topics, consent history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage import surveys
from storage.clock import iso
from storage.db import Database

PURPOSES = ("news", "opinions", "sensitive")


@dataclass(frozen=True)
class User:
    id: int
    channel: str
    external_id: str
    chat_id: str | None
    display_name: str | None
    language: str
    role: str
    unit_name: str | None
    locality_id: int | None
    onboarded: bool
    news_enabled: bool
    reachable: bool
    created_at: str
    linked_to: int | None = None  # the account that holds this person's data (storage/links.py)
    consented: bool = True  # accepted a purpose once: until then neither their name nor their language is kept

    @property
    def is_staff(self) -> bool:
        return self.role in ("cadre", "admin")


@dataclass(frozen=True)
class Consent:
    purpose: str
    granted: bool
    text_version: str
    at: str


_COLUMNS = ("id, channel, external_id, chat_id, display_name, language, role, unit_name, locality_id,"
            " onboarded, news_enabled, reachable, created_at, linked_to, consented")


def _row(r) -> User:
    return User(r["id"], r["channel"], r["external_id"], r["chat_id"], r["display_name"], r["language"],
                r["role"], r["unit_name"], r["locality_id"], bool(r["onboarded"]), bool(r["news_enabled"]),
                bool(r["reachable"]), r["created_at"], r["linked_to"], bool(r["consented"]))


class UserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> User | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _row(r) if r else None

    async def find(self, channel: str, external_id: str) -> User | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE channel = ? AND external_id = ?",
                                   (channel, external_id))
        return _row(r) if r else None

    async def ensure(self, channel: str, external_id: str, chat_id: str, display_name: str | None,
                     language: str | None, now: datetime) -> User:
        """The person behind a platform account, created on first contact; an account linked to another
        (storage/links.py) is the person of that other account. Without a `language` (someone who just wrote)
        the row holds nothing but the chat to answer, news off, until `identify`."""
        user = await self.find(channel, external_id)
        if user is not None:
            if user.chat_id != chat_id:
                await self.db.execute("UPDATE users SET chat_id = ?, updated_at = ? WHERE id = ?",
                                      (chat_id, iso(now), user.id))
                user = await self.get(user.id)
            return await self.get(user.linked_to) if user.linked_to is not None else user
        await self.db.execute(
            "INSERT INTO users (channel, external_id, chat_id, display_name, language, news_enabled, consented,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel, external_id) DO NOTHING",
            (channel, external_id, chat_id, display_name, language or "vi", int(language is not None),
             int(language is not None), iso(now), iso(now)),
        )
        return await self.find(channel, external_id)

    async def identify(self, user_id: int, display_name: str | None, language: str, now: datetime) -> User:
        """Keep the person's platform name and language: they accepted a purpose, or became staff."""
        await self.db.execute("UPDATE users SET display_name = ?, language = ?, consented = 1, updated_at = ?"
                              " WHERE id = ?", (display_name, language, iso(now), user_id))
        return await self.get(user_id)

    async def update(self, user_id: int, now: datetime, **fields) -> User:
        allowed = {"language", "role", "unit_name", "locality_id", "onboarded", "news_enabled", "reachable",
                   "display_name"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
                              (*fields.values(), iso(now), user_id))
        return await self.get(user_id)

    async def set_reachable(self, channel: str, chat_id: str, reachable: bool, now: datetime) -> None:
        await self.db.execute("UPDATE users SET reachable = ?, updated_at = ? WHERE channel = ? AND chat_id = ?",
                              (int(reachable), iso(now), channel, chat_id))

    async def topic_ids(self, user_id: int) -> set[int]:
        rows = await self.db.fetchall("SELECT topic_id FROM user_topics WHERE user_id = ?", (user_id,))
        return {r[0] for r in rows}

    async def set_topics(self, user_id: int, topic_ids: set[int]) -> None:
        async with self.db.tx() as conn:
            await conn.execute("DELETE FROM user_topics WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM notice_outbox WHERE user_id = ?", (user_id,))
            await conn.executemany("INSERT INTO user_topics (user_id, topic_id) VALUES (?, ?)",
                                   [(user_id, t) for t in sorted(topic_ids)])

    async def add_topic(self, user_id: int, topic_id: int) -> None:
        await self.db.execute("INSERT OR IGNORE INTO user_topics (user_id, topic_id) VALUES (?, ?)",
                              (user_id, topic_id))

    async def record_consent(self, user_id: int, purpose: str, granted: bool, text_version: str,
                             now: datetime) -> None:
        if purpose not in PURPOSES:
            raise ValueError(purpose)
        await self.db.execute(
            "INSERT INTO consents (user_id, purpose, granted, text_version, at) VALUES (?, ?, ?, ?, ?)",
            (user_id, purpose, int(granted), text_version, iso(now)),
        )

    async def consents(self, user_id: int) -> dict[str, Consent]:
        """The consent in force per purpose (absent: never asked)."""
        rows = await self.db.fetchall(
            "SELECT purpose, granted, text_version, at FROM consents WHERE id IN"
            " (SELECT max(id) FROM consents WHERE user_id = ? GROUP BY purpose)",
            (user_id,),
        )
        return {r["purpose"]: Consent(r["purpose"], bool(r["granted"]), r["text_version"], r["at"]) for r in rows}

    async def consent_history(self, user_id: int) -> list[Consent]:
        rows = await self.db.fetchall(
            "SELECT purpose, granted, text_version, at FROM consents WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [Consent(r["purpose"], bool(r["granted"]), r["text_version"], r["at"]) for r in rows]

    async def staff(self) -> list[User]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM users WHERE role <> 'citizen' AND deleted_at IS NULL ORDER BY role, id")
        return [_row(r) for r in rows]

    async def erase(self, user_id: int, text_version: str, now: datetime) -> None:
        """Delete what identifies the person; keep an anonymous row for statistics.

        The commune (not the village) and the join date stay, consent is withdrawn for every purpose,
        followed topics and any half-finished conversation go. An account linked to this one (the same person
        on another channel) is erased with it, and the link with them.
        """
        async with self.db.tx() as conn:
            async with conn.execute("SELECT id FROM users WHERE id = ? OR linked_to = ? ORDER BY id",
                                    (user_id, user_id)) as cur:
                accounts = [r[0] for r in await cur.fetchall()]
            for account in accounts:
                await self._erase(conn, account, text_version, now)

    async def _erase(self, conn, user_id: int, text_version: str, now: datetime) -> None:
        async with conn.execute("SELECT channel, chat_id, locality_id FROM users WHERE id = ?", (user_id,)) as cur:
            row = await cur.fetchone()
        commune = None
        if row["locality_id"] is not None:
            async with conn.execute(
                "SELECT CASE WHEN level <= 1 THEN id ELSE parent_id END FROM localities WHERE id = ?",
                (row["locality_id"],),
            ) as cur:
                commune = (await cur.fetchone())[0]
        if row["chat_id"] is not None:
            await conn.execute("DELETE FROM conversations WHERE channel = ? AND chat_id = ?",
                               (row["channel"], row["chat_id"]))
            # What they wrote does not wait out the journal's few days (the erasure's own click stays
            # until handled).
            await conn.execute("DELETE FROM inbound_journal WHERE channel = ? AND chat_id = ?"
                               " AND done_at IS NOT NULL", (row["channel"], row["chat_id"]))
            await conn.execute("DELETE FROM chat_options WHERE channel = ? AND chat_id = ?",
                               (row["channel"], row["chat_id"]))
        await conn.execute("DELETE FROM user_topics WHERE user_id = ?", (user_id,))
        await conn.execute("DELETE FROM case_drafts WHERE user_id = ?", (user_id,))
        await conn.execute("DELETE FROM link_codes WHERE user_id = ?", (user_id,))
        await conn.execute("DELETE FROM cadre_localities WHERE user_id = ?", (user_id,))
        await conn.execute("DELETE FROM cadre_topics WHERE user_id = ?", (user_id,))
        await surveys.erase(conn, user_id)
        await conn.executemany(
            "INSERT INTO consents (user_id, purpose, granted, text_version, at) VALUES (?, ?, 0, ?, ?)",
            [(user_id, purpose, text_version, iso(now)) for purpose in PURPOSES],
        )
        await conn.execute(
            "UPDATE users SET external_id = 'deleted:' || id, chat_id = NULL, display_name = NULL,"
            " role = 'citizen', unit_name = NULL, locality_id = ?, news_enabled = 0, onboarded = 0,"
            " linked_to = NULL, deleted_at = ?, updated_at = ? WHERE id = ?",
            (commune, iso(now), iso(now), user_id),
        )
