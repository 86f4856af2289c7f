"""Cases (ý kiến): what a citizen sent, where it stands, its history, attachments and drafts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.clock import iso
from storage.db import Database
from storage.localities import subtree_end

OPEN = ("new", "acknowledged", "in_progress")

# Where a case is from, as staff are shown it (case cards, lists, notices, digests, charts, exports, reminders):
# an anonymous opinion (góp ý) names its commune only, since in a village of a few hundred people the village
# could name its sender; an anonymous report (phản ánh) keeps its village, the place to act on (the person is
# told so before choosing). Routing and scopes use the real place (`locality_path`).
ANONYMOUS_OPINION = "(cases.anonymous = 1 AND cases.kind = 'gopy')"
SHOWN_LOCALITY = (f"CASE WHEN {ANONYMOUS_OPINION} THEN (SELECT CASE WHEN shown.level <= 1"
                  " THEN shown.id ELSE shown.parent_id END FROM localities shown WHERE shown.id = cases.locality_id)"
                  " ELSE cases.locality_id END")
CLOSED = ("resolved", "declined", "duplicate", "withdrawn")  # withdrawn: the sender erased it
PREFIX = {"gopy": "GY", "phananh": "PA"}


@dataclass(frozen=True)
class Case:
    id: int
    code: str
    kind: str
    user_id: int | None
    anonymous: bool
    topic_id: int
    locality_id: int
    locality_path: str
    campaign_id: int | None
    content: str
    urgent: bool
    status: str
    created_at: str
    ack_due: str
    answer_due: str
    acknowledged_at: str | None
    answered_at: str | None
    closed_at: str | None
    assigned_to: int | None
    duplicate_of: int | None
    rating: str | None
    hidden_reason: str | None
    shown_locality_id: int  # where staff are told it is from (SHOWN_LOCALITY); `locality_id` is the sender's

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class Attachment:
    kind: str
    sha256: str | None
    mime: str | None
    size: int | None
    filename: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class Event:
    at: str
    actor_id: int | None
    kind: str
    body: str | None
    internal: bool
    unit: str | None


@dataclass(frozen=True)
class NewCase:
    kind: str
    user_id: int
    anonymous: bool
    topic_id: int
    locality_id: int
    content: str
    urgent: bool
    campaign_id: int | None
    ack_due: datetime
    answer_due: datetime
    attachments: tuple[Attachment, ...] = ()
    key: str | None = None  # the draft's submission key: the same key again is the same case


class CaseMoved(Exception):
    """The case no longer has the status the actor saw: someone else acted on it first."""

    def __init__(self, case: Case) -> None:
        super().__init__(f"{case.code} is {case.status} now")
        self.case = case


@dataclass(frozen=True)
class InboxQuery:
    """Which cases a person may see and which of those they asked for.

    `paths` None means every locality (admins); otherwise the cadre's subtrees. `topics` empty means
    every topic. `assignee` also lets through cases an admin assigned to that person.
    """

    paths: tuple[str, ...] | None
    topics: frozenset[int] = frozenset()
    assignee: int | None = None
    view: str = "open"  # open, new, overdue, due_soon, all
    topic_id: int | None = None
    locality_path: str | None = None


_COLUMNS = ("id, code, kind, user_id, anonymous, topic_id, locality_id, locality_path, campaign_id, content,"
            " urgent, status, created_at, ack_due, answer_due, acknowledged_at, answered_at, closed_at, assigned_to,"
            f" duplicate_of, rating, hidden_reason, {SHOWN_LOCALITY} AS shown_locality_id")


def _case(r) -> Case:
    return Case(r["id"], r["code"], r["kind"], r["user_id"], bool(r["anonymous"]), r["topic_id"], r["locality_id"],
                r["locality_path"], r["campaign_id"], r["content"], bool(r["urgent"]), r["status"], r["created_at"],
                r["ack_due"], r["answer_due"], r["acknowledged_at"], r["answered_at"], r["closed_at"],
                r["assigned_to"], r["duplicate_of"], r["rating"], r["hidden_reason"], r["shown_locality_id"])


def through_villages(paths: tuple[str, ...] | list[str]) -> tuple[str, list] | None:
    """A condition leaving out the anonymous opinions seen only through a village among `paths` (a view of one
    village would name their village); None when no path is a village's ("/province/commune/village/")."""
    if not any(p.count("/") > 3 for p in paths):
        return None
    wider = [p for p in paths if p.count("/") <= 3]
    inside = " OR ".join("(locality_path >= ? AND locality_path < ?)" for _ in wider) or "false"
    return f"NOT ({ANONYMOUS_OPINION} AND NOT ({inside}))", [v for p in wider for v in (p, subtree_end(p))]


