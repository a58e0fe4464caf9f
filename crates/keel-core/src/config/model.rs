//! The typed configuration: what `keel.toml` means once parsed and validated.
//!
//! Every value here has already passed validation (ids well-formed and unique, references
//! resolved, no dependency cycles, durations positive), so the rest of Keel never re-checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::assess::{Criticality, NodeKind, Severity};
use crate::ids::{ComponentId, MonitorId, VendorId};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub page: PageConfig,
    pub components: Vec<Component>,
    pub vendors: Vec<Vendor>,
    /// Infrastructure nodes (`[[infra]]`): "network", "power", a canary such as "internet".
    pub infra: Vec<Infra>,
    pub monitors: Vec<Monitor>,
    pub incidents: IncidentsConfig,
    /// Rules that turn impact into SEV1–SEV4 (`[severity]`).
    pub severity: SeverityConfig,
    /// Ordered steps per component or failure kind (`[[runbook]]`), in config order.
    pub runbooks: Vec<Runbook>,
    pub notify: NotifyConfig,
    pub intake: IntakeConfig,
    pub storage: StorageConfig,
    pub scheduler: SchedulerConfig,
    /// How several instances on one PostgreSQL share the work (`[cluster]`).
    pub cluster: ClusterConfig,
    /// What public text must never say, beyond what the config already marks internal
    /// (`[disclosure]`).
    pub disclosure: DisclosureConfig,
    /// Operators' wording for drafted customer updates (`[templates]`).
    pub templates: TemplatesConfig,
    /// Responders (`[[person]]`), rotations (`[[schedule]]`), escalation policies
    /// (`[[escalation]]`) and paging channels (`[paging]`).
    pub people: Vec<super::Person>,
    pub schedules: Vec<super::Schedule>,
    pub escalations: Vec<super::EscalationPolicy>,
    pub paging: super::PagingConfig,
}

impl Config {
    /// The monitors the Keel server checks itself (`"local"` among their locations): what its
    /// scheduler runs. The others are run by remote probes only.
    pub fn local_monitors(&self) -> Vec<Monitor> {
        self.monitors
            .iter()
            .filter(|m| m.checks_locally())
            .cloned()
            .collect()
    }
}

/// A secret value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Default `./keel-data`; SQLite lives here unless `database_url` is set.
    pub data_dir: PathBuf,
    /// `postgres://…` (scale-out) or `sqlite://…`; `None` means SQLite under `data_dir`.
    pub database_url: Option<Secret>,
    /// How long an HTTP/1 connection may take to send a request's headers, and stay idle
    /// between requests, before Keel closes it. Default 30s.
    pub header_read_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PageConfig {
    /// Default "Keel Status".
    pub title: String,
    /// Default `["en"]`; each one of `en`, `ja`.
    pub locales: Vec<String>,
    /// Absolute URL the page is reached at (`https://status.example.com`, no trailing
    /// slash), for links in feeds, JSON and notifications; `None` = relative links only.
    pub base_url: Option<String>,
    /// Directory the static status page is re-exported to on every change (for serving by
    /// a plain web server or object storage); `None` (default) = no export.
    pub export_dir: Option<PathBuf>,
}

/// Terms no public text may contain (`[disclosure]`), on top of what the config itself
/// marks internal: confidential vendors, internal components, monitors' hosts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisclosureConfig {
    /// Code names, internal host names, supplier names Keel does not know as vendors.
    pub confidential_terms: Vec<String>,
}

/// The situations Keel drafts a customer update for, one template each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Situation {
    /// A new incident: investigating.
    Opened,
    /// The cause is known and being fixed.
    Identified,
    /// The service works again; Keel is watching it (recovering).
    Monitoring,
    Resolved,
    /// The problem came back after recovering or being resolved: investigating again.
    Reopened,
}

impl Situation {
    pub const ALL: [Situation; 5] = [
        Situation::Opened,
        Situation::Identified,
        Situation::Monitoring,
        Situation::Resolved,
        Situation::Reopened,
    ];

