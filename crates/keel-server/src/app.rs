//! `Application`: builds everything from a config, binds the listener, and runs the server
//! and its jobs side by side until asked to stop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use keel_core::config::{Check, Config, Secret};
use keel_core::SourceKind;
use keel_probe::check::Checker;
use keel_probe::scheduler::{Heartbeats, Scheduler};
use keel_probe::source::Source;
use keel_store::{hash_token, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::book::{self, IncidentBook};
use crate::cluster::{self, Cluster};
use crate::health::HealthView;
use crate::http::{router, AppState};
use crate::hub::SignalHub;
use crate::metrics::Metrics;
use crate::persist::{self, PersistEvent};
use crate::rendered::{self, SnapshotCache};

/// What is not in the config file: secrets from the environment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The bootstrap admin token (`KEEL_ADMIN_TOKEN` / `KEEL_ADMIN_TOKEN_FILE`).
    pub admin_token: Option<Secret>,
}

pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    scheduler: Scheduler,
    persist_rx: mpsc::UnboundedReceiver<PersistEvent>,
    persist_tx: mpsc::UnboundedSender<PersistEvent>,
    secrets: Arc<crate::secrets::Secrets>,
    me: keel_store::Instance,
}

impl Application {
    /// Opens the store, restores state, and binds the listener (port 0 picks a free one).
    pub async fn build(config: Config, options: Options) -> anyhow::Result<Self> {
        let store = crate::store::open_store(&config).await?;
        Self::build_with_store(config, options, store).await
    }

