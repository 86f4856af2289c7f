-- Several workers on one database (bot/drainers.py, storage/claims.py); nothing of this on SQLite
-- (../0027_journal_chat_pending.sql), where one process handles every chat.

-- One chat's updates not done: only those rows, not the chat's days of handled ones.
CREATE INDEX inbound_journal_chat_pending ON inbound_journal(channel, chat_id, id) WHERE done_at IS NULL;

-- A chat's lock and then its updates not done, in one round trip: one row (taken false) when another session holds
-- the lock. The read is a query of its own inside a VOLATILE function, so it sees what was committed before the
-- lock was taken (a previous holder's done marks), which one statement doing both would not: its snapshot would be
-- from before the lock.
CREATE FUNCTION take_chat(lock_name TEXT, of_channel TEXT, of_chat TEXT)
RETURNS TABLE (taken BOOLEAN, id BIGINT, event TEXT, applied BOOLEAN)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_lock(hashtextextended(lock_name, 0)) THEN
        RETURN QUERY SELECT false, NULL::BIGINT, NULL::TEXT, NULL::BOOLEAN;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, j.id, j.event, j.applied_at IS NOT NULL FROM inbound_journal j
        WHERE j.channel = of_channel AND j.chat_id = of_chat AND j.done_at IS NULL ORDER BY j.id;
END $$;

-- Let the chat's lock go, then whether updates of it are left: read after letting go, so that one journalled by a
-- worker that failed to take the lock meanwhile is seen.
CREATE FUNCTION release_chat(lock_name TEXT, of_channel TEXT, of_chat TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    left_over BOOLEAN;
BEGIN
    PERFORM pg_advisory_unlock(hashtextextended(lock_name, 0));
    SELECT EXISTS (SELECT 1 FROM inbound_journal WHERE channel = of_channel AND chat_id = of_chat
                   AND done_at IS NULL) INTO left_over;
    RETURN left_over;
END $$;
