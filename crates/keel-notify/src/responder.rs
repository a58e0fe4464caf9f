//! The message Keel posts to responders' chat channels, before it is shaped per channel.
//!
//! Responders (Slack, Discord, Teams, an operator webhook) are told about incidents as they
//! happen, in one neutral form that the server fills from the incident; `slack`, `discord`
//! and `teams` each turn it into their platform's body. Unlike subscriber notifications this
//! may carry internal facts (cause, severity), because it goes to the team, not the public.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the message should look: the colour bar or card style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Resolved, recovered.
    Good,
    /// Informational: a note, an acknowledgement.
    Info,
    /// Degraded, monitoring.
    Warning,
    /// Down, opened, relapsed.
    Danger,
}

impl Tone {
    /// The colour as RGB (used as `#rrggbb` by Slack and as an integer by Discord).
    pub fn rgb(self) -> u32 {
        match self {
            Tone::Good => 0x2e_b8_86,
            Tone::Info => 0x43_9f_e0,
            Tone::Warning => 0xda_a0_38,
            Tone::Danger => 0xa3_02_00,
        }
    }
}

/// One responder notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponderMessage {
    /// One line: "SEV2 · Search is down (incident 12)".
    pub title: String,
    /// A few sentences: what happened, what Keel thinks the cause is.
    pub text: String,
    pub tone: Tone,
    /// Labelled facts in order: ("Severity", "SEV2"), ("Cause", "db-primary").
    pub facts: Vec<(String, String)>,
    /// A link to the incident in Keel, with its label ("Open in Keel").
    pub link: Option<Link>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// Cuts `s` to at most `max` characters, ending with "…" when cut (chat platforms refuse
/// over-long fields instead of truncating them).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
pub(crate) fn sample() -> ResponderMessage {
    ResponderMessage {
        title: "SEV2 · Search is down (incident 12)".into(),
        text: "Search has failed its checks since 11:58 UTC. Likely cause: db-primary <timeout> & retries.".into(),
        tone: Tone::Danger,
        facts: vec![
            ("Severity".into(), "SEV2".into()),
            ("Affected".into(), "Search, API".into()),
            ("Users".into(), "about 500".into()),
        ],
        link: Some(Link {
            label: "Open in Keel".into(),
            url: "https://keel.example.com/incidents/12".into(),
        }),
        at: "2024-05-01T12:00:00Z".parse().unwrap(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("検索サービス", 4), "検索サ…");
    }
}
