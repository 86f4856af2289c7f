"""/nhiemvu: work-plan tasks (nhiệm vụ). Admins create them (title, description, deadline, localities)
and follow their completion by locality; cadres see theirs and report each one done with a note and,
if they like, a photo or a file. bot/jobs.py announces new tasks and reminds cadres 3 and 1 working days
before the deadline and once it is overdue.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers import images
from handlers.base import ADMIN, STAFF, Ctx, Document, Option, Reply, allowed, cb, registry, step_key
from handlers.digest import Period, Section
from handlers.features import Command, Feature
from handlers.pickers import locality_name, locality_steps, page_note, page_row, pages_of, turned_page
from handlers.reports import Places, day, number, when
from handlers.workdays import working_days_between
from messages import Safe, Texts, cut, join
from storage import Store
from storage.clock import parse
from storage.localities import Locality
from storage.tasks import Task
from storage.users import User

FLOW = "nv"
registry.flow(FLOW, roles=STAFF)
PAGE_SIZE = 8
TITLE = (5, 200)
DESCRIPTION = 2000
NOTE = (5, 2000)
MAX_FILE = 20 * 1024 * 1024
OVERDUE_WINDOW = 5  # working days after the deadline in which a missed overdue reminder is still sent
_DATE = re.compile(r"^\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{2}|\d{4}))?\s*$")


def _key(step: str) -> str:
    return step_key(FLOW, step)



def end_of_day(day_: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day_, time(23, 59, 59), tzinfo=tz)


# ---- reminders: what is due, and what it says -----------------------------------------------------------


def reminder_kind(deadline: datetime, now: datetime, tz: ZoneInfo) -> str | None:
    """"d3" within 3 working days of the deadline, "d1" on the last working day before it (or on the day),
    "overdue" on the first working days after it; None otherwise. Counted in working days, so a deadline
    after a weekend or Tết is announced before it."""
    if now < deadline:
        left = working_days_between(now, deadline, tz)
        return "d1" if left <= 1 else "d3" if left <= 3 else None
    late = working_days_between(deadline, now, tz)
    return "overdue" if 1 <= late <= OVERDUE_WINDOW else None


def reminder(t: Texts, kind: str, tasks: list[Task], now: datetime, tz: ZoneInfo) -> Reply:
    """One message for one cadre: every task of one kind (new, d3, d1, overdue)."""
    lines = [t(f"task.remind_{kind}", count=len(tasks))]
    for task in tasks[:10]:
        deadline = parse(task.deadline)
        left = working_days_between(now, deadline, tz) if now < deadline else 0
        lines.append(t("task.remind_line", title=task.title, deadline=day(deadline, tz),
                       left=t("task.left_days", days=left) if kind in ("d3", "d1") and left else ""))
    if len(tasks) > 10:
        lines.append(t("task.and_more", count=len(tasks) - 10))
    buttons = tuple((Option(cut(task.title, 48), cb("nv", task.id)),) for task in tasks[:5])
    return Reply(Safe("\n".join(lines)), buttons)



async def digest_section(period: Period) -> Section | None:
    """In a digest: tasks due within a week or overdue, with a button to the task list."""
    t, user = period.t, period.user
    progress = await period.shared.task_progress(period.store) if user.role == "admin" else None
    lines = await digest_lines(period.store, t, user, period.now, period.tz, progress)
    return Section([t("digest.tasks"), *lines], (Option(t("digest.open_tasks"), cb("nv")),)) if lines else None


async def digest_lines(store: Store, t: Texts, user: User, now: datetime, tz: ZoneInfo,
                       progress: dict[int, tuple[int, int]] | None = None) -> list[str]:
    """Tasks due within a week or overdue: a cadre's own not yet done; for an admin, how far along each is
    (`progress`: store.tasks.progress(), when the caller has it already)."""
    soon = now + timedelta(days=7)
    lines = []
    if user.role == "admin":
        progress = progress if progress is not None else await store.tasks.progress()
        for task in await store.tasks.all():
            done, total = progress.get(task.id, (0, 0))
            if parse(task.deadline) <= soon and done < total and parse(task.deadline) > now - timedelta(days=30):
                lines.append(t("digest.task_admin", title=task.title, deadline=day(task.deadline, tz),
                               done=number(done, t.language), total=number(total, t.language)))
    else:
        for task, report in await store.tasks.of_cadre(user.id):
            if report is None and parse(task.deadline) <= soon:
                late = parse(task.deadline) < now
                lines.append(t("digest.task_late" if late else "digest.task", title=task.title,
                               deadline=day(task.deadline, tz)))
    return lines[:6]


# ---- who sees which task --------------------------------------------------------------------------------


async def _visible(ctx: Ctx, task_id: object) -> Task | None:
    """Admins see every task; a cadre only the tasks assigned to them."""
    task = await ctx.store.tasks.get(int(task_id)) if str(task_id).isdigit() else None
    if task is not None and (ctx.user.role == "admin" or await ctx.store.tasks.is_assigned(task.id, ctx.user.id)):
        return task
    if task is not None:
        await ctx.audit("denied", f"task:{task.id}")
    ctx.finish()
    ctx.say(ctx.t("task.not_found"))
    return None


@registry.command("nhiemvu", "tasks")
async def tasks_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", page=0)


@registry.action("nv", roles=STAFF)
async def task_button(ctx: Ctx) -> None:
    """Reminder and digest buttons: the list, or one task."""
    ctx.conversation = None
    ctx.dirty = True
    if not ctx.args:
        await ctx.goto(FLOW, "list", page=0)
        return
    task = await _visible(ctx, ctx.args[0]) if len(ctx.args) == 1 else None
    if task is not None:
        await ctx.goto(FLOW, "task", task_id=task.id, page=0)
    elif len(ctx.args) != 1:
        ctx.say(ctx.t(ctx.stale_key))


# ---- the list -----------------------------------------------------------------------------------------


async def _list_prompt(ctx: Ctx) -> None:
    tz = ctx.settings.tz
    key = _key("list")
    if ctx.user.role == "admin":
        progress = await ctx.store.tasks.progress()
        entries = [(task, ctx.t("task.line_admin", title=cut(task.title, 40), deadline=day(task.deadline, tz)[:5],
                                done=progress.get(task.id, (0, 0))[0], total=progress.get(task.id, (0, 0))[1]))
                   for task in await ctx.store.tasks.all()]
    else:
        entries = []
        for task, report in await ctx.store.tasks.of_cadre(ctx.user.id):
            mark = "✅" if report else ("🔴" if parse(task.deadline) < ctx.now else "⏳")
            entries.append((task, ctx.t("task.line", mark=mark, title=cut(task.title, 40),
                                        deadline=day(task.deadline, tz)[:5])))
    pages = pages_of(len(entries), PAGE_SIZE)
    page = min(max(int(ctx.data.get("page", 0) or 0), 0), pages - 1)
    rows = [(Option(label, cb(key, "o", task.id)),) for task, label in entries[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]]
    rows += page_row(ctx, key, page, pages, "p")
    if ctx.user.role == "admin":
        rows.append((Option(ctx.t("task.create"), cb(key, "new")),))
    title = "task.title_admin" if ctx.user.role == "admin" else "task.title_cadre"
    ctx.say(ctx.t(title, count=len(entries)) + ("" if entries else "\n" + ctx.t("task.none"))
            + page_note(ctx, page, pages), rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("p",))


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if len(args) == 2 and args[0] == "o":
        task = await _visible(ctx, args[1])
        if task is not None:
            await ctx.goto(FLOW, "task", task_id=task.id)
    elif args == ("new",) and allowed(ctx.user, ADMIN):
        await ctx.goto(FLOW, "title", places=[])
    else:
        await ctx.wrong()


# ---- one task -----------------------------------------------------------------------------------------


async def _task_prompt(ctx: Ctx) -> None:
    task = await _visible(ctx, ctx.data.get("task_id"))
    if task is None:
        return
    tz = ctx.settings.tz
    targets = [await locality_name(ctx, i) for i in await ctx.store.tasks.localities(task.id)]
    text = [ctx.t("task.detail", title=task.title, deadline=day(task.deadline, tz),
                  late=ctx.t("task.late") if parse(task.deadline) < ctx.now else "",
                  description=task.description or ctx.t("common.none"),
                  places=join(", ", targets) or ctx.t("common.none"))]
    key = _key("task")
    rows: list[tuple[Option, ...]] = []
    if ctx.user.role == "admin":
        text.append(await _progress(ctx, task))
        reports = await ctx.store.tasks.reports(task.id)
        for user_id, report in sorted(reports.items()):
            if report.sha256:
                cadre = await ctx.store.users.get(user_id)
                rows.append((Option(ctx.t("task.see_file", unit=cut(_who(cadre), 40)), cb(key, "f", user_id)),))
    else:
        report = (await ctx.store.tasks.reports(task.id)).get(ctx.user.id)
        if report:
            text.append(ctx.t("task.my_report", at=when(report.done_at, tz), note=report.note,
                              file=ctx.t("task.with_file") if report.sha256 else ""))
        rows.append((Option(ctx.t("task.update_report" if report else "task.report"), cb(key, "done")),))
    rows.append((Option(ctx.t("task.back"), cb(key, "back")),))
    ctx.say(Safe("\n\n".join(text)), rows)


def _who(user: User | None) -> str:
    if user is None:
        return "?"
    return user.unit_name or user.display_name or str(user.id)


async def _progress(ctx: Ctx, task: Task) -> str:
    """Completion by locality: for each locality of the assigned cadres' scopes, who reported."""
    places = await Places.load(ctx.store)
    reports = await ctx.store.tasks.reports(task.id)
    by_place: dict[int, list[int]] = defaultdict(list)
    for a in await ctx.store.tasks.assignments(task.id):
        by_place[a.locality_id].append(a.user_id)
    if not by_place:
        return ctx.t("task.progress_none")
    lines = [ctx.t("task.progress", done=len({u for users in by_place.values() for u in users if u in reports}),
                   total=len({u for users in by_place.values() for u in users}))]
    entries = sorted(by_place.items(), key=lambda item: places.full_name(ctx.t, item[0]))
    for locality_id, users in entries[:40]:
        done = sum(u in reports for u in users)
        lines.append(ctx.t("task.progress_line", mark="✅" if done == len(users) else ("🟡" if done else "⏳"),
                           place=places.full_name(ctx.t, locality_id), done=done, total=len(users)))
    if len(entries) > 40:
        lines.append(ctx.t("task.and_more", count=len(entries) - 40))
    for user_id, report in sorted(reports.items(), key=lambda item: item[1].done_at)[-10:]:
        lines.append(ctx.t("task.report_line", unit=_who(await ctx.store.users.get(user_id)),
                           at=when(report.done_at, ctx.settings.tz), note=cut(report.note, 120)))
    return Safe("\n".join(lines))


