-- Erasure that erases and retention that ends (issue 14).
--
-- A case whose sender erased its content while it was open is closed as 'withdrawn'. SQLite cannot change a
-- CHECK constraint in place, so `cases` is rebuilt (storage/db.py runs migrations with foreign keys off, and
-- checks them before committing). `SELECT *` fails loudly if a column was added that this list lacks.
CREATE TABLE cases_new (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('gopy', 'phananh')),
    user_id         INTEGER REFERENCES users(id),
    anonymous       INTEGER NOT NULL DEFAULT 0,
    topic_id        INTEGER NOT NULL REFERENCES topics(id),
    locality_id     INTEGER NOT NULL REFERENCES localities(id),
    locality_path   TEXT NOT NULL,
    campaign_id     INTEGER REFERENCES campaigns(id),
    content         TEXT NOT NULL,
    urgent          INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN
                        ('new', 'acknowledged', 'in_progress', 'answered', 'resolved', 'declined', 'duplicate',
                         'withdrawn')),
    created_at      TEXT NOT NULL,
    ack_due         TEXT NOT NULL,
    answer_due      TEXT NOT NULL,
    acknowledged_at TEXT,
    answered_at     TEXT,
    closed_at       TEXT,
    assigned_to     INTEGER REFERENCES users(id),
    duplicate_of    INTEGER REFERENCES cases(id),
    rating          TEXT CHECK (rating IN ('good', 'ok', 'bad')),
    rated_at        TEXT,
    hidden_reason   TEXT,
    submit_key      TEXT
);
INSERT INTO cases_new SELECT * FROM cases;
DROP TABLE cases;
ALTER TABLE cases_new RENAME TO cases;
CREATE INDEX cases_scope ON cases(locality_path, created_at);
CREATE INDEX cases_user ON cases(user_id, created_at);
CREATE INDEX cases_open_due ON cases(answer_due) WHERE status IN ('new', 'acknowledged', 'in_progress');
CREATE INDEX cases_open_scope ON cases(locality_path, topic_id, answer_due, status)
    WHERE status IN ('new', 'acknowledged', 'in_progress');
CREATE INDEX cases_answered ON cases(locality_path, answered_at) WHERE answered_at IS NOT NULL;
CREATE INDEX cases_rated ON cases(locality_path, rated_at, rating) WHERE rated_at IS NOT NULL;
CREATE INDEX cases_assigned ON cases(assigned_to, created_at) WHERE assigned_to IS NOT NULL;
CREATE UNIQUE INDEX cases_submit_key ON cases(submit_key);

-- Whether anything else still refers to a file, asked for every file an erasure or the retention job drops.
CREATE INDEX case_attachments_sha256 ON case_attachments(sha256) WHERE sha256 IS NOT NULL;

-- An erased person's consents, kept only as a count: how many decisions per purpose, answer and text version.
CREATE TABLE consent_tallies (
    purpose      TEXT NOT NULL,
    granted      INTEGER NOT NULL,
    text_version TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (purpose, granted, text_version)
);
