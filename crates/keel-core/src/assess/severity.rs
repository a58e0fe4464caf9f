//! Severity rules: from impact to SEV1–SEV4, with the rule that decided in words.
//!
//! The rules (documented under `[severity]` in docs/config.md) apply in order: the share of
//! users sets a base; an impacted high or critical component raises it to a floor; an
//! incident impacting no public component is capped; a vendor-caused one may be capped. The
//! last rule that changed the severity is the reason, naming what it overrode, so the
//! timeline says why an incident is SEV3 and not SEV2.

use crate::config::SeverityConfig;

use super::model::{Criticality, Impact, NodeKind, Severity, SeverityDecision};

/// The severity of an incident with `impact`, caused by a node of kind `cause`.
pub fn severity(impact: &Impact, cause: NodeKind, rules: &SeverityConfig) -> SeverityDecision {
    let share = impact.user_share;
    let affected = format!("{} of users affected", percent(share));
    let thresholds = [
        (rules.sev1_user_share, Severity::Sev1),
        (rules.sev2_user_share, Severity::Sev2),
        (rules.sev3_user_share, Severity::Sev3),
    ];
    let (mut sev, mut reason, mut why) = match thresholds.iter().find(|(from, _)| share >= *from) {
        Some(&(from, s)) => (
            s,
            format!("{affected} ({s} from {})", percent(from)),
            affected,
        ),
        None => (
            Severity::Sev4,
            format!("{affected} (SEV4 below {})", percent(rules.sev3_user_share)),
            affected,
        ),
    };

    // Severity orders SEV1 first, so "at least" is `min` and "at most" is `max`.
    let floor = match impact.criticality {
        Criticality::Critical => Some(("a critical component is impacted", rules.critical_min)),
        Criticality::High => Some(("a high-criticality component is impacted", rules.high_min)),
        Criticality::Normal | Criticality::Low => None,
    };
    if let Some((rule, min)) = floor {
        if min < sev {
            reason = format!("{rule}: at least {min} (otherwise {sev}: {why})");
            (sev, why) = (min, rule.to_owned());
        }
    }

    let mut caps = Vec::new();
    if impact.public_components.is_empty() {
        caps.push(("no public component is impacted", rules.internal_max));
    }
    if let (NodeKind::Vendor, Some(max)) = (cause, rules.vendor_max) {
        caps.push(("the cause is a vendor", max));
    }
    for (rule, max) in caps {
        if max > sev {
            reason = format!("capped at {max}: {rule} (otherwise {sev}: {why})");
            (sev, why) = (max, rule.to_owned());
        }
    }

    SeverityDecision {
        severity: sev,
        reason,
    }
}

/// A share as a percentage: "38%", "0.4%", "<0.1%" for a sliver, "0%" for none. Truncated
/// rather than rounded, so a share just below a threshold never reads as the threshold.
fn percent(share: f64) -> String {
    // The epsilon keeps 0.29 (0.28999…) from showing as 28.9%.
    let permille = (share * 1000.0 + 1e-9).floor();
    if share > 0.0 && permille < 1.0 {
        return "<0.1%".to_owned();
    }
    // A share is within 0..=1, so this is 0..=1000.
    let permille = permille.clamp(0.0, 1000.0) as u32;
    if permille.is_multiple_of(10) {
        format!("{}%", permille / 10)
    } else {
        format!("{}.{}%", permille / 10, permille % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages() {
        assert_eq!(percent(0.38), "38%");
        assert_eq!(percent(0.2), "20%");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.29), "29%");
        assert_eq!(percent(0.004), "0.4%");
        assert_eq!(percent(0.19999), "19.9%");
        assert_eq!(percent(0.00001), "<0.1%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "100%");
    }
}
