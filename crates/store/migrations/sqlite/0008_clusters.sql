-- feedloop SQLite schema, version 8: problem clusters. The traces with negative feedback,
-- grouped by meaning per embedding model; members keep the cluster they joined (a cluster's
-- meaning never changes under it). `centroid_sum` is the sum of the members' vectors
-- (little-endian f32), whose direction is the centroid, so growing it needs no re-read.
CREATE TABLE problem_clusters (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL,
    model        TEXT NOT NULL,
    size         INTEGER NOT NULL,
    centroid_sum BLOB NOT NULL,
    terms        TEXT NOT NULL,   -- JSON array: the distinctive terms, best first
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX problem_clusters_by_project ON problem_clusters (project_id, model);

CREATE TABLE cluster_members (
    cluster_id  INTEGER NOT NULL,
    project_id  INTEGER NOT NULL,
    trace_seq   INTEGER NOT NULL,
    similarity  REAL NOT NULL,      -- to the centroid when the trace joined
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, trace_seq)
) WITHOUT ROWID;
CREATE INDEX cluster_members_by_trace ON cluster_members (project_id, trace_seq);
