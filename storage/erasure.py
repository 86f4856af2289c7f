"""What an erasure (storage/users.py `erase`) does beyond the account row and the cases, as each feature declares
it (handlers/features.py `Feature`): rows deleted, tables kept and why, a hook run inside the erasure's transaction.
Storage cannot import the handlers, so each declaration registers its part here, in the features' order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiosqlite

# (table, what finds the person's rows, the count in `Erasure` it adds to, if any). What finds them: the account's
# "user" id, its "chat" (channel, chat id), its bare "chat_id" (a web session's chat id is a random token, never a
# Telegram or Zalo id), its "handled chat" (the erasure's own update stays in the journal until it is handled), or
# its chat's "web owner" (the hash the web chat keeps its files under, storage/web_files.py `owner_of`).
Erased = tuple[str, str, str | None]
WHERE = {"user": "user_id = ?", "chat": "channel = ? AND chat_id = ?", "chat_id": "chat_id = ?",
         "handled chat": "channel = ? AND chat_id = ? AND done_at IS NOT NULL",
         "web owner": "channel = ? AND owner = ?"}
# Run for each of the person's accounts: (connection in the transaction, account id, erase content too, the digests
# of files taken off, which go from disk when nothing else refers to them); the ids of the items it withdrew, whose
# notices (prepared by the feature's `erasing`, handlers/features.py) the same transaction keeps in the outbox.
Hook = Callable[[aiosqlite.Connection, int, bool, set[str]], Awaitable[list[int] | None]]


@dataclass(frozen=True)
class Part:
    feature: str
    erased: tuple[Erased, ...]
    kept: Mapping[str, str]  # tables naming a person the erasure keeps, and why
    hook: Hook | None


parts: list[Part] = []


def declare(part: Part) -> None:
    assert all(key in WHERE for _, key, _ in part.erased), part.erased
    parts.append(part)


def erased() -> list[Erased]:
    return [entry for part in parts for entry in part.erased]


def kept() -> dict[str, str]:
    return {table: why for part in parts for table, why in part.kept.items()}
