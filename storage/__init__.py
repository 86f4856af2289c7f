"""SQLite storage: the only place with SQL. `Store` holds the connection and one repository per aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.audit import AuditRepo
from storage.campaigns import CampaignRepo
from storage.conversations import ConversationRepo
from storage.db import Database
from storage.localities import LocalityRepo
from storage.roles import RoleRepo
from storage.topics import TopicRepo
from storage.users import UserRepo


@dataclass
class Store:
    db: Database
    users: UserRepo
    localities: LocalityRepo
    topics: TopicRepo
    conversations: ConversationRepo
    roles: RoleRepo
    audit: AuditRepo
    campaigns: CampaignRepo

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True, seed: bool = True) -> Store:
        db = await Database.open(path)
        if migrate:
            await db.migrate()
        store = cls(db, UserRepo(db), LocalityRepo(db), TopicRepo(db), ConversationRepo(db), RoleRepo(db),
                    AuditRepo(db), CampaignRepo(db))
        if seed:
            await store.topics.seed()
            await store.localities.seed()
        return store

    async def close(self) -> None:
        await self.db.close()
