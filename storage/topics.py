"""Topics (lĩnh vực) that citizens follow and cadres handle."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storage.db import Database

log = logging.getLogger(__name__)

DEFAULT_TOPICS = [
    ("nong-thon-moi", "Xây dựng nông thôn mới", "New rural areas", False),
    ("do-thi-van-minh", "Đô thị văn minh", "Civilized urban areas", False),
    ("gop-y-van-kien", "Góp ý văn kiện Đại hội", "Comments on Party congress documents", True),
    ("an-sinh", "An sinh xã hội – hỗ trợ khó khăn", "Social welfare and hardship support", False),
    ("dan-van-kheo", "Dân vận khéo", "Skilful mass mobilisation (Dân vận khéo)", False),
    ("khac", "Khác", "Other", False),
]


@dataclass(frozen=True)
class Topic:
    id: int
    code: str
    name_vi: str
    name_en: str
    sensitive: bool
    answer_days: int = 10  # working days to answer a case
    active: bool = True  # offered to people; a hidden topic keeps its cases

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_vi


_COLUMNS = "id, code, name_vi, name_en, sensitive, answer_days, active"


def _row(r) -> Topic:
    return Topic(r["id"], r["code"], r["name_vi"], r["name_en"], bool(r["sensitive"]), r["answer_days"],
                 bool(r["active"]))


class TopicRepo:
    """Topics are read at almost every step of a flow and change rarely, only here (handlers/topics.py, the seed at
    start): they are kept in memory once read and read again after each change made here. With several workers a
    change is announced (`announce`, a signal the App wires, storage/notify.py) and each worker `forget`s its copy."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._every: list[Topic] | None = None  # every topic, in order; None: read them at the next use
        self._changes = 0  # a read that a change overtook is not kept
        self.announce: Callable[[], Awaitable[None]] | None = None

    async def _topics(self) -> list[Topic]:
        if self._every is None:
            changes = self._changes
            rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM topics ORDER BY position, id")
            if changes != self._changes:
                return [_row(r) for r in rows]
            self._every = [_row(r) for r in rows]
        return self._every

    def forget(self) -> None:
        """Read them again at the next use (they changed, here or on another worker)."""
        self._changes += 1
        self._every = None

    async def _changed(self) -> None:
        self.forget()
        if self.announce is not None:
            try:
                await self.announce()
            except Exception:  # the change is made; the other workers read it after their next restart
                log.warning("could not tell the other workers that the topics changed", exc_info=True)

    async def all(self) -> list[Topic]:
        return [topic for topic in await self._topics() if topic.active]

    async def every(self) -> list[Topic]:
        """Hidden ones too, for the admins who edit them."""
        return list(await self._topics())

    async def update(self, topic_id: int, *, expect: dict[str, object] | None = None,
                     **fields: object) -> Topic | None:
        """Change these fields; with `expect`, only while the topic still has those values (checked in the UPDATE
        itself: of two admins at once the second does not undo the first). None when nothing was changed."""
        known = {"name_vi", "name_en", "answer_days", "active"}
        unknown = (set(fields) | set(expect or {})) - known
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        condition = "".join(f" AND {name} = ?" for name in expect or {})
        try:
            changed = await self.db.returning(f"UPDATE topics SET {assignments} WHERE id = ?{condition} RETURNING id",
                                              (*fields.values(), topic_id, *(expect or {}).values()))
        finally:
            await self._changed()
        return await self.get(topic_id) if changed else None

    async def create(self, code: str, name_vi: str, name_en: str) -> Topic | None:
        """A new topic, last in the lists; None when the code is taken."""
        if await self.by_code(code) is not None:
            return None
        try:
            await self.db.execute(
                "INSERT INTO topics (code, name_vi, name_en, position)"
                " SELECT ?, ?, ?, coalesce(max(position), 0) + 1 FROM topics WHERE true ON CONFLICT(code) DO NOTHING",
                (code, name_vi, name_en))
        finally:
            await self._changed()
        return await self.by_code(code)

    async def get(self, topic_id: int) -> Topic | None:
        return next((topic for topic in await self._topics() if topic.id == topic_id), None)

    async def by_code(self, code: str) -> Topic | None:
        return next((topic for topic in await self._topics() if topic.code == code), None)

    async def seed(self) -> int:
        try:
            await self.db.executemany(
                "INSERT INTO topics (code, name_vi, name_en, sensitive, position) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(code, vi, en, int(sensitive), pos) for pos, (code, vi, en, sensitive) in enumerate(DEFAULT_TOPICS)],
            )
        finally:
            await self._changed()
        return len(DEFAULT_TOPICS)
