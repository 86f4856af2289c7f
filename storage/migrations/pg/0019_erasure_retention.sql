-- Erasure that erases and retention that ends (issue 14), as PostgreSQL does it: the CHECK on `cases.status`
-- changes in place, where SQLite rebuilds the table (../0019_erasure_retention.sql).
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (status IN
    ('new', 'acknowledged', 'in_progress', 'answered', 'resolved', 'declined', 'duplicate', 'withdrawn'));

-- Whether anything else still refers to a file, asked for every file an erasure or the retention job drops.
CREATE INDEX case_attachments_sha256 ON case_attachments(sha256) WHERE sha256 IS NOT NULL;

-- An erased person's consents, kept only as a count: how many decisions per purpose, answer and text version.
CREATE TABLE consent_tallies (
    purpose      TEXT NOT NULL,
    granted      INTEGER NOT NULL,
    text_version TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (purpose, granted, text_version)
);
