-- feedloop PostgreSQL schema, version 3: semantic memory (the same tables as
-- migrations/sqlite/0003_semantic_memory.sql). Each trace's input is embedded once per embedding
-- model; a queue holds the traces waiting for the embedding worker.

-- Negative feedback, explicit or implicit (see Feedback::is_negative), for "similar known
-- problems" and the negative_feedback filter. `doc` is JSON text: a signal's type is at
-- value.type.
ALTER TABLE feedback ADD COLUMN negative SMALLINT NOT NULL DEFAULT 0;
UPDATE feedback SET negative = 1
 WHERE rating_sign = -1
    OR kind IN ('category', 'correction', 'annotation')
    OR (kind = 'signal' AND doc::json -> 'value' ->> 'type' IN ('regenerate', 'abandon', 'rephrase'));

-- Traces whose input has not been embedded since it last changed. Workers (of any replica) claim
-- rows with a lease (claimed_until, µs) under FOR UPDATE SKIP LOCKED and delete them in the
-- transaction that stores their vectors, so a crash between the two leaves them queued and
-- nothing is stored twice. A trace queued again while claimed (its input changed) gets a new
-- generation, and the worker's delete, which names the generation it embedded, leaves it queued.
CREATE TABLE embedding_queue (
    trace_seq     BIGINT PRIMARY KEY,
    project_id    BIGINT NOT NULL,
    generation    BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT
);
INSERT INTO embedding_queue (trace_seq, project_id)
    SELECT seq, project_id FROM traces WHERE doc::json ->> 'input' IS NOT NULL;

-- One vector per (model, trace): little-endian f32, L2-normalised. seq is the order of writing
-- (an identity, never reused, so a replaced vector gets a later seq), which vector indexes follow
-- to stay current. Writes are serialised by an advisory lock held to commit (see
-- postgres/embeddings.rs), so that sequence order is commit order and a follower never skips a
-- vector that commits late.
CREATE TABLE embeddings (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    trace_seq   BIGINT NOT NULL,
    model       TEXT COLLATE "C" NOT NULL,
    vector      BYTEA NOT NULL,
    embedded_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX embeddings_by_trace ON embeddings (model, trace_seq);
CREATE INDEX embeddings_by_model ON embeddings (model, seq);