@registry.step(FLOW, "task", _task_prompt)
async def _task_handle(ctx: Ctx) -> None:
    task = await _visible(ctx, ctx.data.get("task_id"))
    if task is None:
        return
    args = ctx.choice
    if args == ("back",):
        await ctx.goto(FLOW, "list")
    elif args == ("done",) and ctx.user.role == "cadre":
        await ctx.goto(FLOW, "note")
    elif len(args) == 2 and args[0] == "f" and args[1].isdigit() and ctx.user.role == "admin":
        report = (await ctx.store.tasks.reports(task.id)).get(int(args[1]))
        content = await ctx.store.files.get(report.sha256) if report and report.sha256 else None
        if content is None:
            await ctx.reask(ctx.stale_key)
            return
        document = Document(report.filename or f"nhiem-vu-{task.id}-{args[1]}", content,
                            report.mime or "application/octet-stream")
        caption = ctx.t("task.file_caption", title=cut(task.title, 100))
        back = ((Option(ctx.t("task.back"), cb(_key("task"), "back")),),)
        if (report.mime or "").startswith("image/"):
            ctx.replies.append(Reply(caption, back, photo=document))
        else:
            ctx.say(caption, back, document=document)
    else:
        await ctx.wrong()


# ---- a cadre reports a task done ----------------------------------------------------------------------


