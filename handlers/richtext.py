"""What admins write for many people to read. In the chat composer: plain text with simple marks (`marked`),
*đậm*, _nghiêng_ and links pasted as they are, everything else sent as written ("5 < 6" included). In campaign
files: Telegram-style HTML (`check`), checked before anything is sent, so that a broadcast to a hundred thousand
people never fails on a typo. Both come out as the same HTML subset, which the web chat renders too.

Tags: b, strong, i, em, u, ins, s, strike, del, a href="http(s)://…", code, pre, blockquote, tg-spoiler,
span class="tg-spoiler". Tags must be balanced. A stray "&" or ">" is escaped for the author; a stray "<"
is refused, because it is impossible to tell what was meant.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

TAGS = frozenset("b strong i em u ins s strike del a code pre blockquote tg-spoiler span".split())
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'))*)\s*(/?)>")
_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)[\s>/]")
_ATTR = re.compile(r"([A-Za-z-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")
_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)


class HtmlProblem(Exception):
    """What is wrong and where: `key` is a catalog key (richtext.*), `values` its placeholders."""

    def __init__(self, key: str, values: dict) -> None:
        super().__init__(f"{key} {values}")
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Checked:
    html: str  # what to send (stray & and > escaped)
    plain: str  # what a person reads

    @property
    def length(self) -> int:
        """Length as Telegram counts it (UTF-16 code units)."""
        return len(self.plain.encode("utf-16-le")) // 2


def check(text: str) -> Checked:
    """The text, validated and normalised; raises HtmlProblem with a precise message key."""
    out: list[str] = []
    plain: list[str] = []
    stack: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            match = _TAG.match(text, pos)
            if match is None:
                name = _NAME.match(text, pos)
                if name is None:
                    raise HtmlProblem("richtext.stray_lt", {"at": _where(text, pos)})
                tag = name.group(1).lower()
                key = "richtext.bad_attribute" if tag in TAGS else "richtext.unknown_tag"
                raise HtmlProblem(key, {"tag": tag, "at": _where(text, pos)})
            closing, tag, attrs, selfclosing = match.group(1), match.group(2).lower(), match.group(3), match.group(4)
            if tag not in TAGS:
                raise HtmlProblem("richtext.unknown_tag", {"tag": tag, "at": _where(text, pos)})
            if selfclosing:
                raise HtmlProblem("richtext.unknown_tag", {"tag": tag + "/", "at": _where(text, pos)})
            if closing:
                if attrs:
                    raise HtmlProblem("richtext.bad_attribute", {"tag": tag, "at": _where(text, pos)})
                if not stack:
                    raise HtmlProblem("richtext.unexpected_close", {"tag": tag, "at": _where(text, pos)})
                if stack[-1][0] != tag:
                    raise HtmlProblem("richtext.wrong_close", {"tag": tag, "open": stack[-1][0],
                                                               "at": _where(text, pos)})
                stack.pop()
                out.append(f"</{tag}>")
            else:
                out.append(_opening(tag, attrs, text, pos))
                stack.append((tag, pos))
            pos = match.end()
        elif char == "&":
            match = _ENTITY.match(text, pos)
            if match is None:
                out.append("&amp;")
                plain.append("&")
                pos += 1
            else:
                out.append(match.group(0))
                plain.append(html.unescape(match.group(0)))
                pos = match.end()
        elif char == ">":
            out.append("&gt;")
            plain.append(">")
            pos += 1
        else:
            end = pos
            while end < len(text) and text[end] not in "<&>":
                end += 1
            out.append(text[pos:end])
            plain.append(text[pos:end])
            pos = end
    if stack:
        tag, at = stack[-1]
        raise HtmlProblem("richtext.unclosed", {"tag": tag, "at": _where(text, at)})
    return Checked("".join(out), "".join(plain))


_PASTED = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)»”']", re.IGNORECASE)
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")


def marked(text: str) -> Checked:
    """Plain text with simple marks, as an admin types it in a chat: *đậm* and _nghiêng_ (around words, on one
    line), links pasted as they are (their _ and * are the link's). Nothing is refused: < and & are escaped."""
    out: list[str] = []
    plain: list[str] = []
    pos = 0
    for link in _PASTED.finditer(text):
        _marks(text[pos : link.start()], out, plain)
        url = link.group(0)
        out.append(f'<a href="{html.escape(url)}">{html.escape(url, quote=False)}</a>')
        plain.append(url)
        pos = link.end()
    _marks(text[pos:], out, plain)
    return Checked("".join(out), "".join(plain))


def _marks(segment: str, out: list[str], plain: list[str]) -> None:
    out.append(_ITALIC.sub(r"<i>\1</i>", _BOLD.sub(r"<b>\1</b>", html.escape(segment, quote=False))))
    plain.append(_ITALIC.sub(r"\1", _BOLD.sub(r"\1", segment)))


def _opening(tag: str, attrs: str, text: str, pos: int) -> str:
    found = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(attrs)}
    if tag == "a":
        href = found.pop("href", None)
        if href is None or not _URL.match(html.unescape(href)):
            raise HtmlProblem("richtext.bad_link", {"at": _where(text, pos)})
        if found:
            raise HtmlProblem("richtext.bad_attribute", {"tag": tag, "at": _where(text, pos)})
        return f'<a href="{html.escape(html.unescape(href))}">'
    if tag == "span":
        if found != {"class": "tg-spoiler"}:
            raise HtmlProblem("richtext.bad_span", {"at": _where(text, pos)})
        return '<span class="tg-spoiler">'
    if tag == "code" and set(found) <= {"class"} and re.fullmatch(r"language-[A-Za-z0-9_+-]{1,30}",
                                                                   found.get("class", "language-x")):
        return f'<code class="{found["class"]}">' if found else "<code>"
    if found:
        raise HtmlProblem("richtext.bad_attribute", {"tag": tag, "at": _where(text, pos)})
    return f"<{tag}>"


def _where(text: str, pos: int) -> str:
    """Line and column as a person counts them, with the text around the place."""
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    excerpt = text[pos : pos + 20].split("\n", 1)[0]
    return f"{line}:{column} «{excerpt}»"
