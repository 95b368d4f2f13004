-- feedloop SQLite schema, version 3: semantic memory. Each trace's input is embedded once per
-- embedding model; a queue holds the traces waiting for the embedding worker.

-- Negative feedback, explicit or implicit (see Feedback::is_negative), for "similar known
-- problems" and the negative_feedback filter.
ALTER TABLE feedback ADD COLUMN negative INTEGER NOT NULL DEFAULT 0;
UPDATE feedback SET negative = 1
 WHERE rating_sign = -1
    OR kind IN ('category', 'correction', 'annotation')
    OR (kind = 'signal' AND doc ->> '$.value.type' IN ('regenerate', 'abandon', 'rephrase'));

-- Traces whose input has not been embedded since it last changed. The worker claims rows with a
-- lease (claimed_until, µs) and deletes them in the transaction that stores their vectors, so a
-- crash between the two leaves them queued and nothing is stored twice. A trace queued again
-- while claimed (its input changed) gets a new generation, and the worker's delete, which names
-- the generation it embedded, leaves it queued.
CREATE TABLE embedding_queue (
    trace_seq     INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL,
    generation    INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER
);
INSERT INTO embedding_queue (trace_seq, project_id)
    SELECT seq, project_id FROM traces WHERE doc ->> '$.input' IS NOT NULL;

-- One vector per (model, trace): little-endian f32, L2-normalised. seq is the order of writing
-- (AUTOINCREMENT: never reused, so a replaced vector gets a later seq), which vector indexes
-- follow to stay current.
CREATE TABLE embeddings (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    trace_seq   INTEGER NOT NULL,
    model       TEXT NOT NULL,
    vector      BLOB NOT NULL,
    embedded_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX embeddings_by_trace ON embeddings (model, trace_seq);
CREATE INDEX embeddings_by_model ON embeddings (model, seq);
