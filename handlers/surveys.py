"""/khaosat: a person answers the surveys open to them, one question at a time; staff read the results.

consent (opinions; sensitive too for a political survey) → place (the profile's, else asked) → the questions,
"Câu 3/8", each answer kept at once so that a person who leaves resumes where they stopped → done. One
response per person, changeable until the survey closes. A choice marked `offer_report` offers, right
there, a phản ánh pre-filled with the survey and the answer (the case flow, handlers/cases.py).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from handlers import cases
from handlers.base import Ctx, Option, cb, registry, step_key
from handlers.broadcast import plan_start
from handlers.consent import has_consent, record_consent
from handlers.digest import Period, Section
from handlers.features import Buttons, Command, Feature
from handlers.pickers import locality_name, locality_steps
from messages import Key, Texts, cut, join
from storage import Store
from storage.broadcasts import Broadcast, NewBroadcast
from storage.clock import iso, parse
from storage.localities import Locality
from storage.surveys import CHOICE_KINDS, KEPT, Question, Response, Survey, erase
from storage.text import fold
from storage.users import User

FLOW = "sv"
registry.flow(FLOW)
MAX_TEXT = 500
NUMBERS = re.compile(r"^\s*\d+(\s*[,;]\s*\d+|\s+\d+)*\s*$")  # "1, 3" or "1 3": a multiple choice typed
# A number question asks for a whole number, typed the Vietnamese way: dots group thousands ("12.500"). A comma is
# the decimal mark ("2,5"), and so is a dot that does not group three digits ("2.5", the English way): such a number
# is refused with a word on why, never read as 25.
WHOLE = re.compile(r"-?([1-9]\d{0,2}(\.\d{3})+|\d{1,9})")  # "0.500" is a decimal, not 500
DECIMAL = re.compile(r"-?(\d{1,3}(\.\d{3})+|\d+)[.,]\d+")
TYPED = ("number", "text")  # answered by typing: on a channel without buttons they show no numbered options
REPORT_TOPIC = "an-sinh"  # where a report offered by a survey goes when the survey names no topic
DIGEST_SURVEYS = 10  # listed in a digest; the results buttons of the first few (they share one row)
DIGEST_BUTTONS = 3


def _key(step: str) -> str:
    return step_key(FLOW, step)


def _words(ctx: Ctx, key: str) -> set[str]:
    return {fold(w) for w in ctx.t.plain(key).split("|")}


# ---- which questions a person sees ---------------------------------------------------------------------


def visible(survey: Survey, answers: dict[str, tuple[str, ...]]) -> list[Question]:
    """The questions shown, given the answers so far: one shown only when an earlier (shown) answer is one of
    its values."""
    shown: list[Question] = []
    keys: set[str] = set()
    for q in survey.questions:
        if q.show_if is None or (q.show_if[0] in keys and set(answers.get(q.show_if[0], ())) & set(q.show_if[1])):
            shown.append(q)
            keys.add(q.key)
    return shown


def choices_of(t: Texts, q: Question) -> list[tuple[str, str]]:
    """(value, label) of a question answered by choosing, in the reader's language."""
    if q.kind == "yesno":
        return [("yes", t("survey.yes")), ("no", t("survey.no"))]
    return [(c.key, c.label(t.language)) for c in q.choices]


async def shown_answer(ctx: Ctx, q: Question, values: tuple[str, ...]) -> str:
    if not values:
        return ctx.t("survey.skipped")
    if q.kind in CHOICE_KINDS:
        labels = dict(choices_of(ctx.t, q))
        return ", ".join(labels.get(v, v) for v in values)
    if q.kind == "locality":
        return await locality_name(ctx, int(values[0])) if values[0].isdigit() else values[0]
    return values[0]


# ---- starting ------------------------------------------------------------------------------------------


