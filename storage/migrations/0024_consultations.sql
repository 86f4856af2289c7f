-- Consultations on a draft document (issue 17): the document in sections and numbered paragraphs, what each
-- person said of each section, their comments and how staff handled them.
CREATE TABLE consultations (
    id           INTEGER PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,  -- in the deep link /start v_<code>
    title        TEXT NOT NULL,
    intro        TEXT NOT NULL DEFAULT '',
    opens_at     TEXT NOT NULL,
    closes_at    TEXT NOT NULL,
    audience     TEXT NOT NULL DEFAULT '{}',  -- as broadcasts.audience
    status       TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'open', 'closed')),
    broadcast_id INTEGER REFERENCES broadcasts(id),  -- the invitation
    created_at   TEXT NOT NULL,
    published_at TEXT,
    closed_at    TEXT
);

CREATE TABLE consultation_sections (
    id              INTEGER PRIMARY KEY,
    consultation_id INTEGER NOT NULL REFERENCES consultations(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,  -- 1, 2, … as shown in the table of contents
    title           TEXT NOT NULL,
    UNIQUE (consultation_id, position)
);

CREATE TABLE consultation_paragraphs (
    section_id INTEGER NOT NULL REFERENCES consultation_sections(id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,  -- "đoạn 3" in a comment
    text       TEXT NOT NULL,
    PRIMARY KEY (section_id, number)
);

-- A person's answer to a section: «Đồng ý», «Có ý kiến» (then comments), «Bỏ qua».
CREATE TABLE consultation_answers (
    section_id INTEGER NOT NULL REFERENCES consultation_sections(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    stance     TEXT NOT NULL CHECK (stance IN ('agree', 'comment', 'skip')),
    at         TEXT NOT NULL,
    PRIMARY KEY (section_id, user_id)
);

-- Only the commune is kept of where a commenter lives: it is what the report counts by, and all an anonymous
-- comment may show.
CREATE TABLE consultation_comments (
    id          INTEGER PRIMARY KEY,
    section_id  INTEGER NOT NULL REFERENCES consultation_sections(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    paragraph   INTEGER,
    text        TEXT NOT NULL,
    anonymous   INTEGER NOT NULL DEFAULT 0,
    channel     TEXT NOT NULL,
    commune_id  INTEGER REFERENCES localities(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    outcome     TEXT CHECK (outcome IN ('accepted', 'explained', 'rejected')),
    explanation TEXT,
    handled_by  INTEGER REFERENCES users(id),
    handled_at  TEXT
);
CREATE INDEX consultation_comments_section ON consultation_comments(section_id, paragraph);
CREATE INDEX consultation_comments_user ON consultation_comments(user_id);

-- Where a reader stopped: they come back to it.
CREATE TABLE consultation_progress (
    consultation_id INTEGER NOT NULL REFERENCES consultations(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    position        INTEGER NOT NULL,
    at              TEXT NOT NULL,
    PRIMARY KEY (consultation_id, user_id)
);
