//! Responder commands: what a person may do to an incident, decided as new events or refused
//! with a reason the API can show as it is.
//!
//! `decide` is the only door for people (API, CLI, chat): it checks the command against the
//! folded incident and answers with the events to append, so the timeline never holds an
//! action that was not allowed when it was taken. The engine has its own door (`engine.rs`)
//! because Keel itself may do what people may not, such as reopening a resolved incident.

use super::model::{EventKind, IncidentRole, IncidentState};
use super::state::Incident;
use crate::assess::Severity;
use crate::config::LocalizedText;
use crate::public::{Finding, PublicStatus};

/// Longest note, root cause or action item, in characters: a paragraph or a pasted log
/// excerpt fits, an accidental file upload does not.
pub const TEXT_MAX_CHARS: usize = 10_000;

/// Longest person or owner name, in characters.
pub const NAME_MAX_CHARS: usize = 200;

/// The ways an acknowledgement can arrive, as recorded in `Acknowledged.via`.
pub const ACK_VIA: &[&str] = &["api", "cli", "console", "link", "voice", "chat"];

/// What a responder asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `via`: how, one of [`ACK_VIA`] ("api", "cli", "console", "link", "voice", "chat").
    Acknowledge {
        via: Option<String>,
    },
    /// An internal note on the timeline.
    Note {
        text: String,
    },
    AssignRole {
        role: IncidentRole,
        person: String,
    },
    /// Tick a checklist step, counted from 1.
    TickStep {
        step: usize,
    },
    /// Move between states by hand; an empty reason is recorded as "changed by a responder".
    ChangeState {
        to: IncidentState,
        reason: String,
    },
    Resolve {
        reason: String,
    },
    AddActionItem {
        text: String,
        owner: Option<String>,
    },
    CloseActionItem {
        item: u32,
    },
    SetRootCause {
        text: String,
    },
    SetSeverity {
        severity: Severity,
        reason: String,
    },
    /// Publish Keel's draft as it is: the responder's one action.
    ///
    /// This and the two below are public: decide them with
    /// [`crate::public::Publisher::decide`], which runs the disclosure check.
    PublishDraft {
        draft: u32,
    },
    /// Keep a pending draft from being published automatically.
    HoldDraft {
        draft: u32,
    },
    /// Publish the responder's own text. Locales the body (or title) leaves out are filled
    /// from Keel's draft for that status; no title keeps the incident's public title.
    PublishUpdate {
        status: PublicStatus,
        body: LocalizedText,
        title: Option<LocalizedText>,
        /// Publish although the disclosure check refuses the text: an admin only, and the
        /// reason goes on the timeline.
        override_reason: Option<String>,
    },
}

/// Why a command was refused: the request field at fault and a reason for the person who
/// sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Refusal {
    pub field: &'static str,
    pub reason: String,
    /// Set when the disclosure check refused a public text: the offending term and why.
    pub disclosure: Option<Finding>,
}

impl Refusal {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            field,
            reason: reason.into(),
            disclosure: None,
        }
    }
}

