//! Subscriber webhooks: Statuspage-shaped bodies, signed with HMAC-SHA256.
//!
//! The bodies have the shape Atlassian Statuspage sends its webhook subscribers (top-level
//! `meta`, `page`, then `incident`, or `component_update` with `component`), so code
//! written for Statuspage webhooks reads Keel's unchanged; the unit tests compare the keys
//! with captured Statuspage webhook bodies in `fixtures/notifications/`. Keel adds a
//! signature Statuspage does not have: `X-Keel-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! the raw body under the subscriber's secret. The body is rendered and signed once, when
//! the notification is queued, so every retry sends the same bytes with the same signature
//! and the same `Idempotency-Key`; `X-Keel-Timestamp` says when this attempt was made.
//! Freshness is in the signed body (`meta.generated_at`).

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use keel_core::public::{
    ComponentStatus, Indicator, PublicComponent, PublicIncident, PublicStatus, Snapshot,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use sha2::Sha256;
use url::Url;

use crate::guard::{check_url, GuardError};
use crate::http::{post_json, SendError};
use crate::i18n;

pub const SIGNATURE_HEADER: &str = "x-keel-signature";
pub const TIMESTAMP_HEADER: &str = "x-keel-timestamp";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Where a webhook's `meta.documentation` points.
pub const DOCUMENTATION_URL: &str =
    "https://support.atlassian.com/statuspage/docs/enable-webhook-notifications/";

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `X-Keel-Signature` header value in constant time; what a receiver does.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Syntax check of a subscriber's webhook URL (scheme, credentials, IP literals). The full
/// check with DNS is [`crate::guard::Guard::vet`].
pub fn validate(url: &str, allow_private_targets: bool) -> Result<Url, GuardError> {
    check_url(url, allow_private_targets)
}

/// What every body needs besides the snapshot: who it is for and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The page id in `page.id` and each object's `page_id`: pass
    /// `keel_core::public::page_id(snapshot)`, the id the v2 JSON uses.
    pub page_id: &'a str,
    /// The status page's absolute URL (`[page] base_url`), for `shortlink`.
    pub base_url: Option<&'a str>,
    /// The subscriber's locale for names and bodies.
    pub locale: &'a str,
    /// This subscriber's unsubscribe link, for `meta.unsubscribe`.
    pub unsubscribe_url: Option<&'a str>,
    pub generated_at: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn meta(ctx: &Context<'_>) -> Value {
    json!({
        "unsubscribe": ctx.unsubscribe_url,
        "documentation": DOCUMENTATION_URL,
        "generated_at": ts(ctx.generated_at),
    })
}

fn page(ctx: &Context<'_>, indicator: Indicator) -> Value {
    json!({
        "id": ctx.page_id,
        "status_indicator": indicator,
        "status_description": i18n::overall(ctx.locale, indicator),
    })
}

fn component_object(ctx: &Context<'_>, c: &PublicComponent) -> Value {
    json!({
        "id": c.id,
        "page_id": ctx.page_id,
        "name": c.name.get(ctx.locale),
        "status": c.status,
        "position": c.position,
        "description": null,
        "showcase": true,
        "group_id": null,
        "updated_at": ts(c.updated_at),
    })
}

/// The incident object: Statuspage's v2 incident with its updates (newest first) and the
/// affected components as they are now.
fn incident_object(ctx: &Context<'_>, snapshot: &Snapshot, incident: &PublicIncident) -> Value {
    let updates: Vec<Value> = incident
        .updates
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "incident_id": incident.id,
                "status": u.status,
                "body": u.body.get(ctx.locale),
                "created_at": ts(u.created_at),
                "updated_at": ts(u.created_at),
                "display_at": ts(u.created_at),
            })
        })
        .collect();
    let components: Vec<Value> = incident
        .components
        .iter()
        .filter_map(|id| snapshot.components.iter().find(|c| &c.id == id))
        .map(|c| component_object(ctx, c))
        .collect();
    // As in the v2 JSON: when the incident last entered monitoring (updates are newest first),
    // once it is monitoring or resolved.
    let monitoring_at = match incident.status {
        PublicStatus::Monitoring | PublicStatus::Resolved => incident
            .updates
            .iter()
            .find(|u| u.status == PublicStatus::Monitoring)
            .map(|u| u.created_at),
        _ => None,
    };
    json!({
        "id": incident.id,
        "page_id": ctx.page_id,
        "name": incident.name.get(ctx.locale),
        "status": incident.status,
        "impact": incident.impact,
        "created_at": ts(incident.created_at),
        "updated_at": ts(incident.updated_at),
        "monitoring_at": monitoring_at.map(ts),
        "resolved_at": incident.resolved_at.map(ts),
        "shortlink": ctx.base_url.map(|b| incident_link(b, &incident.id)),
        "scheduled_for": null,
        "scheduled_until": null,
        "incident_updates": updates,
        "components": components,
    })
}