@registry.command("khaosat", "survey")
async def surveys_command(ctx: Ctx) -> None:
    """The surveys open to this person; staff also see every survey's results."""
    surveys = await ctx.store.surveys.open_for(ctx.user.id, ctx.now)
    rows = [(Option(s.title(ctx.t.language)[:60], cb("sv", s.id)),) for s in surveys]
    if ctx.user.is_staff:
        rows += [(Option(ctx.t("survey.results_button", title=s.title(ctx.t.language)[:50]), cb("svr", s.id)),)
                 for s in (await ctx.store.surveys.all())[:20]]
    if ctx.user.role == "admin":
        rows.append((Option(ctx.t("survey_builder.create"), cb("svb")),))  # handlers/survey_builder.py
    ctx.say(ctx.t("survey.list" if rows else "survey.none_open"), rows)


@registry.action("sv")
async def survey_button(ctx: Ctx) -> None:
    """«Trả lời khảo sát»: from the list, an invitation, a reminder or a deep link."""
    survey = await ctx.store.surveys.get(int(ctx.args[0])) if len(ctx.args) == 1 and ctx.args[0].isdigit() else None
    if survey is None:
        ctx.say(ctx.t(ctx.stale_key))
        return
    ctx.conversation = None
    ctx.dirty = True
    await start_survey(ctx, survey)


async def deep_link(ctx: Ctx, code: str) -> bool:
    """/start s_<code>: the survey's introduction and its button (the person may first have to onboard)."""
    survey = await ctx.store.surveys.by_code(code)
    if survey is None:
        return False
    ctx.say(ctx.t("survey.invitation", title=survey.title(ctx.t.language), intro=survey.intro(ctx.t.language),
                  closes=ctx.local(parse(survey.closes_at))),
            [(Option(ctx.t("survey.answer_button"), cb("sv", survey.id)),)])
    return True


async def start_survey(ctx: Ctx, survey: Survey) -> None:
    if not survey.is_open(ctx.now):
        ctx.finish()
        ctx.say(ctx.t("survey.closed" if survey.closes_at <= iso(ctx.now) else "survey.not_yet",
                      title=survey.title(ctx.t.language)))
        return
    # Someone who has not onboarded yet (a poster's QR code) has no topics to be in an audience by: they may answer.
    if not await ctx.store.surveys.in_audience(survey, ctx.user.id) and ctx.user.onboarded:
        ctx.finish()
        ctx.say(ctx.t("survey.not_for_you", title=survey.title(ctx.t.language)))
        return
    if not await has_consent(ctx, "opinions"):
        await ctx.goto(FLOW, "consent", survey=survey.id)
        return
    if survey.political and not await has_consent(ctx, "sensitive"):
        await ctx.goto(FLOW, "sensitive", survey=survey.id)
        return
    response = await ctx.store.surveys.response(survey.id, ctx.user.id)
    if response is None:
        if ctx.user.locality_id is None:
            await ctx.goto(FLOW, "commune", survey=survey.id, page=0)
            return
        await _begin(ctx, survey, ctx.user.locality_id)
        return
    if response.finished_at is not None:
        await ctx.goto(FLOW, "done", survey=survey.id)
        return
    shown = visible(survey, response.answers)
    at = next((q for q in shown if q.key == response.position), None) or _first_unanswered(shown, response)
    ctx.say(ctx.t("survey.resume", title=survey.title(ctx.t.language)))
    await ctx.goto(FLOW, "q", survey=survey.id, q=at.key)


def _first_unanswered(shown: list[Question], response: Response) -> Question:
    return next((q for q in shown if q.key not in response.answers), shown[-1])


async def _begin(ctx: Ctx, survey: Survey, locality_id: int | None) -> None:
    place = await ctx.store.localities.get(locality_id) if locality_id else None
    commune = village = None
    if place is not None and place.level >= 2:
        commune, village = place.parent_id, place.id
    elif place is not None and place.level == 1:
        commune = place.id
    first = survey.questions[0]
    await ctx.store.surveys.start(survey.id, ctx.user.id, commune, village, first.key, ctx.now)
    ctx.say(ctx.t("survey.intro", title=survey.title(ctx.t.language), intro=survey.intro(ctx.t.language),
                  count=len(visible(survey, {})), closes=ctx.local(parse(survey.closes_at)),
                  anonymous=Key("survey.is_anonymous" if survey.anonymous else "survey.is_named")))
    await ctx.goto(FLOW, "q", survey=survey.id, q=first.key)


async def _survey(ctx: Ctx) -> Survey | None:
    survey_id = ctx.data.get("survey")
    return await ctx.store.surveys.get(int(survey_id)) if isinstance(survey_id, int) else None


