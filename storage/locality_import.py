"""A locality file worked out against the committed tree, staged, then applied in one short transaction.

The tree is read once (a read never waits for a writer) and the file's rows are applied to it in memory, in
order, as if one by one: a parent must exist or come earlier, a place may move under another parent (its
villages and its cases move with it), never under itself. The tree has one root, the province, and each place
is of the kind one level below its parent's, after every row. Problems name the line of the file. Only what
differs from the committed tree is staged, in batches, into a TEMP table, which takes no lock on the database
file, so the running bot writes on meanwhile. The last transaction checks that the tree is still the one the
plan was made from, then writes the staged rows and moves the cases' paths, a few statements in all. Any
mistake in the file is found before anything is staged: a bad file changes nothing.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from storage.db import Database
from storage.text import fold

KINDS = {"tinh": 0, "xa": 1, "phuong": 1, "dac_khu": 1, "thon": 2, "ban": 2, "to_dan_pho": 2, "khu_pho": 2}
STAGE_BATCH = 1000
CODE = re.compile(r"[A-Za-z0-9_.\-]{1,40}")
NAME_LIMIT = 200
COLUMNS = ("code", "name", "kind", "parent_code")
# Control and format characters (NUL, CR, tab, zero-width space, BOM, direction marks) and line separators
# print as nothing or break a line: a name or code holding one looks like another and cannot be searched.
UNSEEN = {"Cc", "Cf", "Zl", "Zp"}


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
        place = self.by_code.get(code)
        if parent_code:
            parent = self.by_code.get(parent_code)
            if parent is None:
                raise LocalityError("locality_parent", row=number, code=repr(parent_code))
            if place is not None and parent.path.startswith(place.path):
                raise LocalityError("locality_loop", row=number, code=repr(code), parent=repr(parent_code))
            if KINDS[kind] != KINDS[parent.kind] + 1:
                raise LocalityError("locality_level", row=number, code=repr(code), kind=kind,
                                    parent=repr(parent_code), parent_kind=parent.kind, expected=_kinds(parent.kind))
            parent_id, parent_path = parent.id, parent.path
        else:
            if KINDS[kind] != 0:
                raise LocalityError("locality_root_kind", row=number, code=repr(code), kind=kind)
            others = self.children.get(None, set()) - {place.id if place else None}
            if others:
                raise LocalityError("locality_second_root", row=number, code=repr(code),
                                    root=repr(self.by_id[min(others)].code))
        if place is None:
            new_id, self.next_id = self.next_id, self.next_id + 1
            self._add(_Place(new_id, code, name, kind, parent_id, f"{parent_path}{new_id}/", None))
            return
        if KINDS[place.kind] != KINDS[kind] and self.children.get(place.id):  # its places would be off a level
            inside = self.by_id[min(self.children[place.id])]
            raise LocalityError("locality_children", row=number, code=repr(code), kind=kind,
                                child=repr(inside.code), child_kind=inside.kind)
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


def _kinds(parent_kind: str) -> str:
    return ", ".join(k for k, level in KINDS.items() if level == KINDS[parent_kind] + 1)


def parse(text: str) -> Iterator[tuple[int, str, str, str, str]]:
    """(line number, code, name, kind, parent code) of each row; lines starting with '#' are comments."""
    numbers: list[int] = []  # the file's line number of each line the reader is given

    def lines() -> Iterator[str]:
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                numbers.append(number)
                yield line + "\n"

    reader = csv.reader(lines())
    consumed = 0
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = set(COLUMNS) - set(header)
        if missing:
            raise LocalityError("locality_columns", columns=", ".join(sorted(missing)))
        where = [header.index(column) for column in COLUMNS]
        consumed = reader.line_num
        for rec in reader:
            number, consumed = numbers[consumed], reader.line_num
            yield (number, *_row(number, [rec[i].strip() if i < len(rec) else "" for i in where]))
    except csv.Error as err:
        raise LocalityError("locality_csv", row=numbers[min(consumed, len(numbers) - 1)], detail=err) from None


def _row(number: int, fields: list[str]) -> tuple[str, str, str, str]:
    for column, value in zip(COLUMNS, fields, strict=True):
        unseen = next((ch for ch in value if unicodedata.category(ch) in UNSEEN), None)
        if unseen is not None:
            raise LocalityError("locality_control", row=number, column=column, char=f"U+{ord(unseen):04X}")
    code, name, kind, parent_code = fields
    name = unicodedata.normalize("NFC", name)
    if not code or not name or kind not in KINDS:
        raise LocalityError("locality_row", row=number, kind=repr(kind))
    if not CODE.fullmatch(code):
        raise LocalityError("locality_code", row=number, code=repr(code))
    if len(name) > NAME_LIMIT:
        raise LocalityError("locality_name_long", row=number, length=len(name), limit=NAME_LIMIT)
    return code, name, kind, parent_code


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
        "  WHERE l.path IS DISTINCT FROM s.old_path),"
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
