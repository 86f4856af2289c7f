"""`danvan db copy`: a province's SQLite database and the files beside it, into an empty PostgreSQL database (the
move up, docs/scaling.md).

The source is read from a snapshot (SQLite's backup API, as `danvan db backup` takes it), so the bot may go on
running meanwhile; the snapshot is migrated to this code's schema, then every table is copied in the order its
foreign keys need, in batches, in one transaction on the target, with the files (content-addressed, so a file
stored after the snapshot only adds one nobody names yet). The web chat's files, kept on SQLite's disk
(`uploads/<channel>/<owner>/<name>`, storage/web_files.py `WebFolder`), are named in the snapshot's `web_files` as
`WebFileRepo` names them on PostgreSQL, their bytes copied with the files. Then the identity sequences start after
the highest id copied, and the copy is checked: rows counted per table on both sides, and a random sample of each
table's rows looked up on the target by primary key and compared value by value.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage import backup
from storage.db import Database
from storage.files import files_dir, is_digest, local_dir

BATCH = 500  # rows per INSERT: one round trip each
FILE_BATCH_BYTES = 8 << 20
SAMPLE = 20  # rows compared per table


class CopyError(Exception):
    """Why the copy was not made: the [cli] catalog key that says it, and its values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key, values)
        self.key, self.values = key, values


@dataclass
class Copied:
    rows: dict[str, int] = field(default_factory=dict)  # per table, in the order copied
    files: int = 0
    uploads: int = 0  # the web chat's files, of them
    mismatches: list[str] = field(default_factory=list)  # "table: what differs"
    missing_files: list[str] = field(default_factory=list)  # digests the database names and the disk lacked

    @property
    def problems(self) -> int:
        return len(self.mismatches) + len(self.missing_files)


@dataclass
class _Table:
    name: str
    columns: list[str]
    key: list[str]
    parents: set[str]


async def copy(source: Path, target: str, *, force: bool = False, batch: int = BATCH,
               sample: int = SAMPLE) -> Copied:
    if not await asyncio.to_thread(source.exists):
        raise CopyError("no_source", path=source)
    with tempfile.TemporaryDirectory(prefix="danvan-copy-") as tmp:
        snapshot = Path(tmp) / "snapshot.db"
        await asyncio.to_thread(backup.snapshot, source, snapshot)
        src = await Database.open(snapshot)
        try:
            await src.migrate()
            uploads = await _name_uploads(src, local_dir(source) / "uploads")
            dst = await Database.open(target)
            try:
                await dst.migrate()
                copied = await _copy(src, dst, files_dir(source), uploads, force=force, batch=batch, sample=sample)
                copied.uploads = len(uploads)
                return copied
            finally:
                await dst.close()
        finally:
            await src.close()


async def _copy(src: Database, dst: Database, files: Path, uploads: list[Path], *, force: bool, batch: int,
                sample: int) -> Copied:
    tables = _ordered(await _tables(src))
    names = [t.name for t in tables] + ["files"]
    filled = [name for name in names if await dst.fetchone(f"SELECT 1 FROM {name} LIMIT 1")]
    if filled and not force:
        raise CopyError("not_empty", tables=", ".join(filled))
    copied = Copied()
    async with dst.tx() as conn:
        if filled:
            await conn.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        # Rows of a table may name rows of the same table copied later (a case merged into a newer one).
        await conn.execute("PRAGMA defer_foreign_keys = ON")
        for table in tables:
            copied.rows[table.name] = await _copy_table(src, conn, table, batch)
        copied.files = await _copy_files(conn, files, uploads)
        for name in sorted(dst.conn.numbered):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 0) + 1,"
                               f" false) FROM {name}")
    for table in tables:
        copied.mismatches += await _check(src, dst, table, copied.rows[table.name], sample)
    # Every file the source names, by the rule backups check them with (a column `sha256` or `…_sha256`, so a new
    # table holding files is covered too), is on the target.
    named = sorted(await asyncio.to_thread(backup.file_references, Path(src.path)))
    for start in range(0, len(named), BATCH):
        chunk = named[start:start + BATCH]
        there = await dst.fetchall(f"SELECT sha256 FROM files WHERE sha256 IN ({', '.join('?' * len(chunk))})", chunk)
        copied.missing_files += sorted(set(chunk) - {r[0] for r in there})
    return copied


