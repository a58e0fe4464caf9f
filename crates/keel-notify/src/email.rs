//! Email over SMTP: validate + send + pure message builders, in English and Japanese.
//!
//! The builders ([`confirmation`], [`incident_update`]) are pure: they return the subject, a
//! plain-text body and an HTML body for one locale, with the glossary's wording, so the server
//! can render a message once, store it in the outbox, and the worker only has to send it.
//! Sending goes through `lettre` over tokio: plain SMTP (for a relay on loopback or a trusted
//! network), STARTTLS, or implicit TLS, with rustls. Every message carries a `Message-ID` made
//! from its idempotency key, so a retried send is recognisable as the same message, and update
//! emails carry `List-Unsubscribe` (and the RFC 8058 one-click header) with the subscriber's
//! own link.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keel_core::config::Secret;
use keel_core::public::{PublicIncident, PublicStatus, PublicUpdate, Snapshot};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::http::SendError;
use crate::i18n::{self, is_ja};

/// How to secure the SMTP connection (`[notify.smtp] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on loopback or a network you trust. Credentials are
    /// refused with it unless the host is loopback.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
}

/// SMTP settings (`[notify.smtp]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    /// Default by `tls`: 25, 587 or 465.
    pub port: Option<u16>,
    /// The sender, `Keel Status <status@example.com>` or a bare address.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    /// Per SMTP command (default 10 s).
    pub timeout: Duration,
    /// Open connections kept for reuse (default 4).
    pub pool_size: u32,
}

impl SmtpSettings {
    /// Settings for `host` with the defaults.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpSettings {
            host: host.into(),
            port: None,
            from: from.into(),
            username: None,
            password: None,
            tls: SmtpTls::default(),
            timeout: Duration::from_secs(10),
            pool_size: 4,
        }
    }
}

/// Why email could not be set up or addressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("not a valid email address {0:?}: {1}")]
    Address(String, String),
    #[error("[notify.smtp] from = {0:?} is not a valid sender: {1}")]
    From(String, String),
    #[error("[notify.smtp] host is empty")]
    NoHost,
    #[error("[notify.smtp] username is set without a password (set KEEL_NOTIFY_SMTP_PASSWORD or password_file)")]
    NoPassword,
    #[error("[notify.smtp] tls = \"none\" would send the password in clear to {0}; use \"starttls\" or \"tls\" (plain SMTP with credentials is allowed only to loopback)")]
    PlainCredentials(String),
    #[error("SMTP setup for {0}: {1}")]
    Transport(String, String),
}

/// Checks one recipient address, as typed into the subscribe form.
pub fn validate(address: &str) -> Result<Address, EmailError> {
    let trimmed = address.trim();
    if trimmed.len() > 254 {
        return Err(EmailError::Address(
            clip_for_error(trimmed),
            "longer than 254 characters".into(),
        ));
    }
    trimmed
        .parse::<Address>()
        .map_err(|e| EmailError::Address(clip_for_error(trimmed), e.to_string()))
}

fn clip_for_error(s: &str) -> String {
    s.chars().take(80).collect()
}

/// One rendered email, per locale: what the builders return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An email as queued in the outbox (the recipient is the outbox row's target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    #[serde(flatten)]
    pub content: EmailContent,
    /// The subscriber's one-click unsubscribe URL; `None` for the confirmation email, which
    /// goes to someone not yet subscribed. The URL must also accept `POST` (RFC 8058).
    pub list_unsubscribe: Option<String>,
}

