-- feedloop PostgreSQL schema, version 4: lessons, their versions, loop settings and injections
-- (the same tables as migrations/sqlite/0004_lessons.sql). Times are microseconds since the
-- Unix epoch (UTC); docs are the JSON text of the domain types, the same text on both backends.

-- Every version of every lesson, in the order of writing. seq is the change number of the
-- write that made the version. Lesson writes are serialised by an advisory lock held to commit
-- (see postgres/lessons.rs), so that sequence order is commit order and a follower of
-- lessons_changed_since never skips a change that commits late.
CREATE TABLE lesson_versions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    lesson_id   TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX lesson_versions_by_lesson ON lesson_versions (project_id, lesson_id, version);

-- The current version of each lesson; seq is the change number of its latest write.
CREATE TABLE lessons (
    project_id  BIGINT NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX lessons_by_seq ON lessons (seq);
CREATE INDEX lessons_by_time ON lessons (project_id, updated_at, seq);
CREATE INDEX lessons_by_status ON lessons (project_id, status, updated_at, seq);

-- Every feedback id that the provenance of any version of any lesson names.
CREATE TABLE lesson_feedback (
    project_id  BIGINT NOT NULL,
    feedback_id TEXT COLLATE "C" NOT NULL,
    lesson_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, feedback_id, lesson_id)
);

-- Each project's LoopSettings; a project without a row has the defaults.
CREATE TABLE loop_settings (
    project_id  BIGINT PRIMARY KEY,
    doc         TEXT COLLATE "C" NOT NULL
);

-- The lessons each context request got (or, held out, would have got); trace_id is set once
-- the app's trace names the injection.
CREATE TABLE injections (
    project_id  BIGINT NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    trace_id    TEXT COLLATE "C",
    session_id  TEXT COLLATE "C",
    query       TEXT NOT NULL,
    holdout     SMALLINT NOT NULL,
    created_at  BIGINT NOT NULL,
    lessons     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, id)
);

-- One row per (injection, lesson): what a lesson's effect is counted from.
CREATE TABLE injection_lessons (
    project_id   BIGINT NOT NULL,
    lesson_id    TEXT COLLATE "C" NOT NULL,
    injection_id TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    holdout      SMALLINT NOT NULL,
    trace_id     TEXT COLLATE "C",
    PRIMARY KEY (project_id, lesson_id, injection_id)
);
CREATE INDEX injection_lessons_by_injection ON injection_lessons (project_id, injection_id);
