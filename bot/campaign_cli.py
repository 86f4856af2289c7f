"""`danvan campaign …` and `danvan broadcast …`: campaigns from YAML, their QR codes and results;
scripted announcements, written to the database for the running bot to send (one sender per channel
keeps the rate limit whole)."""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot import console, yaml_fields
from bot.config import Config
from bot.console import help_text as _h
from bot.console import say
from bot.yaml_fields import FileProblem, text
from handlers import images
from handlers.broadcast import MAX_CAPTION, MAX_PHOTO, MAX_TEXT, URL, parse_when, plan_start
from handlers.campaigns import period_text, qr_png
from handlers.richtext import HtmlProblem, check
from storage import Store
from storage.broadcasts import ROLES, Audience, NewBroadcast
from storage.campaigns import CODE, CampaignError
from storage.clock import parse

CAMPAIGN_KEYS = {"code", "title_vi", "title_en", "description_vi", "description_en", "topic", "starts_on", "ends_on"}
BROADCAST_KEYS = {"campaign", "text_vi", "text_en", "photo", "link", "feedback_button", "audience", "at",
                  "override_quiet_hours"}
AUDIENCE_KEYS = {"topics", "localities", "roles"}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    campaign = sub.add_parser("campaign", help=_h("campaign")).add_subparsers(dest="campaign_command",
                                                                                            required=True)
    load = campaign.add_parser("load", help=_h("campaign_load"))
    load.add_argument("file", type=Path)
    qr = campaign.add_parser("qr", help=_h("campaign_qr"))
    qr.add_argument("code")
    qr.add_argument("--out", type=Path, required=True, help=_h("qr_out"))
    qr.add_argument("--web", action="store_true", help=_h("qr_web"))
    stats = campaign.add_parser("stats", help=_h("campaign_stats"))
    stats.add_argument("code")

    broadcast = sub.add_parser("broadcast", help=_h("broadcast")).add_subparsers(
        dest="broadcast_command", required=True)
    send = broadcast.add_parser("send", help=_h("broadcast_send"))
    send.add_argument("file", type=Path)
    broadcast.add_parser("list", help=_h("broadcast_list"))
    cancel = broadcast.add_parser("cancel", help=_h("broadcast_cancel"))
    cancel.add_argument("id", type=int)


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now) -> int | None:
    """The command's exit status, or None when it is not one of these commands."""
    try:
        if args.command == "campaign":
            return await {"load": _load, "qr": _qr, "stats": _stats}[args.campaign_command](store, config, args, now)
        if args.command == "broadcast":
            return await {"send": _send, "list": _list, "cancel": _cancel}[args.broadcast_command](
                store, config, args, now)
    except FileProblem as problem:
        print(f"{getattr(args, 'file', '')}: {problem}", file=sys.stderr)
        return 1
    return None


