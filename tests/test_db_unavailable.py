"""A database that cannot be opened stops `danvan` at once with a message saying why: never a hang (an
open connection's thread used to keep the process alive), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_run_command import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"


def danvan(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8", "DANVAN_PORT": str(free_port()), "DANVAN_DB": str(tmp_path / "danvan.db"),
            "DANVAN_DEMO_DB": str(tmp_path / "demo.db")}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=tmp_path, env=base | env,
                          capture_output=True, text=True, timeout=60)


def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "notadb.db"
    path.write_bytes(bytes(range(256)) * 64)
    return path


@pytest.mark.parametrize(("command", "variable", "token"), [
    (("run",), "DANVAN_DEMO_DB", None),
    (("run",), "DANVAN_DB", TOKEN),
    (("db", "migrate"), "DANVAN_DB", None),
    (("admin", "add", "--telegram-id", "42"), "DANVAN_DB", None),
])
def test_a_file_that_is_not_a_database_stops_the_command(tmp_path, command, variable, token):
    path = garbage(tmp_path)
    env = {variable: str(path)} | ({"TELEGRAM_BOT_TOKEN": token} if token else {})
    done = danvan(tmp_path, *command, **env)
    assert done.returncode == 1, done
    assert f"Không dùng được cơ sở dữ liệu {path}: file is not a database" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


@pytest.mark.parametrize("where", ["a file", "/proc"])
def test_a_place_where_no_database_can_be_written_stops_the_command(tmp_path, where):
    if where == "/proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    # a folder that is a file, or a file system that takes no new files (even from root)
    path = garbage(tmp_path) / "danvan.db" if where == "a file" else Path("/proc/danvan-test.db")
    done = danvan(tmp_path, "run", DANVAN_DEMO_DB=str(path))
    assert done.returncode == 1, done
    assert f"Không dùng được cơ sở dữ liệu {path}:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
