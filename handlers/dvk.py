"""/danvankheo: anyone proposes a "Dân vận khéo" model, follows it like a case, and answers a cadre's request for
more information; what this feature adds to /dulieu.

name → person or collective → place (the profile's by default) → field → what was done → results in numbers →
up to 5 photos → review → send. A citizen needs the ordinary opinions consent. The nomination is committed before
the bot says "received", under the draft's key, so a second «Gửi» is the same nomination.
"""

from __future__ import annotations

import html
import secrets

from handlers.base import STAFF, Ctx, Notice, Option, allowed, cb, registry, step_key
from handlers.consent import has_consent, record_consent
from handlers.images import MAX_BYTES
from handlers.pickers import locality_name, locality_steps, page_note, page_row, pages_of, turned_page
from messages import Key, join
from storage.clock import parse
from storage.dvk import FIELDS, OPEN, Model, ModelMoved, NewModel, repo
from storage.localities import Locality

FLOW = "dvk"
registry.flow(FLOW)
TOPIC = "dan-van-kheo"  # the topic whose cadres verify nominations (storage/topics.py)
MAX_PHOTOS = 5
MINE_PAGE = 8  # one's own nominations per page of /danvankheo
LENGTHS = {"name": (5, 200), "author": (3, 200), "deeds": (20, 3000), "results": (2, 1000), "more": (5, 2000)}


def _key(step: str) -> str:
    return step_key(FLOW, step)


def excerpt(text: str, size: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


async def shown(ctx: Ctx, model: Model, *, staff: bool = False) -> dict:
    """The values of a model's card (catalog "dvk.card"); an erased nomination shows the erasure marker."""
    erased = ctx.t("dvk.erased")
    photos = len(await repo(ctx.store).photos(model.id))
    return {"code": model.code, "name": model.name if not model.erased else erased,
            "author": model.author if not model.erased else erased,
            "place": await locality_name(ctx, model.locality_id), "field": Key(f"dvk.field_{model.field}"),
            "deeds": model.deeds if not model.erased else erased,
            "results": (model.results or ctx.t("common.none")) if not model.erased else erased,
            "photos": photos, "status": Key(f"dvk.status_{model.status}"),
            "by": Key("dvk.by_staff" if model.by_staff else "dvk.by_citizen") if staff else ""}


async def history(ctx: Ctx, model: Model, *, internal: bool) -> str:
    lines = [ctx.t("dvk.event", at=ctx.local(parse(e.at)), what=Key(f"dvk.event_{e.kind}"),
                   body=f": {e.body}" if e.body else "")
             for e in await repo(ctx.store).events(model.id, internal=internal)]
    return join("\n", lines)


# ---- starting -----------------------------------------------------------------------------------------------


@registry.command("danvankheo", "goodmodel")
async def nominate_command(ctx: Ctx) -> None:
    if await repo(ctx.store).of_user(ctx.user.id):
        await ctx.goto(FLOW, "mine", page=0)
    else:
        await start(ctx)


async def start(ctx: Ctx) -> None:
    if not allowed(ctx.user, STAFF) and not await has_consent(ctx, "opinions"):
        await ctx.goto(FLOW, "consent")
        return
    ctx.conversation = None
    await ctx.goto(FLOW, "name", photos=[], key=secrets.token_urlsafe(12))


async def _mine_prompt(ctx: Ctx) -> None:
    models = await repo(ctx.store).of_user(ctx.user.id)
    pages = pages_of(len(models), MINE_PAGE)
    page = min(max(int(ctx.data.get("page", 0)), 0), pages - 1)
    key = _key("mine")
    rows = [(Option(ctx.t("dvk.line", code=m.code, name=excerpt(m.name or ctx.t("dvk.erased"), 40),
                          status=Key(f"dvk.status_{m.status}")), cb(key, "o", m.id)),)
            for m in models[page * MINE_PAGE:(page + 1) * MINE_PAGE]]
    rows += page_row(ctx, key, page, pages, "p")
    rows.append((Option(ctx.t("dvk.new"), cb(key, "new")),))
    ctx.say(ctx.t("dvk.mine", count=len(models)) + page_note(ctx, page, pages), rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("p",))


@registry.step(FLOW, "mine", _mine_prompt)
async def _mine_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if await turned_page(ctx, _mine_prompt, "p"):
        return
    if choice == ("new",):
        await start(ctx)
    elif len(choice) == 2 and choice[0] == "o":
        await open_own(ctx, choice[1])
    else:
        await ctx.wrong()


async def _consent_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.needs_consent"), [ctx.row(_key("consent"), ("consent.yes", "y"), ("consent.no", "n"))])


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    if ctx.choice == ("y",):
        await record_consent(ctx, "opinions", True)
        await start(ctx)
    elif ctx.choice == ("n",):
        ctx.finish()
        ctx.say(ctx.t("case.no_consent"))
    else:
        await ctx.wrong()


# ---- the questions ------------------------------------------------------------------------------------------


async def _text(ctx: Ctx, name: str) -> str | None:
    """The typed answer of a text step, within its length; None after saying what is wrong."""
    low, high = LENGTHS[name]
    if ctx.inbound.kind != "text":
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "dvk.expect_text")
        return None
    text = ctx.inbound.text.strip()
    if not low <= ctx.length(text) <= high:
        await ctx.reask("dvk.length", low=low, high=high, length=ctx.length(text))
        return None
    return text


