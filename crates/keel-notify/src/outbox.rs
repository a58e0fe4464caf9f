//! The outbox worker: claims stored notifications and delivers them, with retries.
//!
//! Every notification is an outbox row before anything is sent (the server enqueues rendered
//! [`Delivery`] payloads). [`run_once`] is one step of the worker as a plain async function
//! returning what it did, so tests call it directly with any `now`: claim a batch under a
//! lease, send each item concurrently (bounded), and record the result — sent; retry later with
//! exponential backoff and full jitter; or dead after the retry budget or on a permanent
//! failure. [`run`] is the thin loop around it. A worker killed mid-batch leaves its claims to
//! expire, and they are claimed again: delivery is at least once, and the idempotency key that
//! travels with every message (header, Message-ID) lets receivers drop a repeat. A worker that
//! sent something but cannot record it (the database restarting) keeps trying to record it
//! while its claim lasts, so a short database outage does not turn into repeats.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use keel_store::{NewOutboxItem, OutboxItem, OutboxStore, StoreError};
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::delivery::{Delivery, Senders};
use crate::http::SendError;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Items claimed per step (default 100).
    pub batch: u32,
    /// Sends in flight at once (default 32).
    pub concurrency: usize,
    /// How long a claim holds (default 5 min). It must outlast a whole batch's sends
    /// (`batch / concurrency` rounds of the send timeout), or items are claimed twice.
    pub lease: Duration,
    /// Attempts before an item is given up on (default 12). With the default backoff the
    /// retries span about 18 minutes on average and at most about 37: a receiver that is
    /// down for a deploy or a short outage still gets the message.
    pub max_attempts: u32,
    /// First retry delay's upper bound (default 2 s); it doubles per attempt…
    pub backoff_base: Duration,
    /// …up to this (default 10 min).
    pub backoff_cap: Duration,
    /// How long [`run`] sleeps when nothing was due, unless woken (default 1 s).
    pub idle: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 100,
            concurrency: 32,
            lease: Duration::from_secs(300),
            max_attempts: 12,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            idle: Duration::from_secs(1),
        }
    }
}

/// What one [`run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub claimed: usize,
    pub sent: usize,
    /// Failed this time, to be tried again later.
    pub retried: usize,
    /// Given up on: a permanent failure or the retry budget spent.
    pub dead: usize,
    /// Not sent because the subscriber unsubscribed meanwhile (recorded as finished).
    pub skipped: usize,
    /// Sent or failed, but the store could not record it; the lease will run out and the item
    /// be claimed again.
    pub unrecorded: usize,
}