    /// The name used in config (`[templates.opened]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Situation::Opened => "opened",
            Situation::Identified => "identified",
            Situation::Monitoring => "monitoring",
            Situation::Resolved => "resolved",
            Situation::Reopened => "reopened",
        }
    }
}

impl std::fmt::Display for Situation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's wording for one situation; a missing part (or locale) keeps Keel's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateOverride {
    pub title: Option<LocalizedText>,
    pub body: Option<LocalizedText>,
}

/// `[templates]`: how drafted updates read. Placeholders were checked when the config was
/// read, so every template here renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatesConfig {
    /// The next update the drafts promise ("We will post an update within 30 minutes").
    /// Default 30m.
    pub next_update: Duration,
    /// Per situation; situations absent here use Keel's built-in wording.
    pub overrides: BTreeMap<Situation, TemplateOverride>,
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig {
            next_update: Duration::from_secs(30 * 60),
            overrides: BTreeMap::new(),
        }
    }
}

/// Text given once, or per locale: `name = "API"` or `name = { en = "API", ja = "API" }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalizedText {
    /// Locale → text. A plain string is stored under the empty locale `""`, which is the
    /// fallback for every locale.
    pub by_locale: BTreeMap<String, String>,
}

impl LocalizedText {
    pub fn plain(s: impl Into<String>) -> Self {
        let mut by_locale = BTreeMap::new();
        by_locale.insert(String::new(), s.into());
        LocalizedText { by_locale }
    }

    /// The text for `locale`, falling back to the plain text, then English, then any.
    pub fn get(&self, locale: &str) -> &str {
        self.by_locale
            .get(locale)
            .or_else(|| self.by_locale.get(""))
            .or_else(|| self.by_locale.get("en"))
            .or_else(|| self.by_locale.values().next())
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: ComponentId,
    pub name: LocalizedText,
    /// People who rely on it; default 0.
    pub users: u64,
    /// Other components or vendors (ids checked to exist; no cycles).
    pub depends_on: Vec<String>,
    pub workaround: Option<LocalizedText>,
    /// Default true; internal components never appear on the page.
    pub public: bool,
    /// Default `Normal`; `High` and `Critical` raise the severity of incidents impacting it.
    pub criticality: Criticality,
    /// Other public components customers can use instead (ids checked to exist, to be
    /// public and not the component itself). Offered only while they and everything they
    /// rest on are healthy; see `assess::alternatives`.
    pub alternatives: Vec<String>,
    /// The group it is shown in on the status page (`group = "Europe"`), as Statuspage's
    /// component groups; `None`: at the top level. Components whose `group` is written the
    /// same way form one group (see [`group_id`]).
    pub group: Option<LocalizedText>,
}

/// The stable id of the component group named `name`: 12 characters in Statuspage's alphabet,
/// derived from the name (every locale), so the same config gives the same id on every
/// instance and after every restart without storing it. The JSON API's `group_id` and the
/// page's anchors and subscribe choices use it.
pub fn group_id(name: &LocalizedText) -> String {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (locale, text) in &name.by_locale {
        for b in locale.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..12)
        .map(|_| {
            let c = ALPHABET[(h % 36) as usize] as char;
            h /= 36;
            c
        })
        .collect()
}

/// Infrastructure the team does not ship but depends on (`[[infra]]`): "network", "power",
/// a data centre. A node of the dependency graph like components and vendors (one id space),
/// with no users and no place on the page of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Infra {
    /// Infra ids are component-shaped because monitors name them in `component`.
    pub id: ComponentId,
    pub name: LocalizedText,
    /// Other nodes it needs (ids checked to exist; no cycles).
    pub depends_on: Vec<String>,
    /// Default false. A canary checks Keel's own view of the world (e.g. "internet"): while
    /// it fails, Keel says it cannot see instead of declaring everything down.
    pub canary: bool,
}

