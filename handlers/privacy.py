"""/quyenriengtu (the notice), /dulieu (export everything held about me), /xoadulieu (erase)."""

from __future__ import annotations

import json

from handlers.base import Ctx, Document, Notice, Option, cb, registry, step_key
from handlers.consent import consent_version
from handlers.features import Command, Feature, features
from handlers.inbox import responsible_cadres
from messages import Key, Texts, channel_key, join
from storage.clock import parse
from storage.users import Erasure

FLOW = "del"
registry.flow(FLOW)


@registry.command("quyenriengtu", "privacy")
async def privacy_notice(ctx: Ctx) -> None:
    ctx.say(ctx.t("privacy.notice", operator=ctx.settings.operator_name, months=ctx.settings.retention_months))


@registry.command("dulieu", "mydata")
async def export_data(ctx: Ctx) -> None:
    if await _holds_nothing(ctx):
        ctx.say(ctx.t("privacy.export_nothing"))
        return
    await ctx.typing()
    export = {"exported_at": ctx.now.isoformat(timespec="seconds"), "controller": ctx.settings.operator_name}
    for feature in features:
        if feature.export:
            export.update(await feature.export(ctx) or {})
    await _summary(ctx, export)
    content = json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")
    ctx.say(ctx.t("privacy.export_caption"),
            document=Document("du-lieu-cua-toi.json", content, "application/json"))


SUMMARY_CASES = 20  # the chat lists this many cases; the document holds them all


async def _summary(ctx: Ctx, export: dict) -> None:
    """The export as a person reads it in the chat: who, where, topics, consents with dates, cases, and their
    "Dân vận khéo" nominations and votes, surveys answered and comments on draft documents, if any."""
    t, profile = ctx.t, export["profile"]
    consents = [t("privacy.summary_consent", purpose=Key(f"purpose.{c['purpose']}"),
                  answer=Key("privacy.summary_yes" if c["granted"] else "privacy.summary_no"),
                  at=ctx.local(parse(c["at"]))) for c in export["consents"]]
    cases = [t("privacy.summary_case", code=c["code"], kind=Key(f"case.kind_{c['kind']}"),
               status=Key(f"status.{c['status']}"), place=c["locality"] or t("common.none"))
             for c in export["cases"][:SUMMARY_CASES]]
    if len(export["cases"]) > SUMMARY_CASES:
        cases.append(t("privacy.summary_more_cases", count=len(export["cases"]) - SUMMARY_CASES))
    none = t("common.none")
    text = t("privacy.summary", name=profile["display_name"] or none, channel=channel_key(profile["channel"]),
             place=profile["locality"]["name"] if profile["locality"] else none,
             topics=", ".join(export["topics"]) or none, consents=join("\n", consents) or none,
             cases=join("\n", cases) or none)
    dvk_held = export["dan_van_kheo"]
    if dvk_held["nominations"] or dvk_held["votes_for"]:  # most people have none: no empty heading for them
        lines = [t("privacy.summary_nomination", code=m["code"], name=m["name"],
                   status=Key(f"dvk.status_{m['status']}"), place=m["locality"]) for m in dvk_held["nominations"]]
        if dvk_held["votes_for"]:
            lines.append(t("privacy.summary_votes", codes=", ".join(dvk_held["votes_for"])))
        text += "\n\n" + t("privacy.summary_nominations", nominations=join("\n", lines))
    surveys = [t("privacy.summary_survey_done", title=r["title"], at=ctx.local(parse(r["finished_at"])))
               if r["finished_at"] else t("privacy.summary_survey_open", title=r["title"])
               for r in export.get("surveys", ())]
    if surveys:
        text += "\n\n" + t("privacy.summary_surveys", surveys=join("\n", surveys))
    comments = export.get("consultations", {}).get("comments", ())
    if comments:
        text += "\n\n" + t("privacy.summary_comments", count=len(comments))
    ctx.say(text)


async def _holds_nothing(ctx: Ctx) -> bool:
    """Someone who never accepted a purpose, sent nothing and answered nothing: only their chat id is kept."""
    store, user = ctx.store, ctx.user
    return (not user.consented and user.role == "citizen" and not await store.users.consent_history(user.id)
            and not (await store.cases.of_user(user.id, 0, 1))[0] and await store.cases.draft(user.id) is None)


