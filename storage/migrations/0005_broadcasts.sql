-- Broadcasts (thông báo): one message to an audience, delivered once to each recipient; a crash resumes
-- where it stopped. Campaigns: who opened a campaign's deep link or QR code.

CREATE TABLE campaign_opens (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at          TEXT NOT NULL,              -- the first time
    PRIMARY KEY (campaign_id, user_id)
) WITHOUT ROWID;

CREATE TABLE broadcasts (
    id             INTEGER PRIMARY KEY,
    campaign_id    INTEGER REFERENCES campaigns(id),
    created_by     INTEGER REFERENCES users(id),  -- NULL: from the command line
    text_vi        TEXT NOT NULL,           -- Telegram-style HTML, validated when composed
    text_en        TEXT,
    photo_sha256   TEXT,                    -- the photo's bytes are in the file store
    link_url       TEXT,
    feedback       INTEGER NOT NULL DEFAULT 0,  -- a "Góp ý ngay" button opening the case flow
    audience       TEXT NOT NULL DEFAULT '{}',  -- JSON {"topics": [ids], "localities": [ids], "roles": [names]}
    status         TEXT NOT NULL DEFAULT 'scheduled'
                       CHECK (status IN ('scheduled', 'running', 'done', 'cancelled')),
    scheduled_at   TEXT NOT NULL,           -- when to start, quiet hours already applied
    quiet_override INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    resolved       INTEGER NOT NULL DEFAULT 0,  -- 1 once every recipient has a row
    resolved_upto  INTEGER NOT NULL DEFAULT 0,  -- users.id up to which recipients are resolved
    total          INTEGER,                 -- recipients, once resolved
    report_channel TEXT,                    -- where the admin's progress message is
    report_chat    TEXT,
    report_ref     TEXT
);
CREATE INDEX broadcasts_status ON broadcasts(status, scheduled_at);
CREATE INDEX broadcasts_campaign ON broadcasts(campaign_id);

-- One row per (broadcast, recipient). 'sending' rows are the ones in flight: after a crash they become
-- 'uncertain' (delivered or not, nobody knows) and are not sent again unless configured so.
CREATE TABLE broadcast_recipients (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sending', 'sent', 'blocked', 'failed', 'uncertain', 'skipped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT,                      -- a retry waits until then
    reason       TEXT,
    PRIMARY KEY (broadcast_id, user_id)
) WITHOUT ROWID;
CREATE INDEX broadcast_recipients_status ON broadcast_recipients(broadcast_id, status, user_id);
CREATE INDEX broadcast_recipients_user ON broadcast_recipients(user_id);
