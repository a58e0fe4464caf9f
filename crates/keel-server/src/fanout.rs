//! Fan-out: every published customer update becomes one stored outbox row per recipient
//! before anything is sent.
//!
//! The rows carry fully rendered, signed notifications and an idempotency key per (update,
//! recipient), so a crash between queueing and sending loses nothing and a second queueing of
//! the same update sends nothing twice. The outbox worker (keel-notify) does the sending.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use keel_core::config::{ChannelKind, Config, TeamsCard};
use keel_core::public::{PublicIncident, Snapshot};
use keel_notify::email::{self, EmailMessage, UpdateLinks};
use keel_notify::webhook::{self, Context, SignedBody};
use keel_notify::{idempotency_key, Delivery, Link, ResponderMessage, Tone};
use keel_store::{NewOutboxItem, OutboxStore, Subscriber, SubscriberKind};
use sha2::Sha256;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::book::{IncidentBook, Published};
use crate::rendered::SnapshotCache;
use crate::secrets::Secrets;

/// The unsubscribe token of a subscriber, derived from its secret so the link can be rebuilt
/// for every email without storing the token itself (the store keeps only its hash).
pub fn unsubscribe_token(secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"keel unsubscribe");
    hex::encode(mac.finalize().into_bytes())
}

/// The page's absolute base for links in notifications: `[page] base_url`, else the listener.
pub fn base_url(config: &Config) -> String {
    config
        .page
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen))
}

/// The outbox rows for one published update.
pub fn rows_for_update(
    config: &Config,
    secrets: &Secrets,
    snapshot: &Snapshot,
    incident: &PublicIncident,
    update_no: u32,
    subscribers: &[Subscriber],
    now: DateTime<Utc>,
) -> Vec<NewOutboxItem> {
    let Some(update) = incident
        .updates
        .iter()
        .find(|u| u.id.ends_with(&format!("-{update_no}")))
        .or_else(|| incident.updates.first())
    else {
        return Vec::new();
    };
    let base = base_url(config);
    let page_id = keel_core::public::statuspage::page_id(snapshot);
    let event = format!("incident:{}:update:{}", incident.id, update_no);
    let mut rows = Vec::new();
    // Only those subscribed when the update went out: updates re-queued at start (the last
    // hour's) must not reach someone who joined since.
    let subscribed_then =
        |s: &Subscriber| s.confirmed_at.unwrap_or(s.created_at) <= update.created_at;
    for s in subscribers.iter().filter(|s| {
        s.confirmed
            && subscribed_then(s)
            && (s.components.is_empty() || s.follows_any(&incident.components))
    }) {
        let Some(secret) = s.secret.as_deref() else {
            continue;
        };
        let unsubscribe = format!("{base}/unsubscribe/{}", unsubscribe_token(secret));
        let delivery = match s.kind {
            SubscriberKind::Webhook => {
                let ctx = Context {
                    page_id: &page_id,
                    base_url: Some(&base),
                    locale: &s.locale,
                    unsubscribe_url: Some(&unsubscribe),
                    generated_at: now,
                };
                let body = webhook::incident_body(&ctx, snapshot, incident);
                Delivery::Webhook(SignedBody::new(&body, Some(secret)))
            }
            SubscriberKind::Email => Delivery::Email(EmailMessage {
                content: email::incident_update(
                    &s.locale,
                    snapshot,
                    incident,
                    update,
                    UpdateLinks {
                        page_url: Some(&base),
                        unsubscribe_url: &unsubscribe,
                    },
                ),
                list_unsubscribe: Some(unsubscribe.clone()),
            }),
        };
        let key = idempotency_key(&event, &format!("subscriber:{}", s.id));
        rows.push(keel_notify::outbox::item(
            &delivery,
            key,
            s.address.clone(),
            Some(s.id),
            now,
        ));
    }
    // The responders' own channels hear of every public update too.
    for ch in &config.notify.channels {
        // URLs and signing keys were resolved when Keel started.
        let Some(resolved) = secrets.channel(&ch.name) else {
            continue;
        };
        let url = resolved.url.expose().to_string();
        let msg = ResponderMessage {
            title: format!("#{} {}", incident.id, incident.name.get("en")),
            text: update.body.get("en").to_string(),
            tone: if incident.resolved_at.is_some() {
                Tone::Good
            } else {
                Tone::Danger
            },
            facts: vec![
                (
                    "Status".into(),
                    format!("{:?}", update.status).to_lowercase(),
                ),
                (
                    "Users".into(),
                    keel_core::assess::about_users(incident.affected_users, "en"),
                ),
            ],
            link: Some(Link {
                label: "Status page".into(),
                url: base.clone(),
            }),
            at: update.created_at,
        };
        let delivery = match ch.kind {
            ChannelKind::Slack => Delivery::Slack {
                body: keel_notify::slack::payload(&msg),
            },
            ChannelKind::Discord => Delivery::Discord {
                body: keel_notify::discord::payload(&msg),
            },
            ChannelKind::Teams => Delivery::Teams {
                body: keel_notify::teams::payload(
                    match ch.card {
                        TeamsCard::Adaptive => keel_notify::teams::CardKind::Adaptive,
                        TeamsCard::MessageCard => keel_notify::teams::CardKind::MessageCard,
                    },
                    &msg,
                ),
            },
            ChannelKind::Webhook => {
                let ctx = Context {
                    page_id: &page_id,
                    base_url: Some(&base),
                    locale: "en",
                    unsubscribe_url: None,
                    generated_at: now,
                };
                Delivery::OpsWebhook(SignedBody::new(
                    &webhook::incident_body(&ctx, snapshot, incident),
                    resolved.signing.as_ref().map(|s| s.expose()),
                ))
            }
        };
        let key = idempotency_key(&event, &format!("channel:{}", ch.name));
        rows.push(keel_notify::outbox::item(&delivery, key, url, None, now));
    }
    rows
}