async def _consent_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("survey.needs_consent"), [ctx.row(_key("consent"), ("consent.yes", "y"), ("consent.no", "n"))])


@registry.step(FLOW, "consent", _consent_prompt)
async def _consent_handle(ctx: Ctx) -> None:
    await _consented(ctx, "opinions")


async def _sensitive_prompt(ctx: Ctx) -> None:
    ctx.say(ctx.t("consent.sensitive"), [ctx.row(_key("sensitive"), ("consent.yes", "y"), ("consent.no", "n"))])


@registry.step(FLOW, "sensitive", _sensitive_prompt)
async def _sensitive_handle(ctx: Ctx) -> None:
    await _consented(ctx, "sensitive")


async def _consented(ctx: Ctx, purpose: str) -> None:
    if ctx.choice == ("n",):
        ctx.finish()
        ctx.say(ctx.t("survey.no_consent"))
    elif ctx.choice == ("y",):
        await record_consent(ctx, purpose, True)
        survey = await _survey(ctx)
        ctx.conversation = None
        if survey is None:
            ctx.finish()
            ctx.say(ctx.t(ctx.stale_key))
            return
        await start_survey(ctx, survey)
    else:
        await ctx.wrong()


async def _place_chosen(ctx: Ctx, loc: Locality | None) -> None:
    survey = await _survey(ctx)
    if survey is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return
    await _begin(ctx, survey, loc.id if loc else None)


locality_steps(FLOW, then=_place_chosen)


# ---- one question -------------------------------------------------------------------------------------


async def _state(ctx: Ctx) -> tuple[Survey, Response, Question, list[Question]] | None:
    """The survey, the person's response, the current question and the questions shown; None (and the flow
    ended, the person told) when the survey closed or the question no longer exists."""
    survey = await _survey(ctx)
    response = await ctx.store.surveys.response(survey.id, ctx.user.id) if survey else None
    if survey is None or response is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return None
    if not survey.is_open(ctx.now):
        ctx.finish()
        ctx.say(ctx.t("survey.closed", title=survey.title(ctx.t.language)))
        return None
    shown = visible(survey, response.answers)
    q = next((q for q in shown if q.key == ctx.data.get("q")), None) or _first_unanswered(shown, response)
    return survey, response, q, shown


async def _question_prompt(ctx: Ctx) -> None:
    state = await _state(ctx)
    if state is None:
        return
    survey, response, q, shown = state
    key, language = _key("q"), ctx.t.language
    current = response.answers.get(q.key)
    lines = [ctx.t("survey.progress", n=shown.index(q) + 1, total=len(shown)), ctx.t("survey.question",
                                                                                    text=q.text(language))]
    if not q.required:
        lines.append(ctx.t("survey.optional"))
    rows: list[tuple[Option, ...]] = []
    if q.kind == "multiple":
        chosen = set(ctx.data.get("sel", current or ()))
        rows += [(Option(ctx.t("survey.on" if v in chosen else "survey.off", label=label), cb(key, q.key, "t", v)),)
                 for v, label in choices_of(ctx.t, q)]
        rows.append((Option(ctx.t("survey.multiple_done"), cb(key, q.key, "d")),))
        lines.append(ctx.t("survey.multiple_hint" if ctx.capabilities.buttons else "survey.multiple_hint_numbers"))
    elif q.kind in CHOICE_KINDS:
        rows += [(Option(label, cb(key, q.key, "c", v)),) for v, label in choices_of(ctx.t, q)]
    elif q.kind == "locality":
        found = ctx.data.get("found") or []
        places = [p for p in [await ctx.store.localities.get(i) for i in found] if p]
        if ctx.user.locality_id and not places:
            mine = await locality_name(ctx, ctx.user.locality_id)
            rows.append((Option(mine, cb(key, q.key, "c", ctx.user.locality_id)),))
        rows += [(Option(await locality_name(ctx, p.id), cb(key, q.key, "c", p.id)),) for p in places]
        lines.append(ctx.t("survey.locality_hint"))
    elif q.kind == "number":
        lines.append(ctx.t("survey.number_hint", low=q.low, high=q.high))
    else:
        lines.append(ctx.t("survey.text_hint", limit=MAX_TEXT))
    if current is not None:
        lines.append(ctx.t("survey.current", answer=await shown_answer(ctx, q, current)))
    nav = []
    if q.kind in TYPED and not ctx.capabilities.buttons:
        # a number typed here is the answer, not an option: going back or skipping is typed in words
        lines.append(ctx.t("survey.typed_nav" if not q.required else "survey.typed_back"))
    elif shown.index(q) > 0:
        nav.append(Option(ctx.t("common.back"), cb(key, q.key, "b")))
    if q.kind in TYPED and not ctx.capabilities.buttons:
        pass
    elif not q.required:
        nav.append(Option(ctx.t("survey.skip"), cb(key, q.key, "s")))
    elif current is not None and q.kind != "multiple":
        nav.append(Option(ctx.t("survey.keep"), cb(key, q.key, "k")))
    if nav:
        rows.append(tuple(nav))
    ctx.say("\n".join(lines), rows)


