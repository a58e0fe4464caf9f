//! The public snapshot, rendered once per change and served from memory.
//!
//! Outage traffic spikes exactly when the page matters, so a request must cost next to nothing:
//! every public document (page per locale, Statuspage JSON, feeds, badges) is rendered when
//! something changes, by one task, into immutable bytes with their ETag; handlers only clone a
//! reference-counted buffer and compare an ETag. Fifty requests arriving right after a change
//! read the previous rendering until the new one is swapped in — none of them renders.
//! If the store stalls, the last rendering keeps being served.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::config::Config;
use keel_core::public::{self, DayUptime, Snapshot};
use keel_core::{ComponentId, NodeId};
use keel_store::Store;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::book::IncidentBook;

/// One rendered document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub body: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    /// The headers of a full answer (type, validators, caching), built once: a request clones
    /// the map (reference counts) instead of building and hashing one.
    pub headers: HeaderMap,
    /// The headers of a 304 answer.
    pub not_modified_headers: HeaderMap,
}

impl Doc {
    /// `vary_language`: the document is one of several languages at the same address.
    fn new(
        body: impl Into<Bytes>,
        content_type: &'static str,
        last_modified: &HeaderValue,
        vary_language: bool,
    ) -> Doc {
        let body = body.into();
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
        let mut not_modified_headers = HeaderMap::with_capacity(4);
        not_modified_headers.insert(header::ETAG, etag_header);
        not_modified_headers.insert(header::LAST_MODIFIED, last_modified.clone());
        // Short: outage pages change by the minute; conditional requests make revalidation
        // cheap.
        not_modified_headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=10"),
        );
        if vary_language {
            not_modified_headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        }
        let mut headers = not_modified_headers.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // Static values: a request clones them by pointer, never allocates or formats them.
        let policy = if content_type == HTML {
            crate::status_page::content_security_policy()
        } else {
            DOCUMENT_CSP
        };
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if content_type == HTML {
            // For browsers older than CSP's frame-ancestors.
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        Doc {
            etag,
            body,
            headers,
            not_modified_headers,
        }
    }
}

/// Every public document at one moment.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub snapshot: Arc<Snapshot>,
    /// The page per locale.
    pub pages: HashMap<String, Doc>,
    /// Everything else by path (`/api/v2/summary.json`, `/history.atom`, `/badge.svg`,
    /// `/badge/api.svg`, and `?lang=` variants are not separate: JSON and feeds use the first
    /// locale).
    pub files: HashMap<String, Doc>,
}

/// The policy of every public document that is not the page (JSON, feeds, badges): it loads
/// nothing, runs nothing and may not be framed. An SVG badge is drawn with presentation
/// attributes only, so it needs no style source either; `<img src=…/badge.svg>` on another
/// site is not framing and keeps working.
pub const DOCUMENT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

pub const JSON: &str = "application/json; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";
pub const SVG: &str = "image/svg+xml";
pub const ATOM: &str = "application/atom+xml; charset=utf-8";
pub const RSS: &str = "application/rss+xml; charset=utf-8";

/// Renders every public document of a snapshot. Pure apart from the renderers it calls.
pub fn render_all(snapshot: Snapshot) -> Rendered {
    let snapshot = Arc::new(snapshot);
    let s = snapshot.as_ref();
    let main_locale = s.locales.first().cloned().unwrap_or_else(|| "en".into());
    let last_modified =
        HeaderValue::from_str(&httpdate(s.generated_at)).unwrap_or(HeaderValue::from_static(""));
    let lm = &last_modified;
    let mut pages = HashMap::new();
    for locale in &s.locales {
        pages.insert(
            locale.clone(),
            // Every page varies by language: `/` answers by `Accept-Language`.
            Doc::new(
                crate::status_page::render(s, locale, s.locales.len() > 1),
                HTML,
                lm,
                true,
            ),
        );
    }
    let json = |v: serde_json::Value| {
        Doc::new(serde_json::to_vec(&v).unwrap_or_default(), JSON, lm, false)
    };
    use public::statuspage as sp;
    let l = main_locale.as_str();
    let mut files = HashMap::new();
    files.insert("/api/v2/summary.json".to_string(), json(sp::summary(s, l)));
    files.insert("/api/v2/status.json".to_string(), json(sp::status(s, l)));
    files.insert(
        "/api/v2/components.json".to_string(),
        json(sp::components(s, l)),
    );
    files.insert(
        "/api/v2/incidents.json".to_string(),
        json(sp::incidents(s, l)),
    );
    files.insert(
        "/api/v2/incidents/unresolved.json".to_string(),
        json(sp::incidents_unresolved(s, l)),
    );
    files.insert(
        "/api/v2/scheduled-maintenances.json".to_string(),
        json(sp::scheduled_maintenances(s, l)),
    );
    files.insert(
        "/api/v2/scheduled-maintenances/upcoming.json".to_string(),
        json(sp::scheduled_maintenances_upcoming(s, l)),
    );
    files.insert(
        "/api/v2/scheduled-maintenances/active.json".to_string(),
        json(sp::scheduled_maintenances_active(s, l)),
    );
    files.insert(
        "/history.atom".to_string(),
        Doc::new(public::feed::atom(s, l), ATOM, lm, false),
    );
    files.insert(
        "/history.rss".to_string(),
        Doc::new(public::feed::rss(s, l), RSS, lm, false),
    );
    files.insert(
        "/badge.svg".to_string(),
        Doc::new(public::badge::overall(s, l), SVG, lm, false),
    );
    for c in &s.components {
        files.insert(
            format!("/badge/{}.svg", c.id),
            Doc::new(public::badge::component(c, l), SVG, lm, false),
        );
    }
    Rendered {
        snapshot,
        pages,
        files,
    }
}

