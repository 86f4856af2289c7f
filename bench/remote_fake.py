"""The fake Bot API (tests/fakes/telegram_api.py, or zalo_api.py, unchanged) in a process of its own, so that
the bot under test has a core to itself; the benchmark talks to it over a pipe.

Commands are small tuples; answers are plain data. Monotonic clocks are system-wide on Linux, so the
fake's `Call.at` and the benchmark's `time.monotonic()` can be compared.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from typing import Any


def _serve(conn: Any, latency: float, channel: str) -> None:
    from tests.fakes.telegram_api import FakeBotAPI
    from tests.fakes.zalo_api import FakeZaloAPI

    def slow(api: Any) -> None:
        """Every message call takes `latency` seconds (after its arrival time is taken)."""
        if channel == "zalo":  # the Zalo fake has no latency setting: a hang on every call is the same
            api.hang("sendMessage", latency, times=None)
        else:
            api.latency = latency

    async def main() -> None:
        api = FakeZaloAPI() if channel == "zalo" else FakeBotAPI()
        user = str if channel == "zalo" else int
        await api.start()
        slow(api)
        conn.send((api.base_url, api.token))
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        chats: list[asyncio.Task] = []

        async def chat(user_id: int, every: float, seconds: float) -> list[float]:
            """One person asking /huongdan every `every` s: seconds from the push to the first reply."""
            latencies = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                mark, pushed = api.mark(), time.monotonic()
                api.push_text(user(user_id), "/huongdan")
                calls = await api.wait_sent(user(user_id), 1, timeout=30, since=mark)
                latencies.append(calls[0].at - pushed)
                await asyncio.sleep(max(0.0, every - (time.monotonic() - pushed)))
            return latencies

        def on_command() -> None:
            command, *args = conn.recv()
            if command == "stop":
                stopped.set()
            elif command == "reset":
                api.reset()
                slow(api)
                conn.send(True)
            elif command == "users":  # Zalo answers "chat not found" for a user who never wrote to the bot
                first, count = args
                for n in range(first, first + count):
                    api.add_user(str(n))
                conn.send(True)
            elif command == "chat":
                chats.append(loop.create_task(chat(*args)))
                conn.send(True)
            elif command == "chat_result":
                async def answer() -> None:
                    results = await asyncio.gather(*chats)
                    chats.clear()
                    conn.send([x for r in results for x in r])
                loop.create_task(answer())
            elif command == "deliveries":
                (mark,) = args
                sent = [c for c in api.sent() if c.method == "sendMessage" and mark in (c.text or "")]
                conn.send({"per_chat": Counter(str(c.chat_id) for c in sent), "times": sorted(c.at for c in sent),
                           "max_1s_window": api.max_in_window("sendMessage", 1.0),
                           "errors": [repr(e) for e in api.server_errors],
                           "failed": Counter(c.status for c in api.calls if not c.ok),
                           "cpu_s": time.process_time(), "calls": len(api.calls)})

        loop.add_reader(conn.fileno(), on_command)
        await stopped.wait()
        for task in chats:
            task.cancel()
        await api.stop()

    asyncio.run(main())


class RemoteFake:
    def __init__(self, latency: float, channel: str = "telegram") -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency, channel), daemon=True)
        self._process.start()
        self.base_url, self.token = self._conn.recv()

    async def call(self, *command: Any) -> Any:
        self._conn.send(command)
        return await asyncio.to_thread(self._conn.recv)

    def stop(self) -> None:
        self._conn.send(("stop",))
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
