"""Staff: /phamvi (a cadre's scope), /moicanbo (an admin invites a cadre), /thuhoi (revoke a cadre), /canbo (an
admin changes a cadre's places and topics, no revoke-and-reinvite)."""

from __future__ import annotations

from datetime import datetime

from handlers.base import ADMIN, STAFF, Ctx, Option, allowed, cb, registry, step_key
from handlers.features import Command, Feature
from handlers.menu import show_menu
from handlers.pickers import cadre_rows, locality_name, locality_steps, place_path, topic_steps, turned_page
from messages import Safe, cut, join
from storage.localities import Locality
from storage.users import User


async def describe_scope(ctx: Ctx, options: list | None = None, *, user: User | None = None,
                         edit: bool = False) -> None:
    """The scope of `user` (the person writing by default)."""
    user = user or ctx.user
    scope = await ctx.store.roles.scope(user.id)
    places = [await locality_name(ctx, i) for i in sorted(scope.locality_ids)]
    topics = [t.name(ctx.t.language) for t in await ctx.store.topics.all() if t.id in scope.topic_ids]
    ctx.say(ctx.t("scope.summary", role=ctx.t(f"role.{user.role}"),
                  unit=user.unit_name or ctx.t("common.none"),
                  places=join("\n", (Safe(f"• {p}") for p in places)) or ctx.t("scope.everywhere"),
                  topics=", ".join(topics) or ctx.t("scope.all_topics")), options or (), edit=edit)


@registry.command("phamvi", "scope")
async def scope_command(ctx: Ctx) -> None:
    await describe_scope(ctx)


# ---- /moicanbo ---------------------------------------------------------------------------------------

INVITE = "inv"
registry.flow(INVITE, roles=ADMIN)


@registry.command("moicanbo", "invite")
async def invite_command(ctx: Ctx) -> None:
    await ctx.goto(INVITE, "scope", places=[])


async def _scope_prompt(ctx: Ctx) -> None:
    key = step_key(INVITE, "scope")
    chosen = [await locality_name(ctx, i) for i in ctx.data.get("places", [])]
    rows = [(Option(ctx.t("invite.add_place"), cb(key, "add")), Option(ctx.t("invite.whole_province"), cb(key, "all")))]
    if chosen:
        rows.append((Option(ctx.t("invite.next"), cb(key, "next")),))
    ctx.say(ctx.t("invite.ask_scope", places=join("\n", (Safe(f"• {p}") for p in chosen)) or ctx.t("common.none")),
            rows)


@registry.step(INVITE, "scope", _scope_prompt)
async def _scope_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("add",):
        await ctx.goto(INVITE, "commune", page=0)
    elif choice == ("all",):
        province = (await ctx.store.localities.children(None))[0]
        ctx.data["places"] = [province.id]
        await ctx.goto(INVITE, "topics", topics=[])
    elif choice == ("next",) and ctx.data.get("places"):
        await ctx.goto(INVITE, "topics", topics=[])
    else:
        await ctx.wrong()


async def _place_added(ctx: Ctx, loc: Locality | None) -> None:
    places = [p for p in ctx.data.get("places", []) if p != loc.id]
    ctx.data["places"] = [*places, loc.id]
    await ctx.goto(INVITE, "scope")


async def _invite_topics(ctx: Ctx, topic_ids: set[int]) -> None:
    await ctx.goto(INVITE, "unit")


locality_steps(INVITE, on_commune=_place_added, then=_place_added)
topic_steps(INVITE, prompt_key="invite.ask_topics", then=_invite_topics)


async def _unit_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("invite.ask_unit"))


@registry.step(INVITE, "unit", _unit_prompt)
async def _unit_handle(ctx: Ctx) -> None:
    if not allowed(ctx.user, ADMIN):  # re-checked where the invite is made
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    unit = " ".join(ctx.inbound.text.split()) if ctx.inbound.kind == "text" else ""
    if not 2 <= len(unit) <= 120:
        await ctx.reask("invite.unit_length")
        return
    places = [await ctx.store.localities.get(i) for i in ctx.data.get("places", [])]
    topics = [await ctx.store.topics.get(i) for i in ctx.data.get("topics", [])]
    token, invite = await ctx.store.roles.create_invite(
        [p.code for p in places if p], [t.code for t in topics if t], unit, ctx.user.id, ctx.now,
        ctx.settings.invite_ttl)
    await ctx.audit("invite.created", f"invite:{invite.id}", localities=list(invite.locality_codes),
                    topics=list(invite.topic_codes), unit=unit)
    ctx.finish()
    ctx.say(ctx.t("invite.created", links="\n".join(ctx.deep_links(f"i_{token}")), code=f"/start i_{token}",
                  expires=ctx.local(datetime.fromisoformat(invite.expires_at))))


# ---- /thuhoi -----------------------------------------------------------------------------------------

REVOKE = "rev"
registry.flow(REVOKE, roles=ADMIN)


@registry.command("thuhoi", "revoke")
async def revoke_command(ctx: Ctx) -> None:
    await ctx.goto(REVOKE, "pick", page=0)


