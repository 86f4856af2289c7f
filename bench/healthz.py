"""`/healthz` and the web chat's `/huongdan` while another process writes to the database.

    python -m bench.healthz            # about 25 s; progress on stderr, one JSON line last on stdout

The real program (`App.build`, `build_asgi`) on uvicorn on 127.0.0.1, SQLite on disk in a temporary
directory. Two scenarios, each with another process on the same file:

* lock: a process takes the write lock with `BEGIN IMMEDIATE` and holds it for `--lock` seconds.
* import: `danvan locality import` of a `--import-rows` file (a new province, its communes and villages).

Meanwhile new people send their first message through the web chat, five a second: the bot must write
their user row, which waits for the other process's lock on the write connection (up to the busy
timeout). Open loop, as a load balancer would: `/healthz` every 50 ms and an onboarded person's
`/huongdan` every 250 ms (journalled, so it waits for the lock too: answered with help or with an
apology), each timed from the request to the full answer; the figures are over the requests sent while the
other process ran. The run fails (exit 1, no figures) if a probe is answered wrongly or the other process
fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.app import App
from bot.config import load
from tests.dialog import Clock
from tests.test_web_api import WebClient, onboard, served

HEALTHZ_EVERY = 0.05
HUONGDAN_EVERY = 0.25
NEWCOMER_EVERY = 0.2
NEWCOMERS = 250  # first messages per scenario at most
IDLE_S = 1.0

IMPORT = """
import subprocess, sys
print("locked", flush=True)
sys.exit(subprocess.run([sys.executable, "-m", "bot.cli", "locality", "import", sys.argv[1]]).returncode)
"""
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE users SET updated_at = updated_at")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


class BenchError(Exception):
    """A probe was answered wrongly: the figures would mean nothing."""


def say(message: str) -> None:
    print(f"[bench.healthz {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Probe:
    """Requests of one kind, sent open loop: when each was sent and how long its answer took."""

    name: str
    sent: list[float] = field(default_factory=list)
    took: list[float] = field(default_factory=list)

    def during(self, start: float, end: float) -> list[float]:
        return [t for s, t in zip(self.sent, self.took, strict=True) if start <= s < end]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(took: list[float]) -> dict:
    ms = [t * 1000 for t in took]
    return {"requests": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(percentile(ms, 0.95), 1), "max_ms": round(max(ms), 1)}


async def healthz(http: httpx.AsyncClient, probe: Probe) -> None:
    sent = time.monotonic()
    answer = await http.get("/healthz")
    probe.sent.append(sent)
    probe.took.append(time.monotonic() - sent)
    if answer.status_code != 200 or answer.json()["database"] != "ok":
        raise BenchError(f"/healthz answered {answer.status_code}: {answer.text}")


async def huongdan(web: WebClient, probe: Probe, helped: list[bool]) -> None:
    """Every update is journalled (written) before it is handled, so behind another process's write lock
    longer than the busy timeout the bot apologizes instead of helping: counted, not a failure."""
    sent = time.monotonic()
    answer = await web.post("/api/message", {"text": "/huongdan"})
    probe.sent.append(sent)
    probe.took.append(time.monotonic() - sent)
    text = json.dumps(answer.json(), ensure_ascii=False) if answer.status_code == 200 else ""
    if "Hướng dẫn sử dụng" not in text and "gặp sự cố" not in text:
        raise BenchError(f"/huongdan answered {answer.status_code}: {answer.text[:300]}")
    helped.append("Hướng dẫn sử dụng" in text)


async def newcomer(web: WebClient | None, probe: Probe, stored: list[bool]) -> None:
    """A person's first message: the bot must write their user row (this one may fail: a lock longer than
    the busy timeout is not the bot's to wait out). None: every prepared newcomer has written."""
    if web is None:
        return
    sent = time.monotonic()
    answer = await web.post("/api/message", {"text": "/start"})
    probe.sent.append(sent)
    probe.took.append(time.monotonic() - sent)
    stored.append(answer.status_code == 200)


async def every(period: float, until: asyncio.Event, start, tasks: set[asyncio.Task]) -> None:
    """Start a request every `period` seconds, without waiting for the earlier ones, until `until`."""
    while not until.is_set():
        tasks.add(asyncio.create_task(start()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), period)


