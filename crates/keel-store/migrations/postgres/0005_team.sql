-- On-call overrides (someone covers a shift) and the secrets every instance must share
-- (PostgreSQL). Same tables as the SQLite schema, in native types.

-- An override puts `person` on call for `schedule` during [start_at, end_at). Overrides of one
-- schedule never overlap: the store takes a transaction-level advisory lock per schedule,
-- checks and inserts, so instances adding overrides at once cannot both win.
CREATE TABLE oncall_overrides (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule   TEXT        NOT NULL,
    person     TEXT        NOT NULL,
    start_at   TIMESTAMPTZ NOT NULL,
    end_at     TIMESTAMPTZ NOT NULL CHECK (end_at > start_at),
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oncall_overrides_schedule_end ON oncall_overrides (schedule, end_at);

-- Random keys made once per deployment (e.g. the one that signs acknowledge links), so every
-- instance and every restart signs and checks with the same key. The first writer wins.
CREATE TABLE shared_secrets (
    name       TEXT        PRIMARY KEY,
    value      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
