"""Backups: one tar file holding the database (SQLite's online backup API) and the files it names; their
restore; the check of a database and its files; and the daily backup on the scheduler.

A backup is consistent because files are content-addressed and never deleted, and a file is stored before
the row naming it is committed: once the database is copied, every file the copy names is on disk, and
copying those files afterwards gives the set the copy needs. Only the files the copy names go into the
archive (the web chat's temporary uploads do not). The archive is written under a temporary name and
renamed when complete, so a file named like a backup is a whole one.

    danvan-YYYYMMDD-HHMMSS.tar (UTC)      danvan.db
                                          files/ab/ab12…  (sha256 of the content, as in the file store)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from storage import Store, backup

log = logging.getLogger(__name__)
DB_NAME = "danvan.db"
ARCHIVE = re.compile(r"^danvan-\d{8}-\d{6}\.tar$")
_FILE_MEMBER = re.compile(r"^files/([0-9a-f]{2})/(\1[0-9a-f]{62})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DAILY_AT = time(2, 0)  # local: the quietest hour; a day missed while the bot was down is caught up once
_CHUNK = 1 << 20


class BackupError(Exception):
    """Why a backup or a restore cannot be done: the [cli] catalog key that says it, and its values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key, values)
        self.key, self.values = key, values


@dataclass
class Report:
    """What `check` found: a database is sound when it is readable, whole, its references hold and every
    file it names is present with the content its name promises."""

    database: Path
    unreadable: str | None = None
    integrity: list[str] = field(default_factory=list)
    foreign_keys: list[tuple[str, int | None, str]] = field(default_factory=list)
    damaged_beyond: bool = False  # so damaged that foreign keys and files could not be checked
    files: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)  # (sha256, table)
    damaged: list[tuple[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return (self.unreadable is not None) + len(self.integrity) + len(self.foreign_keys) + len(self.missing) \
            + len(self.damaged)


@dataclass
class Taken:
    path: Path
    files: int
    missing: list[str]  # files the database names that were not in the file store (see `check`)


@dataclass
class Restored:
    done: bool  # False: the backup did not pass its check (`report`), nothing was replaced
    aside: Path | None  # where the database that was there before now is
    report: Report


def archive_name(now: datetime) -> str:
    return f"danvan-{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar"


def _digest_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take(db: Path, files: Path, into: Path, now: datetime) -> Taken:
    """Back up `db` and the files it names into a new archive in `into`. Blocking: run it in a thread."""
    if not db.is_file():  # sqlite3 would create an empty one
        raise BackupError("no_database", path=db)
    into.mkdir(parents=True, exist_ok=True)
    final = into / archive_name(now)
    if final.exists():
        raise BackupError("backup_exists", file=final)
    with tempfile.TemporaryDirectory(prefix=".danvan-backup-", dir=into) as work:
        copy, partial = Path(work) / DB_NAME, Path(work) / final.name
        backup.snapshot(db, copy)
        names = backup.file_references(copy)
        missing, count = [], 0
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(copy, DB_NAME)
            for digest in sorted(names):
                stored = files / digest[:2] / digest
                if _SHA256.match(digest) and stored.is_file():
                    tar.add(stored, f"files/{digest[:2]}/{digest}")
                    count += 1
                else:
                    missing.append(digest)
        partial.chmod(0o600)  # personal data, political opinions among them (DESIGN.md §6)
        _fsync(partial)
        os.replace(partial, final)
    _fsync(into)
    return Taken(final, count, missing)


def prune(into: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups in `into` (by the time in their names)."""
    archives = sorted(p for p in into.iterdir() if ARCHIVE.match(p.name))
    old = archives[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def check(db: Path, files: Path) -> Report:
    """Integrity, foreign keys, and every file the database names present with the right content.
    Blocking: run it in a thread."""
    report = Report(db)
    if not db.is_file():
        report.unreadable = "no such file"
        return report
    try:
        backup.readable(db)
    except sqlite3.DatabaseError as err:
        report.unreadable = str(err)
        return report
    try:
        report.integrity = backup.integrity(db)
        report.foreign_keys = backup.foreign_key_problems(db)
        names = backup.file_references(db)
    except sqlite3.DatabaseError as err:
        report.integrity.append(str(err))
        report.damaged_beyond = True
        return report
    report.files = len(names)
    for digest, table in sorted(names.items()):
        stored = files / digest[:2] / digest
        if not _SHA256.match(digest) or not stored.is_file():  # a malformed name is no file of the store
            report.missing.append((digest, table))
        elif _digest_of(stored) != digest:
            report.damaged.append((digest, table))
    return report


def _copy_checked(source: IO[bytes], target: Path, digest: str) -> None:
    """Write a file from the archive into the file store if its content matches its name (atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".restore")
    sha = hashlib.sha256()
    with tmp.open("wb") as out:
        while chunk := source.read(_CHUNK):
            sha.update(chunk)
            out.write(chunk)
    if sha.hexdigest() == digest:
        tmp.replace(target)
    else:
        tmp.unlink()


def restore(archive: Path, db: Path, files: Path, now: datetime, *, force: bool = False) -> Restored:
    """Put a backup in place of `db`: the files into the file store (content-addressed, so existing ones
    stay), the database after it is checked; the one that was there is kept aside. Refused while a process
    has `db` open, or when `db` exists and not `force`. Blocking: run it in a thread."""
    if backup.in_use(db):
        raise BackupError("restore_in_use", path=db)
    if db.exists() and not force:
        raise BackupError("restore_exists", path=db)
    try:
        tar = tarfile.open(archive)
    except (OSError, tarfile.TarError) as err:
        raise BackupError("restore_unreadable", file=archive, reason=err) from None
    db.parent.mkdir(parents=True, exist_ok=True)
    with tar, tempfile.TemporaryDirectory(prefix=".danvan-restore-", dir=db.parent) as work:
        members = tar.getmembers()
        names = [m.name for m in members]
        if DB_NAME not in names or not all(m.isfile() and (m.name == DB_NAME or _FILE_MEMBER.match(m.name))
                                           for m in members):
            raise BackupError("restore_not_backup", file=archive)
        staged = Path(work) / DB_NAME
        for member in members:
            source = tar.extractfile(member)
            if member.name == DB_NAME:
                with staged.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                continue
            digest = member.name.rsplit("/", 1)[1]
            target = files / digest[:2] / digest
            # The archive's copy, checked, replaces a missing or damaged one; a damaged copy in the archive
            # stays out, and the check below names it.
            if not target.is_file() or _digest_of(target) != digest:
                _copy_checked(source, target, digest)
        report = check(staged, files)
        if report.problems:
            return Restored(False, None, report)
        aside = None
        if db.exists():
            aside = db.with_name(f"{db.name}.before-restore-{now.astimezone(UTC):%Y%m%d-%H%M%S}")
            for suffix in ("", "-wal", "-shm"):  # the -wal may hold committed rows of the old database
                if Path(f"{db}{suffix}").exists():
                    os.replace(f"{db}{suffix}", f"{aside}{suffix}")
        os.replace(staged, db)
    return Restored(True, aside, check(db, files))


class DailyBackup:
    """The daily backup on the scheduler's tick, under the idempotency key `backup:<local date>` (see
    storage.schedule): a restart neither repeats nor skips the day's backup. It runs in a thread, started
    from the tick without awaiting it, so neither the event loop nor the other jobs of the tick wait for it.
    A failed backup is tried again when its claim goes stale (10 minutes)."""

    def __init__(self, store: Store, into: Path, keep: int, tz: ZoneInfo,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.into = into
        self.keep = keep
        self.tz = tz
        self.clock = clock
        self._task: asyncio.Task | None = None

    def register(self, scheduler) -> None:
        scheduler.every_tick("backup", self.tick)

    async def tick(self, now: datetime) -> None:
        if self._task is not None and not self._task.done():
            return
        local = now.astimezone(self.tz)
        day = local.date() if local.time() >= DAILY_AT else local.date() - timedelta(days=1)
        key = f"backup:{day.isoformat()}"
        if await self.store.schedule.claim(key, now):
            self._task = asyncio.create_task(self._run(key, now))

    async def _run(self, key: str, now: datetime) -> None:
        try:
            taken = await asyncio.to_thread(take, Path(self.store.db.path), self.store.files.root, self.into, now)
            await asyncio.to_thread(prune, self.into, self.keep)
            await self.store.schedule.complete(key, self.clock())
        except Exception:
            log.exception("the daily backup into %s failed; it is tried again in a few minutes", self.into)
            return
        log.info("backup written: %s (%d files)", taken.path, taken.files)
        if taken.missing:
            log.error("backup %s: %d files the database names are not in the file store (run `danvan db check`)",
                      taken.path, len(taken.missing))

    async def wait(self) -> None:
        """Until the backup under way, if any, is written (before the store closes)."""
        if self._task is not None:
            await asyncio.shield(self._task)
