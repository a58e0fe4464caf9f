//! Pages: telling the person on call that something is down, on each of their contacts.
//!
//! The server fills one [`PageMessage`] from the incident and the escalation step, and
//! [`delivery_for`] renders it for one contact kind as the [`Delivery`] the outbox stores:
//! an email (text and HTML), a signed webhook, a Slack/Discord/Teams message (through the
//! responder payload builders, the acknowledge link as the button), an ntfy push, an SMS or a
//! voice call. Every rendering says the same five things: what is down, the severity, how
//! many users are affected, the incident link and the acknowledge link. None carries a
//! secret: the webhook secret only signs, and provider credentials stay in
//! [`crate::Senders`].
//!
//! Words are English or Japanese (です・ます, the glossary's terms) by the person's locale.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use keel_core::human::thousands;
use keel_core::incident::IncidentId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::delivery::Delivery;
use crate::email::{self, esc, EmailContent, EmailMessage};
use crate::responder::{Link, ResponderMessage, Tone};
use crate::webhook::SignedBody;

/// One page, as the server fills it from the incident; never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMessage {
    pub incident_id: IncidentId,
    /// One line: "SEV1 · Shop is down (incident 12)".
    pub title: String,
    /// "SEV1" … "SEV4".
    pub severity: String,
    /// Names of the components that are down (public or not: this goes to the team).
    pub what_is_down: Vec<String>,
    pub affected_users: u64,
    /// The likely cause, when the assessment names one.
    pub cause: Option<String>,
    pub incident_url: String,
    /// The signed one-click acknowledge link.
    pub ack_url: String,
    /// The escalation level and round, 1-based as people count them (the first level is 1).
    pub level: u32,
    pub round: u32,
    /// The person's language: "ja" (or "ja-JP") gets Japanese, anything else English.
    pub locale: String,
    pub at: DateTime<Utc>,
}

/// Every contact kind [`delivery_for`] renders.
pub const CONTACT_KINDS: &[&str] = &[
    "email", "webhook", "slack", "discord", "teams", "ntfy", "sms", "voice",
];

/// A contact kind this Keel cannot page through (the config check refuses these first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownContactKind(pub String);

impl fmt::Display for UnknownContactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot page through a contact of kind {:?} (known kinds: {})",
            self.0,
            CONTACT_KINDS.join(", ")
        )
    }
}

impl std::error::Error for UnknownContactKind {}

/// Renders `msg` for one contact kind. `secret` signs a webhook page (and is ignored by the
/// other kinds); it never appears in the result. An ntfy page gets the default priority
/// (see [`crate::ntfy::payload`] for an override); its outbox target is the topic, an SMS's
/// or call's the E.164 number, the others' the address or URL as usual.
pub fn delivery_for(
    contact_kind: &str,
    msg: &PageMessage,
    secret: Option<&str>,
) -> Result<Delivery, UnknownContactKind> {
    Ok(match contact_kind {
        "email" => Delivery::Email(email_message(msg)),
        "webhook" => Delivery::OpsWebhook(SignedBody::new(&webhook_body(msg), secret)),
        "slack" => Delivery::Slack {
            body: crate::slack::payload(&responder_message(msg)),
        },
        "discord" => Delivery::Discord {
            body: crate::discord::payload(&responder_message(msg)),
        },
        "teams" => Delivery::Teams {
            body: crate::teams::adaptive_card(&responder_message(msg)),
        },
        "ntfy" => Delivery::Ntfy {
            body: crate::ntfy::payload(msg, None),
        },
        "sms" => Delivery::TwilioSms {
            body: crate::twilio::sms_text(msg),
        },
        "voice" => Delivery::TwilioCall {
            twiml: crate::twilio::twiml(msg),
        },
        other => return Err(UnknownContactKind(other.to_string())),
    })
}

// ---- shared wording -------------------------------------------------------------------------

pub(crate) use crate::i18n::is_ja;

pub(crate) fn is_sev1(severity: &str) -> bool {
    severity.trim().eq_ignore_ascii_case("SEV1")
}

/// The fixed words of a page in one language.
pub(crate) struct Words {
    pub acknowledge: &'static str,
    pub open_incident: &'static str,
    pub what_is_down: &'static str,
    pub severity: &'static str,
    pub cause: &'static str,
    pub escalation: &'static str,
    pub incident: &'static str,
    pub intro: &'static str,
    pub ack_note: &'static str,
    pub list_sep: &'static str,
}

