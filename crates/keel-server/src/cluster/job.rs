//! The lease job: every third of the lease, this instance renews its heartbeat, its
//! leadership (or tries to take it) and its shards, letting go of shards beyond its share and
//! claiming free ones up to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use keel_store::{Instance, Store, StoreError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{self, lease_name, shard_of_lease, SHARDS};
use super::{digest, Cluster, LEADER};
use crate::hub::SignalHub;

/// How this instance introduces itself to the others.
pub fn me(cluster: &Cluster, listen: String, config: BTreeMap<String, String>) -> Instance {
    let now = Utc::now();
    Instance {
        id: cluster.id.clone(),
        listen,
        started_at: now,
        seen_at: now,
        config,
    }
}

/// Instances not heard from for this long are counted out when a joining instance compares
/// configs.
fn liveness(cluster: &Cluster) -> std::time::Duration {
    cluster.lease * 3
}

/// Instances not heard from for this long are left out when the shards are shared: an
/// instance renews its heartbeat and its leases together, so one not heard from for a whole
/// lease holds no lease any more either. Counting it longer would keep its shards' share
/// reserved for it — unclaimed, their monitors unchecked — until it was counted out.
pub fn sharing(cluster: &Cluster) -> std::time::Duration {
    cluster.lease
}

/// Registers this instance, refusing to when a running instance has a different config.
pub async fn join(store: &dyn Store, cluster: &Cluster, me: &Instance) -> anyhow::Result<()> {
    let live = store
        .live_instances(liveness(cluster))
        .await
        .context("cannot read the instances sharing this database")?;
    for other in live.iter().filter(|i| i.id != me.id) {
        let diff = digest::differences(&me.config, &other.config);
        if !diff.is_empty() {
            anyhow::bail!(
                "this config differs from the one instance {} (serving on {}) runs: {}. Every \
                 instance on one database must run the same config (all but [server]); to \
                 change it, stop the running instances first",
                other.id,
                other.listen,
                diff.join("; ")
            );
        }
    }
    store
        .heartbeat_instance(me)
        .await
        .context("cannot register this instance")?;
    Ok(())
}

/// One renewal. On a store error the cluster is told the store is unreachable and keeps what
/// it holds (see the module docs of `cluster`).
pub async fn renew(
    store: &dyn Store,
    cluster: &Cluster,
    hub: &SignalHub,
    me: &Instance,
) -> keel_store::Result<()> {
    let started = Instant::now();
    let result = try_renew(store, cluster, hub, me).await;
    if let Err(e) = &result {
        failed(cluster, started, e);
    }
    result
}

/// How long a renewal of the lease job may take before the store counts as not answering:
/// half a lease. Renewals start every third of one, so a store that stops answering is known
/// to within 1/3 + 1/2 of a lease of the last renewal, before what that renewal got runs out
/// locally: the monitors are kept without a gap. (Waiting for the store's own connect timeout
/// instead let them lapse first, unchecked until the store answered again.)
fn renewal_limit(cluster: &Cluster) -> std::time::Duration {
    cluster.lease / 2
}

/// [`renew`], given up on after [`renewal_limit`].
async fn renew_within(
    store: &dyn Store,
    cluster: &Cluster,
    hub: &SignalHub,
    me: &Instance,
) -> keel_store::Result<()> {
    let started = Instant::now();
    let limit = renewal_limit(cluster);
    let result = match tokio::time::timeout(limit, try_renew(store, cluster, hub, me)).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer to a lease renewal within {limit:?}"
        ))),
    };
    if let Err(e) = &result {
        failed(cluster, started, e);
    }
    result
}

/// A renewal failed. Counted as the store not answering — this instance keeps its monitors —
/// only when it failed within a lease of its start: one that took longer was overtaken rather
/// than refused, by this process being stopped or starved meanwhile, and another instance may
/// have taken its shards since; it checks nothing until a renewal says what it holds.
fn failed(cluster: &Cluster, started: Instant, e: &StoreError) {
    if started.elapsed() < cluster.lease {
        cluster.unreachable();
        tracing::warn!(error = %e, "cannot renew this instance's leases; keeping its monitors until the store answers");
    } else {
        tracing::warn!(error = %e, took = ?started.elapsed(), "a lease renewal failed after more than a lease (was this process stopped?); checking nothing until a renewal succeeds");
    }
}

async fn try_renew(
    store: &dyn Store,
    cluster: &Cluster,
    hub: &SignalHub,
    me: &Instance,
) -> keel_store::Result<()> {
    // Counted from before the round trip: the database's expiry is at least this late.
    let sent = Instant::now();
    if !store.touch_instance(&me.id).await? {
        // Removed meanwhile (a clean shutdown that did not finish, an operator): register
        // again, config and all.
        store.heartbeat_instance(me).await?;
    }
    let live = store.live_instance_ids(sharing(cluster)).await?;
    let target = plan::target(&live, &cluster.id);
    let busy: BTreeSet<u32> = store
        .leases("shard:")
        .await?
        .into_iter()
        .filter(|(l, live)| *live && l.holder != cluster.id)
        .filter_map(|(l, _)| shard_of_lease(&l.name))
        .collect();
    let free: BTreeSet<u32> = (0..SHARDS).filter(|s| !busy.contains(s)).collect();
    let held = cluster.shards();
    let p = plan::plan(&held, &free, target);
    if !p.release.is_empty() {
        let names: Vec<String> = p.release.iter().copied().map(lease_name).collect();
        store.release_leases(&names, &cluster.id).await?;
        tracing::info!(
            shards = p.release.len(),
            "released shards to another instance"
        );
    }
    let mut names = vec![LEADER.to_string()];
    names.extend(p.claim.iter().copied().map(lease_name));
    let got = store
        .claim_leases(&names, &cluster.id, cluster.lease)
        .await?;
    let leader = got.iter().find(|l| l.name == LEADER).cloned();
    let shards: BTreeSet<u32> = got.iter().filter_map(|l| shard_of_lease(&l.name)).collect();
    let gained: BTreeSet<u32> = shards.difference(&held).copied().collect();
    if !gained.is_empty() {
        // The previous holder's confirmation state (a monitor that had 1 of 2 failures keeps
        // it) is read before this instance checks any of them.
        adopt(store, hub, &gained).await?;
        tracing::info!(
            gained = gained.len(),
            held = shards.len(),
            "took over shards"
        );
    }
    cluster.renewed(leader, shards, sent);
    Ok(())
}

