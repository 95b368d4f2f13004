-- feedloop SQLite schema, version 7: datasets for fine-tuning, their items and versions.
-- Times are microseconds since the Unix epoch (UTC); docs are the JSON of the domain types
-- (`Dataset`, `DatasetItem`), the same text on both backends.

CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
CREATE UNIQUE INDEX datasets_by_name ON datasets (project_id, name);

-- Items in the order they were added (seq, never reused), never changed or removed: a version
-- is the seq of its last item. provenance_key is the item's trace (and compared trace), so a
-- trace contributes one item per dataset; NULL for items without a trace.
CREATE TABLE dataset_items (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL,
    dataset_id      INTEGER NOT NULL REFERENCES datasets (id),
    id              TEXT NOT NULL,
    provenance_key  TEXT,
    content_hash    BLOB NOT NULL,
    doc             TEXT NOT NULL
);
CREATE UNIQUE INDEX dataset_items_by_id ON dataset_items (dataset_id, id);
CREATE UNIQUE INDEX dataset_items_by_provenance ON dataset_items (dataset_id, provenance_key);
CREATE INDEX dataset_items_in_order ON dataset_items (dataset_id, seq);

CREATE TABLE dataset_versions (
    dataset_id  INTEGER NOT NULL REFERENCES datasets (id),
    version     INTEGER NOT NULL,
    project_id  INTEGER NOT NULL,
    item_seq    INTEGER NOT NULL,
    num_items   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT,
    note        TEXT,
    PRIMARY KEY (dataset_id, version)
) WITHOUT ROWID;
