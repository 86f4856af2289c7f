from __future__ import annotations

import os

import pytest

from handlers.base import Capabilities
from storage import Store
from tests.dialog import BUTTONS, TEXT_ONLY, Clock, Harness, RecordingChannel
from tests.postgres import Cluster, binaries

BACKENDS = ["sqlite", "postgresql"]


def pytest_generate_tests(metafunc):
    """Tests marked `backends` (a module's `pytestmark`) run on SQLite and again on PostgreSQL; a test that
    checks what only one engine has says which: `@pytest.mark.backends("sqlite")`."""
    if "backend" in metafunc.fixturenames and (marker := metafunc.definition.get_closest_marker("backends")):
        metafunc.parametrize("backend", marker.args or BACKENDS)


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
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL cluster for the session. Missing PostgreSQL skips its tests on a developer's machine and
    fails them in CI, where `.ci/run` installs it: a suite that silently ran on SQLite alone would pass there."""
    bin_dir = binaries()
    if bin_dir is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def database(request, backend, tmp_path):
    """The test's own database, as `DANVAN_DB` names it: an SQLite file's path, or the URL of a fresh PostgreSQL
    database (already migrated and seeded), dropped after the test. Beside PostgreSQL a process keeps its own
    few files in ./data (storage.files.local_dir): the test runs in its temporary folder."""
    if backend == "sqlite":
        yield tmp_path / "test.db"
        return
    request.getfixturevalue("monkeypatch").chdir(tmp_path)
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.database()
    yield url
    cluster.drop(url)


@pytest.fixture
async def store(database):
    s = await Store.open(database)
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