async def _note_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("task.ask_note", low=NOTE[0], high=NOTE[1]),
            [(Option(ctx.t("common.back"), cb(_key("note"), "back")),)])


@registry.step(FLOW, "note", _note_prompt)
async def _note_handle(ctx: Ctx) -> None:
    task = await _visible(ctx, ctx.data.get("task_id"))
    if task is None:
        return
    if ctx.inbound.kind == "choice" and ctx.args == ("back",):
        await ctx.goto(FLOW, "task")
        return
    if ctx.inbound.kind == "media" and ctx.inbound.media is not None:
        note = " ".join(ctx.inbound.text.split())
        if not NOTE[0] <= len(note) <= NOTE[1]:
            await ctx.reask("task.note_with_file")
            return
        ctx.data["note"] = note
        await _attach(ctx, task)
        return
    note = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not NOTE[0] <= len(note) <= NOTE[1]:
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "task.note_length",
                        low=NOTE[0], high=NOTE[1])
        return
    await ctx.goto(FLOW, "attach", note=note)


async def _attach_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("task.ask_file"), [(Option(ctx.t("task.no_file"), cb(_key("attach"), "skip")),)])


@registry.step(FLOW, "attach", _attach_prompt)
async def _attach_handle(ctx: Ctx) -> None:
    task = await _visible(ctx, ctx.data.get("task_id"))
    if task is None:
        return
    if not ctx.data.get("note"):
        await ctx.goto(FLOW, "note")
    elif ctx.inbound.kind == "choice" and ctx.args == ("skip",):
        await _save_report(ctx, task, None)
    elif ctx.inbound.kind == "media" and ctx.inbound.media is not None:
        await _attach(ctx, task)
    else:
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "task.file_expected")


