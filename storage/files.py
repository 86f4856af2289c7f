"""Files people sent (photos, voice notes, documents), content-addressed, so that a case's attachments do not
depend on the channel they came through: on disk beside an SQLite database, in the database itself when it is
PostgreSQL (every worker sees them, and one dump is the whole backup)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

import aiosqlite

from storage.db import Database
from storage.dialect import is_url


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise ValueError("not a sha256 digest")
        return self.root / digest[:2] / digest

    async def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self._path(digest)

        await asyncio.to_thread(_write_once, path, content)
        return digest

    async def get(self, digest: str) -> bytes | None:
        path = self._path(digest)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)

    async def delete(self, digests: Iterable[str]) -> int:
        """Remove these files from disk (those already gone are skipped); returns how many were removed."""
        paths = [self._path(d) for d in digests]

        def remove() -> int:
            removed = 0
            for path in paths:
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
            return removed

        return await asyncio.to_thread(remove)

    async def restore(self, by_digest: dict[str, bytes]) -> None:
        """Put again those of these files (by digest) that a delete took since they were put (see
        DatabaseFileStore.restore); their digests are known, not computed again."""
        def write() -> None:
            for digest, content in by_digest.items():
                _write_once(self._path(digest), content)

        await asyncio.to_thread(write)


def _write_once(path: Path, content: bytes) -> None:
    """The file at `path` unless it is there (content-addressed: what is there is the same), written whole or not."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)


class DatabaseFileStore:
    """The same calls over the `files` table (storage/pg.py makes it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, content: bytes, conn: aiosqlite.Connection | None = None) -> str:
        """Keep `content`. Given `conn`, inside that transaction: the row stays locked until it commits, so a
        `delete` of the same bytes waits for the name the transaction adds beside them, and then sees it."""
        digest = hashlib.sha256(content).hexdigest()
        # DO UPDATE, not DO NOTHING: it locks the row that is already there.
        sql = ("INSERT INTO files (sha256, content) VALUES (?, ?)"
               " ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256")
        if conn is None:
            await self.db.execute(sql, (digest, content))
        else:
            await conn.execute(sql, (digest, content))
        return digest

    async def restore(self, by_digest: dict[str, bytes]) -> None:
        """Put again those of these files (by digest) that a delete took since they were put, once what names them
        is written (a draft): a delete that runs later sees the name, one that ran in between finds it undone here.
        The rows are locked to be looked at, so that a delete still under way is waited for."""
        async with self.db.tx() as conn:
            async with conn.execute(f"SELECT sha256 FROM files WHERE sha256 IN ({','.join('?' * len(by_digest))})"
                                    " ORDER BY sha256 FOR KEY SHARE", list(by_digest)) as cur:
                present = {r[0] for r in await cur.fetchall()}
            for digest in sorted(by_digest.keys() - present):  # in `delete`'s order: two never wait for each other
                await self.put(by_digest[digest], conn)

    async def get(self, digest: str) -> bytes | None:
        if not is_digest(digest):
            raise ValueError("not a sha256 digest")
        row = await self.db.fetchone("SELECT content FROM files WHERE sha256 = ?", (digest,))
        return bytes(row[0]) if row else None

    async def delete(self, digests: Iterable[str]) -> int:
        """Remove the files of these digests that nothing names any more. The deleters found them unnamed in an
        earlier transaction; a worker may have named the same bytes since, so it is asked again here, after
        locking the rows (a writer naming them in its transaction holds that lock until it commits)."""
        removed, wanted = 0, sorted(set(digests))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            async with self.db.tx() as conn:
                await conn.execute(f"SELECT sha256 FROM files WHERE sha256 IN ({marks}) ORDER BY sha256 FOR UPDATE",
                                   chunk)
                cur = await conn.execute(f"DELETE FROM files f WHERE sha256 IN ({marks}) AND {_unnamed(marks)}",
                                         chunk * (1 + len(_DRAFTS)))
                removed += cur.rowcount
        return removed


# Every place that may name a file by its digest: a column, or a JSON draft that mentions it (a half-written case,
# a broadcast being composed).
_COLUMNS = (("case_attachments", "sha256"), ("task_reports", "sha256"), ("broadcasts", "photo_sha256"),
            ("dvk_photos", "sha256"), ("web_files", "sha256"))
_DRAFTS = ("case_drafts", "conversations")
_HEX = re.compile(r"[0-9a-f]{64}")  # what may be a digest in a draft: a false match only keeps a file
_CHUNK = 500  # digests per IN (…), well under SQLite's limit on parameters


def _unnamed(marks: str) -> str:
    """Nothing names the file, as a condition on `files f` in one statement (one snapshot: a name moved from a
    draft to a case's row in between two reads would be missed by both). Each draft's digests are found once, as
    `unreferenced` finds them, and only those among the chunk's are kept (`marks`, whose parameters follow once per
    draft table): a list small enough to be hashed, where every draft's digests were searched once per file."""
    return " AND ".join(
        [f"NOT EXISTS (SELECT 1 FROM {table} WHERE {column} = f.sha256)" for table, column in _COLUMNS]
        + [f"f.sha256 NOT IN (SELECT m[1] FROM {table}, regexp_matches(data, '{_HEX.pattern}', 'g') AS m"
           f" WHERE m[1] IN ({marks}))" for table in _DRAFTS])


async def unreferenced(conn: aiosqlite.Connection, digests: Iterable[str]) -> set[str]:
    """Those of `digests` nothing in the database refers to any more: their files can go. Asked inside the
    transaction that dropped the references, so it sees them gone; the drafts are read once, not once a file."""
    free = set(digests)
    for table, column in _COLUMNS:
        wanted = sorted(free)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            async with conn.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})",
                                    chunk) as cur:
                free -= {r[0] for r in await cur.fetchall()}
    for table in _DRAFTS:
        if not free:
            break
        async with conn.execute(f"SELECT data FROM {table}") as cur:
            async for (data,) in cur:
                free.difference_update(_HEX.findall(data))
    return free


def is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def digests_in(draft: str | None) -> set[str]:
    """The file digests a JSON draft holds, wherever its flow keeps them (a case's attachments, a broadcast's
    photo)."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif is_digest(value):
            found.add(value)

    walk(json.loads(draft) if draft else None)
    return found


def local_dir(db_path: str | Path) -> Path:
    """Where a process keeps what is not in the database (the web chat's files, the file-link key): beside an
    SQLite file; `data/` in the working directory with PostgreSQL, where only a file-link key made for want of
    DANVAN_FILE_SECRET is kept."""
    return Path("data") if is_url(db_path) else Path(db_path).parent


def files_dir(db_path: str | Path) -> Path:
    """Where the files of the database at `db_path` live ("data/danvan.db" → "data/files/"), as `Store.open`
    puts them."""
    return Path(db_path).parent / "files"
