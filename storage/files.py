"""Files people sent (photos, voice notes, documents), content-addressed on disk beside the database,
so that a case's attachments do not depend on the channel they came through."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("not a sha256 digest")
        return self.root / digest[:2] / digest

    async def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self._path(digest)

        def write() -> None:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(content)
                tmp.replace(path)

        await asyncio.to_thread(write)
        return digest

    async def get(self, digest: str) -> bytes | None:
        path = self._path(digest)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)


def files_dir(db_path: str | Path) -> Path:
    """Where the files of the database at `db_path` live ("data/danvan.db" → "data/files/"), as `Store.open`
    puts them."""
    return Path(db_path).parent / "files"
