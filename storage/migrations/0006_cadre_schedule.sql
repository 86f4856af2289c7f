-- The cadre schedule: digest settings, work-plan tasks (nhiệm vụ) and their reports, and the indexes
-- that keep one digest proportional to the cases of its scope and period (bench/README.md shows the plans).

-- One row per cadre or admin, made the first time the scheduler sees them (digests start from then).
CREATE TABLE digest_settings (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    mode       TEXT NOT NULL DEFAULT 'daily' CHECK (mode IN ('daily', 'weekly', 'off')),
    at_minute  INTEGER NOT NULL DEFAULT 450,  -- local time of day in minutes after midnight (450: 07:30)
    weekday    INTEGER NOT NULL DEFAULT 0,    -- weekly digests: 0 Monday … 6 Sunday
    skip_empty INTEGER NOT NULL DEFAULT 0,    -- 1: no digest when nothing is new
    last_end   TEXT NOT NULL,                 -- UTC end of the period the last digest covered
    updated_at TEXT NOT NULL
);

-- Open cases of a subtree (and topic) by deadline: overdue and due-soon counts, overdue by locality. Every
-- column these counts read is in the index, `status` too (SQLite checks the partial index's condition again),
-- so they never read the table.
CREATE INDEX cases_open_scope ON cases(locality_path, topic_id, answer_due, status)
    WHERE status IN ('new', 'acknowledged', 'in_progress');
-- Answers and ratings of a period in a subtree.
CREATE INDEX cases_answered ON cases(locality_path, answered_at) WHERE answered_at IS NOT NULL;
CREATE INDEX cases_rated ON cases(locality_path, rated_at, rating) WHERE rated_at IS NOT NULL;
-- Cases an admin assigned to a cadre outside the cadre's scope.
CREATE INDEX cases_assigned ON cases(assigned_to, created_at) WHERE assigned_to IS NOT NULL;

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    code        TEXT UNIQUE,                  -- tasks loaded from a file: loading it again updates them
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    deadline    TEXT NOT NULL,                -- UTC; the end (23:59:59 local) of the deadline's day
    created_by  INTEGER REFERENCES users(id),
    created_at  TEXT NOT NULL
);
CREATE INDEX tasks_deadline ON tasks(deadline);

-- The cadres of these localities (a cadre whose scope lies inside one of them) must do the task.
CREATE TABLE task_localities (
    task_id     INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    locality_id INTEGER NOT NULL REFERENCES localities(id),
    PRIMARY KEY (task_id, locality_id)
) WITHOUT ROWID;

-- A cadre's report that the task is done: a note and, optionally, a file (in the file store).
CREATE TABLE task_reports (
    task_id  INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    done_at  TEXT NOT NULL,
    note     TEXT NOT NULL,
    sha256   TEXT,
    mime     TEXT,
    filename TEXT,
    PRIMARY KEY (task_id, user_id)
) WITHOUT ROWID;
