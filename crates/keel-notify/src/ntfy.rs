//! ntfy push notifications for pages: validate + send + a pure payload builder.
//!
//! Pages go through ntfy's "publish as JSON" API (`fixtures/paging/ntfy-publish.json`): one
//! POST of a JSON object to the server's root URL, the topic inside the body. The outbox row's
//! target is the topic; the server URL and the optional access token come from
//! [`NtfySettings`] at send time, so neither is stored with the page. A topic on a public ntfy
//! server is effectively a password, which is why it lives in the target (like a chat webhook
//! URL) and never in an error message.

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use url::Url;

use crate::http::{self, SendError};
use crate::page::{self, PageMessage};

/// `[paging.ntfy]`: where to publish and with which access token.
#[derive(Debug, Clone, PartialEq)]
pub struct NtfySettings {
    /// The server's base URL, e.g. `https://ntfy.sh` (a self-hosted server works the same).
    pub server: String,
    /// An access token (`tk_…`), sent as `Authorization: Bearer`; `None` for open topics.
    pub token: Option<keel_core::config::Secret>,
}

/// ntfy's highest priority ("max": long vibration bursts, pop-over) for SEV1 …
pub const PRIORITY_SEV1: u8 = 5;
/// … and "high" for every other page.
pub const PRIORITY_OTHER: u8 = 4;

/// The publish body for a page, without its topic (added at send time from the outbox
/// target). `priority` overrides the default (5 for SEV1, 4 otherwise) and is clamped to
/// ntfy's 1..=5.
pub fn payload(msg: &PageMessage, priority: Option<u8>) -> Value {
    let sev1 = page::is_sev1(&msg.severity);
    let priority = priority
        .unwrap_or(if sev1 { PRIORITY_SEV1 } else { PRIORITY_OTHER })
        .clamp(1, 5);
    let w = page::words(&msg.locale);
    json!({
        "title": msg.title,
        "message": page::summary(msg),
        "priority": priority,
        // Tags that ntfy shows as emojis in front of the title.
        "tags": [if sev1 { "rotating_light" } else { "warning" }],
        "click": msg.incident_url,
        "actions": [
            {"action": "view", "label": w.acknowledge, "url": msg.ack_url, "clear": true},
            {"action": "view", "label": w.open_incident, "url": msg.incident_url},
        ],
    })
}

/// A topic as ntfy accepts it: 1–64 of `A-Z a-z 0-9 _ -`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 64
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not a valid ntfy topic ({} characters; topics are 1-64 of A-Z, a-z, 0-9, _ and -)",
            topic.chars().count()
        ))
    }
}

/// Checks `[paging.ntfy] server`: an http(s) base URL without credentials or query.
pub fn validate_server(server: &str) -> Result<Url, String> {
    let url = Url::parse(server.trim())
        .map_err(|e| format!("[paging.ntfy] server {server:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "[paging.ntfy] server {server:?} must be an http:// or https:// URL with a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "[paging.ntfy] server must not carry credentials; use token_env for an access token"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "[paging.ntfy] server {server:?} must be a base URL without query or fragment"
        ));
    }
    Ok(url)
}

/// The URL JSON is published to: the server root (a server under a path prefix keeps it).
fn publish_url(server: &Url) -> Url {
    let mut u = server.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// Publishes a page body built by [`payload`] to `topic`.
pub async fn send(
    client: &reqwest::Client,
    settings: &NtfySettings,
    topic: &str,
    body: &Value,
) -> Result<(), SendError> {
    validate_topic(topic).map_err(SendError::Permanent)?;
    // Settings are checked when Senders are built; a bad one here is the operator's to fix.
    let server = validate_server(&settings.server).map_err(SendError::retryable)?;
    let mut body = body.clone();
    match body.as_object_mut() {
        Some(o) => {
            o.insert("topic".into(), Value::String(topic.to_string()));
        }
        None => {
            return Err(SendError::Permanent(
                "ntfy page in the outbox is not a JSON object".into(),
            ))
        }
    }
    let mut req = client
        .post(publish_url(&server))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body.to_string());
    if let Some(token) = &settings.token {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| SendError::retryable("[paging.ntfy] token is not a valid header value"))?;
        v.set_sensitive(true);
        req = req.header(AUTHORIZATION, v);
    }
    http::send(req).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::sample;

    #[test]
    fn priority_follows_severity_and_can_be_overridden() {
        let mut m = sample();
        assert_eq!(payload(&m, None)["priority"], 5);
        assert_eq!(payload(&m, None)["tags"][0], "rotating_light");
        m.severity = "SEV2".into();
        assert_eq!(payload(&m, None)["priority"], 4);
        assert_eq!(payload(&m, None)["tags"][0], "warning");
        assert_eq!(payload(&m, Some(3))["priority"], 3);
        assert_eq!(payload(&m, Some(9))["priority"], 5);
        assert_eq!(payload(&m, Some(0))["priority"], 1);
    }

    #[test]
    fn click_opens_the_incident_and_the_first_action_acknowledges() {
        let m = sample();
        let b = payload(&m, None);
        assert_eq!(b["click"], m.incident_url);
        assert_eq!(b["actions"][0]["action"], "view");
        assert_eq!(b["actions"][0]["url"], m.ack_url);
        assert_eq!(b["actions"][0]["label"], "Acknowledge");
        assert!(b.get("topic").is_none(), "the topic is added at send time");
    }

    #[test]
    fn topics_and_servers_are_checked() {
        assert!(validate_topic("ann-pages_2").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a/b").is_err());
        assert!(validate_topic(&"x".repeat(65)).is_err());
        assert!(validate_server("https://ntfy.sh").is_ok());
        assert!(validate_server("ftp://ntfy.sh").is_err());
        assert!(validate_server("https://u:p@ntfy.sh").is_err());
        assert!(validate_server("https://ntfy.sh/?x=1").is_err());
        assert!(validate_server("ntfy.sh").is_err());
        let u = validate_server("https://example.com/ntfy").unwrap();
        assert_eq!(publish_url(&u).as_str(), "https://example.com/ntfy/");
        let u = validate_server("https://ntfy.sh").unwrap();
        assert_eq!(publish_url(&u).as_str(), "https://ntfy.sh/");
    }
}