@registry.step(FLOW, "q", _question_prompt)
async def _question_handle(ctx: Ctx) -> None:
    state = await _state(ctx)
    if state is None:
        return
    survey, response, q, shown = state
    if ctx.inbound.kind == "choice":  # every button names its question: one of an earlier question is stale
        if ctx.args[:1] != (q.key,):
            await ctx.reask(ctx.stale_key)
            return
        ctx.args = ctx.args[1:]
    choice = ctx.choice
    if q.kind in TYPED and ctx.inbound.kind == "text":
        word = fold(ctx.inbound.text)
        choice = ("b",) if word in _words(ctx, "survey.word_back") else ("s",) \
            if word in _words(ctx, "survey.word_skip") else ()
    if choice == ("b",) and shown.index(q) > 0:
        previous = shown[shown.index(q) - 1]
        ctx.data.pop("sel", None)
        ctx.data.pop("found", None)
        await ctx.store.surveys.move(response.id, previous.key, ctx.now)
        await ctx.goto(FLOW, "q", q=previous.key)
        return
    if choice == ("s",) and not q.required:
        await _save(ctx, survey, response, q, ())
        return
    if choice == ("k",) and q.key in response.answers:
        await _save(ctx, survey, response, q, response.answers[q.key])
        return
    if q.kind == "multiple":
        await _multiple(ctx, survey, response, q)
    elif q.kind in CHOICE_KINDS:
        values = {v for v, _ in choices_of(ctx.t, q)}
        if len(choice) == 2 and choice[0] == "c" and choice[1] in values:
            await _save(ctx, survey, response, q, (choice[1],))
        else:
            await ctx.wrong()
    elif q.kind == "locality":
        await _locality(ctx, survey, response, q)
    elif ctx.inbound.kind != "text":
        await ctx.reask(ctx.stale_key if ctx.inbound.kind == "choice" else "survey.expect_text")
    elif q.kind == "number":
        typed = ctx.inbound.text.strip().replace(" ", "")
        whole = int(typed.replace(".", "")) if WHOLE.fullmatch(typed) else None
        if whole is None and DECIMAL.fullmatch(typed):
            await ctx.reask("survey.whole_number", low=q.low, high=q.high)
            return
        if whole is None or not q.low <= whole <= q.high:
            await ctx.reask("survey.bad_number", low=q.low, high=q.high)
            return
        await _save(ctx, survey, response, q, (str(whole),))
    else:
        written = " ".join(ctx.inbound.text.split())
        if not 1 <= ctx.length(written) <= MAX_TEXT:
            await ctx.reask("survey.text_length", limit=MAX_TEXT, length=ctx.length(written))
            return
        await _save(ctx, survey, response, q, (written,))


