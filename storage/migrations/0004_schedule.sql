-- Scheduled work: one row per idempotency key ("digest:42:2026-11-26", "broadcast:7", …), so a restart
-- neither repeats nor skips a send, and downtime is caught up once.
CREATE TABLE scheduled_runs (
    key        TEXT PRIMARY KEY,
    claimed_at TEXT NOT NULL,
    done_at    TEXT
) WITHOUT ROWID;