pub(crate) fn words(locale: &str) -> Words {
    if is_ja(locale) {
        Words {
            acknowledge: "確認する",
            open_incident: "インシデントを開く",
            // The glossary's "affected components".
            what_is_down: "影響を受けるサービス",
            severity: "重大度",
            cause: "推定原因",
            escalation: "エスカレーション",
            incident: "インシデント",
            intro: "障害が発生しているため、対応をお願いしています。",
            ack_note: "対応できる場合は、確認のリンクを開いてください。確認すると、この障害でほかの担当者が呼び出されることはありません。",
            list_sep: "、",
        }
    } else {
        Words {
            acknowledge: "Acknowledge",
            open_incident: "Open incident",
            what_is_down: "What is down",
            severity: "Severity",
            cause: "Likely cause",
            escalation: "Escalation",
            incident: "Incident",
            intro: "You are being paged: something is down.",
            ack_note: "If you are taking this, open the acknowledge link: nobody else will be paged for this incident.",
            list_sep: ", ",
        }
    }
}

/// The components that are down, joined; the title when the list is empty.
pub(crate) fn what_is_down(msg: &PageMessage) -> String {
    if msg.what_is_down.is_empty() {
        msg.title.clone()
    } else {
        msg.what_is_down.join(words(&msg.locale).list_sep)
    }
}

/// "About 2,000 users affected" / "約2,000人のユーザーに影響" (the glossary's wording).
pub(crate) fn users_line(msg: &PageMessage) -> String {
    let n = thousands(msg.affected_users);
    if is_ja(&msg.locale) {
        format!("約{n}人のユーザーに影響")
    } else {
        format!("About {n} users affected")
    }
}

fn escalation_step(msg: &PageMessage) -> String {
    if is_ja(&msg.locale) {
        format!("レベル{}（{}巡目）", msg.level, msg.round)
    } else {
        format!("level {}, round {}", msg.level, msg.round)
    }
}

/// One or two sentences for a push notification's body.
pub(crate) fn summary(msg: &PageMessage) -> String {
    let w = words(&msg.locale);
    let ja = is_ja(&msg.locale);
    let mut out = email::labelled(&msg.locale, w.what_is_down, &what_is_down(msg));
    out.push_str(if ja { "。" } else { ". " });
    out.push_str(&users_line(msg));
    out.push_str(if ja { "。" } else { "." });
    if let Some(cause) = &msg.cause {
        out.push_str(if ja { "" } else { " " });
        out.push_str(&email::labelled(&msg.locale, w.cause, cause));
        out.push_str(if ja { "。" } else { "." });
    }
    out
}

/// The labelled facts every long form shows, in order.
fn facts(msg: &PageMessage) -> Vec<(String, String)> {
    let w = words(&msg.locale);
    let mut f = vec![
        (w.severity.to_string(), msg.severity.clone()),
        (w.what_is_down.to_string(), what_is_down(msg)),
    ];
    if let Some(cause) = &msg.cause {
        f.push((w.cause.to_string(), cause.clone()));
    }
    f.push((w.escalation.to_string(), escalation_step(msg)));
    f
}

// ---- per channel ----------------------------------------------------------------------------

/// The email page: facts, then the acknowledge link first and the incident link second.
pub fn email_message(msg: &PageMessage) -> EmailMessage {
    let w = words(&msg.locale);
    let loc = msg.locale.as_str();
    let subject = if is_ja(loc) {
        format!("【呼び出し】{}", msg.title)
    } else {
        format!("[Page] {}", msg.title)
    };
    let mut text = format!("{}\n\n{}\n\n", msg.title, w.intro);
    for (k, v) in facts(msg) {
        text.push_str(&email::labelled(loc, &k, &v));
        text.push('\n');
    }
    text.push_str(&users_line(msg));
    text.push_str("\n\n");
    text.push_str(&email::labelled(loc, w.acknowledge, &msg.ack_url));
    text.push('\n');
    text.push_str(&email::labelled(loc, w.incident, &msg.incident_url));
    text.push_str("\n\n");
    text.push_str(w.ack_note);
    text.push('\n');
    text.push_str(&email::when(loc, msg.at));
    text.push('\n');

    let mut rows = String::new();
    for (k, v) in facts(msg) {
        rows.push_str(&format!(
            "<tr><th style=\"text-align:left;padding-right:1em\">{}</th><td>{}</td></tr>\n",
            esc(&k),
            esc(&v)
        ));
    }
    let inner = format!(
        "<h1 style=\"font-size:1.3em\">{}</h1>\n<p>{}</p>\n<table>\n{rows}</table>\n<p>{}</p>\n\
         <p><a href=\"{}\" style=\"display:inline-block;padding:.5em 1em;background:#a30200;color:#fff;text-decoration:none;border-radius:4px\">{}</a>\n\
         <a href=\"{}\" style=\"margin-left:1em\">{}</a></p>\n<p style=\"color:#555\">{}</p>\n<p style=\"color:#555\">{}</p>\n",
        esc(&msg.title),
        esc(w.intro),
        esc(&users_line(msg)),
        esc(&msg.ack_url),
        esc(w.acknowledge),
        esc(&msg.incident_url),
        esc(w.open_incident),
        esc(w.ack_note),
        esc(&email::when(loc, msg.at)),
    );
    EmailMessage {
        content: EmailContent {
            html: email::html_page(loc, &subject, &inner),
            subject,
            text,
        },
        list_unsubscribe: None,
    }
}

