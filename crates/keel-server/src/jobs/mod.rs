//! Keel's background jobs, started together and stopped in order, all in one [`Supervisor`].
//!
//! Every job is meant to run until Keel stops: one that ends sooner (returns or panics) leaves
//! Keel half-alive — a page nobody re-renders, incidents nobody correlates, pages nobody
//! sends — while the HTTP server still answers. So the supervisor names it in the log, Keel
//! stops as on SIGTERM and exits non-zero, for its service manager to start it again whole.
//!
//! The jobs: `persist` (signals and states to the store), `scheduler` (checks and vendor
//! polls), `lease` (this instance's leases), `follow` (the other instances' writes),
//! `housekeeping`, `snapshot` (the rendered page, and its static export), `outbox-N`
//! (delivery), `fanout` (customer notifications), `paging`, `probes` (the remote probes'
//! watchdog), `incidents` (correlation) and `canary`.

mod follow;
mod housekeeping;
mod outbox;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keel_probe::scheduler::Scheduler;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use supervisor::{Ended, Supervisor, KILL_FOR_TESTS};

use crate::http::AppState;
use crate::persist::{self, PersistEvent};
use crate::secrets::Secrets;

/// The jobs that stop first, on `stop`: all of them act as this instance's leases allow, so
/// the leases are let go only once they have ended.
const FIRST: [&str; 8] = [
    "scheduler",
    "housekeeping",
    "incidents",
    "canary",
    "snapshot",
    "fanout",
    "paging",
    "follow",
];

/// Every running job, and what stopping them in order needs.
pub struct Jobs {
    supervisor: Supervisor,
    stop: CancellationToken,
    lease_stop: CancellationToken,
    state: AppState,
    persist_tx: mpsc::UnboundedSender<PersistEvent>,
}

/// What only the jobs take from the built application.
pub struct Parts {
    pub scheduler: Scheduler,
    pub persist_rx: mpsc::UnboundedReceiver<PersistEvent>,
    pub persist_tx: mpsc::UnboundedSender<PersistEvent>,
    pub secrets: Arc<Secrets>,
    pub me: keel_store::Instance,
}

impl Jobs {
    /// Starts every job; they run until `stop` (the lease job until [`Jobs::stop`] lets go).
    pub async fn start(
        state: &AppState,
        parts: Parts,
        stop: CancellationToken,
    ) -> anyhow::Result<Jobs> {
        let Parts {
            scheduler,
            persist_rx,
            persist_tx,
            secrets,
            me,
        } = parts;
        // Built before any job starts, so a bad SMTP or paging setting stops nothing half-way.
        let senders = Arc::new(outbox::senders(&state.config, &secrets).await?);
        let mut jobs = Supervisor::new(stop.clone());
        jobs.spawn(
            "persist",
            persist::run(state.store.clone(), persist_rx, state.metrics.clone()),
        );
        // With nothing to check the scheduler returns at once: idle, not dead.
        let idle = scheduler.monitors.is_empty() && scheduler.vendors.is_empty();
        let s = stop.clone();
        jobs.spawn("scheduler", async move {
            scheduler.run(s.clone()).await;
            if idle {
                s.cancelled().await;
            }
        });
        let lease_stop = CancellationToken::new();
        jobs.spawn(
            "lease",
            crate::cluster::job::run(
                state.store.clone(),
                state.cluster.clone(),
                state.hub.clone(),
                me,
                lease_stop.clone(),
            ),
        );
        jobs.spawn(
            "follow",
            follow::run(
                state.store.clone(),
                state.incidents.clone(),
                state.hub.clone(),
                state.heartbeats.clone(),
                stop.clone(),
            ),
        );
        jobs.spawn(
            "housekeeping",
            housekeeping::run(state.clone(), stop.clone()),
        );
        let export_dir = state.config.page.export_dir.clone();
        jobs.spawn(
            "snapshot",
            crate::rendered::run(
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
            ),
        );
        for n in 0..state.config.notify.workers.max(1) {
            let opts = keel_notify::WorkerOptions {
                lease: state.config.notify.lease,
                max_attempts: state.config.notify.retry_attempts,
                ..keel_notify::WorkerOptions::default()
            };
            jobs.spawn(
                format!("outbox-{n}"),
                keel_notify::run(
                    state.store.clone(),
                    senders.clone(),
                    format!("{}-{}-{n}", outbox::hostname(), std::process::id()),
                    opts,
                    state.outbox_wake.clone(),
                    stop.clone(),
                ),
            );
        }
        jobs.spawn(
            "fanout",
            crate::fanout::run(
                state.config.clone(),
                secrets.clone(),
                state.store.clone(),
                state.incidents.clone(),
                state.snapshots.clone(),
                state.outbox_wake.clone(),
                stop.clone(),
            ),
        );
        jobs.spawn(
            "paging",
            crate::paging::job::run(
                state.config.clone(),
                secrets,
                state.store.clone(),
                state.incidents.clone(),
                state.outbox_wake.clone(),
                state.cluster.clone(),
                stop.clone(),
            ),
        );
        jobs.spawn(
            "probes",
            crate::probes::run(
                state.config.clone(),
                state.probes.clone(),
                state.hub.clone(),
                stop.clone(),
            ),
        );
        jobs.spawn(
            "incidents",
            crate::book::run(
                state.incidents.clone(),
                state.hub.clone(),
                state.cluster.clone(),
                stop.clone(),
            ),
        );
        jobs.spawn(
            "canary",
            crate::canary::run(
                state.config.clone(),
                state.incidents.clone(),
                state.cluster.clone(),
                stop.clone(),
            ),
        );
        Ok(Jobs {
            supervisor: jobs,
            stop,
            lease_stop,
            state: state.clone(),
            persist_tx,
        })
    }

    /// Resolves when a job ends while Keel is not stopping (see [`Supervisor::ended_early`]).
    pub async fn ended_early(&mut self) -> Ended {
        self.supervisor.ended_early().await
    }

    /// Stops every job: checks in flight finish, the current minute's rollups and every
    /// pending write reach the store.
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.supervisor.wait_for(|job| FIRST.contains(&job)).await;
        self.lease_stop.cancel();
        self.supervisor.wait_for(|job| job == "lease").await;
        self.supervisor
            .wait_for(|job| job.starts_with("outbox-"))
            .await;
        self.state.hub.flush_rollups(Utc::now(), true);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let _ = self.persist_tx.send(PersistEvent::Barrier(done_tx));
        // Bounded: a dead database must not keep Keel from exiting.
        if tokio::time::timeout(Duration::from_secs(30), done_rx)
            .await
            .is_err()
        {
            tracing::error!("pending writes did not reach the store within 30s of shutdown");
        }
        // Dropping the supervisor aborts what is left: the persistence job, which has
        // written everything, and the probes' watchdog, which has nothing left to say.
    }
}
