"""Work-plan tasks from a YAML file (`danvan task load FILE`; docs/tasks-2020-h2.yaml is a sample).

    tasks:
      - code: dv-2020h2-01          # unique: loading the file again updates the task, never doubles it
        title: "…"                  # 5–200 characters
        description: "…"            # optional, up to 2000 characters
        deadline: 2020-11-30        # a date; the task is due at the end of that day (local time)
        localities: ["44"]          # locality codes: their cadres (and those of every place inside) do it

The whole file is checked before anything is written, and written in one transaction: one mistake and
nothing is loaded.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.console import Problem, fragment
from handlers.tasks import DESCRIPTION, TITLE, end_of_day
from storage import Store
from storage.tasks import LoadedTask

CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
FIELDS = ("code", "title", "description", "deadline", "localities")


class TaskFileError(Problem):
    """What is wrong with the file, and where (the task's position and field)."""


@dataclass(frozen=True)
class TaskSpec:
    code: str
    title: str
    description: str
    deadline: date
    localities: tuple[str, ...]


def parse(text: str) -> list[TaskSpec]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TaskFileError("not_yaml", detail=err) from None
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), list) or not document["tasks"]:
        raise TaskFileError("tasks_list")
    specs, codes = [], set()
    for number, item in enumerate(document["tasks"], start=1):
        where = fragment("task_n", n=number)
        if not isinstance(item, dict):
            raise TaskFileError("mapping_of", where=where, keys=", ".join(FIELDS))
        unknown = set(item) - set(FIELDS)
        if unknown:
            raise TaskFileError("unknown_keys", where=where, keys=", ".join(sorted(map(str, unknown))))
        code = str(item.get("code", ""))
        if not CODE.match(code) or code in codes:
            raise TaskFileError("task_code", where=where, code=repr(code))
        codes.add(code)
        title = " ".join(str(item.get("title") or "").split())
        if not TITLE[0] <= len(title) <= TITLE[1]:
            raise TaskFileError("task_title", where=where, code=code, low=TITLE[0], high=TITLE[1])
        description = str(item.get("description") or "").strip()
        if len(description) > DESCRIPTION:
            raise TaskFileError("task_description", where=where, code=code, limit=DESCRIPTION)
        deadline = item.get("deadline")
        if isinstance(deadline, str):
            try:
                deadline = date.fromisoformat(deadline)
            except ValueError:
                deadline = None
        if not isinstance(deadline, date) or isinstance(deadline, datetime):
            raise TaskFileError("task_deadline", where=where, code=code)
        localities = item.get("localities")
        if not isinstance(localities, list) or not localities:
            raise TaskFileError("task_localities", where=where, code=code)
        specs.append(TaskSpec(code, title, description, deadline, tuple(str(c) for c in localities)))
    return specs


async def load(store: Store, path: Path, tz: ZoneInfo, now: datetime) -> tuple[int, int]:
    """Create or update the tasks of the file; returns (created, updated)."""
    specs = parse(await asyncio.to_thread(path.read_text, encoding="utf-8-sig"))
    places: dict[str, int] = {}
    for spec in specs:
        for code in spec.localities:
            if code not in places:
                loc = await store.localities.by_code(code)
                if loc is None:
                    raise TaskFileError("unknown_locality", where=spec.code, code=repr(code))
                places[code] = loc.id
    return await store.tasks.load([LoadedTask(spec.code, spec.title, spec.description, end_of_day(spec.deadline, tz),
                                              frozenset(places[c] for c in spec.localities)) for spec in specs], now)
