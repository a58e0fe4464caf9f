//! The postmortem: what happened, to whom, how fast the team saw and fixed it, and what will
//! keep it from happening again — generated from the timeline, as Markdown for people and
//! JSON for tools.
//!
//! Everything in it is a fact from the events, except the root-cause section, which only
//! people can write: until they do, the postmortem says so instead of guessing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::model::{IncidentEvent, Origin};
use super::state::Incident;
use super::words;
use crate::human;
use crate::ids::NodeId;

/// A generated postmortem in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Postmortem {
    pub json: Value,
    pub markdown: String,
}

/// Until responders write one.
const ROOT_CAUSE_PLACEHOLDER: &str = "Not written yet. Responders: say what failed, why it \
failed, and why it was not caught sooner, then add action items to prevent it.";

/// No customer update went public (an internal incident, or nobody published).
const NO_PUBLIC_UPDATE: &str = "no public update";

/// Builds the postmortem of `inc` from its `events` (its full timeline, in order).
/// `history` holds earlier incidents with the same cause, for the recurrence history; `now`
/// stands in for the end of an incident that is not resolved yet.
pub fn postmortem(
    inc: &Incident,
    events: &[IncidentEvent],
    history: &[Incident],
    now: DateTime<Utc>,
) -> Postmortem {
    let facts = Facts::gather(inc, events, history, now);
    Postmortem {
        json: facts.json(),
        markdown: facts.markdown(),
    }
}

/// One of the five timings: a duration, or why there is none.
struct Timing {
    label: &'static str,
    key: &'static str,
    value: Result<Duration, &'static str>,
}

impl Timing {
    fn text(&self) -> String {
        match self.value {
            Ok(d) => words::duration(d),
            Err(why) => why.to_string(),
        }
    }
}

struct Line {
    seq: u32,
    at: DateTime<Utc>,
    actor: String,
    kind: &'static str,
    what: String,
}

struct Reopening {
    at: DateTime<Utc>,
    recurrence: u32,
    reason: String,
}

struct Facts<'a> {
    inc: &'a Incident,
    now: DateTime<Utc>,
    user_minutes: u64,
    timings: Vec<Timing>,
    timeline: Vec<Line>,
    reopenings: Vec<Reopening>,
    earlier: Vec<&'a Incident>,
}

