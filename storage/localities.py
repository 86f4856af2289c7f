"""The locality tree (tỉnh → xã/phường/đặc khu → thôn/tổ dân phố), loaded from CSV."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from storage.db import Database
from storage.locality_import import import_csv
from storage.text import fold


@dataclass(frozen=True)
class Locality:
    id: int
    code: str
    name: str
    kind: str
    level: int
    parent_id: int | None
    path: str


def subtree_end(path: str) -> str:
    """The first string after every path that starts with `path` ("/1/7/" → "/1/70"; '0' follows '/'):
    `path <= p < subtree_end(path)` is the subtree as a range an index can seek, unlike LIKE."""
    return path[:-1] + chr(ord(path[-1]) + 1)


def _row(r) -> Locality:
    return Locality(r["id"], r["code"], r["name"], r["kind"], r["level"], r["parent_id"], r["path"])


_COLUMNS = "id, code, name, kind, level, parent_id, path"


class LocalityRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, locality_id: int) -> Locality | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM localities WHERE id = ?", (locality_id,))
        return _row(r) if r else None

    async def by_code(self, code: str) -> Locality | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM localities WHERE code = ?", (code,))
        return _row(r) if r else None

    async def children(self, parent_id: int | None, offset: int = 0, limit: int = 1000) -> list[Locality]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM localities WHERE parent_id IS NOT DISTINCT FROM ?"
            " ORDER BY name_folded LIMIT ? OFFSET ?",
            (parent_id, limit, offset),
        )
        return [_row(r) for r in rows]

    async def count_children(self, parent_id: int | None) -> int:
        r = await self.db.fetchone("SELECT count(*) FROM localities WHERE parent_id IS NOT DISTINCT FROM ?",
                                   (parent_id,))
        return int(r[0])

    async def communes(self, offset: int = 0, limit: int = 1000) -> list[Locality]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM localities WHERE level = 1 ORDER BY name_folded LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_row(r) for r in rows]

    async def page(self, page: int, size: int, parent_id: int | None = None) -> tuple[list[Locality], int, int]:
        """A page of the communes (of `parent_id`'s children, when given) by name, and the number of pages, in one
        query: (the page's localities, the page, how many pages). A page past the end is the last one."""
        where, params = ("parent_id = ?", (parent_id,)) if parent_id is not None else ("level = 1", ())
        page = max(page, 0)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM localities WHERE {where}"
            " ORDER BY name_folded LIMIT ? OFFSET ?", (*params, size, page * size))
        if not rows and page > 0:  # past the end (the list got shorter): the last page
            total = (await self.db.fetchone(f"SELECT count(*) FROM localities WHERE {where}", params))[0]
            return await self.page(min(page - 1, (total - 1) // size), size, parent_id)
        pages = max(1, -(-rows[0]["total"] // size)) if rows else 1
        return [_row(r) for r in rows], page, pages

    async def get_many(self, ids: list[int]) -> list[Locality]:
        """Those of `ids` that exist, in that order."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM localities WHERE id IN ({','.join('?' * len(ids))})",
                                      ids)
        found = {r["id"]: _row(r) for r in rows}
        return [found[i] for i in ids if i in found]

    async def search(self, query: str, level: int | None = None, parent_id: int | None = None,
                     limit: int = 8) -> list[Locality]:
        """Name search ignoring diacritics and case; whole-name matches first, then prefixes."""
        needle = fold(query)
        if not needle:
            return []
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = ["name_folded LIKE ? ESCAPE '\\'"], [f"%{escaped}%"]
        if level is not None:
            where.append("level = ?")
            params.append(level)
        if parent_id is not None:
            where.append("parent_id = ?")
            params.append(parent_id)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM localities WHERE {' AND '.join(where)} "
            "ORDER BY name_folded <> ?, name_folded NOT LIKE ? ESCAPE '\\', level, name_folded LIMIT ?",
            (*params, needle, f"{escaped}%", limit),
        )
        return [_row(r) for r in rows]

    async def chain(self, locality_id: int) -> list[Locality]:
        """From the province down to the locality itself, in one query (empty when there is no such locality)."""
        rows = await self.db.fetchall(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM localities WHERE id = ?"
            " UNION ALL SELECT l.id, l.parent_id FROM localities AS l JOIN up ON l.id = up.parent_id)"
            f" SELECT {_COLUMNS} FROM localities WHERE id IN (SELECT id FROM up) ORDER BY level", (locality_id,))
        return [_row(r) for r in rows]

    async def ancestors(self, locality: Locality) -> list[Locality]:
        """From the province down to `locality` itself."""
        ids = [int(part) for part in locality.path.strip("/").split("/") if part]
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM localities WHERE id IN ({','.join('?' * len(ids))}) ORDER BY level",
            ids,
        )
        return [_row(r) for r in rows]

    async def import_csv(self, text: str) -> int:
        """Insert or update localities from CSV (code,name,kind,parent_code), all or nothing; returns the rows
        read. Lines starting with '#' are comments (the file names its source there). Parents must come
        before their children or already exist."""
        return await import_csv(self.db, text)

    async def import_file(self, path: Path) -> int:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
        return await self.import_csv(text)

    async def seed(self) -> int:
        if await self.db.fetchone("SELECT 1 FROM localities LIMIT 1"):
            return 0
        text = resources.files("storage.seed").joinpath("localities.csv").read_text(encoding="utf-8")
        return await self.import_csv(text)