impl Outcome {
    fn add(&mut self, step: Step) {
        match step {
            Step::Sent => self.sent += 1,
            Step::Retried => self.retried += 1,
            Step::Dead => self.dead += 1,
            Step::Skipped => self.skipped += 1,
            Step::Unrecorded => self.unrecorded += 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Sent,
    Retried,
    Dead,
    Skipped,
    Unrecorded,
}

/// The upper bound of the delay before retry number `attempt` (1 = after the first failure):
/// `base · 2^(attempt-1)`, at most `cap`.
pub fn backoff_ceiling(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    base.saturating_mul(factor).min(cap)
}

/// "Full jitter": a uniformly random delay in `[0, ceiling]`, so a fan-out that failed at once
/// (a receiver restarting) does not come back all at once.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = backoff_ceiling(attempt, base, cap);
    Duration::from_millis(rng.gen_range(0..=ceiling.as_millis() as u64))
}

/// The outbox row for a delivery.
pub fn item(
    delivery: &Delivery,
    idempotency_key: String,
    target: String,
    subscriber_id: Option<i64>,
    now: DateTime<Utc>,
) -> NewOutboxItem {
    NewOutboxItem {
        idempotency_key,
        channel: delivery.channel().to_string(),
        target,
        subscriber_id,
        payload: delivery.to_payload(),
        next_attempt_at: now,
    }
}

/// One step: claims up to `opts.batch` due items as `worker_id`, delivers them (at most
/// `opts.concurrency` at once) and records each result. Fails only when the claim itself
/// fails; a result the store cannot record is counted in [`Outcome::unrecorded`].
pub async fn run_once(
    store: &dyn OutboxStore,
    senders: &Senders,
    worker_id: &str,
    now: DateTime<Utc>,
    opts: &WorkerOptions,
) -> Result<Outcome, StoreError> {
    // Results are recorded by then: after it, the claims may have passed to another worker.
    let deadline = Instant::now() + opts.lease.mul_f64(0.9);
    let items = store
        .claim_outbox(worker_id, opts.batch, now, opts.lease)
        .await?;
    let mut outcome = Outcome {
        claimed: items.len(),
        ..Outcome::default()
    };
    let steps: Vec<Step> = stream::iter(items)
        .map(|item| process(store, senders, item, now, opts, deadline))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for s in steps {
        outcome.add(s);
    }
    Ok(outcome)
}

async fn process(
    store: &dyn OutboxStore,
    senders: &Senders,
    item: OutboxItem,
    now: DateTime<Utc>,
    opts: &WorkerOptions,
    deadline: Instant,
) -> Step {
    // Someone who unsubscribed after the fan-out was queued gets nothing more.
    if let Some(sid) = item.subscriber_id {
        match store.subscriber(sid).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                tracing::debug!(
                    id = item.id,
                    subscriber = sid,
                    "subscriber left; not sending"
                );
                let r = until_recorded(deadline, || store.outbox_sent(item.id, now)).await;
                return record(r, Step::Skipped, &item);
            }
            Err(e) => {
                // Without knowing, do not send; the lease runs out and it is tried again.
                tracing::warn!(id = item.id, error = %e, "cannot look up the subscriber of an outbox item");
                return Step::Unrecorded;
            }
        }
    }
    let result = match Delivery::from_payload(&item.channel, &item.payload) {
        Ok(d) => {
            senders
                .deliver(&item.target, &d, &item.idempotency_key, now)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        // Sent: unrecorded, it would be sent again once the claim runs out.
        Ok(()) => record(
            until_recorded(deadline, || store.outbox_sent(item.id, now)).await,
            Step::Sent,
            &item,
        ),
        Err(SendError::Permanent(reason)) => {
            tracing::warn!(id = item.id, channel = %item.channel, %reason, "notification failed for good");
            record(
                store.outbox_dead(item.id, &reason, now).await,
                Step::Dead,
                &item,
            )
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            if item.attempts >= opts.max_attempts {
                let reason = format!("gave up after {} attempts: {reason}", item.attempts);
                tracing::warn!(id = item.id, channel = %item.channel, %reason, "notification dead-lettered");
                return record(
                    store.outbox_dead(item.id, &reason, now).await,
                    Step::Dead,
                    &item,
                );
            }
            let mut delay = backoff(
                item.attempts,
                opts.backoff_base,
                opts.backoff_cap,
                &mut rand::thread_rng(),
            );
            // Honour what the receiver asked for, within our own cap.
            if let Some(ra) = retry_after {
                delay = delay.max(ra.min(opts.backoff_cap));
            }
            let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            tracing::debug!(id = item.id, channel = %item.channel, %reason, attempt = item.attempts, ?delay, "notification will be retried");
            record(
                store.outbox_retry(item.id, &reason, next).await,
                Step::Retried,
                &item,
            )
        }
    }
}

