-- feedloop SQLite schema, version 4: lessons, their versions, loop settings and injections.
-- Times are microseconds since the Unix epoch (UTC); docs are the JSON of the domain types
-- (`Lesson`, `LoopSettings`, `Vec<InjectedLesson>`), the same text on both backends.

-- Every version of every lesson, in the order of writing. seq (AUTOINCREMENT: never reused) is
-- the change number of the write that made the version.
CREATE TABLE lesson_versions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    lesson_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
CREATE UNIQUE INDEX lesson_versions_by_lesson ON lesson_versions (project_id, lesson_id, version);

-- The current version of each lesson; seq is the change number of its latest write, which
-- lesson caches follow (lessons_changed_since).
CREATE TABLE lessons (
    project_id  INTEGER NOT NULL,
    id          TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX lessons_by_seq ON lessons (seq);
CREATE INDEX lessons_by_time ON lessons (project_id, updated_at, seq);
CREATE INDEX lessons_by_status ON lessons (project_id, status, updated_at, seq);

-- Every feedback id that the provenance of any version of any lesson names, so that automatic
-- proposals never cover the same feedback twice.
CREATE TABLE lesson_feedback (
    project_id  INTEGER NOT NULL,
    feedback_id TEXT NOT NULL,
    lesson_id   TEXT NOT NULL,
    PRIMARY KEY (project_id, feedback_id, lesson_id)
) WITHOUT ROWID;

-- Each project's LoopSettings; a project without a row has the defaults.
CREATE TABLE loop_settings (
    project_id  INTEGER PRIMARY KEY,
    doc         TEXT NOT NULL
);

-- The lessons each context request got (or, held out, would have got); trace_id is set once
-- the app's trace names the injection.
CREATE TABLE injections (
    project_id  INTEGER NOT NULL,
    id          TEXT NOT NULL,
    trace_id    TEXT,
    session_id  TEXT,
    query       TEXT NOT NULL,
    holdout     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    lessons     TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
) WITHOUT ROWID;

-- One row per (injection, lesson): what a lesson's effect is counted from.
CREATE TABLE injection_lessons (
    project_id   INTEGER NOT NULL,
    lesson_id    TEXT NOT NULL,
    injection_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    holdout      INTEGER NOT NULL,
    trace_id     TEXT,
    PRIMARY KEY (project_id, lesson_id, injection_id)
) WITHOUT ROWID;
CREATE INDEX injection_lessons_by_injection ON injection_lessons (project_id, injection_id);
