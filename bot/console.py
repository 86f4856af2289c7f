"""What the `danvan` command tells its operator, from the catalogs' [cli] section.

In Vietnamese, or in English when the terminal's locale (LANG) is English, as command-line tools do."""

from __future__ import annotations

import getpass
import os
import sys

from messages import Texts


def texts() -> Texts:
    return Texts("en" if os.environ.get("LANG", "").lower().startswith("en") else "vi")


def help_text(key: str) -> str:
    """`danvan --help`'s line for `key`."""
    return texts().plain(f"cli.help.{key}")


def fragment(key: str, **values: object) -> str:
    """A piece of a [cli.file] text, such as where in a file a problem is ("nhiệm vụ thứ 3")."""
    return texts().plain(f"cli.file.{key}", **values)


class Problem(Exception):
    """What is wrong with a file the operator gave, in their language: the [cli.file] text of `key`."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(fragment(key, **values))


def say(key: str, *, error: bool = False, **values: object) -> None:
    print(texts().plain(f"cli.{key}", **values), file=sys.stderr if error else sys.stdout, flush=True)


def operator() -> str:
    """Who ran the command, for the audit log: the command line has no chat account, but the machine knows."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid())
