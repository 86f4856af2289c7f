"""The demo's "Dân vận khéo" round (messages/demo_dvk.toml, clearly marked samples): nominations at every stage —
waiting, more information asked, verified, declined, recognised at commune and province level with votes; the vote
open around today. Idempotent: the round is found by its name, the models by theirs."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from storage import Store
from storage.dvk import OPEN, STATUSES, NewModel, repo

STEPS = {"verified": OPEN, "recognised": ("verified",), "declined": OPEN, "info_requested": OPEN}


@cache
def content() -> dict:
    return tomllib.loads(resources.files("messages").joinpath("demo_dvk.toml").read_text(encoding="utf-8"))


async def seed_demo_dvk(store: Store, now: datetime) -> None:
    dvk, data = repo(store), content()
    today = now.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    name = data["round"]["name"].format(year=today.year)
    current = next((r for r in await dvk.rounds() if r.name == name), None)
    if current is None:
        vote = (today - timedelta(days=5), today + timedelta(days=20))
        current = await dvk.add_round(name, today.year, date(today.year, 1, 1), date(today.year, 12, 31),
                                      data["round"]["criteria"], vote, None, now)
    cadre = await store.users.find("web", "demo-cadre")
    admin = await store.users.find("web", "demo-admin")
    known = {m.name for m in (await dvk.listing(None, STATUSES, limit=1000))[0]}
    for days, item in enumerate(data["models"], start=1):
        if item["name"] in known:
            continue
        person = await store.users.find("web", item["person"])
        place = await store.localities.by_code(item["locality"])
        at = now - timedelta(days=3 * days)
        model = await dvk.create(NewModel(person.id, False, item["name"], item["author"], place.id, item["field"],
                                          item["deeds"], item["results"] or None), current.id, at)
        status = model.status
        for step, kind in enumerate(item["then"], start=1):
            actor = admin if kind == "recognised" else cadre
            changes = {"level": item["level"], "recognised_at": at} if kind == "recognised" else {}
            await dvk.record(model.id, actor.id if actor else None, kind, at + timedelta(hours=step),
                             body=item.get("request") or item.get("reason"), expect=STEPS[kind], status=kind, **changes)
            status = kind
        for voter_id in item.get("votes", []) if status == "recognised" else []:
            await dvk.vote(model.id, (await store.users.find("web", voter_id)).id, now)
