-- Keel's first schema (PostgreSQL). Same tables as the SQLite schema, in native types.
-- Timestamps are TIMESTAMPTZ written at millisecond precision (as on SQLite); days are UTC
-- DATEs. Tables are created unqualified, in the first schema of the search_path, so one
-- database can hold several Keel deployments (or test runs) side by side.

-- Every confirmed change of health, in one stream. Appends are serialised by an advisory
-- lock (see postgres.rs) so sequence numbers become visible in order, even with several
-- instances writing.
CREATE TABLE signals (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_kind TEXT        NOT NULL,
    source_id   TEXT        NOT NULL,
    component   TEXT        NOT NULL,
    health      TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);

-- The confirmation state of each monitor and vendor, so a restart does not re-alert.
CREATE TABLE source_states (
    kind         TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    component    TEXT        NOT NULL,
    health       TEXT        NOT NULL,
    since        TIMESTAMPTZ NOT NULL,
    reason       TEXT        NOT NULL,
    latency_ms   BIGINT,
    last_checked TIMESTAMPTZ,
    streak       BIGINT      NOT NULL CHECK (streak >= 0),
    pending      TEXT,
    PRIMARY KEY (kind, id)
);

-- One row per monitor per minute.
CREATE TABLE rollups_minute (
    monitor_id TEXT        NOT NULL,
    minute     TIMESTAMPTZ NOT NULL,
    component  TEXT        NOT NULL,
    checks     BIGINT      NOT NULL,
    failures   BIGINT      NOT NULL,
    p50_ms     BIGINT      NOT NULL,
    p95_ms     BIGINT      NOT NULL,
    max_ms     BIGINT      NOT NULL,
    PRIMARY KEY (monitor_id, minute),
    CHECK (failures >= 0 AND failures <= checks)
);
-- Retention deletes by age across all monitors.
CREATE INDEX rollups_minute_minute ON rollups_minute (minute);

-- Per component per day totals, kept in step with rollups_minute by the same transaction.
CREATE TABLE rollups_daily (
    component TEXT   NOT NULL,
    day       DATE   NOT NULL,
    checks    BIGINT NOT NULL,
    failures  BIGINT NOT NULL,
    PRIMARY KEY (component, day),
    CHECK (failures >= 0 AND failures <= checks)
);
CREATE INDEX rollups_daily_day ON rollups_daily (day);

-- API tokens, stored only as the SHA-256 of the secret.
CREATE TABLE api_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    hash       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT api_tokens_name_unique UNIQUE (name),
    CONSTRAINT api_tokens_hash_unique UNIQUE (hash)
);
