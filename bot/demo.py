"""The demo: people and campaigns seeded into the demo database (never the production one), so the
whole bot can be tried on one machine. The content is in messages/demo.toml."""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from bot import consultation_file
from bot.dvk_demo import seed_demo_dvk
from handlers.consent import consent_version
from handlers.tasks import end_of_day
from handlers.workdays import add_working_days
from messages import Texts
from storage import Store
from storage.broadcasts import Audience, NewBroadcast, Outcome
from storage.cases import NewCase

SAMPLES = resources.files("messages") / "samples"  # package data: a wheel or the image has no docs/


@dataclass(frozen=True)
class Persona:
    key: str  # lan, hung, cadre, admin; the label is demo.persona_<key>
    external_id: str  # the account id (and chat id) on channel "web"


@cache
def content() -> dict:
    return tomllib.loads(resources.files("messages").joinpath("demo.toml").read_text(encoding="utf-8"))


def personas() -> list[Persona]:
    return [Persona(p["persona"], p["id"]) for p in content()["people"] if "persona" in p]


async def seed_demo(store: Store, now: datetime) -> None:
    """Idempotent: campaigns are brought up to date; people are set up once (what they change in the
    demo stays until `danvan demo reset`), except that staff keep their role and scope."""
    topics = {t.code: t.id for t in await store.topics.all()}
    for c in content()["campaigns"]:
        await store.campaigns.upsert(c["code"], c["title_vi"], c["description_vi"], topics.get(c["topic"]),
                                     c["title_en"], c["description_en"], starts_on=c.get("starts_on"),
                                     ends_on=c.get("ends_on"))
    for person in content()["people"]:
        await _person(store, person, topics, now)
    await seed_demo_cases(store, now)
    await seed_demo_schedule(store, now)
    await seed_demo_broadcasts(store, now)
    await seed_demo_dvk(store, now)
    await seed_demo_consultation(store, now)
    await seed_demo_survey(store, now)


async def _person(store: Store, person: dict, topics: dict[str, int], now: datetime) -> None:
    user = await store.users.ensure("web", person["id"], person["id"], person["name"], "vi", now)
    if not user.onboarded:
        locality = await store.localities.by_code(person["locality"]) if "locality" in person else None
        t = Texts("vi")
        for purpose in person["consents"]:
            await store.users.record_consent(user.id, purpose, True,
                                             consent_version(t(f"consent.{purpose}"), "vi"), now)
        await store.users.set_topics(user.id, {topics[code] for code in person["topics"]})
        user = await store.users.update(user.id, now, onboarded=1, locality_id=locality.id if locality else None,
                                        news_enabled=int("news" in person["consents"]))
    if person["role"] != "citizen":
        await store.users.update(user.id, now, role=person["role"], unit_name=person.get("unit"))
        places = [await store.localities.by_code(code) for code in person.get("scope_localities", [])]
        await store.roles.set_scope(user.id, {p.id for p in places if p},
                                    {topics[code] for code in person.get("scope_topics", [])})


async def seed_demo_cases(store: Store, now: datetime) -> None:
    """The demo's cases, each with the history cadres gave it; seeded once per person and text."""
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    topics = {t.code: t for t in await store.topics.all()}
    cadre = await store.users.find("web", "demo-cadre")
    for item in content().get("cases", []):
        person = await store.users.find("web", item["person"])
        mine, _ = await store.cases.of_user(person.id, limit=1000)
        if any(c.content == item["content"] for c in mine):
            continue
        sent = now - timedelta(days=item["days_ago"])
        topic = topics[item["topic"]]
        place = await store.localities.by_code(item["locality"])
        case = await store.cases.create(NewCase(
            kind=item["kind"], user_id=person.id, anonymous=item["anonymous"], topic_id=topic.id,
            locality_id=place.id, content=item["content"], urgent=item["urgent"], campaign_id=None,
            ack_due=add_working_days(sent, 1, tz), answer_due=add_working_days(sent, topic.answer_days, tz)), sent)
        status = case.status
        for step, kind in enumerate(item["then"], start=1):
            at = sent + timedelta(hours=6 * step)
            answer = item.get("answer") if kind == "answered" else None
            changes = {"acknowledged": {"acknowledged_at": at}, "answered": {"answered_at": at}}.get(kind, {})
            await store.cases.record(case.id, cadre.id, kind, at, body=answer, unit=cadre.unit_name, expect=status,
                                     status=kind, **changes)
            status = kind
        if item.get("rating"):
            await store.cases.record(case.id, person.id, "rated", sent + timedelta(days=1), rating=item["rating"],
                                     rated_at=sent + timedelta(days=1))


