//! Discord channel webhooks (Execute Webhook): the pure payload builder
//! ([`crate::responder::send`] posts it).
//!
//! One rich embed per message: title linking to Keel, the text, the facts as inline fields, the
//! tone as the colour bar and the time. Mentions are switched off (`allowed_mentions`), so an
//! incident title containing "@everyone" cannot page a whole server. Discord's limits (title
//! 256, description 4096, field name 256 and value 1024, 25 fields) are applied here because
//! Discord refuses an over-long message rather than cutting it.

use serde_json::{json, Value};

use crate::responder::{clip, ResponderMessage};

/// The Execute Webhook body for a responder message.
pub fn payload(msg: &ResponderMessage) -> Value {
    let fields: Vec<Value> = msg
        .facts
        .iter()
        .take(25)
        .map(|(k, v)| {
            json!({
                "name": clip(k, 256),
                "value": clip(if v.is_empty() { "—" } else { v }, 1024),
                "inline": v.chars().count() <= 40,
            })
        })
        .collect();
    let mut embed = json!({
        "title": clip(&msg.title, 256),
        "description": clip(&msg.text, 4096),
        "color": msg.tone.rgb(),
        "fields": fields,
        "timestamp": msg.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    if let Some(link) = &msg.link {
        embed["url"] = json!(link.url);
    }
    json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::responder::sample;
    use crate::testdata::{fixture, keys};

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_match_discords_documented_message() {
        let body = payload(&sample());
        let real = fixture("discord-message-payload-json-docs-example.json");
        // Top level: the Execute Webhook JSON params (quoted in fixtures/SOURCES.md).
        let params = set(&[
            "content",
            "username",
            "avatar_url",
            "tts",
            "embeds",
            "allowed_mentions",
            "flags",
            "thread_name",
        ]);
        assert!(keys(&body).is_subset(&params), "{:?}", keys(&body));
        assert!(keys(&real).contains("embeds"));
        // The embed: the example's keys plus the documented embed fields we use
        // (discord/discord-api-docs, developers/resources/message.mdx, "Embed Structure":
        // title, type, description, url, timestamp, color, footer, image, thumbnail, video,
        // provider, author, fields).
        let mut embed_keys = keys(&real["embeds"][0]);
        embed_keys.extend(set(&["url", "timestamp", "color", "fields"]));
        let ours = keys(&body["embeds"][0]);
        assert!(ours.is_subset(&embed_keys), "{ours:?}");
        for k in ["title", "description"] {
            assert_eq!(
                body["embeds"][0][k].is_string(),
                real["embeds"][0][k].is_string()
            );
        }
        assert_eq!(
            keys(&body["embeds"][0]["fields"][0]),
            set(&["name", "value", "inline"])
        );
    }

    #[test]
    fn content_and_limits() {
        let body = payload(&sample());
        let e = &body["embeds"][0];
        assert_eq!(e["color"], 0xa30200);
        assert_eq!(e["url"], "https://keel.example.com/incidents/12");
        assert_eq!(e["timestamp"], "2024-05-01T12:00:00Z");
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));

        let mut long = sample();
        long.title = "x".repeat(300);
        long.facts = (0..40)
            .map(|i| (format!("k{i}"), "y".repeat(2000)))
            .collect();
        let body = payload(&long);
        let e = &body["embeds"][0];
        assert_eq!(e["title"].as_str().unwrap().chars().count(), 256);
        assert_eq!(e["fields"].as_array().unwrap().len(), 25);
        assert_eq!(
            e["fields"][0]["value"].as_str().unwrap().chars().count(),
            1024
        );
    }
}
