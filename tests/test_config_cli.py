"""Configuration is checked at start with a message naming the variable; the CLI administers the bot."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from bot import logs
from bot.cli import main
from bot.config import ConfigError, load
from storage import Store

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "DANVAN_TZ"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    return monkeypatch


def test_defaults(env):
    config = load()
    assert config.tz == "Asia/Ho_Chi_Minh" and config.telegram_token is None
    assert config.telegram_api_url == "https://api.telegram.org/bot"
    assert config.telegram_file_url == "https://api.telegram.org/file/bot"


@pytest.mark.parametrize(("name", "value"), [
    ("DANVAN_TZ", "Mars/Olympus"),
    ("TELEGRAM_BOT_TOKEN", "not-a-token"),
    ("DANVAN_PORT", "99999"),
    ("TELEGRAM_API_URL", "ftp://x"),
])
def test_bad_values_name_the_variable(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load()
    assert name in str(err.value)
    assert value not in str(err.value) or name != "TELEGRAM_BOT_TOKEN"


def test_webhook_needs_a_secret(env):
    env.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    env.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.vn/telegram/webhook")
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        load()


def test_a_postgresql_url_is_kept_as_written_and_backed_up_by_pg_dump(env, tmp_path, capsys):
    url = "postgresql://danvan:secret@/danvan?host=/nowhere"
    env.setenv("DANVAN_DB", url)
    config = load()
    assert config.db == url == config.store_path
    assert main(["db", "migrate"]) == 1
    said = capsys.readouterr().err
    assert "postgresql://danvan:***@/danvan" in said and "secret" not in said
    assert main(["db", "backup", str(tmp_path / "b")]) == 1
    assert "pg_dump" in capsys.readouterr().err and not (tmp_path / "b").exists()
    env.setenv("DANVAN_BACKUP_DIR", str(tmp_path / "b"))
    with pytest.raises(ConfigError, match="pg_dump"):
        load()


def test_env_file_is_read(env, tmp_path):
    (tmp_path / ".env").write_text("DANVAN_OPERATOR=Ban Dân vận Huyện ủy\n", encoding="utf-8")
    assert load().operator_name == "Ban Dân vận Huyện ủy"


def test_bad_config_exits_cleanly(env, capsys):
    env.setenv("DANVAN_TZ", "Nowhere/Land")
    assert main(["db", "migrate"]) == 2
    err = capsys.readouterr().err
    assert "DANVAN_TZ" in err and "Traceback" not in err


def test_a_crash_is_told_without_the_token(env, capsys):
    """aiohttp puts the URL, token included, in some errors: Telegram unreachable at start stops the bot
    with a plain message, the details going through the log's redaction, not Python's bare traceback."""
    env.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    env.setenv("TELEGRAM_API_URL", "https://api.telegram.org:99999/bot")  # a port no URL can have
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.setenv("DANVAN_PORT", str(port))
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "Bot dừng: kênh Telegram" in err and "Traceback" in err and TOKEN not in err and "[redacted]" in err


def test_token_never_reaches_the_log(capsys):
    logs.setup("INFO", [TOKEN])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/getUpdates failed")
    except RuntimeError:
        logging.getLogger("test").exception("request to %s", f"https://api.telegram.org/bot{TOKEN}/getMe")
    out = capsys.readouterr().err
    assert "getMe" in out and "getUpdates" in out and TOKEN not in out and "[redacted]" in out



def test_cli_admin_invite_locality(env, tmp_path, capsys):
    import asyncio

    assert main(["db", "migrate"]) == 0
    assert main(["admin", "add", "--telegram-id", "555", "--name", "Chị Hoa"]) == 0
    assert main(["invite", "create", "--locality", "nope", "--unit", "X"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["invite", "create", "--locality", "44", "--topic", "dan-van-kheo", "--unit", "Ban Dân vận"]) == 0
    out = capsys.readouterr().out
    assert "/start i_" in out
    csv = tmp_path / "extra.csv"
    csv.write_text("code,name,kind,parent_code\n44,Quảng Trị,tinh,\n99999,Thử,xa,44\n", encoding="utf-8")
    assert main(["locality", "import", str(csv)]) == 0
    assert main(["locality", "import", str(tmp_path / "missing.csv")]) == 1
    csv.write_text("code,name,kind,parent_code\n99998,Thử,xa,nowhere\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["locality", "import", str(csv)]) == 1
    assert "dòng 2: không có địa bàn cha 'nowhere'" in capsys.readouterr().err

    async def check():
        store = await Store.open(tmp_path / "cli.db")
        try:
            admin = await store.users.find("telegram", "555")
            assert admin.role == "admin" and admin.display_name == "Chị Hoa"
            assert await store.localities.by_code("99999") is not None
            assert (await store.db.fetchone("SELECT count(*) FROM invites"))[0] == 1
            assert {e.action for e in await store.audit.recent()} == {"admin.added", "invite.created"}
        finally:
            await store.close()

    asyncio.run(check())


def test_every_command_has_help(capsys):
    for argv in (["--help"], ["run", "--help"], ["db", "migrate", "--help"], ["admin", "add", "--help"],
                 ["invite", "create", "--help"], ["locality", "import", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: danvan" in out and "chạy bot và web chat" in out and "mã số người dùng Telegram" in out


def test_help_and_argument_errors_follow_the_terminals_language(monkeypatch, capsys):
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "run the bot and its web chat" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", "cases", "--from", "26/11/2026"])
    assert "not a date YYYY-MM-DD: '26/11/2026'" in capsys.readouterr().err
    monkeypatch.setenv("LANG", "C.UTF-8")
    with pytest.raises(SystemExit):
        main(["export", "cases", "--from", "26/11/2026"])
    assert "không phải ngày dạng YYYY-MM-DD" in capsys.readouterr().err


def test_cli_export_cases(env, tmp_path, capsys):
    import asyncio
    import csv
    from datetime import UTC, datetime, timedelta

    from storage.cases import NewCase

    async def seed():
        store = await Store.open(tmp_path / "cli.db")
        try:
            now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
            lan = await store.users.ensure("telegram", "1", "1", "Lan", "vi", now)
            commune = (await store.localities.search("hai lang", level=1))[0]
            topic = await store.topics.by_code("an-sinh")
            for anonymous in (False, True):
                await store.cases.create(NewCase("phananh", lan.id, anonymous, topic.id, commune.id,
                                                 "Hộ nghèo chưa nhận hỗ trợ", False, None, now + timedelta(days=1),
                                                 now + timedelta(days=14)), now)
        finally:
            await store.close()

    asyncio.run(seed())
    out = tmp_path / "cases.csv"
    assert main(["export", "cases", "--topic", "an-sinh", "--from", "2026-11-01", "--to", "2026-11-30",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [r["sender"] for r in rows] == ["Lan", ""] and rows[0]["commune"] == "Hải Lăng"
    assert main(["export", "cases", "--from", "2026-12-01"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(
        ["code", "kind", "status", "urgent", "topic", "commune", "locality", "created_at", "answer_due",
         "answered_at", "rating", "sender", "content", "hidden_reason"])
    assert main(["export", "cases", "--locality", "nope"]) == 1
    with pytest.raises(SystemExit):
        main(["export", "cases", "--from", "26/11/2026"])


def test_env_file_others_can_write_is_refused(env, tmp_path, capsys):
    """Whoever can change .env can point TELEGRAM_API_URL at their own server and receive the token."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("DANVAN_OPERATOR=Ban Dân vận Huyện ủy\n", encoding="utf-8")
    dotenv.chmod(0o666)
    env.setenv("LANG", "C.UTF-8")
    assert main(["db", "migrate"]) == 2
    err = capsys.readouterr().err
    assert "Không khởi động" in err and "TELEGRAM_API_URL" in err and str(dotenv) in err and "Traceback" not in err
    assert not (tmp_path / "cli.db").exists()
    dotenv.chmod(0o620)
    with pytest.raises(ConfigError, match="writable"):
        load()
    dotenv.chmod(0o600)
    assert load().operator_name == "Ban Dân vận Huyện ủy"


def test_env_file_of_another_user_is_refused(env, tmp_path, capsys):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DANVAN_TZ=Asia/Ho_Chi_Minh\n", encoding="utf-8")
    dotenv.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(dotenv, 4321, -1)  # root running the bot on a file a user 4321 owns
    else:
        env.setattr("bot.config.os.geteuid", lambda: dotenv.stat().st_uid + 1)
    env.setenv("LANG", "en_GB.UTF-8")
    assert main(["db", "migrate"]) == 2
    assert "belongs to another user" in capsys.readouterr().err
