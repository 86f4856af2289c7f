-- "Dân vận khéo": good models of mobilising people, nominated by anyone, verified by cadres, recognised by
-- admins in a year's round, voted for by residents and spread as announcements.

CREATE TABLE dvk_rounds (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    year            INTEGER NOT NULL,
    starts_on       TEXT NOT NULL,          -- local dates, YYYY-MM-DD: when nominations join this round
    ends_on         TEXT NOT NULL,
    criteria        TEXT NOT NULL,
    vote_starts_on  TEXT,                   -- NULL: no vote in this round
    vote_ends_on    TEXT,
    created_by      INTEGER REFERENCES users(id),
    created_at      TEXT NOT NULL
);

CREATE TABLE dvk_counters (
    prefix TEXT NOT NULL PRIMARY KEY,       -- "MH-26"
    last   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE dvk_models (
    id                INTEGER PRIMARY KEY,
    code              TEXT NOT NULL UNIQUE,  -- MH-26-000001
    round_id          INTEGER REFERENCES dvk_rounds(id),
    user_id           INTEGER REFERENCES users(id),  -- the nominator; NULL once they erased their data
    by_staff          INTEGER NOT NULL DEFAULT 0,
    name              TEXT NOT NULL,
    author            TEXT NOT NULL,         -- the person or collective behind the model
    locality_id       INTEGER NOT NULL REFERENCES localities(id),
    locality_path     TEXT NOT NULL,         -- copy of localities.path: scope is a prefix match
    field             TEXT NOT NULL CHECK (field IN ('kinh_te', 'van_hoa_xa_hoi', 'quoc_phong_an_ninh', 'he_thong_chinh_tri')),
    deeds             TEXT NOT NULL,
    results           TEXT,
    status            TEXT NOT NULL DEFAULT 'nominated' CHECK (status IN
                          ('nominated', 'info_requested', 'verified', 'declined', 'recognised', 'withdrawn')),
    level             TEXT CHECK (level IN ('commune', 'province')),  -- of the recognition
    erased            INTEGER NOT NULL DEFAULT 0,  -- the nominator erased it: name, author, deeds, results blank
    submit_key        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    recognised_at     TEXT
);
CREATE INDEX dvk_models_scope ON dvk_models(locality_path, created_at);
CREATE INDEX dvk_models_user ON dvk_models(user_id);
CREATE INDEX dvk_models_round ON dvk_models(round_id, status);

CREATE TABLE dvk_photos (
    id        INTEGER PRIMARY KEY,
    model_id  INTEGER NOT NULL REFERENCES dvk_models(id),
    sha256    TEXT NOT NULL,
    size      INTEGER
);
CREATE INDEX dvk_photos_model ON dvk_photos(model_id);

CREATE TABLE dvk_events (
    id        INTEGER PRIMARY KEY,
    model_id  INTEGER NOT NULL REFERENCES dvk_models(id),
    at        TEXT NOT NULL,
    actor_id  INTEGER REFERENCES users(id),
    kind      TEXT NOT NULL,                 -- nominated, info_requested, info_added, visit, verified, declined,
                                             -- recognised, withdrawn
    body      TEXT,
    internal  INTEGER NOT NULL DEFAULT 0     -- visit notes: staff only
);
CREATE INDEX dvk_events_model ON dvk_events(model_id, id);

-- One vote per person per model; the voter's commune is kept for results by commune, never their name.
CREATE TABLE dvk_votes (
    id           INTEGER PRIMARY KEY,
    model_id     INTEGER NOT NULL REFERENCES dvk_models(id),
    user_id      INTEGER REFERENCES users(id),  -- NULL once the voter erased their data: the vote still counts
    commune_id   INTEGER REFERENCES localities(id),
    at           TEXT NOT NULL,
    UNIQUE (model_id, user_id)
);
CREATE INDEX dvk_votes_user ON dvk_votes(user_id);
