-- feedloop PostgreSQL schema, version 8: problem clusters (see the SQLite migration of the same
-- number for the model).
CREATE TABLE problem_clusters (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL,
    model        TEXT NOT NULL,
    size         BIGINT NOT NULL,
    centroid_sum BYTEA NOT NULL,
    terms        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX problem_clusters_by_project ON problem_clusters (project_id, model);

CREATE TABLE cluster_members (
    cluster_id  BIGINT NOT NULL,
    project_id  BIGINT NOT NULL,
    trace_seq   BIGINT NOT NULL,
    similarity  DOUBLE PRECISION NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, trace_seq)
);
CREATE INDEX cluster_members_by_trace ON cluster_members (project_id, trace_seq);
