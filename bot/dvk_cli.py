"""`danvan dvk report ROUND --out FILE`: a "Dân vận khéo" round's report, Excel (.xlsx) or a Word summary (.docx) by
the file's suffix, the same documents an admin gets in chat (handlers/dvk_report.py). Writing it is audited."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from pathlib import Path

from bot.config import Config
from bot.console import help_text as _h
from bot.console import operator, say
from handlers import dvk_report
from messages import Texts
from storage import Store
from storage.dvk import repo


def add_parsers(sub: argparse._SubParsersAction) -> None:
    dvk = sub.add_parser("dvk", help=_h("dvk.dvk")).add_subparsers(dest="dvk_command", required=True)
    report = dvk.add_parser("report", help=_h("dvk.report"))
    report.add_argument("round", type=int, metavar="ROUND", help=_h("dvk.round"))
    report.add_argument("--out", type=Path, required=True, help=_h("dvk.out"))


async def dispatch(args: argparse.Namespace, store: Store, config: Config, now: datetime) -> int | None:
    """The command's exit status, or None when it is not this command."""
    if args.command != "dvk":
        return None
    r = await repo(store).round(args.round)
    if r is None:
        say("dvk.no_round", error=True, round=args.round)
        return 2
    suffix = args.out.suffix.lower()
    if suffix not in (".xlsx", ".docx"):
        say("dvk.bad_suffix", error=True, file=args.out)
        return 2
    t = Texts("vi")
    report = await dvk_report.gather(store, t, r)
    content = await (dvk_report.workbook(t, report) if suffix == ".xlsx"
                     else dvk_report.summary(t, report, config.operator_name))
    await asyncio.to_thread(args.out.write_bytes, content)
    await store.audit.record(None, "dvk.report", f"dvk_round:{r.id}", now, via="cli", os_user=operator(),
                             out=str(args.out))
    say("dvk.written", file=args.out, name=r.name)
    return 0
