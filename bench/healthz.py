"""`/healthz` and the web chat's `/huongdan` while another process holds the database's write lock.

    python -m bench.healthz            # about 20 s; progress on stderr, one JSON line last on stdout

The real program (`App.build`, `build_asgi`) on uvicorn on 127.0.0.1, SQLite on disk in a temporary
directory. A second process (a CLI import, a backup) takes the write lock with `BEGIN IMMEDIATE` and holds
it for `--lock` seconds. Meanwhile new people send their first message through the web chat, once a
second: the bot's write of their user row waits for the lock on the write connection (up to the busy
timeout). Open loop, as a load balancer would: `/healthz` every 50 ms and an onboarded person's
`/huongdan` every 250 ms, each timed from the request to the full answer; the figures are over the requests
sent while the lock was held. The run fails (exit 1, no figures) if a probe is answered wrongly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
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
NEWCOMER_EVERY = 1.0
IDLE_S = 1.0

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE users SET updated_at = updated_at")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
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


async def huongdan(web: WebClient, probe: Probe) -> None:
    sent = time.monotonic()
    answer = await web.post("/api/message", {"text": "/huongdan"})
    probe.sent.append(sent)
    probe.took.append(time.monotonic() - sent)
    if answer.status_code != 200 or "Hướng dẫn sử dụng" not in json.dumps(answer.json(), ensure_ascii=False):
        raise BenchError(f"/huongdan answered {answer.status_code}: {answer.text[:300]}")


async def newcomer(web: WebClient, outcomes: list[int]) -> None:
    """A person's first message: the bot must write their user row (this one may fail: the lock is longer
    than the busy timeout)."""
    answer = await web.post("/api/message", {"text": "/start"})
    outcomes.append(answer.status_code)


async def every(period: float, until: asyncio.Event, start, tasks: set[asyncio.Task]) -> None:
    """Start a request every `period` seconds, without waiting for the earlier ones, until `until`."""
    while not until.is_set():
        tasks.add(asyncio.create_task(start()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), period)


@contextlib.asynccontextmanager
async def browser(url: str) -> AsyncIterator[WebClient]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        web = WebClient(http)
        await web.open()
        yield web


async def run(lock_s: float) -> dict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="danvan-bench-") as tmp:
        config = load(db=Path(tmp) / "danvan.db", demo_db=Path(tmp) / "demo.db", demo=False, telegram_token=None,
                      web_burst=1000)
        app = await App.build(config, clock=Clock())
        try:
            async with served(app) as url, contextlib.AsyncExitStack() as stack:
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # see main()
                reader = await stack.enter_async_context(browser(url))
                await onboard(reader)
                newcomers = [await stack.enter_async_context(browser(url)) for _ in range(int(lock_s) + 2)]
                http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
                probes = {"healthz": Probe("healthz"), "huongdan": Probe("huongdan")}
                tasks: set[asyncio.Task] = set()

                say(f"idle: /healthz for {IDLE_S:.0f} s")
                idle_over = asyncio.Event()
                asyncio.get_running_loop().call_later(IDLE_S, idle_over.set)
                await every(HEALTHZ_EVERY, idle_over, lambda: healthz(http, probes["healthz"]), tasks)
                await asyncio.gather(*tasks)
                idle = figures(probes["healthz"].took)
                probes["healthz"] = Probe("healthz")

                locker = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", LOCKER, config.store_path, str(lock_s), stdout=asyncio.subprocess.PIPE)
                if await locker.stdout.readline() != b"locked\n":
                    raise BenchError("the second process could not take the write lock")
                locked_at = time.monotonic()
                say(f"another process holds the write lock for {lock_s:g} s; probing")
                released = asyncio.Event()
                writes: list[int] = []
                queue = iter(newcomers)
                loops = [every(HEALTHZ_EVERY, released, lambda: healthz(http, probes["healthz"]), tasks),
                         every(HUONGDAN_EVERY, released, lambda: huongdan(reader, probes["huongdan"]), tasks),
                         every(NEWCOMER_EVERY, released, lambda: newcomer(next(queue), writes), tasks)]
                probing = asyncio.gather(*loops)
                if await locker.stdout.readline() != b"released\n" or await locker.wait() != 0:
                    raise BenchError("the lock holder failed")
                released_at = time.monotonic()
                released.set()
                await probing
                say(f"lock released after {released_at - locked_at:.1f} s; waiting for {len(tasks)} requests")
                await asyncio.gather(*tasks)
        finally:
            await app.stop()
    health, guide = (figures(p.during(locked_at, released_at)) for p in (probes["healthz"], probes["huongdan"]))
    return {
        "bench": "healthz",
        "lock_s": lock_s,
        **health,
        "huongdan_requests": guide["requests"],
        "huongdan_p50_ms": guide["p50_ms"],
        "huongdan_p95_ms": guide["p95_ms"],
        "huongdan_max_ms": guide["max_ms"],
        "idle_p95_ms": idle["p95_ms"],
        "first_messages": len(writes),
        "first_messages_stored": writes.count(200),
        "duration_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.healthz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=float, default=10.0, help="seconds the other process holds the lock")
    args = parser.parse_args(argv)
    # The newcomers' writes that time out behind the lock are expected; uvicorn would log each as an error.
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)
    try:
        result = asyncio.run(run(args.lock))
    except Exception:
        traceback.print_exc()
        say("FAILED: no figures")
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
