"""The platform's send rate shared by every worker on one PostgreSQL (docs/scaling.md, bot/shared_pace.py), and the
web chat's limits, which are as many token buckets (bot/webchat.py).

One row per channel holds when its next message may go (`tat`) and its next broadcast message (`btat`), on the
database's clock, so that the workers' own clocks do not matter. A lease moves them on by as many places as it
takes and answers in seconds since the epoch on that clock; it is one statement on a connection of its own, so
that it never waits behind the writer's transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.pg import KEEPALIVES, Connection, probed

# `n.t`: the database's clock, read once for the whole statement. The first SELECT reads the row as it was before
# the UPDATE in the same statement (PostgreSQL's rule for a data-modifying WITH): what a refused lease waits for.
_LEASE = """
WITH n AS (SELECT clock_timestamp() AS t),
granted AS (
    UPDATE send_gate AS g SET tat = GREATEST({start}) + make_interval(secs => :span),
                              btat = {btat}
      FROM n
     WHERE g.channel = :channel AND {allowed}
    RETURNING g.tat)
SELECT extract(epoch FROM n.t), (SELECT extract(epoch FROM tat) FROM granted),
       extract(epoch FROM GREATEST(g.tat, g.btat))
  FROM n, send_gate AS g WHERE g.channel = :channel
"""
# A reply or a digest: the next place, whatever broadcasts have reserved or a 429 paused.
_URGENT = _LEASE.format(start="g.tat, n.t", btat="g.btat", allowed="true")
# Broadcasts: places at both paces, and only just in time: while every place reserved so far goes within
# `horizon` seconds, so that a reply never queues behind more than that.
_BULK = _LEASE.format(start="g.tat, g.btat, n.t",
                      btat="GREATEST(g.tat, g.btat, n.t) + make_interval(secs => :bulk_span)",
                      allowed="GREATEST(g.tat, g.btat) <= n.t + make_interval(secs => :horizon)")


@dataclass(frozen=True)
class Lease:
    """Seconds since the epoch on the database's clock: `now` when it was taken; `end` the end of the places
    granted (None: refused), which begin `count` places earlier; `busy` when the places reserved before it end."""

    now: float
    end: float | None
    busy: float


class SendGateRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> SendGateRepo:
        # Nothing here need survive a crash (an UNLOGGED table): a commit need not wait for the disk.
        # Probed like every connection a worker makes: every reply's place and the web chat's limits wait on it, so
        # a silent network cut must end in an error (the caller's fallback), not a wait of minutes.
        return cls(await Connection.open(probed(url), *KEEPALIVES, "SET synchronous_commit = off"))

    async def lease(self, channel: str, span: float, *, bulk_span: float | None = None,
                    horizon: float = 0.0) -> Lease:
        """`span` seconds of places from the next free one, for a broadcast when `bulk_span` (the same places at
        the broadcast pace) is given."""
        params = {"channel": channel, "span": span}
        if bulk_span is not None:
            params |= {"bulk_span": bulk_span, "horizon": horizon}
        while True:
            async with self.conn.execute(_URGENT if bulk_span is None else _BULK, params) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                return Lease(float(row[0]), None if row[1] is None else float(row[1]), float(row[2]))
            # The channel's first lease, or the first after a crash emptied the table.
            await self._write("INSERT INTO send_gate (channel, tat, btat) VALUES"
                              " (:channel, clock_timestamp(), clock_timestamp()) ON CONFLICT DO NOTHING",
                              {"channel": channel})

    async def take(self, key: str, burst: float, rate: float) -> float:
        """One token of a bucket every worker shares (a web chat session's messages): `burst` at once, then `rate` a
        second. 0 when it was taken, else the seconds until one is. The same places as a broadcast's, one at a time:
        granted while those reserved end within the burst."""
        tolerance = (burst - 1) / rate
        lease = await self.lease(key, 1 / rate, bulk_span=1 / rate, horizon=tolerance)
        return 0.0 if lease.end is not None else max(0.0, lease.busy - lease.now - tolerance)

    async def forget_past(self) -> None:
        """Drop the rows whose places have all gone by: a row made afresh at the next lease says the same (buckets
        of sessions long ended would otherwise stay)."""
        await self._write("DELETE FROM send_gate WHERE GREATEST(tat, btat) < clock_timestamp()", {})

    async def pause(self, channel: str, seconds: float) -> None:
        """No broadcast message on `channel` for `seconds` (the platform said 429), on every worker."""
        await self._write("INSERT INTO send_gate AS g (channel, tat, btat) VALUES (:channel, clock_timestamp(),"
                          " clock_timestamp() + make_interval(secs => :seconds))"
                          " ON CONFLICT (channel) DO UPDATE SET btat = GREATEST(g.btat, excluded.btat)",
                          {"channel": channel, "seconds": seconds})

    async def _write(self, sql: str, params: dict) -> None:
        async with self.conn.execute(sql, params):
            pass

    async def close(self) -> None:
        await self.conn.close()
