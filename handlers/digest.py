"""/bantin: a cadre's digest (bản tin tổng hợp) — when it comes, and what it says.

Each cadre or admin chooses daily at a time (07:30 by default), weekly on a day, or off, and whether to
skip a digest when nothing is new. The digest covers the cadre's scope from the end of the last one to
its slot: new cases by topic and by place with the most important ones, what is overdue or due soon,
answers and their ratings, campaigns in the area, tasks due; the weekly one adds a chart. The buttons
open the inbox on the same views. bot/jobs.py decides when to send it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers import charts
from handlers.base import STAFF, Ctx, Document, Option, Reply, Settings, cb, registry, step_key
from handlers.features import Command, Feature, features
from handlers.inbox import SOON
from handlers.reports import Places, case_scope, day, number, when
from messages import Key, Safe, Texts, cut, join
from storage import Store
from storage.campaigns import Campaign
from storage.clock import parse
from storage.digests import CaseScope, DigestSettings
from storage.topics import Topic
from storage.users import User

log = logging.getLogger(__name__)
FLOW = "bt"
registry.flow(FLOW, roles=STAFF)
TIMES = ("06:00", "06:30", "07:00", "07:30", "08:00", "11:30", "17:00")
_TIME = re.compile(r"^\s*(\d{1,2})\s*(?:[:hg.]\s*(\d{2})?)?\s*(?:phút)?\s*$", re.IGNORECASE)
HIGHLIGHTS = 5


def _key(step: str) -> str:
    return step_key(FLOW, step)


# ---- when ---------------------------------------------------------------------------------------------


def latest_slot(settings: DigestSettings, now: datetime, tz: ZoneInfo) -> tuple[datetime, str] | None:
    """The most recent moment at or before `now` when this digest was due, and the name of that slot
    (the local date of a daily digest, the ISO week of a weekly one): the idempotency key's last part."""
    if settings.mode == "off":
        return None
    local = now.astimezone(tz)
    at = time(*divmod(settings.at_minute, 60))
    if settings.mode == "daily":
        slot_day = local.date() if local.time() >= at else local.date() - timedelta(days=1)
        return datetime.combine(slot_day, at, tzinfo=tz).astimezone(UTC), slot_day.isoformat()
    slot_day = local.date() - timedelta(days=(local.weekday() - settings.weekday) % 7)
    if datetime.combine(slot_day, at, tzinfo=tz) > local:
        slot_day -= timedelta(days=7)
    year, week, _ = slot_day.isocalendar()
    return datetime.combine(slot_day, at, tzinfo=tz).astimezone(UTC), f"{year}-W{week:02d}"


# ---- what ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    replies: list[Reply]
    empty: bool  # no new case, no answer, no rating in the period


@dataclass
class Shared:
    """What all the digests of one tick read alike: the locality tree, the topics, the campaigns running, and
    how many people of each locality receive each campaign's news (counted once per tick)."""

    places: Places
    topics: dict[int, Topic]
    campaigns: list[Campaign]
    audience: dict[tuple[int, int | None], int]
    reach: dict[tuple[str, ...], dict[int | None, int]] = field(default_factory=dict)
    progress: dict[int, tuple[int, int]] | None = None  # tasks: (done, assigned), read once

    async def task_progress(self, store: Store) -> dict[int, tuple[int, int]]:
        if self.progress is None:
            self.progress = await store.tasks.progress()
        return self.progress

    @classmethod
    async def load(cls, store: Store, now: datetime, tz: ZoneInfo) -> Shared:
        campaigns = await store.digests.campaigns(now.astimezone(tz).date().isoformat())
        audience = await store.digests.audience({c.topic_id for c in campaigns}) if campaigns else {}
        return cls(await Places.load(store), {tp.id: tp for tp in await store.topics.all()}, campaigns, audience)

    def reach_in(self, roots: tuple[str, ...]) -> dict[int | None, int]:
        """People of these subtrees who receive news, per campaign topic."""
        key = tuple(sorted(roots))
        if key not in self.reach:
            inside = {loc.id for loc in self.places.by_id.values() if loc.path.startswith(key)}
            totals: dict[int | None, int] = {}
            for (locality_id, topic_id), count in self.audience.items():
                if locality_id in inside:
                    totals[topic_id] = totals.get(topic_id, 0) + count
            self.reach[key] = totals
        return self.reach[key]


