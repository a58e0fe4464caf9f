//! What is queued in the outbox, and the senders that deliver it.
//!
//! A [`Delivery`] is a fully rendered notification (the signed webhook body, the email in the
//! subscriber's locale, the chat payload), stored as the outbox row's payload before anything
//! is sent. The worker therefore only sends: a retry, or another Keel instance after a crash,
//! delivers exactly the bytes that were queued. [`Senders`] holds the clients: a *guarded* HTTP
//! client for subscriber webhooks (only vetted public addresses), a plain one for the
//! operators' own channels (which may well live on a private network), and the SMTP client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::email::{EmailMessage, EmailSender};
use crate::guard::Guard;
use crate::http::{self, HttpOptions, SendError};
use crate::ntfy::NtfySettings;
use crate::twilio::{Resource, TwilioSettings};
use crate::webhook::{self, SignedBody};

/// One queued notification. Its [`Delivery::channel`] is the outbox row's `channel`, the
/// recipient (URL or address) its `target`, and this, serialized, its `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// A subscriber's webhook: Statuspage-shaped, signed, sent only to public addresses
    /// (unless `allow_private_targets`).
    Webhook(SignedBody),
    /// An email to a subscriber (or a would-be subscriber: the confirmation).
    Email(EmailMessage),
    /// A responders' Slack incoming webhook.
    Slack { body: Value },
    /// A responders' Discord channel webhook.
    Discord { body: Value },
    /// A responders' Teams webhook (Workflows or a legacy connector).
    Teams { body: Value },
    /// An operator's own webhook (signed if it has a secret); operators may point it at a
    /// private address.
    OpsWebhook(SignedBody),
    /// A page pushed through ntfy's JSON publish API; the target is the topic, the server and
    /// token come from [`PagingSettings`].
    Ntfy { body: Value },
    /// A page as an SMS through a Twilio-compatible API; the target is the E.164 number.
    TwilioSms { body: String },
    /// A page as a phone call (inline TwiML) through a Twilio-compatible API; the target is
    /// the E.164 number.
    TwilioCall { twiml: String },
}

impl Delivery {
    /// The outbox `channel` value.
    pub fn channel(&self) -> &'static str {
        match self {
            Delivery::Webhook(_) => "webhook",
            Delivery::Email(_) => "email",
            Delivery::Slack { .. } => "slack",
            Delivery::Discord { .. } => "discord",
            Delivery::Teams { .. } => "teams",
            Delivery::OpsWebhook(_) => "ops_webhook",
            Delivery::Ntfy { .. } => "ntfy",
            Delivery::TwilioSms { .. } => "twilio_sms",
            Delivery::TwilioCall { .. } => "twilio_call",
        }
    }

    /// The outbox `payload` value.
    pub fn to_payload(&self) -> Value {
        // Serializing these plain data types cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a payload back; a payload this Keel cannot read is a permanent failure.
    pub fn from_payload(channel: &str, payload: &Value) -> Result<Self, SendError> {
        let d: Delivery = serde_json::from_value(payload.clone()).map_err(|e| {
            SendError::Permanent(format!(
                "unreadable {channel} notification in the outbox: {e}"
            ))
        })?;
        if d.channel() != channel {
            return Err(SendError::Permanent(format!(
                "outbox item says channel {channel:?} but holds a {:?} notification",
                d.channel()
            )));
        }
        Ok(d)
    }
}

