"""The real bot as its own process (`python -m bot.cli run`) and the `danvan` command beside it, for tests that only
separate processes can tell: a SIGKILL and a restart, the admin command writing while the bot runs. The fakes stay
in the test's own event loop (they keep the record across restarts), so every blocking wait here runs in a thread."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bot_env(db: Path | str, workdir: Path, **variables: str) -> dict[str, str]:
    """Only what is given here: the process runs in `workdir` (a temporary directory), so no developer's .env is
    read, and quiet hours are off so that a test run at night sends at once."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8", "DANVAN_DB": str(db), "DANVAN_PORT": str(free_port()), "DANVAN_QUIET_HOURS": "off",
            "DANVAN_LOG_LEVEL": "WARNING", **variables}


def start_bot(env: dict[str, str], workdir: Path, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=workdir, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


async def kill_bot(bot: subprocess.Popen) -> None:
    """SIGKILL: nothing of the bot's own shutdown runs."""
    bot.send_signal(signal.SIGKILL)
    await asyncio.to_thread(bot.wait, 10)


async def stop_bot(bot: subprocess.Popen) -> None:
    """An orderly stop (SIGTERM, as systemd does); SIGKILL when it does not end within 15 s."""
    if bot.poll() is not None:
        return
    bot.send_signal(signal.SIGTERM)
    try:  # in a thread: the fakes in this event loop must answer the bot's last calls
        await asyncio.to_thread(bot.wait, 15)
    except subprocess.TimeoutExpired:
        await kill_bot(bot)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait for a condition, at most `timeout` seconds (a bound for a stuck run, not a measurement)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def danvan(env: dict[str, str], workdir: Path, *args: str) -> str:
    """Run the `danvan` command with these arguments; its output (it must succeed)."""
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot.cli", *args], cwd=workdir, env=env,
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