/// Runs `write` (the recording of a result) until it is done, retrying while the store does
/// not answer (`Unavailable`, `Other`: a connection cut by a database restart) with a backoff
/// from 100 ms to 2 s, as long as a retry can start before `deadline`. Any other answer is
/// returned as it is.
async fn until_recorded<F, Fut>(deadline: Instant, mut write: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match write().await {
            Err(e @ (StoreError::Unavailable(_) | StoreError::Other(_))) => {
                if Instant::now() + backoff >= deadline {
                    return Err(e);
                }
                tracing::debug!(error = %e, retry_in = ?backoff, "cannot record a notification's result yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

fn record(r: Result<(), StoreError>, step: Step, item: &OutboxItem) -> Step {
    match r {
        Ok(()) => step,
        Err(e) => {
            tracing::warn!(id = item.id, error = %e, "cannot record a notification's result");
            Step::Unrecorded
        }
    }
}

/// Runs the worker until `stop` is cancelled: steps back to back while there is work, else
/// sleeps `opts.idle` or until `wake` is notified (the server notifies after enqueueing, so a
/// new notification goes out at once). A failing store is logged and retried after the idle
/// sleep. A batch in progress is finished before stopping.
pub async fn run(
    store: Arc<dyn OutboxStore>,
    senders: Arc<Senders>,
    worker_id: String,
    opts: WorkerOptions,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        match run_once(&*store, &senders, &worker_id, Utc::now(), &opts).await {
            Ok(o) if o.claimed > 0 => {
                if o.dead > 0 || o.retried > 0 {
                    tracing::info!(?o, "outbox step");
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox worker cannot claim work"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(opts.idle) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A store answering `answers` in turn, counting the calls.
    fn store_answering(
        answers: Vec<Result<(), StoreError>>,
    ) -> (
        impl FnMut() -> std::future::Ready<Result<(), StoreError>>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let mut answers = answers.into_iter();
        let write = move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(answers.next().unwrap_or(Ok(())))
        };
        (write, calls)
    }

    #[tokio::test]
    async fn a_result_is_recorded_once_the_store_answers_again() {
        let down = || Err(StoreError::Unavailable("connection reset".into()));
        let (write, calls) = store_answering(vec![down(), down(), Ok(())]);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(until_recorded(deadline, write).await.is_ok());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn recording_gives_up_when_the_claim_would_run_out() {
        let down = || Err(StoreError::Unavailable("connection refused".into()));
        let (write, calls) = store_answering((0..100).map(|_| down()).collect());
        let deadline = Instant::now() + Duration::from_millis(250);
        let r = until_recorded(deadline, write).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(Instant::now() <= deadline + Duration::from_millis(100));
        // 100 ms, then 200 ms would end past the deadline: two tries.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_that_is_not_an_outage_is_not_retried() {
        let (write, calls) = store_answering(vec![Err(StoreError::NotFound("outbox 7".into()))]);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(matches!(
            until_recorded(deadline, write).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn ceiling_doubles_from_base_up_to_cap() {
        let (b, c) = (Duration::from_secs(2), Duration::from_secs(600));
        let got: Vec<u64> = (1..=10)
            .map(|a| backoff_ceiling(a, b, c).as_secs())
            .collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600]);
        assert_eq!(backoff_ceiling(0, b, c), b);
        assert_eq!(backoff_ceiling(u32::MAX, b, c), c);
    }

    #[test]
    fn the_default_budget_spans_more_than_a_short_outage() {
        let o = WorkerOptions::default();
        // Retries happen after attempts 1..max; the sum of their ceilings is the longest wait.
        let longest: Duration = (1..o.max_attempts)
            .map(|a| backoff_ceiling(a, o.backoff_base, o.backoff_cap))
            .sum();
        assert_eq!(
            longest,
            Duration::from_secs(2 + 4 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 600 + 600)
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (b, c) = (Duration::from_secs(2), Duration::from_secs(600));
        for attempt in 1..=12 {
            let ceiling = backoff_ceiling(attempt, b, c);
            let delays: Vec<Duration> =
                (0..200).map(|_| backoff(attempt, b, c, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling));
            // Spread over the range: some in the lower and some in the upper half.
            assert!(delays.iter().any(|d| *d < ceiling / 2));
            assert!(delays.iter().any(|d| *d > ceiling / 2));
        }
    }
}
