"""The database side of backups and checks: SQLite's online backup API, the integrity and foreign-key
checks, which files the database names, and whether a process has it open.

These are blocking calls on a connection of their own (the standard `sqlite3` module), meant to run in a
thread: a backup copying a large database must neither hold the bot's connection nor its event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

# SQLite's unix VFS: every connection to a WAL database holds a shared lock on this byte of the -shm file
# (the "dead-man switch") for as long as it is open; an exclusive lock on it succeeds only when no process
# has the database open.
_SHM_DMS_BYTE = 128


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        yield conn
    finally:
        conn.close()


def snapshot(source: Path, target: Path) -> None:
    """Copy `source` into the new file `target` as of one instant. In one step, so the copy reads one
    snapshot under WAL while the bot goes on writing (copying in steps restarts whenever another connection
    writes, and a running broadcast writes all the time)."""
    with _connect(source) as src, _connect(target) as dst:
        src.backup(dst)
        # One self-contained file: the copy keeps no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")


def readable(path: Path) -> None:
    """Raises sqlite3.DatabaseError when `path` is not an SQLite database at all."""
    with _connect(path) as conn:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def integrity(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong: empty when the database is sound."""
    with _connect(path) as conn:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def foreign_key_problems(path: Path) -> list[tuple[str, int | None, str]]:
    """Rows pointing at rows that do not exist: (table, rowid, the table it points at)."""
    with _connect(path) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute("PRAGMA foreign_key_check")]


def file_references(path: Path) -> dict[str, str]:
    """Every file the database names, sha256 → the first table naming it. A column named `sha256` or
    ending in `_sha256` names a file in the file store, so a new table holding files is covered too."""
    found: dict[str, str] = {}
    with _connect(path) as conn:
        columns = conn.execute(
            "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p"
            " WHERE m.type = 'table' AND (p.name = 'sha256' OR p.name LIKE '%\\_sha256' ESCAPE '\\')"
            " ORDER BY m.name, p.name").fetchall()
        for table, column in columns:
            for (digest,) in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'):
                found.setdefault(str(digest), table)
    return found


def in_use(path: Path) -> bool:
    """Whether another process (a running bot) has the database open. A process's own connections do not
    count (POSIX locks are per process), so call it before opening the database here."""
    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except FileNotFoundError:  # the last connection to close removes it
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