/// A ready SMTP client (pooled connections).
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("host", &self.host)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl EmailSender {
    /// Checks the settings and builds the client; connects only when sending. Call it inside
    /// a tokio runtime (the connection pool starts a task).
    pub fn new(s: &SmtpSettings) -> Result<Self, EmailError> {
        if s.host.trim().is_empty() {
            return Err(EmailError::NoHost);
        }
        let from: Mailbox = s.from.parse().map_err(|e: lettre::address::AddressError| {
            EmailError::From(s.from.clone(), e.to_string())
        })?;
        let credentials = match (&s.username, &s.password) {
            (None, _) => None,
            (Some(_), None) => return Err(EmailError::NoPassword),
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.expose().to_string())),
        };
        if credentials.is_some() && s.tls == SmtpTls::None && !is_loopback_host(&s.host) {
            return Err(EmailError::PlainCredentials(s.host.clone()));
        }
        let setup = |e: lettre::transport::smtp::Error| {
            EmailError::Transport(s.host.clone(), e.to_string())
        };
        let (mut b, default_port) = match s.tls {
            SmtpTls::None => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
                25,
            ),
            SmtpTls::Starttls => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(setup)?,
                587,
            ),
            SmtpTls::Tls => (
                AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(setup)?,
                465,
            ),
        };
        b = b
            .port(s.port.unwrap_or(default_port))
            .timeout(Some(s.timeout))
            .pool_config(PoolConfig::new().max_size(s.pool_size.max(1)));
        if let Some(c) = credentials {
            b = b.credentials(c);
        }
        Ok(EmailSender {
            transport: b.build(),
            from,
            host: s.host.clone(),
        })
    }

    /// Builds the MIME message (multipart/alternative, text and HTML).
    pub fn message(
        &self,
        to: &str,
        msg: &EmailMessage,
        idempotency_key: &str,
    ) -> Result<Message, SendError> {
        let to = validate(to).map_err(|e| SendError::Permanent(e.to_string()))?;
        let mut m = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(msg.content.subject.clone())
            .message_id(Some(format!(
                "<{}@{}>",
                message_id_left(idempotency_key),
                self.from.email.domain()
            )))
            .multipart(MultiPart::alternative_plain_html(
                msg.content.text.clone(),
                msg.content.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        if let Some(url) = &msg.list_unsubscribe {
            let h = m.headers_mut();
            h.insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ));
            h.insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
        }
        Ok(m)
    }

    /// Sends one queued email to `to`.
    pub async fn send(
        &self,
        to: &str,
        msg: &EmailMessage,
        idempotency_key: &str,
    ) -> Result<(), SendError> {
        let m = self.message(to, msg, idempotency_key)?;
        self.transport.send(m).await.map_err(smtp_error)?;
        Ok(())
    }

    /// Opens a connection and says hello, for `keel check` and start-up logs.
    pub async fn test_connection(&self) -> Result<(), SendError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::retryable(format!(
                "SMTP server {} did not accept the connection",
                self.host
            ))),
            Err(e) => Err(smtp_error(e)),
        }
    }
}

/// The part of a Message-ID left of `@`: the key itself when it is plain, else its hash.
fn message_id_left(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..");
    if plain {
        key.to_string()
    } else {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])
    }
}

/// 5xx replies are permanent (the mailbox does not exist, the message is refused), except
/// authentication failures, which are the operator's to fix and should not dead-letter every
/// queued message in the meantime.
fn smtp_error(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(u16::from);
    let reason = format!("SMTP: {e}");
    match code {
        Some(c) if (500..600).contains(&c) && ![530, 534, 535, 538].contains(&c) => {
            SendError::Permanent(reason)
        }
        _ => SendError::retryable(reason),
    }
}

// ---- pure builders --------------------------------------------------------------------------

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn when(locale: &str, t: DateTime<Utc>) -> String {
    if is_ja(locale) {
        t.format("%Y年%-m月%-d日 %H:%M (UTC)").to_string()
    } else {
        t.format("%-d %B %Y, %H:%M UTC").to_string()
    }
}

/// "Label: value" with the colon each language uses.
pub(crate) fn labelled(locale: &str, label: &str, value: &str) -> String {
    if is_ja(locale) {
        format!("{label}：{value}")
    } else {
        format!("{label}: {value}")
    }
}

pub(crate) fn html_page(locale: &str, title: &str, inner: &str) -> String {
    let lang = if is_ja(locale) { "ja" } else { "en" };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:sans-serif;line-height:1.5;color:#1a1a1a;max-width:40em\">\n{inner}</body></html>\n",
        esc(title)
    )
}