async def _pick_prompt(ctx: Ctx) -> None:
    key = step_key(REVOKE, "pick")
    cadres = [u for u in await ctx.store.users.staff() if u.role == "cadre"]
    if not cadres:
        ctx.finish()
        ctx.say(ctx.t("revoke.none"))
        return
    rows, note = await cadre_rows(ctx, key, int(ctx.data.get("page", 0)))
    rows.append((Option(ctx.t("common.back"), cb(key, "back")),))
    ctx.say(ctx.t("revoke.ask") + note, rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("pg",))


@registry.step(REVOKE, "pick", _pick_prompt)
async def _pick_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if await turned_page(ctx, _pick_prompt):
        return
    if choice == ("back",):
        ctx.finish()
        await show_menu(ctx)
        return
    target = await ctx.store.users.get(int(choice[0])) if len(choice) == 1 and choice[0].isdigit() else None
    if target is None or target.role != "cadre":
        await ctx.wrong()
        return
    await ctx.goto(REVOKE, "confirm", target=target.id)


async def _confirm_prompt(ctx: Ctx) -> None:
    key = step_key(REVOKE, "confirm")
    target = await ctx.store.users.get(int(ctx.data["target"]))
    ctx.say(ctx.t("revoke.confirm", name=target.display_name or str(target.id), unit=target.unit_name or ""), [
        (Option(ctx.t("revoke.yes"), cb(key, "yes")), Option(ctx.t("common.back"), cb(key, "no"))),
    ])


@registry.step(REVOKE, "confirm", _confirm_prompt)
async def _confirm_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("no",):
        await ctx.goto(REVOKE, "pick", page=0)
        return
    if choice != ("yes",):
        await ctx.wrong()
        return
    if not allowed(ctx.user, ADMIN):
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    target_id = int(ctx.data["target"])
    await ctx.store.roles.revoke(target_id, ctx.now)
    await ctx.audit("cadre.revoked", f"user:{target_id}")
    ctx.finish()
    ctx.say(ctx.t("revoke.done"))
    ctx.role_changed.add(target_id)


# ---- /canbo: a cadre's places and topics, changed in place ---------------------------------------------

CADRES = "cbo"
registry.flow(CADRES, roles=ADMIN)


def _cbo(step: str) -> str:
    return step_key(CADRES, step)


@registry.command("canbo", "cadres")
async def cadres_command(ctx: Ctx) -> None:
    await ctx.goto(CADRES, "pick", page=0)


async def _cbo_pick_prompt(ctx: Ctx) -> None:
    rows, note = await cadre_rows(ctx, _cbo("pick"), int(ctx.data.get("page", 0)))
    if len(rows) == 0:
        ctx.finish()
        ctx.say(ctx.t("revoke.none"))
        return
    ctx.say(ctx.t("cadres.ask") + note, rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("pg",))


@registry.step(CADRES, "pick", _cbo_pick_prompt)
async def _cbo_pick_handle(ctx: Ctx) -> None:
    if await turned_page(ctx, _cbo_pick_prompt):
        return
    target = await _cadre(ctx, ctx.choice[0] if len(ctx.choice) == 1 else "")
    if target is None:
        await ctx.wrong()
        return
    await ctx.goto(CADRES, "card", target=target.id)


async def _cadre(ctx: Ctx, user_id: object) -> User | None:
    user = await ctx.store.users.get(int(user_id)) if str(user_id).isdigit() else None
    return user if user is not None and user.role == "cadre" else None


async def _card_prompt(ctx: Ctx) -> None:
    target = await _cadre(ctx, ctx.data.get("target"))
    if target is None:
        await ctx.goto(CADRES, "pick")
        return
    ctx.say(ctx.t("cadres.who", name=target.display_name or str(target.id)))
    await describe_scope(ctx, [ctx.row(_cbo("card"), ("cadres.places", "pl"), ("cadres.topics", "tp")),
                               ctx.row(_cbo("card"), ("common.back", "back"))], user=target)


@registry.step(CADRES, "card", _card_prompt)
async def _card_handle(ctx: Ctx) -> None:
    target = await _cadre(ctx, ctx.data.get("target"))
    if target is None or ctx.choice == ("back",):
        await ctx.goto(CADRES, "pick")
        return
    scope = await ctx.store.roles.scope(target.id)
    # `seen`: what the admin starts from, which the save expects to find (another admin may change it meanwhile).
    if ctx.choice == ("pl",):
        await ctx.goto(CADRES, "places", places=sorted(scope.locality_ids), seen=sorted(scope.locality_ids))
    elif ctx.choice == ("tp",):
        await ctx.goto(CADRES, "topics", topics=sorted(scope.topic_ids), seen=sorted(scope.topic_ids))
    else:
        await ctx.wrong()


async def _places_prompt(ctx: Ctx) -> None:
    key = _cbo("places")
    rows = [(Option(cut(ctx.t("cadres.remove", place=await locality_name(ctx, p)), 60), cb(key, "rm", p)),)
            for p in ctx.data.get("places", [])]
    rows += [ctx.row(key, ("invite.add_place", "add"), ("invite.whole_province", "all")),
             ctx.row(key, ("cadres.save", "save"), ("common.back", "back"))]
    ctx.say(ctx.t("cadres.ask_places"), rows, edit=ctx.inbound.kind == "choice" and ctx.args[:1] == ("rm",))


