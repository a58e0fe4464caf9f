//! Incident facts in readable English: durations ("4m 12s"), user counts ("15,000"), ETAs
//! and one line per timeline event.
//!
//! The postmortem, the CLI and the API's timeline all show events the same way, so the
//! wording lives in one place. These words are for responders (internal): they may name
//! vendors and hosts. Public texts are drafted elsewhere and pass the disclosure check.

use std::time::Duration;

use super::model::{EventKind, Origin};
use super::state::Incident;
use crate::assess::Eta;
use crate::human::thousands;
use crate::ids::NodeId;

/// "42s", "4m 12s", "2h 5m", "3d 4h": precise where it matters, short where it does not.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    // The largest unit and the next one down; "5m" reads better than "5m 0s".
    let (big, small) = if days > 0 {
        ((days, "d"), (hours, "h"))
    } else if hours > 0 {
        ((hours, "h"), (mins, "m"))
    } else if mins > 0 {
        ((mins, "m"), (s, "s"))
    } else {
        return format!("{s}s");
    };
    if small.0 == 0 {
        format!("{}{}", big.0, big.1)
    } else {
        format!("{}{} {}{}", big.0, big.1, small.0, small.1)
    }
}

/// The duration between two times, or `None` when `to` is before `from`.
pub fn between(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    (to - from).to_std().ok()
}

/// An ETA with its basis, in English: "similar incidents: 6, usually 12–40 min",
/// "no history yet", "payments says: major outage".
pub fn eta(eta: &Eta) -> String {
    crate::assess::describe_eta(eta, "en")
}

/// One line for a timeline event. `inc` is the incident the event belongs to (for the
/// text of a ticked step); the wording does not depend on when `inc` was folded.
pub fn describe(kind: &EventKind, inc: &Incident) -> String {
    match kind {
        EventKind::Opened {
            title,
            origin,
            cause,
            reason,
            impacted,
            affected_users,
            ..
        } => {
            let how = match (origin, cause) {
                (Origin::Detected, Some(cause)) => format!("detected, caused by {cause}"),
                (Origin::Detected, None) => "detected".to_string(),
                (Origin::Declared, _) => "declared by hand".to_string(),
            };
            format!(
                "Opened \"{title}\" ({how}): {reason}. Impacted: {}; about {} users",
                list(impacted.iter()),
                thousands(*affected_users)
            )
        }
        EventKind::Signal {
            source,
            component,
            health,
            reason,
        } => format!("Signal: {source} ({component}) is {health}: {reason}"),
        EventKind::ImpactChanged {
            impacted,
            affected_users,
        } => format!(
            "Impact changed: {} impacted, about {} users",
            list(impacted.iter()),
            thousands(*affected_users)
        ),
        EventKind::SeverityChanged { from, to, reason } => match from {
            Some(from) => format!("Severity {from} → {to}: {reason}"),
            None => format!("Severity set to {to}: {reason}"),
        },
        EventKind::StateChanged { from, to, reason } => format!("{from} → {to}: {reason}"),
        EventKind::Reopened {
            recurrences,
            reason,
        } => format!("Reopened (recurrence {recurrences}): {reason}"),
        EventKind::EtaChanged { eta: e } => format!("ETA: {}", eta(e)),
        EventKind::Prompt { text } => format!("Reminder: {text}"),
        EventKind::Note { text } => format!("Note: {text}"),
        EventKind::Acknowledged { via } => match via {
            Some(via) => format!("Acknowledged via {via}"),
            None => "Acknowledged".to_string(),
        },
        EventKind::EscalationStarted {
            cycle,
            policy,
            reason,
        } => {
            if *cycle == 1 {
                format!("Escalation started (policy {policy}): {reason}")
            } else {
                format!("Escalation cycle {cycle} started (policy {policy}): {reason}")
            }
        }
        EventKind::Paged {
            round,
            level,
            person,
            name,
            target,
            contacts,
            ..
        } => {
            let who = if name.is_empty() { person } else { name };
            let by = if contacts.is_empty() {
                "no contact".to_string()
            } else {
                contacts.join(", ")
            };
            format!(
                "Paged {who} ({target}) by {by} — {}",
                level_words(*round, *level)
            )
        }
        EventKind::PageSkipped {
            round,
            level,
            person,
            name,
            reason,
            ..
        } => {
            let who = if name.is_empty() { person } else { name };
            if who.is_empty() {
                format!("Level {level} skipped: {reason}{}", round_words(*round))
            } else {
                format!("{who} skipped: {reason} — {}", level_words(*round, *level))
            }
        }
        EventKind::EscalationExhausted { reason, .. } => format!("Escalation exhausted: {reason}"),
        EventKind::RoleAssigned { role, person } => format!("{person} is now {role}"),
        EventKind::Checklist { steps } => match steps.len() {
            1 => "Runbook checklist: 1 step".to_string(),
            n => format!("Runbook checklist: {n} steps"),
        },
        EventKind::StepTicked { step } => {
            match step.checked_sub(1).and_then(|i| inc.checklist.get(i)) {
                Some(entry) => format!("Step {step} done: {}", entry.text),
                None => format!("Step {step} done"),
            }
        }
        EventKind::ActionItemAdded { item, text, owner } => match owner {
            Some(owner) => format!("Action item {item} added for {owner}: {text}"),
            None => format!("Action item {item} added: {text}"),
        },
        EventKind::ActionItemClosed { item } => {
            match inc.action_items.iter().find(|a| a.id == *item) {
                Some(entry) => format!("Action item {item} closed: {}", entry.text),
                None => format!("Action item {item} closed"),
            }
        }
        EventKind::RootCause { text } => format!("Root cause written: {text}"),
        EventKind::Recovered { reason } => format!("Recovered: {reason}"),
        EventKind::Relapsed { health, reason } => format!("Relapsed ({health}): {reason}"),
        EventKind::CauseChanged { cause, reason, .. } => {
            format!("The cause is now {cause}: {reason}")
        }
        EventKind::DraftPrepared {
            draft,
            status,
            body,
            due_at,
            ..
        } => format!(
            "Draft {draft} ({}) prepared, published automatically at {} UTC unless a \
             responder acts: {}",
            public_status(*status),
            due_at.format("%H:%M:%S"),
            body.get("en")
        ),
        EventKind::DraftHeld { draft } => {
            format!("Draft {draft} held: it will not be published automatically")
        }
        EventKind::UpdatePublished {
            update,
            status,
            body,
            draft,
            auto,
            disclosure_override,
            ..
        } => {
            let how = match (draft, auto) {
                (Some(d), true) => format!(" automatically (draft {d})"),
                (Some(d), false) => format!(" (draft {d})"),
                (None, _) => String::new(),
            };
            let overridden = disclosure_override
                .as_ref()
                .map(|r| format!(" [disclosure check overridden: {r}]"))
                .unwrap_or_default();
            format!(
                "Update {update} ({}) published{how}{overridden}: {}",
                public_status(*status),
                body.get("en")
            )
        }
    }
}

