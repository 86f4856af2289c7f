"""Where a bench's databases live (`--db`): SQLite files in its temporary folder (`sqlite`, the default);
PostgreSQL in a throwaway cluster started the way the tests start theirs (`postgresql`: Debian's initdb, a unix
socket in a temporary folder), but on disk with PostgreSQL's own durable settings, as it would be deployed; or
on a server of your own (`postgresql://…`, a role that may CREATE DATABASE: each scenario gets a new database,
dropped after)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from storage.dialect import is_url
from tests.postgres import Cluster, binaries

# PostgreSQL's defaults, but for what a benchmark's short life needs: fsync and synchronous_commit stay on.
DURABLE = "-c max_connections=50"


class Databases:
    def __init__(self, db: str) -> None:
        self.kind = "postgresql" if db == "postgresql" or is_url(db) else "sqlite"
        self._url = db if is_url(db) else None
        self._cluster: Cluster | None = None
        self._made: list[str] = []
        self._numbers = itertools.count(1)
        self._cwd: tuple[str, str] | None = None  # (where we were, the folder we moved to)

    def __enter__(self) -> Databases:
        if self.kind == "postgresql":
            # Beside PostgreSQL a process keeps a few files in ./data (storage.files.local_dir): not in the checkout.
            self._cwd = (os.getcwd(), tempfile.mkdtemp(prefix="danvan-bench-cwd-"))
            os.chdir(self._cwd[1])
            if self._url is None:
                bin_dir = binaries()
                if bin_dir is None:
                    raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
                self._cluster = Cluster(bin_dir, settings=DURABLE, memory=False)
                self._cluster.start()
        return self

    def fresh(self, tmp: Path, name: str) -> Path | str:
        """A new, empty database for one scenario: a file in `tmp`, or a PostgreSQL URL."""
        if self.kind == "sqlite":
            return tmp / f"{name}.db"
        if self._cluster is not None:
            return self._cluster.database(empty=True)
        database = f"danvan_bench_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self._url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        self._made.append(database)
        return urlunsplit(urlsplit(self._url)._replace(path=f"/{database}"))

    def __exit__(self, *exc: object) -> None:
        if self._cwd is not None:
            os.chdir(self._cwd[0])
            shutil.rmtree(self._cwd[1], ignore_errors=True)
        if self._cluster is not None:
            self._cluster.stop()
        elif self._made:
            with psycopg.connect(self._url, autocommit=True) as admin:
                for database in self._made:
                    admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def cores() -> int:
    """The cores this process may use (what a figure per machine is per)."""
    return len(os.sched_getaffinity(0))
