"""Many people at once, written straight into the database: broadcast tests and benchmarks need
thousands of recipients in a fraction of a second, not thousands of onboarding conversations."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.consent import consent_version
from messages import Texts
from storage import Store
from storage.clock import iso

BASE_CHAT = 5_000_000


async def make_people(store: Store, count: int, *, channel: str = "telegram", first_chat: int = BASE_CHAT,
                      language: str = "vi", role: str = "citizen", locality: str | None = "19702",
                      topics: tuple[str, ...] = ("nong-thon-moi",), consent: bool = True, news: bool = True,
                      reachable: bool = True) -> list[int]:
    """`count` onboarded people, written straight into the database (thousands in a fraction of a second)."""
    now = iso(datetime(2026, 11, 26, 1, 0, tzinfo=UTC))
    place = (await store.localities.by_code(locality)).id if locality else None
    await store.db.executemany(
        "INSERT INTO users (channel, external_id, chat_id, display_name, language, role, locality_id, onboarded,"
        " news_enabled, reachable, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
        [(channel, str(first_chat + i), str(first_chat + i), f"Người {i}", language, role, place, int(news),
          int(reachable), now, now) for i in range(count)])
    rows = await store.db.fetchall("SELECT id FROM users WHERE channel = ? AND CAST(external_id AS INTEGER)"
                                   " BETWEEN ? AND ? ORDER BY id", (channel, first_chat, first_chat + count - 1))
    ids = [r[0] for r in rows]
    version = consent_version(Texts("vi")("consent.news"), "vi")
    await store.db.executemany("INSERT INTO consents (user_id, purpose, granted, text_version, at)"
                               " VALUES (?, 'news', ?, ?, ?)", [(i, int(consent), version, now) for i in ids])
    topic_ids = [(await store.topics.by_code(code)).id for code in topics]
    await store.db.executemany("INSERT INTO user_topics (user_id, topic_id) VALUES (?, ?)",
                               [(i, t) for i in ids for t in topic_ids])
    return ids