async def _tables(src: Database) -> list[_Table]:
    tables = []
    for (name,) in await src.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"
                                      " AND name NOT LIKE 'sqlite%' AND name <> 'schema_migrations' ORDER BY name"):
        info = await src.fetchall(f"PRAGMA table_info({name})")
        key = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        parents = {r[2] for r in await src.fetchall(f"PRAGMA foreign_key_list({name})")} - {name}
        tables.append(_Table(name, [r[1] for r in info], key, parents))
    return tables


def _ordered(tables: list[_Table]) -> list[_Table]:
    """Parents before children (a cycle, were there one, is copied as found: the keys are deferred)."""
    left, done, order = {t.name: t for t in tables}, set(), []
    while left:
        ready = [t for t in left.values() if t.parents <= done] or [next(iter(left.values()))]
        for table in ready:
            order.append(table)
            done.add(table.name)
            del left[table.name]
    return order


async def _copy_table(src: Database, conn: Any, table: _Table, batch: int) -> int:
    columns = ", ".join(table.columns)
    one = f"({', '.join('?' * len(table.columns))})"
    count = 0
    async with src.reader.execute(f"SELECT {columns} FROM {table.name} ORDER BY {', '.join(table.key)}") as cur:
        while rows := await cur.fetchmany(batch):
            await conn.execute(f"INSERT INTO {table.name} ({columns}) VALUES {', '.join([one] * len(rows))}",
                               [value for row in rows for value in row])
            count += len(rows)
    return count


async def _name_uploads(src: Database, root: Path) -> list[Path]:
    """Name the web chat's files on disk in the snapshot's `web_files`, by channel, owner and name, as kept since
    their file's time (so the web chat's pruning goes on by their age); their paths."""
    found = await asyncio.to_thread(_uploads, root)
    for path, digest, kept in found:
        await src.execute("INSERT INTO web_files (channel, owner, name, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                          (*path.relative_to(root).parts, digest, kept))
    return [path for path, _, _ in found]


def _uploads(root: Path) -> list[tuple[Path, str, str]]:
    """`root/<channel>/<owner>/<name>`: each file, the digest of its content and its time as SQLite writes one."""
    found = []
    for path in sorted(root.glob("*/*/*")) if root.is_dir() else ():
        if path.is_file():
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            kept = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            found.append((path, digest, kept))
    return found


async def _copy_files(conn: Any, root: Path, more: list[Path]) -> int:
    count = 0
    for chunk in await asyncio.to_thread(lambda: list(_file_batches(_stored(root), more))):
        contents = await asyncio.to_thread(lambda c=chunk: [p.read_bytes() for p in c])
        rows = [(hashlib.sha256(content).hexdigest(), content) for content in contents]
        await conn.execute("INSERT INTO files (sha256, content) VALUES "
                           f"{', '.join(['(?, ?)'] * len(rows))} ON CONFLICT DO NOTHING",
                           [value for row in rows for value in row])
        count += len(rows)
    return count


def _stored(root: Path) -> Iterator[Path]:
    """The file store's files (`ab/ab12…`, named by the digest of their content)."""
    for path in sorted(root.glob("??/*")) if root.is_dir() else ():
        if is_digest(path.name):  # not a write that never finished (*.tmp)
            yield path


def _file_batches(*paths: Iterable[Path]) -> Iterator[list[Path]]:
    """The files, a few megabytes at a time."""
    chunk: list[Path] = []
    size = 0
    for path in (p for group in paths for p in group):
        chunk.append(path)
        size += path.stat().st_size
        if size >= FILE_BATCH_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


async def _check(src: Database, dst: Database, table: _Table, copied: int, sample: int) -> list[str]:
    found = []
    (count,) = await dst.fetchone(f"SELECT count(*) FROM {table.name}")
    if count != copied:
        found.append(f"{table.name}: {copied} rows read, {count} on the target")
    columns = ", ".join(table.columns)
    match = " AND ".join(f"{k} = ?" for k in table.key)
    for row in await src.fetchall(f"SELECT {columns} FROM {table.name} ORDER BY random() LIMIT {sample}"):
        keys = [row[table.columns.index(k)] for k in table.key]
        there = await dst.fetchone(f"SELECT {columns} FROM {table.name} WHERE {match}", keys)
        if there is None or [_plain(v) for v in there] != [_plain(v) for v in row]:
            found.append(f"{table.name}: the row {dict(zip(table.key, keys, strict=True))} differs")
    return found


def _plain(value: Any) -> Any:
    """A value as both engines give it back: a flag as a number, bytes as bytes, a moment as SQLite writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