    pub async fn build_with_store(
        config: Config,
        options: Options,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        let now = Utc::now();
        let metrics = Arc::new(Metrics::default());
        let (persist_tx, persist_rx) = mpsc::unbounded_channel();
        let hub = Arc::new(SignalHub::new(persist_tx.clone(), metrics.clone()));

        let mut stored: HashMap<(SourceKind, String), _> = store
            .load_source_states()
            .await
            .context("cannot load monitor states from the store")?
            .into_iter()
            .map(|s| ((s.kind, s.id), (s.component, s.tracker)))
            .collect();
        for m in &config.monitors {
            let key = (SourceKind::Monitor, m.id.to_string());
            hub.register(
                key.0,
                &key.1,
                m.component.as_str(),
                m.kind(),
                stored.remove(&key).map(|(_, t)| t),
                now,
            );
        }
        for v in &config.vendors {
            let key = (SourceKind::Vendor, v.id.to_string());
            hub.register(
                key.0,
                &key.1,
                v.id.as_str(),
                "vendor",
                stored.remove(&key).map(|(_, t)| t),
                now,
            );
        }
        let probes = Arc::new(crate::probes::Probes::new(&config));
        crate::probes::restore(&hub, &probes, &config, &mut stored, now);
        // Intake alerts still firing when Keel stopped stay known, so their resolution is
        // recognised as a change after a restart.
        for ((kind, id), (component, tracker)) in stored {
            if kind == SourceKind::Intake {
                let label = id.split('/').next().unwrap_or("intake").to_string();
                hub.register(kind, &id, &component, &label, Some(tracker), now);
            }
        }

        let heartbeats = Arc::new(Heartbeats::new(&config.monitors, now));
        let heartbeat_sources = config
            .monitors
            .iter()
            .filter(|m| matches!(m.check, Check::Heartbeat(_)))
            .map(|m| (m.id.to_string(), Source::monitor(m)))
            .collect();
        let checker = Arc::new(Checker::new().context("cannot build the HTTP client")?);
        let vendor_client = reqwest::Client::builder()
            .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for vendor polls")?;

        // Every secret the config names by file, read once: a missing one stops Keel now.
        let secrets = Arc::new(crate::secrets::Secrets::resolve(&config)?);
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let port = listener.local_addr()?.port();
        // Links in pages and emails are built from the listener when no `[page] base_url` is
        // set: with `listen = "…:0"` they must name the port actually bound.
        let mut config = config;
        config.server.listen = listener.local_addr()?;

        // Joins the instances on this store (refused if their config differs) and takes this
        // instance's share before anything is checked: alone, that is everything.
        let cluster = Arc::new(Cluster::new(cluster::instance_id(), config.cluster.lease));
        let me = cluster::job::me(
            &cluster,
            config.server.listen.to_string(),
            cluster::digest::config_digest(&config),
        );
        cluster::job::join(store.as_ref(), &cluster, &me).await?;
        cluster::job::renew(store.as_ref(), &cluster, &hub, &me)
            .await
            .context("cannot claim this instance's leases")?;
        for (monitor, at) in store
            .heartbeats()
            .await
            .context("cannot load heartbeat pushes from the store")?
        {
            heartbeats.record(&monitor, at);
        }

        let config = Arc::new(config);
        let incidents = Arc::new(IncidentBook::load(store.clone(), config.clone()).await?);
        // The first rendering is made before the listener answers, so the page never 404s.
        let inputs = tokio::time::timeout(
            Duration::from_secs(5),
            rendered::load_inputs(store.as_ref(), &config, now.date_naive()),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        // The health the stored states restored, assessed once, so the first rendering (and
        // anything read before the incident job's first pass) shows it.
        incidents.publish_health(HealthView::from_hub(incidents.graph(), &hub));
        let first = rendered::build(&config, &incidents, &inputs, now).await;
        let snapshots = Arc::new(SnapshotCache::new(rendered::render_all(first)));
        let scheduler = Scheduler {
            monitors: config.local_monitors(),
            vendors: config.vendors.clone(),
            config: config.scheduler.clone(),
            checker,
            vendor_client,
            heartbeats: heartbeats.clone(),
            sink: hub.clone(),
            owner: Arc::new(cluster::ClusterOwner(cluster.clone())),
        };
        let state = AppState::new(crate::http::Shared {
            config,
            store,
            hub,
            metrics,
            heartbeats,
            heartbeat_sources: Arc::new(heartbeat_sources),
            limiter: Arc::new(crate::http::limiter()),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            incidents,
            snapshots,
            admin_token_hash: options.admin_token.map(|t| hash_token(t.expose())),
            cluster,
            probes,
        });
        Ok(Application {
            listener,
            port,
            state,
            scheduler,
            persist_rx,
            persist_tx,
            secrets,
            me,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The hub, for subscribing to signals.
    pub fn hub(&self) -> Arc<SignalHub> {
        self.state.hub.clone()
    }

    /// The incident book, for subscribing to incident changes.
    pub fn incidents(&self) -> Arc<IncidentBook> {
        self.state.incidents.clone()
    }

    /// Serves and runs every job until `shutdown` completes, then stops gracefully: checks in
    /// flight finish, the current minute's rollups and every pending write reach the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            scheduler,
            persist_rx,
            persist_tx,
            secrets,
            me,
            ..
        } = self;
        let stop = CancellationToken::new();
        let persist_job = tokio::spawn(persist::run(
            state.store.clone(),
            persist_rx,
            state.metrics.clone(),
        ));
        let scheduler_job = tokio::spawn(scheduler.run(stop.clone()));
        // Stopped after the scheduler and the jobs that write as leader, so this instance's
        // leases are let go only once it no longer acts on them.
        let lease_stop = CancellationToken::new();
        let lease_job = tokio::spawn(cluster::job::run(
            state.store.clone(),
            state.cluster.clone(),
            state.hub.clone(),
            me,
            lease_stop.clone(),
        ));
        let follow_job = tokio::spawn(cluster::follow::run(
            state.store.clone(),
            state.incidents.clone(),
            state.hub.clone(),
            state.heartbeats.clone(),
            stop.clone(),
        ));
        let housekeeping_job = tokio::spawn(housekeeping(state.clone(), stop.clone()));
        let export_dir = state.config.page.export_dir.clone();
        let snapshot_job = tokio::spawn(rendered::run(
            state.snapshots.clone(),
            state.config.clone(),
            state.store.clone(),
            state.incidents.clone(),
            stop.clone(),
            move |rendered| {
                if let Some(dir) = &export_dir {
                    if let Err(e) = crate::export::write_all(rendered, dir) {
                        tracing::error!(error = %e, dir = %dir.display(), "cannot re-export the status page");
                    }
                }
            },
        ));
        let senders = Arc::new(senders(&state.config, &secrets).await?);
        let mut outbox_jobs = Vec::new();
        for n in 0..state.config.notify.workers.max(1) {
            let opts = keel_notify::WorkerOptions {
                lease: state.config.notify.lease,
                max_attempts: state.config.notify.retry_attempts,
                ..keel_notify::WorkerOptions::default()
            };
            outbox_jobs.push(tokio::spawn(keel_notify::run(
                state.store.clone(),
                senders.clone(),
                format!("{}-{}-{n}", hostname(), std::process::id()),
                opts,
                state.outbox_wake.clone(),
                stop.clone(),
            )));
        }
        let fanout_job = tokio::spawn(crate::fanout::run(
            state.config.clone(),
            secrets.clone(),
            state.store.clone(),
            state.incidents.clone(),
            state.snapshots.clone(),
            state.outbox_wake.clone(),
            stop.clone(),
        ));
        let paging_job = tokio::spawn(crate::paging::job::run(
            state.config.clone(),
            secrets,
            state.store.clone(),
            state.incidents.clone(),
            state.outbox_wake.clone(),
            state.cluster.clone(),
            stop.clone(),
        ));
        tokio::spawn(crate::probes::run(
            state.config.clone(),
            state.probes.clone(),
            state.hub.clone(),
            stop.clone(),
        ));
        let incidents_job = tokio::spawn(book::run(
            state.incidents.clone(),
            state.hub.clone(),
            state.cluster.clone(),
            stop.clone(),
        ));
        let canary_job = tokio::spawn(crate::canary::run(
            state.config.clone(),
            state.incidents.clone(),
            state.cluster.clone(),
            stop.clone(),
        ));

        let app = router(state.clone(), crate::console::router(&state));
        let server_stop = stop.clone();
        let addr = listener.local_addr()?;
        tracing::info!(%addr, store = state.store.backend(), "keel is serving on http://{addr}");
        let server = crate::http::server::serve(listener, state.clone(), app, server_stop);
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        server.await;
        stop.cancel();
        let _ = scheduler_job.await;
        let _ = housekeeping_job.await;
        let _ = incidents_job.await;
        let _ = canary_job.await;
        let _ = snapshot_job.await;
        let _ = fanout_job.await;
        let _ = paging_job.await;
        let _ = follow_job.await;
        lease_stop.cancel();
        let _ = lease_job.await;
        for j in outbox_jobs {
            let _ = j.await;
        }
        state.hub.flush_rollups(Utc::now(), true);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let _ = persist_tx.send(PersistEvent::Barrier(done_tx));
        // Bounded: a dead database must not keep Keel from exiting.
        if tokio::time::timeout(Duration::from_secs(30), done_rx)
            .await
            .is_err()
        {
            tracing::error!("pending writes did not reach the store within 30s of shutdown");
        }
        persist_job.abort();
        Ok(())
    }
}

/// Every 15 s: hand finished rollup minutes to the store; hourly: prune old rollups and
/// delivered notifications.
async fn housekeeping(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut last_prune = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = Utc::now();
        state.hub.flush_rollups(now, false);
        if last_prune.is_none_or(|t: chrono::DateTime<Utc>| now - t > chrono::TimeDelta::hours(1)) {
            last_prune = Some(now);
            let storage = &state.config.storage;
            let minute_before = now
                - chrono::TimeDelta::from_std(storage.rollup_retention)
                    .unwrap_or(chrono::TimeDelta::days(30));
            let day_before = (now
                - chrono::TimeDelta::from_std(storage.daily_retention)
                    .unwrap_or(chrono::TimeDelta::days(400)))
            .date_naive();
            match state.store.prune_rollups(minute_before, day_before).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned old rollups"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune rollups"),
            }
            // Delivered notifications are kept a while (their idempotency keys stop a
            // restarted Keel from sending an update twice), then let go.
            let sent_before = now
                - chrono::TimeDelta::from_std(storage.outbox_retention)
                    .unwrap_or(chrono::TimeDelta::days(30));
            match state.store.prune_outbox(sent_before).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned delivered notifications"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
            }
        }
    }
}

/// The clients that deliver notifications: HTTP always, SMTP when `[notify.smtp]` is set.
async fn senders(
    config: &Config,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<keel_notify::Senders> {
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
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keel".into())
}
