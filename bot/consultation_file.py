"""A draft document read from .docx or Markdown into sections and numbered paragraphs.

Markdown: `# Title`, text before the first section as the introduction, `## Section` headings, paragraphs
separated by blank lines. Word: a paragraph in the Title style is the title; the highest heading level
present makes the sections (under a Title), or the first heading of that level is the title and the next
level makes the sections. A paragraph that begins with its number ("3." or "3)") keeps it; the others are
numbered in order within their section.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.console import texts
from storage.consultations import Draft, Paragraph

NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(.*)$", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MAX_SECTIONS = 200
MAX_PARAGRAPH = 4000  # characters: a paragraph shown whole fits one Telegram message


class Problem(Exception):
    """What is wrong with the document, in the operator's language ([consultation.file])."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(texts().plain(f"consultation.file.{key}", **values))


def read(path: Path) -> Draft:
    """The document in `path` (.docx, or Markdown for any other name); Problem when it cannot be used."""
    if path.suffix.lower() == ".docx":
        blocks = _docx_blocks(path)
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise Problem("unreadable", reason=getattr(err, "strerror", None) or err) from None
        blocks = _markdown_blocks(text)
    return _draft(blocks)


def _markdown_blocks(text: str) -> list[tuple[int, str]]:
    """(heading level, text) of each heading, (0, text) of each paragraph."""
    blocks: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        if lines:
            blocks.append((0, " ".join(line.strip() for line in lines)))
            lines.clear()

    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            flush()
            blocks.append((len(heading.group(1)), heading.group(2)))
        elif not line.strip() or NUMBERED.match(line):  # a numbered line begins a paragraph of its own
            flush()
            if line.strip():
                lines.append(line)
        else:
            lines.append(line)
    flush()
    return blocks


def _docx_blocks(path: Path) -> list[tuple[int, str]]:
    import docx  # python-docx: only the command that reads Word files pays for its import
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (OSError, PackageNotFoundError, KeyError, ValueError) as err:
        raise Problem("unreadable", reason=err) from None
    blocks = []
    for paragraph in document.paragraphs:
        text, style = paragraph.text.strip(), (paragraph.style.name if paragraph.style is not None else "") or ""
        if not text:
            continue
        if style == "Title":
            blocks.append((-1, text))
        elif (match := re.match(r"^Heading (\d)$", style)) is not None:
            blocks.append((int(match.group(1)), text))
        else:
            blocks.append((0, text))
    return blocks


def _draft(blocks: list[tuple[int, str]]) -> Draft:
    titles = [text for level, text in blocks if level == -1]
    levels = sorted({level for level, _ in blocks if level > 0})
    if not levels:
        raise Problem("no_sections")
    if titles:
        title, section_level = titles[0], levels[0]
    elif len(levels) > 1 and sum(1 for level, _ in blocks if level == levels[0]) == 1:
        title, section_level = next(text for level, text in blocks if level == levels[0]), levels[1]
    else:
        raise Problem("no_title")
    intro: list[str] = []
    sections: list[tuple[str, list[Paragraph]]] = []
    for level, text in blocks:
        if level == section_level:
            sections.append((text, []))
        elif level == 0 and not sections:
            intro.append(text)
        elif level == 0:
            paragraphs = sections[-1][1]
            numbered = NUMBERED.match(text)
            number = int(numbered.group(1)) if numbered else (paragraphs[-1].number + 1 if paragraphs else 1)
            body = numbered.group(2).strip() if numbered else text
            if any(p.number == number for p in paragraphs):
                raise Problem("number_twice", section=sections[-1][0], number=number)
            if len(body) > MAX_PARAGRAPH:
                raise Problem("paragraph_long", section=sections[-1][0], number=number, limit=MAX_PARAGRAPH)
            paragraphs.append(Paragraph(number, body))
    if not sections or len(sections) > MAX_SECTIONS:
        raise Problem("no_sections")
    empty = [name for name, paragraphs in sections if not paragraphs]
    if empty:
        raise Problem("empty_section", section=empty[0])
    return Draft(title, tuple((name, tuple(ps)) for name, ps in sections), "\n".join(intro))
