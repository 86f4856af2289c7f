-- Cases (ý kiến): góp ý and phản ánh – kiến nghị, their attachments, history, drafts.

ALTER TABLE topics ADD COLUMN answer_days INTEGER NOT NULL DEFAULT 10;  -- working days to answer

CREATE TABLE case_counters (
    prefix TEXT NOT NULL,                 -- "GY-26", "PA-26"
    last   INTEGER NOT NULL,
    PRIMARY KEY (prefix)
) WITHOUT ROWID;

CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,  -- PA-26-000123: read over the phone
    kind            TEXT NOT NULL CHECK (kind IN ('gopy', 'phananh')),
    user_id         INTEGER REFERENCES users(id),  -- to tell the sender; never shown when anonymous
    anonymous       INTEGER NOT NULL DEFAULT 0,
    topic_id        INTEGER NOT NULL REFERENCES topics(id),
    locality_id     INTEGER NOT NULL REFERENCES localities(id),
    locality_path   TEXT NOT NULL,         -- copy of localities.path: scope is a prefix match
    campaign_id     INTEGER REFERENCES campaigns(id),
    content         TEXT NOT NULL,
    urgent          INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN
                        ('new', 'acknowledged', 'in_progress', 'answered', 'resolved', 'declined', 'duplicate')),
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
    hidden_reason   TEXT                   -- abusive content is hidden, never deleted
);
CREATE INDEX cases_scope ON cases(locality_path, created_at);
CREATE INDEX cases_user ON cases(user_id, created_at);
CREATE INDEX cases_open_due ON cases(answer_due) WHERE status IN ('new', 'acknowledged', 'in_progress');

CREATE TABLE case_attachments (
    id        INTEGER PRIMARY KEY,
    case_id   INTEGER NOT NULL REFERENCES cases(id),
    kind      TEXT NOT NULL,               -- photo, voice, document, location
    sha256    TEXT,                        -- the file's bytes live in the file store under this name
    mime      TEXT,
    size      INTEGER,
    filename  TEXT,
    latitude  REAL,
    longitude REAL
);
CREATE INDEX case_attachments_case ON case_attachments(case_id);

CREATE TABLE case_events (
    id       INTEGER PRIMARY KEY,
    case_id  INTEGER NOT NULL REFERENCES cases(id),
    at       TEXT NOT NULL,
    actor_id INTEGER REFERENCES users(id),
    kind     TEXT NOT NULL,                -- created, acknowledged, in_progress, answered, resolved, forwarded,
                                           -- declined, note, duplicate, reopened, rated, hidden, reassigned
    body     TEXT,
    internal INTEGER NOT NULL DEFAULT 0,   -- notes the citizen never sees
    unit     TEXT                          -- the acting cadre's unit: answers are signed with it
);
CREATE INDEX case_events_case ON case_events(case_id, id);

-- A case half-written when the person left the flow; offered again next time.
CREATE TABLE case_drafts (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