async def _name_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_name"))


@registry.step(FLOW, "name", _name_prompt)
async def _name_handle(ctx: Ctx) -> None:
    if (text := await _text(ctx, "name")) is not None:
        ctx.data["name"] = text
        await ctx.goto(FLOW, "review" if ctx.data.get("editing") else "author")


async def _author_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_author"))


@registry.step(FLOW, "author", _author_prompt)
async def _author_handle(ctx: Ctx) -> None:
    if (text := await _text(ctx, "author")) is not None:
        ctx.data["author"] = text
        await ctx.goto(FLOW, "review" if ctx.data.get("editing") else "place")


async def _place_prompt(ctx: Ctx) -> None:
    if ctx.user.locality_id is None:
        await ctx.goto(FLOW, "commune", page=0)
        return
    ctx.say(ctx.t("dvk.ask_place", place=await locality_name(ctx, ctx.user.locality_id)),
            [ctx.row(_key("place"), ("case.place_yes", "y"), ("case.place_other", "o"))])


@registry.step(FLOW, "place", _place_prompt)
async def _place_handle(ctx: Ctx) -> None:
    if ctx.choice == ("y",) and ctx.user.locality_id is not None:
        ctx.data["locality_id"] = ctx.user.locality_id
        await ctx.goto(FLOW, "field")
    elif ctx.choice == ("o",):
        await ctx.goto(FLOW, "commune", page=0)
    else:
        await ctx.wrong()


async def _place_chosen(ctx: Ctx, loc: Locality | None) -> None:
    ctx.data["locality_id"] = loc.id
    await ctx.goto(FLOW, "field")


locality_steps(FLOW, then=_place_chosen)


async def _field_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_field"), [(Option(ctx.t(f"dvk.field_{f}"), cb(_key("field"), f)),) for f in FIELDS])


@registry.step(FLOW, "field", _field_prompt)
async def _field_handle(ctx: Ctx) -> None:
    if len(ctx.choice) == 1 and ctx.choice[0] in FIELDS:
        ctx.data["model_field"] = ctx.choice[0]
        await ctx.goto(FLOW, "deeds")
    else:
        await ctx.wrong()


async def _deeds_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_deeds"))


@registry.step(FLOW, "deeds", _deeds_prompt)
async def _deeds_handle(ctx: Ctx) -> None:
    if (text := await _text(ctx, "deeds")) is not None:
        ctx.data["deeds"] = text
        await ctx.goto(FLOW, "review" if ctx.data.get("editing") else "results")


async def _results_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_results"), [ctx.row(_key("results"), ("dvk.no_numbers", "none"))])


@registry.step(FLOW, "results", _results_prompt)
async def _results_handle(ctx: Ctx) -> None:
    if ctx.choice == ("none",):
        ctx.data["results"] = None
    elif (text := await _text(ctx, "results")) is not None:
        ctx.data["results"] = text
    else:
        return
    await ctx.goto(FLOW, "photos")


async def _photos_prompt(ctx: Ctx) -> None:
    count = len(ctx.data.get("photos", []))
    ctx.say(ctx.t("dvk.ask_photos", count=count, limit=MAX_PHOTOS),
            [ctx.row(_key("photos"), ("dvk.photos_done" if count else "dvk.photos_skip", "done"))])


