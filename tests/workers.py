"""Several `danvan run` workers on one PostgreSQL database in webhook mode behind a round-robin proxy
(tests/proxy.py), the fake Telegram Bot API posting each update to the proxy as Telegram posts to a webhook: for
the multi-worker test and `bench.inbound --workers N`."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.bot_process import bot_env, start_bot, stop_bot, until
from tests.fakes.telegram_api import FakeBotAPI
from tests.proxy import RoundRobin

SECRET = "workers-test-secret_1"
RETRY = 0.2  # seconds before an update the proxy could not deliver is posted again


class PostsToWebhook:
    """Mixed into a FakeBotAPI: a pushed update is POSTed to the webhook instead of waiting for getUpdates.
    Telegram keeps one chat's updates in order (the next is sent once the last one is answered) and sends an
    update again until the webhook answers 200; so does this."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chains: dict[int, asyncio.Task] = {}  # each chat's latest post; it waits for the one before
        self._posts: set[asyncio.Task] = set()
        self._client: aiohttp.ClientSession | None = None

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        if "update_id" not in update:
            update["update_id"] = self._take_update_id()
        body = update.get("message") or update.get("callback_query", {}).get("message") or {}
        chat = body.get("chat", {}).get("id")
        task = self._chains[chat] = asyncio.get_running_loop().create_task(self._post(update, self._chains.get(chat)))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
        return update

    async def _post(self, update: dict[str, Any], previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        if self._client is None:  # aiohttp: httpx's pool costs milliseconds of CPU a request with hundreds open
            self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                                 timeout=aiohttp.ClientTimeout(total=30))
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook["secret_token"]}
        while True:
            try:
                async with self._client.post(self.webhook["url"], json=update, headers=headers) as answer:
                    if answer.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):  # the proxy's 502 too: a worker died holding it
                pass
            await asyncio.sleep(RETRY)

    async def posted(self) -> None:
        """Every update pushed so far has been taken by a worker."""
        await asyncio.gather(*self._posts)

    async def stop(self) -> None:
        for task in self._posts:
            task.cancel()
        await asyncio.gather(*self._posts, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        await super().stop()


@dataclass
class Worker:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any] | None:
        """What /healthz says, or None when the worker does not answer."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(self.url + "/healthz")).json()
        except (httpx.TransportError, ValueError):
            return None


@contextlib.asynccontextmanager
async def workers(count: int, db: str, api: FakeBotAPI, workdir: Path,
                  **variables: str) -> AsyncIterator[tuple[list[Worker], RoundRobin]]:
    """`count` workers on database `db`, each with its own folder and log in `workdir`, behind a round-robin proxy
    (given back too) that `api`'s webhook points to; stopped at the end (one killed before is left as it is)."""
    started: list[Worker] = []
    async with RoundRobin() as proxy, contextlib.AsyncExitStack() as logs:
        try:
            for n in range(count):
                folder = workdir / f"w{n}"
                folder.mkdir(exist_ok=True)
                env = bot_env(db, folder, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_URL=api.base_url,
                              TELEGRAM_WEBHOOK_URL=f"{proxy.url}/telegram/webhook", TELEGRAM_WEBHOOK_SECRET=SECRET,
                              DANVAN_WORKER=f"w{n}", **variables)
                log = logs.enter_context((folder / "bot.log").open("w"))
                worker = Worker(f"w{n}", int(env["DANVAN_PORT"]), start_bot(env, folder, log))
                started.append(worker)
                proxy.add(worker.url)
            for worker in started:
                async def answers(worker: Worker = worker) -> bool:
                    assert worker.process.poll() is None, f"{worker.name} exited: {log_of(workdir, worker)}"
                    return await worker.health() is not None
                await until(answers, 60, f"{worker.name} answering /healthz")
            yield started, proxy
        finally:
            await asyncio.gather(*(stop_bot(w.process) for w in started))


def log_of(workdir: Path, worker: Worker) -> str:
    return (workdir / worker.name / "bot.log").read_text()


async def leader(running: list[Worker]) -> Worker:
    """The worker whose /healthz says it runs the scheduler's jobs."""
    found = [w for w in running if (await w.health() or {}).get("role") == "leader"]
    assert len(found) == 1, f"{len(found)} workers say they are the leader"
    return found[0]

