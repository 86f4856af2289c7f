"""Digests and exports: each cadre's settings, the few indexed queries that make one digest, and the
cases of a scope for an export.

A scope is a set of subtrees ("roots": locality paths) plus, optionally, topics. The queries name the
exact locality paths of the scope (`locality_path IN (SELECT path FROM localities WHERE …)`), so that each
path is one seek into an index led by `locality_path` and followed by the time column: the work is
proportional to the cases of the scope and the period, not to the table. Cases an admin assigned to the
cadre outside their scope come in through a second query on another index (`cases_assigned`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from storage.campaigns import Campaign
from storage.cases import OPEN, SHOWN_LOCALITY, through_villages
from storage.clock import iso
from storage.db import Database
from storage.localities import Locality, subtree_end

MODES = ("daily", "weekly", "off")
DEFAULT_AT = 7 * 60 + 30  # 07:30 local


@dataclass(frozen=True)
class DigestSettings:
    user_id: int
    mode: str
    at_minute: int
    weekday: int
    skip_empty: bool
    last_end: str


@dataclass(frozen=True)
class CaseScope:
    """Whose cases: `roots` are subtree paths ("/" is the whole tree); `topics` empty is every topic;
    `assignee` also lets in the cases assigned to that cadre."""

    roots: tuple[str, ...]
    topics: frozenset[int] = frozenset()
    assignee: int | None = None


@dataclass(frozen=True)
class Count:
    topic_id: int
    locality_id: int  # as staff are shown it (SHOWN_LOCALITY)
    count: int
    urgent: int


@dataclass(frozen=True)
class Highlight:
    id: int
    code: str
    topic_id: int
    locality_id: int  # as staff are shown it (SHOWN_LOCALITY)
    urgent: bool
    answer_due: str
    content: str
    hidden: bool


@dataclass(frozen=True)
class OpenCounts:
    open: int
    overdue: int
    due_soon: int


@dataclass(frozen=True)
class Answers:
    answered: int
    good: int
    ok: int
    bad: int

    @property
    def rated(self) -> int:
        return self.good + self.ok + self.bad


@dataclass(frozen=True)
class DueCase:
    """An open case whose deadline reminders are being decided."""

    id: int
    code: str
    topic_id: int
    locality_id: int  # as staff are shown it (SHOWN_LOCALITY)
    locality_path: str
    assigned_to: int | None
    answer_due: str


@dataclass(frozen=True)
class ExportRow:
    code: str
    kind: str
    status: str
    urgent: bool
    topic_id: int
    locality_id: int  # as staff are shown it (SHOWN_LOCALITY)
    created_at: str
    answer_due: str
    answered_at: str | None
    closed_at: str | None
    rating: str | None
    sender: str | None  # never set for an anonymous case
    content: str
    hidden_reason: str | None


def _in_scope(scope: CaseScope) -> tuple[str, list]:
    ranges = " OR ".join("(path >= ? AND path < ?)" for _ in scope.roots)
    where = f"locality_path IN (SELECT path FROM localities WHERE {ranges})"
    values: list = [v for root in scope.roots for v in (root, subtree_end(root))]
    if scope.topics:
        where += f" AND topic_id IN ({','.join('?' * len(scope.topics))})"
        values += sorted(scope.topics)
    if hidden := through_villages(scope.roots):
        where += f" AND {hidden[0]}"
        values += hidden[1]
    return where, values


def scope_parts(scope: CaseScope, condition: str, params: list) -> list[tuple[str, list]]:
    """WHERE clauses, each with its parameters, for `condition` on the cases of `scope`: the scope's own, then
    the ones assigned to the cadre outside it. The parts never overlap, so their counts add up; apart, each
    uses its own index (one query with OR would read every row from the table)."""
    parts = []
    in_scope, values = _in_scope(scope) if scope.roots else ("false", [])
    if scope.roots:
        parts.append((f"{in_scope} AND {condition}", [*values, *params]))
    if scope.assignee is not None:
        outside = f" AND NOT ({in_scope})" if scope.roots else ""
        parts.append((f"assigned_to = ?{outside} AND {condition}", [scope.assignee, *values, *params]))
    return parts


_OPEN = f"status IN {OPEN}"


class DigestRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- settings -----------------------------------------------------------------------------------

    async def settings(self, user_ids: list[int], now: datetime) -> dict[int, DigestSettings]:
        """The settings of these people; those seen for the first time get the defaults, and their
        digests start now (a new cadre is not sent the digests of the days before they came)."""
        rows = await self.db.fetchall(
            "SELECT user_id, mode, at_minute, weekday, skip_empty, last_end FROM digest_settings")
        found = {r[0]: DigestSettings(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}
        missing = [i for i in user_ids if i not in found]
        if missing:
            await self.db.executemany(
                "INSERT INTO digest_settings (user_id, last_end, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(i, iso(now), iso(now)) for i in missing])
            for i in missing:
                found[i] = DigestSettings(i, "daily", DEFAULT_AT, 0, False, iso(now))
        return found

    async def get(self, user_id: int, now: datetime) -> DigestSettings:
        return (await self.settings([user_id], now))[user_id]

    async def update(self, user_id: int, now: datetime, **fields: object) -> DigestSettings:
        allowed = {"mode", "at_minute", "weekday", "skip_empty"}
        if set(fields) - allowed:
            raise ValueError(f"not changeable: {sorted(set(fields) - allowed)}")
        await self.get(user_id, now)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
        await self.db.execute(f"UPDATE digest_settings SET {assignments}, updated_at = ? WHERE user_id = ?",
                              (*values, iso(now), user_id))
        return await self.get(user_id, now)

    async def covered(self, user_id: int, end: datetime, now: datetime) -> None:
        """The digest that covers the time up to `end` is done (sent, or skipped as empty)."""
        await self.db.execute("UPDATE digest_settings SET last_end = ?, updated_at = ? WHERE user_id = ?",
                              (iso(end), iso(now), user_id))

    # ---- what one digest says -----------------------------------------------------------------------

    async def _rows(self, sql: str, scope: CaseScope, condition: str, params: list, before: tuple = (),
                    after: tuple = ()) -> list:
        """`sql` (with "{where}") run on each part of the scope; the rows of all parts. `before` and `after` are
        the parameters of the placeholders before and after the WHERE clause."""
        rows = []
        for where, values in scope_parts(scope, condition, params):
            rows += await self.db.fetchall(sql.format(where=where), (*before, *values, *after))
        return rows

    async def _grouped(self, sql: str, scope: CaseScope, condition: str, params: list,
                       before: tuple = ()) -> Counter:
        """Rows of (key…, count), the counts of the parts added up by key."""
        total: Counter = Counter()
        for row in await self._rows(sql, scope, condition, params, before):
            values = tuple(row)
            total[values[:-1] if len(values) > 2 else values[0]] += values[-1]
        return total

    async def new_counts(self, scope: CaseScope, start: datetime, end: datetime) -> list[Count]:
        counts = await self._grouped(
            f"SELECT topic_id, {SHOWN_LOCALITY} AS shown, urgent, count(*) FROM cases WHERE {{where}}"
            " GROUP BY topic_id, shown, urgent", scope, "created_at >= ? AND created_at < ?", [iso(start), iso(end)])
        merged: dict[tuple[int, int], list[int]] = {}
        for (topic_id, locality_id, urgent), n in counts.items():
            entry = merged.setdefault((topic_id, locality_id), [0, 0])
            entry[0] += n
            entry[1] += n if urgent else 0
        return [Count(t, loc, n, u) for (t, loc), (n, u) in merged.items()]

    async def highlights(self, scope: CaseScope, start: datetime, end: datetime, limit: int = 5) -> list[Highlight]:
        """The period's new cases still open, the most important first: urgent, then the nearest deadline."""
        rows = await self._rows(
            f"SELECT id, code, topic_id, {SHOWN_LOCALITY}, urgent, answer_due, substr(content, 1, 200),"
            " hidden_reason IS NOT NULL FROM cases WHERE {where} ORDER BY urgent DESC, answer_due, id LIMIT ?",
            scope, f"created_at >= ? AND created_at < ? AND {_OPEN}", [iso(start), iso(end)], after=(limit,))
        rows = sorted(rows, key=lambda r: (-r[4], r[5], r[0]))[:limit]
        return [Highlight(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], bool(r[7])) for r in rows]

    async def open_counts(self, scope: CaseScope, now: datetime, soon: datetime) -> OpenCounts:
        rows = await self._rows(
            "SELECT count(*), coalesce(sum(CASE WHEN answer_due < ? THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN answer_due >= ? AND answer_due < ? THEN 1 ELSE 0 END), 0)"
            " FROM cases WHERE {where}", scope, _OPEN, [], (iso(now), iso(now), iso(soon)))
        return OpenCounts(*(sum(int(r[i]) for r in rows) for i in range(3)))

    async def overdue_by_locality(self, scope: CaseScope, now: datetime) -> dict[int, int]:
        return dict(await self._grouped(f"SELECT {SHOWN_LOCALITY} AS shown, count(*) FROM cases WHERE {{where}}"
                                        " GROUP BY shown", scope, f"{_OPEN} AND answer_due < ?", [iso(now)]))

    async def answers(self, scope: CaseScope, start: datetime, end: datetime) -> Answers:
        """Cases answered in the period, and the ratings people gave in it."""
        answered = await self._rows("SELECT count(*) FROM cases WHERE {where}", scope,
                                    "answered_at >= ? AND answered_at < ?", [iso(start), iso(end)])
        ratings = await self._grouped("SELECT rating, count(*) FROM cases WHERE {where} GROUP BY rating", scope,
                                      "rated_at >= ? AND rated_at < ?", [iso(start), iso(end)])
        return Answers(sum(int(r[0]) for r in answered), ratings["good"], ratings["ok"], ratings["bad"])

    async def per_day(self, scope: CaseScope, start: datetime, end: datetime,
                      utc_offset_minutes: int) -> list[tuple[str, int, int]]:
        """(local date, topic id, cases) for the cases created in the period."""
        counts = await self._grouped(
            f"SELECT {self.db.dialect.day('created_at')} AS day, topic_id, count(*) FROM cases WHERE {{where}}"
            " GROUP BY day, topic_id",
            scope, "created_at >= ? AND created_at < ?", [iso(start), iso(end)], (f"{utc_offset_minutes:+d} minutes",))
        return [(day, topic_id, n) for (day, topic_id), n in counts.items()]

    async def campaign_cases(self, scope: CaseScope, start: datetime, end: datetime) -> dict[int, int]:
        return dict(await self._grouped(
            "SELECT campaign_id, count(*) FROM cases WHERE {where} GROUP BY campaign_id", scope,
            "created_at >= ? AND created_at < ? AND campaign_id IS NOT NULL", [iso(start), iso(end)]))

    async def audience(self, topic_ids: set[int | None]) -> dict[tuple[int, int | None], int]:
        """How many people receive news, per (locality, topic followed); topic None: whatever they follow. One
        pass over the people, once per tick: each digest then adds up the localities of its scope."""
        people = ("u.role = 'citizen' AND u.news_enabled = 1 AND u.deleted_at IS NULL AND u.locality_id IS NOT NULL"
                  " AND u.linked_to IS NULL")  # a person on two linked channels is counted where their account is kept
        reach: dict[tuple[int, int | None], int] = {}
        topics = sorted(t for t in topic_ids if t is not None)
        if topics:
            rows = await self.db.fetchall(
                f"SELECT u.locality_id, t.topic_id, count(*) FROM users u CROSS JOIN user_topics t"
                f" ON t.user_id = u.id WHERE {people} AND t.topic_id IN ({','.join('?' * len(topics))})"
                " GROUP BY u.locality_id, t.topic_id", topics)
            reach.update({(r[0], r[1]): r[2] for r in rows})
        if None in topic_ids:
            rows = await self.db.fetchall(f"SELECT u.locality_id, count(*) FROM users u WHERE {people}"
                                          " GROUP BY u.locality_id")
            reach.update({(r[0], None): r[1] for r in rows})
        return reach

    async def localities(self) -> list[Locality]:
        rows = await self.db.fetchall("SELECT id, code, name, kind, level, parent_id, path FROM localities")
        return [Locality(*r) for r in rows]

    async def campaigns(self, today: str) -> list[Campaign]:
        """Campaigns running on `today` (YYYY-MM-DD, local), or without dates."""
        rows = await self.db.fetchall(
            "SELECT id, code, title_vi, title_en, description_vi, description_en, topic_id FROM campaigns"
            " WHERE (starts_on IS NULL OR starts_on <= ?) AND (ends_on IS NULL OR ends_on >= ?) ORDER BY id",
            (today, today))
        return [Campaign(*r) for r in rows]

    async def export(self, scope: CaseScope, *, since: datetime | None = None, until: datetime | None = None,
                     statuses: tuple[str, ...] = (), due_before: datetime | None = None,
                     topic_id: int | None = None, limit: int = 100_000) -> list[ExportRow]:
        """The scope's cases, newest first; the sender's name only when they did not choose anonymity."""
        conditions, params = ["true"], []
        if since is not None:
            conditions.append("created_at >= ?")
            params.append(iso(since))
        if until is not None:
            conditions.append("created_at < ?")
            params.append(iso(until))
        if statuses:
            conditions.append(f"status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if due_before is not None:
            conditions.append("answer_due < ?")
            params.append(iso(due_before))
        if topic_id is not None:
            conditions.append("topic_id = ?")
            params.append(topic_id)
        rows = []
        for where, values in scope_parts(scope, " AND ".join(conditions), params):
            rows += await self.db.fetchall(
                f"SELECT code, kind, status, urgent, topic_id, {SHOWN_LOCALITY}, created_at, answer_due, answered_at,"
                " closed_at, rating, (SELECT u.display_name FROM users u WHERE u.id = cases.user_id"
                f" AND cases.anonymous = 0), content, hidden_reason, id FROM cases WHERE {where}"
                " ORDER BY created_at DESC, id DESC LIMIT ?", (*values, limit))
        rows = sorted(rows, key=lambda r: (r[6], r[14]), reverse=True)[:limit]
        return [ExportRow(r[0], r[1], r[2], bool(r[3]), *r[4:14]) for r in rows]

    # ---- reminders ------------------------------------------------------------------------------------

    async def open_due_between(self, start: datetime, end: datetime) -> list[DueCase]:
        """Open cases whose deadline falls in [start, end)."""
        rows = await self.db.fetchall(
            f"SELECT id, code, topic_id, {SHOWN_LOCALITY}, locality_path, assigned_to, answer_due FROM cases"
            f" WHERE {_OPEN} AND answer_due >= ? AND answer_due < ? ORDER BY answer_due, id", (iso(start), iso(end)))
        return [DueCase(*r) for r in rows]

    async def overdue_not_escalated(self, now: datetime) -> list[DueCase]:
        """Open cases past their deadline whose escalation ("escalate:<id>:<deadline>") is not done."""
        rows = await self.db.fetchall(
            f"SELECT id, code, topic_id, {SHOWN_LOCALITY}, locality_path, assigned_to, answer_due FROM cases"
            f" WHERE {_OPEN} AND answer_due < ? AND NOT EXISTS (SELECT 1 FROM scheduled_runs r"
            " WHERE r.key = 'escalate:' || cases.id || ':' || cases.answer_due AND r.done_at IS NOT NULL)"
            " ORDER BY answer_due, id", (iso(now),))
        return [DueCase(*r) for r in rows]

    async def cover_depths(self, user_ids: list[int], path: str) -> dict[int, int]:
        """For each of these cadres, the depth (number of "/") of the narrowest locality of their scope that
        holds `path`: the commune's cadres are deeper than the province's."""
        if not user_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT cl.user_id, max(l.path) FROM cadre_localities cl JOIN localities l ON l.id = cl.locality_id"
            f" WHERE cl.user_id IN ({','.join('?' * len(user_ids))}) AND substr(?, 1, length(l.path)) = l.path"
            " GROUP BY cl.user_id", (*user_ids, path))
        return {r[0]: r[1].count("/") for r in rows}

    async def done_keys(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys are done."""
        done: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = await self.db.fetchall(
                f"SELECT key FROM scheduled_runs WHERE done_at IS NOT NULL AND key IN ({','.join('?' * len(chunk))})",
                chunk)
            done |= {r[0] for r in rows}
        return done
