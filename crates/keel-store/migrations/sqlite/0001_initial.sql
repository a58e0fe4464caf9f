-- Keel's first schema (SQLite). Timestamps are INTEGER unix milliseconds (UTC); days are
-- TEXT 'YYYY-MM-DD' (UTC). What grows is state changes and rollups, never a row per check.

-- Every confirmed change of health, in one stream. AUTOINCREMENT so a sequence number is never
-- reused, even after old rows are deleted: readers resume from the last seq they saw.
CREATE TABLE signals (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    source_kind TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    component   TEXT    NOT NULL,
    health      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    at          INTEGER NOT NULL
);

-- The confirmation state of each monitor and vendor, so a restart does not re-alert.
CREATE TABLE source_states (
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    component    TEXT        NOT NULL,
    health       TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    latency_ms   INTEGER,
    last_checked INTEGER,
    streak       INTEGER NOT NULL CHECK (streak >= 0),
    pending      TEXT,
    PRIMARY KEY (kind, id)
);

-- One row per monitor per minute.
CREATE TABLE rollups_minute (
    monitor_id TEXT    NOT NULL,
    minute     INTEGER NOT NULL,
    component  TEXT    NOT NULL,
    checks     INTEGER NOT NULL,
    failures   INTEGER NOT NULL,
    p50_ms     INTEGER NOT NULL,
    p95_ms     INTEGER NOT NULL,
    max_ms     INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, minute),
    CHECK (failures >= 0 AND failures <= checks)
);
-- Retention deletes by age across all monitors.
CREATE INDEX rollups_minute_minute ON rollups_minute (minute);

-- Per component per day totals, kept in step with rollups_minute by the same transaction, so
-- uptime over months reads a few rows and survives the minute rows' shorter retention.
CREATE TABLE rollups_daily (
    component TEXT    NOT NULL,
    day       TEXT    NOT NULL,
    checks    INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    PRIMARY KEY (component, day),
    CHECK (failures >= 0 AND failures <= checks)
);
CREATE INDEX rollups_daily_day ON rollups_daily (day);

-- API tokens, stored only as the SHA-256 of the secret.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT api_tokens_name_unique UNIQUE (name),
    CONSTRAINT api_tokens_hash_unique UNIQUE (hash)
);
