-- Web chat sessions: the cookie is a random token; only its hash is stored. A session maps to an
-- opaque chat id, which is also the person's account id on channel "web", so a restart keeps them.

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,            -- sha256 of the cookie value
    chat_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