async def _attach(ctx: Ctx, task: Task) -> None:
    media = ctx.inbound.media
    if media.kind not in ("photo", "document") or ctx.fetch is None:
        await ctx.reask("task.file_expected")
        return
    kept = await ctx.keep(media, MAX_FILE, "task.file_too_large", mb=MAX_FILE // (1024 * 1024))
    if kept is None:
        return
    digest, _size = kept
    if media.kind == "photo":  # kept as a JPEG of our making (handlers/images.py)
        await _save_report(ctx, task, (digest, images.MIME, None))
    else:
        await _save_report(ctx, task, (digest, media.mime or "application/octet-stream",
                                       (media.filename or "")[:120] or None))


async def _save_report(ctx: Ctx, task: Task, file: tuple[str, str, str | None] | None) -> None:
    if not await ctx.store.tasks.is_assigned(task.id, ctx.user.id):  # re-checked where the report is written
        ctx.finish()
        ctx.say(ctx.t("task.not_found"))
        return
    sha256, mime, filename = file or (None, None, None)
    await ctx.store.tasks.report(task.id, ctx.user.id, ctx.data["note"], ctx.now, sha256, mime, filename)
    await ctx.audit("task.done", f"task:{task.id}", file=bool(file))
    ctx.say(ctx.t("task.reported", title=task.title))
    ctx.data.pop("note", None)
    await ctx.goto(FLOW, "task")


# ---- an admin creates a task --------------------------------------------------------------------------


async def _admin_only(ctx: Ctx) -> bool:
    if allowed(ctx.user, ADMIN):
        return True
    await ctx.audit("denied", "task.create")
    ctx.finish()
    ctx.say(ctx.t("common.not_allowed"))
    return False


async def _title_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("task.ask_title", low=TITLE[0], high=TITLE[1]),
            [(Option(ctx.t("common.back"), cb(_key("title"), "back")),)])