impl<'a> Facts<'a> {
    fn gather(
        inc: &'a Incident,
        events: &[IncidentEvent],
        history: &'a [Incident],
        now: DateTime<Utc>,
    ) -> Self {
        let since_start = |at: Option<DateTime<Utc>>, missing: &'static str| {
            at.map_or(Err(missing), |at| {
                Ok(words::between(inc.started_at, at).unwrap_or_default())
            })
        };
        let detect = if inc.origin == Origin::Declared {
            Err("declared by hand")
        } else {
            Ok(words::between(inc.failing_since, inc.started_at).unwrap_or_default())
        };
        let timings = vec![
            Timing {
                label: "Time to detect",
                key: "time_to_detect",
                value: detect,
            },
            Timing {
                label: "Time to acknowledge",
                key: "time_to_acknowledge",
                value: since_start(inc.acknowledged_at, "not acknowledged"),
            },
            Timing {
                label: "Time to first public update",
                key: "time_to_first_public_update",
                value: since_start(inc.first_public_update_at, NO_PUBLIC_UPDATE),
            },
            Timing {
                label: "Time to mitigate",
                key: "time_to_mitigate",
                value: since_start(inc.mitigated_at, "not mitigated yet"),
            },
            Timing {
                label: "Time to resolve",
                key: "time_to_resolve",
                value: since_start(inc.resolved_at, "not resolved yet"),
            },
        ];
        let timeline = events
            .iter()
            .map(|e| Line {
                seq: e.seq,
                at: e.at,
                actor: e.actor.to_string(),
                kind: e.kind.name(),
                what: words::describe(&e.kind, inc),
            })
            .collect();
        let reopenings = events
            .iter()
            .filter_map(|e| match &e.kind {
                super::model::EventKind::Reopened {
                    recurrences,
                    reason,
                } => Some(Reopening {
                    at: e.at,
                    recurrence: *recurrences,
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut earlier: Vec<&Incident> = history
            .iter()
            .filter(|h| h.id != inc.id && h.started_at <= inc.started_at)
            .collect();
        earlier.sort_by_key(|h| (h.started_at, h.id));
        Facts {
            inc,
            now,
            user_minutes: inc.user_minutes(now),
            timings,
            timeline,
            reopenings,
            earlier,
        }
    }

    fn lasted(&self) -> Duration {
        let end = self.inc.resolved_at.unwrap_or(self.now);
        words::between(self.inc.started_at, end).unwrap_or_default()
    }

    fn cause_words(&self) -> String {
        let inc = self.inc;
        match (&inc.cause, inc.origin) {
            (Some(cause), _) => format!(
                "caused by {cause} ({}, {} failure)",
                inc.cause_kind, inc.failure_kind
            ),
            (None, Origin::Declared) => "declared by hand".to_string(),
            (None, Origin::Detected) => "cause unknown".to_string(),
        }
    }

    fn summary(&self) -> String {
        let inc = self.inc;
        let severity = inc
            .severity
            .map_or("Unrated".to_string(), |s| s.to_string());
        let lasted = words::duration(self.lasted());
        let how_long = if inc.is_resolved() {
            format!("It lasted {lasted} and is resolved.")
        } else {
            format!("It has lasted {lasted} so far and is {}.", inc.state)
        };
        let mut text = format!(
            "{severity} incident #{} \"{}\", {}. Impacted: {}; about {} users, {} \
             user-minutes. {how_long}",
            inc.id,
            inc.title,
            self.cause_words(),
            join_or(&inc.impacted, "no component"),
            human::thousands(inc.affected_users),
            human::thousands(self.user_minutes),
        );
        match inc.recurrences {
            0 => {}
            1 => text.push_str(" It came back once after being resolved."),
            n => text.push_str(&format!(" It came back {n} times after being resolved.")),
        }
        if !self.earlier.is_empty() {
            text.push_str(&format!(
                " The same cause led to {} earlier incident{}.",
                self.earlier.len(),
                if self.earlier.len() == 1 { "" } else { "s" }
            ));
        }
        text
    }

    fn json(&self) -> Value {
        let inc = self.inc;
        let timings: serde_json::Map<String, Value> = self
            .timings
            .iter()
            .map(|t| {
                (
                    t.key.to_string(),
                    json!({
                        "secs": t.value.ok().map(|d| d.as_secs()),
                        "text": t.text(),
                    }),
                )
            })
            .collect();
        json!({
            "incident": inc.id,
            "title": inc.title,
            "state": inc.state,
            "severity": inc.severity,
            "origin": inc.origin,
            "cause": inc.cause,
            "cause_kind": inc.cause_kind,
            "failure_kind": inc.failure_kind,
            "recurring": inc.recurring,
            "recurrences": inc.recurrences,
            "summary": self.summary(),
            "impact": {
                "components": inc.impacted,
                "affected_users": inc.affected_users,
                "user_minutes": self.user_minutes,
            },
            "times": {
                "failing_since": inc.failing_since,
                "started_at": inc.started_at,
                "acknowledged_at": inc.acknowledged_at,
                "first_public_update_at": inc.first_public_update_at,
                "mitigated_at": inc.mitigated_at,
                "resolved_at": inc.resolved_at,
            },
            "timings": timings,
            "public_updates": inc.updates.iter().map(|u| json!({
                "update": u.id,
                "at": u.published_at,
                "by": u.published_by,
                "status": u.status,
                "automatic": u.auto,
                "title": u.title,
                "body": u.body,
                "disclosure_override": u.disclosure_override,
            })).collect::<Vec<_>>(),
            "timeline": self.timeline.iter().map(|l| json!({
                "seq": l.seq,
                "at": l.at,
                "actor": l.actor,
                "type": l.kind,
                "what": l.what,
            })).collect::<Vec<_>>(),
            "recurrence_history": {
                "reopenings": self.reopenings.iter().map(|r| json!({
                    "at": r.at,
                    "recurrence": r.recurrence,
                    "reason": r.reason,
                })).collect::<Vec<_>>(),
                "earlier_incidents": self.earlier.iter().map(|h| json!({
                    "incident": h.id,
                    "title": h.title,
                    "started_at": h.started_at,
                    "resolved_at": h.resolved_at,
                    "duration_secs": h.resolved_at
                        .and_then(|at| words::between(h.started_at, at))
                        .map(|d| d.as_secs()),
                    "recurrences": h.recurrences,
                })).collect::<Vec<_>>(),
            },
            "root_cause": {
                "text": inc.root_cause,
                "placeholder": inc.root_cause.is_none().then_some(ROOT_CAUSE_PLACEHOLDER),
            },
            "checklist": inc.checklist.iter().enumerate().map(|(i, s)| json!({
                "step": i + 1,
                "text": s.text,
                "done_at": s.done_at,
                "done_by": s.done_by,
            })).collect::<Vec<_>>(),
            "roles": inc.roles,
            "action_items": inc.action_items.iter().map(|a| json!({
                "id": a.id,
                "text": a.text,
                "owner": a.owner,
                "status": if a.closed_at.is_some() { "closed" } else { "open" },
                "created_at": a.created_at,
                "closed_at": a.closed_at,
            })).collect::<Vec<_>>(),
            "generated_at": self.now,
        })
    }

    fn markdown(&self) -> String {
        let inc = self.inc;
        let mut md = String::new();
        let mut line = |s: &str| {
            md.push_str(s);
            md.push('\n');
        };
        line(&format!(
            "# Postmortem: #{} {}",
            inc.id,
            one_line(&inc.title)
        ));
        line("");
        let severity = inc
            .severity
            .map_or("unrated".to_string(), |s| s.to_string());
        let mut status = format!("**{severity}** · {} · {}", inc.state, self.cause_words());
        if inc.recurring {
            let times = match inc.recurrences {
                1 => "once".to_string(),
                n => format!("{n} times"),
            };
            status.push_str(&format!(" · recurring (came back {times})"));
        }
        line(&status);
        line("");
        line("## Summary");
        line("");
        line(&one_line(&self.summary()));
        line("");
        line("## Impact");
        line("");
        line(&format!(
            "- Components: {}",
            join_or(&inc.impacted, "none recorded")
        ));
        line(&format!(
            "- Users affected: about {}",
            human::thousands(inc.affected_users)
        ));
        line(&format!(
            "- User-minutes: {}",
            human::thousands(self.user_minutes)
        ));
        line("");
        line("## Timings");
        line("");
        line("| | |");
        line("|---|---|");
        for t in &self.timings {
            line(&format!("| {} | {} |", t.label, t.text()));
        }
        line("");
        line(&format!(
            "Cause failing since {}; incident opened {}; {}.",
            stamp(inc.failing_since),
            stamp(inc.started_at),
            inc.resolved_at
                .map_or("not resolved yet".to_string(), |at| format!(
                    "resolved {}",
                    stamp(at)
                ))
        ));
        line("");
        line("## What customers were told");
        line("");
        if inc.updates.is_empty() {
            line("No customer update was published.");
        }
        for u in &inc.updates {
            let how = if u.auto {
                " (published automatically)".to_string()
            } else {
                format!(" (published by {})", one_line(&u.published_by))
            };
            let overridden = u
                .disclosure_override
                .as_ref()
                .map(|r| format!(" — disclosure check overridden: {}", one_line(r)))
                .unwrap_or_default();
            line(&format!(
                "- {} · {}{how}{overridden}: {}",
                stamp(u.published_at),
                words::public_status(u.status),
                one_line(u.body.get("en"))
            ));
        }
        line("");
        line("## Timeline");
        line("");
        line("| Time (UTC) | Who | What |");
        line("|---|---|---|");
        for l in &self.timeline {
            line(&format!(
                "| {} | {} | {} |",
                stamp(l.at),
                cell(&l.actor),
                cell(&l.what)
            ));
        }
        line("");
        line("## Recurrence history");
        line("");
        if self.reopenings.is_empty() && self.earlier.is_empty() {
            line("No recurrence: this cause has not caused an incident before, and this one did not come back.");
        }
        for r in &self.reopenings {
            line(&format!(
                "- {}: reopened (recurrence {}): {}",
                stamp(r.at),
                r.recurrence,
                one_line(&r.reason)
            ));
        }
        for h in &self.earlier {
            let lasted = h
                .resolved_at
                .and_then(|at| words::between(h.started_at, at))
                .map_or("not resolved".to_string(), |d| {
                    format!("lasted {}", words::duration(d))
                });
            line(&format!(
                "- Earlier incident #{} \"{}\", {}, {lasted}{}",
                h.id,
                one_line(&h.title),
                stamp(h.started_at),
                if h.recurrences > 0 {
                    format!(", came back {} times", h.recurrences)
                } else {
                    String::new()
                }
            ));
        }
        line("");
        line("## Root cause");
        line("");
        line(inc.root_cause.as_deref().unwrap_or(ROOT_CAUSE_PLACEHOLDER));
        line("");
        if !inc.checklist.is_empty() {
            line("## Runbook checklist");
            line("");
            for (i, s) in inc.checklist.iter().enumerate() {
                let done = match (&s.done_at, &s.done_by) {
                    (Some(at), by) => format!(
                        " — done by {} at {}",
                        by.as_deref().unwrap_or("someone"),
                        stamp(*at)
                    ),
                    (None, _) => String::new(),
                };
                let mark = if s.done_at.is_some() { "x" } else { " " };
                line(&format!(
                    "- [{mark}] {}. {}{done}",
                    i + 1,
                    one_line(&s.text)
                ));
            }
            line("");
        }
        line("## Action items");
        line("");
        if inc.action_items.is_empty() {
            line("None yet. Add what would prevent this from happening again.");
        } else {
            line("| # | Action | Owner | Status |");
            line("|---|---|---|---|");
            for a in &inc.action_items {
                let status = a
                    .closed_at
                    .map_or("open".to_string(), |at| format!("closed {}", stamp(at)));
                line(&format!(
                    "| {} | {} | {} | {status} |",
                    a.id,
                    cell(&a.text),
                    cell(a.owner.as_deref().unwrap_or("unassigned"))
                ));
            }
        }
        md
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Free text inside a Markdown table cell: a `|` or a line break would end the cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Free text on one Markdown line: a line break could start a heading or a list.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join_or(items: &std::collections::BTreeSet<NodeId>, none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items
            .iter()
            .map(NodeId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::NodeKind;
    use crate::incident::decide::Command;
    use crate::incident::testkit::{cause, seeing, t, Book};
    use crate::incident::IncidentId;
    use crate::incident::{Actor, IncidentRole, IncidentState};

    /// db fails at -2, opened at 0, acknowledged at 3, green at 10, resolved at 15, reopened
    /// at 40, green at 45, resolved at 50.
    fn story() -> Book {
        let mut book = Book::default();
        let db = |since| cause("db", NodeKind::Component, &["db", "api"], since);
        book.run(&seeing(vec![db(t(-2))]), t(0));
        book.command(1, "alice", Command::Acknowledge { via: None }, t(3))
            .unwrap();
        book.command(
            1,
            "alice",
            Command::AssignRole {
                role: IncidentRole::Commander,
                person: "alice".into(),
            },
            t(3),
        )
        .unwrap();
        book.command(1, "bob", Command::TickStep { step: 1 }, t(4))
            .unwrap();
        book.command(
            1,
            "bob",
            Command::Note {
                text: "primary | disk\nfull".into(),
            },
            t(5),
        )
        .unwrap();
        book.run(&seeing(vec![]), t(10));
        book.run(&seeing(vec![]), t(15));
        book.run(&seeing(vec![db(t(40))]), t(40));
        book.run(&seeing(vec![]), t(45));
        book.run(&seeing(vec![]), t(50));
        book.command(
            1,
            "alice",
            Command::AddActionItem {
                text: "Alert on disk usage".into(),
                owner: Some("bob".into()),
            },
            t(60),
        )
        .unwrap();
        book.command(
            1,
            "alice",
            Command::AddActionItem {
                text: "Grow the volume".into(),
                owner: None,
            },
            t(60),
        )
        .unwrap();
        book.command(1, "bob", Command::CloseActionItem { item: 2 }, t(70))
            .unwrap();
        book
    }

    #[test]
    fn the_postmortem_holds_every_fact_in_json() {
        let book = story();
        let inc = book.get(1);
        assert_eq!(inc.state, IncidentState::Resolved);
        let pm = postmortem(inc, &book.events[&IncidentId(1)], &[], t(80));
        let j = &pm.json;
        assert_eq!(j["incident"], 1);
        assert_eq!(j["severity"], "SEV1");
        assert_eq!(j["state"], "resolved");
        assert_eq!(j["recurrences"], 1);
        assert_eq!(j["impact"]["components"], json!(["api", "db"]));
        assert_eq!(j["impact"]["affected_users"], 6000);
        // Investigating 0–10 and 40–45: 15 minutes × 6000 users.
        assert_eq!(j["impact"]["user_minutes"], 90_000);
        let timing = |k: &str| {
            (
                j["timings"][k]["secs"].clone(),
                j["timings"][k]["text"].clone(),
            )
        };
        assert_eq!(timing("time_to_detect"), (json!(120), json!("2m")));
        assert_eq!(timing("time_to_acknowledge"), (json!(180), json!("3m")));
        assert_eq!(
            timing("time_to_first_public_update"),
            (Value::Null, json!("no public update"))
        );
        assert_eq!(timing("time_to_mitigate"), (json!(600), json!("10m")));
        assert_eq!(timing("time_to_resolve"), (json!(3000), json!("50m")));
        let timeline = j["timeline"].as_array().unwrap();
        assert_eq!(timeline.len(), book.events[&IncidentId(1)].len());
        assert_eq!(timeline[0]["type"], "opened");
        assert_eq!(timeline[0]["actor"], "keel");
        assert!(timeline
            .iter()
            .any(|l| l["what"] == "Step 1 done: Check the primary" && l["actor"] == "bob"));
        let reopenings = j["recurrence_history"]["reopenings"].as_array().unwrap();
        assert_eq!(reopenings.len(), 1);
        assert_eq!(reopenings[0]["recurrence"], 1);
        assert_eq!(j["root_cause"]["text"], Value::Null);
        assert!(j["root_cause"]["placeholder"]
            .as_str()
            .unwrap()
            .starts_with("Not written yet"));
        let items = j["action_items"].as_array().unwrap();
        assert_eq!(items[0]["owner"], "bob");
        assert_eq!(items[0]["status"], "open");
        assert_eq!(items[1]["owner"], Value::Null);
        assert_eq!(items[1]["status"], "closed");
        assert_eq!(j["roles"]["commander"], "alice");
        assert_eq!(j["checklist"][0]["done_by"], "bob");
    }

    #[test]
    fn the_markdown_reads_as_a_report() {
        let book = story();
        let inc = book.get(1);
        let earlier = {
            let mut old = Book::default();
            old.run(
                &seeing(vec![cause("db", NodeKind::Component, &["db"], t(-500))]),
                t(-500),
            );
            old.run(&seeing(vec![]), t(-480));
            old.run(&seeing(vec![]), t(-470));
            let mut inc = old.get(1).clone();
            inc.id = IncidentId(0);
            inc
        };
        let md = postmortem(inc, &book.events[&IncidentId(1)], &[earlier], t(80)).markdown;
        for expected in [
            "# Postmortem: #1 db is down",
            "**SEV1** · resolved · caused by db (component, tcp failure) · recurring (came back once)",
            "## Summary",
            "Impacted: api, db; about 6,000 users, 90,000 user-minutes. It lasted 50m and is resolved. It came back once after being resolved. The same cause led to 1 earlier incident.",
            "- User-minutes: 90,000",
            "| Time to detect | 2m |",
            "| Time to acknowledge | 3m |",
            "| Time to first public update | no public update |",
            "| Time to mitigate | 10m |",
            "| Time to resolve | 50m |",
            "| 2026-03-01 09:05:00 | bob | Note: primary \\| disk full |",
            "reopened (recurrence 1): db is down again 25m after it was resolved",
            "- Earlier incident #0 \"db is down\", 2026-03-01 00:40:00, lasted 30m",
            "## Root cause\n\nNot written yet.",
            "- [x] 1. Check the primary — done by bob at 2026-03-01 09:04:00",
            "- [ ] 2. Fail over to the replica",
            "| 1 | Alert on disk usage | bob | open |",
            "| 2 | Grow the volume | unassigned | closed 2026-03-01 10:10:00 |",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
        }
    }

    #[test]
    fn what_customers_were_told_and_how_soon() {
        let mut book = story();
        let update = |n: u32, by: Actor, auto: bool, minute: i64, book: &mut Book| {
            book.append(
                IncidentId(1),
                t(minute),
                vec![(
                    by,
                    crate::incident::EventKind::UpdatePublished {
                        update: n,
                        status: crate::public::PublicStatus::Investigating,
                        title: crate::config::LocalizedText::plain("Problem affecting Search"),
                        body: crate::config::LocalizedText::plain(format!("Update {n} | text")),
                        draft: None,
                        auto,
                        disclosure_override: (!auto).then(|| "approved by legal".to_string()),
                    },
                )],
            );
        };
        update(1, Actor::System, true, 90, &mut book);
        update(2, Actor::User("ana".into()), false, 95, &mut book);
        let inc = book.get(1);
        let pm = postmortem(inc, &book.events[&IncidentId(1)], &[], t(100));
        // Opened at 0, first update at 90.
        assert_eq!(
            pm.json["timings"]["time_to_first_public_update"]["text"],
            "1h 30m"
        );
        assert_eq!(pm.json["public_updates"].as_array().map(Vec::len), Some(2));
        assert_eq!(pm.json["public_updates"][1]["by"], "ana");
        for expected in [
            "## What customers were told",
            "| Time to first public update | 1h 30m |",
            "- 2026-03-01 10:30:00 · investigating (published automatically): Update 1 | text",
            "- 2026-03-01 10:35:00 · investigating (published by ana) — disclosure check overridden: approved by legal: Update 2 | text",
        ] {
            assert!(pm.markdown.contains(expected), "missing {expected:?} in:\n{}", pm.markdown);
        }
    }

    #[test]
    fn an_open_declared_incident_says_what_is_not_known_yet() {
        let mut book = Book::default();
        let events = crate::incident::declare(
            "Power cut",
            &crate::incident::testkit::set(&["web"]),
            &crate::incident::testkit::TestJudge::new(),
            t(0),
            crate::incident::Actor::User("alice".into()),
        )
        .unwrap();
        book.apply(vec![crate::incident::Planned::Open { events }], t(0));
        book.command(
            1,
            "alice",
            Command::SetRootCause {
                text: "The UPS failed its self-test.".into(),
            },
            t(1),
        )
        .unwrap();
        let pm = postmortem(book.get(1), &book.events[&IncidentId(1)], &[], t(20));
        let j = &pm.json;
        assert_eq!(j["timings"]["time_to_detect"]["text"], "declared by hand");
        assert_eq!(
            j["timings"]["time_to_acknowledge"]["text"],
            "not acknowledged"
        );
        assert_eq!(j["timings"]["time_to_resolve"]["secs"], Value::Null);
        assert_eq!(j["impact"]["user_minutes"], 80_000);
        assert_eq!(j["root_cause"]["placeholder"], Value::Null);
        let md = &pm.markdown;
        assert!(md.contains("declared by hand"), "{md}");
        assert!(
            md.contains("It has lasted 20m so far and is investigating."),
            "{md}"
        );
        assert!(
            md.contains("## Root cause\n\nThe UPS failed its self-test."),
            "{md}"
        );
        assert!(md.contains("No recurrence"), "{md}");
        assert!(md.contains("None yet. Add what would prevent"), "{md}");
    }
}
