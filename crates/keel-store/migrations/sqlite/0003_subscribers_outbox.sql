-- Subscribers, the notification outbox and scheduled maintenances (SQLite). Times are
-- INTEGER unix milliseconds (UTC), as everywhere else; lists and localized texts are JSON.

-- Confirm and unsubscribe tokens are stored only as their SHA-256 (hex). The webhook secret is
-- stored as given: signing needs the key itself. Email addresses arrive lower-cased, so the
-- unique (kind, address) also holds across letter case. SQLite's UNIQUE lets several NULL
-- confirm hashes coexist (subscribers confirmed from the start).
CREATE TABLE subscribers (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL CHECK (kind IN ('email', 'webhook')),
    address          TEXT    NOT NULL,
    components       TEXT    NOT NULL,
    locale           TEXT    NOT NULL,
    secret           TEXT,
    confirmed        INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
    confirm_hash     TEXT,
    unsubscribe_hash TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    confirmed_at     INTEGER,
    CONSTRAINT subscribers_kind_address_unique UNIQUE (kind, address),
    CONSTRAINT subscribers_confirm_hash_unique UNIQUE (confirm_hash),
    CONSTRAINT subscribers_unsubscribe_hash_unique UNIQUE (unsubscribe_hash)
);

-- Every notification, stored before it is sent. `status` moves pending → sending (claimed
-- until lease_until) → sent, or back to pending with a later next_attempt_at, or to dead.
-- subscriber_id is no foreign key: a subscriber may leave while its items wait.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    subscriber_id   INTEGER,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    claimed_by      TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    CONSTRAINT outbox_idempotency_key_unique UNIQUE (idempotency_key)
);
-- The claim reads due pending rows by time and expired leases by time.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease ON outbox (status, lease_until);
-- The dead-letter list, newest first.
CREATE INDEX outbox_finished ON outbox (status, finished_at);

CREATE TABLE maintenances (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('scheduled', 'in_progress', 'verifying', 'completed')),
    scheduled_for   INTEGER NOT NULL,
    scheduled_until INTEGER NOT NULL,
    components      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK (scheduled_until >= scheduled_for)
);
CREATE INDEX maintenances_scheduled_for ON maintenances (scheduled_for);
