//! Every key Keel understands, table by table.
//!
//! One list serves three purposes: spotting unknown keys (with a did-you-mean), deciding which
//! `KEEL_TABLE__KEY` environment variables are config keys, and keeping docs/config.md honest
//! (a test checks that every key listed here is documented).

/// Top-level tables and arrays of tables.
pub(crate) const TOP: &[&str] = &[
    "server",
    "page",
    "component",
    "vendor",
    "infra",
    "monitor",
    "incidents",
    "severity",
    "runbook",
    "notify",
    "intake",
    "storage",
    "scheduler",
    "cluster",
    "disclosure",
    "templates",
    "person",
    "schedule",
    "escalation",
    "paging",
];

/// The top-level entries written as `[[name]]`.
pub(crate) const ARRAYS: &[&str] = &[
    "component",
    "vendor",
    "infra",
    "monitor",
    "runbook",
    "person",
    "schedule",
    "escalation",
];

pub(crate) const SERVER: &[&str] = &["listen", "data_dir", "database_url", "header_read_timeout"];
pub(crate) const PAGE: &[&str] = &["title", "locales", "base_url", "export_dir"];
pub(crate) const DISCLOSURE: &[&str] = &["confidential_terms"];
pub(crate) const CLUSTER: &[&str] = &["lease"];
/// `next_update`, then one sub-table per situation (`[templates.opened]`).
pub(crate) const TEMPLATES: &[&str] = &[
    "next_update",
    "opened",
    "identified",
    "monitoring",
    "resolved",
    "reopened",
];
/// The keys of one situation's template: `[templates.opened] title = … body = …`.
pub(crate) const TEMPLATE: &[&str] = &["title", "body"];
pub(crate) const INCIDENTS: &[&str] = &[
    "publish_after",
    "stability_window",
    "recurrence_window",
    "canary_grace",
];
pub(crate) const NOTIFY: &[&str] = &[
    "allow_private_targets",
    "timeout",
    "retry_attempts",
    "lease",
    "workers",
    "smtp",
    "channel",
];
/// `[notify.smtp]`. `password` is deliberately absent: it is refused with its own message.
pub(crate) const NOTIFY_SMTP: &[&str] = &[
    "host",
    "port",
    "from",
    "tls",
    "username",
    "password_file",
    "timeout",
    "pool_size",
];
/// `[[notify.channel]]`.
pub(crate) const NOTIFY_CHANNEL: &[&str] = &[
    "name",
    "kind",
    "url",
    "url_env",
    "url_file",
    "card",
    "secret_env",
];
pub(crate) const INTAKE: &[&str] = &["component_label", "max_body_bytes", "route"];
pub(crate) const INTAKE_ROUTE: &[&str] = &["labels", "component"];
pub(crate) const STORAGE: &[&str] = &["rollup_retention", "daily_retention", "outbox_retention"];
pub(crate) const SCHEDULER: &[&str] = &["max_concurrency", "jitter"];

pub(crate) const SEVERITY: &[&str] = &[
    "sev1_user_share",
    "sev2_user_share",
    "sev3_user_share",
    "critical_min",
    "high_min",
    "internal_max",
    "vendor_max",
];

pub(crate) const COMPONENT: &[&str] = &[
    "id",
    "name",
    "users",
    "depends_on",
    "workaround",
    "public",
    "criticality",
    "alternatives",
    "group",
];
pub(crate) const INFRA: &[&str] = &["id", "name", "depends_on", "canary"];
pub(crate) const RUNBOOK: &[&str] = &["id", "component", "failure_kind", "steps"];
/// A runbook step written as a table: `{ text = "…", when_healthy = ["backup-db"] }`.
pub(crate) const RUNBOOK_STEP: &[&str] = &["text", "when_healthy"];
pub(crate) const VENDOR: &[&str] = &[
    "id",
    "name",
    "status_url",
    "interval",
    "timeout",
    "confidential",
    "components",
    "format",
];

/// Keys every monitor takes, whatever its kind.
pub(crate) const MONITOR_COMMON: &[&str] = &[
    "id",
    "component",
    "kind",
    "interval",
    "timeout",
    "retry_interval",
    "confirmations",
    "recoveries",
    "locations",
    "quorum",
];

pub(crate) const MONITOR_KINDS: &[&str] = &["http", "tcp", "dns", "tls", "heartbeat"];

pub(crate) const HTTP: &[&str] = &[
    "url",
    "method",
    "headers",
    "expected_status",
    "keyword",
    "keyword_absent",
    "json_pointer",
    "json_equals",
    "max_latency",
    "follow_redirects",
    "verify_tls",
];
pub(crate) const TCP: &[&str] = &["host", "port"];
pub(crate) const DNS: &[&str] = &["name", "record_type", "expected", "resolver"];
pub(crate) const TLS: &[&str] = &["host", "port", "server_name", "min_days", "verify"];
pub(crate) const HEARTBEAT: &[&str] = &["token", "grace"];

/// The kind-specific keys of a monitor kind.
pub(crate) fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "http" => HTTP,
        "tcp" => TCP,
        "dns" => DNS,
        "tls" => TLS,
        "heartbeat" => HEARTBEAT,
        _ => &[],
    }
}

/// The single (non-array) tables and their keys; the ones environment variables may set.
pub(crate) const SINGLE_TABLES: &[(&str, &[&str])] = &[
    ("server", SERVER),
    ("page", PAGE),
    ("incidents", INCIDENTS),
    ("severity", SEVERITY),
    ("notify", NOTIFY),
    // Nested: `KEEL_NOTIFY__SMTP__HOST`.
    ("notify.smtp", NOTIFY_SMTP),
    ("intake", INTAKE),
    ("storage", STORAGE),
    ("scheduler", SCHEDULER),
    ("cluster", CLUSTER),
    ("disclosure", DISCLOSURE),
    ("templates", TEMPLATES),
    ("paging", super::team_parse::PAGING),
    ("paging.ntfy", super::team_parse::PAGING_NTFY),
    ("paging.twilio", super::team_parse::PAGING_TWILIO),
];

/// Keys of single tables that hold tables or arrays of tables, which one environment
/// variable cannot express.
pub(crate) const NOT_FROM_ENV: &[(&str, &str)] = &[
    ("intake", "route"),
    ("notify", "smtp"),
    ("notify", "channel"),
    ("templates", "opened"),
    ("templates", "identified"),
    ("templates", "monitoring"),
    ("templates", "resolved"),
    ("templates", "reopened"),
    ("paging", "ntfy"),
    ("paging", "twilio"),
];

/// How a key that the environment cannot set is written in the file instead.
pub(crate) fn file_syntax(table: &str, key: &str) -> String {
    if matches!((table, key), ("intake", "route") | ("notify", "channel")) {
        format!("[[{table}.{key}]] tables")
    } else {
        format!("a [{table}.{key}] table")
    }
}
