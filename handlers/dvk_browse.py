""""Xem mô hình hay" (/mohinhhay): residents browse recognised "Dân vận khéo" models by field and commune and, while
a round's vote is open, vote for them (one vote per person per model); an admin turns a model into an
announcement with one tap, handed to the broadcast composer with its text and photo filled in.
"""

from __future__ import annotations

from handlers.base import ADMIN, Ctx, Document, Option, Reply, cb, registry, step_key
from handlers.consent import has_consent
from handlers.dvk import excerpt, shown
from handlers.pickers import locality_name, locality_steps, page_row, pages_of, turned_page
from handlers.richtext import HtmlProblem, check
from messages import Key
from storage.dvk import FIELDS, Model, repo
from storage.localities import Locality

FLOW = "dvkb"
registry.flow(FLOW)
PAGE_SIZE = 6
ANNOUNCE_DEEDS = 450  # characters of the story in an announcement: with a photo it is a caption (900 at most)


def _key(step: str) -> str:
    return step_key(FLOW, step)


@registry.command("mohinhhay", "models")
async def browse_command(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "list", page=0)


async def _list_prompt(ctx: Ctx) -> None:
    data = ctx.data
    commune = await ctx.store.localities.get(data["commune_id"]) if data.get("commune_id") else None
    page = int(data.get("page", 0))
    models, total = await repo(ctx.store).listing((commune.path,) if commune else None, ("recognised",),
                                                  field=data.get("model_field"), offset=page * PAGE_SIZE,
                                                  limit=PAGE_SIZE)
    key = _key("list")
    rows = [(Option(ctx.t("dvk.browse_line", name=excerpt(m.name, 40), level=Key(f"dvk.level_{m.level}")),
                    cb(key, "o", m.id)),) for m in models]
    rows += page_row(ctx, key, page, pages_of(total, PAGE_SIZE), "p")
    rows.append(ctx.row(key, ("dvk.filter_field", "ff"), ("dvk.filter_place", "fl"), ("inbox.filter_clear", "fc")))
    ctx.say(ctx.t("dvk.browse_title", total=total,
                  field=Key(f"dvk.field_{data['model_field']}") if data.get("model_field") else ctx.t("inbox.any"),
                  place=await locality_name(ctx, commune.id) if commune else ctx.t("inbox.any"))
            + ("" if models else "\n" + ctx.t("dvk.browse_empty")), rows,
            edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("p",))


@registry.step(FLOW, "list", _list_prompt)
async def _list_handle(ctx: Ctx) -> None:
    args = ctx.choice
    if await turned_page(ctx, _list_prompt, "p"):
        return
    if args == ("ff",):
        await ctx.goto(FLOW, "field")
    elif args == ("fl",):
        await ctx.goto(FLOW, "commune", page=0)
    elif args == ("fc",):
        ctx.data.pop("model_field", None)
        ctx.data.pop("commune_id", None)
        await ctx.goto(FLOW, "list", page=0)
    elif len(args) == 2 and args[0] == "o":
        model = await _recognised(ctx, args[1])
        if model is not None:
            await _open_model(ctx, model)
    else:
        await ctx.wrong()


async def _field_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("dvk.ask_browse_field"), [(Option(ctx.t(f"dvk.field_{f}"), cb(_key("field"), f)),) for f in FIELDS])


@registry.step(FLOW, "field", _field_prompt)
async def _field_handle(ctx: Ctx) -> None:
    if len(ctx.choice) == 1 and ctx.choice[0] in FIELDS:
        await ctx.goto(FLOW, "list", model_field=ctx.choice[0], page=0)
    else:
        await ctx.wrong()


async def _commune_chosen(ctx: Ctx, loc: Locality | None) -> None:
    await ctx.goto(FLOW, "list", commune_id=loc.id, page=0)


locality_steps(FLOW, on_commune=_commune_chosen, then=_commune_chosen)


async def _recognised(ctx: Ctx, model_id: object) -> Model | None:
    model = await repo(ctx.store).get(int(model_id)) if str(model_id).isdigit() else None
    if model is None or model.status != "recognised":
        await ctx.reask(ctx.stale_key)
        return None
    return model


async def _voting(ctx: Ctx, model: Model) -> bool:
    current = await repo(ctx.store).round(model.round_id) if model.round_id else None
    return current is not None and current.voting_on(ctx.now.astimezone(ctx.settings.tz).date())


