"""Topics (lĩnh vực) that citizens follow and cadres handle."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database

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
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[Topic]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM topics WHERE active = 1 ORDER BY position, id"
        )
        return [_row(r) for r in rows]

    async def every(self) -> list[Topic]:
        """Hidden ones too, for the admins who edit them."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM topics ORDER BY position, id")
        return [_row(r) for r in rows]

    async def update(self, topic_id: int, **fields: object) -> Topic | None:
        unknown = set(fields) - {"name_vi", "name_en", "answer_days", "active"}
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(f"UPDATE topics SET {assignments} WHERE id = ?", (*fields.values(), topic_id))
        return await self.get(topic_id)

    async def create(self, code: str, name_vi: str, name_en: str) -> Topic | None:
        """A new topic, last in the lists; None when the code is taken."""
        if await self.by_code(code) is not None:
            return None
        await self.db.execute(
            "INSERT INTO topics (code, name_vi, name_en, position)"
            " SELECT ?, ?, ?, coalesce(max(position), 0) + 1 FROM topics WHERE true ON CONFLICT(code) DO NOTHING",
            (code, name_vi, name_en))
        return await self.by_code(code)

    async def get(self, topic_id: int) -> Topic | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM topics WHERE id = ?",
                                   (topic_id,))
        return _row(r) if r else None

    async def by_code(self, code: str) -> Topic | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM topics WHERE code = ?",
                                   (code,))
        return _row(r) if r else None

    async def seed(self) -> int:
        await self.db.executemany(
            "INSERT OR IGNORE INTO topics (code, name_vi, name_en, sensitive, position) VALUES (?, ?, ?, ?, ?)",
            [(code, vi, en, int(sensitive), pos) for pos, (code, vi, en, sensitive) in enumerate(DEFAULT_TOPICS)],
        )
        return len(DEFAULT_TOPICS)
