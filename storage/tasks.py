"""Work-plan tasks (nhiệm vụ): what must be done by when, by the cadres of which localities, and who
has reported it done.

A cadre is assigned a task when one of the localities of their scope lies inside one of the task's
localities (a task of the province is every cadre's). Each assigned cadre reports on their own; an admin
reads the reports grouped by the cadres' localities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import iso
from storage.db import Database


@dataclass(frozen=True)
class Task:
    id: int
    code: str | None
    title: str
    description: str
    deadline: str
    created_by: int | None
    created_at: str


@dataclass(frozen=True)
class LoadedTask:
    """A task from a file: its code names it across loads."""

    code: str
    title: str
    description: str
    deadline: datetime
    locality_ids: frozenset[int]


@dataclass(frozen=True)
class Report:
    task_id: int
    user_id: int
    done_at: str
    note: str
    sha256: str | None
    mime: str | None
    filename: str | None


@dataclass(frozen=True)
class Assignment:
    """One assigned cadre and one locality of their scope that lies inside the task's localities."""

    user_id: int
    locality_id: int


STAGE_BATCH = 1000
_COLUMNS = "t.id, t.code, t.title, t.description, t.deadline, t.created_by, t.created_at"
# The cadres of a task: scope localities (l) inside a target (tgt), cadres not erased.
_ASSIGNED = (
    " FROM task_localities tl JOIN localities tgt ON tgt.id = tl.locality_id"
    " JOIN localities l ON substr(l.path, 1, length(tgt.path)) = tgt.path"
    " JOIN cadre_localities cl ON cl.locality_id = l.id"
    " JOIN users u ON u.id = cl.user_id AND u.role = 'cadre' AND u.deleted_at IS NULL"
)


