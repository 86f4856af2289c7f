"""Reusable steps: choose a commune and a village (buttons or typed name), toggle topics.

Onboarding, settings and cadre invites all ask these questions; each flow registers the steps
under its own name and says what happens once the answer is in (`then`).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.consent import has_consent, record_consent
from messages import Safe, cut, join
from storage.localities import Locality

PAGE_SIZE = 8
Then = Callable[[Ctx, Locality | None], Awaitable[None]]


def _grid(buttons: list[Option], per_row: int = 2) -> list[tuple[Option, ...]]:
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def page_row(ctx: Ctx, key: str, page: int, pages: int, verb: str = "pg") -> list[tuple[Option, ...]]:
    """[« Trước] [Sau »] under a list of `pages` pages (nothing for one page); each button carries `verb` and a
    page number (see `turned_page`). Where the list is is said in its text (`page_note`), not on a button that
    would do nothing."""
    if pages <= 1:
        return []
    row = []
    if page > 0:
        row.append(Option(ctx.t("common.prev"), cb(key, verb, page - 1)))
    if page < pages - 1:
        row.append(Option(ctx.t("common.next"), cb(key, verb, page + 1)))
    return [tuple(row)]


def page_note(ctx: Ctx, page: int, pages: int) -> Safe:
    """"\nTrang 2/5" after a list's text, or nothing for one page."""
    return Safe("\n" + ctx.t("common.page", page=page + 1, pages=pages) if pages > 1 else "")