@registry.step(CADRES, "places", _places_prompt)
async def _places_handle(ctx: Ctx) -> None:
    choice, places = ctx.choice, list(ctx.data.get("places", []))
    if len(choice) == 2 and choice[0] == "rm" and choice[1].isdigit() and int(choice[1]) in places:
        ctx.data["places"] = [p for p in places if p != int(choice[1])]
        ctx.dirty = True
        await _places_prompt(ctx)
    elif choice == ("add",):
        await ctx.goto(CADRES, "commune", page=0)
    elif choice == ("all",):
        ctx.data["places"] = [(await ctx.store.localities.children(None))[0].id]
        await ctx.goto(CADRES, "places")
    elif choice == ("save",) and not places:
        await ctx.reask("cadres.no_place")
    elif choice == ("save",):
        await _save_scope(ctx, "places", set(places))
    elif choice == ("back",):
        await ctx.goto(CADRES, "card")
    else:
        await ctx.wrong()


async def _cbo_place_added(ctx: Ctx, loc: Locality | None) -> None:
    ctx.data["places"] = [*(p for p in ctx.data.get("places", []) if p != loc.id), loc.id]
    await ctx.goto(CADRES, "places")


async def _cbo_topics(ctx: Ctx, topic_ids: set[int]) -> None:
    await _save_scope(ctx, "topics", topic_ids)


locality_steps(CADRES, on_commune=_cbo_place_added, then=_cbo_place_added)
topic_steps(CADRES, prompt_key="cadres.ask_topics", then=_cbo_topics)


async def _save_scope(ctx: Ctx, part: str, chosen: set[int]) -> None:
    """The cadre's new places or topics (`part`), over those the admin started from; the other half of the scope
    stays as it is. When another admin changed this half meanwhile, nothing is written and the admin sees the scope
    as it is now."""
    target = await _cadre(ctx, ctx.data.get("target"))
    if target is None or not allowed(ctx.user, ADMIN):  # checked again where the scope is written
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    if not await ctx.store.roles.change_scope(target.id, part, set(ctx.data.get("seen", [])), chosen):
        # What the admin chose over several steps is not lost: the picker again, filled with it, over the scope as it
        # is now (read before it is shown: a change in between refuses the next save too, rather than being undone).
        scope = await ctx.store.roles.scope(target.id)
        ctx.say(ctx.t("cadres.changed_meanwhile"))
        await describe_scope(ctx, user=target)
        ctx.say(ctx.t(f"cadres.kept_{part}", chosen=await _chosen_names(ctx, part, chosen)))
        await ctx.goto(CADRES, part, seen=sorted(scope.locality_ids if part == "places" else scope.topic_ids),
                       **{part: sorted(chosen)})
        return
    scope = await ctx.store.roles.scope(target.id)
    codes = [loc.code for loc in [await ctx.store.localities.get(p) for p in sorted(scope.locality_ids)] if loc]
    await ctx.audit("cadre.scope", f"user:{target.id}", localities=codes, topics=sorted(scope.topic_ids))
    ctx.notify(target.id, "cadres.changed")
    ctx.say(ctx.t("cadres.saved"))
    await ctx.goto(CADRES, "card", target=target.id)


async def _chosen_names(ctx: Ctx, part: str, chosen: set[int]) -> str:
    if part == "places":
        return join("\n", [Safe(f"• {await locality_name(ctx, p)}") for p in sorted(chosen)])
    topics = [t.name(ctx.t.language) for t in await ctx.store.topics.all() if t.id in chosen]  # as the picker shows
    return ", ".join(topics) or ctx.t("scope.all_topics")


# Two features: a cadre's own scope sits with the other staff tools in the menus, managing cadres with the admin's.
async def export_scope(ctx: Ctx) -> dict | None:
    """A cadre's or admin's scope: where and what they answer for."""
    if ctx.user.role == "citizen":
        return None
    scope = await ctx.store.roles.scope(ctx.user.id)
    topics = {t.id: t for t in await ctx.store.topics.all()}
    return {"scope": {"localities": [await place_path(ctx, i) for i in sorted(scope.locality_ids)],
                      "topics": [topics[i].name_vi for i in sorted(scope.topic_ids) if i in topics]}}


SCOPE_FEATURE = Feature("scope", commands=(Command("phamvi", STAFF, menu="menu.scope", place=80),),
                        export=export_scope, exported=("cadre_localities", "cadre_topics"),
                        erased=(("cadre_localities", "user", None), ("cadre_topics", "user", None)))
CADRES_FEATURE = Feature("cadres", commands=(Command("moicanbo", ADMIN, menu="menu.invite", place=120),
                                             Command("thuhoi", ADMIN, menu="menu.revoke", place=130),
                                             Command("canbo", ADMIN, menu="menu.canbo", place=140)),
                         unexported={"invites": "who invited whom, the unit's record (the role is in profile)"},
                         kept={"invites": "who invited whom, the unit's record; the anonymous row names nobody"})
