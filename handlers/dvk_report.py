"""A "Dân vận khéo" round's report for the province's emulation report: by commune and field, how many models were
nominated, verified and recognised and how many votes they received; as an Excel workbook and a .docx summary
(with the recognised models by name). Votes are counted, never shown with who cast them.

Used by the admin's button (handlers/dvk_rounds.py), which gathers the numbers once for both documents, and
`danvan dvk report` (bot/dvk_cli.py).
"""

from __future__ import annotations

import asyncio
import html
import io
from dataclasses import dataclass

from handlers.export import text_cell
from handlers.reports import Places
from messages import Texts
from storage import Store
from storage.dvk import FIELDS, Model, Round, Tally, repo

COLUMNS = ("nominated", "verified", "recognised", "votes")


@dataclass(frozen=True)
class Report:
    round: Round
    rows: list[tuple[str, str, Tally]]  # (commune name, field name, its numbers)
    totals: dict[str, int]
    by_field: dict[str, dict[str, int]]
    recognised: list[tuple[Model, str, int]]  # (model, its place, votes)
    votes: list[tuple[str, str, int]]  # (model code, the voters' commune, votes): counts, never who


def _plain(text: object) -> str:
    return html.unescape(str(text))


async def gather(store: Store, t: Texts, r: Round) -> Report:
    dvk, places = repo(store), await Places.load(store)
    tallies = await dvk.tally(r.id)
    rows = [(_plain(places.name(t, x.commune_id)), _plain(t(f"dvk.field_{x.field}")), x) for x in tallies]
    totals = {c: sum(getattr(x, c) for x in tallies) for c in COLUMNS}
    by_field = {f: {c: sum(getattr(x, c) for x in tallies if x.field == f) for c in COLUMNS} for f in FIELDS}
    recognised = [(m, _plain(places.full_name(t, m.locality_id)), await dvk.votes(m.id))
                  for m in await dvk.recognised_in(r.id)]
    votes = [(code, _plain(places.name(t, commune)), n) for code, commune, n in await dvk.votes_by_commune(r.id)]
    return Report(r, sorted(rows, key=lambda row: (row[0], row[1])), totals, by_field, recognised, votes)


async def workbook(t: Texts, report: Report) -> bytes:
    return await asyncio.to_thread(_workbook, t, report)


def _workbook(t: Texts, report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = _plain(t("dvk.xlsx_sheet"))[:31]
    sheet.append([_plain(t("dvk.xlsx_title", name=report.round.name, year=report.round.year))])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([])
    sheet.append([_plain(t(f"dvk.xlsx_{c}")) for c in ("commune", "field", *COLUMNS)])
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for commune, field, x in report.rows:
        sheet.append([commune, field, x.nominated, x.verified, x.recognised, x.votes])
    sheet.append([_plain(t("dvk.xlsx_total")), "", *(report.totals[c] for c in COLUMNS)])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    models = book.create_sheet(_plain(t("dvk.xlsx_models_sheet"))[:31])
    models.append([_plain(t(f"dvk.xlsx_{c}")) for c in ("code", "name", "author", "place", "field", "level", "votes")])
    for cell in models[1]:
        cell.font = Font(bold=True)
    for m, place, votes in report.recognised:
        models.append([m.code, text_cell(m.name), text_cell(m.author), place, _plain(t(f"dvk.field_{m.field}")),
                       _plain(t(f"dvk.level_{m.level}")), votes])
    voters = book.create_sheet(_plain(t("dvk.xlsx_votes_sheet"))[:31])
    voters.append([_plain(t(f"dvk.xlsx_{c}")) for c in ("code", "voters", "votes")])
    for cell in voters[1]:
        cell.font = Font(bold=True)
    for row in report.votes:
        voters.append(list(row))
    for sheet_ in (sheet, models, voters):
        for column, width in zip("ABCDEFG", (28, 30, 14, 14, 14, 12, 12), strict=True):
            sheet_.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def summary(t: Texts, report: Report, operator: str) -> bytes:
    return await asyncio.to_thread(_summary, t, report, operator)


def _summary(t: Texts, report: Report, operator: str) -> bytes:
    from docx import Document

    doc = Document()
    r = report.round
    doc.add_heading(_plain(t("dvk.docx_title", name=r.name, year=r.year)), level=1)
    doc.add_paragraph(_plain(t("dvk.docx_intro", operator=operator, nominated=report.totals["nominated"],
                               verified=report.totals["verified"], recognised=report.totals["recognised"],
                               votes=report.totals["votes"])))
    doc.add_paragraph(_plain(t("dvk.docx_criteria", criteria=r.criteria)))
    doc.add_heading(_plain(t("dvk.docx_by_field")), level=2)
    table = doc.add_table(rows=1, cols=5)
    table.style = "Table Grid"
    for cell, c in zip(table.rows[0].cells, ("field", *COLUMNS), strict=True):
        cell.text = _plain(t(f"dvk.xlsx_{c}"))
    for f in FIELDS:
        cells = table.add_row().cells
        cells[0].text = _plain(t(f"dvk.field_{f}"))
        for cell, c in zip(cells[1:], COLUMNS, strict=True):
            cell.text = str(report.by_field[f][c])
    doc.add_heading(_plain(t("dvk.docx_by_commune")), level=2)
    table = doc.add_table(rows=1, cols=6)
    table.style = "Table Grid"
    for cell, c in zip(table.rows[0].cells, ("commune", "field", *COLUMNS), strict=True):
        cell.text = _plain(t(f"dvk.xlsx_{c}"))
    for commune, field, x in report.rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, (commune, field, x.nominated, x.verified, x.recognised, x.votes), strict=True):
            cell.text = str(value)
    doc.add_heading(_plain(t("dvk.docx_recognised")), level=2)
    if not report.recognised:
        doc.add_paragraph(_plain(t("common.none")))
    for m, place, votes in report.recognised:
        doc.add_paragraph(_plain(t("dvk.docx_model", code=m.code, name=m.name, author=m.author, place=place,
                                   field=t(f"dvk.field_{m.field}"), level=t(f"dvk.level_{m.level}"), votes=votes)),
                          style="List Bullet")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