def _read_yaml(path: Path) -> Any:
    """The file's values as written: bot/yaml_fields.py."""
    try:
        return yaml_fields.read(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblem("unreadable", reason=getattr(err, "strerror", None) or err) from None


# ---- campaigns -------------------------------------------------------------------------------------------


async def _load(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    data = await asyncio.to_thread(_read_yaml, args.file)
    items = data.get("campaigns") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise FileProblem("campaigns_list")
    topics = {t.code: t.id for t in await store.topics.all()}
    rows = []
    for number, item in enumerate(items, start=1):
        where = console.fragment("campaign_n", n=number)
        if not isinstance(item, dict):
            raise FileProblem("mapping_of", where=where, keys=", ".join(sorted(CAMPAIGN_KEYS)))
        unknown = set(item) - CAMPAIGN_KEYS
        if unknown:
            raise FileProblem("unknown_keys", where=where, keys=", ".join(sorted(map(str, unknown))))
        code = text(item.get("code"), f"{where}: code", required=True)
        if not CODE.match(code):
            raise FileProblem("campaign_code", where=where, code=repr(code))
        topic = text(item.get("topic"), f"{code}: topic")
        if topic is not None and topic not in topics:
            raise FileProblem("unknown_topic", where=code, code=repr(topic), known=", ".join(sorted(topics)))
        days = [yaml_fields.day(item.get(key), f"{code}: {key}") for key in ("starts_on", "ends_on")]
        if days[0] and days[1] and days[1] < days[0]:  # checked before anything is saved: a bad file changes nothing
            raise FileProblem("campaign_dates", where=code, start=days[0], end=days[1])
        rows.append((code, text(item.get("title_vi"), f"{code}: title_vi", required=True),
                     text(item.get("description_vi"), f"{code}: description_vi", required=True),
                     topics.get(topic) if topic else None, text(item.get("title_en"), f"{code}: title_en"),
                     text(item.get("description_en"), f"{code}: description_en"), days))
    if len({r[0] for r in rows}) != len(rows):
        raise FileProblem("same_code")
    try:
        await store.campaigns.upsert_all([(*row[:6], *row[6]) for row in rows])
    except CampaignError as err:
        raise FileProblem(err.key, **err.values) from None
    await store.audit.record(None, "campaign.loaded", None, now, via="cli", codes=[r[0] for r in rows])
    say("campaigns_loaded", count=len(rows), codes=", ".join(r[0] for r in rows))
    return 0


async def start_link(config: Config, payload: str, web: bool) -> str:
    """The deep link a QR code opens: the Telegram bot's (asks Telegram for its name) or the web chat's."""
    if config.telegram_token is None or web:
        return f"{config.web_url}/?start={payload}"
    from telegram import Bot

    async with Bot(config.telegram_token.get_secret_value(), base_url=config.telegram_api_url) as bot:
        return f"https://t.me/{bot.username}?start={payload}"


async def _qr(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    campaign = await store.campaigns.by_code(args.code)
    if campaign is None:
        say("unknown_campaign", error=True, code=args.code)
        return 1
    link = await start_link(config, f"c_{campaign.code}", args.web)
    await asyncio.to_thread(args.out.write_bytes, qr_png(link))
    await store.audit.record(None, "campaign.qr", f"campaign:{campaign.code}", now, via="cli")
    print(f"{args.out}: {link}")
    return 0


async def _stats(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    campaign = await store.campaigns.by_code(args.code)
    if campaign is None:
        say("unknown_campaign", error=True, code=args.code)
        return 1
    s = await store.campaigns.stats(campaign.id)
    t = console.texts()
    print(f"{campaign.code} — {campaign.title_vi}")
    lines = [("period", period_text(campaign))] if period_text(campaign) else []
    lines += [("broadcasts", s.broadcasts), ("recipients", s.recipients), ("reached", s.reached),
              ("delivered", s.delivered), ("blocked", s.blocked), ("failed", s.failed), ("opens", s.opens),
              ("cases", s.cases)]
    for name, value in lines:
        print(f"  {t.plain(f'cli.stats_{name}'):<24}{value}")
    return 0


# ---- broadcasts ----------------------------------------------------------------------------------------


async def _send(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    data = await asyncio.to_thread(_read_yaml, args.file)
    if not isinstance(data, dict):
        raise FileProblem("mapping_of", where=args.file, keys=", ".join(sorted(BROADCAST_KEYS)))
    unknown = set(data) - BROADCAST_KEYS
    if unknown:
        raise FileProblem("unknown_keys", where=args.file, keys=", ".join(sorted(map(str, unknown))))
    feedback = yaml_fields.flag(data.get("feedback_button"), "feedback_button")
    override = yaml_fields.flag(data.get("override_quiet_hours"), "override_quiet_hours")
    campaign, campaign_code = None, text(data.get("campaign"), "campaign")
    if campaign_code is not None:
        campaign = await store.campaigns.by_code(campaign_code)
        if campaign is None:
            raise FileProblem("unknown_campaign", code=repr(campaign_code))
    photo, photo_name = None, text(data.get("photo"), "photo")
    if photo_name is not None:
        path = (args.file.parent / photo_name).resolve()
        try:
            photo = await asyncio.to_thread(path.read_bytes)
        except OSError as err:
            raise FileProblem("photo_unreadable", path=path, reason=err.strerror) from None
        if len(photo) > MAX_PHOTO:
            raise FileProblem("photo_large", path=path, mb=MAX_PHOTO // (1024 * 1024))
        try:
            photo = await images.normalised(photo)
        except images.BadImage as bad:
            raise FileProblem("photo_bad", path=path, reason=console.texts().plain(bad.key)) from None
    limit = MAX_CAPTION if photo else MAX_TEXT
    texts = [_html(data.get(key), key, limit, required=key == "text_vi") for key in ("text_vi", "text_en")]
    link = text(data.get("link"), "link")
    if link is not None and not URL.match(link):
        raise FileProblem("bad_link")
    audience = await _audience(store, data.get("audience") or {})
    tz = ZoneInfo(config.tz)
    requested, at = now, text(data.get("at"), "at")
    if at is not None:
        requested = parse_when(at, tz)
        if requested is None:
            raise FileProblem("bad_at")
        if requested <= now:
            raise FileProblem("at_passed")
    start = plan_start(requested, config.quiet, tz, override)
    broadcast = await store.broadcasts.create(NewBroadcast(
        text_vi=texts[0], text_en=texts[1], scheduled_at=start, audience=audience,
        campaign_id=campaign.id if campaign else None, photo_sha256=await store.files.put(photo) if photo else None,
        link_url=link, feedback=feedback, quiet_override=override), now)
    count = await store.broadcasts.count_audience(audience)
    await store.audit.record(None, "broadcast.created", f"broadcast:{broadcast.id}", now, via="cli",
                             audience=audience.to_json(), at=broadcast.scheduled_at)
    when = start.astimezone(tz).strftime("%d/%m/%Y %H:%M")
    quiet = console.texts().plain("cli.broadcast_after_quiet") if start != requested else ""
    say("broadcast_created", id=broadcast.id, count=count, when=when, quiet=quiet, tick=f"{config.tick_seconds:g}")
    return 0


def _html(value: object, key: str, limit: int, *, required: bool) -> str | None:
    written = text(value, key, required=required)
    if written is None:
        return None
    try:
        checked = check(written)
    except HtmlProblem as problem:
        message = html.unescape(console.texts().plain(problem.key, **problem.values))  # a terminal: no entities
        raise FileProblem("html", field=key, message=message) from None
    if checked.length > limit:
        raise FileProblem("too_long", field=key, length=checked.length, limit=limit)
    return checked.html


async def _audience(store: Store, spec: object) -> Audience:
    if not isinstance(spec, dict) or set(spec) - AUDIENCE_KEYS:
        raise FileProblem("mapping_of", where="audience", keys=", ".join(sorted(AUDIENCE_KEYS)))
    topics, places = [], []
    for code in yaml_fields.codes(spec.get("topics"), "audience: topics"):
        topic = await store.topics.by_code(code)
        if topic is None:
            raise FileProblem("audience_unknown_topic", code=repr(code))
        topics.append(topic.id)
    for code in yaml_fields.codes(spec.get("localities"), "audience: localities"):
        place = await store.localities.by_code(code)
        if place is None:
            raise FileProblem("audience_unknown_locality", code=repr(code))
        places.append(place.id)
    roles = yaml_fields.codes(spec.get("roles"), "audience: roles")
    if set(roles) - set(ROLES):
        raise FileProblem("audience_roles", roles=", ".join(ROLES))
    return Audience(tuple(topics), tuple(places), tuple(roles))


async def _list(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    tz = ZoneInfo(config.tz)
    for b in await store.broadcasts.recent(20):
        counts = await store.broadcasts.counts(b.id)
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "—"
        when = datetext(b.scheduled_at, tz)
        print(f"#{b.id}  {b.status:<9} {when}  {shown}  {check(b.text_vi).plain[:50]!r}")
    return 0


def datetext(moment: str, tz: ZoneInfo) -> str:
    return parse(moment).astimezone(tz).strftime("%d/%m/%Y %H:%M")


async def _cancel(store: Store, config: Config, args: argparse.Namespace, now) -> int:
    if not await store.broadcasts.cancel(args.id, now):
        say("broadcast_not_running", error=True, id=args.id)
        return 1
    await store.audit.record(None, "broadcast.cancelled", f"broadcast:{args.id}", now, via="cli")
    say("broadcast_stopped", id=args.id)
    return 0
