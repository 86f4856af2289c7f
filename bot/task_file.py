"""Work-plan tasks from a YAML file (`danvan task load FILE`; docs/tasks-2020-h2.yaml is a sample).

    tasks:
      - code: dv-2020h2-01          # unique: loading the file again updates the task, never doubles it
        title: "…"                  # 5–200 characters
        description: "…"            # optional, up to 2000 characters
        deadline: 2020-11-30        # a date (or 30/11/2020); the task is due at the end of that day (local time)
        localities: ["44"]          # locality codes: their cadres (and those of every place inside) do it

The whole file is checked before anything is written, and written in one transaction: one mistake and
nothing is loaded. Values are read as written (bot/yaml_fields.py says how).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import yaml_fields
from bot.console import fragment
from bot.yaml_fields import FileProblem
from handlers.tasks import DESCRIPTION, TITLE, end_of_day
from storage import Store
from storage.tasks import LoadedTask

CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
FIELDS = ("code", "title", "description", "deadline", "localities")


@dataclass(frozen=True)
class TaskSpec:
    code: str
    title: str
    description: str
    deadline: date
    localities: tuple[str, ...]


def parse(text: str) -> list[TaskSpec]:
    document = yaml_fields.read(text)
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), list) or not document["tasks"]:
        raise FileProblem("tasks_list")
    specs, codes = [], set()
    for number, item in enumerate(document["tasks"], start=1):
        where = fragment("task_n", n=number)
        if not isinstance(item, dict):
            raise FileProblem("mapping_of", where=where, keys=", ".join(FIELDS))
        unknown = set(item) - set(FIELDS)
        if unknown:
            raise FileProblem("unknown_keys", where=where, keys=", ".join(sorted(map(str, unknown))))
        code = yaml_fields.text(item.get("code"), f"{where}: code") or ""
        if not CODE.match(code) or code in codes:
            raise FileProblem("task_code", where=where, code=repr(code))
        codes.add(code)
        at = f"{where} ({code})"
        title = " ".join((yaml_fields.text(item.get("title"), f"{at}: title") or "").split())
        if not TITLE[0] <= len(title) <= TITLE[1]:
            raise FileProblem("task_title", where=where, code=code, low=TITLE[0], high=TITLE[1])
        description = yaml_fields.text(item.get("description"), f"{at}: description") or ""
        if len(description) > DESCRIPTION:
            raise FileProblem("task_description", where=where, code=code, limit=DESCRIPTION)
        deadline = yaml_fields.day(item.get("deadline"), f"{at}: deadline", required=True)
        localities = yaml_fields.codes(item.get("localities"), f"{at}: localities")
        if not localities:
            raise FileProblem("task_localities", where=where, code=code)
        specs.append(TaskSpec(code, title, description, deadline, localities))
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
                    raise FileProblem("unknown_locality", where=spec.code, code=repr(code))
                places[code] = loc.id
    return await store.tasks.load([LoadedTask(spec.code, spec.title, spec.description, end_of_day(spec.deadline, tz),
                                              frozenset(places[c] for c in spec.localities)) for spec in specs], now)
