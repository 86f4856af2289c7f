"""What the schedule tests share: a channel that notes when each message went out, staff and cases made
directly in the database, and a scheduler with the cadre jobs on an injected clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.jobs import CadreSchedule
from bot.scheduler import Scheduler
from handlers.base import Capabilities, Reply
from storage import Store
from storage.cases import Case, NewCase
from tests.dialog import BUTTONS, Clock, Harness, RecordingChannel

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class TimedChannel(RecordingChannel):
    clock: Clock | None = None
    timed: list[tuple[datetime, str, Reply]] = field(default_factory=list)

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str:
        self.timed.append((self.clock(), chat_id, reply))
        return await super().send(chat_id, reply, edit_ref)

    def to(self, chat_id: str, contains: str = "") -> list[tuple[datetime, Reply]]:
        return [(at, r) for at, chat, r in self.timed if chat == chat_id and contains in r.text]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def schedule(harness: Harness, escalate_after: int = 3) -> Scheduler:
    scheduler = Scheduler(harness.clock)
    CadreSchedule(harness.store, harness.router, harness.router.settings, escalate_after).register(scheduler)
    return scheduler


def timed_harness(store: Store, clock: Clock, capabilities: Capabilities = BUTTONS) -> tuple[Harness, TimedChannel]:
    channel = TimedChannel(clock=clock, capabilities=capabilities)
    return Harness(store, clock, channel), channel


async def staff(store: Store, now: datetime, external_id: str, role: str = "cadre", unit: str | None = None,
                communes: tuple[str, ...] = (), topics: tuple[str, ...] = (), province: bool = False) -> int:
    user = await store.users.ensure("test", external_id, external_id, f"Cán bộ {external_id}", "vi", now)
    await store.users.update(user.id, now, role=role, unit_name=unit, onboarded=1)
    places = {(await store.localities.search(name, level=1))[0].id for name in communes}
    if province:
        places.add((await store.localities.children(None))[0].id)
    topic_ids = {(await store.topics.by_code(code)).id for code in topics}
    if role == "cadre":
        await store.roles.set_scope(user.id, places, topic_ids)
    return user.id


async def citizen(store: Store, now: datetime, external_id: str = "1001", name: str = "Nguyễn Thị Lan") -> int:
    user = await store.users.ensure("test", external_id, external_id, name, "vi", now)
    await store.users.update(user.id, now, onboarded=1)
    return user.id


async def add_case(store: Store, at: datetime, user_id: int, locality_id: int, *, due: datetime | None = None,
                   topic: str = "nong-thon-moi", kind: str = "phananh", urgent: bool = False, anonymous: bool = False,
                   content: str = "Đường liên thôn bị sạt lở sau mưa lũ") -> Case:
    topic_id = (await store.topics.by_code(topic)).id
    return await store.cases.create(NewCase(kind, user_id, anonymous, topic_id, locality_id, content, urgent, None,
                                            at + timedelta(days=1), due or at + timedelta(days=14)), at)


async def run(scheduler: Scheduler, clock: Clock, until: datetime, step: timedelta = timedelta(minutes=10)) -> None:
    while clock() < until:
        clock.now = min(clock() + step, until)
        await scheduler.tick()
