"""A survey's results for admins, and for cadres within their scope: counts and percentages per question, by
commune and village, live; a bar chart per question; the Excel workbook.

Anonymous surveys: a commune or village with fewer than MIN_SHOWN respondents is shown only inside its
parent's total (a small village's answers would name the few who gave them); the workbook's responses sheet
names no one and places each response at its commune only.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers.base import ADMIN, STAFF, Ctx, Document, Option, Reply, cb, registry
from handlers.campaigns import qr_png
from handlers.export import plain
from handlers.surveys import choices_of, invite, places_for
from handlers.xlsx_stream import StreamedWorkbook
from messages import Texts, join
from storage import Store
from storage.clock import parse
from storage.surveys import CHOICE_KINDS, Question, Survey, Tally, TextAnswer

MIN_SHOWN = 5
BATCH = 5000  # responses read at once for the workbook
SHOWN_TEXTS = 30  # free-text answers listed in the chat; the workbook has them all
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Row:
    """One line of a question's results: a place (None: the total) and its figures."""

    commune_id: int | None
    village_id: int | None
    respondents: int
    counts: dict[str, int]


def by_place(tallies: list[Tally], anonymous: bool) -> tuple[Row, list[Row]]:
    """(the total, then each commune followed by its villages). Anonymous: places under MIN_SHOWN respondents
    are left out of the lines, though counted in their parent's total."""
    def add(into: dict, tally: Tally) -> None:
        into["n"] = into.get("n", 0) + tally.respondents
        for value, count in tally.counts.items():
            into.setdefault("c", {})[value] = into.get("c", {}).get(value, 0) + count

    total: dict = {}
    communes: dict[int | None, dict] = {}
    villages: dict[int | None, list[Tally]] = {}
    for tally in tallies:
        add(total, tally)
        add(communes.setdefault(tally.commune_id, {}), tally)
        if tally.village_id is not None:
            villages.setdefault(tally.commune_id, []).append(tally)
    rows = []
    for commune_id, figures in sorted(communes.items(), key=lambda item: -item[1]["n"]):
        if anonymous and figures["n"] < MIN_SHOWN:
            continue
        rows.append(Row(commune_id, None, figures["n"], figures.get("c", {})))
        for village in sorted(villages.get(commune_id, []), key=lambda v: -v.respondents):
            if not anonymous or village.respondents >= MIN_SHOWN:
                rows.append(Row(commune_id, village.village_id, village.respondents, village.counts))
    return Row(None, None, total.get("n", 0), total.get("c", {})), rows


async def results_of(store: Store, survey: Survey, q: Question, places) -> tuple[Row, list[Row]]:
    tallies = await store.surveys.tallies(survey.id, q.key, places, several=q.kind == "multiple")
    return by_place(tallies, survey.anonymous)


def percent(count: int, of: int) -> str:
    return f"{round(100 * count / of)}%" if of else "–"


async def places_of(ctx: Ctx) -> tuple[int, ...] | None:
    """The communes and villages a cadre may read; None for an admin (and a cadre of the whole province)."""
    return await places_for(ctx.store, ctx.user)


def _least(survey: Survey) -> int:
    """Below how many answers a commune is not named with a free-text answer or a response (by_place's rule)."""
    return MIN_SHOWN if survey.anonymous else 0


async def _text_counts(store: Store, survey: Survey, question: str, places: tuple[int, ...] | None
                       ) -> tuple[int, int, set[int | None]]:
    """A free-text question's answers in all, how many of them are withheld, and the communes small on it (fewer
    than MIN_SHOWN answers), whose answers are never shown beside their name. Pooled under «a commune with fewer
    than …» those answers hide their commune only among at least MIN_SHOWN such communes, else they are withheld: a
    reader of one or a few communes would know it."""
    total, small = await store.surveys.text_counts(survey.id, question, places, _least(survey) or 0)
    if not _least(survey) or len(small) >= MIN_SHOWN:
        return total, 0, set(small)
    return total, sum(small.values()), set(small)


async def _text_place(store: Store, names: dict, answer: TextAnswer, t: Texts) -> str:
    return t("survey_results.small_place", least=MIN_SHOWN) if answer.small \
        else await _name(store, names, answer.commune_id, t)


async def _name(store: Store, names: dict, locality_id: int | None, t: Texts) -> str:
    if locality_id not in names:
        place = await store.localities.get(locality_id) if locality_id else None
        names[locality_id] = t(f"kind.{place.kind}", name=place.name) if place else t("survey_results.no_place")
    return names[locality_id]


# ---- in the chat ----------------------------------------------------------------------------------------


