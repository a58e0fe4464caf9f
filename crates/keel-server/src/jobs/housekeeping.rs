//! Housekeeping: rollups handed to the store, old rows pruned.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::http::AppState;

/// Every 15 s: hand finished rollup minutes to the store; hourly: prune old rollups and
/// delivered notifications.
pub async fn run(state: AppState, stop: CancellationToken) {
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
