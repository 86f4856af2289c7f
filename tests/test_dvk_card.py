"""The certificate card of a recognised model: drawn as the reference picture is (within a tolerance), at its
size, with every Vietnamese letter from the font's own glyphs (none drawn as the empty box of a missing glyph)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from handlers import dvk_card

REFERENCE = Path(__file__).parent / "reference" / "dvk_card.png"
CARD = dvk_card.Card(
    title="GIẤY CHỨNG NHẬN", level="Mô hình «Dân vận khéo» cấp tỉnh",
    name="Hiến đất mở rộng đường liên thôn, cùng nhau xây dựng nông thôn mới kiểu mẫu",
    author="Chi hội Phụ nữ thôn Long Hưng", place="Thôn Long Hưng, xã Hải Lăng, tỉnh Quảng Trị",
    field="Lĩnh vực: Kinh tế", year="Năm 2026", issuer="Ban Dân vận Tỉnh ủy Quảng Trị", code="MH-26-000001")


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_the_card_matches_its_reference_and_size():
    png = dvk_card.render(CARD)
    image = _image(png)
    assert image.size == dvk_card.SIZE == (1600, 1131)
    assert len(png) < 400_000  # sent as a photo in a chat
    reference = _image(REFERENCE.read_bytes())
    difference = ImageChops.difference(image, reference)
    # Another FreeType may place an edge pixel differently; a missing line or a changed word moves far more.
    assert max(ImageStat.Stat(difference).mean) < 1.0
    assert (difference.convert("L").point(lambda v: 255 if v > 64 else 0).histogram()[255]
            < 0.002 * image.width * image.height)


def test_a_changed_word_or_a_lost_diacritic_is_seen():
    reference = _image(REFERENCE.read_bytes())
    for changed in (CARD.__class__(**{**CARD.__dict__, "name": CARD.name.replace("Hiến", "Hien")}),
                    CARD.__class__(**{**CARD.__dict__, "year": "Năm 2025"})):
        difference = ImageChops.difference(_image(dvk_card.render(changed)), reference)
        assert difference.getbbox() is not None and max(ImageStat.Stat(difference).mean) > 0.005


def test_every_vietnamese_letter_has_a_glyph():
    """Checked in the font's character map (fontTools comes with matplotlib): a letter without a glyph would be
    drawn as an empty box."""
    from fontTools.ttLib import TTFont

    letters = "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬĐÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
    for bold in (False, True):
        cmap = TTFont(dvk_card.font_path(bold)).getBestCmap()
        assert [c for c in letters + letters.lower() + "«»–" if ord(c) not in cmap] == []