async def seed_demo_schedule(store: Store, now: datetime) -> None:
    """The demo's work-plan tasks, due a few days from now (brought up to date at each start), and the
    reports the demo cadre has already made; idempotent."""
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    today = now.astimezone(tz).date()
    for item in content().get("tasks", []):
        places = [await store.localities.by_code(code) for code in item["localities"]]
        task = await store.tasks.create(item["title"], item["description"],
                                        end_of_day(today + timedelta(days=item["days"]), tz),
                                        {p.id for p in places if p}, None, now, code=item["code"])
        cadre = await store.users.find("web", item["done_by"]) if "done_by" in item else None
        if cadre is not None and cadre.id not in await store.tasks.reports(task.id):
            await store.tasks.report(task.id, cadre.id, item["note"], now)


async def seed_demo_broadcasts(store: Store, now: datetime) -> None:
    """The demo's announcements, found again by their text: those of the past delivered to the demo
    people (so campaign results show numbers), one scheduled for tomorrow morning; idempotent."""
    admin = await store.users.find("web", "demo-admin")
    done = {b.text_vi for b in await store.broadcasts.recent(100)}
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    for item in content().get("broadcasts", []):
        if item["text_vi"] in done:
            continue
        campaign = await store.campaigns.by_code(item["campaign"]) if "campaign" in item else None
        topics = [await store.topics.by_code(code) for code in item.get("topics", [])]
        places = [await store.localities.by_code(code) for code in item.get("localities", [])]
        audience = Audience(tuple(t.id for t in topics if t), tuple(p.id for p in places if p),
                            tuple(item.get("roles", [])))
        if "days_ago" in item:
            at = now - timedelta(days=item["days_ago"])
        else:
            tomorrow = now.astimezone(tz).date() + timedelta(days=1)
            at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 7, 30, tzinfo=tz)
        broadcast = await store.broadcasts.create(NewBroadcast(
            text_vi=item["text_vi"], text_en=item.get("text_en"), scheduled_at=at, audience=audience,
            campaign_id=campaign.id if campaign else None, created_by=admin.id if admin else None,
            feedback=item.get("feedback", False)), min(now, at))
        if "days_ago" in item and await store.broadcasts.start(broadcast.id, at):
            await store.broadcasts.resolve(broadcast.id)
            targets = await store.broadcasts.claim(broadcast.id, 1000, at)
            await store.broadcasts.settle(broadcast.id, [Outcome(t.user_id, "sent") for t in targets], at)
            await store.broadcasts.finish(broadcast.id, at + timedelta(minutes=1))


