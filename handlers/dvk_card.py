"""The certificate card of a recognised "Dân vận khéo" model: a PNG to send on or print, with the model's name,
the person or collective behind it, the place, the field and the year.

Drawn with Pillow in DejaVu Sans, which has every Vietnamese diacritic, taken from the copy matplotlib ships
(already a dependency for the digest's chart): the same font file on every machine, so the card looks the same
wherever it is drawn and a test can compare it with a reference picture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = (1600, 1131)  # A4 landscape at about 136 dpi: sharp on a phone, prints on one page
RED = (178, 34, 34)
GOLD = (201, 162, 39)
INK = (40, 40, 40)
PAPER = (255, 251, 240)


@dataclass(frozen=True)
class Card:
    title: str  # "GIẤY CHỨNG NHẬN"
    level: str  # "Mô hình «Dân vận khéo» cấp tỉnh"
    name: str
    author: str
    place: str
    field: str
    year: str
    issuer: str
    code: str


def font_path(bold: bool) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")


@cache
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(bold)), size)


def _lines(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int, most: int) -> list[str]:
    """`text` broken into lines at most `width` pixels wide, at most `most` lines (the last one cut with "…")."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1].rstrip(".,;") + "…"
    return lines


def render(card: Card) -> bytes:
    """The card as PNG bytes (about 90 KB). CPU-bound (about 70 ms): call it in a thread."""
    image = Image.new("RGB", SIZE, PAPER)
    draw = ImageDraw.Draw(image)
    width, height = SIZE
    draw.rectangle((24, 24, width - 25, height - 25), outline=RED, width=10)
    draw.rectangle((48, 48, width - 49, height - 49), outline=GOLD, width=4)
    middle = width // 2

    def centred(y: int, text: str, font: ImageFont.FreeTypeFont, fill=INK) -> int:
        draw.text((middle, y), text, font=font, fill=fill, anchor="ma")
        return y + font.size + font.size // 3

    y = centred(100, card.issuer.upper(), _font(True, 34), RED)
    y = centred(y + 60, card.title, _font(True, 84), RED)
    y = centred(y + 10, card.level, _font(False, 40))
    for line in _lines(draw, card.name, _font(True, 58), width - 260, 2):
        y = centred(y + 30, line, _font(True, 58), INK)
    y += 40
    for line in _lines(draw, card.author, _font(False, 40), width - 300, 2):
        y = centred(y, line, _font(False, 40))
    for line in _lines(draw, card.place, _font(False, 36), width - 300, 2):
        y = centred(y + 8, line, _font(False, 36))
    centred(y + 8, card.field, _font(False, 36))
    draw.text((middle, height - 150), card.year, font=_font(True, 44), fill=RED, anchor="ma")
    draw.text((width - 90, height - 90), card.code, font=_font(False, 24), fill=INK, anchor="rs")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
