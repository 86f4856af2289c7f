-- 0 until the person first accepts a purpose: until then only what answering them needs is kept (the chat id
-- and the conversation), neither their platform name nor their language. Rows from before were kept with both.
ALTER TABLE users ADD COLUMN consented INTEGER NOT NULL DEFAULT 1;