async fn adopt(
    store: &dyn Store,
    hub: &SignalHub,
    shards: &BTreeSet<u32>,
) -> keel_store::Result<()> {
    for state in store.load_source_states().await? {
        if shards.contains(&plan::shard_of_key(&state.key)) {
            hub.apply_remote(&state);
        }
    }
    Ok(())
}

/// Renews until stopped, then lets go of everything so the others take over at once.
pub async fn run(
    store: Arc<dyn Store>,
    cluster: Arc<Cluster>,
    hub: Arc<SignalHub>,
    me: Instance,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(cluster.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let _ = renew_within(store.as_ref(), &cluster, &hub, &me).await;
    }
    let mut names = vec![LEADER.to_string()];
    names.extend((0..SHARDS).map(lease_name));
    let leave = async {
        store.release_leases(&names, &cluster.id).await?;
        store.remove_instance(&cluster.id).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), leave).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot release this instance's leases; they expire by themselves"),
        Err(_) => tracing::warn!("the store did not answer the release of this instance's leases; they expire by themselves"),
    }
}

/// Whether a store error means the write was refused because the lease moved on.
pub fn is_fenced(e: &StoreError) -> bool {
    matches!(e, StoreError::Fenced(_))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keel_core::{SourceKey, SourceKind};

    use super::*;
    use crate::metrics::Metrics;

    fn hub() -> SignalHub {
        SignalHub::new(
            tokio::sync::mpsc::unbounded_channel().0,
            Arc::new(Metrics::default()),
        )
    }

    #[tokio::test]
    async fn a_dead_instances_shards_are_taken_once_its_leases_run_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = keel_store::open(&format!(
            "sqlite://{}",
            dir.path().join("keel.db").display()
        ))
        .await
        .unwrap();
        let lease = Duration::from_secs(1);
        // An instance that registered, took half the shards and died (no release).
        let dead = Cluster::new("dead".into(), lease);
        store
            .heartbeat_instance(&me(&dead, "127.0.0.1:1".into(), BTreeMap::new()))
            .await
            .unwrap();
        let half: Vec<String> = (0..SHARDS / 2).map(lease_name).collect();
        store.claim_leases(&half, "dead", lease).await.unwrap();

        let alive = Cluster::new("alive".into(), lease);
        let alive_me = me(&alive, "127.0.0.1:2".into(), BTreeMap::new());
        let hub = hub();
        renew(store.as_ref(), &alive, &hub, &alive_me)
            .await
            .unwrap();
        assert_eq!(alive.shards().len(), SHARDS as usize / 2);

        // Its leases have run out: the next renewal takes its shards, rather than keeping
        // them for an instance that has not been heard from for a whole lease.
        tokio::time::sleep(lease + Duration::from_millis(300)).await;
        renew(store.as_ref(), &alive, &hub, &alive_me)
            .await
            .unwrap();
        assert_eq!(alive.shards().len(), SHARDS as usize);
    }

    fn holding_api(lease: Duration) -> Cluster {
        let cluster = Cluster::new("me".into(), lease);
        let held: BTreeSet<u32> = [plan::shard_of("monitor", "api")].into();
        cluster.renewed(None, held, Instant::now());
        assert!(cluster.owns(&SourceKey::parse(SourceKind::Monitor, "api").unwrap()));
        cluster
    }

    #[test]
    fn a_store_that_stops_answering_is_known_before_the_lease_lapses() {
        // The next renewal starts a third of a lease after the last one and gives up after
        // the limit: both within the lease the last one got.
        for secs in [1, 2, 5, 30] {
            let c = Cluster::new("me".into(), Duration::from_secs(secs));
            assert!(c.lease / 3 + renewal_limit(&c) < c.lease, "{secs}s");
        }
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_keeps_the_monitors_and_wakes_them() {
        let lease = Duration::from_secs(1);
        let cluster = holding_api(lease);
        let mut changes = cluster.subscribe();
        changes.borrow_and_update();
        failed(
            &cluster,
            Instant::now(),
            &StoreError::Unavailable("down".into()),
        );
        // A monitor that stopped when its lease lapsed locally waits for a change.
        assert!(changes.has_changed().unwrap());
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        assert!(cluster.owns(&SourceKey::parse(SourceKind::Monitor, "api").unwrap()));
    }

    #[tokio::test]
    async fn a_renewal_overtaken_by_a_stall_keeps_nothing() {
        let lease = Duration::from_secs(1);
        let cluster = holding_api(lease);
        let started = Instant::now();
        // Stands for the process being stopped (SIGSTOP) during the renewal: another
        // instance may have taken the shard since.
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        failed(&cluster, started, &StoreError::Unavailable("reset".into()));
        assert!(!cluster.owns(&SourceKey::parse(SourceKind::Monitor, "api").unwrap()));
    }
}
