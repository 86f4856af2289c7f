"""Every key in every language, with the same placeholders; every key the code asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from messages import LANGUAGES, Safe, Texts, catalog, placeholders

ROOT = Path(__file__).resolve().parent.parent


def test_same_keys_and_placeholders_in_every_language():
    vi = catalog("vi")
    for language in LANGUAGES:
        other = catalog(language)
        assert set(other) == set(vi), f"{language}: missing {set(vi) - set(other)}, extra {set(other) - set(vi)}"
        for key, template in vi.items():
            assert placeholders(other[key]) == placeholders(template), f"{language}:{key}"


def test_keys_used_in_code_exist():
    keys = set(catalog("vi"))
    pattern = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_0-9.]+)["']""")
    used = set()
    for path in [*ROOT.glob("handlers/*.py"), *ROOT.glob("bot/**/*.py")]:
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    used = {k for k in used if not k.endswith(("_", "."))}  # prefixes of keys built at run time
    assert used, "the pattern found nothing: it is out of date"
    assert used <= keys, f"missing from the catalog: {sorted(used - keys)}"


def test_values_are_escaped_but_safe_text_is_not():
    t = Texts("vi")
    assert "&lt;script&gt;" in t("locality.not_found", query="<script>alert(1)</script>")
    assert "<b>" in t("start.greeting", operator=Safe("<b>x</b>"))


def test_vietnamese_has_full_diacritics():
    vi = catalog("vi")
    assert "Ông/Bà" in vi["common.error"]
    ascii_only = [k for k, v in vi.items() if len(v) > 40 and v.isascii()]
    assert not ascii_only, ascii_only
