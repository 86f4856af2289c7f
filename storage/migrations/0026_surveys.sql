-- Surveys (khảo sát): the same questions to many people, read back commune by commune. A response is one
-- person's answers to one survey, kept where they stopped so they can resume, changeable until it closes.

CREATE TABLE surveys (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    title_vi    TEXT NOT NULL,
    title_en    TEXT,
    intro_vi    TEXT NOT NULL,
    intro_en    TEXT,
    opens_at    TEXT NOT NULL,
    closes_at   TEXT NOT NULL,
    audience    TEXT NOT NULL DEFAULT '{}',  -- as broadcasts: {"topics": [ids], "localities": [ids], "roles": [...]}
    anonymous   INTEGER NOT NULL DEFAULT 0,  -- staff never see who answered; erasure keeps the answers unlinked
    political   INTEGER NOT NULL DEFAULT 0,  -- asks for political opinions: the sensitive consent is needed
    remind_days INTEGER,                     -- one reminder this many days before closing, to the invited unfinished
    poll        INTEGER NOT NULL DEFAULT 0,  -- a quick poll: one question whose choices are the announcement's buttons
    questions   TEXT NOT NULL,               -- JSON list of questions (storage/surveys.py Question)
    created_at  TEXT NOT NULL
);

-- user_id is NULL once the person erased their data from an anonymous survey: the answers stay, unlinked.
-- The place is where the person lived when they answered, so that results read by commune and village.
CREATE TABLE survey_responses (
    id          INTEGER PRIMARY KEY,
    survey_id   INTEGER NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
    user_id     INTEGER REFERENCES users(id),
    commune_id  INTEGER REFERENCES localities(id),
    village_id  INTEGER REFERENCES localities(id),
    position    TEXT,                        -- the key of the question the person is at; NULL once finished
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (survey_id, user_id)
);
CREATE INDEX survey_responses_user ON survey_responses(user_id);

-- One row per answer; a multiple choice has one row per choice. Results group one question's rows.
CREATE TABLE survey_answers (
    survey_id   INTEGER NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
    question    TEXT NOT NULL,
    response_id INTEGER NOT NULL REFERENCES survey_responses(id) ON DELETE CASCADE,
    value       TEXT NOT NULL,
    PRIMARY KEY (survey_id, question, response_id, value)
) WITHOUT ROWID;
CREATE INDEX survey_answers_response ON survey_answers(response_id);

-- A broadcast that invites to a survey carries its «Trả lời khảo sát» button.
ALTER TABLE broadcasts ADD COLUMN survey_id INTEGER REFERENCES surveys(id);
