"""LISTEN/NOTIFY between the workers on one PostgreSQL (storage/notify.py says what a signal is): each worker keeps
one connection that only listens, made again when lost; its callbacks then hear None, since whatever was signalled
meanwhile may have been missed."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from storage.db import Database
from storage.notify import TOPICS, LocalSignals
from storage.pg import probed

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # between attempts to listen again after the connection was lost


class PostgresSignals(LocalSignals):
    """LISTEN/NOTIFY: a signal sent inside a transaction goes out when it commits, in commit order."""

    def __init__(self, db: Database, worker: str) -> None:
        super().__init__()
        self.db = db
        self.worker = worker
        self.pid: int | None = None  # the listening connection's server process (tests end it)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Listen from now on: a signal sent after this returns is heard."""
        first = await self._connect()
        self._task = asyncio.create_task(self._listen(first), name="signals")

    async def notify(self, topic: str, payload: str) -> None:
        await self.db.execute("SELECT pg_notify(?, ?)", (topic, payload))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _connect(self) -> psycopg.AsyncConnection:
        # With the client's TCP keepalives: a listening connection only waits, so without them a database machine
        # that vanished (no FIN, no RST) would leave it waiting for ever.
        conn = await psycopg.AsyncConnection.connect(probed(self.db.path), autocommit=True,
                                                     application_name=f"danvan {self.worker} signals"[:63])
        try:
            for topic in TOPICS:
                await conn.execute(f"LISTEN {topic}")
        except BaseException:
            await conn.close()
            raise
        self.pid = conn.info.backend_pid
        return conn

    async def _listen(self, conn: psycopg.AsyncConnection | None) -> None:
        while True:
            if conn is None:
                try:
                    conn = await self._connect()
                except (psycopg.Error, OSError) as err:
                    log.warning("cannot listen for signals from the other workers (again in %gs): %s",
                                RETRY_SECONDS, err)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                log.info("listening for signals from the other workers again")
                for topic in TOPICS:
                    self._deliver(topic, None)
            try:
                async for signal in conn.notifies():
                    self._deliver(signal.channel, signal.payload)
            except (psycopg.Error, OSError) as err:
                log.warning("the connection that listens for signals was lost: %s", err)
            finally:
                await conn.close()
                conn = None
