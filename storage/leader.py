"""The scheduler's one leader among the workers on one PostgreSQL: whoever holds a session advisory lock on a
connection of its own. The lock lives as long as that session: a worker that exits or is killed lets it go at once;
a machine that vanished, once the server's TCP keepalives give up on it (25 s)."""

from __future__ import annotations

import logging
import sqlite3

from storage.pg import KEEPALIVES, Connection, probed

log = logging.getLogger(__name__)

LEADER_LOCK = 0x64616E6C  # "danl", beside the migrations' "danv" (storage/pg.py)


class Leadership:
    def __init__(self, url: str, worker: str) -> None:
        name = f"danvan {worker} leader"[:63].replace("'", "")
        self._conn = Connection(probed(url), (*KEEPALIVES, f"SET application_name = '{name}'"))
        self._session: int | None = None  # the server process of the session that holds the lock

    async def hold(self) -> bool:
        """Whether this worker leads now: it keeps the lock while its session lasts, and takes it when free."""
        try:
            if self._session is not None:
                if await self._one("SELECT pg_backend_pid()") == (self._session,):
                    return True
                self._session = None  # the connection was made again: the lock went with the old session
            taken, session = await self._one("SELECT pg_try_advisory_lock(?), pg_backend_pid()", LEADER_LOCK)
            if taken:
                self._session = session
        except sqlite3.Error as err:  # storage/pg.py raises sqlite3's classes; the next call connects again
            if self._session is not None:
                log.warning("the scheduler's leadership is lost with its connection: %s", err)
            self._session = None
        return self._session is not None

    async def _one(self, sql: str, *params: object) -> tuple:
        async with self._conn.execute(sql, params) as cursor:
            return tuple(await cursor.fetchone())

    async def close(self) -> None:
        """Let the lock go now (the session ends), not when the server finds the connection gone."""
        await self._conn.close()
        self._session = None
