-- The web chat's files (storage/web_files.py). On PostgreSQL they are kept in the database's file store by these
-- names, so that every worker reads what any of them wrote (pg/0032_web_files.sql); SQLite's one process keeps them
-- on disk beside its database and leaves this table empty. It exists on both so that the one list of what names a
-- file (storage/files.py `unreferenced`: erasure, retention, the web chat's own pruning) reads it on either.
CREATE TABLE web_files (
    channel    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')),
    PRIMARY KEY (channel, owner, name)
);
CREATE INDEX web_files_sha256 ON web_files(sha256);