/// Decides a responder's command against the incident as it is now.
///
/// The events returned are to be appended in order, by the responder, at the time of the
/// request. A command that would change nothing (acknowledging twice, the same state again)
/// is refused rather than recorded, so the timeline only holds what happened.
pub fn decide(inc: &Incident, cmd: Command) -> Result<Vec<EventKind>, Refusal> {
    let resolved = inc.state == IncidentState::Resolved;
    let event = match cmd {
        Command::Acknowledge { via } => {
            if let Some((by, at)) = inc.acknowledgement() {
                let by = if by.is_empty() {
                    "someone"
                } else {
                    by.as_str()
                };
                return Err(Refusal::new(
                    "incident",
                    format!(
                        "already acknowledged by {by} at {}",
                        at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                ));
            }
            if let Some(v) = &via {
                if !ACK_VIA.contains(&v.as_str()) {
                    return Err(Refusal::new(
                        "via",
                        format!("unknown way {v:?}: expected one of {}", ACK_VIA.join(", ")),
                    ));
                }
            }
            if resolved {
                return Err(Refusal::new(
                    "incident",
                    "the incident is resolved: there is nothing left to acknowledge",
                ));
            }
            EventKind::Acknowledged { via }
        }
        Command::Note { text } => EventKind::Note {
            text: text_field("text", &text, TEXT_MAX_CHARS)?,
        },
        Command::AssignRole { role, person } => {
            let person = text_field("person", &person, NAME_MAX_CHARS)?;
            if inc.roles.get(&role) == Some(&person) {
                return Err(Refusal::new(
                    "person",
                    format!("{person} is already the {role}"),
                ));
            }
            EventKind::RoleAssigned { role, person }
        }
        Command::TickStep { step } => {
            if step == 0 {
                return Err(Refusal::new("step", "steps are counted from 1"));
            }
            let Some(entry) = inc.checklist.get(step - 1) else {
                let reason = match inc.checklist.len() {
                    0 => format!("step {step} does not exist: the incident has no checklist"),
                    1 => format!("step {step} does not exist: the checklist has 1 step"),
                    n => format!("step {step} does not exist: the checklist has {n} steps"),
                };
                return Err(Refusal::new("step", reason));
            };
            if entry.done_at.is_some() {
                let by = entry.done_by.as_deref().unwrap_or("someone");
                return Err(Refusal::new(
                    "step",
                    format!("step {step} is already ticked (by {by})"),
                ));
            }
            EventKind::StepTicked { step }
        }
        Command::ChangeState { to, reason } => {
            let reason = optional_reason(&reason, "changed by a responder")?;
            transition(inc, to, reason, "to")?
        }
        Command::Resolve { reason } => {
            let reason = optional_reason(&reason, "resolved by a responder")?;
            transition(inc, IncidentState::Resolved, reason, "state")?
        }
        Command::AddActionItem { text, owner } => {
            let text = text_field("text", &text, TEXT_MAX_CHARS)?;
            let owner = match owner {
                Some(owner) if owner.trim().is_empty() => {
                    return Err(Refusal::new(
                        "owner",
                        "must not be empty: leave it out for an item nobody owns yet",
                    ));
                }
                Some(owner) => Some(text_field("owner", &owner, NAME_MAX_CHARS)?),
                None => None,
            };
            EventKind::ActionItemAdded {
                item: inc.action_items.len() as u32 + 1,
                text,
                owner,
            }
        }
        Command::CloseActionItem { item } => {
            let Some(entry) = inc.action_items.iter().find(|a| a.id == item) else {
                let reason = match inc.action_items.len() {
                    0 => format!("action item {item} does not exist: the incident has none"),
                    1 => format!("action item {item} does not exist: the incident has 1"),
                    n => format!("action item {item} does not exist: the incident has {n}"),
                };
                return Err(Refusal::new("item", reason));
            };
            if entry.closed_at.is_some() {
                return Err(Refusal::new(
                    "item",
                    format!("action item {item} is already closed"),
                ));
            }
            EventKind::ActionItemClosed { item }
        }
        Command::SetRootCause { text } => EventKind::RootCause {
            text: text_field("text", &text, TEXT_MAX_CHARS)?,
        },
        Command::PublishDraft { .. }
        | Command::HoldDraft { .. }
        | Command::PublishUpdate { .. } => {
            return Err(Refusal::new(
                "incident",
                "public updates are decided by keel_core::public::Publisher::decide, which \
                 runs the disclosure check",
            ));
        }
        Command::SetSeverity { severity, reason } => {
            if inc.severity == Some(severity) {
                return Err(Refusal::new(
                    "severity",
                    format!("the severity is already {severity}"),
                ));
            }
            EventKind::SeverityChanged {
                from: inc.severity,
                to: severity,
                reason: optional_reason(&reason, "set by a responder")?,
            }
        }
    };
    Ok(vec![event])
}

/// Which states a responder may move an incident to by hand: any unresolved state to any
/// other, and to resolved. Nothing leaves resolved by hand — Keel reopens a resolved incident
/// itself when its cause relapses, which keeps the recurrence count honest.
pub fn allowed_by_hand(from: IncidentState, to: IncidentState) -> bool {
    from != to && from != IncidentState::Resolved
}

/// `field` is the request field that named the target state ("to"), or "state" when the
/// verb itself did (resolve).
fn transition(
    inc: &Incident,
    to: IncidentState,
    reason: String,
    field: &'static str,
) -> Result<EventKind, Refusal> {
    let from = inc.state;
    if from == to {
        return Err(Refusal::new(field, format!("the incident is already {to}")));
    }
    if !allowed_by_hand(from, to) {
        return Err(Refusal::new(
            "to",
            format!(
                "cannot move a resolved incident to {to}: reopen happens automatically on relapse"
            ),
        ));
    }
    Ok(EventKind::StateChanged { from, to, reason })
}

/// A required free-text field: trimmed, not empty, not too long.
pub(crate) fn text_field(field: &'static str, value: &str, max: usize) -> Result<String, Refusal> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Refusal::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(Refusal::new(
            field,
            format!("must be at most {max} characters (it has {chars})"),
        ));
    }
    Ok(value.to_string())
}

