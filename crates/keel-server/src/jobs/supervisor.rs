//! One `JoinSet` of named jobs, each meant to run until Keel stops.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Test-only: names one job to panic as it starts. Every job retries what fails, so no fault
/// from outside Keel ends one; the integration test that watches a dying job stop Keel kills
/// one this way. Nothing else sets it.
pub const KILL_FOR_TESTS: &str = "KEEL_TEST_KILL_JOB";

pub struct Supervisor {
    tasks: JoinSet<()>,
    /// The jobs not yet reaped, by task.
    running: HashMap<Id, String>,
    /// Once cancelled, a job that ends is expected to.
    stop: CancellationToken,
    kill: Option<String>,
}

/// A job that ended while Keel was not stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub job: String,
    /// "returned", "panicked: …".
    pub how: String,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} job {}", self.job, self.how)
    }
}

impl std::error::Error for Ended {}

impl Supervisor {
    pub fn new(stop: CancellationToken) -> Self {
        Supervisor {
            tasks: JoinSet::new(),
            running: HashMap::new(),
            stop,
            kill: std::env::var(KILL_FOR_TESTS).ok(),
        }
    }

    pub fn spawn(
        &mut self,
        name: impl Into<String>,
        job: impl Future<Output = ()> + Send + 'static,
    ) {
        let name = name.into();
        let task = if self.kill.as_deref() == Some(name.as_str()) {
            drop(job);
            let msg = format!("killed for a test ({KILL_FOR_TESTS}={name})");
            self.tasks.spawn(async move { panic!("{msg}") })
        } else {
            self.tasks.spawn(job)
        };
        self.running.insert(task.id(), name);
    }

    /// The names of the jobs still running (or ended and not yet reaped), sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.running.values().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Resolves when a job ends before `stop` is cancelled, logged with its name and how it
    /// ended; jobs ending after it are only reaped. Never resolves if none does. Cancel-safe:
    /// the only wait is `JoinSet::join_next_with_id`.
    pub async fn ended_early(&mut self) -> Ended {
        loop {
            let Some(done) = self.tasks.join_next_with_id().await else {
                return std::future::pending().await;
            };
            let ended = self.reap(done);
            if !self.stop.is_cancelled() {
                tracing::error!(job = %ended.job, "{ended} while Keel was running: Keel stops");
                return ended;
            }
        }
    }

    /// Waits until every job `which` names has ended (reaping any other that ends meanwhile).
    pub async fn wait_for(&mut self, which: impl Fn(&str) -> bool) {
        while self.running.values().any(|name| which(name)) {
            match self.tasks.join_next_with_id().await {
                Some(done) => {
                    self.reap(done);
                }
                None => break,
            }
        }
    }

    fn reap(&mut self, done: Result<(Id, ()), JoinError>) -> Ended {
        let (id, how) = match done {
            Ok((id, ())) => (id, "returned".to_string()),
            Err(e) => (e.id(), failure(e)),
        };
        let job = self.running.remove(&id).unwrap_or_else(|| format!("{id}"));
        let ended = Ended { job, how };
        // A panic is a bug whenever it happens; one during shutdown is said too.
        if self.stop.is_cancelled() && ended.how != "returned" {
            tracing::error!(job = %ended.job, "{ended} while Keel was stopping");
        }
        ended
    }
}

fn failure(e: JoinError) -> String {
    if e.is_cancelled() {
        return "was cancelled".into();
    }
    let panic = e.into_panic();
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_job_that_returns_or_panics_before_stop_is_named() {
        let stop = CancellationToken::new();
        let mut jobs = Supervisor::new(stop.clone());
        let s = stop.clone();
        jobs.spawn("waits", async move { s.cancelled().await });
        jobs.spawn("returns", async {});
        let ended = jobs.ended_early().await;
        assert_eq!(ended.to_string(), "the returns job returned");
        jobs.spawn("panics", async { panic!("disk on fire") });
        let ended = jobs.ended_early().await;
        assert_eq!(ended.to_string(), "the panics job panicked: disk on fire");
        assert_eq!(jobs.names(), ["waits"]);
    }

    #[tokio::test]
    async fn jobs_ending_after_stop_are_not_reported() {
        let stop = CancellationToken::new();
        let mut jobs = Supervisor::new(stop.clone());
        let ended = Arc::new(AtomicUsize::new(0));
        for name in ["a", "b", "panics"] {
            let (s, e) = (stop.clone(), ended.clone());
            jobs.spawn(name, async move {
                s.cancelled().await;
                e.fetch_add(1, Ordering::SeqCst);
                assert_ne!(name, "panics", "a panic after stop");
            });
        }
        stop.cancel();
        let all_ended = async {
            while ended.load(Ordering::SeqCst) < 3 {
                tokio::task::yield_now().await;
            }
        };
        // Biased: each job's end is seen by `ended_early` before the count shows it.
        tokio::select! {
            biased;
            e = jobs.ended_early() => panic!("{e}: reported after stop"),
            () = all_ended => {}
        }
        jobs.wait_for(|_| true).await;
        assert!(jobs.names().is_empty());
    }

    #[tokio::test]
    async fn wait_for_waits_for_the_jobs_named_only() {
        let stop = CancellationToken::new();
        let mut jobs = Supervisor::new(stop.clone());
        for name in ["first", "second"] {
            let s = stop.clone();
            jobs.spawn(name, async move { s.cancelled().await });
        }
        let later = CancellationToken::new();
        let l = later.clone();
        jobs.spawn("later", async move { l.cancelled().await });
        stop.cancel();
        jobs.wait_for(|n| n != "later").await;
        assert_eq!(jobs.names(), ["later"]);
        later.cancel();
        jobs.wait_for(|n| n == "later").await;
        assert!(jobs.names().is_empty());
    }
}
