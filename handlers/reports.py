"""What digests, reminders, tasks and exports share: numbers and dates written the Vietnamese way, place
names from one read of the locality tree, and the cases a staff member may see as a `CaseScope`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from messages import Texts, join
from storage import Store
from storage.clock import parse
from storage.digests import CaseScope
from storage.localities import Locality
from storage.users import User


def number(value: int, language: str) -> str:
    """1.234 in Vietnamese, 1,234 in English."""
    return f"{value:,}".replace(",", "." if language == "vi" else ",")


def day(moment: datetime | str, tz: ZoneInfo) -> str:
    return (parse(moment) if isinstance(moment, str) else moment).astimezone(tz).strftime("%d/%m/%Y")


def when(moment: datetime | str, tz: ZoneInfo) -> str:
    return (parse(moment) if isinstance(moment, str) else moment).astimezone(tz).strftime("%d/%m/%Y %H:%M")


async def case_scope(store: Store, user: User) -> CaseScope:
    """The cases a person sees in the inbox: admins every case; a cadre the subtrees and topics of their
    scope, plus what an admin assigned to them."""
    if user.role == "admin":
        return CaseScope(("/",))
    scope = await store.roles.scope(user.id)
    return CaseScope(await store.roles.scope_paths(user.id), scope.topic_ids, user.id)


@dataclass
class Places:
    """The locality tree, read once per digest or export (a few hundred rows)."""

    by_id: dict[int, Locality]

    @classmethod
    async def load(cls, store: Store) -> Places:
        return cls({loc.id: loc for loc in await store.digests.localities()})

    def ids(self, locality_id: int) -> list[int]:
        loc = self.by_id.get(locality_id)
        return [int(part) for part in loc.path.strip("/").split("/")] if loc else []

    def at_level(self, locality_id: int, level: int) -> int | None:
        """The ancestor of this locality at `level` (0 province, 1 commune, 2 village), or itself when
        it is not that deep."""
        chain = self.ids(locality_id)
        return chain[min(level, len(chain) - 1)] if chain else None

    def name(self, t: Texts, locality_id: int | None) -> str:
        loc = self.by_id.get(locality_id) if locality_id is not None else None
        return t(f"kind.{loc.kind}", name=loc.name) if loc else t("common.none")

    def full_name(self, t: Texts, locality_id: int) -> str:
        """"Thôn Hà Lộc, xã Hải Lăng": below the province, from the smallest up."""
        chain = [self.by_id[i] for i in self.ids(locality_id) if i in self.by_id]
        shown = [loc for loc in chain if loc.level > 0] or chain
        return join(", ", (t(f"kind.{loc.kind}", name=loc.name) for loc in reversed(shown)))

    def depth_for(self, roots: tuple[str, ...]) -> int:
        """The level to group a scope's cases by: one below its widest root, villages at most."""
        levels = [max(root.count("/") - 2, 0) for root in roots] or [1]
        return min(min(levels) + 1, 2)
