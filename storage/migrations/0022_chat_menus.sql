-- The command menu ("/" in Telegram) each chat was given of its own, as "role:language": compared with the
-- person's role and language at each message, so that a role given from the command line (danvan admin add)
-- or by an invite shows at their next message. No row: the default menu (a citizen's, in Vietnamese).
CREATE TABLE chat_menus (
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    menu       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
