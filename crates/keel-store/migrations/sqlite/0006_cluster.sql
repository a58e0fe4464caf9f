-- What several Keel instances on one database share (SQLite carries one instance, but keeps
-- the same tables so both backends tell the same story). Times are unix milliseconds; the
-- process clock is the database clock here.

-- Named leases (the incident book's leader, monitor shards). `generation` is raised each time
-- the lease passes to a holder, so a write fenced with an older generation is refused.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    generation INTEGER NOT NULL CHECK (generation >= 1),
    expires_at INTEGER NOT NULL
);

-- Running instances as they registered themselves; `seen_at` is the last heartbeat and
-- `config` the JSON object of their config digests by part.
CREATE TABLE instances (
    id         TEXT    PRIMARY KEY,
    listen     TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    config     TEXT    NOT NULL
);

-- The latest heartbeat push of each monitor that got one.
CREATE TABLE heartbeats (
    monitor TEXT    PRIMARY KEY,
    at      INTEGER NOT NULL
);
