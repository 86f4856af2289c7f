"""`danvan admin list` / `danvan admin remove`, and every export from the command line is audited with its filter."""

from __future__ import annotations

import asyncio
import getpass

import pytest

from bot.cli import main
from storage import Store


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    return tmp_path / "cli.db"


def _read(path, work):
    async def go():
        store = await Store.open(path)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


async def _audit(store):
    return list(reversed(await store.audit.recent()))


def test_admins_are_listed_and_removed_but_the_last_one_stays(env, capsys):
    assert main(["admin", "add", "--telegram-id", "555", "--name", "Chị Hoa"]) == 0
    assert main(["admin", "add", "--telegram-id", "777", "--name", "Anh Nam"]) == 0
    capsys.readouterr()
    assert main(["admin", "list"]) == 0
    out = capsys.readouterr().out
    assert "Có 2 quản trị viên" in out and "Telegram 555 · Chị Hoa" in out and "Telegram 777 · Anh Nam" in out

    assert main(["admin", "remove", "--telegram-id", "555"]) == 0
    assert "555 không còn là quản trị viên (nay là người dân)" in capsys.readouterr().out
    assert main(["admin", "remove", "--telegram-id", "555"]) == 1
    assert "không phải là quản trị viên" in capsys.readouterr().err
    assert main(["admin", "remove", "--telegram-id", "999"]) == 1
    nam = _read(env, lambda store: store.users.find("telegram", "777"))
    assert main(["admin", "remove", "--user-id", str(nam.id)]) == 1
    assert "quản trị viên cuối cùng" in capsys.readouterr().err
    assert main(["admin", "list"]) == 0
    assert "Có 1 quản trị viên" in capsys.readouterr().out
    assert main(["admin", "remove", "--user-id", str(nam.id), "--force"]) == 0

    async def check(store):
        assert [u for u in await store.users.staff() if u.role == "admin"] == []
        return [e for e in await _audit(store) if e.action == "admin.removed"]

    removed = _read(env, check)
    assert [(e.actor_id, e.detail["forced"], e.detail["role"]) for e in removed] == [(None, False, "citizen"),
                                                                                     (None, True, "citizen")]
    assert removed[0].detail["os_user"] == getpass.getuser() and removed[0].detail["via"] == "cli"


def test_a_removed_admin_with_a_scope_stays_a_cadre(env, capsys):
    assert main(["admin", "add", "--telegram-id", "555"]) == 0
    assert main(["admin", "add", "--telegram-id", "777"]) == 0

    async def scope(store):
        user = await store.users.find("telegram", "555")
        commune = (await store.localities.search("hai lang", level=1))[0]
        await store.roles.set_scope(user.id, {commune.id}, set())

    _read(env, scope)
    assert main(["admin", "remove", "--telegram-id", "555"]) == 0
    assert "nay là cán bộ" in capsys.readouterr().out


def test_admin_subcommands_have_help(capsys):
    for argv in (["admin", "list", "--help"], ["admin", "remove", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--force" in out and "gỡ cả quản trị viên cuối cùng" in out
    with pytest.raises(SystemExit):
        main(["admin", "remove"])  # whom?


def test_every_cli_export_is_audited_with_its_filter(env, tmp_path, capsys):
    assert main(["db", "migrate"]) == 0
    out = tmp_path / "y-kien.csv"
    assert main(["export", "cases", "--status", "new", "--topic", "an-sinh", "--locality", "44", "--from",
                 "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 0
    assert main(["export", "cases", "--format", "xlsx", "--out", str(tmp_path / "y-kien.xlsx")]) == 0
    exports = [e for e in _read(env, _audit) if e.action == "cases.exported"]
    assert [e.detail for e in exports] == [
        {"via": "cli", "os_user": getpass.getuser(), "format": "csv", "status": "new", "topic": "an-sinh",
         "locality": "44", "since": "2026-11-01", "until": "2026-11-30", "out": str(out), "rows": 0},
        {"via": "cli", "os_user": getpass.getuser(), "format": "xlsx", "status": None, "topic": None,
         "locality": None, "since": None, "until": None, "out": str(tmp_path / "y-kien.xlsx"), "rows": 0},
    ]
    assert all(e.actor_id is None and e.at for e in exports)
