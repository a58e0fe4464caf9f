-- Incidents (SQLite). An incident is nothing but its append-only timeline; `incidents` only
-- hands out ids and records the last seq, which is what optimistic appends compare against.

-- AUTOINCREMENT so an incident id is never reused, even if rows are ever deleted.
CREATE TABLE incidents (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    last_seq INTEGER NOT NULL CHECK (last_seq >= 1)
);

-- One row per timeline event. `kind` is the serde JSON of the event (the source of truth, so
-- new event kinds need no migration); `type` repeats its tag for queries. Times are INTEGER
-- unix milliseconds (UTC), as everywhere else.
CREATE TABLE incident_events (
    incident   INTEGER NOT NULL REFERENCES incidents (id),
    seq        INTEGER NOT NULL CHECK (seq >= 1),
    at         INTEGER NOT NULL,
    actor_type TEXT    NOT NULL,
    actor_name TEXT,
    type       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    PRIMARY KEY (incident, seq)
);
CREATE INDEX incident_events_type ON incident_events (type);