async def _multiple(ctx: Ctx, survey: Survey, response: Response, q: Question) -> None:
    values = [v for v, _ in choices_of(ctx.t, q)]
    chosen = list(ctx.data.get("sel", response.answers.get(q.key, ())))
    choice = ctx.choice
    if len(choice) == 2 and choice[0] == "t" and choice[1] in values:
        chosen = [v for v in values if (v in chosen) != (v == choice[1])]
        ctx.data["sel"] = chosen
        ctx.dirty = True
        await _question_prompt(ctx)
        return
    if ctx.inbound.kind == "text" and NUMBERS.match(ctx.inbound.text):
        # "1, 3" typed where there are no buttons: the numbers the choices were shown with
        shown = await ctx.store.conversations.shown(ctx.inbound.channel, ctx.inbound.chat_id)
        numbers = [int(n) for n in re.findall(r"\d+", ctx.inbound.text)]
        picked = [shown[n - 1][1] for n in numbers if 1 <= n <= len(shown)]
        toggles = {p.split(":")[-1] for p in picked if p.startswith(cb(_key("q"), q.key, "t", ""))}
        if len(toggles) != len(set(numbers)):
            await ctx.reask("survey.bad_numbers")
            return
        chosen = [v for v in values if v in toggles]
    elif choice != ("d",):
        await ctx.wrong()
        return
    if not chosen and q.required:
        await ctx.reask("survey.choose_one")
        return
    await _save(ctx, survey, response, q, tuple(chosen))


async def _locality(ctx: Ctx, survey: Survey, response: Response, q: Question) -> None:
    choice = ctx.choice
    if len(choice) == 2 and choice[0] == "c" and choice[1].isdigit():
        place = await ctx.store.localities.get(int(choice[1]))
        if place is not None and place.level >= 1:
            await _save(ctx, survey, response, q, (str(place.id),))
            return
    if ctx.inbound.kind == "text" and 2 <= len(ctx.inbound.text.strip()) <= 60:
        found = await ctx.store.localities.search(ctx.inbound.text, limit=8)
        found = [p for p in found if p.level >= 1]
        if not found:
            await ctx.reask("survey.place_not_found", query=ctx.inbound.text.strip())
            return
        ctx.data["found"] = [p.id for p in found]
        ctx.dirty = True
        await _question_prompt(ctx)
        return
    await ctx.wrong()


async def _save(ctx: Ctx, survey: Survey, response: Response, q: Question, values: tuple[str, ...]) -> None:
    """Keep the answer, forget those it now hides, and ask the next question (or say it is done)."""
    answers = {**response.answers, q.key: values}
    if not values:
        answers.pop(q.key)
    shown = visible(survey, answers)
    dropped = tuple(k for k in response.answers if k != q.key and k not in {s.key for s in shown})
    after = shown[shown.index(q) + 1:]
    following = after[0] if after else None  # already answered (back, or a change): shown with its answer
    finished = following is None
    await ctx.store.surveys.answer(response.id, survey.id, q.key, values, dropped,
                                   None if finished else following.key, ctx.now)
    ctx.data.pop("sel", None)
    ctx.data.pop("found", None)
    offered = [c for c in q.choices if c.offer_report and c.key in values]
    for choice in offered:
        ctx.say(ctx.t("survey.offer_report", answer=choice.label(ctx.t.language)),
                [(Option(ctx.t("survey.report_button"), cb("svrep", survey.id, q.key, choice.key)),)])
    if finished:
        ctx.say(ctx.t("survey.thanks", title=survey.title(ctx.t.language), closes=ctx.local(parse(survey.closes_at))))
        ctx.finish()
        return
    await ctx.goto(FLOW, "q", q=following.key)


# ---- a finished response: see it, change it ------------------------------------------------------------


async def _done_prompt(ctx: Ctx) -> None:
    survey = await _survey(ctx)
    response = await ctx.store.surveys.response(survey.id, ctx.user.id) if survey else None
    if survey is None or response is None:
        ctx.finish()
        ctx.say(ctx.t(ctx.stale_key))
        return
    lines = []
    for number, q in enumerate(visible(survey, response.answers), start=1):
        lines.append(ctx.t("survey.summary_line", n=number, question=q.text(ctx.t.language),
                           answer=await shown_answer(ctx, q, response.answers.get(q.key, ()))))
    ctx.say(ctx.t("survey.already_done", title=survey.title(ctx.t.language), closes=ctx.local(parse(survey.closes_at)),
                  answers=join("\n", lines)),
            [ctx.row(_key("done"), ("survey.change", "edit"), ("survey.leave", "ok"))])


