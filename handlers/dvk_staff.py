"""/dvk: cadres verify "Dân vận khéo" nominations in their scope (ask the nominator for more, note a visit, approve
or decline with a reason); admins recognise verified models at commune or province level in a round, and get the
certificate card.

Scope is checked in the handler that acts, on every event: a cadre of commune A cannot list, open or act on a model
of commune B by any route, forged buttons included. Every change of status names the statuses it expects; the
loser of a race is told what happened instead.
"""

from __future__ import annotations

import asyncio

from handlers import dvk_card
from handlers.base import STAFF, Ctx, Document, Option, Reply, cb, registry, step_key
from handlers.digest import Period, Section
from handlers.dvk import TOPIC, excerpt, export, history, shown, tell_nominator, withdrawal_notices
from handlers.features import Command, Feature
from handlers.pickers import locality_name, page_row, pages_of, turned_page
from messages import Key
from storage import Store
from storage.clock import parse
from storage.dvk import KEPT, LEVELS, OPEN, PERSONAL_TABLES, Model, ModelMoved, erase_person, repo
from storage.users import User

FLOW = "dvkc"
registry.flow(FLOW, roles=STAFF)
PAGE_SIZE = 6
VIEWS = {"open": OPEN, "verified": ("verified",), "recognised": ("recognised",), "declined": ("declined", "withdrawn")}
TEXTS = {"ask": (5, 1000), "visit": (5, 2000), "decline": (5, 1000)}
NOTICES = {"info_requested": "dvk.notice_asked", "declined": "dvk.notice_declined"}  # the others: the new status
ACTS = {(a,) for a in ("ask", "visit", "verify", "decline", "rc", "rp", "cert")}  # the card's buttons but «back»


def _key(step: str) -> str:
    return step_key(FLOW, step)


async def paths_for(store: Store, user: User) -> tuple[str, ...] | None:
    """The subtrees whose nominations this person handles: every place for admins (None); a cadre's scope when it
    covers the Dân vận khéo topic (no topics in a scope means every topic)."""
    if user.role == "admin":
        return None
    if user.role != "cadre":
        return ()
    scope = await store.roles.scope(user.id)
    topic = await store.topics.by_code(TOPIC)
    if scope.topic_ids and (topic is None or topic.id not in scope.topic_ids):
        return ()
    return await store.roles.scope_paths(user.id)


async def scope_paths(ctx: Ctx) -> tuple[str, ...] | None:
    return await paths_for(ctx.store, ctx.user)


async def in_scope(ctx: Ctx, model_id: object) -> Model | None:
    """The model, if this staff member may see and act on it; else None, audited and told."""
    model = await repo(ctx.store).get(int(model_id)) if str(model_id).isdigit() else None
    paths = await scope_paths(ctx)
    if model is None or (paths is not None and not any(model.locality_path.startswith(p) for p in paths)):
        await ctx.audit("denied", f"dvk:{model_id}")
        ctx.finish()
        ctx.say(ctx.t("dvk.not_in_scope"))
        return None
    return model


# ---- the list -------------------------------------------------------------------------------------------------


@registry.command("dvk")
async def staff_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", view="open", page=0)


@registry.action("dvks", roles=STAFF)
async def open_button(ctx: Ctx) -> None:
    """Notices and the digest: open a model's card."""
    model = await in_scope(ctx, ctx.args[0] if len(ctx.args) == 1 else "")
    if model is not None:
        ctx.conversation = None
        await ctx.goto(FLOW, "model", model_id=model.id, view="open", page=0)


