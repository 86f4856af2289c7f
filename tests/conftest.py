from __future__ import annotations

import pytest

from handlers.base import Capabilities
from storage import Store
from tests.dialog import BUTTONS, TEXT_ONLY, Clock, Harness, RecordingChannel


@pytest.fixture(autouse=True)
def _vietnamese_terminal(monkeypatch):
    """The `danvan` command speaks the terminal's language (LANG); tests read its Vietnamese."""
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The transports honour the proxy variables; a machine's proxy must not stand between the tests and
    the fakes on loopback."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "test.db")
    yield s
    await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[BUTTONS, TEXT_ONLY], ids=["buttons", "text"])
def capabilities(request) -> Capabilities:
    """Every dialog runs twice: on a channel with buttons and HTML (Telegram, the web chat), and text-only
    (Zalo), answered by typing the numbers and keywords shown."""
    return request.param


@pytest.fixture
def harness(store, clock, capabilities) -> Harness:
    return Harness(store, clock, RecordingChannel(capabilities=capabilities))
