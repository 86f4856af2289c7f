"""The README's run command on a fresh checkout with no configuration: it sets itself up in demo mode
and answers /healthz; SIGTERM stops it cleanly. (CI also runs `make run` from a fresh clone, which
builds its own virtual environment; here the current interpreter runs the copied tree.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout(target: Path) -> None:
    """Copy what a clone would hold: the files git tracks, plus new ones not ignored (not yet committed)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_command_answers_healthz_with_no_configuration(tmp_path):
    tree = tmp_path / "danvan"
    checkout(tree)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "DANVAN_PORT": str(port)}
    log = (tmp_path / "run.log").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tree, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:  # noqa: S310
                    health = json.loads(answer.read())
                    break
            except OSError:
                time.sleep(0.25)
        log.seek(0)
        assert health == {"status": "ok", "database": "ok", "mode": "demo", "problems": [],
                          "worker": f"{socket.gethostname()}:{process.pid}", "role": "leader"}, log.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:  # noqa: S310
            assert "Chế độ thử nghiệm (demo)" in page.read().decode()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert f"http://127.0.0.1:{port}/" in output, output
    assert "Traceback" not in output, output
    assert (tree / "data" / "demo.db").exists() and not (tree / "data" / "danvan.db").exists()
