-- feedloop PostgreSQL schema, version 7: datasets for fine-tuning, their items and versions
-- (the same tables as migrations/sqlite/0007_datasets.sql). Times are BIGINT microseconds;
-- docs are the JSON text of the domain types, the same text on both backends.

CREATE TABLE datasets (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX datasets_by_name ON datasets (project_id, name);

-- Items in the order they were added, never changed or removed: a version is the seq of its
-- last item. Item writes and version creation lock the dataset's row (FOR UPDATE) to commit,
-- so no item below a version's watermark commits after the version.
CREATE TABLE dataset_items (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    dataset_id      BIGINT NOT NULL REFERENCES datasets (id),
    id              TEXT COLLATE "C" NOT NULL,
    provenance_key  TEXT COLLATE "C",
    content_hash    BYTEA NOT NULL,
    doc             TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX dataset_items_by_id ON dataset_items (dataset_id, id);
CREATE UNIQUE INDEX dataset_items_by_provenance ON dataset_items (dataset_id, provenance_key);
CREATE INDEX dataset_items_in_order ON dataset_items (dataset_id, seq);

CREATE TABLE dataset_versions (
    dataset_id  BIGINT NOT NULL REFERENCES datasets (id),
    version     BIGINT NOT NULL,
    project_id  BIGINT NOT NULL,
    item_seq    BIGINT NOT NULL,
    num_items   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    note        TEXT,
    PRIMARY KEY (dataset_id, version)
);