fn httpdate(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The current rendering, swapped whole on every change.
pub struct SnapshotCache {
    /// Swapped without a lock, and read without touching a shared counter in the common case:
    /// every page view reads it, on every core at once during an outage.
    current: ArcSwap<Rendered>,
    /// Wakes the rebuild task.
    pub changed: Notify,
    /// Set when the stored inputs (maintenances) changed and must be read again.
    stale_inputs: std::sync::atomic::AtomicBool,
}

impl SnapshotCache {
    pub fn new(initial: Rendered) -> Self {
        SnapshotCache {
            current: ArcSwap::from_pointee(initial),
            changed: Notify::new(),
            stale_inputs: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Arc<Rendered> {
        self.current.load_full()
    }

    /// The current rendering, borrowed for the length of a request.
    pub fn load(&self) -> arc_swap::Guard<Arc<Rendered>> {
        self.current.load()
    }

    /// Re-reads the stored inputs and re-renders now (a maintenance was announced).
    pub fn refresh_inputs(&self) {
        self.stale_inputs
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_one();
    }

    fn swap(&self, r: Rendered) {
        self.current.store(Arc::new(r));
    }
}

/// The inputs of a snapshot that come from the store, kept so a stalled store does not stop
/// the page from reflecting incidents and health.
#[derive(Default, Clone)]
pub struct StoredInputs {
    pub uptime: BTreeMap<ComponentId, Vec<DayUptime>>,
    pub maintenances: Vec<public::Maintenance>,
}

/// Reads the 90-day uptime of every public component.
pub async fn load_inputs(
    store: &dyn Store,
    config: &Config,
    today: NaiveDate,
) -> keel_store::Result<StoredInputs> {
    let from = today - chrono::TimeDelta::days(89);
    let mut uptime = BTreeMap::new();
    for c in config.components.iter().filter(|c| c.public) {
        let rows = store
            .daily_uptime(&NodeId::from(&c.id), from, today)
            .await?;
        let by_day: BTreeMap<NaiveDate, Option<f64>> =
            rows.iter().map(|r| (r.day, r.ratio())).collect();
        let days = (0..90)
            .map(|i| {
                let day = from + chrono::TimeDelta::days(i);
                DayUptime {
                    day,
                    ratio: by_day.get(&day).copied().flatten(),
                }
            })
            .collect();
        uptime.insert(c.id.clone(), days);
    }
    let maintenances = store.maintenances().await?;
    Ok(StoredInputs {
        uptime,
        maintenances,
    })
}

/// Builds the snapshot from what Keel holds in memory — the book and the health view the
/// incident job last published — and the last stored inputs.
pub async fn build(
    config: &Config,
    book: &IncidentBook,
    inputs: &StoredInputs,
    now: DateTime<Utc>,
) -> Snapshot {
    build_from(config, book, &book.health().health, inputs, now).await
}

/// Builds the snapshot from given node healths (the static export folds them from the store).
pub async fn build_from(
    config: &Config,
    book: &IncidentBook,
    health: &keel_core::assess::HealthMap,
    inputs: &StoredInputs,
    now: DateTime<Utc>,
) -> Snapshot {
    let incidents = book.list().await;
    public::snapshot::build(
        config,
        &incidents,
        health,
        &inputs.uptime,
        &inputs.maintenances,
        now,
    )
}

/// Rebuilds on every change — a new health view, an incident change, new stored inputs —
/// (debounced briefly, so a burst of signals renders once) and at least once a minute (uptime
/// bars move), until stopped.
pub async fn run(
    cache: Arc<SnapshotCache>,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    book: Arc<IncidentBook>,
    stop: CancellationToken,
    mut on_render: impl FnMut(&Rendered) + Send,
) {
    let mut health = book.subscribe_health();
    let mut changes = book.subscribe();
    let mut inputs = StoredInputs::default();
    let mut last_inputs: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        let stale = cache
            .stale_inputs
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if stale || last_inputs.is_none_or(|t| now - t > chrono::TimeDelta::seconds(60)) {
            // Bounded: a stalled store must not stop the page from following incidents.
            match tokio::time::timeout(
                Duration::from_secs(2),
                load_inputs(store.as_ref(), &config, now.date_naive()),
            )
            .await
            {
                Ok(Ok(i)) => {
                    inputs = i;
                    last_inputs = Some(now);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read uptime for the status page; keeping the last")
                }
                Err(_) => tracing::warn!(
                    "the store did not answer within 2s; the status page keeps its last uptime"
                ),
            }
        }
        health.mark_unchanged();
        let snapshot = build(&config, &book, &inputs, now).await;
        let rendered = render_all(snapshot);
        on_render(&rendered);
        cache.swap(rendered);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = cache.changed.notified() => {}
            // Never an error while the book, which holds the sender, is held here.
            _ = health.changed() => {}
            _ = changes.recv() => {}
        }
        // Let a burst settle so it renders once, then drop everything it queued: one render
        // covers them all (10,000 monitors starting up queue 10,000 signals). The health view
        // is marked seen when the render reads it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drain(&mut changes);
    }
}

/// Empties a broadcast receiver without waiting.
fn drain<T: Clone>(rx: &mut tokio::sync::broadcast::Receiver<T>) {
    use tokio::sync::broadcast::error::TryRecvError;
    loop {
        match rx.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => return,
        }
    }
}
