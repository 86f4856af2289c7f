"""Each feature's one declaration (DESIGN.md §3): its commands, what it adds to a person's /dulieu and /xoadulieu,
its digest section, the button kinds a broadcast may carry. The menus, /huongdan, the platform's command menus,
/dulieu, /xoadulieu, the digest and a broadcast's buttons are derived from `features`; docs/architecture.md "Adding a
feature" is the recipe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from handlers.base import ALL_ROLES, Ctx, registry
from storage import erasure

if TYPE_CHECKING:
    from handlers.base import Option
    from handlers.digest import Period, Section
    from messages import Texts
    from storage.broadcasts import Broadcast, NewBroadcast


@dataclass(frozen=True)
class Command:
    """A command: who may run it (the router refuses the others), and its main-menu button, if it has one."""

    name: str  # its Vietnamese name; the handler is `@registry.command(name, *english_aliases)`
    roles: frozenset[str] = ALL_ROLES
    menu: str | None = None  # the main-menu button's label key; None: typed only
    place: int = 0  # the button's place in the main menu, smallest first (tens: a new one fits between two)
    listed: bool = True  # in /huongdan and the platform's command menu of those roles


@dataclass(frozen=True)
class Buttons:
    """A kind of button a broadcast may carry: its rows for one person's language, none when this broadcast (or the
    composer's draft, in its preview) does not carry it. Channels without buttons number them, typed as a number."""

    kind: str
    rows: Callable[[object, Broadcast | NewBroadcast, Texts], Awaitable[tuple[tuple[Option, ...], ...]]]


@dataclass(frozen=True)
class Feature:
    name: str
    commands: tuple[Command, ...] = ()
    # /dulieu: the sections it adds to the JSON, by name (None or {}: nothing for this person), the tables naming a
    # person it reads them from, and such tables it leaves out, with why.
    export: Callable[[Ctx], Awaitable[dict | None]] | None = None
    exported: tuple[str, ...] = ()
    unexported: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # /xoadulieu, at storage level (storage/erasure.py): the rows deleted, tables naming a person kept with why, and a
    # hook run inside the erasure's transaction for each of the person's accounts; `erasing` runs before, when the
    # content goes too: the notices to whoever must be told of each item the hook may withdraw, by item id (kept in the
    # outbox by the erasure's own transaction, for the items the hook says it withdrew).
    erased: tuple[erasure.Erased, ...] = ()
    kept: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    erase: erasure.Hook | None = None
    erasing: Callable[[Ctx], Awaitable[dict[int, list[tuple[int, str]]]]] | None = None
    digest: Callable[[Period], Awaitable[Section | None]] | None = None  # its part of a cadre's digest, if any
    buttons: tuple[Buttons, ...] = ()  # below a broadcast's text, after its link, in the features' order

features: list[Feature] = []  # in the order of /huongdan and the command menus, /dulieu's sections, the digest's


def declare(*declared: Feature) -> None:
    """Register the features in this order (handlers/__init__.py, once all their modules are imported)."""
    features.extend(declared)
    registry.declare({c.name: c.roles for f in declared for c in f.commands})
    for f in declared:
        erasure.declare(erasure.Part(f.name, f.erased, f.kept, f.erase))


def commands_for(role: str) -> list[str]:
    """The commands listed to a role, in order: /huongdan and the platform's command menu."""
    return [c.name for f in features for c in f.commands if c.listed and role in c.roles]


async def broadcast_rows(store, broadcast: Broadcast | NewBroadcast, t: Texts) -> tuple[tuple[Option, ...], ...]:
    """The rows of every button kind the broadcast carries, in the features' order."""
    return tuple([row for f in features for kind in f.buttons for row in await kind.rows(store, broadcast, t)])


def menu_buttons() -> list[Command]:
    """The main menu's buttons, in order, before they are filtered by role."""
    return sorted((c for f in features for c in f.commands if c.menu), key=lambda c: c.place)
