"""The summary report of a consultation an office sends up (.docx), and every comment in an Excel workbook.

The report follows the usual order: how the consultation was organised (period, audience, participants and
comments by commune and channel), then each section with its agreement count, its comments grouped
(handlers/similar.py) with a representative quote and the count, and how each group was handled. Nobody is
named in the report; the workbook names a commenter only where they did not choose to be anonymous.

Memory stays flat however many comments: one section's comments are read and grouped at a time, and only the
groups' summaries are kept for the document.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from handlers import similar
from handlers.export import text_cell
from handlers.reports import when
from messages import Texts, cut
from storage import Store
from storage.consultations import OUTCOMES, STANCES, Comment, Consultation

QUOTE = 400  # characters of a representative quote
SINGLES = 20  # comments like no other quoted per section; the rest are counted (every one is in the workbook)
EXPLANATIONS = 3  # distinct explanations quoted per group


@dataclass
class GroupSummary:
    count: int
    quote: str
    paragraphs: list[int]
    outcomes: Counter = field(default_factory=Counter)
    explanations: list[str] = field(default_factory=list)


@dataclass
class SectionSummary:
    position: int
    title: str
    stances: dict[str, int]
    comments: int
    groups: list[GroupSummary]


def summarise(comments: list[Comment], threshold: int) -> list[GroupSummary]:
    groups = []
    for members in similar.group([c.text for c in comments], threshold):
        leader = comments[members[0]]
        summary = GroupSummary(len(members), cut(leader.text, QUOTE, one_line=False),
                               sorted({comments[i].paragraph for i in members if comments[i].paragraph}))
        for i in members:
            comment = comments[i]
            summary.outcomes[comment.outcome or "pending"] += 1
            if comment.explanation and comment.explanation not in summary.explanations \
                    and len(summary.explanations) < EXPLANATIONS:
                summary.explanations.append(comment.explanation)
        groups.append(summary)
    return groups


async def sections_summary(store: Store, consultation: Consultation, threshold: int) -> list[SectionSummary]:
    stances = await store.consultations.stances(consultation.id)
    out = []
    for section in await store.consultations.sections(consultation.id):
        comments = await store.consultations.comments(consultation.id, position=section.position)
        groups = await asyncio.to_thread(summarise, comments, threshold)
        out.append(SectionSummary(section.position, section.title,
                                  stances.get(section.position, dict.fromkeys(STANCES, 0)), len(comments), groups))
    return out


async def _communes(store: Store, ids: set[int | None], t: Texts) -> dict[int | None, str]:
    """Places as they are said ("xã Hải Lăng", "phường Đông Hà")."""
    names: dict[int | None, str] = {None: ""}
    for locality_id in ids - {None}:
        place = await store.localities.get(locality_id)
        names[locality_id] = t.plain(f"kind.{place.kind}", name=place.name) if place else ""
    return names


async def _audience(store: Store, consultation: Consultation, t: Texts) -> str:
    audience = consultation.audience
    names = await _communes(store, set(audience.localities), t)
    parts = [names[i] for i in audience.localities if names[i]]
    for topic_id in audience.topics:
        topic = await store.topics.get(topic_id)
        if topic:
            parts.append(topic.name(t.language))
    return ", ".join(parts) or t.plain("consultation.report_everyone")


async def report_docx(store: Store, consultation: Consultation, t: Texts, tz: ZoneInfo, threshold: int) -> bytes:
    organised, rows = await organisation(store, consultation, t, tz)
    sections = await sections_summary(store, consultation, threshold)
    return await asyncio.to_thread(write_docx, consultation, t, organised, rows, sections)


async def organisation(store: Store, consultation: Consultation, t: Texts,
                       tz: ZoneInfo) -> tuple[dict[str, str], list[tuple]]:
    """The report's first part: period, audience, participants; and its table by commune and channel."""
    participation = await store.consultations.participation(consultation.id)
    communes = await _communes(store, {commune for commune, _, _, _ in participation}, t)
    organised = {
        "period": t.plain("consultation.report_period", opens=when(consultation.opens_at, tz),
                          closes=when(consultation.closes_at, tz)),
        "audience": t.plain("consultation.report_audience", audience=await _audience(store, consultation, t)),
        "participants": t.plain("consultation.report_participants",
                                readers=await store.consultations.readers(consultation.id),
                                commenters=len(await store.consultations.commenters(consultation.id)),
                                comments=sum(c for _, _, _, c in participation)),
    }
    rows = [(communes[commune] or t.plain("consultation.report_no_commune"), channel, people, count)
            for commune, channel, people, count in participation]
    return organised, rows