def _task(r) -> Task:
    return Task(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


class TaskRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, title: str, description: str, deadline: datetime, locality_ids: set[int],
                     created_by: int | None, now: datetime, code: str | None = None) -> Task:
        """A new task, or (with a `code` already known) the same task brought up to date."""
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "INSERT INTO tasks (code, title, description, deadline, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET title = excluded.title,"
                " description = excluded.description, deadline = excluded.deadline RETURNING id",
                (code, title, description, iso(deadline), created_by, iso(now)))
            task_id = (await cur.fetchone())[0]
            await cur.close()
            await conn.execute("DELETE FROM task_localities WHERE task_id = ?", (task_id,))
            await conn.executemany("INSERT INTO task_localities (task_id, locality_id) VALUES (?, ?)",
                                   [(task_id, i) for i in sorted(locality_ids)])
        return await self.get(task_id)

    async def load(self, tasks: list[LoadedTask], now: datetime) -> tuple[int, int]:
        """Create or update tasks by code, all or nothing; returns (created, updated). They are staged in
        TEMP tables, in batches, which takes no lock on the database file, then applied in one short
        transaction of four statements, so the running bot's writes wait milliseconds, not the whole load."""
        await self.db.scratch("CREATE TEMP TABLE task_import (code TEXT PRIMARY KEY, title TEXT, description TEXT,"
                              " deadline TEXT)")
        await self.db.scratch("CREATE TEMP TABLE task_import_places (code TEXT, locality_id INTEGER)")
        try:
            for start in range(0, len(tasks), STAGE_BATCH):
                batch = tasks[start:start + STAGE_BATCH]
                await self.db.scratch("INSERT INTO temp.task_import VALUES (?, ?, ?, ?)",
                                      [(t.code, t.title, t.description, iso(t.deadline)) for t in batch])
                await self.db.scratch("INSERT INTO temp.task_import_places VALUES (?, ?)",
                                      [(t.code, i) for t in batch for i in sorted(t.locality_ids)])
            async with self.db.tx() as conn:
                async with conn.execute("SELECT count(*) FROM temp.task_import s JOIN tasks t ON t.code = s.code") as c:
                    updated = (await c.fetchone())[0]
                await conn.execute(
                    "INSERT INTO tasks (code, title, description, deadline, created_at)"
                    " SELECT code, title, description, deadline, ? FROM temp.task_import WHERE true"
                    " ON CONFLICT(code) DO UPDATE SET title = excluded.title, description = excluded.description,"
                    " deadline = excluded.deadline", (iso(now),))
                await conn.execute("DELETE FROM task_localities WHERE task_id IN"
                                   " (SELECT t.id FROM tasks t JOIN temp.task_import s ON s.code = t.code)")
                await conn.execute("INSERT INTO task_localities (task_id, locality_id) SELECT t.id, p.locality_id"
                                   " FROM temp.task_import_places p JOIN tasks t ON t.code = p.code")
        finally:
            await self.db.scratch("DROP TABLE temp.task_import")
            await self.db.scratch("DROP TABLE temp.task_import_places")
        return len(tasks) - updated, updated

    async def get(self, task_id: int) -> Task | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM tasks t WHERE t.id = ?", (task_id,))
        return _task(r) if r else None

    async def all(self) -> list[Task]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM tasks t ORDER BY t.deadline, t.id")
        return [_task(r) for r in rows]

    async def latest_created(self) -> str | None:
        row = await self.db.fetchone("SELECT max(created_at) FROM tasks")
        return row[0] if row else None

    async def localities(self, task_id: int) -> list[int]:
        rows = await self.db.fetchall("SELECT locality_id FROM task_localities WHERE task_id = ? ORDER BY locality_id",
                                      (task_id,))
        return [r[0] for r in rows]

    async def assignments(self, task_id: int) -> list[Assignment]:
        rows = await self.db.fetchall(f"SELECT DISTINCT cl.user_id, l.id {_ASSIGNED} WHERE tl.task_id = ?"
                                      " ORDER BY cl.user_id, l.id", (task_id,))
        return [Assignment(r[0], r[1]) for r in rows]

    async def assignees(self, task_id: int) -> list[int]:
        return sorted({a.user_id for a in await self.assignments(task_id)})

    async def is_assigned(self, task_id: int, user_id: int) -> bool:
        row = await self.db.fetchone(f"SELECT 1 {_ASSIGNED} WHERE tl.task_id = ? AND cl.user_id = ? LIMIT 1",
                                     (task_id, user_id))
        return row is not None

    async def of_cadre(self, user_id: int) -> list[tuple[Task, Report | None]]:
        """A cadre's tasks, the nearest deadline first, each with the cadre's report if there is one."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM tasks t WHERE t.id IN (SELECT tl.task_id {_ASSIGNED} WHERE cl.user_id = ?)"
            " ORDER BY t.deadline, t.id", (user_id,))
        reports = await self.reports_of(user_id)
        return [(_task(r), reports.get(r[0])) for r in rows]

    async def pending(self, deadline_from: datetime, deadline_to: datetime) -> list[tuple[Task, int]]:
        """(task, cadre) for every assigned cadre who has not reported, for tasks whose deadline is in
        [from, to)."""
        rows = await self.db.fetchall(
            f"SELECT DISTINCT {_COLUMNS}, cl.user_id FROM tasks t JOIN task_localities tl0 ON tl0.task_id = t.id"
            " JOIN localities tgt ON tgt.id = tl0.locality_id"
            " JOIN localities l ON substr(l.path, 1, length(tgt.path)) = tgt.path"
            " JOIN cadre_localities cl ON cl.locality_id = l.id"
            " JOIN users u ON u.id = cl.user_id AND u.role = 'cadre' AND u.deleted_at IS NULL"
            " WHERE t.deadline >= ? AND t.deadline < ?"
            " AND NOT EXISTS (SELECT 1 FROM task_reports r WHERE r.task_id = t.id AND r.user_id = cl.user_id)"
            " ORDER BY t.deadline, t.id, cl.user_id", (iso(deadline_from), iso(deadline_to)))
        return [(_task(r), r[7]) for r in rows]

    async def report(self, task_id: int, user_id: int, note: str, now: datetime, sha256: str | None = None,
                     mime: str | None = None, filename: str | None = None) -> Report:
        await self.db.execute(
            "INSERT INTO task_reports (task_id, user_id, done_at, note, sha256, mime, filename)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(task_id, user_id) DO UPDATE SET done_at = excluded.done_at,"
            " note = excluded.note, sha256 = excluded.sha256, mime = excluded.mime, filename = excluded.filename",
            (task_id, user_id, iso(now), note, sha256, mime, filename))
        return Report(task_id, user_id, iso(now), note, sha256, mime, filename)

    async def reports(self, task_id: int) -> dict[int, Report]:
        rows = await self.db.fetchall(
            "SELECT task_id, user_id, done_at, note, sha256, mime, filename FROM task_reports WHERE task_id = ?",
            (task_id,))
        return {r[1]: Report(*r) for r in rows}

    async def reports_of(self, user_id: int) -> dict[int, Report]:
        rows = await self.db.fetchall(
            "SELECT task_id, user_id, done_at, note, sha256, mime, filename FROM task_reports WHERE user_id = ?",
            (user_id,))
        return {r[0]: Report(*r) for r in rows}

    async def progress(self) -> dict[int, tuple[int, int]]:
        """Per task: (cadres who reported it done, cadres assigned)."""
        rows = await self.db.fetchall(
            "SELECT a.task_id, count(*), sum(CASE WHEN EXISTS (SELECT 1 FROM task_reports r"
            " WHERE r.task_id = a.task_id AND r.user_id = a.user_id) THEN 1 ELSE 0 END)"
            " FROM (SELECT DISTINCT tl.task_id, cl.user_id" + _ASSIGNED + ") a"
            " GROUP BY a.task_id")
        return {r[0]: (int(r[2]), int(r[1])) for r in rows}