/// The link to one incident on the status page (the same anchor as the v2 JSON's
/// `shortlink`).
pub fn incident_link(base_url: &str, incident_id: &str) -> String {
    format!(
        "{}/#incident-{}",
        base_url.trim_end_matches('/'),
        incident_id
    )
}

/// The body sent when an incident is created or updated.
pub fn incident_body(ctx: &Context<'_>, snapshot: &Snapshot, incident: &PublicIncident) -> Value {
    json!({
        "meta": meta(ctx),
        "page": page(ctx, snapshot.indicator),
        "incident": incident_object(ctx, snapshot, incident),
    })
}

/// The body sent when a component changes status (`old_status` → the component's status
/// now). `update_id` identifies this change (stable across retries).
pub fn component_body(
    ctx: &Context<'_>,
    snapshot: &Snapshot,
    component: &PublicComponent,
    old_status: ComponentStatus,
    update_id: &str,
) -> Value {
    json!({
        "meta": meta(ctx),
        "page": page(ctx, snapshot.indicator),
        "component_update": {
            "id": update_id,
            "component_id": component.id,
            "component_type": "Component",
            "old_status": old_status,
            "new_status": component.status,
            "created_at": ts(component.updated_at),
        },
        "component": component_object(ctx, component),
    })
}

/// A webhook as queued: the exact bytes to send and their signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedBody {
    /// The JSON text, sent byte for byte.
    pub body: String,
    /// `sha256=<hex>`, or `None` for a subscriber without a secret.
    pub signature: Option<String>,
}

impl SignedBody {
    /// Renders and signs a body once, at queue time.
    pub fn new(body: &Value, secret: Option<&str>) -> Self {
        let body = body.to_string();
        let signature = secret
            .filter(|s| !s.is_empty())
            .map(|s| sign(s.as_bytes(), body.as_bytes()));
        SignedBody { body, signature }
    }
}

/// Delivers one queued webhook. `client` must be the guarded client (see
/// [`crate::http::client`]); IP-literal URLs are checked here, names by its resolver.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    allow_private_targets: bool,
    signed: &SignedBody,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let url =
        check_url(url, allow_private_targets).map_err(|e| SendError::Permanent(e.to_string()))?;
    let mut headers = HeaderMap::new();
    if let Some(sig) = &signed.signature {
        headers.insert(
            HeaderName::from_static(SIGNATURE_HEADER),
            header_value(sig)?,
        );
    }
    headers.insert(
        HeaderName::from_static(TIMESTAMP_HEADER),
        HeaderValue::from(now.timestamp()),
    );
    headers.insert(
        HeaderName::from_static(IDEMPOTENCY_HEADER),
        header_value(idempotency_key)?,
    );
    post_json(client, &url, signed.body.clone().into_bytes(), headers).await?;
    Ok(())
}

