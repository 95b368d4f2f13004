-- A span row names its trace by the trace's sequence number too, and spans are found through it:
-- a new trace has the highest number, so its spans' index entries go at the end of the index
-- instead of at random places under random trace ids, where each one rewrote a whole index page
-- into the WAL (about a quarter of the WAL written per OTLP span).
CREATE TABLE spans_new (
    seq         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    trace_seq   INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    id          TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
INSERT INTO spans_new (seq, project_id, trace_seq, trace_id, id, started_at, doc)
SELECT s.seq, s.project_id, t.seq, s.trace_id, s.id, s.started_at, s.doc
  FROM spans s JOIN traces t ON t.project_id = s.project_id AND t.id = s.trace_id;
DROP TABLE spans;
ALTER TABLE spans_new RENAME TO spans;
CREATE UNIQUE INDEX spans_by_trace ON spans (project_id, trace_seq, id);