/// The double opt-in email: one link that confirms the subscription.
pub fn confirmation(locale: &str, page_title: &str, confirm_url: &str) -> EmailContent {
    let heading = i18n::confirm_subscription(locale);
    let (subject, intro, ignore) = if is_ja(locale) {
        (
            format!("{page_title}：{heading}"),
            format!("{page_title} の更新情報をこのメールアドレスで受け取るお申し込みがありました。受け取りを開始するには、次のリンクを開いてください。"),
            "お心当たりがない場合は、このメールを破棄してください。確認されない限り、今後メールが届くことはありません。".to_string(),
        )
    } else {
        (
            format!("{heading} to {page_title}"),
            format!("Someone, hopefully you, asked to receive status updates from {page_title} at this address. To start receiving them, open this link:"),
            "If you did not ask for this, ignore this email: without confirmation you will receive nothing more.".to_string(),
        )
    };
    let text = format!("{heading}\n\n{intro}\n\n{confirm_url}\n\n{ignore}\n");
    let html = html_page(
        locale,
        &subject,
        &format!(
            "<h1 style=\"font-size:1.3em\">{}</h1>\n<p>{}</p>\n<p><a href=\"{}\">{}</a></p>\n<p style=\"color:#555\">{}</p>\n",
            esc(heading),
            esc(&intro),
            esc(confirm_url),
            esc(heading),
            esc(&ignore)
        ),
    );
    EmailContent {
        subject,
        text,
        html,
    }
}

/// Links an update email carries.
#[derive(Debug, Clone, Copy)]
pub struct UpdateLinks<'a> {
    /// The status page (or the incident on it).
    pub page_url: Option<&'a str>,
    /// This subscriber's unsubscribe link.
    pub unsubscribe_url: &'a str,
}

/// An incident update for one subscriber: the update's text, then the facts a customer needs
/// (affected components, users, expected recovery, workarounds), then the links.
pub fn incident_update(
    locale: &str,
    snapshot: &Snapshot,
    incident: &PublicIncident,
    update: &PublicUpdate,
    links: UpdateLinks<'_>,
) -> EmailContent {
    let ja = is_ja(locale);
    let status = i18n::incident_status(locale, update.status);
    let name = incident.name.get(locale);
    let subject = if ja {
        format!("[{}] {status}：{name}", snapshot.title)
    } else {
        format!("[{}] {status}: {name}", snapshot.title)
    };
    let component_names: Vec<&str> = incident
        .components
        .iter()
        .filter_map(|id| snapshot.components.iter().find(|c| &c.id == id))
        .map(|c| c.name.get(locale))
        .collect();

    let mut facts: Vec<String> = Vec::new();
    if !component_names.is_empty() {
        let sep = if ja { "、" } else { ", " };
        facts.push(labelled(
            locale,
            i18n::affected_components(locale),
            &component_names.join(sep),
        ));
    }
    let open = update.status != PublicStatus::Resolved;
    if open && incident.affected_users > 0 {
        facts.push(i18n::affected_users(locale, incident.affected_users));
    }
    if open {
        facts.push(labelled(
            locale,
            i18n::eta_label(locale),
            &i18n::eta(locale, &incident.eta),
        ));
        if incident.workarounds.is_empty() {
            facts.push(i18n::no_workaround(locale).to_string());
        }
        for (component, text) in &incident.workarounds {
            let cname = snapshot
                .components
                .iter()
                .find(|c| &c.id == component)
                .map(|c| c.name.get(locale))
                .unwrap_or(component.as_str());
            let label = if ja {
                format!("{}（{cname}）", i18n::workaround(locale))
            } else {
                format!("{} ({cname})", i18n::workaround(locale))
            };
            facts.push(labelled(locale, &label, text.get(locale)));
        }
    }
    let view = if ja {
        "ステータスページを見る"
    } else {
        "View the status page"
    };
    let why = if ja {
        format!(
            "このメールは {} の更新情報を購読されている方にお送りしています。",
            snapshot.title
        )
    } else {
        format!(
            "You receive this email because you subscribed to updates from {}.",
            snapshot.title
        )
    };
    let unsubscribe = i18n::unsubscribe(locale);
    let stamp = when(locale, update.created_at);
    let body = update.body.get(locale);

    let mut text = format!("{name}\n{status} — {stamp}\n\n{body}\n");
    if !facts.is_empty() {
        text.push('\n');
        for f in &facts {
            text.push_str(f);
            text.push('\n');
        }
    }
    if let Some(url) = links.page_url {
        text.push_str(&format!("\n{}\n", labelled(locale, view, url)));
    }
    text.push_str(&format!(
        "\n--\n{why}\n{}\n",
        labelled(locale, unsubscribe, links.unsubscribe_url)
    ));

    let mut inner = format!(
        "<h1 style=\"font-size:1.3em\">{}</h1>\n<p><strong>{}</strong> — {}</p>\n<p>{}</p>\n",
        esc(name),
        esc(status),
        esc(&stamp),
        esc(body)
    );
    if !facts.is_empty() {
        inner.push_str("<ul>\n");
        for f in &facts {
            inner.push_str(&format!("<li>{}</li>\n", esc(f)));
        }
        inner.push_str("</ul>\n");
    }
    if let Some(url) = links.page_url {
        inner.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            esc(url),
            esc(view)
        ));
    }
    inner.push_str(&format!(
        "<hr>\n<p style=\"color:#555;font-size:0.9em\">{} <a href=\"{}\">{}</a></p>\n",
        esc(&why),
        esc(links.unsubscribe_url),
        esc(unsubscribe)
    ));
    let html = html_page(locale, &subject, &inner);
    EmailContent {
        subject,
        text,
        html,
    }
}