async def _allowed_survey(ctx: Ctx, index: int = 0) -> Survey | None:
    args = ctx.args
    survey = await ctx.store.surveys.get(int(args[0])) if len(args) >= 1 + index and args[0].isdigit() else None
    if survey is None:
        ctx.say(ctx.t(ctx.stale_key))
    return survey


@registry.action("svr", roles=STAFF)
async def results_button(ctx: Ctx) -> None:
    """The overview: how many answered, and each question's total; a button per question for its detail."""
    survey = await _allowed_survey(ctx)
    if survey is None:
        return
    places = await places_of(ctx)
    begun, finished = await ctx.store.surveys.respondents(survey.id, places)
    lines = [ctx.t("survey_results.title", title=survey.title(ctx.t.language), begun=begun, finished=finished,
                   closes=ctx.local(parse(survey.closes_at)),
                   scope=ctx.t("survey_results.scope_all" if places is None else "survey_results.scope_mine"))]
    rows = []
    for number, q in enumerate(survey.questions, start=1):
        lines.append(await _question_total(ctx, survey, q, number, places))
        rows.append(Option(ctx.t("survey_results.detail", n=number), cb("svq", survey.id, number)))
    grid = [tuple(rows[i:i + 4]) for i in range(0, len(rows), 4)]
    grid.append((Option(ctx.t("survey_results.excel"), cb("svx", survey.id)),
                 Option(ctx.t("survey_results.qr"), cb("svqr", survey.id))))
    if ctx.user.role == "admin":
        grid.append((Option(ctx.t("survey_results.invite"), cb("svinv", survey.id)),))
    await ctx.audit("survey.results", f"survey:{survey.code}")
    ctx.say("\n\n".join(lines), grid)


async def _question_total(ctx: Ctx, survey: Survey, q: Question, number: int, places) -> str:
    total, _ = await results_of(ctx.store, survey, q, places)
    head = ctx.t("survey_results.question", n=number, text=q.text(ctx.t.language), respondents=total.respondents)
    return "\n".join([head, *_figures(ctx.t, q, total)])


def _figures(t: Texts, q: Question, row: Row) -> list[str]:
    if q.kind in CHOICE_KINDS:
        return [t("survey_results.line", label=label, count=row.counts.get(value, 0),
                  percent=percent(row.counts.get(value, 0), row.respondents)) for value, label in choices_of(t, q)]
    if q.kind == "number" and row.respondents:
        values = [(int(v), n) for v, n in row.counts.items()]
        mean = sum(v * n for v, n in values) / sum(n for _, n in values)
        return [t("survey_results.mean", mean=f"{mean:.1f}", low=min(v for v, _ in values),
                  high=max(v for v, _ in values))]
    return []


@registry.action("svq", roles=STAFF)
async def question_button(ctx: Ctx) -> None:
    """One question by commune and village, its chart, and free-text answers with their commune."""
    survey = await _allowed_survey(ctx, 1)
    number = int(ctx.args[1]) if survey and len(ctx.args) == 2 and ctx.args[1].isdigit() else 0
    if survey is None or not 1 <= number <= len(survey.questions):
        if survey is not None:
            ctx.say(ctx.t(ctx.stale_key))
        return
    q, places, names = survey.questions[number - 1], await places_of(ctx), {}
    if q.kind == "text":
        total, withheld, _ = await _text_counts(ctx.store, survey, q.key, places)
        answers = await ctx.store.surveys.texts(survey.id, q.key, places, SHOWN_TEXTS + 1, least=_least(survey),
                                                small=not withheld)
        lines = [ctx.t("survey_results.text_line", place=await _text_place(ctx.store, names, answer, ctx.t),
                       text=answer.text) for answer in answers[:SHOWN_TEXTS]]
        if withheld:
            lines.append(ctx.t("survey_results.small_withheld", count=withheld, least=MIN_SHOWN))
        ctx.say("\n".join([ctx.t("survey_results.question", n=number, text=q.text(ctx.t.language),
                                 respondents=total), *lines]))
        return
    total, rows = await results_of(ctx.store, survey, q, places)
    lines = [ctx.t("survey_results.question", n=number, text=q.text(ctx.t.language), respondents=total.respondents)]
    for row in rows:
        place = await _name(ctx.store, names, row.village_id or row.commune_id, ctx.t)
        figures = join("; ", _figures(ctx.t, q, row))
        key = "survey_results.village" if row.village_id else "survey_results.commune"
        lines.append(ctx.t(key, place=place, respondents=row.respondents, figures=figures))
    if survey.anonymous:
        lines.append(ctx.t("survey_results.small_hidden", least=MIN_SHOWN))
    ctx.say("\n".join(lines))
    if q.kind in CHOICE_KINDS and total.respondents:
        title = f"{number}. {q.text(ctx.t.language)}"
        bars = [(label, total.counts.get(v, 0)) for v, label in choices_of(ctx.t, q)]
        png = await asyncio.to_thread(chart, title, bars, total.respondents, ctx.t)
        ctx.replies.append(_photo(ctx, png, survey, number))