/// The rules that turn impact into a severity (`[severity]`); see docs/config.md.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityConfig {
    /// Share of all users (0–1) from which an incident is SEV1. Default 0.5.
    pub sev1_user_share: f64,
    /// Default 0.2.
    pub sev2_user_share: f64,
    /// Default 0.05; below it, SEV4.
    pub sev3_user_share: f64,
    /// An impacted critical component makes the incident at least this. Default SEV2.
    pub critical_min: Severity,
    /// An impacted high-criticality component makes it at least this. Default SEV3.
    pub high_min: Severity,
    /// Incidents impacting no public component are at most this. Default SEV3.
    pub internal_max: Severity,
    /// Vendor-caused incidents are at most this; `None` (default) = no cap.
    pub vendor_max: Option<Severity>,
}

/// Ordered steps for a failure (`[[runbook]]`): the disaster-recovery plan as code, which
/// becomes an incident's checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    /// Unique among runbooks.
    pub id: String,
    /// The graph node (component, vendor or infra) it is for; checked to exist.
    pub component: Option<String>,
    /// The kind of failure it is for (one of [`FAILURE_KINDS`]). At least one of
    /// `component` and `failure_kind` is set.
    pub failure_kind: Option<String>,
    /// Non-empty, each step non-empty.
    pub steps: Vec<RunbookStep>,
}

/// One step of a runbook: `"Check the DB"`, or `{ text = "Fail over to backup-db",
/// when_healthy = ["backup-db"] }` for a step that is only safe while those nodes (and what
/// they rest on) are healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookStep {
    pub text: String,
    /// Graph nodes (checked to exist) that must be healthy for the step to be safe.
    pub when_healthy: Vec<String>,
}

impl RunbookStep {
    pub fn plain(text: impl Into<String>) -> Self {
        RunbookStep {
            text: text.into(),
            when_healthy: Vec::new(),
        }
    }
}

/// The failure kinds a node's health can carry, and that `[[runbook]]` may name: the monitor
/// kinds, `vendor` (a vendor's status page), `alertmanager` / `generic` (intake alerts) and
/// `manual` (declared by a person).
pub const FAILURE_KINDS: &[&str] = &[
    "http",
    "tcp",
    "dns",
    "tls",
    "heartbeat",
    "vendor",
    "alertmanager",
    "generic",
    "manual",
];

/// Which public status format a vendor exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorFormat {
    /// Detect from the document.
    Auto,
    /// Atlassian Statuspage v2 (`/api/v2/summary.json` or `status.json`).
    Statuspage,
    /// status.io public API (`/1.0/status/{page_id}`).
    StatusIo,
    /// Slack status API v2 (`/api/v2.0.0/current`).
    Slack,
    /// Instatus `/summary.json`.
    Instatus,
    /// Google Cloud `incidents.json`.
    GoogleCloud,
    /// Heroku current-status API.
    Heroku,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vendor {
    pub id: VendorId,
    pub name: String,
    pub status_url: String,
    /// Default 60s.
    pub interval: Duration,
    /// Default 10s.
    pub timeout: Duration,
    /// Default false; a confidential vendor is never named in public text.
    pub confidential: bool,
    /// Follow only these of the vendor's components (by name or id); empty = the whole page.
    pub components: Vec<String>,
    /// Default `Auto`.
    pub format: VendorFormat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub id: MonitorId,
    pub component: ComponentId,
    /// Default 30s.
    pub interval: Duration,
    /// Default 5s.
    pub timeout: Duration,
    /// Re-check interval after a first, unconfirmed failure. Default min(interval, 5s).
    pub retry_interval: Duration,
    /// Consecutive failures before down. Default 2.
    pub confirmations: u32,
    /// Consecutive successes before up again. Default 1.
    pub recoveries: u32,
    /// Where the check runs from: [`LOCAL`] (the Keel server itself) and the names remote
    /// probes report as (`keel probe --location osaka`). Default `["local"]`; names are
    /// `[a-z0-9-]+`, unique, at least one.
    pub locations: Vec<String>,
    /// How many of `locations` must see a failure for it to count (see
    /// [`crate::quorum`]). Default a majority, `len / 2 + 1`; always `1..=len`.
    pub quorum: u32,
    pub check: Check,
}

