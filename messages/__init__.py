"""Every sentence a person reads, one TOML catalog per language (Vietnamese first and complete).

Code asks for a key with named values; values are HTML-escaped unless wrapped in `Safe`, so a
person's text can never inject formatting. Catalog texts may use the tags Telegram's HTML accepts.
"""

from __future__ import annotations

import html
import string
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


class Safe(str):
    """Text already safe for HTML (built from the catalog), inserted as it is."""


def join(separator: str, parts: Iterable[object]) -> Safe:
    """Parts joined into one value for a message: catalog output (Safe) as it is, anything else escaped.
    A plain `separator.join` of catalog output is a `str`, which the catalog would escape a second time."""
    return Safe(separator.join(p if isinstance(p, Safe) else html.escape(str(p), quote=False) for p in parts))


def cut(text: str, size: int, *, one_line: bool = True) -> str:
    """At most `size` characters, on one line for a list line or a button (`one_line`; a quote keeps its lines);
    what is cut ends with "…" so it reads as cut."""
    if one_line:
        text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


class Key(str):
    """A catalog key given as a value: translated into the reader's language when rendered."""


def channel_key(channel: str) -> str:
    """A channel's name as a message's value, in the reader's language (catalog [channel]); a channel the catalog
    does not name (a test's) as it is."""
    key = f"channel.{channel}"
    return Key(key) if key in catalog(DEFAULT_LANGUAGE) else channel


def _flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@cache
def catalog(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    text = resources.files("messages").joinpath(f"{language}.toml").read_text(encoding="utf-8")
    return _flatten(tomllib.loads(text))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


STAFF = "to_staff."  # a key under [to_staff.…] says the same to a cadre or an admin, as "đồng chí"


class Texts:
    """The catalog of one language, bound for a conversation: `t("key", name=value)`. For `staff`, a key's
    `to_staff.` form is used where there is one."""

    def __init__(self, language: str, staff: bool = False) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.staff = staff
        self._catalog = catalog(self.language)

    def _template(self, key: str) -> str:
        if self.staff and STAFF + key in self._catalog:
            return self._catalog[STAFF + key]
        template = self._catalog.get(key)
        return catalog(DEFAULT_LANGUAGE)[key] if template is None else template

    def __call__(self, key: str, **values: object) -> Safe:
        template = self._template(key)
        escaped = {name: self._value(v) for name, v in values.items()}
        return Safe(template.format_map(escaped))

    def _value(self, value: object) -> str:
        if isinstance(value, Key):
            return self(value)
        return value if isinstance(value, Safe) else html.escape(str(value), quote=False)

    def plain(self, key: str, **values: object) -> str:
        """The text for a terminal, not a chat: nothing escaped."""
        return self._template(key).format_map({name: self.plain(v) if isinstance(v, Key) else str(v)
                                                for name, v in values.items()})

    def has(self, key: str) -> bool:
        return key in self._catalog