@registry.step(FLOW, "done", _done_prompt)
async def _done_handle(ctx: Ctx) -> None:
    survey = await _survey(ctx)
    if ctx.choice == ("ok",) or survey is None:
        ctx.finish()
        ctx.say(ctx.t("survey.left"))
    elif ctx.choice == ("edit",):
        if not survey.is_open(ctx.now):
            ctx.finish()
            ctx.say(ctx.t("survey.closed", title=survey.title(ctx.t.language)))
            return
        await ctx.goto(FLOW, "q", q=survey.questions[0].key)
    else:
        await ctx.wrong()


# ---- from an answer to a report ------------------------------------------------------------------------


@registry.action("svrep")
async def report_button(ctx: Ctx) -> None:
    """«Gửi phản ánh» under an answer marked offer_report: the case flow, its text begun with the survey and the
    answer, its topic the survey's (or social welfare)."""
    args = ctx.args
    survey = await ctx.store.surveys.get(int(args[0])) if len(args) == 3 and args[0].isdigit() else None
    q = survey.question(args[1]) if survey else None
    choice = q.choice(args[2]) if q else None
    if choice is None or not choice.offer_report:
        ctx.say(ctx.t(ctx.stale_key))
        return
    topic_id = survey.audience.topics[0] if survey.audience.topics else None
    if topic_id is None:
        topic = await ctx.store.topics.by_code(REPORT_TOPIC)
        topic_id = topic.id if topic else None
    content = ctx.t.plain("survey.report_text", title=survey.title_vi, question=q.text_vi, answer=choice.vi)
    ctx.conversation = None
    ctx.dirty = True
    await cases.start_case(ctx, "phananh", carried={"text": content, "topic_id": topic_id})


# ---- invitations (the reminder: bot/survey_invites.py) ---------------------------------------------------

Quiet = tuple[time, time] | None


def invitation_texts(survey: Survey, key: str, tz: ZoneInfo) -> tuple[str, str]:
    closes = parse(survey.closes_at).astimezone(tz).strftime("%d/%m/%Y %H:%M")
    vi, en = (Texts(language)(key, title=survey.title(language), intro=survey.intro(language), closes=closes,
                              question=survey.questions[0].text(language)) for language in ("vi", "en"))
    return vi, en


async def invite(store: Store, survey: Survey, now: datetime, quiet: Quiet, tz: ZoneInfo,
                 by: int | None = None) -> Broadcast:
    """The invitation: a broadcast to the survey's audience, from when it opens (after quiet hours). A quick poll's
    announcement carries its question and choices; `by`, an admin in the chat, gets the report (with the
    poll's answers)."""
    text_vi, text_en = invitation_texts(survey, "survey.poll_invitation" if survey.poll else "survey.invitation", tz)
    start = plan_start(max(now, parse(survey.opens_at)), quiet, tz, False)
    new = NewBroadcast(text_vi=text_vi, text_en=text_en, scheduled_at=start, audience=survey.audience, created_by=by,
                       survey_id=survey.id)
    return await store.broadcasts.create(new, now)


# ---- quick polls: one question, its choices the announcement's buttons --------------------------------------


async def poll_options(store, survey_id: int, language: str) -> tuple[Option, ...]:
    """The buttons a quick poll's announcement carries; none for another survey."""
    survey = await store.surveys.get(survey_id)
    if survey is None or not survey.poll:
        return ()
    return tuple(Option(c.label(language), cb("svp", survey.id, c.key)) for c in survey.questions[0].choices)