/// "level 2", or "level 2, round 3" after the first round.
fn level_words(round: u32, level: u32) -> String {
    format!("level {level}{}", round_words(round))
}

fn round_words(round: u32) -> String {
    if round > 1 {
        format!(", round {round}")
    } else {
        String::new()
    }
}

/// A public status as Statuspage and the page write it.
pub fn public_status(status: crate::public::PublicStatus) -> &'static str {
    use crate::public::PublicStatus;
    match status {
        PublicStatus::Investigating => "investigating",
        PublicStatus::Identified => "identified",
        PublicStatus::Monitoring => "monitoring",
        PublicStatus::Resolved => "resolved",
    }
}

fn list<'a>(items: impl Iterator<Item = &'a NodeId>) -> String {
    let items: Vec<&str> = items.map(NodeId::as_str).collect();
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        let d = |s| duration(Duration::from_secs(s));
        assert_eq!(d(0), "0s");
        assert_eq!(d(42), "42s");
        assert_eq!(d(252), "4m 12s");
        assert_eq!(d(300), "5m");
        assert_eq!(d(3600 + 5 * 60 + 7), "1h 5m");
        assert_eq!(d(7200), "2h");
        assert_eq!(d(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(d(86_400), "1d");
    }

    #[test]
    fn etas_state_their_basis() {
        assert_eq!(
            eta(&Eta::History {
                samples: 6,
                p50_minutes: 12,
                p90_minutes: 40
            }),
            "similar incidents: 6, usually 12–40 min"
        );
        assert_eq!(eta(&Eta::NoHistory), "no history yet");
        assert_eq!(
            eta(&Eta::Vendor {
                vendor: "payments".into(),
                status: "major outage".into()
            }),
            "payments says: major outage"
        );
    }
}
