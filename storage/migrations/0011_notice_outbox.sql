-- Messages to people other than the one who wrote (a citizen told that a cadre answered, a cadre told of an
-- urgent case), kept from the moment the event is handled until they are delivered: a crash in between
-- sends them at the next start instead of losing them.
CREATE TABLE notice_outbox (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    notice     TEXT NOT NULL,  -- JSON, made and read by handlers/base.py Notice.dump/load
    created_at TEXT NOT NULL
);
