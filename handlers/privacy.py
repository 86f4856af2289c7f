"""/quyenriengtu (the notice), /dulieu (export everything held about me), /xoadulieu (erase)."""

from __future__ import annotations

import html
import json

from handlers import dvk, surveys
from handlers.base import Ctx, Document, Notice, Option, cb, registry, step_key
from handlers.consent import consent_version
from handlers.inbox import responsible_cadres
from handlers.pickers import locality_name
from messages import Key, Texts, join
from storage.clock import parse
from storage.users import Erasure

FLOW = "del"
registry.flow(FLOW)


@registry.command("quyenriengtu", "privacy")
async def privacy_notice(ctx: Ctx) -> None:
    ctx.say(ctx.t("privacy.notice", operator=ctx.settings.operator_name, months=ctx.settings.retention_months))


@registry.command("dulieu", "mydata")
async def export_data(ctx: Ctx) -> None:
    user, store = ctx.user, ctx.store
    if await _holds_nothing(ctx):
        ctx.say(ctx.t("privacy.export_nothing"))
        return
    locality = await store.localities.get(user.locality_id) if user.locality_id else None
    topics = {t.id: t for t in await store.topics.all()}
    cases = await _cases(ctx, topics)
    export = {
        "exported_at": ctx.now.isoformat(timespec="seconds"),
        "controller": ctx.settings.operator_name,
        "profile": {
            "channel": user.channel,
            "account_id": user.external_id,
            "display_name": user.display_name,
            "language": user.language,
            "role": user.role,
            "unit": user.unit_name,
            "locality": {"code": locality.code, "name": await _place(ctx, locality.id)} if locality else None,
            "receives_news": user.news_enabled,
            "joined_at": user.created_at,
        },
        "linked_accounts": [await _linked(ctx, other_id) for other_id, _, _ in await store.links.linked(user.id)],
        "topics": [topics[i].name_vi for i in sorted(await store.users.topic_ids(user.id)) if i in topics],
        "consents": await _consents(ctx, user.id),
        "conversation": (
            {"flow": ctx.conversation.flow, "step": ctx.conversation.step, "draft": ctx.conversation.data}
            if ctx.conversation else None
        ),
        "case_draft": await store.cases.draft(user.id),
        "cases": cases,
        "announcements": [{"broadcast": b, "scheduled_at": at, "status": status}
                          for b, at, status in await store.broadcasts.of_user(user.id)],
        "surveys": await surveys.export(ctx),
        "campaigns_opened": [{"campaign": code, "at": at} for code, at in await store.campaigns.opened_by(user.id)],
        "actions_as_staff": [
            {"at": e.at, "action": e.action, "target": e.target} for e in await store.audit.by_actor(user.id)
        ],
    }
    export["dan_van_kheo"] = await dvk.export(ctx)
    if user.role != "citizen":
        scope = await store.roles.scope(user.id)
        export["scope"] = {
            "localities": [await _place(ctx, i) for i in sorted(scope.locality_ids)],
            "topics": [topics[i].name_vi for i in sorted(scope.topic_ids) if i in topics],
        }
        digest = await store.digests.get(user.id, ctx.now)
        export["digest_settings"] = {"mode": digest.mode, "at_minute": digest.at_minute, "weekday": digest.weekday,
                                     "skip_empty": digest.skip_empty}
        tasks = {t.id: t.title for t in await store.tasks.all()}
        export["task_reports"] = [
            {"task": tasks.get(r.task_id), "done_at": r.done_at, "note": r.note, "file": r.filename or r.sha256}
            for r in (await store.tasks.reports_of(user.id)).values()
        ]
    await _summary(ctx, export)
    content = json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")
    ctx.say(ctx.t("privacy.export_caption"),
            document=Document("du-lieu-cua-toi.json", content, "application/json"))


SUMMARY_CASES = 20  # the chat lists this many cases; the document holds them all


async def _summary(ctx: Ctx, export: dict) -> None:
    """The export as a person reads it in the chat: who, where, topics, consents with dates, cases."""
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
    ctx.say(t("privacy.summary", name=profile["display_name"] or none, channel=profile["channel"],
              place=profile["locality"]["name"] if profile["locality"] else none,
              topics=", ".join(export["topics"]) or none, consents=join("\n", consents) or none,
              cases=join("\n", cases) or none))


async def _place(ctx: Ctx, locality_id: int | None) -> str | None:
    """A locality's full path in plain text ("Thôn Long Hưng, xã Hải Lăng, tỉnh Quảng Trị")."""
    return html.unescape(await locality_name(ctx, locality_id, province=True)) if locality_id else None


async def _holds_nothing(ctx: Ctx) -> bool:
    """Someone who never accepted a purpose, sent nothing and answered nothing: only their chat id is kept."""
    store, user = ctx.store, ctx.user
    return (not user.consented and user.role == "citizen" and not await store.users.consent_history(user.id)
            and not (await store.cases.of_user(user.id, 0, 1))[0] and await store.cases.draft(user.id) is None)


async def _consents(ctx: Ctx, user_id: int) -> list[dict]:
    return [{"purpose": c.purpose, "granted": c.granted, "text_version": c.text_version, "at": c.at}
            for c in await ctx.store.users.consent_history(user_id)]


async def _linked(ctx: Ctx, user_id: int) -> dict:
    """An account on another channel linked to this one: what it still holds from before the link (its name, its
    locality, its consents where the account kept had its own) is the person's too."""
    other = await ctx.store.users.get(user_id)
    locality = await ctx.store.localities.get(other.locality_id) if other.locality_id else None
    return {"channel": other.channel, "account_id": other.external_id, "display_name": other.display_name,
            "locality": {"code": locality.code, "name": await _place(ctx, locality.id)} if locality else None,
            "joined_at": other.created_at, "consents": await _consents(ctx, user_id)}


async def _cases(ctx: Ctx, topics: dict) -> list[dict]:
    """The person's own cases, anonymous ones included, with their files (described, not attached) and the
    history they can see (internal notes of the cadres are the unit's, not the person's)."""
    store = ctx.store
    cases, _total = await store.cases.of_user(ctx.user.id, 0, 1_000_000)
    out = []
    for case in reversed(cases):
        out.append({
            "code": case.code, "kind": case.kind, "topic": topics[case.topic_id].name_vi if case.topic_id in topics
            else None, "locality": await _place(ctx, case.locality_id), "anonymous": case.anonymous,
            "urgent": case.urgent, "content": case.content, "status": case.status, "created_at": case.created_at,
            "answered_at": case.answered_at, "closed_at": case.closed_at, "rating": case.rating,
            "files": [{"kind": a.kind, "filename": a.filename, "size": a.size, "sha256": a.sha256,
                       "location": [a.latitude, a.longitude] if a.latitude is not None else None}
                      for a in await store.cases.attachments(case.id)],
            "history": [{"at": e.at, "event": e.kind, "text": e.body, "unit": e.unit}
                        for e in await store.cases.events(case.id, internal=False)],
        })
    return out


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
    if content:
        await dvk.erasing(ctx)
    # The marker is read by cadres, in the province's language.
    erased = await ctx.store.users.erase(ctx.user.id, version, ctx.now, content=content,
                                         marker=Texts("vi")("privacy.erased_marker"), notices=notices)
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
