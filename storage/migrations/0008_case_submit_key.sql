-- A submission's idempotency key, taken from the draft: «Gửi» arriving twice (a double tap, a redelivered
-- or replayed update, a retry after a failure) stores one case. NULL for cases made without a draft.
ALTER TABLE cases ADD COLUMN submit_key TEXT;
CREATE UNIQUE INDEX cases_submit_key ON cases(submit_key);
