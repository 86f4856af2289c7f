"""`danvan db copy SQLITE_PATH postgresql://…`: a province moving up to PostgreSQL (storage/copy.py does it)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from bot.console import help_text as _h
from bot.console import say
from storage import copy
from storage.dialect import is_url, shown


def add_parser(db: argparse._SubParsersAction) -> None:
    parser = db.add_parser("copy", help=_h("copy.copy"))
    parser.add_argument("source", type=Path, metavar="SQLITE_PATH", help=_h("copy.source"))
    parser.add_argument("target", metavar="POSTGRESQL_URL", help=_h("copy.target"))
    parser.add_argument("--force", action="store_true", help=_h("copy.force"))


async def run(args: argparse.Namespace) -> int:
    if not is_url(args.target):
        say("copy.not_postgresql", error=True, target=args.target)
        return 2
    try:
        copied = await copy.copy(args.source, args.target, force=args.force)
    except copy.CopyError as err:
        say(f"copy.{err.key}", error=True, **err.values)
        return 1
    except (OSError, sqlite3.Error) as err:
        say("copy.failed", error=True, problem=err)
        return 1
    for table, rows in copied.rows.items():
        say("copy.table", table=table, rows=rows)
    for problem in copied.mismatches:
        say("copy.mismatch", error=True, problem=problem)
    if copied.missing_files:
        say("copy.missing_files", error=True, count=len(copied.missing_files),
            digests=", ".join(copied.missing_files[:5]))
    say("copy.done", rows=sum(copied.rows.values()), tables=len(copied.rows), files=copied.files,
        uploads=copied.uploads, source=args.source, target=shown(args.target))
    return 1 if copied.problems else 0
