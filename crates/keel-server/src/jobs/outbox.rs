//! What the outbox workers need from the config: the clients that deliver, and a worker id.

use anyhow::Context;
use keel_core::config::Config;

use crate::secrets::Secrets;

/// The clients that deliver notifications: HTTP always, SMTP when `[notify.smtp]` is set.
pub async fn senders(config: &Config, secrets: &Secrets) -> anyhow::Result<keel_notify::Senders> {
    let email = match &config.notify.smtp {
        None => None,
        Some(smtp) => {
            let password = secrets.smtp_password.clone();
            let settings = keel_notify::email::SmtpSettings {
                host: smtp.host.clone(),
                port: Some(smtp.port),
                from: smtp.from.clone(),
                username: smtp.username.clone(),
                password,
                tls: match smtp.tls {
                    keel_core::config::SmtpTlsMode::None => keel_notify::email::SmtpTls::None,
                    keel_core::config::SmtpTlsMode::Starttls => {
                        keel_notify::email::SmtpTls::Starttls
                    }
                    keel_core::config::SmtpTlsMode::Tls => keel_notify::email::SmtpTls::Tls,
                },
                timeout: smtp.timeout,
                pool_size: smtp.pool_size,
            };
            Some(keel_notify::email::EmailSender::new(&settings).context("cannot set up SMTP")?)
        }
    };
    let opts = keel_notify::SenderOptions {
        http: keel_notify::HttpOptions {
            timeout: config.notify.timeout,
            ..keel_notify::HttpOptions::default()
        },
        allow_private_targets: config.notify.allow_private_targets,
    };
    let paging = keel_notify::PagingSettings {
        ntfy: Some(keel_notify::ntfy::NtfySettings {
            server: config.paging.ntfy.server.clone(),
            token: config.paging.ntfy.token.clone(),
        }),
        twilio: match &config.paging.twilio {
            None => None,
            Some(t) => Some(keel_notify::twilio::TwilioSettings {
                base_url: t.base_url.clone(),
                account_sid: t.account_sid.clone(),
                auth_token: secrets
                    .twilio_auth_token
                    .clone()
                    .context("[paging.twilio] auth token was not resolved")?,
                from: t.from.clone(),
            }),
        },
    };
    keel_notify::Senders::new(opts, email)
        .context("cannot build the notification clients")?
        .with_paging(paging)
        .map_err(|e| anyhow::anyhow!("cannot set up paging: {e}"))
}

/// This machine's name, for the outbox's worker ids (which instance claimed what).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keel".into())
}
