"""Storage, SQLite or PostgreSQL: the only place with SQL. `Store` holds the connection and one repository per
aggregate."""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage.audit import AuditRepo
from storage.broadcasts import BroadcastRepo
from storage.campaigns import CampaignRepo
from storage.cases import CaseRepo
from storage.consultations import ConsultationRepo
from storage.conversations import ConversationRepo
from storage.db import Database, DatabaseUnavailable
from storage.dialect import POSTGRES
from storage.digests import DigestRepo
from storage.files import DatabaseFileStore, FileStore, files_dir
from storage.journal import JournalRepo
from storage.links import LinkRepo
from storage.localities import LocalityRepo
from storage.notices import NoticeRepo
from storage.retention import RetentionRepo
from storage.roles import RoleRepo
from storage.schedule import ScheduleRepo
from storage.surveys import SurveyRepo
from storage.tasks import TaskRepo
from storage.topics import TopicRepo
from storage.users import UserRepo
from storage.web_messages import WebMessageRepo
from storage.web_sessions import WebSessionRepo


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
    web_sessions: WebSessionRepo
    cases: CaseRepo
    files: FileStore | DatabaseFileStore
    schedule: ScheduleRepo
    digests: DigestRepo
    tasks: TaskRepo
    broadcasts: BroadcastRepo
    journal: JournalRepo
    notices: NoticeRepo
    links: LinkRepo
    retention: RetentionRepo
    web_messages: WebMessageRepo
    consultations: ConsultationRepo
    surveys: SurveyRepo

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True, seed: bool = True) -> Store:
        try:
            db = await Database.open(path)
        except (sqlite3.Error, OSError) as err:
            raise DatabaseUnavailable(str(path), str(err)) from err
        try:
            if migrate:
                await db.migrate()
            files = DatabaseFileStore(db) if db.dialect is POSTGRES else FileStore(_files_dir(path))
            store = cls(db, UserRepo(db, files), LocalityRepo(db), TopicRepo(db), ConversationRepo(db), RoleRepo(db),
                        AuditRepo(db), CampaignRepo(db), WebSessionRepo(db), CaseRepo(db),
                        files, ScheduleRepo(db), DigestRepo(db), TaskRepo(db), BroadcastRepo(db),
                        JournalRepo(db), NoticeRepo(db), LinkRepo(db), RetentionRepo(db, files), WebMessageRepo(db),
                        ConsultationRepo(db), SurveyRepo(db))
            if seed:
                await store.topics.seed()
                await store.localities.seed()
        except (sqlite3.Error, OSError) as err:  # disk full or read-only at start
            await db.close()
            raise DatabaseUnavailable(str(path), str(err)) from err
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self.db.close()


def _files_dir(db_path: str | Path) -> Path:
    """Files live beside the database ("data/danvan.db" → "data/files/")."""
    if str(db_path) == ":memory:":
        return Path(tempfile.mkdtemp(prefix="danvan-files-"))
    return files_dir(db_path)
