-- One chat's updates not done (storage/claims.py), read twice per update a worker drains when several share the
-- database: only those rows, not the chat's days of handled ones (../0027_journal_chat_pending.sql: not on SQLite).
CREATE INDEX inbound_journal_chat_pending ON inbound_journal(channel, chat_id, id) WHERE done_at IS NULL;
