-- feedloop PostgreSQL schema, version 11: people, sessions, public keys, feedback tokens, audit.

-- Origins a public key may be used from: a JSON array of `scheme://host[:port]`.
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT COLLATE "C" NOT NULL DEFAULT '[]';

-- Accounts. `password_hash` is a PHC string (argon2id); a server admin is admin everywhere.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT COLLATE "C" NOT NULL,
    is_admin      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);

-- A person's role (admin, reviewer, viewer) in a project.
CREATE TABLE memberships (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    user_id     BIGINT NOT NULL REFERENCES users (id),
    role        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Web sessions by the SHA-256 of the cookie value.
CREATE TABLE sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash         BYTEA NOT NULL UNIQUE,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    csrf_token   TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

-- The HMAC key of each project's feedback tokens, shared by every replica.
CREATE TABLE feedback_token_secrets (
    project_id  BIGINT PRIMARY KEY,
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Administrative actions; `details` is a JSON object (text, as everywhere else).
CREATE TABLE audit_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    actor       TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    details     TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX audit_by_project ON audit_log (project_id, seq);