/// The location that is the Keel server itself.
pub const LOCAL: &str = "local";

/// Whether `name` is a well-formed location name: `[a-z0-9-]{1,64}` ([`LOCAL`] included).
pub fn is_location_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `name` is a location a remote probe may report as: well formed, and not the
/// server's own [`LOCAL`].
pub fn is_probe_location(name: &str) -> bool {
    name != LOCAL && is_location_name(name)
}

impl Monitor {
    /// Whether the Keel server runs this check itself (`"local"` is among its locations).
    pub fn checks_locally(&self) -> bool {
        self.locations.iter().any(|l| l == LOCAL)
    }

    /// Whether this monitor is watched from anywhere but the server alone, so its health is
    /// the quorum of several (or remote) locations rather than the local check's.
    pub fn is_located(&self) -> bool {
        self.locations.len() != 1 || !self.checks_locally()
    }

    /// Whether remote probes at `location` run this check.
    pub fn runs_at(&self, location: &str) -> bool {
        location != LOCAL && self.locations.iter().any(|l| l == location)
    }

    /// The short name of the check kind, as written in config.
    pub fn kind(&self) -> &'static str {
        match self.check {
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
            Check::Dns(_) => "dns",
            Check::Tls(_) => "tls",
            Check::Heartbeat(_) => "heartbeat",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Dns(DnsCheck),
    Tls(TlsCheck),
    Heartbeat(HeartbeatCheck),
}

/// An inclusive range of acceptable HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub from: u16,
    pub to: u16,
}

impl StatusRange {
    pub fn contains(&self, code: u16) -> bool {
        (self.from..=self.to).contains(&code)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub url: String,
    /// Default "GET".
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// `expected_status = [200, "2xx", "300-399"]`; default 2xx.
    pub expected_status: Vec<StatusRange>,
    /// The body must contain this text.
    pub keyword: Option<String>,
    /// The body must not contain this text.
    pub keyword_absent: Option<String>,
    /// `json_pointer = "/status"` with `json_equals = "ok"` (any JSON value).
    pub json_pointer: Option<(String, serde_json::Value)>,
    /// Slower than this counts as degraded.
    pub max_latency: Option<Duration>,
    /// Default true.
    pub follow_redirects: bool,
    /// Default true.
    pub verify_tls: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpCheck {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheck {
    pub name: String,
    /// Default A.
    pub record_type: RecordType,
    /// Answers that must be present (any one of them); empty = any answer.
    pub expected: Vec<String>,
    /// Resolver address (`"127.0.0.1:5353"`, port 53 by default); `None` = system resolver.
    pub resolver: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsCheck {
    pub host: String,
    /// Default 443.
    pub port: u16,
    /// SNI name; default `host`.
    pub server_name: Option<String>,
    /// Fewer days left than this is degraded (expired is down). Default 14.
    pub min_days: u32,
    /// Default true: an untrusted chain is down. False for self-signed certificates.
    pub verify: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatCheck {
    /// The push URL's secret: `/api/v1/push/{token}`.
    pub token: Secret,
    /// No beat within `interval + grace` means down. Default 0s.
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsConfig {
    /// Default 2m.
    pub publish_after: Duration,
    /// Default 5m.
    pub stability_window: Duration,
    /// Default 24h.
    pub recurrence_window: Duration,
    /// How long a new incident whose failure Keel's own blindness could explain waits for a
    /// canary to confirm (see docs/config.md). Default: the longest a canary monitor can take
    /// to confirm a failure; zero without canaries.
    pub canary_grace: Duration,
}

/// `[notify]`: how notifications leave Keel (the outbox workers), email, and responders'
/// chat channels.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// Default false.
    pub allow_private_targets: bool,
    /// One delivery attempt (an HTTP request) may take this long. Default 10s.
    pub timeout: Duration,
    /// Attempts per notification before it is given up. Default 12; 1..=100.
    pub retry_attempts: u32,
    /// How long a claimed outbox item is reserved before another worker may take it.
    /// Default 5m; always longer than `timeout`.
    pub lease: Duration,
    /// Outbox workers per Keel process. Default 1; 1..=64.
    pub workers: usize,
    /// `[notify.smtp]`; `None` = no email.
    pub smtp: Option<SmtpConfig>,
    /// `[[notify.channel]]`: responders' chat channels, in config order, names unique.
    pub channels: Vec<ChannelConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            retry_attempts: 12,
            lease: Duration::from_secs(5 * 60),
            workers: 1,
            smtp: None,
            channels: Vec::new(),
        }
    }
}

/// How the SMTP connection is secured (`[notify.smtp] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTlsMode {
    /// Plain SMTP: for a relay on loopback or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS (required). The default.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS").
    Tls,
}

impl SmtpTlsMode {
    /// The port used when `port` is not written: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTlsMode::None => 25,
            SmtpTlsMode::Starttls => 587,
            SmtpTlsMode::Tls => 465,
        }
    }

    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTlsMode::None => "none",
            SmtpTlsMode::Starttls => "starttls",
            SmtpTlsMode::Tls => "tls",
        }
    }
}

