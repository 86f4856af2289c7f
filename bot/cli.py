"""The `danvan` command: run the bot and administer it from the shell."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import timedelta
from pathlib import Path

from bot import logs
from bot.app import App, utc_now
from bot.config import Config, ConfigError, load
from storage import Store
from storage.localities import LocalityError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="danvan", description="Chatbot công tác dân vận.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the bot (Telegram when TELEGRAM_BOT_TOKEN is set)")

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help="apply pending migrations and seed reference data")

    admin = sub.add_parser("admin", help="administrators").add_subparsers(dest="admin_command", required=True)
    add = admin.add_parser("add", help="make a Telegram account an administrator")
    add.add_argument("--telegram-id", type=int, required=True, help="the person's numeric Telegram user id")
    add.add_argument("--name", help="how the person is shown to other staff")

    invite = sub.add_parser("invite", help="cadre invites").add_subparsers(dest="invite_command", required=True)
    create = invite.add_parser("create", help="create a one-time invite link for a cadre")
    create.add_argument("--locality", action="append", required=True, metavar="CODE",
                        help="locality code of the scope (a subtree); repeat for several")
    create.add_argument("--topic", action="append", default=[], metavar="CODE",
                        help="topic code; repeat for several; none means every topic")
    create.add_argument("--unit", required=True, help='the cadre\'s unit, e.g. "Ban Dân vận xã Hải Lăng"')
    create.add_argument("--days", type=int, help="days until the link expires (default DANVAN_INVITE_DAYS)")

    locality = sub.add_parser("locality", help="reference data").add_subparsers(dest="loc_command", required=True)
    imp = locality.add_parser("import", help="import localities from CSV (code,name,kind,parent_code)")
    imp.add_argument("file", type=Path)

    args = parser.parse_args(argv)
    try:
        config = load()
    except ConfigError as err:
        print(f"Cấu hình không hợp lệ / invalid configuration: {err}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, _secrets(config))
    try:
        return asyncio.run(_dispatch(args, config))
    except KeyboardInterrupt:
        return 130


def _secrets(config: Config) -> list[str]:
    return [s.get_secret_value() for s in (config.telegram_token, config.telegram_webhook_secret) if s]


async def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "run":
        return await run(config)
    store = await Store.open(config.db)
    try:
        now = utc_now()
        if args.command == "db":
            print(f"Cơ sở dữ liệu {config.db}: phiên bản {await store.db.version()}")
            return 0
        if args.command == "admin":
            user = await store.users.ensure("telegram", str(args.telegram_id), str(args.telegram_id), args.name,
                                            "vi", now)
            await store.users.update(user.id, now, role="admin")
            await store.audit.record(None, "admin.added", f"user:{user.id}", now, via="cli")
            print(f"Telegram {args.telegram_id} là quản trị viên / is now an administrator.")
            return 0
        if args.command == "invite":
            return await _invite(store, config, args, now)
        if args.command == "locality":
            try:
                count = await store.localities.import_file(args.file)
            except (OSError, UnicodeDecodeError, LocalityError) as err:
                print(f"Không nhập được {args.file}: {err}", file=sys.stderr)
                return 1
            print(f"Đã nhập {count} địa bàn / imported {count} localities.")
            return 0
    finally:
        await store.close()
    return 2


async def _invite(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    unknown = [c for c in args.locality if await store.localities.by_code(c) is None]
    unknown += [c for c in args.topic if await store.topics.by_code(c) is None]
    if unknown:
        print(f"Mã không tồn tại / unknown codes: {', '.join(unknown)}", file=sys.stderr)
        return 1
    ttl = timedelta(days=args.days or config.invite_days)
    token, invite = await store.roles.create_invite(args.locality, args.topic, args.unit, None, now, ttl)
    await store.audit.record(None, "invite.created", f"invite:{invite.id}", now, via="cli",
                             localities=args.locality, topics=args.topic, unit=args.unit)
    print(f"Mã mời (dùng một lần, hết hạn {invite.expires_at}): /start i_{token}")
    return 0


async def run(config: Config) -> int:
    if config.telegram_token is None:
        print("Chưa có kênh nào để chạy: đặt TELEGRAM_BOT_TOKEN (mã bot lấy từ @BotFather) trong môi trường "
              "hoặc tệp .env.\nNo channel to run: set TELEGRAM_BOT_TOKEN (from @BotFather) in the environment "
              "or in .env.", file=sys.stderr)
        return 2
    import uvicorn

    from bot.server import build_asgi

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # the bot handles SIGINT/SIGTERM itself, for an orderly stop
            yield

    app = await App.build(config)
    server = Server(uvicorn.Config(build_asgi(app), host=config.host, port=config.port,
                                           log_level="warning", lifespan="off"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    serving = asyncio.create_task(server.serve())
    print(f"danvan: http://{config.host}:{config.port}/healthz", flush=True)
    await stop.wait()
    server.should_exit = True
    await serving
    await app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