@dataclass(frozen=True)
class Period:
    """What a feature's digest section (`Feature.digest`) is given: whose digest, the period [start, end) it covers,
    and what every digest of the tick shares."""

    store: Store
    t: Texts  # the reader's language
    user: User
    start: datetime
    end: datetime
    now: datetime
    tz: ZoneInfo
    shared: Shared


@dataclass(frozen=True)
class Section:
    """A feature's part of a digest: its lines, heading first, and a row of buttons under the digest."""

    lines: list[str]
    buttons: tuple[Option, ...] = ()


def _topic_name(topics: dict[int, Topic], topic_id: int, language: str) -> str:
    topic = topics.get(topic_id)
    return topic.name(language) if topic else "?"


async def compose(store: Store, settings: Settings, user: User, start: datetime, end: datetime, now: datetime,
                  *, weekly: bool, shared: Shared | None = None) -> Digest:
    """The digest of `user` for the cases created in [start, end), as of `now`."""
    t, tz, lang = Texts(user.language), settings.tz, user.language
    shared = shared or await Shared.load(store, now, tz)
    places, topics = shared.places, shared.topics
    scope = await case_scope(store, user)
    counts = await store.digests.new_counts(scope, start, end)
    opened = await store.digests.open_counts(scope, now, now + SOON)
    answers = await store.digests.answers(scope, start, end)
    total = sum(c.count for c in counts)
    parts = [t("digest.title", scope=user.unit_name if user.role == "cadre" and user.unit_name
               else Key("digest.whole_province"), start=when(start, tz), end=when(end, tz))]

    if total:
        by_topic: Counter[int] = Counter()
        by_place: Counter[int] = Counter()
        depth = places.depth_for(scope.roots)
        for c in counts:
            by_topic[c.topic_id] += c.count
            by_place[places.at_level(c.locality_id, depth) or c.locality_id] += c.count
        urgent = sum(c.urgent for c in counts)
        lines = [t("digest.new", count=number(total, lang)) + (t("digest.urgent", count=number(urgent, lang))
                                                               if urgent else "")]
        lines.append(t("digest.by_topic", items=join(", ", (
            f"{_topic_name(topics, i, lang)} {number(n, lang)}" for i, n in by_topic.most_common()))))
        by_places = [Safe(f"{places.name(t, i)} {number(n, lang)}") for i, n in by_place.most_common(8)]
        more = [t("digest.more_places", count=len(by_place) - 8)] if len(by_place) > 8 else []
        lines.append(t("digest.by_place", items=Safe(join(", ", by_places) + "".join(more))))
        highlights = await store.digests.highlights(scope, start, end, HIGHLIGHTS)
        if highlights:
            lines.append(t("digest.highlights"))
            for h in highlights:  # open cases: past their due date, they are overdue
                late = parse(h.answer_due) < now
                lines.append(t("digest.highlight", mark="🔴" if h.urgent else "⏰" if late else "•", code=h.code,
                               place=places.full_name(t, h.locality_id), topic=_topic_name(topics, h.topic_id, lang),
                               due=day(h.answer_due, tz), overdue=t("inbox.overdue") if late else "",
                               excerpt=t("digest.hidden") if h.hidden else cut(h.content, 60)))
        parts.append(Safe("\n".join(lines)))
    else:
        parts.append(t("digest.new_none"))

    parts.append(t("digest.todo", overdue=number(opened.overdue, lang), due_soon=number(opened.due_soon, lang),
                   open=number(opened.open, lang)))
    answered = t("digest.answers", count=number(answers.answered, lang))
    if answers.rated:
        answered += t("digest.ratings", good=number(answers.good, lang), ok=number(answers.ok, lang),
                      bad=number(answers.bad, lang))
    parts.append(Safe(answered))
    campaigns = await _campaign_lines(store, t, scope, start, end, shared)
    if campaigns:
        parts.append(Safe("\n".join([t("digest.campaigns"), *campaigns])))
    period = Period(store, t, user, start, end, now, tz, shared)
    sections = [section for f in features if f.digest and (section := await f.digest(period))]
    parts += [Safe("\n".join(section.lines)) for section in sections]

    rows = [
        (Option(t("digest.open_new"), cb("ib", "new")),
         Option(t("digest.open_overdue", count=number(opened.overdue, lang)), cb("ib", "overdue"))),
        (Option(t("digest.open_due_soon", count=number(opened.due_soon, lang)), cb("ib", "due_soon")),
         Option(t("digest.open_open", count=number(opened.open, lang)), cb("ib", "open"))),
    ]
    rows += [section.buttons for section in sections if section.buttons]
    replies = [Reply(Safe("\n\n".join(parts)), tuple(rows))]
    if weekly:
        data = await chart_data(store, t, scope, places, topics, start, end, now, tz)
        try:
            png = await asyncio.to_thread(charts.render, data, t)
        except Exception:  # the digest still goes out, without its picture
            log.exception("the weekly chart could not be drawn")
        else:
            replies.append(Reply(t("digest.chart_caption", start=data.days[0], end=data.days[-1]),
                                 photo=Document(f"ban-tin-{end.astimezone(tz).date().isoformat()}.png", png,
                                                "image/png")))
    return Digest(replies, empty=total == 0 and answers.answered == 0 and answers.rated == 0)


