-- On-call overrides (someone covers a shift) and the secrets every instance must share.

-- An override puts `person` on call for `schedule` during [start_at, end_at). Overrides of one
-- schedule never overlap: the store refuses an overlapping one inside the same write
-- transaction that inserts it, so two responders covering the same hours at once cannot both
-- win. Times are unix milliseconds, as elsewhere in this schema.
CREATE TABLE oncall_overrides (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule   TEXT    NOT NULL,
    person     TEXT    NOT NULL,
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL CHECK (end_at > start_at),
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX oncall_overrides_schedule_end ON oncall_overrides (schedule, end_at);

-- Random keys made once per deployment (e.g. the one that signs acknowledge links), so every
-- instance and every restart signs and checks with the same key. The first writer wins.
CREATE TABLE shared_secrets (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
