"""The one rendering step between the router and the channels (DESIGN.md §2), driven by a channel's
Capabilities, the same for every channel.

Coming in: a typed "/command args" becomes a command; typed keywords ("góp ý", "hủy", "menu") become
commands; on a channel without buttons, a typed number or an option's label becomes the option chosen.
Going out: on a channel without buttons, options become a numbered list in the text (links as "label: URL"),
kept per chat so that the number typed next means what it showed; on a channel without HTML, HTML becomes
plain text; on a channel that takes no files, a document becomes a download link in the text (`linked`, the
link made by the router). Splitting at the limit is the channel's `send` (bot/channels/base.py `split_text`),
counted in its unit; an edit where a channel cannot edit is sent as a new message (bot/outbound.py).
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from functools import cache

from handlers.base import Capabilities, Inbound, Reply
from messages import LANGUAGES, Safe, Texts, catalog
from storage.text import fold

CANCEL = "huy"  # the one keyword that leaves a flow
MENU = "menu"
LINK = "lienket"  # the one keyword that takes an argument: the code typed on the other channel
_LINK = re.compile(r"<a\s+href=\"([^\"]*)\"\s*>(.*?)</a>", re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")
_WITH_CODE = re.compile(r"^(.+?)\s+(\d{4,8})$")  # a keyword and a code: "liên kết 123456"
_INVITE = re.compile(r"^i_[A-Za-z0-9_\-]{16,40}$")  # an invite code typed where there are no deep links (Zalo)
_MARKS = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)  # "✅ ", "▫️ ", "« " before a label, " »" after it


def parse(inbound: Inbound) -> Inbound:
    """A typed "/command args" is a command, whatever the channel."""
    text = inbound.text.strip()
    if inbound.kind != "text" or not text.startswith("/"):
        return inbound
    head, _, args = text.partition(" ")
    return replace(inbound, kind="command", command=head[1:].split("@", 1)[0], text=args.strip())


@cache
def keywords() -> dict[str, str]:
    """Folded alias → command, from every language's [keywords] (a person may type either language)."""
    found: dict[str, str] = {}
    for language in LANGUAGES:
        for key, aliases in catalog(language).items():
            if key.startswith("keywords."):
                for alias in aliases.split("|"):
                    found[fold(alias)] = key.removeprefix("keywords.")
    return found


def understand(inbound: Inbound, shown: list[tuple[str, str]] | None, in_flow: bool) -> Inbound:
    """What typed words mean: an option of those last shown (by number or label), else a keyword. Inside a flow
    only "hủy" leaves it: a report that begins with "góp ý" stays the report's text."""
    if inbound.kind != "text":
        return inbound
    folded = fold(inbound.text)
    if shown:
        if folded.isdigit():
            number = int(folded)
            if 1 <= number <= len(shown):
                return _chosen(inbound, shown[number - 1][1])
            if in_flow or number == 0:
                return _chosen(inbound, "") if number else _command(inbound, MENU)
        words = fold(_MARKS.sub("", inbound.text))
        for label, data in shown:
            if words == fold(_MARKS.sub("", label)):
                return _chosen(inbound, data)
    if not in_flow and _INVITE.match(inbound.text.strip()):
        return replace(inbound, kind="command", command="start", text=inbound.text.strip())
    with_code = _WITH_CODE.match(folded)
    if with_code and not in_flow and keywords().get(with_code.group(1)) == LINK:
        return replace(inbound, kind="command", command=LINK, text=with_code.group(2))
    command = keywords().get(folded)
    if command == CANCEL or (command is not None and not in_flow):
        return _command(inbound, command)
    if folded == "0" and not in_flow:
        return _command(inbound, MENU)
    return inbound


def _chosen(inbound: Inbound, data: str) -> Inbound:
    return replace(inbound, kind="choice", payload=data, text="")


def _command(inbound: Inbound, command: str) -> Inbound:
    return replace(inbound, kind="command", command=command, text="")


def outgoing(replies: list[Reply], capabilities: Capabilities, t: Texts,
             in_flow: bool = False) -> tuple[list[Reply], list[tuple[str, str]]]:
    """The replies as the channel can show them, and the options shown as numbers (label, data), in order.
    `in_flow`: the person is inside a flow after this event; without buttons, its step ends by saying how to
    leave it, where the numbered list's hint does not already."""
    if capabilities.buttons and capabilities.html:
        return replies, []
    shown: list[tuple[str, str]] = []
    out = []
    for reply in replies:
        text = reply.text if capabilities.html else plain(reply.text)
        if capabilities.buttons or not reply.options:
            out.append(replace(reply, text=text))
            continue
        lines = []
        for row in reply.options:
            for option in row:
                if option.url:
                    lines.append(f"{option.label}: {option.url}")
                elif option.data:
                    shown.append((option.label, option.data))
                    label = html.escape(option.label, quote=False) if capabilities.html else option.label
                    lines.append(f"{len(shown)}. {label}")
        hint = t("render.by_number") if any(option.data for row in reply.options for option in row) else ""
        body = "\n".join(part for part in (text, "\n".join(lines), hint) if part)
        out.append(replace(reply, text=Safe(body), options=()))
    if in_flow and not capabilities.buttons and not any(o.data for row in replies[-1].options for o in row):
        last = out[-1]
        if last.document or last.photo:
            out.append(Reply(Safe(t("render.in_flow"))))
        else:
            out[-1] = replace(last, text=Safe(f"{last.text}\n{t('render.in_flow')}"))
    return out, shown


def linked(reply: Reply, url: str, t: Texts) -> Reply:
    """A document where the channel takes no files: a download link under the text, in the reader's language."""
    line = t("zalo.document_link", filename=reply.document.filename, url=url)
    return replace(reply, text=Safe(f"{reply.text}\n\n{line}" if reply.text else line), document=None)


def plain(text: str) -> str:
    """HTML as a person reads it where a channel shows no HTML: links as "text: URL", tags gone, entities read."""

    def link(match: re.Match) -> str:
        url, label = html.unescape(match.group(1)), _TAG.sub("", match.group(2))
        return url if html.unescape(label).strip() in ("", url) else f"{label}: {url}"

    return html.unescape(_TAG.sub("", _LINK.sub(link, text)))