async def _list_prompt(ctx: Ctx) -> None:
    dvk, paths = repo(ctx.store), await scope_paths(ctx)
    view, page = ctx.data.get("view", "open"), int(ctx.data.get("page", 0))
    by_status = await dvk.by_status(paths)
    counts = {v: sum(by_status.get(s, 0) for s in statuses) for v, statuses in VIEWS.items()}
    models, total = await dvk.listing(paths, VIEWS[view], offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    key = _key("list")
    names = list(VIEWS)
    rows = [tuple(Option(ctx.t(f"dvk.view_{v}", count=counts[v]) + (" •" if v == view else ""), cb(key, "v", v))
                  for v in names[i:i + 2]) for i in (0, 2)]
    for m in models:
        place = await ctx.store.localities.get(m.locality_id)
        rows.append((Option(ctx.t("dvk.staff_line", code=m.code, name=excerpt(m.name or ctx.t("dvk.erased"), 36),
                                  place=place.name if place else ""), cb(key, "o", m.id)),))
    rows += page_row(ctx, key, page, pages_of(total, PAGE_SIZE), "p")
    if ctx.user.role == "admin":
        rows.append((Option(ctx.t("dvk.rounds"), cb("dvkr")),))
    ctx.say(ctx.t("dvk.staff_title", view=Key(f"dvk.view_name_{view}"), total=total)
            + ("" if models else "\n" + ctx.t("dvk.staff_empty")), rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] in (("v",), ("p",)))


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if len(args) == 2 and args[0] == "v" and args[1] in VIEWS:
        ctx.data.update(view=args[1], page=0)
        ctx.dirty = True
        await _list_prompt(ctx)
    elif len(args) == 2 and args[0] == "o":
        model = await in_scope(ctx, args[1])
        if model is not None:
            await ctx.goto(FLOW, "model", model_id=model.id)
    else:
        await ctx.wrong()


# ---- one model ------------------------------------------------------------------------------------------------


def _actions(ctx: Ctx, model: Model) -> list[tuple[Option, ...]]:
    key = _key("model")
    rows = []
    if model.status in OPEN:
        rows += [ctx.row(key, ("dvk.ask", "ask"), ("dvk.visit", "visit")),
                 ctx.row(key, ("dvk.verify", "verify"), ("dvk.decline", "decline"))]
    if model.status == "verified" and ctx.user.role == "admin":
        rows += [ctx.row(key, ("dvk.recognise_commune", "rc"), ("dvk.recognise_province", "rp")),
                 ctx.row(key, ("dvk.decline", "decline"))]
    if model.status == "recognised":
        rows.append(ctx.row(key, ("dvk.certificate", "cert")))
        if ctx.user.role == "admin":
            rows.append((Option(ctx.t("dvk.announce"), cb("dvka", model.id)),))
    rows.append(ctx.row(key, ("common.back", "back")))
    return rows


async def _model_prompt(ctx: Ctx) -> None:
    model = await in_scope(ctx, ctx.data.get("model_id", ""))
    if model is None:
        return
    ctx.say(ctx.t("dvk.card", **await shown(ctx, model, staff=True)) + "\n\n"
            + ctx.t("dvk.history", history=await history(ctx, model, internal=True)), _actions(ctx, model))


@registry.step(FLOW, "model", _model_prompt)
async def _model_handle(ctx: Ctx) -> None:
    model = await in_scope(ctx, ctx.data.get("model_id", ""))
    if model is None:
        return
    args = ctx.choice
    offered = {o.data for row in _actions(ctx, model) for o in row}
    if args[:1] in ACTS and ctx.inbound.payload not in offered:  # someone changed its status since it was shown
        ctx.say(ctx.t("dvk.moved", code=model.code, status=Key(f"dvk.status_{model.status}")))
        await _model_prompt(ctx)
    elif ctx.inbound.kind != "choice" or ctx.inbound.payload not in offered:
        await ctx.wrong()
    elif args == ("back",):
        await ctx.goto(FLOW, "list")
    elif args[0] in TEXTS:
        await ctx.goto(FLOW, args[0])
    elif args == ("verify",):
        await _change(ctx, model, "verified", expect=OPEN, status="verified")
    elif args in (("rc",), ("rp",)):
        await _recognise(ctx, model, LEVELS[args == ("rp",)])
    elif args == ("cert",):
        await send_certificate(ctx, model)


async def _change(ctx: Ctx, model: Model, kind: str, *, body: str | None = None, internal: bool = False,
                  expect: tuple[str, ...] | None = None, **changes: object) -> Model | None:
    """Record the step, tell the nominator of a new status, show the card again; None when someone acted first."""
    try:
        changed = await repo(ctx.store).record(model.id, ctx.user.id, kind, ctx.now, body=body, internal=internal,
                                               expect=expect, **changes)
    except ModelMoved as moved:
        ctx.say(ctx.t("dvk.moved", code=model.code, status=Key(f"dvk.status_{moved.model.status}")))
        await ctx.goto(FLOW, "model", model_id=model.id)
        return None
    await ctx.audit(f"dvk.{kind}", f"dvk:{model.code}")
    if "status" in changes:
        tell_nominator(ctx, changed, NOTICES.get(kind, "dvk.notice_status"), text=body or "")
    ctx.say(ctx.t("dvk.done", code=model.code, what=Key(f"dvk.event_{kind}")))
    await ctx.goto(FLOW, "model", model_id=model.id)
    return changed


