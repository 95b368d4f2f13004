-- feedloop PostgreSQL schema, version 2: what replicas coordinate through (the same tables as
-- migrations/sqlite/0002_coordination.sql).

-- Writes that in-memory caches depend on (keys, taxonomy), in order. Each replica follows the
-- log and drops what it cached; old entries are pruned by a background job. Appends are
-- serialised by an advisory lock held to commit (see postgres/admin.rs), so that sequence
-- order is commit order and a follower never skips a change that commits late.
CREATE TABLE change_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    topic       TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX change_log_by_time ON change_log (at);

-- One row per run of a periodic background job: whoever inserts the row runs the job, so a run
-- happens once across replicas. A holder that dies leaves an unfinished row whose lease expires,
-- and another replica takes the run over.
CREATE TABLE job_runs (
    job          TEXT COLLATE "C" NOT NULL,
    period       BIGINT NOT NULL,
    holder       TEXT COLLATE "C" NOT NULL,
    claimed_at   BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT COLLATE "C",
    PRIMARY KEY (job, period)
);
