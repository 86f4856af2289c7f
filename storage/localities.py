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

    async def count_communes(self) -> int:
        r = await self.db.fetchone("SELECT count(*) FROM localities WHERE level = 1")
        return int(r[0])

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
