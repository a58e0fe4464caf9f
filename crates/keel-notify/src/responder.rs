//! The message Keel posts to responders' chat channels, before it is shaped per channel.
//!
//! Responders (Slack, Discord, Teams, an operator webhook) are told about incidents as they
//! happen, in one neutral form that the server fills from the incident; `slack`, `discord`
//! and `teams` each turn it into their platform's body, and [`send`] posts any of them.
//! Unlike subscriber notifications this may carry internal facts (cause, severity), because
//! it goes to the team, not the public.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::guard::{check_url, GuardError};
use crate::http::{post_json, SendError};

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

/// Checks a chat webhook URL, Slack's, Discord's or Teams': operators configure these, so
/// private hosts are fine.
pub fn validate(url: &str) -> Result<Url, GuardError> {
    check_url(url, true)
}

/// Posts a chat body to its channel's webhook: Slack's, Discord's or Teams' (built by
/// `slack::payload`, `discord::payload` or `teams::payload`; only the body differs between
/// them). The outcome is classified as every HTTP delivery's is ([`post_json`]); a URL that
/// fails [`validate`] is a permanent failure.
pub async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Result<(), SendError> {
    let url = validate(url).map_err(|e| SendError::Permanent(e.to_string()))?;
    post_json(
        client,
        &url,
        body.to_string().into_bytes(),
        Default::default(),
    )
    .await?;
    Ok(())
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

    #[test]
    fn chat_urls_are_checked() {
        assert!(validate("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(validate("http://10.0.0.2/hooks/abc").is_ok());
        assert!(validate("ftp://hooks.slack.com/").is_err());
        assert!(validate("hooks.slack.com/services").is_err());
    }
}