async def _open_model(ctx: Ctx, model: Model) -> None:
    """The card and its photos, once, as the model is opened: a re-ask of the step (a wrong answer, a vote
    refused) repeats only its question."""
    dvk = repo(ctx.store)
    ctx.say(ctx.t("dvk.public_card", **{k: v for k, v in (await shown(ctx, model)).items()
                                        if k not in ("status", "by")}, level=Key(f"dvk.level_{model.level}")))
    for number, sha in enumerate(await dvk.photos(model.id), start=1):
        content = await ctx.store.files.get(sha)
        if content is not None:
            ctx.replies.append(Reply(ctx.t("dvk.photo_caption", code=model.code, number=number),
                                     photo=Document(f"{model.code}-{number}.jpg", content, "image/jpeg")))
    await ctx.goto(FLOW, "model", model_id=model.id)


async def _model_prompt(ctx: Ctx) -> None:
    dvk = repo(ctx.store)
    model = await dvk.get(int(ctx.data["model_id"]))
    if model is None or model.status != "recognised":  # no longer shown (declined again, erased)
        await ctx.goto(FLOW, "list")
        return
    key = _key("model")
    rows = []
    voting = await _voting(ctx, model)
    if voting:
        rows.append((Option(ctx.t("dvk.vote", count=await dvk.votes(model.id)), cb(key, "vote")),))
    if ctx.user.role == "admin":
        rows.append((Option(ctx.t("dvk.announce"), cb("dvka", model.id)),))
    rows.append(ctx.row(key, ("common.back", "back")))
    ctx.say(ctx.t("dvk.vote_open" if voting else "dvk.what_next"), rows)


@registry.step(FLOW, "model", _model_prompt)
async def _model_handle(ctx: Ctx) -> None:
    model = await _recognised(ctx, ctx.data.get("model_id", ""))
    if model is None:
        return
    if ctx.choice == ("back",):
        await ctx.goto(FLOW, "list")
    elif ctx.choice == ("vote",):
        await _vote(ctx, model)
    else:
        await ctx.wrong()


async def _vote(ctx: Ctx, model: Model) -> None:
    """Residents of the province (a person whose profile names a place in it) vote while the round's vote is open;
    what is kept is the vote and the voter's commune, counted, never shown with names."""
    if not await _voting(ctx, model):
        ctx.say(ctx.t("dvk.vote_closed"))
    elif ctx.user.locality_id is None:
        ctx.say(ctx.t("dvk.vote_need_place"))
    elif not await has_consent(ctx, "opinions"):
        ctx.say(ctx.t("dvk.vote_need_consent"))
    else:
        counted = await repo(ctx.store).vote(model.id, ctx.user.id, ctx.now)
        ctx.say(ctx.t("dvk.voted" if counted else "dvk.voted_before", name=model.name,
                      count=await repo(ctx.store).votes(model.id)))
        return
    await _model_prompt(ctx)


# ---- one tap to an announcement ---------------------------------------------------------------------------------


@registry.action("dvka", roles=ADMIN)
async def announce_button(ctx: Ctx) -> None:
    """«Đăng thành thông báo»: the broadcast composer (handlers/broadcast.py), its text and first photo filled in
    from the model; the admin chooses buttons, audience and time as for any announcement."""
    dvk = repo(ctx.store)
    model = await dvk.get(int(ctx.args[0])) if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if model is None or model.status != "recognised":
        ctx.say(ctx.t(ctx.stale_key))
        return
    values = await shown(ctx, model)
    text = ctx.t("dvk.announcement", name=model.name, author=model.author, place=values["place"],
                 field=values["field"], level=Key(f"dvk.level_{model.level}"),
                 deeds=excerpt(model.deeds, ANNOUNCE_DEEDS), results=excerpt(values["results"], 200))
    try:
        text = check(text).html
    except HtmlProblem:  # the catalog's own tags: never expected, but the composer must get valid HTML
        ctx.say(ctx.t("common.error"))
        return
    photos = await dvk.photos(model.id)
    await ctx.audit("dvk.announced", f"dvk:{model.code}")
    ctx.conversation = None
    ctx.say(ctx.t("dvk.announce_ready", code=model.code, photos=min(len(photos), 1)))
    draft = {"roles": ["citizen"], "topics": [], "places": [], "feedback": False, "campaign_id": None,
             "text_vi": text, **({"photo": photos[0]} if photos else {})}
    await ctx.goto("bc", "btns", **draft)