def write_docx(consultation: Consultation, t: Texts, organised: dict[str, str], rows: list[tuple],
          sections: list[SectionSummary]) -> bytes:
    import docx  # python-docx: only a report pays for its import

    document = docx.Document()
    document.add_heading(t.plain("consultation.report_title"), level=0)
    document.add_paragraph(consultation.title)
    document.add_heading(t.plain("consultation.report_organised"), level=1)
    for text in organised.values():
        document.add_paragraph(text)
    table = document.add_table(rows=1, cols=4, style="Table Grid")
    for cell, key in zip(table.rows[0].cells, ("commune", "channel", "people", "comments"), strict=True):
        cell.text = t.plain(f"consultation.report_col_{key}")
    for row in rows:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = str(value)
    document.add_heading(t.plain("consultation.report_by_section"), level=1)
    for section in sections:
        document.add_heading(t.plain("consultation.report_section", position=section.position, title=section.title),
                             level=2)
        document.add_paragraph(t.plain("consultation.report_stances", comments=section.comments,
                                       **section.stances))
        singles = [g for g in section.groups if g.count == 1]
        for group in [g for g in section.groups if g.count > 1] + singles[:SINGLES]:
            where = t.plain("consultation.report_paragraphs", numbers=", ".join(map(str, group.paragraphs))) \
                if group.paragraphs else ""
            key = "consultation.report_group" if group.count > 1 else "consultation.report_single"
            document.add_paragraph(t.plain(key, count=group.count, where=where, quote=group.quote),
                                   style="List Bullet")
            document.add_paragraph(t.plain("consultation.report_handled", handled=_handled(t, group.outcomes)))
            for explanation in group.explanations:
                document.add_paragraph(t.plain("consultation.report_explanation", text=explanation))
        if len(singles) > SINGLES:
            rest = sum((g.outcomes for g in singles[SINGLES:]), Counter())
            document.add_paragraph(t.plain("consultation.report_more_singles", count=len(singles) - SINGLES,
                                           handled=_handled(t, rest)), style="List Bullet")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _handled(t: Texts, outcomes: Counter) -> str:
    return ", ".join(t.plain(f"consultation.outcome_count_{o}", count=outcomes[o])
                     for o in (*OUTCOMES, "pending") if outcomes[o])


COLUMNS = ("section", "paragraph", "content", "commune", "channel", "sender", "written", "outcome", "explanation")


async def report_xlsx(store: Store, consultation: Consultation, t: Texts, tz: ZoneInfo) -> bytes:
    """Every comment, one row each, in a write-only workbook (rows go to disk as they come)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(t.plain("consultation.xlsx_sheet"))
    sheet.append([t.plain(f"consultation.xlsx_col_{name}") for name in COLUMNS])
    names: dict[int | None, str] = {None: ""}
    anonymous = t.plain("consultation.anonymous")
    labels = {o: t.plain(f"consultation.outcome_{o}") for o in OUTCOMES}
    async for batch in store.consultations.iter_comments(consultation.id):
        missing = {c.commune_id for c in batch} - set(names)
        names.update(await _communes(store, missing, t))
        for c in batch:
            sheet.append([c.position, c.paragraph or "", text_cell(c.text), names[c.commune_id], c.channel,
                          anonymous if c.anonymous else text_cell(c.sender or ""), when(c.updated_at, tz),
                          labels.get(c.outcome, ""), text_cell(c.explanation or "")])
    out = io.BytesIO()
    await asyncio.to_thread(workbook.save, out)
    return out.getvalue()