async def seed_demo_consultation(store: Store, now: datetime) -> None:
    """The sample draft (messages/samples/) open for comments, with the villagers' answers and comments; each
    commenter accepted the sensitive purpose first, as the chat asks. Once: what the demo adds to it stays."""
    item = content()["consultation"]
    if await store.consultations.by_code(item["code"]) is not None:
        return
    places = [await store.localities.by_code(code) for code in item["localities"]]
    opened = now - timedelta(days=item["opened_days_ago"])
    with resources.as_file(SAMPLES / item["file"]) as path:
        draft = consultation_file.read(path)
    saved = await store.consultations.save(item["code"], draft, opened,
                                           opened + timedelta(days=item["open_days"]),
                                           Audience(localities=tuple(p.id for p in places if p)), opened)
    await store.consultations.publish(saved.id, None, opened)
    sections = {s.position: s for s in await store.consultations.sections(saved.id)}
    for answer in item["answers"]:
        person = await store.users.find("web", answer["person"])
        for position in answer["agree"]:
            await store.consultations.answer(sections[position].id, person.id, "agree", opened)
    sensitive = consent_version(Texts("vi")("consent.sensitive"), "vi")
    for comment in item["comments"]:
        person = await store.users.find("web", comment["person"])
        consent = (await store.users.consents(person.id)).get("sensitive")
        if consent is None or not consent.granted:
            await store.users.record_consent(person.id, "sensitive", True, sensitive, opened)
        place = await store.localities.get(person.locality_id)
        commune = place.id if place.level == 1 else place.parent_id
        await store.consultations.add_comment(sections[comment["section"]].id, person.id, comment.get("paragraph"),
                                              comment["text"], comment["anonymous"], "web", commune, opened)


SURVEY = SAMPLES / "ra-soat-ho-tro.yaml"
RESIDENTS = (("19702-01", 12), ("19702-02", 10), ("19702", 6), ("19735", 3))  # where, how many: small ones too


async def seed_demo_survey(store: Store, now: datetime) -> None:
    """The hardship-support check (messages/samples/), open from three days ago for eleven more days (brought up to
    date at each start), half answered by residents of Hải Lăng seeded for it; answers once."""
    from bot.survey_cli import check_surveys

    [survey] = await check_surveys(store, SURVEY.read_text(encoding="utf-8"), ZoneInfo("Asia/Ho_Chi_Minh"))
    [survey_id] = await store.surveys.save_all(
        [replace(survey, opens_at=now - timedelta(days=3), closes_at=now + timedelta(days=11))], now)
    saved = await store.surveys.get(survey_id)
    if (await store.surveys.respondents(survey_id))[0]:
        return
    draw = random.Random(16)
    topic = await store.topics.by_code("an-sinh")
    number = 0
    for code, count in RESIDENTS:
        place = await store.localities.by_code(code)
        commune, village = (place.parent_id, place.id) if place.level == 2 else (place.id, None)
        for _ in range(count):
            number += 1
            # A resident of the demo's own making: no channel delivers to "demo", so nobody is sent anything.
            user = await store.users.ensure("demo", f"resident-{number}", None, f"Cư dân {number}", "vi", now)
            await store.users.update(user.id, now, onboarded=1, locality_id=place.id)
            await store.users.set_topics(user.id, {topic.id})
            if number % 2:
                continue  # half of them have not answered
            await store.surveys.start(survey_id, user.id, commune, village, saved.questions[0].key, now)
            response = await store.surveys.response(survey_id, user.id)
            for key, values in _demo_answers(draw).items():
                await store.surveys.answer(response.id, survey_id, key, values, (), None, now)


def _demo_answers(draw: random.Random) -> dict[str, tuple[str, ...]]:
    received = draw.choices(("yes", "not_yet", "not_eligible"), (6, 3, 1))[0]
    answers = {"received": (received,), "members": (str(draw.randint(2, 7)),)}
    if received == "yes":
        answers |= {"kinds": tuple(k for k in ("cash", "rice", "power", "loan") if draw.random() < 0.5) or ("cash",),
                    "on_time": (draw.choices(("yes", "no"), (3, 1))[0],),
                    "amount": (draw.choices(("right", "less", "unknown"), (6, 2, 1))[0],),
                    "satisfied": (str(draw.choices((2, 3, 4, 5), (1, 2, 4, 2))[0]),)}
    if received == "not_yet" or draw.random() < 0.2:
        answers["problem"] = (draw.choice(("Danh sách chưa cập nhật hộ mới khó khăn", "Chờ lâu, chưa thấy thông báo",
                                           "Nhận thiếu so với mức công bố")),)
    return answers
