//! The escalation engine's CPU per tick, in process: one pass of
//! `keel_core::escalation::plan` over every open incident, beside `keel_core::oncall::on_call`
//! alone for the same on-call lookups (the reference: what a pass costs that is only "who is
//! on call").
//!
//!     cargo run --release -p keel-server --example escalation_tick -- \
//!         [--people 1000] [--schedules 100] [--incidents 100] [--passes 2000]
//!     cargo run --release -p keel-server --example escalation_tick -- --print-team
//!
//! The team (also printed by `--print-team`, for `scripts/bench-paging`'s `keel serve`):
//! `--schedules` components, schedules and escalation policies (one of each per component),
//! `--people` people spread over the schedules (10 each by default), rotations of 8 h, 12 h,
//! 1 d, 2 d and 1 w in five time zones, each policy two levels (`0s`: the component's
//! schedule; `5m`: a person and the next schedule). In process, a few overrides are added as
//! the API would store them, and `--incidents` open SEV2 incidents, one per component.
//!
//! Two passes are timed, each over every incident (`policy_for` + `plan`, through the server's
//! own roster, `keel_server::paging::roster::TeamRoster`):
//! - "due": a minute after opening, nothing applied yet: each plan starts a cycle and pages
//!   level 1 (the busiest pass an incident sees);
//! - "steady": level 1 applied, level 2 not yet due: each plan finds nothing to do (what
//!   every one-second tick costs while incidents stay open).
//!
//! Bounded: `--passes` passes of each (and at most about 20 s in all).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use keel_core::assess::Severity;
use keel_core::config::{self, Config};
use keel_core::escalation::{self, Roster};
use keel_core::incident::{Actor, EventKind, Incident, IncidentEvent, Origin};
use keel_core::oncall::{self, Override};
use keel_core::NodeId;
use keel_server::paging::roster::TeamRoster;

const ROTATIONS: [&str; 5] = ["8h", "12h", "1d", "2d", "1w"];
const ZONES: [&str; 5] = [
    "UTC",
    "Asia/Tokyo",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
];
/// Per time budget, so a slow machine still stops by itself.
const BUDGET: Duration = Duration::from_secs(8);

struct Args {
    people: usize,
    schedules: usize,
    incidents: usize,
    passes: usize,
    print_team: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        people: 1000,
        schedules: 100,
        incidents: 100,
        passes: 2000,
        print_team: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--people" => a.people = value()?.parse().context("--people")?,
            "--schedules" => a.schedules = value()?.parse().context("--schedules")?,
            "--incidents" => a.incidents = value()?.parse().context("--incidents")?,
            "--passes" => a.passes = value()?.parse().context("--passes")?,
            "--print-team" => a.print_team = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.schedules == 0 || a.people < a.schedules || a.passes == 0 {
        bail!("need at least one schedule, at least one person per schedule, and one pass");
    }
    if a.incidents > a.schedules {
        bail!("--incidents: at most one per component (--schedules)");
    }
    Ok(a)
}

