//! ETA from history: how long incidents with the same cause and kind of failure lasted.
//!
//! Keel does not guess. With history it states the median and the 90th percentile, with
//! how many incidents that rests on; without, it says there is none. (A vendor-caused
//! incident's ETA is the vendor's own word, [`Eta::Vendor`], built by the caller from the
//! vendor's status.)

use super::model::{Eta, PastIncident};
use crate::ids::NodeId;

/// The median and 90th percentile (nearest rank) duration of past incidents with the same
/// `cause` and `failure_kind`, in whole minutes rounded up (at least 1).
pub fn estimate_eta(cause: &NodeId, failure_kind: &str, history: &[PastIncident]) -> Eta {
    let mut secs: Vec<u64> = history
        .iter()
        .filter(|p| &p.cause == cause && p.failure_kind == failure_kind)
        .map(|p| p.duration_secs)
        .collect();
    if secs.is_empty() {
        return Eta::NoHistory;
    }
    secs.sort_unstable();
    Eta::History {
        samples: secs.len(),
        p50_minutes: minutes(nearest_rank(&secs, 50)),
        p90_minutes: minutes(nearest_rank(&secs, 90)),
    }
}

/// The value at rank ⌈p/100 · n⌉ of a sorted, non-empty list.
fn nearest_rank(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn minutes(secs: u64) -> u64 {
    secs.div_ceil(60).max(1)
}

/// The ETA in words, with its basis: "similar incidents: 6, usually 12–40 min",
/// "no history yet", or the vendor's own status. Japanese for `ja`.
pub fn describe_eta(eta: &Eta, locale: &str) -> String {
    let ja = locale == "ja" || locale.starts_with("ja-") || locale.starts_with("ja_");
    match (eta, ja) {
        (Eta::Vendor { vendor, status }, false) => format!("{vendor} says: {status}"),
        (Eta::Vendor { vendor, status }, true) => format!("{vendor}の発表: {status}"),
        (Eta::NoHistory, false) => "no history yet".to_owned(),
        (Eta::NoHistory, true) => "まだ履歴がありません".to_owned(),
        (
            Eta::History {
                samples,
                p50_minutes,
                p90_minutes,
            },
            false,
        ) => {
            let span = span(*p50_minutes, *p90_minutes, false);
            if *samples == 1 {
                format!("similar incidents: 1, which took {span}")
            } else {
                format!("similar incidents: {samples}, usually {span}")
            }
        }
        (
            Eta::History {
                samples,
                p50_minutes,
                p90_minutes,
            },
            true,
        ) => {
            let span = span(*p50_minutes, *p90_minutes, true);
            if *samples == 1 {
                format!("類似のインシデント: 1件（{span}で復旧）")
            } else {
                format!("類似のインシデント: {samples}件（通常{span}）")
            }
        }
    }
}

/// "12–40 min", "12 min", "90 min–3 h"; hours past two hours, days past two days.
fn span(from: u64, to: u64, ja: bool) -> String {
    let unit = |m: u64| -> (u64, &'static str) {
        match (m, ja) {
            (0..120, false) => (m, "min"),
            (0..120, true) => (m, "分"),
            (120..2880, false) => (m.div_ceil(60), "h"),
            (120..2880, true) => (m.div_ceil(60), "時間"),
            (_, false) => (m.div_ceil(1440), "days"),
            (_, true) => (m.div_ceil(1440), "日"),
        }
    };
    let sep = if ja { "" } else { " " };
    let ((a, ua), (b, ub)) = (unit(from), unit(to));
    if a == b && ua == ub {
        format!("{a}{sep}{ua}")
    } else if ua == ub {
        format!("{a}–{b}{sep}{ua}")
    } else {
        format!("{a}{sep}{ua}–{b}{sep}{ub}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_ranks() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(nearest_rank(&v, 50), 5);
        assert_eq!(nearest_rank(&v, 90), 9);
        assert_eq!(nearest_rank(&[7], 50), 7);
        assert_eq!(nearest_rank(&[7], 90), 7);
        assert_eq!(nearest_rank(&[1, 2], 50), 1);
        assert_eq!(nearest_rank(&[1, 2], 90), 2);
    }

    #[test]
    fn spans() {
        assert_eq!(span(12, 40, false), "12–40 min");
        assert_eq!(span(12, 12, false), "12 min");
        assert_eq!(span(90, 180, false), "90 min–3 h");
        assert_eq!(span(180, 4320, false), "3 h–3 days");
        assert_eq!(span(12, 40, true), "12–40分");
    }
}
