-- The inbound journal (DESIGN.md §3): every update a platform delivers is written here before the platform is
-- told it was received, and marked done once handled and answered. A redelivered update hits the unique key
-- and is handled once; after a crash, what is not done is handled first. Done rows are pruned after a few days.
CREATE TABLE inbound_journal (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    update_id   TEXT NOT NULL,  -- the platform's own id of the update
    chat_id     TEXT NOT NULL,
    event       TEXT NOT NULL,  -- the channel-neutral event, as JSON
    received_at TEXT NOT NULL,
    applied_at  TEXT,  -- the conversation it moved was saved (same transaction): never handled again
    done_at     TEXT,  -- handled and answered
    UNIQUE (channel, update_id)
);
CREATE INDEX inbound_journal_pending ON inbound_journal(id) WHERE done_at IS NULL;
CREATE INDEX inbound_journal_done ON inbound_journal(done_at) WHERE done_at IS NOT NULL;
CREATE INDEX inbound_journal_chat ON inbound_journal(channel, chat_id);

-- A step whose question could not be delivered is asked again at the person's next message.
ALTER TABLE conversations ADD COLUMN unasked INTEGER NOT NULL DEFAULT 0;
