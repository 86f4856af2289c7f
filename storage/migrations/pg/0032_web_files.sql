-- The web chat's files on PostgreSQL (storage/web_files.py): a photo, voice note or document a person uploaded, or a
-- file the bot offered, by the name the chat's history gives it, its bytes in the database's file store (`files`,
-- content-addressed: a photo a case kept is stored once). `owner` is the chat's folder name on SQLite's disk (a hash
-- of the chat id): an erasure drops the chat's files by it.
CREATE TABLE web_files (
    channel    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, owner, name)
);
CREATE INDEX web_files_created ON web_files(created_at);
CREATE INDEX web_files_sha256 ON web_files(sha256);
