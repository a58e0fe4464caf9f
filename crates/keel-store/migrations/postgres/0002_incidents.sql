-- Incidents (PostgreSQL). Same tables as the SQLite schema, in native types. An incident is
-- nothing but its append-only timeline; `incidents` only hands out ids and records the last
-- seq, which is what optimistic appends compare against (see postgres.rs).

-- An identity never hands out a value twice, whichever instance asks.
CREATE TABLE incidents (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_seq BIGINT NOT NULL CHECK (last_seq >= 1)
);

-- One row per timeline event. `kind` is the serde JSON of the event (the source of truth, so
-- new event kinds need no migration); `type` repeats its tag for queries. TEXT rather than
-- JSONB: JSONB refuses the \u0000 escape a note may carry and rewrites the text, TEXT keeps
-- it byte for byte as SQLite does; `kind::jsonb` is there for ad-hoc queries.
CREATE TABLE incident_events (
    incident   BIGINT      NOT NULL REFERENCES incidents (id),
    seq        BIGINT      NOT NULL CHECK (seq >= 1),
    at         TIMESTAMPTZ NOT NULL,
    actor_type TEXT        NOT NULL,
    actor_name TEXT,
    type       TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    PRIMARY KEY (incident, seq)
);
CREATE INDEX incident_events_type ON incident_events (type);