@registry.step(FLOW, "title", _title_prompt)
async def _title_handle(ctx: Ctx) -> None:
    if not await _admin_only(ctx):
        return
    if ctx.inbound.kind == "choice" and ctx.args == ("back",):
        await ctx.goto(FLOW, "list", page=0)
        return
    title = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not TITLE[0] <= len(title) <= TITLE[1]:
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "task.title_length",
                        low=TITLE[0], high=TITLE[1])
        return
    await ctx.goto(FLOW, "desc", title=title)


async def _desc_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("task.ask_description", high=DESCRIPTION),
            [(Option(ctx.t("task.no_description"), cb(_key("desc"), "skip")),)])


@registry.step(FLOW, "desc", _desc_prompt)
async def _desc_handle(ctx: Ctx) -> None:
    if not await _admin_only(ctx):
        return
    if ctx.inbound.kind == "choice" and ctx.args == ("skip",):
        await ctx.goto(FLOW, "deadline", description="")
        return
    text = ctx.inbound.text.strip() if ctx.inbound.kind == "text" else ""
    if not 1 <= ctx.length(text) <= DESCRIPTION:
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "task.description_length",
                        high=DESCRIPTION)
        return
    await ctx.goto(FLOW, "deadline", description=text)


def parse_day(text: str, today: date) -> date | None:
    """"30/11/2026", "30/11/26", "30-11" (this year) → a date; None if it is none."""
    match = _DATE.match(text)
    if match is None:
        return None
    day_, month = int(match.group(1)), int(match.group(2))
    year = int(match.group(3)) if match.group(3) else today.year
    year += 2000 if year < 100 else 0
    try:
        return date(year, month, day_)
    except ValueError:
        return None


async def _deadline_prompt(ctx: Ctx) -> None:
    example = (ctx.now.astimezone(ctx.settings.tz) + timedelta(days=14)).strftime("%d/%m/%Y")
    ctx.say(ctx.t("task.ask_deadline", example=example))


@registry.step(FLOW, "deadline", _deadline_prompt)
async def _deadline_handle(ctx: Ctx) -> None:
    if not await _admin_only(ctx):
        return
    today = ctx.now.astimezone(ctx.settings.tz).date()
    chosen = parse_day(ctx.inbound.text, today) if ctx.inbound.kind == "text" and len(ctx.inbound.text) < 30 else None
    if chosen is None:
        await ctx.reask("task.deadline_invalid")
        return
    if chosen < today or chosen > today + timedelta(days=3 * 366):
        await ctx.reask("task.deadline_range", today=today.strftime("%d/%m/%Y"))
        return
    await ctx.goto(FLOW, "targets", deadline=chosen.isoformat(), places=ctx.data.get("places", []))


async def _targets_prompt(ctx: Ctx) -> None:
    key = _key("targets")
    chosen = [await locality_name(ctx, i) for i in ctx.data.get("places", [])]
    rows = [(Option(ctx.t("task.add_place"), cb(key, "add")), Option(ctx.t("task.whole_province"), cb(key, "all")))]
    if chosen:
        rows.append((Option(ctx.t("task.next"), cb(key, "next")),))
    ctx.say(ctx.t("task.ask_places", places=join("\n", (Safe(f"• {p}") for p in chosen)) or ctx.t("common.none")),
            rows)


