"""What the `danvan` command tells its operator, from the catalogs' [cli] section.

In Vietnamese, or in English when the terminal's locale (LANG) is English, as command-line tools do."""

from __future__ import annotations

import os
import sys

from messages import Texts


def texts() -> Texts:
    return Texts("en" if os.environ.get("LANG", "").lower().startswith("en") else "vi")


def say(key: str, *, error: bool = False, **values: object) -> None:
    print(texts().plain(f"cli.{key}", **values), file=sys.stderr if error else sys.stdout, flush=True)