fn header_value(v: &str) -> Result<HeaderValue, SendError> {
    HeaderValue::from_str(v)
        .map_err(|_| SendError::Permanent(format!("not a valid header value: {v:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{fixture, keys, snapshot};

    fn ctx() -> Context<'static> {
        Context {
            page_id: "keel",
            base_url: Some("https://status.example.com/"),
            locale: "en",
            unsubscribe_url: Some("https://status.example.com/unsubscribe?token=abc"),
            generated_at: "2024-05-01T12:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn signature_is_hmac_sha256_hex_and_verifies() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = sign(b"k", b"{}");
        assert!(verify(b"k", b"{}", &s));
        assert!(!verify(b"other", b"{}", &s));
        assert!(!verify(b"k", b"{ }", &s));
        assert!(!verify(b"k", b"{}", "sha1=00"));
        assert!(!verify(b"k", b"{}", "sha256=zz"));
        assert!(!verify(b"k", b"{}", ""));
    }

    #[test]
    fn incident_body_has_statuspage_webhook_keys() {
        let snap = snapshot();
        let body = incident_body(&ctx(), &snap, &snap.incidents[0]);
        let real = fixture("statuspage-webhook-incident-update-zulip.json");
        // Top level, meta and page: exactly Statuspage's keys.
        assert_eq!(keys(&body), keys(&real));
        assert_eq!(keys(&body["meta"]), keys(&real["meta"]));
        assert_eq!(keys(&body["page"]), keys(&real["page"]));
        // Incident, its updates and components: only keys Statuspage uses, and the ones a
        // consumer relies on.
        for (ours, theirs, must) in [
            (
                &body["incident"],
                &real["incident"],
                &[
                    "id",
                    "name",
                    "status",
                    "impact",
                    "created_at",
                    "updated_at",
                    "resolved_at",
                    "shortlink",
                    "incident_updates",
                    "components",
                ][..],
            ),
            (
                &body["incident"]["incident_updates"][0],
                &real["incident"]["incident_updates"][0],
                &["id", "incident_id", "status", "body", "created_at"][..],
            ),
            (
                &body["incident"]["components"][0],
                &real["incident"]["components"][0],
                &["id", "name", "status", "position"][..],
            ),
        ] {
            let (ours, theirs) = (keys(ours), keys(theirs));
            assert!(
                ours.is_subset(&theirs),
                "extra keys: {:?}",
                ours.difference(&theirs)
            );
            for k in must {
                assert!(ours.contains(*k), "missing {k}");
            }
        }
        assert_eq!(body["incident"]["status"], "investigating");
        assert_eq!(body["incident"]["impact"], "major");
        assert_eq!(body["page"]["status_indicator"], "major");
        assert_eq!(
            body["page"]["status_description"],
            "Some systems are affected"
        );
        assert_eq!(
            body["incident"]["shortlink"],
            "https://status.example.com/#incident-12"
        );
        assert_eq!(body["incident"]["components"][0]["name"], "Search");
        assert_eq!(body["incident"]["components"][0]["status"], "major_outage");
        assert_eq!(
            body["meta"]["unsubscribe"],
            "https://status.example.com/unsubscribe?token=abc"
        );
        assert_eq!(body["meta"]["generated_at"], "2024-05-01T12:00:00.000Z");
    }

    #[test]
    fn bodies_follow_the_subscriber_locale() {
        let snap = snapshot();
        let ja = Context {
            locale: "ja",
            ..ctx()
        };
        let body = incident_body(&ja, &snap, &snap.incidents[0]);
        assert_eq!(body["incident"]["name"], "検索サービスの障害");
        assert_eq!(body["incident"]["components"][0]["name"], "検索");
        assert_eq!(
            body["page"]["status_description"],
            "一部のシステムで障害が発生しています"
        );
    }

    #[test]
    fn monitoring_at_is_when_the_incident_last_entered_monitoring() {
        use keel_core::public::PublicUpdate;
        let mut snap = snapshot();
        let at = |s: &str| s.parse().unwrap();
        let upd = |id: &str, status, t: &str| PublicUpdate {
            id: id.into(),
            status,
            body: keel_core::config::LocalizedText::plain("x"),
            created_at: at(t),
        };
        let inc = &mut snap.incidents[0];
        assert_eq!(
            incident_body(&ctx(), &snapshot(), inc)["incident"]["monitoring_at"],
            Value::Null
        );
        inc.status = PublicStatus::Resolved;
        inc.resolved_at = Some(at("2024-05-01T13:00:00Z"));
        inc.updates = vec![
            upd("12-4", PublicStatus::Resolved, "2024-05-01T13:00:00Z"),
            upd("12-3", PublicStatus::Monitoring, "2024-05-01T12:40:00Z"),
            upd("12-2", PublicStatus::Monitoring, "2024-05-01T12:20:00Z"),
            upd("12-1", PublicStatus::Investigating, "2024-05-01T12:00:00Z"),
        ];
        let inc = snap.incidents[0].clone();
        let body = incident_body(&ctx(), &snap, &inc);
        assert_eq!(
            body["incident"]["monitoring_at"],
            "2024-05-01T12:40:00.000Z"
        );
        assert_eq!(body["incident"]["resolved_at"], "2024-05-01T13:00:00.000Z");
        assert_eq!(body["incident"]["incident_updates"][0]["id"], "12-4");
    }

    #[test]
    fn component_body_has_statuspage_webhook_keys() {
        let snap = snapshot();
        let body = component_body(
            &ctx(),
            &snap,
            &snap.components[0],
            ComponentStatus::Operational,
            "search-1714564800",
        );
        let real = fixture("statuspage-webhook-component-update-zulip.json");
        assert_eq!(keys(&body), keys(&real));
        assert_eq!(
            keys(&body["component_update"]),
            keys(&real["component_update"])
        );
        let (ours, theirs) = (keys(&body["component"]), keys(&real["component"]));
        assert!(
            ours.is_subset(&theirs),
            "extra keys: {:?}",
            ours.difference(&theirs)
        );
        assert_eq!(body["component_update"]["old_status"], "operational");
        assert_eq!(body["component_update"]["new_status"], "major_outage");
        assert_eq!(body["component_update"]["component_id"], "search");
    }

    #[test]
    fn signed_body_is_stable_and_verifiable() {
        let snap = snapshot();
        let body = incident_body(&ctx(), &snap, &snap.incidents[0]);
        let a = SignedBody::new(&body, Some("s3cret"));
        let b = SignedBody::new(&body, Some("s3cret"));
        assert_eq!(a, b);
        assert!(verify(
            b"s3cret",
            a.body.as_bytes(),
            a.signature.as_deref().unwrap()
        ));
        assert_eq!(SignedBody::new(&body, None).signature, None);
        assert_eq!(SignedBody::new(&body, Some("")).signature, None);
        // The queued form round-trips through JSON unchanged (it is stored in the outbox).
        let stored = serde_json::to_value(&a).unwrap();
        assert_eq!(serde_json::from_value::<SignedBody>(stored).unwrap(), a);
    }
}