/// The last-updated line for a digest or footer; kept here so all email wording is in one
/// place.
pub fn last_updated_line(locale: &str, t: DateTime<Utc>) -> String {
    labelled(locale, i18n::last_updated(locale), &when(locale, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::snapshot;

    fn links() -> UpdateLinks<'static> {
        UpdateLinks {
            page_url: Some("https://status.example.com/"),
            unsubscribe_url: "https://status.example.com/unsubscribe?token=t0k",
        }
    }

    #[test]
    fn incident_update_in_english_uses_the_glossary() {
        let s = snapshot();
        let inc = &s.incidents[0];
        let c = incident_update("en", &s, inc, &inc.updates[0], links());
        assert_eq!(
            c.subject,
            "[Acme Status] Investigating: Search is unavailable"
        );
        for want in [
            "Investigating — 1 May 2024, 12:00 UTC",
            "We are investigating a problem affecting Search.",
            "Affected components: Search",
            "About 500 users affected",
            "Estimated recovery: Similar incidents were resolved in 20–45 minutes",
            "Workaround (Search): Browse the catalogue by category.",
            "View the status page: https://status.example.com/",
            "Unsubscribe: https://status.example.com/unsubscribe?token=t0k",
        ] {
            assert!(c.text.contains(want), "missing {want:?} in\n{}", c.text);
        }
        assert!(c.html.contains("<html lang=\"en\">"));
        assert!(c
            .html
            .contains("href=\"https://status.example.com/unsubscribe?token=t0k\""));
    }

    #[test]
    fn incident_update_in_japanese_uses_the_glossary() {
        let s = snapshot();
        let inc = &s.incidents[0];
        let c = incident_update("ja", &s, inc, &inc.updates[0], links());
        assert_eq!(c.subject, "[Acme Status] 調査中：検索サービスの障害");
        for want in [
            "調査中 — 2024年5月1日 12:00 (UTC)",
            "検索サービスに影響する問題を調査しています。",
            "影響を受けるサービス：検索",
            "約500人のユーザーに影響",
            "復旧見込み：過去の同様の障害は 20〜45 分で解決しています",
            "回避策（検索）：カテゴリーから商品を探すことができます。",
            "配信を停止する：https://status.example.com/unsubscribe?token=t0k",
        ] {
            assert!(c.text.contains(want), "missing {want:?} in\n{}", c.text);
        }
        assert!(c.html.contains("<html lang=\"ja\">"));
        assert!(!c.text.contains('!') && !c.text.contains('！'));
    }

    #[test]
    fn no_workaround_and_resolved_wording() {
        let mut s = snapshot();
        s.incidents[0].workarounds.clear();
        s.incidents[0].eta = keel_core::public::PublicEta::None;
        let inc = s.incidents[0].clone();
        let c = incident_update("en", &s, &inc, &inc.updates[0], links());
        assert!(c.text.contains("No workaround is available at this time"));
        assert!(c.text.contains("Estimated recovery: No estimate yet"));
        let c = incident_update("ja", &s, &inc, &inc.updates[0], links());
        assert!(c.text.contains("現在、利用可能な回避策はありません"));
        assert!(c.text.contains("復旧時期は未定です"));

        let mut resolved = inc.clone();
        resolved.updates[0].status = PublicStatus::Resolved;
        let c = incident_update("en", &s, &resolved, &resolved.updates[0], links());
        assert!(c.subject.starts_with("[Acme Status] Resolved:"));
        assert!(!c.text.contains("Estimated recovery"));
        assert!(!c.text.contains("Workaround"));
    }

    #[test]
    fn html_is_escaped() {
        let mut s = snapshot();
        s.incidents[0].name = keel_core::config::LocalizedText::plain("<script>x</script> & co");
        let inc = s.incidents[0].clone();
        let c = incident_update("en", &s, &inc, &inc.updates[0], links());
        assert!(!c.html.contains("<script>"));
        assert!(c.html.contains("&lt;script&gt;x&lt;/script&gt; &amp; co"));
    }

    #[test]
    fn confirmation_in_both_languages() {
        let en = confirmation(
            "en",
            "Acme Status",
            "https://status.example.com/confirm?token=c1",
        );
        assert_eq!(en.subject, "Confirm your subscription to Acme Status");
        assert!(en
            .text
            .contains("https://status.example.com/confirm?token=c1"));
        assert!(en
            .html
            .contains("href=\"https://status.example.com/confirm?token=c1\""));
        let ja = confirmation(
            "ja",
            "Acme Status",
            "https://status.example.com/confirm?token=c1",
        );
        assert_eq!(ja.subject, "Acme Status：購読を確認してください");
        assert!(ja.text.starts_with("購読を確認してください\n"));
        assert!(ja
            .text
            .contains("https://status.example.com/confirm?token=c1"));
    }

    #[test]
    fn addresses_are_validated() {
        assert!(validate("ops@example.com").is_ok());
        assert!(validate("  ops@example.com ").is_ok());
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "a b@example.com",
            "ops@exa mple.com",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(validate(&long).unwrap_err().to_string().contains("254"));
    }

    #[tokio::test]
    async fn settings_are_checked() {
        let mut s = SmtpSettings::new("smtp.example.com", "Keel <status@example.com>");
        assert!(EmailSender::new(&s).is_ok());
        s.username = Some("u".into());
        assert_eq!(EmailSender::new(&s).unwrap_err(), EmailError::NoPassword);
        s.password = Some(Secret("p".into()));
        s.tls = SmtpTls::None;
        assert!(matches!(
            EmailSender::new(&s).unwrap_err(),
            EmailError::PlainCredentials(_)
        ));
        s.host = "127.0.0.1".into();
        assert!(EmailSender::new(&s).is_ok());
        s.from = "not an address".into();
        assert!(matches!(
            EmailSender::new(&s).unwrap_err(),
            EmailError::From(..)
        ));
        s.from = "status@example.com".into();
        s.host = " ".into();
        assert_eq!(EmailSender::new(&s).unwrap_err(), EmailError::NoHost);
    }

    #[test]
    fn message_ids_come_from_the_idempotency_key() {
        assert_eq!(message_id_left("abc-123_x.y"), "abc-123_x.y");
        let hashed = message_id_left("update 12-1 / sub <7>");
        assert_eq!(hashed.len(), 32);
        assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