/// The idempotency key of one notification: the same `event` (an update id such as
/// `"incident:12:update:3"`) to the same `recipient` (a subscriber id, a channel name) gives the
/// same key, so enqueueing twice sends once, and receivers can drop repeats. 32 hex characters,
/// safe in a header and a Message-ID.
pub fn idempotency_key(event: &str, recipient: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(event.as_bytes());
    h.update([0u8]);
    h.update(recipient.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Options for [`Senders::new`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderOptions {
    pub http: HttpOptions,
    /// `[notify] allow_private_targets`.
    pub allow_private_targets: bool,
}

/// The paging providers' settings (`[paging.ntfy]`, `[paging.twilio]`): their credentials
/// live here, in memory, and never in the outbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PagingSettings {
    pub ntfy: Option<NtfySettings>,
    pub twilio: Option<TwilioSettings>,
}

/// Everything needed to deliver any [`Delivery`].
#[derive(Debug)]
pub struct Senders {
    guarded: reqwest::Client,
    trusted: reqwest::Client,
    allow_private_targets: bool,
    email: Option<EmailSender>,
    paging: PagingSettings,
}

impl Senders {
    /// Builds the HTTP clients; `email` is `None` when no `[notify.smtp]` is configured (email
    /// items then wait and are retried, so configuring SMTP later still delivers them).
    pub fn new(opts: SenderOptions, email: Option<EmailSender>) -> Result<Self, reqwest::Error> {
        let guard = Guard::new(opts.allow_private_targets);
        Ok(Senders {
            guarded: http::client(opts.http, Some(guard.resolver()))?,
            trusted: http::client(opts.http, None)?,
            allow_private_targets: opts.allow_private_targets,
            email,
            paging: PagingSettings::default(),
        })
    }

    /// Adds the paging providers. Their settings are checked here, so a bad base URL or
    /// number is reported at start-up rather than on the first page. Providers left `None`
    /// keep their pages waiting (retried) until configured, like email without SMTP.
    pub fn with_paging(mut self, paging: PagingSettings) -> Result<Self, String> {
        if let Some(n) = &paging.ntfy {
            crate::ntfy::validate_server(&n.server)?;
        }
        if let Some(t) = &paging.twilio {
            crate::twilio::validate_settings(t)?;
        }
        self.paging = paging;
        Ok(self)
    }

    /// Delivers one notification to `target`.
    pub async fn deliver(
        &self,
        target: &str,
        delivery: &Delivery,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SendError> {
        match delivery {
            Delivery::Webhook(signed) => {
                webhook::send(
                    &self.guarded,
                    target,
                    self.allow_private_targets,
                    signed,
                    idempotency_key,
                    now,
                )
                .await
            }
            Delivery::OpsWebhook(signed) => {
                webhook::send(&self.trusted, target, true, signed, idempotency_key, now).await
            }
            Delivery::Email(msg) => match &self.email {
                Some(sender) => sender.send(target, msg, idempotency_key).await,
                None => Err(SendError::retryable(
                    "email is not configured ([notify.smtp] host is missing)",
                )),
            },
            Delivery::Slack { body } => crate::responder::send(&self.trusted, target, body).await,
            Delivery::Discord { body } => crate::responder::send(&self.trusted, target, body).await,
            Delivery::Teams { body } => crate::responder::send(&self.trusted, target, body).await,
            // Paging providers are the operator's own choice, like their chat channels, so
            // they go through the trusted client (a gateway may live on a private network).
            Delivery::Ntfy { body } => match &self.paging.ntfy {
                Some(s) => crate::ntfy::send(&self.trusted, s, target, body).await,
                None => Err(SendError::retryable(
                    "ntfy is not configured ([paging.ntfy] is missing)",
                )),
            },
            Delivery::TwilioSms { body } => self.twilio(Resource::Messages, target, body).await,
            Delivery::TwilioCall { twiml } => self.twilio(Resource::Calls, target, twiml).await,
        }
    }

    async fn twilio(&self, resource: Resource, to: &str, content: &str) -> Result<(), SendError> {
        match &self.paging.twilio {
            Some(s) => crate::twilio::send(&self.trusted, s, resource, to, content).await,
            None => Err(SendError::retryable(
                "SMS and voice pages are not configured ([paging.twilio] is missing)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::EmailContent;

    #[test]
    fn payloads_round_trip_and_name_their_channel() {
        let all = [
            Delivery::Webhook(SignedBody::new(&serde_json::json!({"a": 1}), Some("k"))),
            Delivery::Email(EmailMessage {
                content: EmailContent {
                    subject: "s".into(),
                    text: "t".into(),
                    html: "<p>h</p>".into(),
                },
                list_unsubscribe: Some("https://x/u".into()),
            }),
            Delivery::Slack {
                body: serde_json::json!({"text": "x"}),
            },
            Delivery::Discord {
                body: serde_json::json!({"content": "x"}),
            },
            Delivery::Teams {
                body: serde_json::json!({"type": "message"}),
            },
            Delivery::OpsWebhook(SignedBody::new(&serde_json::json!({}), None)),
            Delivery::Ntfy {
                body: serde_json::json!({"title": "t"}),
            },
            Delivery::TwilioSms { body: "b".into() },
            Delivery::TwilioCall {
                twiml: "<Response/>".into(),
            },
        ];
        for d in all {
            let p = d.to_payload();
            assert_eq!(p["kind"], d.channel());
            assert_eq!(Delivery::from_payload(d.channel(), &p).unwrap(), d);
        }
    }

    #[test]
    fn unreadable_payloads_are_permanent_failures() {
        let e =
            Delivery::from_payload("webhook", &serde_json::json!({"kind": "pigeon"})).unwrap_err();
        assert!(e.is_permanent());
        assert!(
            e.to_string().contains("unreadable webhook notification"),
            "{e}"
        );
        let e = Delivery::from_payload("webhook", &serde_json::json!("nope")).unwrap_err();
        assert!(e.is_permanent());
        let slack = Delivery::Slack {
            body: serde_json::json!({}),
        }
        .to_payload();
        let e = Delivery::from_payload("email", &slack).unwrap_err();
        assert!(
            e.to_string().contains("holds a \"slack\" notification"),
            "{e}"
        );
        let e = Delivery::from_payload(
            "webhook",
            &serde_json::json!({"kind": "webhook", "body": 5}),
        )
        .unwrap_err();
        assert!(e.is_permanent());
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let a = idempotency_key("incident:12:update:3", "subscriber:7");
        assert_eq!(a, idempotency_key("incident:12:update:3", "subscriber:7"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, idempotency_key("incident:12:update:3", "subscriber:8"));
        assert_ne!(a, idempotency_key("incident:12:update:4", "subscriber:7"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(idempotency_key("ab", "c"), idempotency_key("a", "bc"));
    }
}
