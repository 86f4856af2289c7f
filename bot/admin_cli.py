"""`danvan admin list` and `danvan admin remove`: who holds admin rights, and taking them away (audited). The last
admin is kept unless --force: without one, nobody could invite cadres or read the audit log from the chat."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.console import help_text as _h
from bot.console import operator, say, texts
from messages import channel_key
from storage import Store
from storage.clock import parse
from storage.roles import LastAdmin


def add_parsers(admin: argparse._SubParsersAction) -> None:
    admin.add_parser("list", help=_h("admins.list"))
    remove = admin.add_parser("remove", help=_h("admins.remove"))
    who = remove.add_mutually_exclusive_group(required=True)
    who.add_argument("--telegram-id", type=int, help=_h("admin_telegram_id"))
    who.add_argument("--user-id", type=int, help=_h("admins.user_id"))
    remove.add_argument("--force", action="store_true", help=_h("admins.force"))


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now) -> int:
    if args.admin_command == "list":
        return await _list(store, ZoneInfo(config.tz))
    return await _remove(store, args, now)


async def _list(store: Store, tz: ZoneInfo) -> int:
    admins = [u for u in await store.users.staff() if u.role == "admin"]
    say("admins.count", count=len(admins))
    for user in admins:
        say("admins.line", id=user.id, channel=channel_key(user.channel), account=user.external_id,
            name=user.display_name or "-", since=parse(user.created_at).astimezone(tz).strftime("%d/%m/%Y"))
    return 0


async def _remove(store: Store, args: argparse.Namespace, now) -> int:
    user = (await store.users.find("telegram", str(args.telegram_id)) if args.telegram_id is not None
            else await store.users.get(args.user_id))
    account = args.telegram_id if args.telegram_id is not None else args.user_id
    try:
        role = await store.roles.remove_admin(user.id, now, force=args.force) if user else None
    except LastAdmin:
        say("admins.last", error=True, account=account)
        return 1
    if role is None:
        say("admins.not_admin", error=True, account=account)
        return 1
    await store.audit.record(None, "admin.removed", f"user:{user.id}", now, via="cli", os_user=operator(), role=role,
                             forced=args.force)
    say("admins.removed", account=account, role=texts().plain(f"role.{role}"))
    return 0
