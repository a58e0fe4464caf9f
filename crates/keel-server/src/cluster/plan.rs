//! Which shards an instance should hold: pure, so every instance computes the same answer
//! from the same list of live instances.
//!
//! Monitors and vendor polls are hashed into a fixed number of shards; each shard is a lease.
//! With n live instances each one aims for 64/n shards (the first 64 mod n, by id, one more),
//! releases what it holds beyond that and claims free ones up to it, so a joining instance
//! gets its share within a couple of renewals and a dead one's shards are claimed as soon as
//! its leases expire.

use std::collections::BTreeSet;

use keel_core::SourceKey;

/// Shards the sources are spread over. Fixed: changing it would move every monitor at once.
pub const SHARDS: u32 = 64;

/// The lease name of a shard.
pub fn lease_name(shard: u32) -> String {
    format!("shard:{shard:02}")
}

/// The shard a lease name stands for.
pub fn shard_of_lease(name: &str) -> Option<u32> {
    name.strip_prefix("shard:")?
        .parse()
        .ok()
        .filter(|s| *s < SHARDS)
}

/// The shard of a source, by a stable hash (FNV-1a) of its kind and id: the same on every
/// instance, every build and every platform.
pub fn shard_of(kind: &str, id: &str) -> u32 {
    fnv_shard([kind, "/", id])
}

/// [`shard_of`] a source key, without formatting its id: the check path asks once per check.
pub fn shard_of_key(key: &SourceKey) -> u32 {
    let [a, b, c] = key.id_parts();
    fnv_shard([key.kind().as_str(), "/", a, b, c])
}

fn fnv_shard<const N: usize>(pieces: [&str; N]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in pieces.iter().flat_map(|p| p.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// How many shards `me` should hold among `live` instances (ids, any order). An instance not
/// in the list (it has not registered yet) counts as one more.
pub fn target(live: &[String], me: &str) -> u32 {
    let mut ids: Vec<&str> = live.iter().map(String::as_str).collect();
    if !ids.contains(&me) {
        ids.push(me);
    }
    ids.sort_unstable();
    ids.dedup();
    let n = u32::try_from(ids.len()).unwrap_or(u32::MAX).max(1);
    let rank = u32::try_from(ids.iter().position(|i| *i == me).unwrap_or(0)).unwrap_or(0);
    SHARDS / n + u32::from(rank < SHARDS % n)
}

/// What to ask the store for on one renewal: the shards to keep (renewed) and the free ones
/// to try, and the ones to let go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub claim: BTreeSet<u32>,
    pub release: BTreeSet<u32>,
}

/// Keeps up to `target` of `held` (the lowest numbers, so instances agree which ones move),
/// and tries `free` ones (not held by anyone live) up to the target.
pub fn plan(held: &BTreeSet<u32>, free: &BTreeSet<u32>, target: u32) -> Plan {
    let target = target as usize;
    let keep: BTreeSet<u32> = held.iter().copied().take(target).collect();
    let release: BTreeSet<u32> = held.difference(&keep).copied().collect();
    let want = target.saturating_sub(keep.len());
    let mut claim = keep;
    claim.extend(
        free.iter()
            .filter(|s| !held.contains(s))
            .copied()
            .take(want),
    );
    Plan { claim, release }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_hashes_to_the_shard_of_its_id_text() {
        for text in ["api", "api@osaka", "m-9999@eu-west-1"] {
            let key = SourceKey::parse(keel_core::SourceKind::Monitor, text).unwrap();
            assert_eq!(shard_of_key(&key), shard_of("monitor", text), "{text}");
        }
        let vendor = SourceKey::parse(keel_core::SourceKind::Vendor, "stripe").unwrap();
        assert_eq!(shard_of_key(&vendor), shard_of("vendor", "stripe"));
        let intake =
            SourceKey::parse(keel_core::SourceKind::Intake, "alertmanager/db down").unwrap();
        assert_eq!(
            shard_of_key(&intake),
            shard_of("intake", "alertmanager/db down")
        );
        // Pinned (FNV-1a of "monitor/api" mod 64): a changed hash would move every source to
        // another shard at an upgrade, while older instances still hold the old ones.
        assert_eq!(shard_of("monitor", "api"), 6);
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i{i}")).collect()
    }

    #[test]
    fn targets_add_up_to_every_shard() {
        for n in 1..=10 {
            let live = ids(n);
            let sum: u32 = live.iter().map(|me| target(&live, me)).sum();
            assert_eq!(sum, SHARDS, "{n} instances");
        }
    }

    #[test]
    fn an_unregistered_instance_counts_itself() {
        assert_eq!(target(&[], "a"), SHARDS);
        assert_eq!(target(&["a".into()], "b"), SHARDS / 2);
    }

    #[test]
    fn hash_is_stable_and_spreads() {
        // Pinned: a different value would move monitors between instances on an upgrade.
        assert_eq!(shard_of("monitor", "api"), shard_of("monitor", "api"));
        assert_eq!(shard_of("monitor", "api"), 6);
        let mut seen = BTreeSet::new();
        for i in 0..1000 {
            seen.insert(shard_of("monitor", &format!("m{i}")));
        }
        assert_eq!(seen.len(), SHARDS as usize);
    }

    #[test]
    fn plan_releases_extras_and_claims_up_to_target() {
        let held: BTreeSet<u32> = (0..40).collect();
        let free: BTreeSet<u32> = (40..64).collect();
        let p = plan(&held, &free, 32);
        assert_eq!(p.claim, (0..32).collect());
        assert_eq!(p.release, (32..40).collect());
        let p = plan(&(0..10).collect(), &free, 32);
        assert_eq!(p.claim.len(), 32);
        assert!(p.release.is_empty());
    }

    #[test]
    fn lease_names_round_trip() {
        for s in 0..SHARDS {
            assert_eq!(shard_of_lease(&lease_name(s)), Some(s));
        }
        assert_eq!(shard_of_lease("shard:99"), None);
        assert_eq!(shard_of_lease("leader"), None);
    }
}