@registry.action("svp")
async def poll_button(ctx: Ctx) -> None:
    """A quick poll's choice pressed under the announcement: kept at once (changed by pressing another while it
    is open); the consent, if not given yet, is asked first, and the question then asked again."""
    args = ctx.args
    survey = await ctx.store.surveys.get(int(args[0])) if len(args) == 2 and args[0].isdigit() else None
    q = survey.questions[0] if survey and survey.poll else None
    choice = q.choice(args[1]) if q else None
    if choice is None:
        ctx.say(ctx.t(ctx.stale_key))
        return
    ready = survey.is_open(ctx.now) and await has_consent(ctx, "opinions") \
        and (not survey.political or await has_consent(ctx, "sensitive"))
    if not ready:
        ctx.conversation = None
        ctx.dirty = True
        await start_survey(ctx, survey)
        return
    if await ctx.store.surveys.response(survey.id, ctx.user.id) is None:
        place = await ctx.store.localities.get(ctx.user.locality_id) if ctx.user.locality_id else None
        commune, village = ((place.parent_id, place.id) if place.level >= 2 else (place.id, None)) if place \
            else (None, None)
        await ctx.store.surveys.start(survey.id, ctx.user.id, commune, village, q.key, ctx.now)
    response = await ctx.store.surveys.response(survey.id, ctx.user.id)
    await ctx.store.surveys.answer(response.id, survey.id, q.key, (choice.key,), (), None, ctx.now)
    ctx.say(ctx.t("survey.poll_thanks", answer=choice.label(ctx.t.language),
                  closes=ctx.local(parse(survey.closes_at))))


async def survey_buttons(store, broadcast, t) -> tuple[tuple[Option, ...], ...]:
    """An invitation's buttons: a quick poll's choices, or «Trả lời khảo sát». A draft being composed invites to
    none."""
    survey_id = getattr(broadcast, "survey_id", None)
    if not survey_id:
        return ()
    poll = await poll_options(store, survey_id, t.language)
    return tuple((option,) for option in poll) or ((Option(t("survey.answer_button"), cb("sv", survey_id)),),)


# ---- a staff member's digest ---------------------------------------------------------------------------


async def places_for(store: Store, user: User) -> tuple[int, ...] | None:
    """The communes and villages whose responses a cadre may read; None for an admin (and a cadre of the whole
    province)."""
    if user.role == "admin":
        return None
    scope = await store.roles.scope(user.id)
    places = [await store.localities.get(i) for i in scope.locality_ids]
    if any(p is not None and p.level == 0 for p in places):
        return None
    return tuple(p.id for p in places if p is not None)


async def _reaches(store: Store, survey: Survey, places: tuple[int, ...] | None) -> bool:
    """Whether the survey asks people of these places: its audience's places hold one of them, or lie inside."""
    if places is None or not places:
        return places is None
    if not survey.audience.localities:  # the whole province
        return True
    mine = [p.path for p in [await store.localities.get(i) for i in places] if p]
    asked = [p.path for p in [await store.localities.get(i) for i in survey.audience.localities] if p]
    return any(a.startswith(m) or m.startswith(a) for a in asked for m in mine)


async def digest_section(period: Period) -> Section | None:
    """The surveys open now that ask people of the reader's scope, with the responses there so far."""
    store, t = period.store, period.t
    places = await places_for(store, period.user)
    surveys = [s for s in await store.surveys.open_at(period.now) if await _reaches(store, s, places)]
    if not surveys:
        return None
    lines = [t("survey.digest_title", count=len(surveys))]
    for survey in surveys[:DIGEST_SURVEYS]:
        begun, finished = await store.surveys.respondents(survey.id, places)
        lines.append(t("survey.digest_line", title=survey.title(t.language), finished=finished, begun=begun,
                       closes=parse(survey.closes_at).astimezone(period.tz).strftime("%d/%m/%Y")))
    return Section(lines, tuple(Option(t("survey.results_button", title=cut(s.title(t.language), 23)), cb("svr", s.id))
                                for s in surveys[:DIGEST_BUTTONS]))


# ---- what a person's export holds ----------------------------------------------------------------------


async def export(ctx: Ctx) -> dict:
    """The person's survey responses, for /dulieu (handlers/privacy.py)."""
    out = []
    for survey, response in await ctx.store.surveys.of_user(ctx.user.id):
        answers = {q.text_vi: [v for v in response.answers.get(q.key, ())] for q in survey.questions
                   if q.key in response.answers}
        out.append({"survey": survey.code, "title": survey.title_vi, "anonymous": survey.anonymous,
                    "finished_at": response.finished_at, "answers": answers})
    return {"surveys": out}


FEATURE = Feature("surveys", commands=(Command("khaosat", menu="menu.khaosat", place=35),), export=export,
                  exported=("survey_responses",), kept=KEPT, erase=erase,
                  buttons=(Buttons("survey", survey_buttons),), digest=digest_section)  # survey_answers: by response