@contextlib.asynccontextmanager
async def browser(url: str, address: str = "127.0.0.1") -> AsyncIterator[WebClient]:
    """A person's browser; people each on their own loopback address (the web chat limits new sessions per
    address)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, timeout=60, transport=transport) as http:
        web = WebClient(http)
        await web.open()
        yield web


async def during(url: str, http: httpx.AsyncClient, reader: WebClient, argv: list[str], env: dict) -> dict:
    """Probe while the other process runs (from its "locked" line to its exit); their figures."""
    probes = {name: Probe(name) for name in ("healthz", "huongdan", "first")}
    stored: list[bool] = []
    helped: list[bool] = []
    tasks: set[asyncio.Task] = set()
    async with contextlib.AsyncExitStack() as stack:
        newcomers = iter([await stack.enter_async_context(browser(url, f"127.0.{1 + n // 250}.{1 + n % 250}"))
                          for n in range(NEWCOMERS)])
        other = await asyncio.create_subprocess_exec(sys.executable, "-c", *argv, stdout=asyncio.subprocess.PIPE,
                                                     env={**os.environ, **env})
        if await other.stdout.readline() != b"locked\n":
            raise BenchError("the other process did not start its work")
        began = time.monotonic()
        over = asyncio.Event()
        probing = asyncio.gather(
            every(HEALTHZ_EVERY, over, lambda: healthz(http, probes["healthz"]), tasks),
            every(HUONGDAN_EVERY, over, lambda: huongdan(reader, probes["huongdan"], helped), tasks),
            every(NEWCOMER_EVERY, over, lambda: newcomer(next(newcomers, None), probes["first"], stored), tasks))
        code = await other.wait()
        ended = time.monotonic()
        over.set()
        await probing
        say(f"the other process ran {ended - began:.1f} s; waiting for {len(tasks)} requests")
        await asyncio.gather(*tasks)
    if code != 0:
        raise BenchError(f"the other process failed ({code})")
    health, guide, first = (figures(p.during(began, ended)) for p in probes.values())
    return {"seconds": round(ended - began, 1), **health,
            **{f"huongdan_{k}": v for k, v in guide.items()}, "huongdan_helped": sum(helped),
            **{f"first_{k}": v for k, v in first.items() if k != "requests"},
            "first_messages": len(stored), "first_messages_stored": sum(stored)}


async def run(lock_s: float, import_rows: int) -> dict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="danvan-bench-") as tmp:
        config = load(db=Path(tmp) / "danvan.db", demo_db=Path(tmp) / "demo.db", demo=False, telegram_token=None,
                      web_burst=1000)
        villages = max(1, import_rows // 100 - 1)
        rows = ["code,name,kind,parent_code"]
        for c in range(100):
            rows += [f"B-{c},Xã B {c},xa,44", *(f"B-{c}-{v},Thôn {v},thon,B-{c}" for v in range(villages))]
        (Path(tmp) / "import.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        app = await App.build(config, clock=Clock())
        try:
            async with served(app) as url, contextlib.AsyncExitStack() as stack:
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # see main()
                reader = await stack.enter_async_context(browser(url))
                await onboard(reader)
                http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))

                say(f"idle: /healthz for {IDLE_S:.0f} s")
                idle, tasks = Probe("healthz"), set()
                idle_over = asyncio.Event()
                asyncio.get_running_loop().call_later(IDLE_S, idle_over.set)
                await every(HEALTHZ_EVERY, idle_over, lambda: healthz(http, idle), tasks)
                await asyncio.gather(*tasks)

                say(f"lock: another process holds the write lock for {lock_s:g} s")
                lock = await during(url, http, reader, [LOCKER, config.store_path, str(lock_s)], {})
                say(f"import: `danvan locality import` of {len(rows) - 1} rows in another process")
                imported = await during(url, http, reader, [IMPORT, str(Path(tmp) / "import.csv")],
                                        {"DANVAN_DB": config.store_path})
                count = await app.store.db.fetchone("SELECT count(*) FROM localities WHERE code LIKE 'B%'")
                if count[0] != len(rows) - 1:
                    raise BenchError(f"the import stored {count[0]} of {len(rows) - 1} localities")
        finally:
            await app.stop()
    return {
        "bench": "healthz",
        "lock_s": lock_s,
        **{k: v for k, v in lock.items() if k != "seconds"},
        "idle_p95_ms": figures(idle.took)["p95_ms"],
        "import_rows": len(rows) - 1,
        **{f"import_{k}": v for k, v in imported.items()},
        "duration_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.healthz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=float, default=10.0, help="seconds the other process holds the lock")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the imported locality file")
    args = parser.parse_args(argv)
    # The newcomers' writes that time out behind the lock are expected; uvicorn would log each as an error.
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)
    try:
        result = asyncio.run(run(args.lock, args.import_rows))
    except Exception:
        traceback.print_exc()
        say("FAILED: no figures")
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
