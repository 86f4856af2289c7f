from __future__ import annotations

import pytest

from storage import Store
from tests.dialog import Clock, Harness


@pytest.fixture(autouse=True)
def _vietnamese_terminal(monkeypatch):
    """The `danvan` command speaks the terminal's language (LANG); tests read its Vietnamese."""
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "test.db")
    yield s
    await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def harness(store, clock) -> Harness:
    return Harness(store, clock)
