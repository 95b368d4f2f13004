-- feedloop SQLite schema, version 11: people, sessions, public keys, feedback tokens, audit.

-- Origins a public key may be used from: a JSON array of `scheme://host[:port]`.
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

-- Accounts. `password_hash` is a PHC string (argon2id); a server admin is admin everywhere.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

-- A person's role (admin, reviewer, viewer) in a project.
CREATE TABLE memberships (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Web sessions by the SHA-256 of the cookie value.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    hash         BLOB NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

-- The HMAC key of each project's feedback tokens, shared by every replica.
CREATE TABLE feedback_token_secrets (
    project_id  INTEGER PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Administrative actions; `details` is a JSON object.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    details     TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX audit_by_project ON audit_log (project_id, seq);
