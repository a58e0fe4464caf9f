//! Slack incoming webhooks: the pure payload builder ([`crate::responder::send`] posts it).
//!
//! The body has the shape of Slack's own examples (`fixtures/notifications/slack-*`): a
//! `text` fallback for notifications, Block Kit `blocks` with an `mrkdwn` section and a link
//! button, and a legacy `attachments` entry for the colour bar and the facts, which Block Kit
//! has no equivalent for. Slack-compatible receivers (Mattermost, Rocket.Chat) read it too.

use serde_json::{json, Value};

use crate::responder::{clip, ResponderMessage};

/// Slack refuses a section text over 3000 characters.
const SECTION_MAX: usize = 3000;

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
}
