-- The web chat's history, so that a restart does not wipe what people see: each message as the page shows it
-- (JSON: the text, its buttons, a photo or a document by its file's name), in the order it was sent; `v`
-- changes when the bot edits it. And the demo role a session plays, so it is not lost with the server either.

CREATE TABLE web_messages (
    channel    TEXT NOT NULL,               -- "web", or the demo's text-only view "webtext"
    chat_id    TEXT NOT NULL,
    pos        INTEGER NOT NULL,            -- the chat's version counter when the message was added
    id         TEXT NOT NULL,
    v          INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id, pos)
) WITHOUT ROWID;
CREATE UNIQUE INDEX web_messages_id ON web_messages(channel, chat_id, id);
CREATE INDEX web_messages_created ON web_messages(created_at);

ALTER TABLE web_sessions ADD COLUMN persona TEXT;
ALTER TABLE web_sessions ADD COLUMN view TEXT NOT NULL DEFAULT 'web';
