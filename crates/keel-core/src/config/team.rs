//! The team: people and how to reach them (`[[person]]`), on-call rotations
//! (`[[schedule]]`), escalation policies (`[[escalation]]`) and the paging channels'
//! settings (`[paging]`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime};

use super::model::Secret;
use crate::assess::Severity;

/// A responder who can be paged.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: String,
    /// Default: the id.
    pub name: String,
    /// Her zone: quiet hours are read in it, and pages show times in it.
    pub timezone: chrono_tz::Tz,
    /// The language of her pages: `en` (default) or `ja`.
    pub locale: String,
    /// Below SEV1 she is not paged during these hours (in her zone).
    pub quiet_hours: Option<QuietHours>,
    /// In config order; may be empty (a page to her is then skipped, and the timeline says so).
    pub contacts: Vec<Contact>,
}

/// A daily span of local time, `from` inclusive, `to` exclusive; wraps midnight when
/// `to <= from` ("22:00-07:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl QuietHours {
    /// Whether the local time `t` falls inside.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

impl std::fmt::Display for QuietHours {
    /// "22:00–07:00", as written in the timeline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}–{}",
            self.from.format("%H:%M"),
            self.to.format("%H:%M")
        )
    }
}

/// Where a secret comes from. Core does no I/O, so a secret given as a file path
/// (`url_file`, `auth_token_file`) is read by the binary; one given in the file or through
/// an environment variable is resolved at parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The value, when it was given in the file or the environment.
    pub fn value(&self) -> Option<&Secret> {
        match self {
            SecretSource::Value(s) => Some(s),
            SecretSource::File(_) => None,
        }
    }

    /// The file to read it from, when it was given as one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SecretSource::Value(_) => None,
            SecretSource::File(p) => Some(p),
        }
    }

    /// The secret, reading the file with `read` when it is one (trailing whitespace and
    /// newlines, which editors and `echo` add, are dropped).
    pub fn resolve<E>(&self, read: impl FnOnce(&Path) -> Result<String, E>) -> Result<Secret, E> {
        match self {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(p) => read(p).map(|t| Secret(t.trim_end().to_owned())),
        }
    }
}

/// One way to reach a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email {
        address: String,
    },
    /// A signed JSON POST; `secret` (from `secret_env`) signs it.
    Webhook {
        url: SecretSource,
        secret: Option<Secret>,
    },
    Slack {
        url: SecretSource,
    },
    Discord {
        url: SecretSource,
    },
    Teams {
        url: SecretSource,
    },
    /// A push notification through the `[paging.ntfy]` server; `priority` 1..=5 overrides
    /// the default (5 for SEV1, 4 otherwise).
    Ntfy {
        topic: String,
        priority: Option<u8>,
    },
    /// E.164 numbers, through `[paging.twilio]`.
    Sms {
        number: String,
    },
    Voice {
        number: String,
    },
}

/// Every contact kind, as written in `kind`.
pub const CONTACT_KINDS: &[&str] = &[
    "email", "webhook", "slack", "discord", "teams", "ntfy", "sms", "voice",
];

impl Contact {
    /// "email", "webhook", "slack", …: as written in `kind`, and in `Paged.contacts`.
    pub fn kind(&self) -> &'static str {
        match self {
            Contact::Email { .. } => "email",
            Contact::Webhook { .. } => "webhook",
            Contact::Slack { .. } => "slack",
            Contact::Discord { .. } => "discord",
            Contact::Teams { .. } => "teams",
            Contact::Ntfy { .. } => "ntfy",
            Contact::Sms { .. } => "sms",
            Contact::Voice { .. } => "voice",
        }
    }
}

/// An on-call rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: String,
    /// Default: the id.
    pub name: String,
    /// Rotation order; non-empty, each a `[[person]]` id.
    pub people: Vec<String>,
    /// Each person's turn; > 0.
    pub rotation: Duration,
    /// The first person's turn starts here.
    pub start: DateTime<FixedOffset>,
    /// Hand-offs keep this zone's wall-clock time (across DST) when the rotation is a whole
    /// number of days; `None`: the fixed offset of `start`.
    pub timezone: Option<chrono_tz::Tz>,
}

/// Who to page, level by level, while nobody acknowledges.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    pub id: String,
    /// Components this policy is for; empty = every component without a more specific policy.
    pub components: Vec<String>,
    /// Incidents less severe than this do not page. Default SEV2.
    pub min_severity: Severity,
    /// How many more rounds of the levels run while nobody acknowledges. Default 0.
    pub repeat: u32,
    /// A new round starts this long after the previous round's last level. Default 5m.
    pub repeat_after: Duration,
    /// A relapse pages again at most once per this. Default 30m.
    pub renotify_after: Duration,
    /// Non-empty; `after` never goes down.
    pub levels: Vec<EscalationLevel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationLevel {
    /// From the start of the round.
    pub after: Duration,
    /// Non-empty.
    pub notify: Vec<PageTarget>,
}

/// `"person:ann"` or `"schedule:primary"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageTarget {
    Person(String),
    Schedule(String),
}

impl std::fmt::Display for PageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageTarget::Person(p) => write!(f, "person:{p}"),
            PageTarget::Schedule(s) => write!(f, "schedule:{s}"),
        }
    }
}

/// `[paging]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PagingConfig {
    /// How long a signed acknowledge link works. Default 24h.
    pub ack_link_ttl: Duration,
    pub ntfy: NtfyConfig,
    /// Needed by `sms` and `voice` contacts.
    pub twilio: Option<TwilioConfig>,
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig {
            ack_link_ttl: Duration::from_secs(24 * 3600),
            ntfy: NtfyConfig::default(),
            twilio: None,
        }
    }
}

/// `[paging.ntfy]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NtfyConfig {
    /// Base URL, no trailing slash. Default `https://ntfy.sh`.
    pub server: String,
    /// Access token, from the environment only.
    pub token: Option<Secret>,
}

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            server: "https://ntfy.sh".to_owned(),
            token: None,
        }
    }
}

/// `[paging.twilio]`: any Twilio-compatible REST gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct TwilioConfig {
    /// Base URL, no trailing slash. Default `https://api.twilio.com`.
    pub base_url: String,
    pub account_sid: String,
    /// From `auth_token_env` or `auth_token_file`.
    pub auth_token: SecretSource,
    /// E.164 sender number.
    pub from: String,
}
