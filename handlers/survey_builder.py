"""An admin makes a survey in the chat: title, introduction, closing day, named or anonymous, then questions one
by one (kind, text, choices), a preview, and publish. What YAML can say beyond that (English texts, an audience,
show_if, a reminder) is for `danvan survey load` (docs/surveys/README.md). Nothing is saved before «Đăng»."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from handlers.base import ADMIN, Ctx, Option, allowed, cb, registry, step_key
from messages import Key, join
from storage.surveys import INTRO, LABEL, MAX_CHOICES, MAX_QUESTIONS, QUESTION, TITLE, Choice, NewSurvey, Question

FLOW = "svb"
registry.flow(FLOW, roles=ADMIN)
KINDS = ("single", "multiple", "yesno", "scale", "number", "text")  # a place question needs YAML's audience
DAY = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
RANGE = re.compile(r"^\s*(-?\d{1,9})\s*[-–—]\s*(-?\d{1,9})\s*$")
MAX_DAYS = 90


def _key(step: str) -> str:
    return step_key(FLOW, step)


def _questions(ctx: Ctx) -> list[dict]:
    return ctx.data.get("questions") or []


async def _complete(ctx: Ctx, *fields: str) -> bool:
    """Whether the draft has `fields` (a draft from an older version, or a forged one, may not): if not, the
    survey is begun again."""
    if all(ctx.data.get(f) for f in fields):
        return True
    ctx.conversation = None
    await ctx.goto(FLOW, "title", questions=[])
    return False


@registry.action("svb", roles=ADMIN)
async def new_survey_button(ctx: Ctx) -> None:
    """«Tạo khảo sát» under /khaosat."""
    ctx.conversation = None
    await ctx.goto(FLOW, "title", questions=[])


def _text_step(step: str, low: int, high: int, then: str):
    async def prompt(ctx: Ctx) -> None:
        ctx.say(ctx.t(f"survey_builder.ask_{step}", low=low, high=high))

    async def handle(ctx: Ctx) -> None:
        if ctx.inbound.kind != "text":
            await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "survey_builder.expect_text")
            return
        text = ctx.inbound.text.strip()
        if not low <= ctx.length(text) <= high:
            await ctx.reask("survey_builder.length", low=low, high=high, length=ctx.length(text))
            return
        await ctx.goto(FLOW, then, **{step: text})

    registry.step(FLOW, step, prompt)(handle)


_text_step("title", 3, TITLE, "intro")
_text_step("intro", 10, INTRO, "closes")


async def _closes_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("survey_builder.ask_closes", days=MAX_DAYS))


@registry.step(FLOW, "closes", _closes_prompt)
async def _closes_handle(ctx: Ctx) -> None:
    match = DAY.match(ctx.inbound.text) if ctx.inbound.kind == "text" else None
    try:
        day = date(int(match.group(3)), int(match.group(2)), int(match.group(1))) if match else None
    except ValueError:
        day = None
    today = ctx.now.astimezone(ctx.settings.tz).date()
    if day is None or not today <= day <= today + timedelta(days=MAX_DAYS):
        await ctx.reask("survey_builder.bad_day", days=MAX_DAYS)
        return
    await ctx.goto(FLOW, "anon", closes=day.isoformat())


async def _anon_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("survey_builder.ask_anonymous"),
            [ctx.row(_key("anon"), ("survey_builder.anonymous", "a"), ("survey_builder.named", "n"))])


@registry.step(FLOW, "anon", _anon_prompt)
async def _anon_handle(ctx: Ctx) -> None:
    if ctx.choice not in (("a",), ("n",)):
        await ctx.wrong()
        return
    await ctx.goto(FLOW, "kind", anonymous=ctx.choice == ("a",))


# ---- the questions ------------------------------------------------------------------------------------------


async def _kind_prompt(ctx: Ctx) -> None:
    count = len(_questions(ctx))
    rows = [ctx.row(_key("kind"), *((f"survey_builder.kind_{k}", k) for k in KINDS[i:i + 2]))
            for i in range(0, len(KINDS), 2)] if count < MAX_QUESTIONS else []
    if count:
        rows.append(ctx.row(_key("kind"), ("survey_builder.preview", "done")))
    ctx.say(ctx.t("survey_builder.ask_kind", n=count + 1), rows)


@registry.step(FLOW, "kind", _kind_prompt)
async def _kind_handle(ctx: Ctx) -> None:
    if ctx.choice == ("done",) and _questions(ctx):
        await ctx.goto(FLOW, "preview")
    elif len(ctx.choice) == 1 and ctx.choice[0] in KINDS and len(_questions(ctx)) < MAX_QUESTIONS:
        await ctx.goto(FLOW, "question", kind=ctx.choice[0])
    else:
        await ctx.wrong()


async def _question_prompt(ctx: Ctx) -> None:
    if ctx.data.get("kind") not in KINDS:
        await ctx.goto(FLOW, "kind")
        return
    ctx.say(ctx.t("survey_builder.ask_question", n=len(_questions(ctx)) + 1,
                  kind=Key(f"survey_builder.kind_{ctx.data['kind']}"), high=QUESTION))


@registry.step(FLOW, "question", _question_prompt)
async def _question_handle(ctx: Ctx) -> None:
    if ctx.inbound.kind != "text":
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "survey_builder.expect_text")
        return
    text = " ".join(ctx.inbound.text.split())
    if not 3 <= ctx.length(text) <= QUESTION:
        await ctx.reask("survey_builder.length", low=3, high=QUESTION, length=ctx.length(text))
        return
    kind = ctx.data.get("kind")
    if kind not in KINDS:
        await ctx.goto(FLOW, "kind")
    elif kind in ("single", "multiple", "number"):
        await ctx.goto(FLOW, "choices", text=text)
    else:
        await _add(ctx, {"kind": kind, "text": text})


async def _choices_prompt(ctx: Ctx) -> None:
    if ctx.data.get("kind") not in ("single", "multiple", "number") or not ctx.data.get("text"):
        await ctx.goto(FLOW, "kind")
        return
    number = ctx.data["kind"] == "number"
    ctx.say(ctx.t("survey_builder.ask_range" if number else "survey_builder.ask_choices", high=MAX_CHOICES,
                  limit=LABEL))


@registry.step(FLOW, "choices", _choices_prompt)
async def _choices_handle(ctx: Ctx) -> None:
    if ctx.data.get("kind") not in ("single", "multiple", "number") or not ctx.data.get("text"):
        await ctx.goto(FLOW, "kind")
    elif ctx.inbound.kind != "text":
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "survey_builder.expect_text")
    elif ctx.data["kind"] == "number":
        match = RANGE.match(ctx.inbound.text)
        if match is None or int(match.group(1)) >= int(match.group(2)):
            await ctx.reask("survey_builder.bad_range")
            return
        await _add(ctx, {"kind": "number", "text": ctx.data["text"], "low": int(match.group(1)),
                         "high": int(match.group(2))})
    else:
        await _choices(ctx)


async def _choices(ctx: Ctx) -> None:
    labels = [" ".join(line.split()) for line in ctx.inbound.text.splitlines() if line.strip()]
    if not 2 <= len(labels) <= MAX_CHOICES or any(len(label) > LABEL for label in labels) \
            or len(set(labels)) != len(labels):
        await ctx.reask("survey_builder.bad_choices", high=MAX_CHOICES, limit=LABEL)
        return
    await _add(ctx, {"kind": ctx.data["kind"], "text": ctx.data["text"], "choices": labels})


async def _add(ctx: Ctx, question: dict) -> None:
    ctx.data["questions"] = [*_questions(ctx), question]
    ctx.say(ctx.t("survey_builder.added", n=len(_questions(ctx))))
    await ctx.goto(FLOW, "kind")


# ---- preview and publish --------------------------------------------------------------------------------------


def _survey(ctx: Ctx, stem: str) -> NewSurvey:
    """The survey drafted, its code `stem` (storage numbers it when it is written)."""
    questions = []
    for n, q in enumerate(_questions(ctx), start=1):
        choices = tuple(Choice(str(i), label) for i, label in enumerate(q.get("choices", ()), start=1))
        if q["kind"] == "scale":
            choices = tuple(Choice(str(i), str(i)) for i in range(1, 6))
        questions.append(Question(f"q{n}", q["kind"], q["text"], None, True, choices, q.get("low"), q.get("high")))
    closes = datetime.combine(date.fromisoformat(ctx.data["closes"]), time(23, 59), tzinfo=ctx.settings.tz)
    return NewSurvey(stem, ctx.data["title"], ctx.data["intro"], ctx.now, closes, tuple(questions),
                     anonymous=bool(ctx.data.get("anonymous")))


async def _preview_prompt(ctx: Ctx) -> None:
    if not await _complete(ctx, "title", "intro", "closes", "questions"):
        return
    lines = []
    for n, q in enumerate(_questions(ctx), start=1):
        detail = ", ".join(q.get("choices", ())) or (f"{q['low']}–{q['high']}" if q["kind"] == "number" else "")
        lines.append(ctx.t("survey_builder.preview_line", n=n, text=q["text"],
                           kind=Key(f"survey_builder.kind_{q['kind']}"), detail=detail))
    closes = date.fromisoformat(ctx.data["closes"]).strftime("%d/%m/%Y")
    ctx.say(ctx.t("survey_builder.preview_text", title=ctx.data["title"], intro=ctx.data["intro"], closes=closes,
                  anonymous=Key("survey.is_anonymous" if ctx.data.get("anonymous") else "survey.is_named"),
                  questions=join("\n", lines)),
            [ctx.row(_key("preview"), ("survey_builder.publish", "pub"), ("survey_builder.more", "more")),
             ctx.row(_key("preview"), ("survey_builder.discard", "drop"))])


@registry.step(FLOW, "preview", _preview_prompt)
async def _preview_handle(ctx: Ctx) -> None:
    if ctx.choice == ("more",) and len(_questions(ctx)) < MAX_QUESTIONS:
        await ctx.goto(FLOW, "kind")
    elif ctx.choice == ("drop",):
        ctx.finish()
        ctx.say(ctx.t("survey_builder.discarded"))
    elif ctx.choice == ("pub",) and await _complete(ctx, "title", "intro", "closes", "questions"):
        await _publish(ctx)
    else:
        await ctx.wrong()


async def _publish(ctx: Ctx) -> None:
    if not allowed(ctx.user, ADMIN):  # the role checked again where the survey is written
        await ctx.audit("denied", "survey:publish")
        ctx.finish()
        ctx.say(ctx.t("common.not_allowed"))
        return
    stem = f"ks-{ctx.now.astimezone(ctx.settings.tz):%y%m%d}"
    survey_id, code = await ctx.store.surveys.add(_survey(ctx, stem), ctx.now)
    await ctx.audit("survey.created", f"survey:{code}", questions=len(_questions(ctx)))
    ctx.finish()
    ctx.say(ctx.t("survey_builder.published", code=code, links="\n".join(ctx.deep_links(f"s_{code}"))),
            [(Option(ctx.t("survey_results.invite"), cb("svinv", survey_id)),),
             (Option(ctx.t("survey.results_button", title=ctx.t("survey_builder.this")), cb("svr", survey_id)),)])
