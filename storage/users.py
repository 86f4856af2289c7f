"""People: identity per channel, profile, followed topics, consent history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage import audit, erasure
from storage.cases import OPEN, drop_attachments
from storage.clock import iso
from storage.conversations import Conversation, conversation_of, shown_of
from storage.db import Database
from storage.files import FileStore, digests_in, unreferenced
from storage.notices import keep
from storage.web_files import owner_of

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
IDENTIFY = "UPDATE users SET display_name = ?, language = ?, consented = 1, updated_at = ? WHERE id = ?"
_COLUMNS_OF_U = ", ".join(f"u.{name.strip()}" for name in _COLUMNS.split(","))


def _row(r) -> User:
    return User(r["id"], r["channel"], r["external_id"], r["chat_id"], r["display_name"], r["language"],
                r["role"], r["unit_name"], r["locality_id"], bool(r["onboarded"]), bool(r["news_enabled"]),
                bool(r["reachable"]), r["created_at"], r["linked_to"], bool(r["consented"]))


class UserRepo:
    def __init__(self, db: Database, files: FileStore) -> None:
        self.db = db
        self.files = files  # erasure deletes the files only its person's records referred to

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
        return await self._ensure(await self.find(channel, external_id), channel, external_id, chat_id, display_name,
                                  language, now)

    async def arrive(self, channel: str, external_id: str, chat_id: str, now: datetime
                     ) -> tuple[User, Conversation | None, list[tuple[str, str]], str | None]:
        """`ensure` for someone who just wrote, with their chat's conversation, the options last shown to it as
        numbers and the command menu it was given (storage/conversations.py; None: the default one): the router
        needs all four at every event, read in one query."""
        r = await self.db.fetchone(
            f"SELECT {_COLUMNS_OF_U}, c.flow, c.step, c.data, c.unasked, o.options, m.menu"
            " FROM (SELECT ? AS channel, ? AS external_id, ? AS chat_id) AS k"
            " LEFT JOIN users AS u ON u.channel = k.channel AND u.external_id = k.external_id"
            " LEFT JOIN conversations AS c ON c.channel = k.channel AND c.chat_id = k.chat_id"
            " LEFT JOIN chat_options AS o ON o.channel = k.channel AND o.chat_id = k.chat_id"
            " LEFT JOIN chat_menus AS m ON m.channel = k.channel AND m.chat_id = k.chat_id",
            (channel, external_id, chat_id))
        user = await self._ensure(_row(r) if r["id"] is not None else None, channel, external_id, chat_id, None, None,
                                  now)
        return user, conversation_of(r) if r["flow"] is not None else None, shown_of(r["options"]), r["menu"]

    async def _ensure(self, user: User | None, channel: str, external_id: str, chat_id: str,
                      display_name: str | None, language: str | None, now: datetime) -> User:
        """`ensure`, given what `find` found."""
        if user is not None:
            if user.chat_id != chat_id:
                user = await self._returning("UPDATE users SET chat_id = ?, updated_at = ? WHERE id = ?",
                                             (chat_id, iso(now), user.id))
            return await self.get(user.linked_to) if user.linked_to is not None else user
        created = await self._returning(
            "INSERT INTO users (channel, external_id, chat_id, display_name, language, news_enabled, consented,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel, external_id) DO NOTHING",
            (channel, external_id, chat_id, display_name, language or "vi", int(language is not None),
             int(language is not None), iso(now), iso(now)),
        )
        # Nothing returned: the same account's other event created it first.
        return created or await self.ensure(channel, external_id, chat_id, display_name, language, now)

    async def _returning(self, statement: str, params: tuple) -> User | None:
        """A write of one person's row, and the row as it then is, in one trip."""
        rows = await self.db.returning(f"{statement} RETURNING {_COLUMNS}", params)
        return _row(rows[0]) if rows else None

    async def identify(self, user_id: int, display_name: str | None, language: str, now: datetime) -> User:
        """Keep the person's platform name and language: they accepted a purpose, or became staff."""
        return await self._returning(IDENTIFY, (display_name, language, iso(now), user_id))

    async def update(self, user_id: int, now: datetime, **fields) -> User:
        allowed = {"language", "role", "unit_name", "locality_id", "onboarded", "news_enabled", "reachable",
                   "display_name"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        return await self._returning(f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
                                     (*fields.values(), iso(now), user_id))

    async def set_reachable(self, channel: str, chat_id: str, reachable: bool, now: datetime) -> None:
        await self.db.execute("UPDATE users SET reachable = ?, updated_at = ? WHERE channel = ? AND chat_id = ?",
                              (int(reachable), iso(now), channel, chat_id))

    async def topic_ids(self, user_id: int) -> set[int]:
        rows = await self.db.fetchall("SELECT topic_id FROM user_topics WHERE user_id = ?", (user_id,))
        return {r[0] for r in rows}

    async def set_topics(self, user_id: int, topic_ids: set[int]) -> None:
        await self.db.atomic([("DELETE FROM user_topics WHERE user_id = ?", (user_id,)),
                              ("DELETE FROM notice_outbox WHERE user_id = ?", (user_id,)),
                              *[("INSERT INTO user_topics (user_id, topic_id) VALUES (?, ?)", (user_id, t))
                                for t in sorted(topic_ids)]])

    async def add_topic(self, user_id: int, topic_id: int) -> None:
        await self.db.execute("INSERT INTO user_topics (user_id, topic_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                              (user_id, topic_id))

    async def record_consent(self, user_id: int, purpose: str, granted: bool, text_version: str, now: datetime,
                             identify: tuple[str | None, str] | None = None) -> User | None:
        """With `identify` (display name, language), `identify` the person in the same transaction, and return
        them as they then are."""
        if purpose not in PURPOSES:
            raise ValueError(purpose)

        statements = [("INSERT INTO consents (user_id, purpose, granted, text_version, at) VALUES (?, ?, ?, ?, ?)",
                       (user_id, purpose, int(granted), text_version, iso(now)))]
        if identify is not None:
            statements.append((f"{IDENTIFY} RETURNING {_COLUMNS}", (*identify, iso(now), user_id)))
        rows = (await self.db.atomic(statements))[-1]
        return _row(rows[0]) if identify is not None and rows else None

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

    async def erase(self, user_id: int, text_version: str, now: datetime, *, marker: str, content: bool = True,
                    notices: dict[int, list[tuple[int, str]]] | None = None,
                    withdrawn_notices: dict[str, dict[int, list[tuple[int, str]]]] | None = None) -> Erasure:
        """Delete what identifies the person, in one transaction; keep an anonymous row for statistics.

        Always: the name, accounts and chat ids, settings, followed topics, consents (kept only as a count in
        `consent_tallies`), web sessions, links, journal rows and any half-finished conversation; the commune
        (not the village) and the join date stay. An account linked to this one (the same person on another
        channel) is erased with it. Their cases are unlinked from them; with `content`, each case's text, files,
        voice notes and locations are replaced by `marker` and its place coarsened to the commune, and an open
        case is closed as withdrawn, and `notices` of that case ((recipient, notice JSON) by case id) are kept in
        the notice outbox by the same transaction, as are `withdrawn_notices` (by feature, then item id) of each item
        a feature's erasure hook withdraws (a "Dân vận khéo" nomination). Topic, commune, dates and status stay for
        statistics. Files nothing else refers to are deleted from disk once the transaction has committed. The audit
        log gets the counts. Beyond the account row and the cases, what goes is what the features declare
        (storage/erasure.py).
        """
        assert erasure.parts, "the features declare what an erasure removes (handlers/features.py): import handlers"
        async with self.db.tx() as conn:
            async with conn.execute("SELECT id, role FROM users WHERE id = ? OR linked_to = ? ORDER BY id",
                                    (user_id, user_id)) as cur:
                accounts = {r[0]: r[1] for r in await cur.fetchall()}
            counts: dict[str, int] = defaultdict(int)
            digests: set[str] = set()
            withdrawn = await _unlink_cases(conn, list(accounts), content, marker, now, counts, digests)
            told = [n for case_id in withdrawn for n in (notices or {}).get(case_id, [])]
            for part in (p for p in erasure.parts if p.hook):
                for account in accounts:
                    gone = await part.hook(conn, account, content, digests) or ()
                    told += [n for item in gone for n in (withdrawn_notices or {}).get(part.feature, {}).get(item, [])]
            chats = [await _erase_identity(conn, account, now, counts, digests) for account in accounts]
            kept = tuple(zip(await keep(conn, told, now), told, strict=True))
            free = await unreferenced(conn, digests)
            counts["files_deleted"] = len(free)
            await audit.write(conn, user_id, "user.erased", f"user:{user_id}", now, role=accounts[user_id],
                              content=content, text_version=text_version, **counts)
        await self.files.delete(free)
        return Erasure(content=content, withdrawn=tuple(withdrawn), chats=tuple(c for c in chats if c),
                       notices=tuple((i, user, text) for i, (user, text) in kept), **counts)


@dataclass(frozen=True)
class Erasure:
    """What one erasure did, in counts: what the person is told and the audit log keeps."""

    content: bool  # the cases' content was erased too, not only unlinked
    withdrawn: tuple[int, ...] = ()  # open cases closed as withdrawn (their cadres are to be told)
    chats: tuple[tuple[str, str], ...] = ()  # (channel, chat id) of the accounts: what a transport keeps of them goes
    notices: tuple[tuple[int, int, str], ...] = ()  # (outbox id, recipient, notice JSON) kept for withdrawn cases
    accounts: int = 0
    consents: int = 0  # consent decisions now only counted
    consents_withdrawn: int = 0  # of the consents in force, those that were given (the erasure withdraws them)
    sessions: int = 0  # web chat sessions ended
    cases: int = 0  # cases no longer linked to the person
    texts: int = 0  # of those, texts replaced by the marker
    files: int = 0  # photos, voice notes and documents taken off the cases
    locations: int = 0  # GPS points taken off the cases
    files_deleted: int = 0  # files removed from disk (those no other record referred to)


# The rows of the account and its chat themselves (handlers/onboarding.py declares them, storage/erasure.py).
IDENTITY = (
    ("conversations", "chat", None),
    ("inbound_journal", "handled chat", None),
    ("chat_options", "chat", None),
    ("web_messages", "chat", None),
    ("chat_menus", "chat", None),
    ("web_sessions", "chat_id", "sessions"),
    ("web_files", "web owner", None),
    ("user_topics", "user", None),
    ("notice_outbox", "user", None),
    ("consents", "user", "consents"),  # counted in consent_tallies first
)


async def _erase_identity(conn: aiosqlite.Connection, user_id: int, now: datetime, counts: dict[str, int],
                          digests: set[str]) -> tuple[str, str] | None:
    """Erase one account; its (channel, chat id), if it had one."""
    async with conn.execute("SELECT channel, chat_id, locality_id FROM users WHERE id = ?", (user_id,)) as cur:
        row = await cur.fetchone()
    commune = None
    if row["locality_id"] is not None:
        async with conn.execute(
            "SELECT CASE WHEN level <= 1 THEN id ELSE parent_id END FROM localities WHERE id = ?",
            (row["locality_id"],),
        ) as cur:
            commune = (await cur.fetchone())[0]
    # Files a half-written case or a broadcast being composed holds.
    async with conn.execute("SELECT data FROM conversations WHERE channel = ? AND chat_id = ? UNION ALL"
                            " SELECT data FROM case_drafts WHERE user_id = ?",
                            (row["channel"], row["chat_id"], user_id)) as cur:
        digests.update(*[digests_in(r[0]) for r in await cur.fetchall()])
    async with conn.execute("SELECT count(*) FROM consents WHERE granted = 1 AND id IN"
                            " (SELECT max(id) FROM consents WHERE user_id = ? GROUP BY purpose)", (user_id,)) as cur:
        counts["consents_withdrawn"] += (await cur.fetchone())[0]
    await conn.execute(
        "INSERT INTO consent_tallies (purpose, granted, text_version, count)"
        " SELECT purpose, granted, text_version, count(*) FROM consents WHERE user_id = ?"
        " GROUP BY purpose, granted, text_version"
        " ON CONFLICT (purpose, granted, text_version) DO UPDATE SET count = consent_tallies.count + excluded.count",
        (user_id,))
    chat = (row["channel"], row["chat_id"])
    web = (row["channel"], owner_of(row["chat_id"])) if row["chat_id"] is not None else None
    if web is not None:  # the web chat's files by name (PostgreSQL): their bytes go when nothing else names them
        async with conn.execute("SELECT sha256 FROM web_files WHERE channel = ? AND owner = ?", web) as cur:
            digests.update(r[0] for r in await cur.fetchall())
    keys = {"user": (user_id,), "chat": chat, "handled chat": chat, "chat_id": (row["chat_id"],), "web owner": web}
    for table, key, counted in erasure.erased():
        if row["chat_id"] is None and key != "user":
            continue
        cur = await conn.execute(f"DELETE FROM {table} WHERE {erasure.WHERE[key]}", keys[key])
        if counted:
            counts[counted] += cur.rowcount
    await conn.execute(
        "UPDATE users SET external_id = 'deleted:' || id, chat_id = NULL, display_name = NULL, language = 'vi',"
        " role = 'citizen', unit_name = NULL, locality_id = ?, news_enabled = 0, onboarded = 0, consented = 0,"
        " linked_to = NULL, deleted_at = ?, updated_at = ? WHERE id = ?",
        (commune, iso(now), iso(now), user_id),
    )
    counts["accounts"] += 1
    return (row["channel"], row["chat_id"]) if row["chat_id"] is not None else None


async def _unlink_cases(conn: aiosqlite.Connection, accounts: list[int], content: bool, marker: str,
                        now: datetime, counts: dict[str, int], digests: set[str]) -> list[int]:
    """Unlink the accounts' cases from them (and, with `content`, erase what they wrote and sent); the ids of
    the open cases this closed as withdrawn."""
    people = ",".join("?" * len(accounts))
    async with conn.execute(f"SELECT id, status FROM cases WHERE user_id IN ({people}) ORDER BY id",
                            accounts) as cur:
        cases = {r[0]: r[1] for r in await cur.fetchall()}
    counts["cases"] = len(cases)
    if not cases:
        return []
    ids = ",".join("?" * len(cases))
    withdrawn = []
    if content:
        counts["texts"] = len(cases)
        await drop_attachments(conn, list(cases), counts, digests)
        withdrawn = [case_id for case_id, status in cases.items() if status in OPEN]
        for case_id in withdrawn:
            await conn.execute("UPDATE cases SET status = 'withdrawn', closed_at = ? WHERE id = ?", (iso(now), case_id))
            await conn.execute("INSERT INTO case_events (case_id, at, kind) VALUES (?, ?, 'withdrawn')",
                               (case_id, iso(now)))
        # The commune stays for statistics; the village could point at the sender.
        await conn.execute(
            "UPDATE cases SET content = ?, locality_id = (SELECT CASE WHEN l.level <= 1 THEN l.id ELSE l.parent_id"
            f" END FROM localities l WHERE l.id = cases.locality_id) WHERE id IN ({ids})", (marker, *cases))
        await conn.execute("UPDATE cases SET locality_path = (SELECT path FROM localities l"
                           f" WHERE l.id = cases.locality_id) WHERE id IN ({ids})", list(cases))
        # What the sender wrote later (a reason to reopen) goes the same way.
        await conn.execute(f"UPDATE case_events SET body = ? WHERE case_id IN ({ids}) AND actor_id IN ({people})"
                           " AND body IS NOT NULL", (marker, *cases, *accounts))
    await conn.execute(f"UPDATE case_events SET actor_id = NULL WHERE case_id IN ({ids}) AND actor_id IN ({people})",
                       (*cases, *accounts))
    await conn.execute(f"UPDATE cases SET user_id = NULL WHERE id IN ({ids})", list(cases))
    return withdrawn

