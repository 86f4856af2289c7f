"""A locality file worked out against the committed tree, staged, then applied in one short transaction.

The tree is read once (a read never waits for a writer) and the file's rows are applied to it in memory, in
order, as if one by one: a parent must exist or come earlier, a place may move under another parent (its
villages and its cases move with it), never under itself. Only what differs from the committed tree is
staged, in batches, into a TEMP table, which takes no lock on the database file, so the running bot
writes on meanwhile. The last transaction checks that the tree is still the one the plan was made from,
then writes the staged rows and moves the cases' paths, a few statements in all. Any mistake in the file
is found before anything is staged: a bad file changes nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from storage.db import Database
from storage.text import fold

KINDS = {"tinh": 0, "xa": 1, "phuong": 1, "dac_khu": 1, "thon": 2, "ban": 2, "to_dan_pho": 2, "khu_pho": 2}
STAGE_BATCH = 1000


class LocalityError(ValueError):
    """What is wrong with a locality file: the [cli.file] catalog key that says it, and its values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key, values)
        self.key, self.values = key, values


@dataclass
class _Place:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    path: str
    committed: tuple | None  # (name, kind, parent_id, path) as stored; None for a new place

    def state(self) -> tuple:
        return self.name, self.kind, self.parent_id, self.path


class _Tree:
    def __init__(self, rows) -> None:
        self.by_code: dict[str, _Place] = {}
        self.by_id: dict[int, _Place] = {}
        self.children: dict[int | None, set[int]] = {}
        for r in rows:
            self._add(_Place(r[0], r[1], r[2], r[3], r[4], r[5], (r[2], r[3], r[4], r[5])))
        self.size = len(self.by_id)
        self.top = max(self.by_id, default=0)
        self.next_id = self.top + 1

    def _add(self, place: _Place) -> None:
        self.by_code[place.code] = self.by_id[place.id] = place
        self.children.setdefault(place.parent_id, set()).add(place.id)

    def put(self, number: int, code: str, name: str, kind: str, parent_code: str) -> None:
        parent_id, parent_path = None, "/"
        if parent_code:
            parent = self.by_code.get(parent_code)
            if parent is None:
                raise LocalityError("locality_parent", row=number, code=repr(parent_code))
            parent_id, parent_path = parent.id, parent.path
        place = self.by_code.get(code)
        if place is None:
            new_id, self.next_id = self.next_id, self.next_id + 1
            self._add(_Place(new_id, code, name, kind, parent_id, f"{parent_path}{new_id}/", None))
            return
        if parent_path.startswith(place.path):
            raise LocalityError("locality_loop", row=number, code=repr(code), parent=repr(parent_code))
        place.name, place.kind = name, kind
        if place.parent_id != parent_id:
            self.children[place.parent_id].discard(place.id)
            self.children.setdefault(parent_id, set()).add(place.id)
            place.parent_id = parent_id
        new_path = f"{parent_path}{place.id}/"
        if new_path != place.path:
            old = place.path
            for inside in self._subtree(place.id):
                inside.path = new_path + inside.path[len(old):]

    def _subtree(self, place_id: int) -> Iterator[_Place]:
        stack = [place_id]
        while stack:
            current = stack.pop()
            yield self.by_id[current]
            stack.extend(self.children.get(current, ()))

    def changed(self) -> list[_Place]:
        return [p for p in self.by_id.values() if p.committed != p.state()]


def parse(text: str) -> Iterator[tuple[int, str, str, str, str]]:
    """(row number, code, name, kind, parent code) of each line; lines starting with '#' are comments."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = {"code", "name", "kind", "parent_code"} - set(reader.fieldnames or [])
    if missing:
        raise LocalityError("locality_columns", columns=", ".join(sorted(missing)))
    for number, rec in enumerate(reader, start=2):
        code, name = (rec["code"] or "").strip(), unicodedata.normalize("NFC", (rec["name"] or "").strip())
        kind, parent_code = (rec["kind"] or "").strip(), (rec["parent_code"] or "").strip()
        if not code or not name or kind not in KINDS:
            raise LocalityError("locality_row", row=number, kind=repr(kind))
        yield number, code, name, kind, parent_code


async def import_csv(db: Database, text: str) -> int:
    """Insert or update localities from CSV (code,name,kind,parent_code); returns the rows read."""
    tree = _Tree(await db.fetchall("SELECT id, code, name, kind, parent_id, path FROM localities"))
    count = 0
    for number, code, name, kind, parent_code in parse(text):
        tree.put(number, code, name, kind, parent_code)
        count += 1
    changed = tree.changed()
    await db.scratch("CREATE TEMP TABLE locality_import (id INTEGER PRIMARY KEY, code TEXT, name TEXT,"
                     " name_folded TEXT, kind TEXT, level INTEGER, parent_id INTEGER, path TEXT, old_path TEXT)")
    try:
        for start in range(0, len(changed), STAGE_BATCH):
            await db.scratch("INSERT INTO temp.locality_import VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(p.id, p.code, p.name, fold(p.name), p.kind, KINDS[p.kind], p.parent_id, p.path,
                               p.committed[3] if p.committed else None) for p in changed[start:start + STAGE_BATCH]])
        await db.scratch("CREATE INDEX temp.locality_import_old ON locality_import(old_path)")
        async with db.tx() as conn:
            await _apply(conn, tree)
    finally:
        await db.scratch("DROP TABLE temp.locality_import")
    return count


async def _apply(conn, tree: _Tree) -> None:
    async with conn.execute(
        "SELECT (SELECT count(*) FROM localities), (SELECT coalesce(max(id), 0) FROM localities),"
        " (SELECT count(*) FROM temp.locality_import s JOIN localities l ON l.id = s.id"
        "  WHERE l.path IS NOT s.old_path),"
        " (SELECT count(*) FROM temp.locality_import s JOIN localities p ON p.id = s.parent_id"
        "  WHERE s.parent_id NOT IN (SELECT id FROM temp.locality_import) AND s.path <> p.path || s.id || '/')"
    ) as cur:
        size, top, moved, misplaced = await cur.fetchone()
    if (size, top, moved, misplaced) != (tree.size, tree.top, 0, 0):
        raise LocalityError("locality_changed")
    # A place may name as parent one inserted later in the statement: checked at the commit.
    await conn.execute("PRAGMA defer_foreign_keys = ON")
    await conn.execute(
        "INSERT INTO localities (id, code, name, name_folded, kind, level, parent_id, path)"
        " SELECT id, code, name, name_folded, kind, level, parent_id, path FROM temp.locality_import WHERE true"
        " ON CONFLICT(id) DO UPDATE SET name = excluded.name, name_folded = excluded.name_folded,"
        " kind = excluded.kind, level = excluded.level, parent_id = excluded.parent_id, path = excluded.path")
    await conn.execute(
        "UPDATE cases SET locality_path = (SELECT s.path FROM temp.locality_import s"
        " WHERE s.old_path = cases.locality_path)"
        " WHERE locality_path IN (SELECT old_path FROM temp.locality_import WHERE old_path <> path)")