/// The components, people, schedules and escalation policies, as config TOML.
fn team(people: usize, schedules: usize) -> String {
    let mut t = String::new();
    for c in 0..schedules {
        let _ = writeln!(
            t,
            "[[component]]\nid = \"c{c:03}\"\nname = \"Component {c}\"\nusers = 1000\n"
        );
    }
    for p in 0..people {
        let _ = writeln!(
            t,
            "[[person]]\nid = \"p{p:04}\"\nname = \"Person {p}\"\ntimezone = \"{zone}\"\n\
             contacts = [ {{ kind = \"webhook\", url = \"http://127.0.0.1:9/page/p{p:04}\" }} ]\n",
            zone = ZONES[p % ZONES.len()],
        );
    }
    let per = people / schedules;
    for s in 0..schedules {
        let members: Vec<String> = (s * per..(s + 1) * per)
            .map(|p| format!("\"p{p:04}\""))
            .collect();
        let _ = writeln!(
            t,
            "[[schedule]]\nid = \"s{s:03}\"\npeople = [{members}]\nrotation = \"{rot}\"\n\
             start = \"2026-0{month}-0{day}T09:00:00+00:00\"\ntimezone = \"{zone}\"\n",
            members = members.join(", "),
            rot = ROTATIONS[s % ROTATIONS.len()],
            month = 1 + s % 9,
            day = 1 + s % 7,
            zone = ZONES[(s / ROTATIONS.len()) % ZONES.len()],
        );
    }
    for s in 0..schedules {
        let next = (s + 1) % schedules;
        let _ = writeln!(
            t,
            "[[escalation]]\nid = \"e{s:03}\"\ncomponents = [\"c{s:03}\"]\nmin_severity = \"SEV3\"\n\
             levels = [ {{ after = \"0s\", notify = [\"schedule:s{s:03}\"] }},\n\
             {{ after = \"5m\", notify = [\"person:p{p:04}\", \"schedule:s{next:03}\"] }} ]\n",
            p = next * per,
        );
    }
    t
}

/// A SEV2 incident on component `c`, opened at `at`.
fn incident(c: usize, at: DateTime<Utc>) -> anyhow::Result<Incident> {
    let id = c as i64 + 1;
    let component = NodeId::parse(format!("c{c:03}"))?;
    let events = [
        EventKind::Opened {
            title: format!("Component {c} is down"),
            origin: Origin::Detected,
            cause: Some(component.clone()),
            cause_kind: "component".into(),
            failure_kind: "http".into(),
            impacted: [component].into(),
            affected_users: 1000,
            reason: "monitor failing".into(),
            failing_since: at,
        },
        EventKind::SeverityChanged {
            from: None,
            to: Severity::Sev2,
            reason: "1000 users".into(),
        },
    ];
    let stamped: Vec<IncidentEvent> = events
        .into_iter()
        .zip(1..)
        .map(|(kind, seq)| IncidentEvent {
            incident: keel_core::incident::IncidentId(id),
            seq,
            at,
            actor: Actor::System,
            kind,
        })
        .collect();
    Ok(Incident::replay(&stamped)?)
}

/// One pass: every incident's policy and plan. Returns how many events were planned.
fn pass(config: &Config, roster: &dyn Roster, incidents: &[Incident], now: DateTime<Utc>) -> usize {
    incidents
        .iter()
        .filter_map(|i| escalation::policy_for(&config.escalations, i).map(|p| (i, p)))
        .map(|(i, p)| escalation::plan(i, p, roster, now).len())
        .sum()
}

/// Records the on-call lookups a pass makes, so the reference can repeat exactly those.
struct Recording<'a> {
    inner: &'a dyn Roster,
    asked: std::cell::RefCell<Vec<(String, DateTime<Utc>)>>,
}

impl Roster for Recording<'_> {
    fn on_call(&self, schedule: &str, at: DateTime<Utc>) -> Option<String> {
        self.asked.borrow_mut().push((schedule.to_owned(), at));
        self.inner.on_call(schedule, at)
    }
    fn person(&self, id: &str) -> Option<&config::Person> {
        self.inner.person(id)
    }
}