/// Queues every published update, until stopped. A store failure is retried: the update is
/// not forgotten.
pub async fn run(
    config: Arc<Config>,
    secrets: Arc<Secrets>,
    store: Arc<dyn OutboxStore>,
    book: Arc<IncidentBook>,
    snapshots: Arc<SnapshotCache>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut published = book.subscribe_published();
    // Whatever was published in the last hour is queued again: if Keel died between storing
    // an update and queueing its notifications, they go out now; if not, the idempotency
    // keys make this a no-op.
    let mut backlog = book
        .published_since(Utc::now() - chrono::TimeDelta::hours(1))
        .await;
    loop {
        let p: Published = if !backlog.is_empty() {
            backlog.remove(0)
        } else {
            tokio::select! {
            _ = stop.cancelled() => return,
            got = published.recv() => match got {
                Ok(p) => p,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "the fan-out fell behind; some updates were not queued");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            }
        };
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            match queue(&config, &secrets, store.as_ref(), &book, &snapshots, &p).await {
                Ok(n) => {
                    tracing::info!(
                        incident = %p.incident,
                        update = p.update,
                        queued = n,
                        "update queued for subscribers"
                    );
                    wake.notify_one();
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot queue notifications; will retry");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }
}

async fn queue(
    config: &Config,
    secrets: &Secrets,
    store: &dyn OutboxStore,
    book: &IncidentBook,
    snapshots: &SnapshotCache,
    p: &Published,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    // A fresh snapshot holds the update just published. The snapshot job's rendering does not
    // yet: it is made 50 ms after the change (so a burst renders once), and waiting for it
    // would add that, and the rendering of every page, to the time to inform. So the update
    // is built here from the book and the health view already published — the stored inputs
    // come from the current rendering, and nothing re-reads the hub.
    let inputs = crate::rendered::StoredInputs {
        uptime: snapshots
            .current()
            .snapshot
            .components
            .iter()
            .map(|c| (c.id.clone(), c.uptime.clone()))
            .collect(),
        maintenances: snapshots.current().snapshot.maintenances.clone(),
    };
    let snap = crate::rendered::build(config, book, &inputs, now).await;
    let Some(incident) = snap
        .incidents
        .iter()
        .find(|i| i.id == p.incident.to_string())
    else {
        // No public component impacted: nothing for subscribers.
        return Ok(0);
    };
    let subscribers = store.subscribers(true).await?;
    let rows = rows_for_update(
        config,
        secrets,
        &snap,
        incident,
        p.update,
        &subscribers,
        now,
    );
    Ok(store.enqueue(&rows).await?)
}

#[cfg(test)]
mod tests {
    use keel_core::config::LocalizedText;
    use keel_core::public::{
        Indicator, PublicEta, PublicImpact, PublicIncident, PublicStatus, PublicUpdate, Snapshot,
    };
    use keel_store::{Subscriber, SubscriberKind};

    use super::rows_for_update;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        s.parse().unwrap()
    }

    fn subscriber(id: i64, confirmed_at: Option<&str>) -> Subscriber {
        Subscriber {
            id,
            kind: SubscriberKind::Webhook,
            address: format!("https://hooks.example.com/{id}"),
            components: vec![],
            locale: "en".into(),
            confirmed: confirmed_at.is_some(),
            secret: Some(format!("secret-{id}")),
            created_at: at("2024-05-01T09:00:00Z"),
            confirmed_at: confirmed_at.map(at),
        }
    }

    #[test]
    fn an_update_goes_only_to_those_subscribed_when_it_was_published() {
        let config = keel_core::config::parse(
            "[[component]]\nid = \"search\"\nname = \"Search\"\n",
            "keel.toml",
            &[],
        )
        .unwrap();
        let incident = PublicIncident {
            id: "7".into(),
            name: LocalizedText::plain("Search is unavailable"),
            status: PublicStatus::Investigating,
            impact: PublicImpact::Major,
            created_at: at("2024-05-01T11:58:00Z"),
            updated_at: at("2024-05-01T12:00:00Z"),
            resolved_at: None,
            components: vec![keel_core::ComponentId::parse("search").unwrap()],
            affected_users: 10,
            eta: PublicEta::None,
            workarounds: vec![],
            updates: vec![PublicUpdate {
                id: "7-1".into(),
                status: PublicStatus::Investigating,
                body: LocalizedText::plain("We are investigating a problem affecting Search."),
                created_at: at("2024-05-01T12:00:00Z"),
            }],
        };
        let snapshot = Snapshot {
            title: "Acme Status".into(),
            locales: vec!["en".into()],
            base_url: None,
            generated_at: at("2024-05-01T12:00:00Z"),
            indicator: Indicator::Major,
            components: vec![],
            incidents: vec![incident.clone()],
            maintenances: vec![],
        };
        let subscribers = [
            subscriber(1, Some("2024-05-01T10:00:00Z")),
            // Confirmed the very moment it was published: in.
            subscriber(2, Some("2024-05-01T12:00:00Z")),
            // Joined after it was published (Keel restarted and re-queued it): out.
            subscriber(3, Some("2024-05-01T12:20:00Z")),
            // Never confirmed: out.
            subscriber(4, None),
        ];
        let rows = rows_for_update(
            &config,
            &crate::secrets::Secrets::default(),
            &snapshot,
            &incident,
            1,
            &subscribers,
            at("2024-05-01T12:30:00Z"),
        );
        let ids: Vec<Option<i64>> = rows.iter().map(|r| r.subscriber_id).collect();
        assert_eq!(ids, vec![Some(1), Some(2)]);
    }
}