@registry.command("xoadulieu", "deletedata")
async def delete_data(ctx: Ctx) -> None:
    await ctx.goto(FLOW, "confirm")


async def _confirm_prompt(ctx: Ctx) -> None:
    key = step_key(FLOW, "confirm")
    cases, total = await ctx.store.cases.of_user(ctx.user.id, 0, 1_000_000)
    text = ctx.t("privacy.delete_confirm")
    options = [(Option(ctx.t("privacy.delete_yes"), cb(key, "yes")),)]
    if total:
        text += "\n\n" + ctx.t("privacy.delete_cases", count=total, open=sum(c.is_open for c in cases),
                                marker=ctx.t("privacy.erased_marker"))
        options.append((Option(ctx.t("privacy.delete_keep_content"), cb(key, "keep")),))
    options.append((Option(ctx.t("privacy.delete_no"), cb(key, "no")),))
    ctx.say(text + "\n\n" + ctx.t("privacy.delete_final"), options)


@registry.step(FLOW, "confirm", _confirm_prompt)
async def _confirm_handle(ctx: Ctx) -> None:
    choice = ctx.choice
    if choice == ("no",):
        ctx.finish()
        ctx.say(ctx.t("privacy.delete_kept"), edit=True)
        return
    if choice not in (("yes",), ("keep",)):
        await ctx.wrong()
        return
    content = choice == ("yes",)
    # What the cadres of each open case are told if it is withdrawn: found while the case still names its village,
    # kept in the outbox by the erasure's own transaction.
    cases, _total = await ctx.store.cases.of_user(ctx.user.id, 0, 1_000_000)
    notices = {c.id: [(cadre, Notice(cadre, "inbox.withdrawn", {"code": c.code}).dump())
                      for cadre in await responsible_cadres(ctx, c) if cadre != ctx.user.id]
               for c in cases if c.is_open and content}
    version = consent_version(ctx.t("privacy.delete_confirm"), ctx.t.language)
    # What each feature's withdrawn items tell their cadres, by feature and item: kept by the same transaction.
    told = {f.name: await f.erasing(ctx) for f in features if f.erasing} if content else {}
    # The chat's handled updates whose done mark still waits (storage/journal.py `done_soon`) are marked now, so that
    # the erasure takes them with the chat's other handled ones.
    await ctx.store.journal.flush()
    # The marker is read by cadres, in the province's language.
    erased = await ctx.store.users.erase(ctx.user.id, version, ctx.now, content=content,
                                         marker=Texts("vi")("privacy.erased_marker"), notices=notices,
                                         withdrawn_notices=told)
    ctx.conversation = None
    ctx.dirty = False  # erase() already removed the conversation row
    ctx.forget.extend(erased.chats)
    ctx.kept_notices.extend((Notice.load(user, text), notice_id) for notice_id, user, text in erased.notices)
    ctx.say(_erased(ctx, erased), edit=True)


def _erased(ctx: Ctx, erased: Erasure) -> str:
    """Exactly what went and what stays."""
    parts = [ctx.t("privacy.deleted", accounts=erased.accounts, sessions=erased.sessions, consents=erased.consents)]
    if erased.cases and erased.content:
        parts.append(ctx.t("privacy.deleted_content", cases=erased.cases, files=erased.files,
                           locations=erased.locations, marker=ctx.t("privacy.erased_marker")))
        if erased.withdrawn:
            parts.append(ctx.t("privacy.deleted_withdrawn", count=len(erased.withdrawn)))
    elif erased.cases:
        parts.append(ctx.t("privacy.deleted_unlinked", cases=erased.cases))
    parts.append(ctx.t("privacy.deleted_remains_cases" if erased.cases else "privacy.deleted_remains"))
    return "\n\n".join(parts)


FEATURE = Feature("privacy", commands=(Command("quyenriengtu", menu="menu.privacy", place=70), Command("dulieu"),
                                       Command("xoadulieu")))