def visible_sql(query: InboxQuery, now: datetime, soon: datetime) -> tuple[str, list]:
    """The WHERE clause of a scoped, filtered case list (shared by lists, counts and exports)."""
    where, params = [], []
    if query.paths is not None:
        scope = " OR ".join("(locality_path >= ? AND locality_path < ?)" for _ in query.paths) or "false"
        if query.topics:
            # an urgent case is every cadre's of the place, whatever their topics
            scope = f"({scope}) AND (topic_id IN ({','.join('?' * len(query.topics))}) OR urgent <> 0)"
        params += [v for p in query.paths for v in (p, subtree_end(p))] + sorted(query.topics)
        if hidden := through_villages(query.paths):
            scope = f"({scope}) AND {hidden[0]}"
            params += hidden[1]
        if query.assignee is not None:
            scope = f"({scope}) OR assigned_to = ?"
            params.append(query.assignee)
        where.append(f"({scope})")
    views = {
        "open": f"status IN {OPEN}",
        "new": "status = 'new'",
        "overdue": f"status IN {OPEN} AND answer_due < ?",
        "due_soon": f"status IN {OPEN} AND answer_due >= ? AND answer_due < ?",
        "all": "true",
    }
    where.append(views[query.view])
    if query.view == "overdue":
        params.append(iso(now))
    elif query.view == "due_soon":
        params += [iso(now), iso(soon)]
    if query.topic_id is not None:
        where.append("topic_id = ?")
        params.append(query.topic_id)
    if query.locality_path is not None:
        where.append("locality_path >= ? AND locality_path < ?")
        params += [query.locality_path, subtree_end(query.locality_path)]
        if hidden := through_villages([query.locality_path]):
            where.append(hidden[0])
            params += hidden[1]
    return " AND ".join(where), params


class CaseRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, new: NewCase, now: datetime, *, ends: tuple[str, str] | None = None) -> Case:
        """Store the case, its attachments and its first history row, drop the draft and end the conversation
        `ends` (channel, chat), all in one transaction: there is never a stored case beside a conversation
        still offering «Gửi». A key this person already submitted returns that case instead of a new one."""
        async with self.db.tx() as conn:
            case_id = None
            if new.key is not None:
                async with conn.execute("SELECT id FROM cases WHERE submit_key = ? AND user_id = ?",
                                        (new.key, new.user_id)) as cur:
                    row = await cur.fetchone()
                case_id = row[0] if row else None
            if case_id is None:
                case_id = await self._insert(conn, new, now)
            await conn.execute("DELETE FROM case_drafts WHERE user_id = ?", (new.user_id,))
            if ends is not None:
                await conn.execute("DELETE FROM conversations WHERE channel = ? AND chat_id = ?", ends)
        return await self.get(case_id)

    async def _insert(self, conn: aiosqlite.Connection, new: NewCase, now: datetime) -> int:
        prefix = f"{PREFIX[new.kind]}-{now.strftime('%y')}"
        await conn.execute(
            "INSERT INTO case_counters (prefix, last) VALUES (?, 1)"
            " ON CONFLICT(prefix) DO UPDATE SET last = case_counters.last + 1", (prefix,))
        async with conn.execute("SELECT last, (SELECT path FROM localities WHERE id = ?) FROM case_counters"
                                " WHERE prefix = ?", (new.locality_id, prefix)) as cur:
            number, path = await cur.fetchone()
        cur = await conn.execute(
            "INSERT INTO cases (code, kind, user_id, anonymous, topic_id, locality_id, locality_path, campaign_id,"
            " content, urgent, created_at, ack_due, answer_due, submit_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"{prefix}-{number:06d}", new.kind, new.user_id, int(new.anonymous), new.topic_id, new.locality_id, path,
             new.campaign_id, new.content, int(new.urgent), iso(now), iso(new.ack_due), iso(new.answer_due), new.key),
        )
        case_id = cur.lastrowid
        await conn.executemany(
            "INSERT INTO case_attachments (case_id, kind, sha256, mime, size, filename, latitude, longitude)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(case_id, a.kind, a.sha256, a.mime, a.size, a.filename, a.latitude, a.longitude)
             for a in new.attachments],
        )
        await conn.execute("INSERT INTO case_events (case_id, at, actor_id, kind) VALUES (?, ?, ?, 'created')",
                           (case_id, iso(now), new.user_id))
        return case_id

    async def get(self, case_id: int) -> Case | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM cases WHERE id = ?", (case_id,))
        return _case(r) if r else None

    async def by_key(self, user_id: int, key: str) -> Case | None:
        """The case this person submitted under `key`; None for a key of someone else's or none at all."""
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM cases WHERE submit_key = ? AND user_id = ?",
                                   (key, user_id))
        return _case(r) if r else None

    async def by_code(self, code: str) -> Case | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM cases WHERE code = ?", (code.strip().upper(),))
        return _case(r) if r else None

    async def of_user(self, user_id: int, offset: int = 0, limit: int = 8) -> tuple[list[Case], int]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM cases WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset))
        total = await self.db.fetchone("SELECT count(*) FROM cases WHERE user_id = ?", (user_id,))
        return [_case(r) for r in rows], int(total[0])

    async def count_since(self, user_id: int, since: datetime) -> int:
        r = await self.db.fetchone("SELECT count(*) FROM cases WHERE user_id = ? AND created_at >= ?",
                                   (user_id, iso(since)))
        return int(r[0])

    async def inbox(self, query: InboxQuery, now: datetime, soon: datetime, offset: int = 0,
                    limit: int = 8) -> tuple[list[Case], int]:
        where, params = visible_sql(query, now, soon)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM cases WHERE {where} ORDER BY urgent DESC, answer_due, id LIMIT ? OFFSET ?",
            (*params, limit, offset))
        total = await self.db.fetchone(f"SELECT count(*) FROM cases WHERE {where}", params)
        return [_case(r) for r in rows], int(total[0])

    async def all_matching(self, query: InboxQuery, now: datetime, soon: datetime, since: datetime | None = None,
                           until: datetime | None = None) -> list[Case]:
        where, params = visible_sql(query, now, soon)
        if since is not None:
            where += " AND created_at >= ?"
            params.append(iso(since))
        if until is not None:
            where += " AND created_at < ?"
            params.append(iso(until))
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM cases WHERE {where} ORDER BY id", params)
        return [_case(r) for r in rows]

    async def attachments(self, case_id: int) -> list[Attachment]:
        rows = await self.db.fetchall(
            "SELECT kind, sha256, mime, size, filename, latitude, longitude FROM case_attachments"
            " WHERE case_id = ? ORDER BY id", (case_id,))
        return [Attachment(*r) for r in rows]

    async def events(self, case_id: int, *, internal: bool) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT at, actor_id, kind, body, internal, unit FROM case_events WHERE case_id = ?"
            f"{'' if internal else ' AND internal = 0'} ORDER BY id", (case_id,))
        return [Event(r["at"], r["actor_id"], r["kind"], r["body"], bool(r["internal"]), r["unit"]) for r in rows]

    async def record(self, case_id: int, actor_id: int | None, kind: str, now: datetime, *, body: str | None = None,
                     internal: bool = False, unit: str | None = None, expect: str | None = None,
                     **changes: object) -> Case:
        """One step in a case's life: the history row and the case's new fields, together.

        `expect` is the status the actor saw: the change happens only if the case still has it, checked in
        the write itself, so of two people acting at once one wins and the other gets `CaseMoved`. A change
        of status must say what it expects."""
        allowed = {"status", "acknowledged_at", "answered_at", "closed_at", "assigned_to", "duplicate_of", "rating",
                   "rated_at", "hidden_reason", "locality_id", "answer_due"}
        if set(changes) - allowed:
            raise ValueError(f"not changeable: {sorted(set(changes) - allowed)}")
        if "status" in changes and expect is None:
            raise ValueError("a change of status must name the status it expects")
        async with self.db.tx() as conn:
            if changes:
                assignments = ", ".join(f"{name} = ?" for name in changes)
                values = [iso(v) if isinstance(v, datetime) else v for v in changes.values()]
                where, params = "id = ?", [*values, case_id]
                if expect is not None:
                    where += " AND status = ?"
                    params.append(expect)
                cur = await conn.execute(f"UPDATE cases SET {assignments} WHERE {where}", params)
                if cur.rowcount == 0:
                    async with conn.execute(f"SELECT {_COLUMNS} FROM cases WHERE id = ?", (case_id,)) as found:
                        current = await found.fetchone()
                    raise CaseMoved(_case(current))
                if "locality_id" in changes:
                    await conn.execute("UPDATE cases SET locality_path = (SELECT path FROM localities WHERE id = ?)"
                                       " WHERE id = ?", (changes["locality_id"], case_id))
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, body, internal, unit)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (case_id, iso(now), actor_id, kind, body, int(internal), unit))
        return await self.get(case_id)

    async def save_draft(self, user_id: int, data: dict, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO case_drafts (user_id, data, updated_at) VALUES (?, ?, ?) ON CONFLICT(user_id)"
            " DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (user_id, json.dumps(data, ensure_ascii=False), iso(now)))

    async def draft(self, user_id: int) -> dict | None:
        r = await self.db.fetchone("SELECT data FROM case_drafts WHERE user_id = ?", (user_id,))
        return json.loads(r[0]) if r else None

    async def drop_draft(self, user_id: int) -> None:
        await self.db.execute("DELETE FROM case_drafts WHERE user_id = ?", (user_id,))

    async def open_nearby(self, case: Case, limit: int = 500) -> list[tuple[str, str]]:
        """(code, content) of the open cases sent before `case` in its commune, newest first, those hidden as
        abusive left out: the cases it may repeat."""
        commune = "/" + "/".join(case.locality_path.strip("/").split("/")[:2]) + "/"  # the province and commune ids
        rows = await self.db.fetchall(
            f"SELECT code, content FROM cases WHERE id < ? AND status IN ({','.join('?' * len(OPEN))})"
            " AND hidden_reason IS NULL AND locality_path >= ? AND locality_path < ? ORDER BY id DESC LIMIT ?",
            (case.id, *OPEN, commune, subtree_end(commune), limit))
        return [(r[0], r[1]) for r in rows]

    async def campaign_cases(self, campaign_id: int) -> int:
        r = await self.db.fetchone("SELECT count(*) FROM cases WHERE campaign_id = ?", (campaign_id,))
        return int(r[0])


async def drop_attachments(conn: aiosqlite.Connection, case_ids: list[int], counts: dict[str, int],
                           digests: set[str]) -> None:
    """Take the files and locations off these cases, counting them; their digests join `digests` (the caller
    deletes those nothing else refers to)."""
    ids = ",".join("?" * len(case_ids))
    async with conn.execute(f"SELECT sha256, latitude FROM case_attachments WHERE case_id IN ({ids})",
                            case_ids) as cur:
        rows = await cur.fetchall()
    counts["files"] += sum(1 for r in rows if r[0] is not None)
    counts["locations"] += sum(1 for r in rows if r[1] is not None)
    digests.update(r[0] for r in rows if r[0] is not None)
    await conn.execute(f"DELETE FROM case_attachments WHERE case_id IN ({ids})", case_ids)
