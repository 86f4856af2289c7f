"""The web chat's files: the photos, voice notes and documents people uploaded and the files the bot offered them,
each under the name the chat's history gives it, in the chat's own place (`owner`: a hash of the chat id), one
place per channel. A link in the history stops working when its file goes: after a while (the handlers kept what
they took in the file store) or with the person's erasure.

One process on SQLite keeps them on disk beside the database (`WebFolder`). Several workers on PostgreSQL keep them
in the database's file store (`WebFileRepo`), since the request that reads a file may reach another worker, on
another machine, than the one that kept it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import time
from datetime import timedelta
from pathlib import Path

from storage.db import Database
from storage.files import DatabaseFileStore, unreferenced


def owner_of(chat_id: str) -> str:
    """The name a web chat's files are kept under (a folder on SQLite's disk, `web_files.owner` on PostgreSQL): a
    hash, so that neither shows the chat's id."""
    return hashlib.sha256(chat_id.encode()).hexdigest()[:16]

class WebFolder:
    """On disk: `root/<owner>/<name>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, owner: str, name: str, content: bytes) -> None:
        await asyncio.to_thread(_write, self.root / owner / name, content)

    async def get(self, owner: str, name: str) -> bytes | None:
        return await asyncio.to_thread(_read, self.root / owner / name)

    async def forget(self, owner: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / owner, True)

    async def prune(self, older_than: timedelta) -> int:
        """Delete the files kept longer ago than `older_than`; how many went."""
        return await asyncio.to_thread(_prune_files, self.root, time.time() - older_than.total_seconds())


class WebFileRepo:
    """In the database (`web_files`, the bytes in `files`): the same calls as `WebFolder`, for one channel."""

    def __init__(self, db: Database, files: DatabaseFileStore, channel: str) -> None:
        self.db, self.files, self.channel = db, files, channel

    async def put(self, owner: str, name: str, content: bytes) -> None:
        async with self.db.tx() as conn:  # one transaction: a `files.delete` of the same bytes sees the name
            digest = await self.files.put(content, conn)
            await conn.execute("INSERT INTO web_files (channel, owner, name, sha256) VALUES (?, ?, ?, ?)",
                               (self.channel, owner, name, digest))

    async def get(self, owner: str, name: str) -> bytes | None:
        row = await self.db.fetchone("SELECT sha256 FROM web_files WHERE channel = ? AND owner = ? AND name = ?",
                                     (self.channel, owner, name))
        return await self.files.get(row[0]) if row else None

    async def forget(self, owner: str) -> None:
        await self._drop("owner = ?", owner)

    async def prune(self, older_than: timedelta) -> int:
        return await self._drop("created_at < now() - make_interval(secs => ?)", older_than.total_seconds())

    async def _drop(self, which: str, value: object) -> int:
        """Forget the names `which` picks; their files go when nothing else names them (a case that kept the same
        photo, another chat's upload of the same bytes)."""
        async with self.db.tx() as conn:
            async with conn.execute(f"DELETE FROM web_files WHERE channel = ? AND {which} RETURNING sha256",
                                    (self.channel, value)) as cur:
                dropped = [r[0] for r in await cur.fetchall()]
            free = await unreferenced(conn, dropped)
        await self.files.delete(free)
        return len(dropped)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _prune_files(folder: Path, before: float) -> int:
    removed = 0
    for path in folder.glob("*/*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    for owner in folder.glob("*"):
        with contextlib.suppress(OSError):  # only the folders left empty
            owner.rmdir()
    return removed
