"""Strangers cannot hold the server down: idle connections beyond the limit are closed, the open-file limit
is raised at start, and a flood of identical log lines is counted instead of written."""

from __future__ import annotations

import asyncio
import logging
import resource

import httpx
import pytest

from bot import connections
from bot.config import load
from bot.connections import raise_open_files, server_config
from bot.logs import RepeatFilter
from bot.server import build_asgi
from tests.test_web_api import build_app, serving


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args, level: int = logging.WARNING, name: str = "uvicorn.error") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_repeat_filter_holds_back_identical_lines_and_counts_them():
    clock = Monotonic()
    repeats = RepeatFilter(burst=3, interval=60, clock=clock)
    passed = [r.getMessage() for r in (record("Exceeded concurrency limit.") for _ in range(1000)) if repeats.filter(r)]
    assert passed[:2] == ["Exceeded concurrency limit."] * 2 and len(passed) == 3
    assert "held back" in passed[2]
    clock.now += 61
    later = record("Exceeded concurrency limit.")
    assert repeats.filter(later) and "repeated 997 more times" in later.getMessage()
    quiet = record("Exceeded concurrency limit.")
    assert repeats.filter(quiet) and quiet.getMessage() == "Exceeded concurrency limit."  # nothing held since


def test_repeat_filter_never_holds_back_a_different_message():
    repeats = RepeatFilter(burst=1, interval=60, clock=Monotonic())
    distinct = [record("case %s could not be sent", n) for n in range(500)]
    distinct += [record("case 1 could not be sent", level=logging.ERROR), record("case 1 could not be sent", name="x")]
    assert all(repeats.filter(r) for r in distinct)
    assert repeats.filter(record("bad %d", "args"))  # the handler reports the mistake, as without the filter


def test_open_file_limit_is_raised_towards_the_hard_limit(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: calls.append(limits))
    with caplog.at_level(logging.INFO, logger="bot.connections"):
        assert raise_open_files(500) == 4096
    assert calls == [(4096, 4096)] and "open-file limit: 4096" in caplog.text
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 300))
    with caplog.at_level(logging.INFO, logger="bot.connections"):
        assert raise_open_files(500) == 300
    assert "too low for DANVAN_MAX_CONNECTIONS=500" in caplog.text


@pytest.fixture
async def small_server(tmp_path, clock, monkeypatch):
    monkeypatch.setattr(connections, "HEAD_TIMEOUT", 0.5)
    app = await build_app(tmp_path, clock, demo=False, max_connections=20)
    try:
        async with serving(server_config(build_asgi(app), app.config)) as running:
            yield running
    finally:
        await app.stop()


async def test_idle_connections_do_not_take_the_server_down(small_server, caplog):
    port, server = small_server
    lines = len(caplog.records)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
    for _ in range(100):  # the server closes those beyond the limit as they arrive
        await asyncio.sleep(0.01)
        if len(server.server_state.connections) <= 20:
            break
    assert len(server.server_state.connections) <= 20
    closed = 0
    for reader, _ in idle:  # and the rest once they have sent nothing for HEAD_TIMEOUT
        closed += await asyncio.wait_for(reader.read(), 10) == b""
    assert closed == 300
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
    for _, writer in idle:
        writer.close()
    assert len(caplog.records) - lines < 20


async def test_a_slow_request_head_is_cut_off(small_server):
    port, _ = small_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


def test_connection_settings_reach_uvicorn(tmp_path):
    config = load(db=tmp_path / "d.db", max_connections=123, trusted_proxies="10.0.0.5, 10.0.0.6")
    settings = server_config(None, config)
    assert settings.limit_concurrency == 123 and settings.timeout_keep_alive == connections.KEEP_ALIVE
    assert settings.forwarded_allow_ips == ["10.0.0.5", "10.0.0.6"] and settings.proxy_headers
    assert not server_config(None, load(db=tmp_path / "d.db", trusted_proxies="")).proxy_headers


async def test_behind_a_trusted_proxy_the_client_address_and_https_come_from_its_headers(tmp_path, clock):
    """New web chat sessions are limited per client address: behind nginx that address is in X-Forwarded-For,
    believed only from DANVAN_TRUSTED_PROXIES; the cookie is Secure when people reach the chat over https."""
    app = await build_app(tmp_path, clock, demo=False, public_url="https://chat.example.vn",
                          trusted_proxies="127.0.0.1")
    try:
        settings = server_config(build_asgi(app), app.config)
        settings.load()
        transport = httpx.ASGITransport(app=settings.loaded_app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            async def open_from(address: str) -> httpx.Response:
                http.cookies.clear()
                return await http.post("/api/session", headers={"X-Danvan": "1", "X-Forwarded-For": address,
                                                                "X-Forwarded-Proto": "https"})

            first = await open_from("203.0.113.7")
            assert first.status_code == 200 and "secure" in first.headers["set-cookie"].lower()
            answers = [(await open_from("203.0.113.7")).status_code for _ in range(40)]
            assert 429 in answers  # that visitor's own limit
            assert (await open_from("198.51.100.1")).status_code == 200  # another visitor is not refused
    finally:
        await app.stop()


async def test_the_cookie_is_secure_when_the_public_url_is_https(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False, public_url="https://chat.example.vn")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_asgi(app)), base_url="http://bot") as http:
            answer = await http.post("/api/session", headers={"X-Danvan": "1"})
            assert answer.status_code == 200 and "secure" in answer.headers["set-cookie"].lower()
    finally:
        await app.stop()
