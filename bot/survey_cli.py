"""`danvan survey load FILE.yaml`: surveys from YAML, checked whole before anything is saved; each problem
says the line it is on. `danvan survey results CODE --out FILE.xlsx`: the workbook. The format is in
docs/surveys/README.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot import console, yaml_fields
from bot.campaign_cli import _audience
from bot.config import Config
from bot.console import help_text as _h
from bot.console import say
from bot.yaml_fields import FileProblem, flag, text
from handlers.broadcast import parse_when
from handlers.survey_results import workbook
from handlers.surveys import invite
from storage import Store
from storage.broadcasts import Audience
from storage.campaigns import CODE
from storage.clock import parse
from storage.surveys import (
    CHOICE_KINDS,
    INTRO,
    KINDS,
    LABEL,
    MAX_CHOICES,
    MAX_QUESTIONS,
    QUESTION,
    TITLE,
    Choice,
    NewSurvey,
    Question,
)

SURVEY_KEYS = {"code", "title_vi", "title_en", "intro_vi", "intro_en", "opens", "closes", "anonymous", "political",
               "remind_days_before", "audience", "questions", "poll"}
QUESTION_KEYS = {"key", "kind", "text_vi", "text_en", "required", "choices", "labels_vi", "labels_en", "min", "max",
                 "show_if"}
CHOICE_KEYS = {"key", "vi", "en", "offer_report"}
KEY = re.compile(r"^[a-z0-9_]{1,12}$")  # short: it travels in button data
POLL_CHOICES = 5  # a quick poll's choices are the announcement's buttons
NUMBER = re.compile(r"^-?\d{1,9}$")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    survey = sub.add_parser("survey", help=_h("survey.group")).add_subparsers(dest="survey_command", required=True)
    load = survey.add_parser("load", help=_h("survey.load"))
    load.add_argument("file", type=Path)
    survey.add_parser("invite", help=_h("survey.invite")).add_argument("code")
    results = survey.add_parser("results", help=_h("survey.results"))
    results.add_argument("code")
    results.add_argument("--out", type=Path, required=True, help=_h("survey.out"))


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now: datetime) -> int | None:
    if args.command != "survey":
        return None
    try:
        if args.survey_command == "load":
            return await _load(store, config, args, now)
        if args.survey_command == "invite":
            return await _invite(store, config, args, now)
        return await _results(store, config, args, now)
    except FileProblem as problem:
        print(f"{getattr(args, 'file', '')}: {problem}", file=sys.stderr)
        return 1


# ---- reading, with the line of every value --------------------------------------------------------------


class AtLine(FileProblem):
    """A problem already placed on its line."""


def _lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _lines(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


class Reader:
    """The file's values as written (bot/yaml_fields.py) and where each one is."""

    def __init__(self, source: str) -> None:
        self.data = yaml_fields.read(source)
        self.lines: dict[tuple, int] = {}
        node = yaml.compose(source, Loader=yaml_fields._AsWritten)  # noqa: S506 - the same safe loader
        if node is not None:
            _lines(node, (), self.lines)

    def line(self, path: tuple) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    @contextlib.contextmanager
    def at(self, path: tuple):
        """A problem found while checking the value at `path` is said with its line."""
        try:
            yield
        except AtLine:
            raise
        except FileProblem as problem:
            raise AtLine("survey.at_line", line=self.line(path), problem=problem) from None


def _where(path: tuple) -> str:
    return ".".join(str(p) if isinstance(p, str) else f"[{p + 1}]" for p in path).replace(".[", "[")


def read_surveys(source: str) -> tuple[Reader, list[tuple[tuple, object]]]:
    """The surveys a file holds: one (a mapping) or a list under `surveys`; with where each one is."""
    reader = Reader(source)
    data = reader.data
    if isinstance(data, dict) and "surveys" in data:
        items = data["surveys"]
        if not isinstance(items, list) or not items:
            with reader.at(("surveys",)):
                raise FileProblem("survey.list")
        return reader, [(("surveys", i), item) for i, item in enumerate(items)]
    if not isinstance(data, dict):
        raise FileProblem("survey.list")
    return reader, [((), data)]


