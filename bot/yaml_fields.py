"""An operator's YAML file (tasks, campaigns, broadcasts) read, and its fields checked, the same way for all.

Values are read as written. YAML 1.1 would turn `0044` into the number 36, `2030-02-31` into a traceback,
`no` into False and `07:30` into 450; here they stay the text `0044`, `2030-02-31`, `no` and `07:30`, and
each field says what it needs:

- a text field takes text (a number is its text as written; a list or a table is refused);
- a yes/no field takes true/false, yes/no or on/off, in any case; anything else (`maybe`, `1`) is refused;
- a date is YYYY-MM-DD or DD/MM/YYYY and must exist (`2030-02-31` and `31/02/2030` are refused);
- a list of codes is a YAML list of texts (`[44, "19702"]`), never one bare text.

`null`, `~` and an empty value mean "not given". A key written twice in one table is refused, with its line.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import yaml

from bot.console import Problem

FLAGS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
LOCAL_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


class FileProblem(Problem):
    """What is wrong with a YAML file, and where."""


class _AsWritten(yaml.SafeLoader):
    yaml_implicit_resolvers: dict = {}  # only null below: every other plain value is text

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """A key written twice is refused: YAML would keep the last silently, and the operator meant one of them."""
        first: dict[str, int] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in first:
                    raise FileProblem("duplicate_key", name=key.value, line=key.start_mark.line + 1,
                                      first=first[key.value])
                first[key.value] = key.start_mark.line + 1
        return super().construct_mapping(node, deep)


_AsWritten.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                 ["~", "n", "N", ""])


def read(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_AsWritten)  # noqa: S506 - a SafeLoader with fewer implicit types
    except (yaml.YAMLError, ValueError, RecursionError) as err:  # ValueError: an explicit tag such as !!int x
        raise FileProblem("not_yaml", detail=err) from None


def text(value: object, where: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FileProblem("required", where=where)
        return None
    if not isinstance(value, str):
        raise FileProblem("must_be_text", where=where)
    return value.strip()


def flag(value: object, where: str) -> bool:
    """False when not given."""
    if value is None:
        return False
    if isinstance(value, bool):  # an explicit !!bool tag
        return value
    if isinstance(value, str) and value.strip().lower() in FLAGS:
        return FLAGS[value.strip().lower()]
    raise FileProblem("must_be_flag", where=where, value=repr(value))


def day(value: object, where: str, *, required: bool = False) -> date | None:
    if value is None:
        if required:
            raise FileProblem("required", where=where)
        return None
    if isinstance(value, str):
        if match := ISO_DAY.fullmatch(value.strip()):
            year, month, number = map(int, match.groups())
        elif match := LOCAL_DAY.fullmatch(value.strip()):
            number, month, year = map(int, match.groups())
        else:
            raise FileProblem("bad_date", where=where, value=repr(value))
        try:
            return date(year, month, number)
        except ValueError:
            pass
    raise FileProblem("bad_date", where=where, value=repr(value))


def codes(value: object, where: str) -> tuple[str, ...]:
    """Empty when not given."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise FileProblem("must_be_codes", where=where)
    return tuple(c.strip() for c in value)

