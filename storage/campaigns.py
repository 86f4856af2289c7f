"""Campaigns (cuộc vận động): what a `c_<code>` deep link opens."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True)
class Campaign:
    id: int
    code: str
    title_vi: str
    title_en: str | None
    description_vi: str
    description_en: str | None
    topic_id: int | None

    def title(self, language: str) -> str:
        return (self.title_en or self.title_vi) if language == "en" else self.title_vi

    def description(self, language: str) -> str:
        return (self.description_en or self.description_vi) if language == "en" else self.description_vi


_COLUMNS = "id, code, title_vi, title_en, description_vi, description_en, topic_id"


class CampaignRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, campaign_id: int) -> Campaign | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,))
        return Campaign(*r) if r else None

    async def by_code(self, code: str) -> Campaign | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM campaigns WHERE code = ?", (code,))
        return Campaign(*r) if r else None

    async def upsert(self, code: str, title_vi: str, description_vi: str, topic_id: int | None,
                     title_en: str | None = None, description_en: str | None = None) -> int:
        await self.db.execute(
            "INSERT INTO campaigns (code, title_vi, title_en, description_vi, description_en, topic_id)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET title_vi = excluded.title_vi,"
            " title_en = excluded.title_en, description_vi = excluded.description_vi,"
            " description_en = excluded.description_en, topic_id = excluded.topic_id",
            (code, title_vi, title_en, description_vi, description_en, topic_id),
        )
        row = await self.db.fetchone("SELECT id FROM campaigns WHERE code = ?", (code,))
        return row[0]
