"""A throwaway PostgreSQL cluster for the tests: made with Debian's `initdb` in a temporary folder, reached on a
unix socket there (no port to collide with), gone at the end of the session. Each test gets a database of its
own, copied from a template that is already migrated and seeded."""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from storage import Store

# Durability is not what a test needs; these make a fresh database and each commit cheap.
FAST = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


def binaries() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's versioned folder (the newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


class Cluster:
    def __init__(self, bin_dir: Path, *, settings: str = FAST, memory: bool = True) -> None:
        """`settings` and `memory` are for the benches (bench/databases.py), which measure PostgreSQL as deployed:
        durable, on disk."""
        self.bin = bin_dir
        self.settings = settings
        self.dir = Path(tempfile.mkdtemp(prefix="danvan-pg-", dir=_memory() if memory else None))
        # initdb refuses to run as root: the cluster then belongs to nobody, and root reaches it by the socket.
        self.user = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.dir, self.user, -1)
        self._numbers = itertools.count(1)
        self.admin: psycopg.Connection | None = None

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True, cwd=self.dir,
                       user=self.user)

    def url(self, database: str) -> str:
        return f"postgresql://danvan@/{database}?host={self.dir}"

    def start(self) -> None:
        data = str(self.dir / "data")
        self._run("initdb", "-D", data, "-U", "danvan", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")
        self._run("pg_ctl", "-D", data, "-l", str(self.dir / "log"), "-w", "-o",
                  f"-k {self.dir} -c listen_addresses='' {self.settings}", "start")
        self.admin = psycopg.connect(self.url("postgres"), autocommit=True)
        self.admin.execute("CREATE DATABASE danvan_template")
        asyncio.run(_migrate_and_seed(self.url("danvan_template")))

    def database(self, *, empty: bool = False) -> str:
        """A new database (migrated and seeded, or `empty`); its URL."""
        name = f"test_{next(self._numbers)}"
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else 'danvan_template'}")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
        if (self.dir / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _memory() -> str | None:
    """A tmpfs with room (a container's /dev/shm may have 64 MB): there a new database per test takes milliseconds,
    on disk half a second."""
    shm = "/dev/shm"
    if os.access(shm, os.W_OK):
        stats = os.statvfs(shm)
        if stats.f_bavail * stats.f_frsize > 1 << 30:
            return shm
    return None


async def _migrate_and_seed(url: str) -> None:
    store = await Store.open(url)
    await store.close()
