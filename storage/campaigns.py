"""Campaigns (cuộc vận động): what a `c_<code>` deep link opens, what broadcasts and cases belong to,
and how far each one reached."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from storage.clock import iso
from storage.db import Database

# A deep-link payload is at most 64 characters of A-Za-z0-9_-; "c_" + the code must fit.
CODE = re.compile(r"^[A-Za-z0-9_-]{2,40}$")


@dataclass(frozen=True)
class Campaign:
    id: int
    code: str
    title_vi: str
    title_en: str | None
    description_vi: str
    description_en: str | None
    topic_id: int | None
    starts_on: str | None = None  # local dates, YYYY-MM-DD
    ends_on: str | None = None

    def title(self, language: str) -> str:
        return (self.title_en or self.title_vi) if language == "en" else self.title_vi

    def description(self, language: str) -> str:
        return (self.description_en or self.description_vi) if language == "en" else self.description_vi


@dataclass(frozen=True)
class CampaignStats:
    broadcasts: int
    recipients: int  # people its broadcasts were addressed to
    reached: int  # people who received at least one of them
    delivered: int  # messages delivered
    blocked: int  # recipients found to have blocked the bot
    failed: int
    opens: int  # people who opened its link or QR code
    cases: int  # cases opened from its link or its "Góp ý ngay" button


class CampaignError(ValueError):
    """A campaign that cannot be saved: the [cli.file] catalog key that says which field and why, and its
    values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key, values)
        self.key, self.values = key, values


_COLUMNS = "id, code, title_vi, title_en, description_vi, description_en, topic_id, starts_on, ends_on"
EDITABLE = ("title_vi", "title_en", "description_vi", "description_en", "topic_id", "starts_on", "ends_on")


def _day(value: date | str | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value).isoformat()


_UPSERT = (
    "INSERT INTO campaigns (code, title_vi, title_en, description_vi, description_en, topic_id, starts_on,"
    " ends_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET title_vi = excluded.title_vi,"
    " title_en = excluded.title_en, description_vi = excluded.description_vi,"
    " description_en = excluded.description_en, topic_id = excluded.topic_id,"
    " starts_on = excluded.starts_on, ends_on = excluded.ends_on")


def _upsert_row(code: str, title_vi: str, description_vi: str, topic_id: int | None, title_en: str | None,
                description_en: str | None, starts_on: date | str | None, ends_on: date | str | None) -> tuple:
    if not CODE.match(code):
        raise CampaignError("campaign_code", where="code", code=repr(code))
    if not title_vi.strip():
        raise CampaignError("required", where=f"{code}: title_vi")
    start, end = _day(starts_on), _day(ends_on)
    if start and end and end < start:
        raise CampaignError("campaign_dates", where=code, start=start, end=end)
    return code, title_vi, title_en, description_vi, description_en, topic_id, start, end


class CampaignRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, campaign_id: int) -> Campaign | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,))
        return Campaign(*r) if r else None

    async def by_code(self, code: str) -> Campaign | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM campaigns WHERE code = ?", (code,))
        return Campaign(*r) if r else None

    async def all(self) -> list[Campaign]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM campaigns ORDER BY coalesce(ends_on, '9999') DESC, id")
        return [Campaign(*r) for r in rows]

    async def upsert(self, code: str, title_vi: str, description_vi: str, topic_id: int | None,
                     title_en: str | None = None, description_en: str | None = None, *,
                     starts_on: date | str | None = None, ends_on: date | str | None = None) -> int:
        await self.db.execute(_UPSERT, _upsert_row(code, title_vi, description_vi, topic_id, title_en, description_en,
                                                   starts_on, ends_on))
        row = await self.db.fetchone("SELECT id FROM campaigns WHERE code = ?", (code,))
        return row[0]

    async def upsert_all(self, campaigns: list[tuple]) -> None:
        """Several campaigns (`upsert`'s arguments, in its order) in one transaction: all or none. A
        campaign file holds a handful, so the transaction is short."""
        await self.db.executemany(_UPSERT, [_upsert_row(*c) for c in campaigns])

    async def update(self, campaign_id: int, **fields: object) -> Campaign | None:
        unknown = set(fields) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(f"UPDATE campaigns SET {assignments} WHERE id = ?", (*fields.values(), campaign_id))
        return await self.get(campaign_id)

    async def record_open(self, campaign_id: int, user_id: int, now: datetime) -> None:
        await self.db.execute("INSERT INTO campaign_opens (campaign_id, user_id, at) VALUES (?, ?, ?)"
                              " ON CONFLICT DO NOTHING",
                              (campaign_id, user_id, iso(now)))

    async def opened_by(self, user_id: int) -> list[tuple[str, str]]:
        """The campaigns one person opened from a link or button: (code, the first time)."""
        rows = await self.db.fetchall("SELECT c.code, o.at FROM campaign_opens o"
                                      " JOIN campaigns c ON c.id = o.campaign_id WHERE o.user_id = ? ORDER BY o.at",
                                      (user_id,))
        return [(r[0], r[1]) for r in rows]

    async def stats(self, campaign_id: int) -> CampaignStats:
        r = await self.db.fetchone(
            "SELECT (SELECT count(*) FROM broadcasts WHERE campaign_id = :c),"
            " (SELECT count(DISTINCT r.user_id) FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            "  WHERE b.campaign_id = :c),"
            " (SELECT count(DISTINCT r.user_id) FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            "  WHERE b.campaign_id = :c AND r.status = 'sent'),"
            " (SELECT count(*) FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            "  WHERE b.campaign_id = :c AND r.status = 'sent'),"
            " (SELECT count(*) FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            "  WHERE b.campaign_id = :c AND r.status = 'blocked'),"
            " (SELECT count(*) FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            "  WHERE b.campaign_id = :c AND r.status = 'failed'),"
            " (SELECT count(*) FROM campaign_opens WHERE campaign_id = :c),"
            " (SELECT count(*) FROM cases WHERE campaign_id = :c)",
            {"c": campaign_id})
        return CampaignStats(*r)