/// An optional reason: blank gets the default wording.
fn optional_reason(value: &str, default: &str) -> Result<String, Refusal> {
    if value.trim().is_empty() {
        Ok(default.to_string())
    } else {
        text_field("reason", value, TEXT_MAX_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::NodeKind;
    use crate::incident::testkit::{cause, seeing, t, Book};
    use crate::incident::IncidentId;
    use IncidentState::*;

    /// A book with one detected db incident (3-step checklist), id 1.
    fn book() -> (Book, IncidentId) {
        let mut book = Book::default();
        book.run(
            &seeing(vec![cause("db", NodeKind::Component, &["db", "api"], t(0))]),
            t(1),
        );
        (book, IncidentId(1))
    }

    fn refusal(book: &Book, id: IncidentId, cmd: Command) -> (String, String) {
        let r = decide(book.get(id), cmd).unwrap_err();
        (r.field.to_string(), r.reason)
    }

    fn pair(field: &str, reason: &str) -> (String, String) {
        (field.to_string(), reason.to_string())
    }

    fn state(to: IncidentState) -> Command {
        Command::ChangeState {
            to,
            reason: String::new(),
        }
    }

    #[test]
    fn every_hand_transition_between_unresolved_states_is_allowed() {
        for from in [Investigating, Identified, Monitoring] {
            for to in [Investigating, Identified, Monitoring, Resolved] {
                assert_eq!(allowed_by_hand(from, to), from != to, "{from} → {to}");
            }
            for to in [Investigating, Identified, Monitoring] {
                assert!(!allowed_by_hand(Resolved, to));
            }
        }
        let (mut book, id) = book();
        book.command(id, "a", state(Identified), t(2)).unwrap();
        book.command(id, "a", state(Monitoring), t(3)).unwrap();
        book.command(id, "a", state(Identified), t(4)).unwrap();
        book.command(id, "a", state(Investigating), t(5)).unwrap();
        book.command(id, "a", state(Monitoring), t(6)).unwrap();
        book.command(id, "a", state(Investigating), t(7)).unwrap();
        let last = book.events[&id].last().unwrap();
        assert_eq!(
            last.kind,
            EventKind::StateChanged {
                from: Monitoring,
                to: Investigating,
                reason: "changed by a responder".into()
            }
        );
        assert_eq!(last.actor, crate::incident::Actor::User("a".into()));
    }

    #[test]
    fn the_same_state_again_is_refused() {
        let (book, id) = book();
        assert_eq!(
            refusal(&book, id, state(Investigating)),
            pair("to", "the incident is already investigating")
        );
    }

    #[test]
    fn nothing_leaves_resolved_by_hand() {
        let (mut book, id) = book();
        book.command(
            id,
            "a",
            Command::Resolve {
                reason: "fixed".into(),
            },
            t(2),
        )
        .unwrap();
        assert_eq!(book.get(id).state, Resolved);
        assert_eq!(
            refusal(&book, id, state(Identified)),
            pair(
                "to",
                "cannot move a resolved incident to identified: reopen happens automatically on relapse"
            )
        );
        assert_eq!(
            refusal(
                &book,
                id,
                Command::Resolve {
                    reason: String::new()
                }
            ),
            pair("state", "the incident is already resolved")
        );
        assert_eq!(
            refusal(&book, id, Command::Acknowledge { via: None }),
            pair(
                "incident",
                "the incident is resolved: there is nothing left to acknowledge"
            )
        );
    }

    #[test]
    fn resolve_and_change_state_to_resolved_are_the_same() {
        let (book, id) = book();
        let a = decide(book.get(id), Command::Resolve { reason: " ".into() }).unwrap();
        let b = decide(book.get(id), state(Resolved)).unwrap();
        assert_eq!(
            a,
            vec![EventKind::StateChanged {
                from: Investigating,
                to: Resolved,
                reason: "resolved by a responder".into()
            }]
        );
        assert!(matches!(
            &b[0],
            EventKind::StateChanged { to: Resolved, .. }
        ));
    }

    #[test]
    fn acknowledging_twice_is_refused_with_who_and_when() {
        let (mut book, id) = book();
        book.command(id, "alice", Command::Acknowledge { via: None }, t(2))
            .unwrap();
        assert_eq!(
            refusal(&book, id, Command::Acknowledge { via: None }),
            pair(
                "incident",
                "already acknowledged by alice at 2026-03-01 09:02:00 UTC"
            )
        );
    }

    #[test]
    fn free_text_must_not_be_empty_or_huge() {
        let (book, id) = book();
        for cmd in [
            Command::Note { text: "  ".into() },
            Command::SetRootCause {
                text: String::new(),
            },
            Command::AddActionItem {
                text: "\n".into(),
                owner: None,
            },
        ] {
            assert_eq!(refusal(&book, id, cmd), pair("text", "must not be empty"));
        }
        let huge = "x".repeat(TEXT_MAX_CHARS + 1);
        assert_eq!(
            refusal(&book, id, Command::Note { text: huge }),
            pair("text", "must be at most 10000 characters (it has 10001)")
        );
        assert_eq!(
            refusal(
                &book,
                id,
                Command::AssignRole {
                    role: IncidentRole::Commander,
                    person: " ".into()
                }
            ),
            pair("person", "must not be empty")
        );
        assert_eq!(
            refusal(
                &book,
                id,
                Command::AddActionItem {
                    text: "add replica".into(),
                    owner: Some("".into())
                }
            ),
            pair(
                "owner",
                "must not be empty: leave it out for an item nobody owns yet"
            )
        );
        assert_eq!(
            refusal(
                &book,
                id,
                Command::ChangeState {
                    to: Identified,
                    reason: "y".repeat(TEXT_MAX_CHARS + 5)
                }
            ),
            pair("reason", "must be at most 10000 characters (it has 10005)")
        );
    }

    #[test]
    fn text_is_trimmed() {
        let (book, id) = book();
        assert_eq!(
            decide(
                book.get(id),
                Command::Note {
                    text: "  restarted db \n".into()
                }
            )
            .unwrap(),
            vec![EventKind::Note {
                text: "restarted db".into()
            }]
        );
    }

    #[test]
    fn roles_are_assigned_and_reassigned_but_not_repeated() {
        let (mut book, id) = book();
        let assign = |person: &str| Command::AssignRole {
            role: IncidentRole::Commander,
            person: person.into(),
        };
        book.command(id, "a", assign("alice"), t(2)).unwrap();
        assert_eq!(
            refusal(&book, id, assign("alice")),
            pair("person", "alice is already the commander")
        );
        book.command(id, "a", assign("bob"), t(3)).unwrap();
        assert_eq!(book.get(id).roles[&IncidentRole::Commander], "bob");
    }

    #[test]
    fn steps_must_exist_and_be_ticked_once() {
        let (mut book, id) = book();
        assert_eq!(book.get(id).checklist.len(), 3);
        assert_eq!(
            refusal(&book, id, Command::TickStep { step: 7 }),
            pair("step", "step 7 does not exist: the checklist has 3 steps")
        );
        assert_eq!(
            refusal(&book, id, Command::TickStep { step: 0 }),
            pair("step", "steps are counted from 1")
        );
        book.command(id, "dave", Command::TickStep { step: 2 }, t(2))
            .unwrap();
        assert_eq!(
            refusal(&book, id, Command::TickStep { step: 2 }),
            pair("step", "step 2 is already ticked (by dave)")
        );
        // An incident without a runbook has no checklist at all.
        let mut other = Book::default();
        other.run(
            &seeing(vec![cause("mail", NodeKind::Component, &["mail"], t(0))]),
            t(1),
        );
        assert_eq!(
            refusal(&other, IncidentId(1), Command::TickStep { step: 1 }),
            pair(
                "step",
                "step 1 does not exist: the incident has no checklist"
            )
        );
    }

    #[test]
    fn action_items_are_numbered_and_closed_once() {
        let (mut book, id) = book();
        assert_eq!(
            refusal(&book, id, Command::CloseActionItem { item: 1 }),
            pair(
                "item",
                "action item 1 does not exist: the incident has none"
            )
        );
        let add = |text: &str, owner: Option<&str>| Command::AddActionItem {
            text: text.into(),
            owner: owner.map(str::to_string),
        };
        book.command(id, "a", add("add a replica", Some(" erin ")), t(2))
            .unwrap();
        book.command(id, "a", add("alert on replication lag", None), t(2))
            .unwrap();
        let items = &book.get(id).action_items;
        assert_eq!((items[0].id, items[1].id), (1, 2));
        assert_eq!(items[0].owner.as_deref(), Some("erin"));
        assert_eq!(
            refusal(&book, id, Command::CloseActionItem { item: 4 }),
            pair("item", "action item 4 does not exist: the incident has 2")
        );
        book.command(id, "a", Command::CloseActionItem { item: 2 }, t(3))
            .unwrap();
        assert_eq!(
            refusal(&book, id, Command::CloseActionItem { item: 2 }),
            pair("item", "action item 2 is already closed")
        );
    }

    #[test]
    fn learning_goes_on_after_resolution() {
        let (mut book, id) = book();
        book.command(
            id,
            "a",
            Command::Resolve {
                reason: "done".into(),
            },
            t(2),
        )
        .unwrap();
        book.command(
            id,
            "a",
            Command::Note {
                text: "review on Monday".into(),
            },
            t(3),
        )
        .unwrap();
        book.command(
            id,
            "a",
            Command::SetRootCause {
                text: "disk full".into(),
            },
            t(3),
        )
        .unwrap();
        book.command(
            id,
            "a",
            Command::AddActionItem {
                text: "alert on disk".into(),
                owner: None,
            },
            t(3),
        )
        .unwrap();
        book.command(id, "a", Command::CloseActionItem { item: 1 }, t(4))
            .unwrap();
        book.command(
            id,
            "a",
            Command::SetSeverity {
                severity: Severity::Sev4,
                reason: "reviewed".into(),
            },
            t(4),
        )
        .unwrap();
        let inc = book.get(id);
        assert_eq!(inc.root_cause.as_deref(), Some("disk full"));
        assert_eq!(inc.notes, 1);
        assert_eq!(inc.severity, Some(Severity::Sev4));
    }

    #[test]
    fn severity_by_hand_must_change_it() {
        let (mut book, id) = book();
        let current = book.get(id).severity.unwrap();
        assert_eq!(
            refusal(
                &book,
                id,
                Command::SetSeverity {
                    severity: current,
                    reason: String::new()
                }
            ),
            pair("severity", &format!("the severity is already {current}"))
        );
        book.command(
            id,
            "a",
            Command::SetSeverity {
                severity: Severity::Sev4,
                reason: String::new(),
            },
            t(2),
        )
        .unwrap();
        let inc = book.get(id);
        assert!(inc.severity_by_hand);
        assert_eq!(inc.severity_reason.as_deref(), Some("set by a responder"));
    }

    #[test]
    fn public_commands_need_the_publisher() {
        let (book, id) = book();
        let (field, reason) = refusal(&book, id, Command::PublishDraft { draft: 1 });
        assert_eq!(field, "incident");
        assert!(reason.contains("Publisher::decide"), "{reason}");
    }

    #[test]
    fn refusals_read_as_field_and_reason() {
        assert_eq!(
            Refusal::new("text", "must not be empty").to_string(),
            "text: must not be empty"
        );
    }
}