async def add_photo(ctx: Ctx, already: int = 0) -> bool:
    """Keep the photo the person sent in the draft's "photos" (`already` kept with the nomination count towards the
    limit); False after saying why not (the step is asked again)."""
    media = ctx.inbound.media
    if ctx.inbound.kind != "media" or media is None or media.kind != "photo" or ctx.fetch is None:
        await ctx.reask("dvk.expect_photo")
        return False
    if already + len(ctx.data.get("photos", [])) >= MAX_PHOTOS:
        await ctx.reask("dvk.too_many_photos", limit=MAX_PHOTOS)
        return False
    kept = await ctx.keep(media, MAX_BYTES, "case.too_large", kind=Key("case.att_photo"), mb=MAX_BYTES // 2**20)
    if kept is None:
        return False
    ctx.data.setdefault("photos", []).append(list(kept))
    ctx.dirty = True
    return True


@registry.step(FLOW, "photos", _photos_prompt)
async def _photos_handle(ctx: Ctx) -> None:
    if ctx.choice == ("done",):
        await ctx.goto(FLOW, "review")
    elif await add_photo(ctx):
        await _photos_prompt(ctx)


async def _review_prompt(ctx: Ctx) -> None:
    data = ctx.data
    ctx.say(ctx.t("dvk.review", name=data["name"], author=data["author"],
                  place=await locality_name(ctx, data["locality_id"]), field=Key(f"dvk.field_{data['model_field']}"),
                  deeds=data["deeds"], results=data.get("results") or ctx.t("common.none"),
                  photos=len(data.get("photos", []))), [
        (Option(ctx.t("case.send"), cb(_key("review"), "send", data["key"])),),
        ctx.row(_key("review"), ("dvk.edit_name", "name"), ("dvk.edit_author", "author"), ("dvk.edit_deeds", "deeds")),
        ctx.row(_key("review"), ("case.discard", "drop")),
    ])


@registry.step(FLOW, "review", _review_prompt)
async def _review_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("send", ctx.data.get("key")):
        await _submit(ctx)
    elif len(choice) == 1 and choice[0] in ("name", "author", "deeds"):
        await ctx.goto(FLOW, choice[0], editing=True)
    elif choice == ("drop",):
        ctx.finish()
        ctx.say(ctx.t("case.discarded"))
    else:
        await ctx.wrong()


@registry.action(_key("review"))
async def _review_over(ctx: Ctx) -> None:
    """«Gửi» again after the nomination was stored (a double tap, a redelivery): the same code again."""
    model = await repo(ctx.store).by_key(ctx.user.id, ctx.args[1]) if len(ctx.args) == 2 and ctx.args[0] == "send" \
        else None
    if model is None:
        ctx.say(ctx.t(ctx.stale_key))
    else:
        _received(ctx, model)


async def _submit(ctx: Ctx) -> None:
    data, dvk = ctx.data, repo(ctx.store)
    current = await dvk.round_on(ctx.now.astimezone(ctx.settings.tz).date())
    model = await dvk.create(NewModel(
        user_id=ctx.user.id, by_staff=allowed(ctx.user, STAFF), name=data["name"], author=data["author"],
        locality_id=data["locality_id"], field=data["model_field"], deeds=data["deeds"], results=data.get("results"),
        photos=tuple((sha, size) for sha, size in data.get("photos", [])), key=data["key"],
    ), current.id if current else None, ctx.now, ends=(ctx.inbound.channel, ctx.inbound.chat_id))
    ctx.ended_in_storage()
    _received(ctx, model)


def _received(ctx: Ctx, model: Model) -> None:
    ctx.say(ctx.t("dvk.received", code=model.code), [(Option(ctx.t("dvk.follow"), cb("dvkm", model.id)),)])


# ---- following one's nominations; answering a request for more ------------------------------------------------


async def own(ctx: Ctx, model_id: str) -> Model | None:
    model = await repo(ctx.store).get(int(model_id)) if model_id.isdigit() else None
    if model is None or model.user_id != ctx.user.id:
        ctx.finish()
        ctx.say(ctx.t("dvk.not_yours"))
        return None
    return model


async def open_own(ctx: Ctx, model_id: str) -> None:
    model = await own(ctx, model_id)
    if model is None:
        return
    ctx.finish()
    rows = [(Option(ctx.t("dvk.supply"), cb("dvkx", model.id)),)] if model.status == "info_requested" else []
    ctx.say(ctx.t("dvk.card", **await shown(ctx, model)) + "\n\n"
            + ctx.t("dvk.history", history=await history(ctx, model, internal=False)), rows)


@registry.action("dvkm")
async def open_own_button(ctx: Ctx) -> None:
    """From "received" and from status notices: the nominator's own view of a nomination."""
    await open_own(ctx, ctx.args[0] if len(ctx.args) == 1 else "")


@registry.action("dvkx")
async def supply_button(ctx: Ctx) -> None:
    """A cadre asked for more: the conversation goes back to the nominator, whose reply attaches."""
    model = await own(ctx, ctx.args[0] if len(ctx.args) == 1 else "")
    if model is None:
        return
    if model.status != "info_requested":
        ctx.say(ctx.t("dvk.nothing_requested", code=model.code))
        return
    ctx.conversation = None
    await ctx.goto(FLOW, "more", model_id=model.id, photos=[])


async def _more_prompt(ctx: Ctx) -> None:
    model = await repo(ctx.store).get(int(ctx.data["model_id"]))
    asked = [e for e in await repo(ctx.store).events(model.id, internal=False) if e.kind == "info_requested"]
    rows = [ctx.row(_key("more"), ("dvk.send_more", "send"))] if ctx.data.get("text") else []
    ctx.say(ctx.t("dvk.ask_more", code=model.code, request=asked[-1].body if asked else "",
                  photos=len(ctx.data.get("photos", []))), rows)


@registry.step(FLOW, "more", _more_prompt)
async def _more_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind == "media":
        if await add_photo(ctx, len(await repo(ctx.store).photos(int(ctx.data["model_id"])))):
            await _more_prompt(ctx)
        return
    if ctx.choice == ("send",) and ctx.data.get("text"):
        await _send_more(ctx)
        return
    if (text := await _text(ctx, "more")) is not None:
        ctx.data["text"] = text
        ctx.dirty = True
        await _more_prompt(ctx)


async def _send_more(ctx: Ctx) -> None:
    dvk = repo(ctx.store)
    model = await own(ctx, str(ctx.data["model_id"]))
    if model is None:
        return
    try:
        model = await dvk.record(model.id, ctx.user.id, "info_added", ctx.now, body=ctx.data["text"],
                                 expect=("info_requested",), status="nominated",
                                 photos=tuple((sha, size) for sha, size in ctx.data.get("photos", [])))
    except ModelMoved as moved:
        ctx.finish()
        ctx.say(ctx.t("dvk.moved", code=moved.model.code, status=Key(f"dvk.status_{moved.model.status}")))
        return
    ctx.finish()
    ctx.say(ctx.t("dvk.more_received", code=model.code))
    for cadre_id in await responsible(ctx, model):
        ctx.notify(cadre_id, "dvk.notice_more", (("dvk.open", cb("dvks", model.id)),), code=model.code)


async def responsible(ctx: Ctx, model: Model) -> list[int]:
    """The cadres whose scope holds the model's place and the Dân vận khéo topic."""
    topic = await ctx.store.topics.by_code(TOPIC)
    return await ctx.store.roles.cadres_covering(model.locality_path, topic.id if topic else -1)


def tell_nominator(ctx: Ctx, model: Model, key: str = "dvk.notice_status", **values: object) -> None:
    if model.user_id is not None and model.user_id != ctx.user.id:
        button = ("dvk.supply", cb("dvkx", model.id)) if model.status == "info_requested" \
            else ("dvk.follow", cb("dvkm", model.id))
        ctx.notify(model.user_id, key, (button,), code=model.code, status=Key(f"dvk.status_{model.status}"),
                   **values)


# ---- /xoadulieu, /dulieu -------------------------------------------------------------------------------------------


async def withdrawal_notices(ctx: Ctx) -> dict[int, list[tuple[int, str]]]:
    """For /xoadulieu: what the cadres of each nomination still waiting are told if the erasure withdraws it
    ((recipient, notice JSON) by model id); storage/dvk.py `erase_person` withdraws it and blanks its content, and
    the erasure's transaction keeps these notices for the ones it did withdraw."""
    return {model.id: [(cadre_id, Notice(cadre_id, "dvk.notice_withdrawn", {"code": model.code}).dump())
                       for cadre_id in await responsible(ctx, model) if cadre_id != ctx.user.id]
            for model in await repo(ctx.store).of_user(ctx.user.id) if model.status in OPEN}


async def export(ctx: Ctx) -> dict:
    """What /dulieu adds: the person's nominations with what they wrote, their photos (described) and the history
    they can see, and the models they voted for (the vote is theirs; who else voted is not)."""
    dvk, out = repo(ctx.store), []
    for model in reversed(await dvk.of_user(ctx.user.id)):
        place = html.unescape(await locality_name(ctx, model.locality_id, province=True))
        out.append({"code": model.code, "name": model.name, "author": model.author, "field": model.field,
                    "locality": place, "deeds": model.deeds,
                    "results": model.results, "status": model.status, "created_at": model.created_at,
                    "photos": await dvk.photos(model.id),
                    "history": [{"at": e.at, "event": e.kind, "text": e.body}
                                for e in await dvk.events(model.id, internal=False)]})
    return {"dan_van_kheo": {"nominations": out, "votes_for": await dvk.voted_by(ctx.user.id)}}