@registry.step(FLOW, "targets", _targets_prompt)
async def _targets_handle(ctx: Ctx) -> None:
    if not await _admin_only(ctx):
        return
    args = ctx.choice
    if args == ("add",):
        await ctx.goto(FLOW, "commune", page=0)
    elif args == ("all",):
        province = (await ctx.store.localities.children(None))[0]
        await ctx.goto(FLOW, "review", places=[province.id])
    elif args == ("next",) and ctx.data.get("places"):
        await ctx.goto(FLOW, "review")
    else:
        await ctx.wrong()


async def _place_added(ctx: Ctx, loc: Locality | None) -> None:
    places = [p for p in ctx.data.get("places", []) if p != loc.id]
    await ctx.goto(FLOW, "targets", places=[*places, loc.id])


locality_steps(FLOW, on_commune=_place_added, then=_place_added)


def _draft_ok(data: dict) -> bool:
    return (isinstance(data.get("title"), str) and isinstance(data.get("deadline"), str)
            and isinstance(data.get("places"), list) and bool(data["places"]))


async def _review_prompt(ctx: Ctx) -> None:
    if not _draft_ok(ctx.data):
        await ctx.goto(FLOW, "title", places=[])
        return
    places = [await locality_name(ctx, i) for i in ctx.data["places"]]
    ctx.say(ctx.t("task.review", title=ctx.data["title"],
                  description=ctx.data.get("description") or ctx.t("common.none"),
                  deadline=date.fromisoformat(ctx.data["deadline"]).strftime("%d/%m/%Y"),
                  places=join(", ", places)),
            [(Option(ctx.t("task.confirm"), cb(_key("review"), "ok")),
              Option(ctx.t("task.discard"), cb(_key("review"), "drop")))])


@registry.step(FLOW, "review", _review_prompt)
async def _review_handle(ctx: Ctx) -> None:
    if not await _admin_only(ctx):
        return
    args = ctx.choice
    if args == ("drop",):
        ctx.finish()
        ctx.say(ctx.t("task.discarded"))
    elif args == ("ok",) and _draft_ok(ctx.data):
        places = {loc.id for loc in [await ctx.store.localities.get(int(i)) for i in ctx.data["places"]
                                     if str(i).isdigit()] if loc}
        if not places:
            await ctx.goto(FLOW, "targets", places=[])
            return
        deadline = end_of_day(date.fromisoformat(ctx.data["deadline"]), ctx.settings.tz)
        task = await ctx.store.tasks.create(ctx.data["title"], ctx.data.get("description", ""), deadline, places,
                                            ctx.user.id, ctx.now)
        await ctx.audit("task.created", f"task:{task.id}", localities=sorted(places))
        ctx.wake("task_reminders")  # the cadres are told now, not at the next look (in office hours)
        assigned = await ctx.store.tasks.assignees(task.id)
        ctx.finish()
        ctx.say(ctx.t("task.created", title=task.title, cadres=number(len(assigned), ctx.t.language)),
                [(Option(ctx.t("task.open"), cb("nv", task.id)),)])
    else:
        await ctx.wrong()


async def export(ctx: Ctx) -> dict | None:
    """A cadre's reports on their tasks."""
    if ctx.user.role == "citizen":
        return None
    tasks = {t.id: t.title for t in await ctx.store.tasks.all()}
    return {"task_reports": [
        {"task": tasks.get(r.task_id), "done_at": r.done_at, "note": r.note, "file": r.filename or r.sha256}
        for r in (await ctx.store.tasks.reports_of(ctx.user.id)).values()]}


FEATURE = Feature("tasks", commands=(Command("nhiemvu", STAFF, menu="menu.nhiemvu", place=100),),
                  export=export, exported=("task_reports",), digest=digest_section,
                  unexported={"tasks": "the work plan an admin wrote is the unit's, not a person's"},
                  kept={"task_reports": "a cadre's report is the unit's work record",
                        "tasks": "the work plan is the unit's; the anonymous row names nobody"})
