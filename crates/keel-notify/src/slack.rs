//! Slack incoming webhooks: validate + send + a pure payload builder.
//!
//! The body has the shape of Slack's own examples (`fixtures/notifications/slack-*`): a
//! `text` fallback for notifications, Block Kit `blocks` with an `mrkdwn` section and a link
//! button, and a legacy `attachments` entry for the colour bar and the facts, which Block Kit
//! has no equivalent for. Slack-compatible receivers (Mattermost, Rocket.Chat) read it too.

use serde_json::{json, Value};
use url::Url;

use crate::guard::{check_url, GuardError};
use crate::http::{post_json, SendError};
use crate::responder::{clip, ResponderMessage};

/// Slack refuses a section text over 3000 characters.
const SECTION_MAX: usize = 3000;

/// Checks an incoming-webhook URL (operators configure these, so private hosts are fine).
pub fn validate(url: &str) -> Result<Url, GuardError> {
    check_url(url, true)
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The incoming-webhook body for a responder message.
pub fn payload(msg: &ResponderMessage) -> Value {
    let mut section = json!({
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": clip(&format!("*{}*\n{}", escape(&msg.title), escape(&msg.text)), SECTION_MAX),
        },
    });
    if let Some(link) = &msg.link {
        section["accessory"] = json!({
            "type": "button",
            "text": {"type": "plain_text", "text": clip(&link.label, 75), "emoji": true},
            "url": link.url,
            "action_id": "open",
        });
    }
    let fields: Vec<Value> = msg
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": v.chars().count() <= 40}))
        .collect();
    json!({
        "text": msg.title,
        "blocks": [section],
        "attachments": [{
            "color": format!("#{:06x}", msg.tone.rgb()),
            "fields": fields,
        }],
    })
}

/// Posts a body built by [`payload`] to an incoming webhook.
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
mod tests {
    use super::*;
    use crate::responder::sample;
    use crate::testdata::{fixture, keys};

    #[test]
    fn keys_match_slacks_own_examples() {
        let body = payload(&sample());
        let blocks = fixture("slack-incoming-webhook-blocks-slack-github-action.json");
        let attach = fixture("slack-incoming-webhook-attachments-slack-github-action.json");
        let mut top = keys(&blocks);
        top.extend(keys(&attach));
        assert!(keys(&body).is_subset(&top), "{:?}", keys(&body));
        let (s, real) = (&body["blocks"][0], &blocks["blocks"][0]);
        assert_eq!(keys(s), keys(real));
        assert_eq!(s["type"], real["type"]);
        assert_eq!(keys(&s["text"]), keys(&real["text"]));
        assert_eq!(s["text"]["type"], "mrkdwn");
        let (b, rb) = (keys(&s["accessory"]), keys(&real["accessory"]));
        assert!(b.is_subset(&rb), "{b:?}");
        assert_eq!(
            keys(&s["accessory"]["text"]),
            keys(&real["accessory"]["text"])
        );
        assert_eq!(
            keys(&body["attachments"][0]),
            keys(&attach["attachments"][0])
        );
        assert_eq!(
            keys(&body["attachments"][0]["fields"][0]),
            keys(&attach["attachments"][0]["fields"][0])
        );
    }

    #[test]
    fn content_is_escaped_and_coloured() {
        let body = payload(&sample());
        let text = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text.starts_with("*SEV2 · Search is down (incident 12)*\n"));
        assert!(text.contains("&lt;timeout&gt; &amp; retries"), "{text}");
        assert_eq!(body["attachments"][0]["color"], "#a30200");
        assert_eq!(body["attachments"][0]["fields"][0]["title"], "Severity");
        assert_eq!(
            body["blocks"][0]["accessory"]["url"],
            "https://keel.example.com/incidents/12"
        );
        assert_eq!(body["text"], "SEV2 · Search is down (incident 12)");
    }

    #[test]
    fn no_link_means_no_button() {
        let mut m = sample();
        m.link = None;
        assert!(payload(&m)["blocks"][0].get("accessory").is_none());
    }

    #[test]
    fn urls_are_checked() {
        assert!(validate("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(validate("http://10.0.0.2/hooks/abc").is_ok());
        assert!(validate("ftp://hooks.slack.com/").is_err());
        assert!(validate("hooks.slack.com/services").is_err());
    }
}
