-- feedloop SQLite schema, version 2: what replicas coordinate through.

-- Writes that in-memory caches depend on (keys, taxonomy), in order. Each replica follows the
-- log and drops what it cached; old entries are pruned by a background job.
CREATE TABLE change_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX change_log_by_time ON change_log (at);

-- One row per run of a periodic background job: whoever inserts the row runs the job, so a run
-- happens once across replicas. A holder that dies leaves an unfinished row whose lease expires,
-- and another replica takes the run over.
CREATE TABLE job_runs (
    job          TEXT NOT NULL,
    period       INTEGER NOT NULL,
    holder       TEXT NOT NULL,
    claimed_at   INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL,
    finished_at  INTEGER,
    outcome      TEXT,
    PRIMARY KEY (job, period)
) WITHOUT ROWID;
