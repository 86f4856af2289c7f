-- On a channel without buttons, the options last shown to a chat as a numbered list: the number a person
-- types next is looked up here (bot/render.py).
CREATE TABLE chat_options (
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    options    TEXT NOT NULL,  -- JSON: [[label, data], …] in the order they were numbered
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
