//! Microsoft Teams: pure payload builders for both kinds of Teams webhook
//! ([`crate::responder::send`] posts them).
//!
//! [`adaptive_card`] is the body a Teams Workflows ("Post to a channel when a webhook request is
//! received") URL takes: a `message` with one Adaptive Card 1.4 attachment, shaped like
//! prom2teams' card (`fixtures/notifications/teams-adaptive-card-prom2teams.json`): a coloured
//! `ColumnSet` with the title and text, then a `FactSet`. [`message_card`] is the legacy Office
//! 365 connector `MessageCard`, for teams still on an incoming-webhook connector.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::responder::{ResponderMessage, Tone};

/// Which body a Teams URL expects (`card = "adaptive" | "message_card"` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    #[default]
    Adaptive,
    MessageCard,
}

/// Adaptive Card container style for a tone.
fn style(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => "good",
        Tone::Info => "accent",
        Tone::Warning => "warning",
        Tone::Danger => "attention",
    }
}

/// The Workflows webhook body: a message with one Adaptive Card.
pub fn adaptive_card(msg: &ResponderMessage) -> Value {
    let mut items = vec![
        json!({"type": "TextBlock", "text": msg.title, "weight": "Bolder", "size": "Large"}),
        json!({"type": "TextBlock", "text": msg.text, "wrap": true}),
    ];
    if let Some(link) = &msg.link {
        // A markdown link in a TextBlock rather than an action, as in the fixture's card.
        items.push(json!({
            "type": "TextBlock",
            "text": format!("[{}]({})", link.label, link.url),
            "wrap": true,
        }));
    }
    let facts: Vec<Value> = msg
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": [
                    {
                        "type": "ColumnSet",
                        "style": style(msg.tone),
                        "columns": [{"type": "Column", "width": "stretch", "items": items}],
                    },
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}

/// The legacy connector body: a `MessageCard` with one section of facts and a link action.
pub fn message_card(msg: &ResponderMessage) -> Value {
    let facts: Vec<Value> = msg
        .facts
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "summary": msg.title,
        "title": msg.title,
        "sections": [{
            "activityTitle": msg.title,
            "activitySubtitle": msg.at.format("%Y-%m-%d %H:%M UTC").to_string(),
            "activityText": msg.text,
            "facts": facts,
        }],
    });
    if let Some(link) = &msg.link {
        card["potentialAction"] = json!([{
            "@context": "http://schema.org",
            "@type": "ViewAction",
            "name": link.label,
            "target": [link.url],
        }]);
    }
    card
}

/// The body for `kind`.
pub fn payload(kind: CardKind, msg: &ResponderMessage) -> Value {
    match kind {
        CardKind::Adaptive => adaptive_card(msg),
        CardKind::MessageCard => message_card(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responder::sample;
    use crate::testdata::{fixture, keys};

    /// Every object in `ours` has only keys the object at the same place in `real` has, walking
    /// arrays by their first element.
    fn same_shape(ours: &Value, real: &Value, path: &str) {
        match (ours, real) {
            (Value::Object(o), Value::Object(r)) => {
                for (k, v) in o {
                    let rv = r
                        .get(k)
                        .unwrap_or_else(|| panic!("{path}.{k} is not in the fixture"));
                    same_shape(v, rv, &format!("{path}.{k}"));
                }
            }
            (Value::Array(o), Value::Array(r)) => {
                if let Some(r0) = r.first() {
                    for (i, v) in o.iter().enumerate() {
                        // Body items differ by "type": compare with a fixture item of the same
                        // type, preferring one that has all of our keys.
                        let same_type: Vec<&Value> = r
                            .iter()
                            .filter(|x| x.get("type").is_some() && x.get("type") == v.get("type"))
                            .collect();
                        let rv = same_type
                            .iter()
                            .find(|x| keys(v).is_subset(&keys(x)))
                            .or(same_type.first())
                            .copied()
                            .unwrap_or(r0);
                        same_shape(v, rv, &format!("{path}[{i}]"));
                    }
                }
            }
            (o, r) => assert_eq!(
                std::mem::discriminant(o),
                std::mem::discriminant(r),
                "{path}: {o} vs {r}"
            ),
        }
    }

    #[test]
    fn adaptive_card_has_the_fixture_shape() {
        let real = fixture("teams-adaptive-card-prom2teams.json");
        let ours = adaptive_card(&sample());
        same_shape(&ours, &real, "$");
        assert_eq!(keys(&ours), keys(&real));
        assert_eq!(
            ours["attachments"][0]["contentType"],
            real["attachments"][0]["contentType"]
        );
        let content = &ours["attachments"][0]["content"];
        assert_eq!(content["version"], "1.4");
        assert_eq!(content["body"][0]["style"], "attention");
        assert_eq!(content["body"][1]["facts"][0]["title"], "Severity");
    }

    #[test]
    fn message_card_has_the_fixture_shape() {
        let real = fixture("teams-messagecard-connector-example.json");
        let ours = message_card(&sample());
        same_shape(&ours, &real, "$");
        assert_eq!(ours["@type"], "MessageCard");
        assert_eq!(
            ours["potentialAction"][0]["target"][0],
            "https://keel.example.com/incidents/12"
        );
        let mut no_link = sample();
        no_link.link = None;
        assert!(message_card(&no_link).get("potentialAction").is_none());
    }
}