def pages_of(total: int, size: int) -> int:
    return max(1, -(-total // size))


async def turned_page(ctx: Ctx, prompt: Callable[[Ctx], Awaitable[None]], verb: str = "pg",
                      field: str = "page") -> bool:
    """Whether this was a press on a `page_row` button; if so the list is shown again at that page (kept in
    data[`field`])."""
    args = ctx.choice
    if len(args) == 2 and args[0] == verb and args[1].isdigit():
        ctx.data[field] = int(args[1])
        ctx.dirty = True
        await prompt(ctx)
        return True
    return False


CADRES_PAGE = 8


async def cadre_rows(ctx: Ctx, key: str, page: int, first: set[int] | frozenset[int] = frozenset()
                     ) -> tuple[list[tuple[Option, ...]], Safe]:
    """Every cadre, a page at a time: their buttons (data: the user id; ★ and first: those in `first`), the page
    buttons (verb "pg") and where the page is (`page_note`)."""
    cadres = sorted((u for u in await ctx.store.users.staff() if u.role == "cadre"), key=lambda u: u.id not in first)
    pages = pages_of(len(cadres), CADRES_PAGE)
    page = min(max(page, 0), pages - 1)
    rows = [(Option(cut(("★ " if u.id in first else "") + f"{u.unit_name or ''} · {u.display_name or u.id}", 60),
                    cb(key, u.id)),) for u in cadres[page * CADRES_PAGE:(page + 1) * CADRES_PAGE]]
    return [*rows, *page_row(ctx, key, page, pages)], page_note(ctx, page, pages)


async def locality_name(ctx: Ctx, locality_id: int | None, *, province: bool = False) -> str:
    """"Thôn Hà Lộc, xã Hải Lăng" — the place as a person would say it; with `province`, its full path
    ("…, tỉnh Quảng Trị"), as a document read outside the chat needs."""
    if locality_id is None:
        return ctx.t("common.none")
    chain = await ctx.store.localities.chain(locality_id)
    if not chain:
        return ctx.t("common.none")
    chain = [a for a in chain if province or a.level > 0] or chain[-1:]
    return join(", ", (ctx.t(f"kind.{a.kind}", name=a.name) for a in reversed(chain)))


async def place_path(ctx: Ctx, locality_id: int | None) -> str | None:
    """A locality's full path in plain text ("Thôn Long Hưng, xã Hải Lăng, tỉnh Quảng Trị"), as /dulieu gives it."""
    return html.unescape(await locality_name(ctx, locality_id, province=True)) if locality_id else None


def locality_steps(flow: str, *, commune_step: str = "commune", village_step: str = "village",
                   on_commune: Then | None = None, then: Then) -> None:
    """Register "choose a commune" and "choose a village or skip" for `flow`.

    `on_commune` replaces the village question (admins choosing scopes stop at communes).
    """

    async def commune_prompt(ctx: Ctx) -> None:
        key = step_key(flow, commune_step)
        found = ctx.data.get("found")
        if found:
            locs = await ctx.store.localities.get_many(found)
            text = ctx.t("locality.search_results", count=len(locs))
            nav = [(Option(ctx.t("locality.show_all"), cb(key, "pg", 0)),)]
        else:
            locs, page, pages = await ctx.store.localities.page(int(ctx.data.get("page", 0)), PAGE_SIZE)
            text = ctx.t("locality.ask_commune") + page_note(ctx, page, pages)
            nav = page_row(ctx, key, page, pages)
        buttons = [Option(ctx.t(f"kind.{loc.kind}", name=loc.name), cb(key, "c", loc.id)) for loc in locs]
        ctx.say(text, [*_grid(buttons), *nav], edit=ctx.inbound.kind == "choice" and "pg" in ctx.args[:1])

    async def commune_handle(ctx: Ctx) -> None:
        inbound = ctx.inbound
        if inbound.kind == "choice":
            if ctx.args[:1] == ("pg",) and len(ctx.args) == 2 and ctx.args[1].isdigit():
                ctx.data.pop("found", None)
                ctx.data["page"] = int(ctx.args[1])
                ctx.dirty = True
                await commune_prompt(ctx)
                return
            if ctx.args[:1] == ("c",) and len(ctx.args) == 2 and ctx.args[1].isdigit():
                loc = await ctx.store.localities.get(int(ctx.args[1]))
                if loc is not None and loc.level == 1:
                    await chosen_commune(ctx, loc)
                    return
            await ctx.reask(ctx.stale_key)
            return
        if inbound.kind != "text":
            await ctx.reask("locality.expect_name")
            return
        query = inbound.text.strip()
        if len(query) < 2 or len(query) > 60:
            await ctx.reask("locality.query_length")
            return
        matches = await ctx.store.localities.search(query, level=1)
        if not matches:
            await ctx.reask("locality.not_found", query=query)
        elif len(matches) == 1:
            await chosen_commune(ctx, matches[0])
        else:
            ctx.data["found"] = [m.id for m in matches]
            ctx.dirty = True
            await commune_prompt(ctx)

    async def chosen_commune(ctx: Ctx, loc: Locality) -> None:
        ctx.data.pop("found", None)
        ctx.data.pop("page", None)
        ctx.data["commune_id"] = loc.id
        if on_commune is not None:
            await on_commune(ctx, loc)
        elif await ctx.store.localities.count_children(loc.id):
            await ctx.goto(flow, village_step, commune_id=loc.id, vpage=0)
        else:
            await then(ctx, loc)

    registry.step(flow, commune_step, commune_prompt)(commune_handle)
    if on_commune is not None:
        return

    async def village_prompt(ctx: Ctx) -> None:
        key = step_key(flow, village_step)
        commune_id = int(ctx.data["commune_id"])
        commune = await ctx.store.localities.get(commune_id)
        villages, page, pages = await ctx.store.localities.page(int(ctx.data.get("vpage", 0)), PAGE_SIZE, commune_id)
        buttons = [Option(ctx.t(f"kind.{v.kind}", name=v.name), cb(key, "v", v.id)) for v in villages]
        rows = [*_grid(buttons), *page_row(ctx, key, page, pages),
                (Option(ctx.t("locality.skip_village"), cb(key, "skip")),
                 Option(ctx.t("locality.other_commune"), cb(key, "back")))]
        ctx.say(ctx.t("locality.ask_village", commune=ctx.t(f"kind.{commune.kind}", name=commune.name))
                + page_note(ctx, page, pages), rows,
                edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("pg",))

    async def village_handle(ctx: Ctx) -> None:
        inbound, commune_id = ctx.inbound, int(ctx.data["commune_id"])
        if inbound.kind == "choice":
            args = ctx.args
            if args == ("skip",):
                await then(ctx, await ctx.store.localities.get(commune_id))
                return
            if args == ("back",):
                await ctx.goto(flow, commune_step, page=0)
                return
            if len(args) == 2 and args[0] == "pg" and args[1].isdigit():
                ctx.data["vpage"] = int(args[1])
                ctx.dirty = True
                await village_prompt(ctx)
                return
            if len(args) == 2 and args[0] == "v" and args[1].isdigit():
                village = await ctx.store.localities.get(int(args[1]))
                if village is not None and village.parent_id == commune_id:
                    await then(ctx, village)
                    return
            await ctx.reask(ctx.stale_key)
            return
        if inbound.kind != "text" or not 2 <= len(inbound.text.strip()) <= 60:
            await ctx.reask("locality.expect_village")
            return
        matches = await ctx.store.localities.search(inbound.text, parent_id=commune_id, limit=2)
        if len(matches) == 1:
            await then(ctx, matches[0])
        else:
            await ctx.reask("locality.village_not_found", query=inbound.text.strip())

    registry.step(flow, village_step, village_prompt)(village_handle)


TopicsDone = Callable[[Ctx, set[int]], Awaitable[None]]


def topic_steps(flow: str, *, step: str = "topics", prompt_key: str = "topics.ask", then: TopicsDone,
                sensitive_consent: bool = False) -> None:
    """Register a step of topic toggles and "Xong"; the selection is kept in data["topics"].

    `sensitive_consent`: the person chooses topics for themselves, so choosing a sensitive one (political
    opinions) first asks for its consent, in a step of its own.
    """
    key = step_key(flow, step)
    consent_step = f"{step}_sens"

    async def prompt(ctx: Ctx) -> None:
        chosen = set(ctx.data.get("topics", []))
        buttons = [
            Option(ctx.t("topics.on" if topic.id in chosen else "topics.off", name=topic.name(ctx.t.language)),
                   cb(key, "t", topic.id))
            for topic in await ctx.store.topics.all()
        ]
        rows = [*_grid(buttons, 1), (Option(ctx.t("topics.done"), cb(key, "done")),)]
        ctx.say(ctx.t(prompt_key), rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("t",))

    async def handle(ctx: Ctx) -> None:
        args = ctx.choice
        if args == ("done",):
            await then(ctx, set(ctx.data.get("topics", [])))
        elif len(args) == 2 and args[0] == "t" and args[1].isdigit():
            topic = await ctx.store.topics.get(int(args[1]))
            if topic is None:
                await ctx.reask(ctx.stale_key)
                return
            chosen = set(ctx.data.get("topics", []))
            if (sensitive_consent and topic.sensitive and topic.id not in chosen
                    and not await has_consent(ctx, "sensitive")):
                await ctx.goto(flow, consent_step, pending_topic=topic.id)
                return
            chosen ^= {topic.id}
            ctx.data["topics"] = sorted(chosen)
            ctx.dirty = True
            await prompt(ctx)
        elif ctx.inbound.kind == "choice":
            await ctx.reask(ctx.stale_key)
        else:
            await ctx.reask("topics.use_buttons")

    registry.step(flow, step, prompt)(handle)
    if not sensitive_consent:
        return

    async def consent_prompt(ctx: Ctx) -> None:
        ck = step_key(flow, consent_step)
        ctx.say(ctx.t("consent.sensitive"), [
            (Option(ctx.t("consent.yes"), cb(ck, "y")), Option(ctx.t("consent.no"), cb(ck, "n"))),
            (Option(ctx.t("consent.read_notice"), cb(ck, "more")),),
        ])

    async def consent_handle(ctx: Ctx) -> None:
        args = ctx.choice
        if args == ("more",):
            ctx.say(ctx.t("privacy.notice", operator=ctx.settings.operator_name,
                          months=ctx.settings.retention_months))
            await consent_prompt(ctx)
            return
        if args not in (("y",), ("n",)):
            await ctx.wrong()
            return
        granted = args == ("y",)
        await record_consent(ctx, "sensitive", granted)
        topic = await ctx.store.topics.get(int(ctx.data.pop("pending_topic")))
        if granted and topic is not None:
            ctx.data["topics"] = sorted({*ctx.data.get("topics", []), topic.id})
            ctx.say(ctx.t("consent.recorded_yes"))
        elif topic is not None:
            ctx.say(ctx.t("consent.sensitive_declined", topic=topic.name(ctx.t.language)))
        await ctx.goto(flow, step)

    registry.step(flow, consent_step, consent_prompt)(consent_handle)