/// Runs `f` up to `passes` times (within [`BUDGET`]); the mean time per run and the count.
fn time<F: FnMut() -> usize>(passes: usize, mut f: F) -> (Duration, usize) {
    // Warm up caches and the allocator first.
    for _ in 0..passes.min(20) {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    let mut n = 0;
    while n < passes && start.elapsed() < BUDGET {
        std::hint::black_box(f());
        n += 1;
    }
    (start.elapsed() / n as u32, n)
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let team = team(args.people, args.schedules);
    if args.print_team {
        print!("{team}");
        return Ok(());
    }
    let text = format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"unused\"\n\n{team}");
    let config = config::parse(&text, "escalation_tick.toml", &[]).map_err(|d| {
        anyhow::anyhow!(
            "the generated config is refused: {}",
            d.iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;

    let now = Utc::now();
    let opened = now - TimeDelta::minutes(1);
    // A few overrides, as `POST /api/v1/oncall/overrides` stores them: someone covers the
    // current hour of every tenth schedule.
    let overrides: Vec<Override> = (0..args.schedules)
        .step_by(10)
        .zip(1..)
        .map(|(s, id)| Override {
            id,
            schedule: format!("s{s:03}"),
            person: format!(
                "p{:04}",
                (s * (args.people / args.schedules) + 3) % args.people
            ),
            start: now - TimeDelta::hours(1),
            end: now + TimeDelta::hours(1),
            created_by: "bench".into(),
            created_at: now - TimeDelta::hours(2),
        })
        .collect();
    let roster = TeamRoster::new(&config, overrides.clone());
    let core_overrides = overrides;

    let due: Vec<Incident> = (0..args.incidents)
        .map(|c| incident(c, opened))
        .collect::<anyhow::Result<_>>()?;
    // The same incidents with their due events applied: the steady state between levels.
    let steady: Vec<Incident> = due
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let policy = escalation::policy_for(&config.escalations, &i).context("no policy")?;
            for (at, kind) in escalation::plan(&i, policy, &roster, now) {
                let ev = IncidentEvent {
                    incident: i.id,
                    seq: i.last_seq + 1,
                    at,
                    actor: Actor::System,
                    kind,
                };
                i.apply(&ev)?;
            }
            Ok(i)
        })
        .collect::<anyhow::Result<_>>()?;

    let recording = Recording {
        inner: &roster,
        asked: Default::default(),
    };
    let planned_due = pass(&config, &recording, &due, now);
    let lookups = recording.asked.take();
    let planned_steady = pass(&config, &roster, &steady, now);
    if planned_due == 0 || planned_steady != 0 {
        bail!("unexpected plans: {planned_due} events when due (want > 0), {planned_steady} when steady (want 0)");
    }
    // The reference: the same lookups, straight to `oncall::on_call` with each schedule and
    // its overrides already at hand.
    let resolved: Vec<(&config::Schedule, Vec<Override>, DateTime<Utc>)> = lookups
        .iter()
        .map(|(s, at)| {
            let schedule = config
                .schedules
                .iter()
                .find(|x| &x.id == s)
                .context("schedule")?;
            let own = core_overrides
                .iter()
                .filter(|o| &o.schedule == s)
                .cloned()
                .collect();
            Ok((schedule, own, *at))
        })
        .collect::<anyhow::Result<_>>()?;

    let (t_due, n_due) = time(args.passes, || pass(&config, &roster, &due, now));
    let (t_steady, n_steady) = time(args.passes, || pass(&config, &roster, &steady, now));
    let (t_ref, n_ref) = time(args.passes, || {
        resolved
            .iter()
            .filter(|(s, o, at)| oncall::on_call(s, o, *at).is_some())
            .count()
    });

    let n = args.incidents.max(1) as u32;
    println!(
        "{} people, {} schedules, {} escalation policies, {} overrides, {} open SEV2 incidents; \
         a \"due\" pass plans {planned_due} events and makes {} on-call lookups.",
        config.people.len(),
        config.schedules.len(),
        config.escalations.len(),
        core_overrides.len(),
        args.incidents,
        lookups.len(),
    );
    println!();
    println!("| pass | passes timed | per pass | per incident |");
    println!("|---|---:|---:|---:|");
    println!(
        "| `plan` over every incident, level 1 due (starts a cycle, pages) | {n_due} | {} | {} |",
        micros(t_due),
        micros(t_due / n)
    );
    println!(
        "| `plan` over every incident, steady (nothing due: every other tick) | {n_steady} | {} | {} |",
        micros(t_steady),
        micros(t_steady / n)
    );
    println!(
        "| reference: `oncall::on_call` alone, the due pass's {} lookups | {n_ref} | {} | {} |",
        lookups.len(),
        micros(t_ref),
        micros(t_ref / n)
    );
    Ok(())
}