async def _recognise(ctx: Ctx, model: Model, level: str) -> None:
    dvk = repo(ctx.store)
    current = await dvk.round(model.round_id) if model.round_id else \
        await dvk.round_on(ctx.now.astimezone(ctx.settings.tz).date())
    if current is None:
        await ctx.reask("dvk.no_round")
        return
    changed = await _change(ctx, model, "recognised", body=ctx.t(f"dvk.level_{level}"), expect=("verified",),
                            status="recognised", level=level, round_id=current.id, recognised_at=ctx.now)
    if changed is not None:
        await send_certificate(ctx, changed)


async def send_certificate(ctx: Ctx, model: Model) -> None:
    """The certificate card of a recognised model, as a picture to send on or print."""
    await ctx.typing()
    current = await repo(ctx.store).round(model.round_id) if model.round_id else None
    card = dvk_card.Card(
        title=ctx.t("dvk.cert_title"), level=ctx.t(f"dvk.cert_level_{model.level or 'commune'}"),
        name=model.name, author=model.author, place=await locality_name(ctx, model.locality_id, province=True),
        field=ctx.t(f"dvk.field_{model.field}"), year=str(current.year if current else parse(model.created_at).year),
        issuer=ctx.settings.operator_name, code=model.code)
    png = await asyncio.to_thread(dvk_card.render, card)
    ctx.replies.append(Reply(ctx.t("dvk.cert_caption", code=model.code),
                             photo=Document(f"chung-nhan-{model.code}.png", png, "image/png")))


# ---- the text steps: a request for more, a visit note, a reason to decline -------------------------------------


def _text_step(step: str) -> None:
    async def prompt(ctx: Ctx) -> None:
        ctx.say(ctx.t(f"dvk.ask_{step}"), [ctx.row(_key(step), ("common.back", "back"))])

    async def handle(ctx: Ctx) -> None:
        model = await in_scope(ctx, ctx.data.get("model_id", ""))
        if model is None:
            return
        if ctx.choice == ("back",):
            await ctx.goto(FLOW, "model")
            return
        low, high = TEXTS[step]
        text = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
        if not low <= len(text) <= high:
            await ctx.reask("dvk.length", low=low, high=high, length=len(text))
            return
        if step == "visit":
            await _change(ctx, model, "visit", body=text, internal=True)
        elif step == "ask" and model.user_id is None:
            ctx.say(ctx.t("dvk.no_nominator"))
            await ctx.goto(FLOW, "model")
        elif step == "ask":
            await _change(ctx, model, "info_requested", body=text, expect=OPEN, status="info_requested")
        else:
            # A verified model is declined only by an admin (its card offers it to them alone): a cadre's reason
            # typed while another cadre verified it finds the model moved on.
            expect = (*OPEN, "verified") if ctx.user.role == "admin" else OPEN
            await _change(ctx, model, "declined", body=text, expect=expect, status="declined")

    registry.step(FLOW, step, prompt)(handle)


for _step in TEXTS:
    _text_step(_step)


async def digest_section(period: Period) -> Section | None:
    """What a staff member's digest adds for nominations made in the period in their scope."""
    store, t = period.store, period.t
    paths = await paths_for(store, period.user)
    models = await repo(store).nominated_between(paths, period.start, period.end) if paths != () else []
    if not models:
        return None
    lines = [t("dvk.digest_title", count=len(models))]
    for m in models[:10]:
        place = await store.localities.get(m.locality_id)
        lines.append(t("dvk.digest_line", code=m.code, name=excerpt(m.name or t("dvk.erased"), 60),
                       place=place.name if place else "", field=Key(f"dvk.field_{m.field}")))
    return Section(lines)


# "Dân vận khéo" as one feature, declared here where its parts (handlers/dvk.py, dvk_browse.py, this module) meet.
FEATURE = Feature(
    "dvk", commands=(Command("danvankheo", menu="menu.danvankheo", place=200),
                     Command("mohinhhay", menu="menu.mohinhhay", place=210),
                     Command("dvk", STAFF, menu="menu.dvk", place=220)),
    export=export, exported=tuple(PERSONAL_TABLES),
    unexported={"dvk_rounds": "a round is the movement's; the admin who opened it is in the audit log"},
    kept={**KEPT, "dvk_rounds": "a round is the movement's; the anonymous row's id names nobody"},
    erase=erase_person, erasing=withdrawal_notices, digest=digest_section,
)
