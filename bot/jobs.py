"""The cadre schedule's tick jobs: digests, case deadline reminders and escalation, task announcements and
reminders (DESIGN.md §5).

Each tick asks the database what is due. Every send has an idempotency key in `scheduled_runs`, claimed
before the work and completed after it, so a restart neither repeats nor skips it:

    digest:<user>:<local date>           a daily digest       digest:<user>:<ISO year>-W<week>   a weekly one
    remind:<case>:soon:<deadline>        remind:<case>:overdue:<deadline>      escalate:<case>:<deadline>
    task:<task>:<user>:new|d3|d1|overdue

After downtime, a digest goes out once for the most recent slot only, covering everything since the last
one (each cadre's `last_end`); a reminder goes out once if it still makes sense (a missed "soon" of a case
now overdue is not sent: the overdue one is). Messages to one person in one tick are grouped: one message
per kind. They leave through Router.deliver_to at Priority.SCHEDULED, after replies and before broadcasts.
A crash between sending and completing a key can repeat that one send once, after the claim goes stale
(storage.schedule, 10 minutes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

from bot.outbound import Priority
from bot.router import Router
from handlers import reminders
from handlers.base import Reply, Settings
from handlers.digest import Shared, compose, latest_slot
from handlers.reports import Places
from handlers.tasks import reminder, reminder_kind
from handlers.workdays import add_working_days, is_working_day
from messages import Texts
from storage import Store
from storage.clock import parse
from storage.tasks import Task

log = logging.getLogger(__name__)
OFFICE = (time(8, 0), time(20, 0))  # reminders and announcements are sent in these local hours only
EVERY = timedelta(minutes=5)  # reminder jobs look at the database at most this often


class CadreSchedule:
    def __init__(self, store: Store, router: Router, settings: Settings, escalate_after: int = 3) -> None:
        self.store = store
        self.router = router
        self.settings = settings
        self.escalate_after = escalate_after
        self._last_run: dict[str, datetime] = {}
        self._tasks_seen: str | None = None  # the newest task's creation when the task job last ran

    def register(self, scheduler) -> None:
        scheduler.every_tick("digests", self.digests)
        scheduler.every_tick("case_reminders", self.case_reminders)
        scheduler.every_tick("task_reminders", self.task_reminders)

    def _office(self, now: datetime, name: str, *, working_day: bool, fresh: bool = False) -> bool:
        """Within office hours (on a working day, if asked), and not looked at in the last few minutes unless
        there is something `fresh`."""
        local = now.astimezone(self.settings.tz)
        if not OFFICE[0] <= local.time() < OFFICE[1] or (working_day and not is_working_day(local.date())):
            return False
        last = self._last_run.get(name)
        if last is not None and now - last < EVERY and now >= last and not fresh:
            return False
        self._last_run[name] = now
        return True

    async def _deliver(self, user_id: int, replies: list[Reply]) -> bool:
        user = await self.store.users.get(user_id)
        return user is not None and await self.router.deliver_to(user, replies, Priority.SCHEDULED)

    # ---- digests ------------------------------------------------------------------------------------

    async def digests(self, now: datetime) -> None:
        tz = self.settings.tz
        staff = [u for u in await self.store.users.staff() if u.reachable and u.chat_id]
        settings = await self.store.digests.settings([u.id for u in staff], now)
        shared = None
        for user in staff:
            s = settings[user.id]
            slot = latest_slot(s, now, tz)
            if slot is None or slot[0] <= parse(s.last_end):
                continue
            end, name = slot
            key = f"digest:{user.id}:{name}"
            if not await self.store.schedule.claim(key, now):
                continue
            try:
                shared = shared or await Shared.load(self.store, now, tz)
                digest = await compose(self.store, self.settings, user, parse(s.last_end), end, now,
                                       weekly=s.mode == "weekly", shared=shared)
            except Exception:  # nothing was sent: the next tick tries again
                await self.store.schedule.release(key)
                log.exception("digest %s could not be made", key)
                continue
            if digest.empty and s.skip_empty:
                log.debug("digest %s skipped: nothing new", key)
            else:
                try:
                    if not await self.router.deliver_to(user, digest.replies, Priority.SCHEDULED):
                        log.warning("digest %s could not be delivered", key)
                except Exception:  # as a crash while sending: retried once the claim is stale
                    log.exception("digest %s failed while sending", key)
                    continue
            await self.store.digests.covered(user.id, end, now)
            await self.store.schedule.complete(key, now)

    # ---- cases --------------------------------------------------------------------------------------

    async def case_reminders(self, now: datetime) -> None:
        if not self._office(now, "cases", working_day=True):
            return
        tz, after = self.settings.tz, self.escalate_after
        soon_end = add_working_days(now, 1, tz) + timedelta(seconds=1)
        lookback = now - timedelta(days=2 * after + 21)  # enough calendar days for `after` working days and Tết
        candidates = {c.id: c for c in await self.store.digests.open_due_between(now, soon_end)}
        candidates.update({c.id: c for c in await self.store.digests.open_due_between(lookback, now)})
        candidates.update({c.id: c for c in await self.store.digests.overdue_not_escalated(now)})
        due = []
        for case in candidates.values():
            kind = reminders.case_reminder_kind(case, now, tz, after)
            if kind is not None:
                due.append((reminders.reminder_key(kind, case), kind, case))
        done = await self.store.digests.done_keys([key for key, _, _ in due])
        claimed = [(key, kind, case) for key, kind, case in due
                   if key not in done and await self.store.schedule.claim(key, now)]
        if not claimed:
            return
        try:
            outbox: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
            for _, kind, case in claimed:
                people = await reminders.recipients(self.store, case)
                if kind == "escalate":
                    for user_id in people.above:
                        outbox[user_id]["escalated"].append(case)
                    for user_id in people.responsible:
                        outbox[user_id]["escalated_mine"].append(case)
                    await self.store.audit.record(None, "case.escalated", f"case:{case.code}", now,
                                                  to=people.above, after_days=after)
                else:
                    for user_id in people.responsible:
                        outbox[user_id][kind].append(case)
            places = await Places.load(self.store)
            topics = {tp.id: tp for tp in await self.store.topics.all()}
            messages = []
            for user_id, kinds in outbox.items():
                user = await self.store.users.get(user_id)
                if user is None:
                    continue
                t = Texts(user.language, staff=True)  # reminders go to cadres
                messages.append((user_id, [reminders.render(t, kind, cases, places, topics, now, tz, after)
                                           for kind, cases in kinds.items()]))
        except Exception:
            for key, _, _ in claimed:
                await self.store.schedule.release(key)
            raise
        for user_id, replies in messages:
            await self._deliver(user_id, replies)
        for key, _, _ in claimed:
            await self.store.schedule.complete(key, now)

    # ---- tasks --------------------------------------------------------------------------------------

    async def task_reminders(self, now: datetime) -> None:
        """New tasks are announced any day, reminders only on working days; both in office hours. A handler
        that created a task wakes this job (`ctx.wake("task_reminders")`): it is announced at once."""
        latest = await self.store.tasks.latest_created()
        fresh = latest is not None and latest != self._tasks_seen
        if not self._office(now, "tasks", working_day=False, fresh=fresh):
            return
        self._tasks_seen = latest
        tz = self.settings.tz
        working = is_working_day(now.astimezone(tz).date())
        due: list[tuple[str, str, Task, int, list[str]]] = []  # key, kind, task, cadre, keys it makes moot
        for task, user_id in await self.store.tasks.pending(now - timedelta(days=21), now + timedelta(days=3660)):
            deadline = parse(task.deadline)
            kind = reminder_kind(deadline, now, tz) if working else None
            prefix = f"task:{task.id}:{user_id}:"
            if deadline > now:
                due.append((prefix + "new", "new", task, user_id, [prefix + kind] if kind else []))
            if kind is not None:
                due.append((prefix + kind, kind, task, user_id, []))
        done = await self.store.digests.done_keys([key for key, *_ in due])
        outbox: dict[int, dict[str, list[Task]]] = defaultdict(lambda: defaultdict(list))
        claimed: list[str] = []
        covered: set[str] = set()
        for key, kind, task, user_id, moot in due:
            if key in done or key in covered or not await self.store.schedule.claim(key, now):
                continue
            claimed.append(key)
            outbox[user_id][kind].append(task)
            for other in moot:  # a task announced today needs no "3 days left" the same day
                if other not in done and await self.store.schedule.claim(other, now):
                    claimed.append(other)
                    covered.add(other)
        for user_id, kinds in outbox.items():
            user = await self.store.users.get(user_id)
            if user is None:
                continue
            t = Texts(user.language, staff=True)  # task reminders go to cadres
            await self._deliver(user_id, [reminder(t, kind, tasks, now, tz) for kind, tasks in kinds.items()])
        for key in claimed:
            await self.store.schedule.complete(key, now)
