-- What several Keel instances on one database share (PostgreSQL). Same tables as the SQLite
-- schema, in native types. Lease and instance times are the server's clock (`now()`), never
-- an instance's, written at millisecond precision like every other time.

-- Named leases (the incident book's leader, monitor shards). `generation` is raised each time
-- the lease passes to a holder; a fenced write locks its lease row (FOR SHARE) and checks the
-- generation inside its own transaction, so a take-over waits for that write to commit.
CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    generation BIGINT      NOT NULL CHECK (generation >= 1),
    expires_at TIMESTAMPTZ NOT NULL
);

-- Running instances as they registered themselves; `seen_at` is the last heartbeat and
-- `config` the JSON object of their config digests by part.
CREATE TABLE instances (
    id         TEXT        PRIMARY KEY,
    listen     TEXT        NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL,
    config     JSONB       NOT NULL
);

-- The latest heartbeat push of each monitor that got one.
CREATE TABLE heartbeats (
    monitor TEXT        PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL
);