/// `[notify.smtp]`: the mail server subscriber emails go through.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Host name or IP address (no port, no URL).
    pub host: String,
    /// Default by `tls`: 25, 587 or 465.
    pub port: u16,
    /// The sender: `Keel Status <status@example.com>` or `status@example.com` (checked to
    /// look like one).
    pub from: String,
    /// Default `Starttls`.
    pub tls: SmtpTlsMode,
    pub username: Option<String>,
    /// From `KEEL_NOTIFY_SMTP_PASSWORD` in the environment passed to `parse`. Secrets never
    /// live in the file. When set it wins over `password_file`.
    pub password: Option<Secret>,
    /// A file holding the password, read by the binary (core does no I/O) when `password`
    /// is `None`. When `username` is set, at least one of the two is.
    pub password_file: Option<PathBuf>,
    /// Per SMTP command. Default 10s.
    pub timeout: Duration,
    /// Connections kept open for reuse. Default 4; 1..=64.
    pub pool_size: u32,
}

/// Which chat service a responders' channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Slack,
    Discord,
    Teams,
    /// Any HTTP endpoint of the operator's, optionally HMAC-signed (`secret_env`).
    Webhook,
}

impl ChannelKind {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Teams => "teams",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// Which body a Teams URL expects: a Workflows URL takes an Adaptive Card, a legacy Office
/// 365 connector a `MessageCard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeamsCard {
    #[default]
    Adaptive,
    MessageCard,
}

/// `[[notify.channel]]`: one chat channel responders are told about incidents in.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// Unique among channels.
    pub name: String,
    pub kind: ChannelKind,
    /// The webhook URL (http or https, checked), written as `url` or resolved from the
    /// variable `url_env` names. `None` only when `url_file` is set (the binary reads it).
    pub url: Option<Secret>,
    /// The environment variable the URL came from, if it came from one.
    pub url_env: Option<String>,
    /// A file holding the URL, read by the binary. Exactly one of `url` (as written),
    /// `url_env` and `url_file` was given.
    pub url_file: Option<PathBuf>,
    /// Only meaningful for `Teams`; default `Adaptive`.
    pub card: TeamsCard,
    /// Names the environment variable holding the HMAC secret a `Webhook` channel's
    /// requests are signed with (checked to be set when the config was parsed).
    pub secret_env: Option<String>,
    /// That variable's value, read once when the config was parsed (from the same
    /// environment the check used), so nothing re-reads the environment per update.
    pub secret: Option<Secret>,
}