def _photo(ctx: Ctx, png: bytes, survey: Survey, number: int) -> Reply:
    return Reply(ctx.t("survey_results.chart_caption", title=survey.title(ctx.t.language), n=number),
                 photo=Document(f"khao-sat-{survey.code}-cau-{number}.png", png, "image/png"))


@registry.action("svx", roles=STAFF)
async def excel_button(ctx: Ctx) -> None:
    survey = await _allowed_survey(ctx)
    if survey is None:
        return
    content = await workbook(ctx.store, survey, await places_of(ctx), ctx.settings.tz, ctx.t)
    await ctx.audit("survey.exported", f"survey:{survey.code}")
    ctx.say(ctx.t("survey_results.excel_caption", title=survey.title(ctx.t.language)),
            document=Document(f"khao-sat-{survey.code}.xlsx", content, XLSX))


@registry.action("svinv", roles=ADMIN)
async def invite_button(ctx: Ctx) -> None:
    """The invitation (a quick poll: its question and choices) to the survey's audience; once from the chat, so
    that a double tap does not send thousands of messages twice. The report comes back to this admin."""
    survey = await _allowed_survey(ctx)
    if survey is None:
        return
    earlier = await ctx.store.surveys.broadcasts_for(survey.id)
    if earlier:
        ctx.say(ctx.t("survey_results.invited_before", id=earlier[0]))
        return
    broadcast = await invite(ctx.store, survey, ctx.now, ctx.settings.quiet_hours, ctx.settings.tz, by=ctx.user.id)
    count = await ctx.store.broadcasts.count_audience(survey.audience)
    await ctx.audit("survey.invited", f"survey:{survey.code}", broadcast=broadcast.id)
    ctx.wake("broadcasts")
    ctx.say(ctx.t("survey_results.invited", id=broadcast.id, count=count,
                  when=ctx.local(parse(broadcast.scheduled_at))))


@registry.action("svqr", roles=STAFF)
async def qr_button(ctx: Ctx) -> None:
    """The survey's deep link (/start s_<code>) and its QR code, for posters in the village."""
    survey = await _allowed_survey(ctx)
    if survey is None:
        return
    links = ctx.deep_links(f"s_{survey.code}")
    if not links:
        ctx.say(ctx.t("campaign.no_links"))
    for link in links:
        ctx.say(ctx.t("survey_results.qr_caption", title=survey.title(ctx.t.language), link=link),
                document=Document(f"qr-{survey.code}.png", qr_png(link), "image/png"))
    await ctx.audit("survey.qr", f"survey:{survey.code}")


async def poll_results(store: Store, survey_id: int, t: Texts) -> str:
    """A quick poll's answers so far, for its announcement's report (bot/broadcasts.py); empty for a survey."""
    survey = await store.surveys.get(survey_id)
    if survey is None or not survey.poll:
        return ""
    q = survey.questions[0]
    total, _ = await results_of(store, survey, q, None)
    return "\n\n" + "\n".join([t("survey_results.poll", question=q.text(t.language), respondents=total.respondents),
                                *_figures(t, q, total)])


# ---- the chart -------------------------------------------------------------------------------------------


