"""Features are declared once (handlers/features.py): what each role is offered follows from what it may do, and
every table that names a person is in /dulieu and in /xoadulieu, or kept for a stated reason."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

import handlers
from handlers.base import Option, Settings, cb
from handlers.broadcast import render_broadcast
from handlers.digest import Period, Section, compose
from handlers.features import Buttons, Feature
from messages import LANGUAGES, catalog
from storage import erasure
from storage.broadcasts import NewBroadcast
from tests.dialog import ONBOARD, turns
from tests.schedule_kit import staff

ROLES = ("citizen", "cadre", "admin")
REFUSED = "chức năng này chỉ dành cho cán bộ"


async def person_of(harness, store, role: str):
    if role == "citizen":
        p = harness.person("1001")
        await turns(p, ONBOARD)
        return p
    await staff(store, harness.clock(), "7001", role, communes=("Hải Lăng",))
    return harness.person("7001")


def handler_groups() -> list[tuple[str, ...]]:
    """The registry's commands, a name with its aliases: the names that run one handler."""
    groups: dict[object, list[str]] = {}
    for name, guarded in handlers.registry.commands.items():
        groups.setdefault(guarded.handler, []).append(name)
    return [tuple(names) for names in groups.values()]


@pytest.mark.parametrize("role", ROLES)
async def test_help_and_menu_offer_exactly_what_the_role_check_lets_the_role_run(harness, store, role):
    p = await person_of(harness, store, role)
    await p.say("/huongdan")
    listed = set(re.findall(r"/(\w+)", p.text()))
    await p.say("/menu")
    offered = [o.data for r in p.last for row in r.options for o in row if o.data] if p.buttons else \
        [data for _, data in p.shown]
    buttons = {data.split(":")[2] for data in offered}
    may = set()
    for name in handlers.registry.commands:  # what the router's role check says, by trying every command
        if REFUSED not in " ".join(r.text for r in await p.say(f"/{name}")):
            may.add(name)
        await p.say("/huy")
    for names in handler_groups():
        if names == ("menu",):  # typing "menu" or "0" shows the menu itself, to everyone
            assert "menu" in may
            continue
        shown = [n for n in names if n in listed]
        assert len(shown) == (1 if set(names) <= may else 0) and (set(names) <= may or not set(names) & may), names
    assert buttons <= may
    assert buttons == {c.name for c in handlers.features.menu_buttons() if c.name in may}


def test_every_keyword_runs_a_declared_command():
    for language in LANGUAGES:
        words = [k.removeprefix("keywords.") for k in catalog(language) if k.startswith("keywords.")]
        assert words and set(words) <= set(handlers.registry.commands), language


# Columns that name a person, wherever they are: their account, their chat, what they did, wrote or were given.
PERSON_COLUMNS = {"user_id", "chat_id", "actor_id", "created_by", "used_by", "assigned_to", "linked_to", "owner"}


async def personal_tables(store) -> set[str]:
    """From the live schema, every migration applied: the tables with a column naming a person."""
    tables = [r[0] for r in await store.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {table for table in tables
            if {r[1] for r in await store.db.fetchall(f"PRAGMA table_info({table})")} & PERSON_COLUMNS}


async def test_every_table_naming_a_person_is_in_dulieu_or_left_out_for_a_reason(store):
    personal = await personal_tables(store)
    assert {"users", "cases", "consents", "audit_log"} <= personal
    exported = {t for f in handlers.features.features for t in f.exported}
    left_out = {t: why for f in handlers.features.features for t, why in f.unexported.items()}
    assert not exported & set(left_out) and all(left_out.values())
    assert personal <= exported | set(left_out), "a table names people: export it (Feature.exported) or say why not"
    assert (exported | set(left_out)) <= personal  # no stale names


async def test_dulieu_sections_come_from_the_features_each_once(harness, store):
    p = await person_of(harness, store, "cadre")
    [*_, document] = await p.say("/dulieu")
    export = json.loads(document.document.content)
    assert list(export)[:2] == ["exported_at", "controller"]
    assert {"profile", "cases", "linked_accounts", "scope", "digest_settings", "task_reports", "announcements",
            "campaigns_opened", "actions_as_staff", "dan_van_kheo"} <= set(export)


async def test_every_table_naming_a_person_is_erased_or_kept_for_a_reason(store):
    personal = await personal_tables(store)
    erased = {table for f in handlers.features.features for table, _, _ in f.erased}
    kept = {t: why for f in handlers.features.features for t, why in f.kept.items()}
    assert not erased & set(kept) and all(kept.values())
    assert personal <= erased | set(kept), "a table names people: erase it (Feature.erased) or say why not (kept)"
    assert (erased | set(kept)) <= personal
    # What storage/users.py `erase` goes through is exactly what the features declare.
    assert erasure.erased() == [e for f in handlers.features.features for e in f.erased]
    assert [p.hook for p in erasure.parts if p.hook] == [f.erase for f in handlers.features.features if f.erase]


async def test_a_declared_digest_section_joins_every_digest_with_its_buttons(store, clock):
    async def section(period: Period) -> Section | None:
        return Section([f"Khảo sát: {period.user.unit_name}"], (Option("Xem kết quả", cb("sv")),))

    now = clock()
    cadre = await store.users.get(await staff(store, now, "7001", unit="Ban Dân vận xã Hải Lăng",
                                              communes=("Hải Lăng",)))
    extra = Feature("survey", digest=section)
    handlers.features.features.append(extra)
    try:
        digest = await compose(store, Settings(), cadre, now - timedelta(days=1), now, now, weekly=False)
    finally:
        handlers.features.features.remove(extra)
    [reply] = digest.replies
    assert "Khảo sát: Ban Dân vận xã Hải Lăng" in reply.text
    assert [o.label for o in reply.options[-1]] == ["Xem kết quả"]


async def test_a_broadcast_carries_the_button_kinds_features_declare_in_their_order(store, clock):
    async def hello(store, broadcast, t):
        return ((Option(t("common.none"), cb("hello", broadcast.id)),),) if broadcast.link_url else ()

    broadcast = await store.broadcasts.create(NewBroadcast(text_vi="Họp dân", scheduled_at=clock(), feedback=True,
                                                           link_url="https://example.vn/hop"), clock())
    extra = Feature("hello", buttons=(Buttons("hello", hello),))
    handlers.features.features.append(extra)
    try:
        reply = await render_broadcast(store, broadcast, "vi", None)
    finally:
        handlers.features.features.remove(extra)
    assert [[(o.label, o.data) for o in row] for row in reply.options] == [
        [("🔗 Xem chi tiết", None)], [("💬 Góp ý ngay", "1:new:gopy")], [("(chưa có)", f"1:hello:{broadcast.id}")]]
