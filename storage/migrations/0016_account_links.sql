-- One person on two channels: the account that joined second points at the first, which holds their cases,
-- settings, consents and topics (storage/links.py). NULL: an account of its own.
ALTER TABLE users ADD COLUMN linked_to INTEGER REFERENCES users(id);
CREATE INDEX users_linked_to ON users(linked_to) WHERE linked_to IS NOT NULL;

-- Short one-time codes that link two accounts; only a hash is kept, like invites.
CREATE TABLE link_codes (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX link_codes_hash ON link_codes(code_hash);