/// The webhook page body (signed by the caller's secret when queued).
pub fn webhook_body(msg: &PageMessage) -> Value {
    json!({
        "event": "page",
        "incident_id": msg.incident_id,
        "title": msg.title,
        "severity": msg.severity,
        "what_is_down": msg.what_is_down,
        "affected_users": msg.affected_users,
        "cause": msg.cause,
        "incident_url": msg.incident_url,
        "ack_url": msg.ack_url,
        "level": msg.level,
        "round": msg.round,
        "locale": msg.locale,
        "at": msg.at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

/// The chat form of a page: the facts, the incident link among them, and the acknowledge
/// link as the message's button.
pub fn responder_message(msg: &PageMessage) -> ResponderMessage {
    let w = words(&msg.locale);
    let mut facts = facts(msg);
    facts.insert(
        2,
        (
            if is_ja(&msg.locale) {
                "影響"
            } else {
                "Users"
            }
            .to_string(),
            users_line(msg),
        ),
    );
    facts.push((w.incident.to_string(), msg.incident_url.clone()));
    ResponderMessage {
        title: msg.title.clone(),
        text: format!("{} {}", summary(msg), w.ack_note),
        tone: Tone::Danger,
        facts,
        link: Some(Link {
            label: w.acknowledge.to_string(),
            url: msg.ack_url.clone(),
        }),
        at: msg.at,
    }
}

#[cfg(test)]
pub(crate) fn sample() -> PageMessage {
    PageMessage {
        incident_id: IncidentId(12),
        title: "SEV1 · Shop is down (incident 12)".into(),
        severity: "SEV1".into(),
        what_is_down: vec!["Shop".into(), "Checkout".into()],
        affected_users: 2000,
        cause: Some("payments".into()),
        incident_url: "https://keel.example.com/admin/incidents/12".into(),
        ack_url: "https://keel.example.com/ack/12?t=AbC123xyz".into(),
        level: 1,
        round: 1,
        locale: "en".into(),
        at: "2026-12-06T03:00:00Z".parse().unwrap(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(msg: &PageMessage, secret: Option<&str>) -> Vec<Delivery> {
        CONTACT_KINDS
            .iter()
            .map(|k| delivery_for(k, msg, secret).unwrap())
            .collect()
    }

    #[test]
    fn every_kind_renders_with_its_channel() {
        let channels: Vec<&str> = all(&sample(), None).iter().map(|d| d.channel()).collect();
        assert_eq!(
            channels,
            [
                "email",
                "ops_webhook",
                "slack",
                "discord",
                "teams",
                "ntfy",
                "twilio_sms",
                "twilio_call"
            ]
        );
        let e = delivery_for("pigeon", &sample(), None).unwrap_err();
        assert!(e.to_string().contains("\"pigeon\""), "{e}");
        assert!(e.to_string().contains("email, webhook"), "{e}");
    }

    #[test]
    fn every_payload_has_the_ack_link_and_what_matters() {
        for locale in ["en", "ja"] {
            let m = PageMessage {
                locale: locale.into(),
                ..sample()
            };
            for d in all(&m, Some("k")) {
                let p = d.to_payload().to_string();
                let ch = d.channel();
                assert!(p.contains(&m.ack_url), "{ch} {locale}: no ack link: {p}");
                assert!(p.contains("SEV1"), "{ch} {locale}: no severity");
                assert!(p.contains("Shop"), "{ch} {locale}: not what is down");
                assert!(p.contains("2,000") || p.contains("2000"), "{ch}: no users");
                // The SMS has no room for the incident link; everything else carries it.
                if ch != "twilio_sms" && ch != "twilio_call" {
                    assert!(
                        p.contains(&m.incident_url),
                        "{ch} {locale}: no incident link"
                    );
                }
            }
        }
    }

    #[test]
    fn no_secret_ever_lands_in_a_payload() {
        let secret = "whsec_TOPSECRET_9f8e7d6c5b4a";
        for d in all(&sample(), Some(secret)) {
            let p = d.to_payload().to_string();
            assert!(!p.contains(secret), "{}: {p}", d.channel());
            assert!(!p.contains("TOPSECRET"), "{}", d.channel());
        }
        // The webhook page is signed with it, and verifies.
        let Delivery::OpsWebhook(signed) =
            delivery_for("webhook", &sample(), Some(secret)).unwrap()
        else {
            panic!("webhook page is an ops webhook");
        };
        let sig = signed.signature.as_deref().unwrap();
        assert!(crate::webhook::verify(
            secret.as_bytes(),
            signed.body.as_bytes(),
            sig
        ));
    }

    #[test]
    fn webhook_body_has_the_documented_fields() {
        let b = webhook_body(&sample());
        for k in [
            "incident_id",
            "title",
            "severity",
            "what_is_down",
            "affected_users",
            "incident_url",
            "ack_url",
            "level",
            "round",
        ] {
            assert!(b.get(k).is_some_and(|v| !v.is_null()), "missing {k}");
        }
        assert_eq!(b["incident_id"], 12);
        assert_eq!(b["affected_users"], 2000);
        assert_eq!(b["what_is_down"], json!(["Shop", "Checkout"]));
        assert_eq!(b["at"], "2026-12-06T03:00:00Z");
    }

    #[test]
    fn english_email() {
        let e = email_message(&sample());
        assert_eq!(
            e.content.subject,
            "[Page] SEV1 · Shop is down (incident 12)"
        );
        let t = &e.content.text;
        for line in [
            "Severity: SEV1",
            "What is down: Shop, Checkout",
            "Likely cause: payments",
            "Escalation: level 1, round 1",
            "About 2,000 users affected",
            "Acknowledge: https://keel.example.com/ack/12?t=AbC123xyz",
            "Incident: https://keel.example.com/admin/incidents/12",
        ] {
            assert!(t.contains(line), "missing {line:?} in {t}");
        }
        let h = &e.content.html;
        assert!(h.contains("<html lang=\"en\">"));
        assert!(h.contains("href=\"https://keel.example.com/ack/12?t=AbC123xyz\""));
        assert!(e.list_unsubscribe.is_none());
    }

    #[test]
    fn japanese_email_is_polite_and_uses_the_glossary() {
        let m = PageMessage {
            locale: "ja".into(),
            what_is_down: vec!["ショップ".into(), "決済".into()],
            ..sample()
        };
        let e = email_message(&m);
        assert_eq!(
            e.content.subject,
            "【呼び出し】SEV1 · Shop is down (incident 12)"
        );
        let t = &e.content.text;
        for line in [
            "重大度：SEV1",
            "影響を受けるサービス：ショップ、決済",
            "推定原因：payments",
            "エスカレーション：レベル1（1巡目）",
            "約2,000人のユーザーに影響",
            "確認する：https://keel.example.com/ack/12?t=AbC123xyz",
            "インシデント：https://keel.example.com/admin/incidents/12",
            "対応をお願いしています。",
            "確認のリンクを開いてください。",
            "2026年12月6日 03:00 (UTC)",
        ] {
            assert!(t.contains(line), "missing {line:?} in {t}");
        }
        assert!(!t.contains('!') && !t.contains('！'), "calm: {t}");
        assert!(e.content.html.contains("<html lang=\"ja\">"));
    }

    #[test]
    fn html_is_escaped() {
        let m = PageMessage {
            title: "<script>x</script> & co".into(),
            ack_url: "https://k.example/ack?a=1&b=\"2\"".into(),
            ..sample()
        };
        let h = email_message(&m).content.html;
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt; &amp; co"));
        assert!(h.contains("href=\"https://k.example/ack?a=1&amp;b=&quot;2&quot;\""));
    }

    #[test]
    fn chat_pages_put_the_ack_link_on_the_button() {
        let m = sample();
        let slack = crate::slack::payload(&responder_message(&m));
        assert_eq!(slack["blocks"][0]["accessory"]["url"], m.ack_url);
        assert_eq!(
            slack["blocks"][0]["accessory"]["text"]["text"],
            "Acknowledge"
        );
        let discord = crate::discord::payload(&responder_message(&m));
        assert_eq!(discord["embeds"][0]["url"], m.ack_url);
        let teams = crate::teams::adaptive_card(&responder_message(&m)).to_string();
        assert!(teams.contains(&format!("[Acknowledge]({})", m.ack_url)));
        let r = responder_message(&PageMessage {
            locale: "ja".into(),
            ..sample()
        });
        assert_eq!(r.link.unwrap().label, "確認する");
        assert!(r
            .facts
            .iter()
            .any(|(k, v)| k == "影響" && v == "約2,000人のユーザーに影響"));
    }
}
