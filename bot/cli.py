"""The `danvan` command: run the bot and administer it from the shell."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import (
    admin_cli,
    backup,
    campaign_cli,
    consultation_cli,
    copy_cli,
    dvk_cli,
    logs,
    privacy_report,
    survey_cli,
    task_file,
    yaml_fields,
)
from bot.app import App, PollerTaken, utc_now
from bot.channels.base import ChannelFatal
from bot.config import Config, ConfigError, UnsafeEnvFile, load
from bot.console import fragment, operator, say, texts
from bot.console import help_text as _h
from bot.demo import seed_demo
from bot.exports import cases_csv, cases_xlsx
from handlers.campaigns import qr_png
from messages import channel_key
from storage import Store
from storage.db import DatabaseUnavailable
from storage.dialect import is_url, shown
from storage.files import files_dir
from storage.locality_import import LocalityError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="danvan", description=_h("description"))
    sub = parser.add_subparsers(dest="command", required=True)

    run_parser = sub.add_parser("run", help=_h("run"))
    run_parser.add_argument("--demo", action="store_true", help=_h("run_demo"))

    demo = sub.add_parser("demo", help=_h("demo")).add_subparsers(dest="demo_command", required=True)
    demo.add_parser("reset", help=_h("demo_reset"))

    db = sub.add_parser("db", help=_h("db")).add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help=_h("db_migrate"))
    db.add_parser("backup", help=_h("db_backup")).add_argument("dir", type=Path)
    restore = db.add_parser("restore", help=_h("db_restore"))
    restore.add_argument("file", type=Path)
    restore.add_argument("--force", action="store_true", help=_h("db_restore_force"))
    db.add_parser("check", help=_h("db_check"))
    copy_cli.add_parser(db)

    admin = sub.add_parser("admin", help=_h("admin")).add_subparsers(dest="admin_command", required=True)
    add = admin.add_parser("add", help=_h("admin_add"))
    add.add_argument("--telegram-id", type=int, required=True, help=_h("admin_telegram_id"))
    add.add_argument("--name", help=_h("admin_name"))
    admin_cli.add_parsers(admin)

    invite = sub.add_parser("invite", help=_h("invite")).add_subparsers(dest="invite_command", required=True)
    create = invite.add_parser("create", help=_h("invite_create"))
    create.add_argument("--locality", action="append", required=True, metavar="CODE",
                        help=_h("invite_locality"))
    create.add_argument("--topic", action="append", default=[], metavar="CODE",
                        help=_h("invite_topic"))
    create.add_argument("--unit", required=True, help=_h("invite_unit"))
    create.add_argument("--days", type=int, help=_h("invite_days"))

    locality = sub.add_parser("locality", help=_h("locality")).add_subparsers(dest="loc_command", required=True)
    imp = locality.add_parser("import", help=_h("locality_import"))
    imp.add_argument("file", type=Path)
    qr = locality.add_parser("qr", help=_h("locality_qr"))
    qr.add_argument("code")
    qr.add_argument("--out", type=Path, required=True, help=_h("qr_out"))
    qr.add_argument("--web", action="store_true", help=_h("qr_web"))

    export = sub.add_parser("export", help=_h("export")).add_subparsers(dest="export_command", required=True)
    cases = export.add_parser("cases", help=_h("export_cases"))
    cases.add_argument("--from", dest="since", type=_date, metavar="YYYY-MM-DD", help=_h("cases_from"))
    cases.add_argument("--to", dest="until", type=_date, metavar="YYYY-MM-DD", help=_h("cases_to"))
    cases.add_argument("--status", choices=["new", "acknowledged", "in_progress", "answered", "resolved", "declined",
                                            "duplicate", "withdrawn"])
    cases.add_argument("--topic", metavar="CODE", help=_h("cases_topic"))
    cases.add_argument("--locality", metavar="CODE", help=_h("cases_locality"))
    cases.add_argument("--out", type=Path, help=_h("cases_out"))
    cases.add_argument("--format", choices=["csv", "xlsx"],
                       help=_h("cases_format"))

    task = sub.add_parser("task", help=_h("task")).add_subparsers(dest="task_command", required=True)
    task_load = task.add_parser("load", help=_h("task_load"))
    task_load.add_argument("file", type=Path)

    campaign_cli.add_parsers(sub)
    survey_cli.add_parsers(sub)
    privacy_report.add_parsers(sub, _date)
    dvk_cli.add_parsers(sub)
    consultation_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        config = load()
    except UnsafeEnvFile as err:
        say(f"env_{err.reason}", error=True, path=err.path)
        return 2
    except ConfigError as err:
        say("config_invalid", error=True, problem=err)
        return 2
    logs.setup(config.log_level, _secrets(config))
    try:
        return asyncio.run(_dispatch(args, config))
    except KeyboardInterrupt:
        return 130
    except DatabaseUnavailable as err:
        say("db_unavailable", error=True, path=err.path, reason=err.reason)
        return 1
    except Exception:  # through the redacting handler: a traceback can hold the token (in a URL)
        logging.getLogger("danvan").exception("danvan stopped on an unexpected error")
        return 1


def _secrets(config: Config) -> list[str]:
    return [s.get_secret_value() for s in (config.telegram_token, config.telegram_webhook_secret, config.zalo_token,
                                           config.zalo_webhook_secret, config.file_secret) if s]


async def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "run":
        demo = args.demo or config.demo or (config.telegram_token is None and config.zalo_token is None)
        return await run(config.model_copy(update={"demo": demo}))
    if args.command == "demo":
        return await demo_reset(config)
    if args.command == "db" and args.db_command == "copy":
        return await copy_cli.run(args)
    if args.command == "db" and args.db_command != "migrate":
        return await _backups(args, config)
    store = await Store.open(config.db)
    try:
        now = utc_now()
        handled = await campaign_cli.dispatch(args, store, config, now)
        if handled is None:
            handled = await privacy_report.dispatch(args, store, config, now)
        if handled is None:
            handled = await dvk_cli.dispatch(args, store, config, now)
        if handled is None:
            handled = await consultation_cli.dispatch(args, store, config, now)
        if handled is None:
            handled = await survey_cli.dispatch(args, store, config, now)
        if handled is not None:
            return handled
        if args.command == "db":
            say("db_version", path=shown(config.db), version=await store.db.version())
            return 0
        if args.command == "admin" and args.admin_command != "add":
            return await admin_cli.dispatch(args, store, config, now)
        if args.command == "admin":
            user = await store.users.ensure("telegram", str(args.telegram_id), str(args.telegram_id), args.name,
                                            "vi", now)
            await store.users.update(user.id, now, role="admin")
            await store.audit.record(None, "admin.added", f"user:{user.id}", now, via="cli", os_user=operator())
            say("admin_added", telegram_id=args.telegram_id)
            return 0
        if args.command == "invite":
            return await _invite(store, config, args, now)
        if args.command == "export":
            return await _export(store, config, args, now)
        if args.command == "task":
            return await _load_tasks(store, config, args, now)
        if args.command == "locality" and args.loc_command == "qr":
            return await _locality_qr(store, config, args, now)
        if args.command == "locality":
            try:
                count = await store.localities.import_file(args.file)
            except (OSError, UnicodeDecodeError) as err:
                say("import_failed", error=True, file=args.file, problem=err)
                return 1
            except LocalityError as err:
                say("import_failed", error=True, file=args.file, problem=fragment(err.key, **err.values))
                return 1
            say("imported", count=count)
            return 0
    finally:
        await store.close()
    return 2


async def _locality_qr(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    """The poster QR of a commune's or a village's deep link: who scans it starts with that place chosen."""
    place = await store.localities.by_code(args.code)
    if place is None or place.level == 0:
        say("unknown_locality", error=True, code=args.code)
        return 1
    link = await campaign_cli.start_link(config, f"l_{place.code}", args.web)
    await asyncio.to_thread(args.out.write_bytes, qr_png(link))
    await store.audit.record(None, "locality.qr", f"locality:{place.code}", now, via="cli")
    print(f"{args.out}: {link}")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(texts().plain("cli.not_a_date", text=repr(text))) from None


async def _export(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    tz = ZoneInfo(config.tz)
    since = datetime.combine(args.since, time(0), tzinfo=tz) if args.since else None
    until = datetime.combine(args.until + timedelta(days=1), time(0), tzinfo=tz) if args.until else None
    if args.locality and await store.localities.by_code(args.locality) is None:
        say("unknown_locality", error=True, code=args.locality)
        return 1
    if args.topic and await store.topics.by_code(args.topic) is None:
        say("unknown_topic", error=True, code=args.topic)
        return 1
    if args.format == "xlsx" or (args.format is None and args.out and args.out.suffix.lower() == ".xlsx"):
        if not args.out:
            say("xlsx_needs_out", error=True)
            return 2
        content, rows = await cases_xlsx(store, now, status=args.status, topic=args.topic, locality=args.locality,
                                         since=since, until=until, tz=tz)
        await store.audit.record(None, "cases.exported", None, now, **_export_filter(args, "xlsx"), rows=rows)
        await asyncio.to_thread(args.out.write_bytes, content)
        say("exported", rows=rows, file=args.out)
        return 0
    text = await cases_csv(store, now, status=args.status, topic=args.topic, locality=args.locality, since=since,
                           until=until, tz=tz)
    await store.audit.record(None, "cases.exported", None, now, **_export_filter(args, "csv"),
                             rows=text.count("\n") - 1)
    if args.out:
        await asyncio.to_thread(args.out.write_text, text, encoding="utf-8-sig")
    else:
        sys.stdout.write(text)
    return 0


def _export_filter(args: argparse.Namespace, file_format: str) -> dict:
    """What the audit log records of an export from the command line: who ran it, the filter and the file."""
    return {"via": "cli", "os_user": operator(), "format": file_format, "status": args.status, "topic": args.topic,
            "locality": args.locality, "since": args.since.isoformat() if args.since else None,
            "until": args.until.isoformat() if args.until else None, "out": str(args.out) if args.out else None}


async def _load_tasks(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    try:
        created, updated = await task_file.load(store, args.file, ZoneInfo(config.tz), now)
    except (OSError, UnicodeDecodeError, yaml_fields.FileProblem) as err:
        say("load_failed", error=True, file=args.file, problem=err)
        return 1
    await store.audit.record(None, "tasks.loaded", str(args.file), now, via="cli", created=created, updated=updated)
    say("tasks_loaded", created=created, updated=updated)
    return 0


async def _invite(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    unknown = [c for c in args.locality if await store.localities.by_code(c) is None]
    unknown += [c for c in args.topic if await store.topics.by_code(c) is None]
    if unknown:
        say("unknown_codes", error=True, codes=", ".join(unknown))
        return 1
    ttl = timedelta(days=args.days or config.invite_days)
    token, invite = await store.roles.create_invite(args.locality, args.topic, args.unit, None, now, ttl)
    await store.audit.record(None, "invite.created", f"invite:{invite.id}", now, via="cli",
                             localities=args.locality, topics=args.topic, unit=args.unit)
    say("invite", expires=invite.expires_at, token=token)
    return 0


async def _backups(args: argparse.Namespace, config: Config) -> int:
    """Not through the Store: a database is checked before anything opens (and migrates) it, and the one a
    restore replaces is not opened at all."""
    if is_url(config.db):  # one dump holds the database and the files in it
        say("backup_postgresql", error=True)
        return 1
    db, files, now = config.db, files_dir(config.db), utc_now()
    try:
        if args.db_command == "backup":
            taken = await asyncio.to_thread(backup.take, db, files, args.dir, now)
            say("backup_written", file=taken.path, files=taken.files)
            if taken.missing:
                say("backup_missing_files", error=True, count=len(taken.missing))
            return 1 if taken.missing else 0
        if args.db_command == "restore":
            restored = await asyncio.to_thread(backup.restore, args.file, db, files, now, force=args.force)
            _report(restored.report)
            if not restored.done:
                say("restore_damaged", error=True, file=args.file)
                return 1
            say("restored", file=args.file, path=db)
            if restored.aside:
                say("restored_aside", path=restored.aside)
            return 1 if restored.report.problems else 0
        report = await asyncio.to_thread(backup.check, db, files)
        _report(report)
        return 1 if report.problems else 0
    except backup.BackupError as err:
        say(err.key, error=True, **err.values)
    except (OSError, sqlite3.Error) as err:
        say("backup_failed", error=True, problem=err)
    return 1


def _report(report: backup.Report) -> None:
    say("check_database", path=report.database)
    if report.unreadable is not None:
        say("check_unreadable", reason=report.unreadable)
    else:
        for detail in report.integrity:
            say("check_integrity_bad", detail=detail)
        if not report.integrity:
            say("check_integrity_ok")
        if report.damaged_beyond:
            say("check_skipped")
        else:
            _report_references(report)
    if report.problems:
        say("check_failed", error=True, count=report.problems)
    else:
        say("check_ok")


def _report_references(report: backup.Report) -> None:
    for table, rowid, parent in report.foreign_keys:
        say("check_key_bad", table=table, rowid=rowid, parent=parent)
    if not report.foreign_keys:
        say("check_keys_ok")
    for sha256, table in report.missing:
        say("check_file_missing", sha256=sha256, table=table)
    for sha256, table in report.damaged:
        say("check_file_damaged", sha256=sha256, table=table)
    if not report.missing and not report.damaged:
        say("check_files_ok", count=report.files)


def _delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def demo_reset(config: Config) -> int:
    await asyncio.to_thread(_delete_database, config.demo_db)
    store = await Store.open(config.demo_db)
    try:
        await seed_demo(store, utc_now())
    finally:
        await store.close()
    say("demo_reset", path=config.demo_db)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def run(config: Config) -> int:
    import uvicorn

    from bot.connections import raise_open_files, server_config
    from bot.server import build_asgi

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.listening = asyncio.Event()

        @contextlib.contextmanager
        def capture_signals(self):  # the bot handles SIGINT/SIGTERM itself, for an orderly stop
            yield

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            self.listening.set()

    try:
        sock = _listen(config.host, config.port)
    except OSError as err:
        say("cannot_listen", error=True, host=config.host, port=config.port, reason=err.strerror)
        return 1
    raise_open_files(config.max_connections)
    app = await App.build(config)
    server = Server(server_config(build_asgi(app), config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.halted.set)
    try:
        try:
            await app.start()
        except ChannelFatal as err:
            say("channel_fatal", error=True, channel=channel_key(err.channel), reason=err.reason)
            return 1
        except PollerTaken as err:
            say("poller_taken", error=True, channel=channel_key(err.channel))
            return 1
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait([serving, listening], return_when=asyncio.FIRST_COMPLETED)
        if not server.listening.is_set():
            listening.cancel()
            await serving
            return 1
        if config.demo:
            say("demo_mode", path=config.demo_db)
            if config.host not in ("127.0.0.1", "localhost", "::1"):
                say("demo_exposed", error=True, host=config.host)
        elif app.telegram is not None:
            say("telegram_on", username=app.telegram.username)
        say("open_browser", url=config.web_url)
        await app.halted.wait()
        server.should_exit = True
        for web in app.web_channels:
            web.close()
        await serving
    finally:
        await app.stop()
    if app.fatal is not None:
        say("channel_fatal", error=True, channel=channel_key(app.fatal_channel), reason=app.fatal)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
