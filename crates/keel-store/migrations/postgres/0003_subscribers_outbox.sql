-- Subscribers, the notification outbox and scheduled maintenances (PostgreSQL). Same tables
-- as the SQLite schema, in native types. Lists, localized texts and payloads are JSON kept as
-- TEXT (as incident events are): JSONB refuses the \u0000 escape a text may carry.

-- Confirm and unsubscribe tokens are stored only as their SHA-256 (hex). The webhook secret is
-- stored as given: signing needs the key itself. Email addresses arrive lower-cased, so the
-- unique (kind, address) also holds across letter case. NULL confirm hashes (subscribers
-- confirmed from the start) never collide under UNIQUE.
CREATE TABLE subscribers (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT        NOT NULL CHECK (kind IN ('email', 'webhook')),
    address          TEXT        NOT NULL,
    components       TEXT        NOT NULL,
    locale           TEXT        NOT NULL,
    secret           TEXT,
    confirmed        BOOLEAN     NOT NULL,
    confirm_hash     TEXT,
    unsubscribe_hash TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    confirmed_at     TIMESTAMPTZ,
    CONSTRAINT subscribers_kind_address_unique UNIQUE (kind, address),
    CONSTRAINT subscribers_confirm_hash_unique UNIQUE (confirm_hash),
    CONSTRAINT subscribers_unsubscribe_hash_unique UNIQUE (unsubscribe_hash)
);

-- Every notification, stored before it is sent. `status` moves pending → sending (claimed
-- until lease_until) → sent, or back to pending with a later next_attempt_at, or to dead.
-- Claims lock rows with FOR UPDATE SKIP LOCKED (see postgres.rs), so instances sharing the
-- database never claim one row together. subscriber_id is no foreign key: a subscriber may
-- leave while its items wait.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    target          TEXT        NOT NULL,
    subscriber_id   BIGINT,
    payload         TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        BIGINT      NOT NULL CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    claimed_by      TEXT,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    CONSTRAINT outbox_idempotency_key_unique UNIQUE (idempotency_key)
);
-- The claim reads due pending rows by time and expired leases by time.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease ON outbox (status, lease_until);
-- The dead-letter list, newest first.
CREATE INDEX outbox_finished ON outbox (status, finished_at);

CREATE TABLE maintenances (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    status          TEXT        NOT NULL
        CHECK (status IN ('scheduled', 'in_progress', 'verifying', 'completed')),
    scheduled_for   TIMESTAMPTZ NOT NULL,
    scheduled_until TIMESTAMPTZ NOT NULL,
    components      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CHECK (scheduled_until >= scheduled_for)
);
CREATE INDEX maintenances_scheduled_for ON maintenances (scheduled_for);