async def _campaign_lines(store: Store, t: Texts, scope: CaseScope, start: datetime, end: datetime,
                          shared: Shared) -> list[str]:
    """Campaigns running now: how many people of the area receive their news, and the cases they brought."""
    if not shared.campaigns:
        return []
    cases = await store.digests.campaign_cases(scope, start, end)
    reach = shared.reach_in(scope.roots)
    lines = []
    for campaign in shared.campaigns:
        if scope.topics and campaign.topic_id not in scope.topics and campaign.id not in cases:
            continue
        lines.append(t("digest.campaign", title=campaign.title(t.language),
                       reach=number(reach.get(campaign.topic_id, 0), t.language),
                       cases=number(cases.get(campaign.id, 0), t.language)))
    return lines[:4]


async def chart_data(store: Store, t: Texts, scope: CaseScope, places: Places, topics: dict[int, Topic],
                     start: datetime, end: datetime, now: datetime, tz: ZoneInfo) -> charts.ChartData:
    """The cases of the digest's own period [start, end) per local day and topic, so that the chart counts what
    the text counts; overdue by place now."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()  # a period ending at midnight ends the day before
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    offset = int(end.astimezone(tz).utcoffset().total_seconds() // 60)
    grid: dict[int, dict[date, int]] = {}
    for local_day, topic_id, count in await store.digests.per_day(scope, start, end, offset):
        grid.setdefault(topic_id, {})[date.fromisoformat(local_day)] = count
    series = tuple((_topic_name(topics, topic_id, t.language), tuple(by_day.get(d, 0) for d in days))
                   for topic_id, by_day in sorted(grid.items(), key=lambda item: -sum(item[1].values())))
    depth = places.depth_for(scope.roots)
    overdue: Counter[int] = Counter()
    for locality_id, count in (await store.digests.overdue_by_locality(scope, now)).items():
        overdue[places.at_level(locality_id, depth) or locality_id] += count
    return charts.ChartData(
        title=t("chart.title", start=days[0].strftime("%d/%m"), end=days[-1].strftime("%d/%m/%Y")),
        days=tuple(d.strftime("%d/%m") for d in days), series=series,
        overdue=tuple((places.name(t, i), n) for i, n in overdue.most_common()))


# ---- /bantin ------------------------------------------------------------------------------------------


@registry.command("bantin", "digest")
async def digest_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "menu")


def _at(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def _menu_prompt(ctx: Ctx) -> None:
    s = await ctx.store.digests.get(ctx.user.id, ctx.now)
    when_text = {"daily": ctx.t("digest.daily_at", at=_at(s.at_minute)),
                 "weekly": ctx.t("digest.weekly_at", day=Key(f"digest.day_{s.weekday}"), at=_at(s.at_minute)),
                 "off": ctx.t("digest.off")}[s.mode]
    key = _key("menu")
    mark = {m: " •" if s.mode == m else "" for m in ("daily", "weekly", "off")}
    rows = [
        (Option(ctx.t("digest.mode_daily") + mark["daily"], cb(key, "d")),
         Option(ctx.t("digest.mode_weekly") + mark["weekly"], cb(key, "w")),
         Option(ctx.t("digest.mode_off") + mark["off"], cb(key, "off"))),
        (Option(ctx.t("digest.change_time", at=_at(s.at_minute)), cb(key, "t")),),
    ]
    if s.mode == "weekly":
        rows.append((Option(ctx.t("digest.change_day", day=Key(f"digest.day_{s.weekday}")), cb(key, "wd")),))
    rows.append((Option(ctx.t("digest.skip_on" if s.skip_empty else "digest.skip_off"), cb(key, "s")),))
    rows.append((Option(ctx.t("digest.preview"), cb(key, "now")),))
    ctx.say(ctx.t("digest.settings", when=when_text,
                  skip=Key("digest.skip_yes" if s.skip_empty else "digest.skip_no")), rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] in (("d",), ("off",), ("s",)))


@registry.step(FLOW, "menu", _menu_prompt)
async def _menu_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if args == ("d",):
        await _set(ctx, mode="daily")
        await _menu_prompt(ctx)
    elif args == ("off",):
        await _set(ctx, mode="off")
        await _menu_prompt(ctx)
    elif args in (("w",), ("wd",)):
        await ctx.goto(FLOW, "day")
    elif args == ("t",):
        await ctx.goto(FLOW, "time")
    elif args == ("s",):
        s = await ctx.store.digests.get(ctx.user.id, ctx.now)
        await _set(ctx, skip_empty=not s.skip_empty)
        await _menu_prompt(ctx)
    elif args == ("now",):
        await _preview(ctx)
    else:
        await ctx.wrong()


async def _set(ctx: Ctx, **fields: object) -> None:
    await ctx.store.digests.update(ctx.user.id, ctx.now, **fields)
    await ctx.audit("digest.settings", f"user:{ctx.user.id}", **fields)


async def _preview(ctx: Ctx) -> None:
    """What the next digest would say if it were sent now (it still comes at its time), with its chart."""
    await ctx.typing()
    s = await ctx.store.digests.get(ctx.user.id, ctx.now)
    start = min(parse(s.last_end), ctx.now - timedelta(days=7 if s.mode == "weekly" else 1))
    digest = await compose(ctx.store, ctx.settings, ctx.user, start, ctx.now, ctx.now, weekly=s.mode == "weekly")
    ctx.finish()
    ctx.replies.extend(digest.replies)


async def _day_prompt(ctx: Ctx) -> None:
    key = _key("day")
    buttons = [Option(ctx.t(f"digest.day_{n}"), cb(key, n)) for n in range(7)]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, 7, 2)]
    rows.append((Option(ctx.t("common.back"), cb(key, "back")),))
    ctx.say(ctx.t("digest.ask_day"), rows)


@registry.step(FLOW, "day", _day_prompt)
async def _day_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if args == ("back",):
        await ctx.goto(FLOW, "menu")
    elif len(args) == 1 and args[0] in "0123456" and len(args[0]) == 1:
        await _set(ctx, mode="weekly", weekday=int(args[0]))
        ctx.say(ctx.t("digest.saved"))
        await ctx.goto(FLOW, "menu")
    else:
        await ctx.wrong()


async def _time_prompt(ctx: Ctx) -> None:
    key = _key("time")
    buttons = [Option(at, cb(key, at.replace(":", ""))) for at in TIMES]
    rows = [tuple(buttons[i : i + 4]) for i in range(0, len(buttons), 4)]
    rows.append((Option(ctx.t("common.back"), cb(key, "back")),))
    ctx.say(ctx.t("digest.ask_time"), rows)


def parse_time(text: str) -> int | None:
    """Minutes after midnight from "7:30", "07:30", "7h30", "7g", "17.00"; None if it is no time of day."""
    match = _TIME.match(text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    return hour * 60 + minute if hour < 24 and minute < 60 else None


@registry.step(FLOW, "time", _time_prompt)
async def _time_handle(ctx: Ctx) -> None:
    minute = None
    if ctx.inbound.kind == "choice":
        args = ctx.args
        if args == ("back",):
            await ctx.goto(FLOW, "menu")
            return
        if len(args) == 1 and f"{args[0][:2]}:{args[0][2:]}" in TIMES:
            minute = parse_time(f"{args[0][:2]}:{args[0][2:]}")
        else:
            await ctx.reask(ctx.stale_key)
            return
    elif ctx.inbound.kind == "text" and len(ctx.inbound.text) <= 20:
        minute = parse_time(ctx.inbound.text)
    if minute is None:
        await ctx.reask("digest.time_invalid")
        return
    await _set(ctx, at_minute=minute)
    ctx.say(ctx.t("digest.saved"))
    await ctx.goto(FLOW, "menu")


async def export(ctx: Ctx) -> dict | None:
    if ctx.user.role == "citizen":
        return None
    digest = await ctx.store.digests.get(ctx.user.id, ctx.now)
    return {"digest_settings": {"mode": digest.mode, "at_minute": digest.at_minute, "weekday": digest.weekday,
                                "skip_empty": digest.skip_empty}}


FEATURE = Feature("digest", commands=(Command("bantin", STAFF, menu="menu.bantin", place=90),),
                  export=export, exported=("digest_settings",), erased=(("digest_settings", "user", None),))
