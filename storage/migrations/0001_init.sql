-- Foundation: people, reference data, consent, conversations, roles, invites, audit.
-- Times are UTC ISO-8601 text ("2026-11-26T07:30:00+00:00").

CREATE TABLE localities (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    name_folded TEXT NOT NULL,              -- lower case, no diacritics: "hai lang"
    kind        TEXT NOT NULL,              -- tinh, xa, phuong, dac_khu, thon, ban, to_dan_pho, khu_pho
    level       INTEGER NOT NULL,           -- 0 province, 1 commune, 2 village
    parent_id   INTEGER REFERENCES localities(id),
    path        TEXT NOT NULL               -- "/1/7/42/": a subtree is a prefix
);
CREATE INDEX localities_parent ON localities(parent_id, name);
CREATE INDEX localities_path ON localities(path);

CREATE TABLE topics (
    id        INTEGER PRIMARY KEY,
    code      TEXT NOT NULL UNIQUE,
    name_vi   TEXT NOT NULL,
    name_en   TEXT NOT NULL,
    sensitive INTEGER NOT NULL DEFAULT 0,   -- opinions here may reveal political views
    position  INTEGER NOT NULL DEFAULT 0,
    active    INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    channel      TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    chat_id      TEXT,
    display_name TEXT,
    language     TEXT NOT NULL DEFAULT 'vi',
    role         TEXT NOT NULL DEFAULT 'citizen' CHECK (role IN ('citizen', 'cadre', 'admin')),
    unit_name    TEXT,                      -- a cadre's unit, e.g. "Ban Dân vận xã Hải Lăng"
    locality_id  INTEGER REFERENCES localities(id),
    onboarded    INTEGER NOT NULL DEFAULT 0,
    news_enabled INTEGER NOT NULL DEFAULT 1, -- /dunggui, /nhantin
    reachable    INTEGER NOT NULL DEFAULT 1, -- 0 once the person blocked the bot
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    UNIQUE (channel, external_id)
);
CREATE INDEX users_locality ON users(locality_id);
CREATE INDEX users_role ON users(role) WHERE role <> 'citizen';

CREATE TABLE user_topics (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    topic_id INTEGER NOT NULL REFERENCES topics(id),
    PRIMARY KEY (user_id, topic_id)
) WITHOUT ROWID;
CREATE INDEX user_topics_topic ON user_topics(topic_id, user_id);

-- Append-only: the latest row per (user, purpose) is in force.
CREATE TABLE consents (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose      TEXT NOT NULL CHECK (purpose IN ('news', 'opinions', 'sensitive')),
    granted      INTEGER NOT NULL,
    text_version TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX consents_user ON consents(user_id, purpose, id);

CREATE TABLE conversations (
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    flow       TEXT NOT NULL,
    step       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
) WITHOUT ROWID;

CREATE TABLE cadre_localities (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    locality_id INTEGER NOT NULL REFERENCES localities(id),
    PRIMARY KEY (user_id, locality_id)
) WITHOUT ROWID;

-- No rows for a cadre means every topic.
CREATE TABLE cadre_topics (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    topic_id INTEGER NOT NULL REFERENCES topics(id),
    PRIMARY KEY (user_id, topic_id)
) WITHOUT ROWID;

CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,       -- sha256 of the token; the token itself is never stored
    scope       TEXT NOT NULL,              -- JSON {"localities": [codes], "topics": [codes]}
    unit_name   TEXT,
    created_by  INTEGER REFERENCES users(id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     INTEGER REFERENCES users(id)
);

CREATE TABLE campaigns (
    id             INTEGER PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,    -- deep-link safe: [A-Za-z0-9_-]
    title_vi       TEXT NOT NULL,
    title_en       TEXT,
    description_vi TEXT NOT NULL DEFAULT '',
    description_en TEXT,
    topic_id       INTEGER REFERENCES topics(id),
    starts_on      TEXT,
    ends_on        TEXT
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor_id INTEGER REFERENCES users(id),
    action   TEXT NOT NULL,
    target   TEXT,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_actor ON audit_log(actor_id, id);