def chart(title: str, bars: list[tuple[str, int]], respondents: int, t: Texts) -> bytes:
    """One question's answers as horizontal bars with count and percentage, sized for a phone. The figures are
    written into the PNG's metadata ("danvan" key) as handlers/charts.py does."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with rc_context({"font.family": "DejaVu Sans", "font.size": 13, "axes.spines.top": False,
                     "axes.spines.right": False}):
        fig = Figure(figsize=(7.2, 2.2 + 0.75 * len(bars)), dpi=150, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle("\n".join(textwrap.wrap(title, 48)), fontsize=14, fontweight="bold")
        ax = fig.subplots()
        names = ["\n".join(textwrap.wrap(label, 22)) for label, _ in reversed(bars)]
        values = [count for _, count in reversed(bars)]
        drawn = ax.barh(range(len(bars)), values, color="#0072B2", height=0.6)
        ax.bar_label(drawn, [f"{v} ({percent(v, respondents)})" for v in values], padding=4, fontsize=12)
        ax.set_yticks(range(len(bars)), names)
        ax.set_xlim(0, max([*values, 1]) * 1.35)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(t("survey_results.chart_axis", respondents=respondents))
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Title": title, "Software": "danvan",
                                                 "danvan": json.dumps(dict(bars), ensure_ascii=False)})
    return out.getvalue()


# ---- the workbook ----------------------------------------------------------------------------------------


async def workbook(store: Store, survey: Survey, places: tuple[int, ...] | None, tz: ZoneInfo, t: Texts) -> bytes:
    """A summary sheet per question (by commune) and the responses sheet, streamed a batch of responses at a
    time (handlers/xlsx_stream.py), the writing in a thread: flat memory, and the bot keeps answering."""
    book = StreamedWorkbook()
    names: dict = {}

    async def place(locality_id: int | None) -> str:
        return plain(await _name(store, names, locality_id, t))

    shown: dict[str, dict[str, str]] = {}  # question → value → what the sheet shows
    # free-text question → communes small on it: their answers are pooled or withheld on its sheet, so blank here
    withheld_from: dict[str, set[int | None]] = {}
    for number, q in enumerate(survey.questions, start=1):
        sheet = book.sheet(f"{number}. {q.key}")
        sheet([q.text_vi])
        if q.kind == "text":
            sheet([plain(t("survey_results.col_commune")), plain(t("survey_results.col_answer"))])
            _, withheld, withheld_from[q.key] = await _text_counts(store, survey, q.key, places)
            for answer in await store.surveys.texts(survey.id, q.key, places, least=_least(survey),
                                                    small=not withheld):
                sheet([plain(await _text_place(store, names, answer, t)), answer.text])
            if withheld:
                sheet([plain(t("survey_results.small_withheld", count=withheld, least=MIN_SHOWN))])
            continue
        total, rows = await results_of(store, survey, q, places)
        labels = [(v, plain(label)) for v, label in choices_of(t, q)] if q.kind in CHOICE_KINDS \
            else [(v, await place(int(v)) if q.kind == "locality" else v) for v in sorted(total.counts)]
        shown[q.key] = dict(labels)
        sheet([plain(t("survey_results.col_commune")), plain(t("survey_results.col_respondents")),
               *(label for _, label in labels), *(f"% {label}" for _, label in labels)])
        for row in [*(r for r in rows if r.village_id is None), total]:
            counts = [row.counts.get(v, 0) for v, _ in labels]
            sheet([plain(t("survey_results.total")) if row is total else await place(row.commune_id),
                   row.respondents, *counts, *(round(c / row.respondents, 4) if row.respondents else 0
                                               for c in counts)])
    responses = book.sheet(plain(t("survey_results.sheet_responses")))
    keys = [q.key for q in survey.questions]
    head = [t("survey_results.col_response"), t("survey_results.col_commune")]
    if not survey.anonymous:
        head += [t("survey_results.col_village"), t("survey_results.col_name")]
    responses([*map(plain, head), plain(t("survey_results.col_finished")), *keys])
    after, last, counted = 0, await store.surveys.last_response_id(survey.id), 0
    small = {c for c, n in (await store.surveys.communes(survey.id, places)).items() if n < _least(survey)}
    hidden = plain(t("survey_results.small_place", least=MIN_SHOWN))
    withhold, withheld = len(small) < MIN_SHOWN, 0  # pooled, too few small communes would still name theirs
    while after < last:
        grouped: dict[int, list] = {}
        for response_id, name, commune, village, finished, question, value in await store.surveys.rows(
                survey.id, after, BATCH, places, names=not survey.anonymous):
            entry = grouped.setdefault(response_id, [name, commune, village, finished, {}])
            entry[4].setdefault(question, []).append(shown.get(question, {}).get(value, value))
        lines = []
        for response_id, (name, commune, village, finished, answers) in sorted(grouped.items()):
            if withhold and commune in small:
                withheld += 1
                continue
            counted += 1
            line = [f"#{counted}" if survey.anonymous else response_id,
                    hidden if commune in small else await place(commune)]
            if not survey.anonymous:
                line += [await place(village) if village else "", name or ""]
            cells = ("" if commune in withheld_from.get(k, ()) else ", ".join(answers.get(k, ())) for k in keys)
            lines.append([*line, "x" if finished else "", *cells])
        await asyncio.to_thread(lambda batch=lines: [responses(line) for line in batch])
        after += BATCH
    if withheld:
        responses([plain(t("survey_results.small_withheld", count=withheld, least=MIN_SHOWN))])
    return await asyncio.to_thread(book.content)
