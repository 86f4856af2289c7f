"""A spreadsheet written as a stream: rows go straight into the zip, one sheet after another, so that a
workbook of a million cells takes seconds and flat memory. openpyxl's write-only mode spends about 40 µs a
cell serialising XML (bench/survey.py: a minute for 100,000 responses); a survey's sheets need no styles,
formulas or shared strings, so this writes the few parts Excel reads and text as inline strings (never
read as a formula, whatever it begins with)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from xml.sax.saxutils import escape

_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{sheets}</Types>')
_SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml"'
               ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')


def _cell(value: object) -> str:
    if value is None or value == "":
        return "<c/>"
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = escape(_INVALID.sub("", str(value)))
        return f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
    return f"<c><v>{value}</v></c>"


class StreamedWorkbook:
    """`with StreamedWorkbook() as book: sheet = book.sheet("Name"); sheet(row)…`; then `book.content()`."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._zip = zipfile.ZipFile(self._out, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._names: list[str] = []
        self._sheet = None

    def sheet(self, name: str):
        """Start the next sheet (the previous one is finished); returns a function that appends rows."""
        self._end_sheet()
        name = _SHEET_NAME.sub(" ", name)[:31] or f"Sheet{len(self._names) + 1}"
        while name in self._names:
            name = f"{name[:28]}~{len(self._names)}"
        self._names.append(name)
        self._sheet = self._zip.open(f"xl/worksheets/sheet{len(self._names)}.xml", "w")
        self._sheet.write(_SHEET_HEAD.encode())

        def append(row: Iterable[object]) -> None:
            self._sheet.write(("<row>" + "".join(map(_cell, row)) + "</row>").encode())

        return append

    def _end_sheet(self) -> None:
        if self._sheet is not None:
            self._sheet.write(b"</sheetData></worksheet>")
            self._sheet.close()
            self._sheet = None

    def content(self) -> bytes:
        self._end_sheet()
        sheets = "".join(f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
                         for n, name in enumerate(self._names, start=1))
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES.format(
            sheets="".join(_SHEET_TYPE.format(n=n) for n in range(1, len(self._names) + 1))))
        self._zip.writestr("_rels/.rels", _RELS)
        self._zip.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
            ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<sheets>{sheets}</sheets></workbook>"))
        self._zip.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                      f'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>'
                      for n in range(1, len(self._names) + 1)) + "</Relationships>"))
        self._zip.close()
        return self._out.getvalue()
