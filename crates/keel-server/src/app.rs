//! `Application`: builds everything from a config, binds the listener, and runs the server
//! and its jobs side by side until asked to stop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use keel_core::config::{Check, Config, Secret};
use keel_core::{NodeId, SourceKey, SourceKind};
use keel_probe::check::Checker;
use keel_probe::scheduler::{Heartbeats, Scheduler};
use keel_probe::source::Source;
use keel_store::{hash_token, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::book::IncidentBook;
use crate::cluster::{self, Cluster};
use crate::health::HealthView;
use crate::http::{router, AppState};
use crate::hub::SignalHub;
use crate::jobs::{Jobs, Parts};
use crate::metrics::Metrics;
use crate::persist::PersistEvent;
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

        let mut stored: HashMap<SourceKey, _> = store
            .load_source_states()
            .await
            .context("cannot load monitor states from the store")?
            .into_iter()
            .map(|s| (s.key, (s.component, s.tracker)))
            .collect();
        for m in &config.monitors {
            let key = SourceKey::monitor(m.id.clone());
            hub.register(
                &key,
                &NodeId::from(&m.component),
                m.kind(),
                stored.remove(&key).map(|(_, t)| t),
                now,
            );
        }
        for v in &config.vendors {
            let key = SourceKey::vendor(v.id.clone());
            hub.register(
                &key,
                &NodeId::from(&v.id),
                "vendor",
                stored.remove(&key).map(|(_, t)| t),
                now,
            );
        }
        let probes = Arc::new(crate::probes::Probes::new(&config));
        crate::probes::restore(&hub, &probes, &config, &mut stored, now);
        // Intake alerts still firing when Keel stopped stay known, so their resolution is
        // recognised as a change after a restart.
        for (key, (component, tracker)) in stored {
            if key.kind() == SourceKind::Intake {
                let label = crate::hub::source_label(&key).to_string();
                hub.register(&key, &component, &label, Some(tracker), now);
            }
        }

        let heartbeats = Arc::new(Heartbeats::new(&config.monitors, now));
        let heartbeat_sources = config
            .monitors
            .iter()
            .filter(|m| matches!(m.check, Check::Heartbeat(_)))
            .map(|m| (m.id.clone(), Source::monitor(m)))
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
    /// A job that ends before then stops Keel the same way, and is the error returned.
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
        let parts = Parts {
            scheduler,
            persist_rx,
            persist_tx,
            secrets,
            me,
        };
        let mut jobs = Jobs::start(&state, parts, stop.clone()).await?;

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
        tokio::pin!(server);
        // A job that dies stops Keel the way SIGTERM does: the server drains, the other jobs
        // stop in order, and the error makes the exit status non-zero.
        let ended = tokio::select! {
            () = &mut server => None,
            ended = jobs.ended_early() => Some(ended),
        };
        if ended.is_some() {
            stop.cancel();
            server.await;
        }
        jobs.stop().await;
        match ended {
            Some(ended) => Err(ended.into()),
            None => Ok(()),
        }
    }
}