/// Maps alerts whose labels all match to a component: `[[intake.route]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeRoute {
    pub labels: BTreeMap<String, String>,
    pub component: ComponentId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntakeConfig {
    /// Label naming the component directly. Default "component".
    pub component_label: String,
    /// Tried in order when the component label is absent or names nothing.
    pub routes: Vec<IntakeRoute>,
    /// Larger bodies get 413. Default 1 MiB.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// How long per-minute rollups are kept. Default 30d.
    pub rollup_retention: Duration,
    /// How long per-day rollups are kept. Default 400d.
    pub daily_retention: Duration,
    /// How long delivered notifications stay in the outbox. Default 30d, at least
    /// [`MIN_OUTBOX_RETENTION`]: a kept row is what stops an update from being sent twice.
    pub outbox_retention: Duration,
}

/// The shortest outbox retention: a day, well beyond the hour of updates re-queued at start
/// (their idempotency keys must still be stored to be recognised).
pub const MIN_OUTBOX_RETENTION: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Checks in flight at once. Default 512.
    pub max_concurrency: usize,
    /// Random spread of each monitor's first check and of every interval, as a fraction of
    /// the interval. Default 0.1.
    pub jitter: f64,
}

/// How several instances on one database share the work.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// How long an instance's claim on the incident book (leadership) and on its share of the
    /// monitors lasts without renewal; renewed every third of it. A dead instance's work is
    /// taken over after about this long. Default 5s.
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            lease: Duration::from_secs(5),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./keel-data"),
            database_url: None,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for PageConfig {
    fn default() -> Self {
        PageConfig {
            title: "Keel Status".to_owned(),
            locales: vec!["en".to_owned()],
            base_url: None,
            export_dir: None,
        }
    }
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            publish_after: Duration::from_secs(2 * 60),
            stability_window: Duration::from_secs(5 * 60),
            recurrence_window: Duration::from_secs(24 * 3600),
            canary_grace: Duration::ZERO,
        }
    }
}

impl Default for SeverityConfig {
    fn default() -> Self {
        SeverityConfig {
            sev1_user_share: 0.5,
            sev2_user_share: 0.2,
            sev3_user_share: 0.05,
            critical_min: Severity::Sev2,
            high_min: Severity::Sev3,
            internal_max: Severity::Sev3,
            vendor_max: None,
        }
    }
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            component_label: "component".to_owned(),
            routes: Vec::new(),
            max_body_bytes: 1 << 20,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            rollup_retention: Duration::from_secs(30 * 86_400),
            daily_retention: Duration::from_secs(400 * 86_400),
            outbox_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrency: 512,
            jitter: 0.1,
        }
    }
}

/// Defaults for every table and no components, vendors or monitors: what an empty
/// `keel.toml` means.
impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            page: PageConfig::default(),
            components: Vec::new(),
            vendors: Vec::new(),
            infra: Vec::new(),
            monitors: Vec::new(),
            incidents: IncidentsConfig::default(),
            severity: SeverityConfig::default(),
            runbooks: Vec::new(),
            notify: NotifyConfig::default(),
            intake: IntakeConfig::default(),
            storage: StorageConfig::default(),
            scheduler: SchedulerConfig::default(),
            cluster: ClusterConfig::default(),
            disclosure: DisclosureConfig::default(),
            templates: TemplatesConfig::default(),
            people: Vec::new(),
            schedules: Vec::new(),
            escalations: Vec::new(),
            paging: super::PagingConfig::default(),
        }
    }
}

impl Config {
    /// What kind of graph node `id` is, if it is one: components, vendors and infra share
    /// one id space.
    pub fn node_kind(&self, id: &str) -> Option<NodeKind> {
        if self.components.iter().any(|c| c.id.as_str() == id) {
            Some(NodeKind::Component)
        } else if self.vendors.iter().any(|v| v.id.as_str() == id) {
            Some(NodeKind::Vendor)
        } else if self.infra.iter().any(|i| i.id.as_str() == id) {
            Some(NodeKind::Infra)
        } else {
            None
        }
    }

    /// The id of the public component named `id`, if there is one: how text from a form or
    /// a request becomes a [`ComponentId`] that names a component customers can see.
    pub fn public_component_id(&self, id: &str) -> Option<&ComponentId> {
        self.components
            .iter()
            .find(|c| c.public && c.id.as_str() == id)
            .map(|c| &c.id)
    }
}