def _mapping(reader: Reader, path: tuple, item: object, keys: set[str]) -> dict:
    with reader.at(path):
        if not isinstance(item, dict):
            raise FileProblem("mapping_of", where=_where(path) or "survey", keys=", ".join(sorted(keys)))
        unknown = set(item) - keys
        if unknown:
            raise FileProblem("unknown_keys", where=_where(path) or "survey", keys=", ".join(sorted(map(str, unknown))))
    return item


def _text(reader: Reader, item: dict, path: tuple, key: str, limit: int, *, required: bool = False) -> str | None:
    with reader.at((*path, key)):
        value = text(item.get(key), _where((*path, key)), required=required)
        if value is not None and len(value) > limit:
            raise FileProblem("too_long", field=_where((*path, key)), length=len(value), limit=limit)
    return value


def _moment(reader: Reader, item: dict, path: tuple, key: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """A local "dd/mm/yyyy hh:mm", or a day: from its start (opens) or to 23:59 (closes)."""
    with reader.at((*path, key)):
        value = text(item.get(key), _where((*path, key)), required=True)
        moment = parse_when(value, tz)
        if moment is None:
            try:
                day = yaml_fields.day(value, _where((*path, key)))
            except FileProblem:
                raise FileProblem("survey.bad_moment", where=_where((*path, key)), value=repr(value)) from None
            moment = datetime.combine(day, time(23, 59) if end else time(), tzinfo=tz).astimezone(UTC)
    return moment


def _question(reader: Reader, path: tuple, item: object, earlier: dict[str, Question]) -> Question:
    q = _mapping(reader, path, item, QUESTION_KEYS)
    with reader.at((*path, "key")):
        key = text(q.get("key"), _where((*path, "key")), required=True)
        if not KEY.match(key):
            raise FileProblem("survey.question_key", where=_where((*path, "key")), code=repr(key))
        if key in earlier:
            raise FileProblem("survey.same_key", where=_where((*path, "key")), code=key)
    with reader.at((*path, "kind")):
        kind = text(q.get("kind"), _where((*path, "kind")), required=True)
        if kind not in KINDS:
            raise FileProblem("survey.kind", where=_where((*path, "kind")), kind=repr(kind), kinds=", ".join(KINDS))
    text_vi = _text(reader, q, path, "text_vi", QUESTION, required=True)
    text_en = _text(reader, q, path, "text_en", QUESTION)
    with reader.at((*path, "required")):
        required = q.get("required") is None or flag(q.get("required"), _where((*path, "required")))
    choices: tuple[Choice, ...] = ()
    low = high = None
    if kind in ("single", "multiple"):
        choices = _choices(reader, (*path, "choices"), q.get("choices"))
    elif "choices" in q:
        with reader.at((*path, "choices")):
            raise FileProblem("survey.no_choices", where=_where((*path, "choices")), kind=kind)
    if kind == "scale":
        choices = _scale(reader, path, q)
    elif q.get("labels_vi") is not None or q.get("labels_en") is not None:
        with reader.at((*path, "labels_vi")):
            raise FileProblem("survey.labels_only_scale", where=_where(path))
    if kind == "number":
        low, high = (_number(reader, q, path, k) for k in ("min", "max"))
        if low >= high:
            with reader.at((*path, "max")):
                raise FileProblem("survey.range", where=_where(path), low=low, high=high)
    elif q.get("min") is not None or q.get("max") is not None:
        with reader.at((*path, "min")):
            raise FileProblem("survey.range_only_number", where=_where(path))
    show_if = _show_if(reader, (*path, "show_if"), q.get("show_if"), earlier) if q.get("show_if") is not None else None
    return Question(key, kind, text_vi, text_en, required, choices, low, high, show_if)


def _choices(reader: Reader, path: tuple, items: object) -> tuple[Choice, ...]:
    with reader.at(path):
        if not isinstance(items, list) or not 2 <= len(items) <= MAX_CHOICES:
            raise FileProblem("survey.choices", where=_where(path), high=MAX_CHOICES)
    out: list[Choice] = []
    for index, item in enumerate(items):
        at = (*path, index)
        c = _mapping(reader, at, item, CHOICE_KEYS)
        with reader.at((*at, "key")):
            key = text(c.get("key"), _where((*at, "key")), required=True)
            if not KEY.match(key):
                raise FileProblem("survey.question_key", where=_where((*at, "key")), code=repr(key))
            if any(o.key == key for o in out):
                raise FileProblem("survey.same_key", where=_where((*at, "key")), code=key)
        vi, en = (_text(reader, c, at, lang, LABEL, required=lang == "vi") for lang in ("vi", "en"))
        with reader.at((*at, "offer_report")):
            offer = flag(c.get("offer_report"), _where((*at, "offer_report")))
        out.append(Choice(key, vi, en, offer))
    return tuple(out)


def _scale(reader: Reader, path: tuple, q: dict) -> tuple[Choice, ...]:
    """Five points, 1 to 5; labels (five of them, each language) are optional."""
    labels = {}
    for lang in ("vi", "en"):
        with reader.at((*path, f"labels_{lang}")):
            given = q.get(f"labels_{lang}")
            if given is not None and (not isinstance(given, list) or len(given) != 5
                                      or not all(isinstance(v, str) and 0 < len(v.strip()) <= LABEL for v in given)):
                raise FileProblem("survey.labels", where=_where((*path, f"labels_{lang}")), limit=LABEL)
            labels[lang] = [v.strip() for v in given] if given else None
    return tuple(Choice(str(n), f"{n} · {labels['vi'][n - 1]}" if labels["vi"] else str(n),
                        f"{n} · {labels['en'][n - 1]}" if labels["en"] else None) for n in range(1, 6))


def _number(reader: Reader, q: dict, path: tuple, key: str) -> int:
    with reader.at((*path, key)):
        value = text(q.get(key), _where((*path, key)), required=True)
        if not NUMBER.match(value):
            raise FileProblem("survey.integer", where=_where((*path, key)), value=repr(value))
    return int(value)


def _show_if(reader: Reader, path: tuple, spec: object, earlier: dict[str, Question]) -> tuple[str, tuple[str, ...]]:
    with reader.at(path):
        if not isinstance(spec, dict) or set(spec) != {"question", "in"}:
            raise FileProblem("survey.show_if", where=_where(path))
        key = text(spec["question"], _where((*path, "question")), required=True)
        if key not in earlier:
            raise FileProblem("survey.show_if_question", where=_where(path), code=repr(key))
        values = yaml_fields.codes(spec["in"], _where((*path, "in")))
        allowed = values_of(earlier[key])
        wrong = [v for v in values if allowed is not None and v not in allowed]
        if not values or wrong:
            raise FileProblem("survey.show_if_values", where=_where(path), values=", ".join(wrong) or "[]",
                              allowed=", ".join(allowed or ()))
    return key, values


async def _audience_at(store: Store, reader: Reader, path: tuple, spec: object) -> Audience:
    """The broadcasts' audience (bot/campaign_cli.py), each of its lists checked on its own line."""
    for name in spec if isinstance(spec, dict) else ():
        with reader.at((*path, name)):
            await _audience(store, {name: spec[name]})
    with reader.at(path):
        return await _audience(store, spec)


def values_of(question: Question) -> tuple[str, ...] | None:
    """The values a question's answer can take; None where it is free (number, text, locality)."""
    if question.kind == "yesno":
        return ("yes", "no")
    if question.kind in CHOICE_KINDS:
        return tuple(c.key for c in question.choices)
    return None


async def check_surveys(store: Store, source: str, tz: ZoneInfo) -> list[NewSurvey]:
    """Every survey of the file, checked; the first problem raises FileProblem with its line."""
    reader, items = read_surveys(source)
    out: list[NewSurvey] = []
    for path, item in items:
        s = _mapping(reader, path, item, SURVEY_KEYS)
        with reader.at((*path, "code")):
            code = text(s.get("code"), _where((*path, "code")) or "code", required=True)
            if not CODE.match(code):
                raise FileProblem("campaign_code", where=_where((*path, "code")), code=repr(code))
            if any(o.code == code for o in out):
                raise FileProblem("same_code")
        title_vi = _text(reader, s, path, "title_vi", TITLE, required=True)
        title_en = _text(reader, s, path, "title_en", TITLE)
        intro_vi = _text(reader, s, path, "intro_vi", INTRO, required=True)
        intro_en = _text(reader, s, path, "intro_en", INTRO)
        opens = _moment(reader, s, path, "opens", tz, end=False)
        closes = _moment(reader, s, path, "closes", tz, end=True)
        if closes <= opens:
            with reader.at((*path, "closes")):
                raise FileProblem("survey.closes_first", where=_where((*path, "closes")))
        with reader.at((*path, "anonymous")):
            anonymous = flag(s.get("anonymous"), "anonymous")
        with reader.at((*path, "political")):
            political = flag(s.get("political"), "political")
        remind = None
        if s.get("remind_days_before") is not None:
            remind = _number(reader, s, path, "remind_days_before")
            if not 1 <= remind <= 30:
                with reader.at((*path, "remind_days_before")):
                    raise FileProblem("survey.remind", where="remind_days_before")
        audience = await _audience_at(store, reader, (*path, "audience"), s.get("audience") or {})
        with reader.at((*path, "questions")):
            questions = s.get("questions")
            if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
                raise FileProblem("survey.questions", where=_where((*path, "questions")), high=MAX_QUESTIONS)
        earlier: dict[str, Question] = {}
        for index, q in enumerate(questions):
            question = _question(reader, (*path, "questions", index), q, earlier)
            earlier[question.key] = question
        with reader.at((*path, "poll")):
            poll = flag(s.get("poll"), "poll")
            only = next(iter(earlier.values()))
            if poll and (len(earlier) != 1 or only.kind != "single" or len(only.choices) > POLL_CHOICES):
                raise FileProblem("survey.poll", where="poll", high=POLL_CHOICES)
        out.append(NewSurvey(code, title_vi, intro_vi, opens, closes, tuple(earlier.values()), title_en, intro_en,
                             audience, anonymous, political, remind, poll))
    return out


async def _load(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    try:
        source = await asyncio.to_thread(args.file.read_text, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblem("unreadable", reason=getattr(err, "strerror", None) or err) from None
    surveys = await check_surveys(store, source, ZoneInfo(config.tz))
    await store.surveys.save_all(surveys, now)
    await store.audit.record(None, "survey.loaded", None, now, via="cli", by=console.operator(),
                             codes=[s.code for s in surveys])
    say("survey.loaded", count=len(surveys), codes=", ".join(s.code for s in surveys))
    return 0


async def _invite(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    survey = await store.surveys.by_code(args.code)
    if survey is None:
        say("survey.unknown", error=True, code=args.code)
        return 1
    tz = ZoneInfo(config.tz)
    broadcast = await invite(store, survey, now, config.quiet, tz)
    count = await store.broadcasts.count_audience(survey.audience)
    await store.audit.record(None, "survey.invited", f"survey:{survey.code}", now, via="cli", by=console.operator(),
                             broadcast=broadcast.id)
    say("survey.invited", id=broadcast.id, count=count,
        when=parse(broadcast.scheduled_at).astimezone(tz).strftime("%d/%m/%Y %H:%M"))
    return 0


async def _results(store: Store, config: Config, args: argparse.Namespace, now: datetime) -> int:
    survey = await store.surveys.by_code(args.code)
    if survey is None:
        say("survey.unknown", error=True, code=args.code)
        return 1
    content = await workbook(store, survey, None, ZoneInfo(config.tz), console.texts())
    await asyncio.to_thread(args.out.write_bytes, content)
    await store.audit.record(None, "survey.exported", f"survey:{survey.code}", now, via="cli", by=console.operator())
    print(args.out)
    return 0

