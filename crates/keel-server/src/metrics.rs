//! Counters for Prometheus `/metrics`, kept as atomics so the hot path (one increment per
//! check) never takes a lock. Rendered in the text exposition format by hand: the format is
//! tiny and stable, and a metrics crate would add a global registry we do not want.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use keel_core::{Health, SourceKind};

use crate::source_view::SourceView;

#[derive(Debug, Default)]
pub struct Metrics {
    checks: AtomicU64,
    check_failures: AtomicU64,
    vendor_polls: AtomicU64,
    vendor_unknown: AtomicU64,
    signals: AtomicU64,
    intake_alerts: AtomicU64,
    intake_unmapped: AtomicU64,
    intake_rejected: AtomicU64,
    persist_errors: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn observed(&self, kind: SourceKind, health: Health) {
        match kind {
            SourceKind::Monitor => {
                inc(&self.checks);
                if health.is_failing() {
                    inc(&self.check_failures);
                }
            }
            SourceKind::Vendor => {
                inc(&self.vendor_polls);
                if health == Health::Unknown {
                    inc(&self.vendor_unknown);
                }
            }
            SourceKind::Intake => inc(&self.intake_alerts),
        }
    }

    pub fn signal(&self) {
        inc(&self.signals);
    }

    pub fn intake_unmapped(&self, n: u64) {
        self.intake_unmapped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn intake_rejected(&self) {
        inc(&self.intake_rejected);
    }

    pub fn persist_error(&self) {
        inc(&self.persist_errors);
    }

    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// The text exposition of every counter and of each source's state.
    pub fn render(&self, sources: &[SourceView]) -> String {
        let mut out = String::new();
        let counters = [
            ("keel_checks_total", "Monitor checks run.", &self.checks),
            (
                "keel_check_failures_total",
                "Monitor checks that failed.",
                &self.check_failures,
            ),
            (
                "keel_vendor_polls_total",
                "Vendor status polls.",
                &self.vendor_polls,
            ),
            (
                "keel_vendor_unknown_total",
                "Vendor polls that were unreachable or malformed.",
                &self.vendor_unknown,
            ),
            (
                "keel_signals_total",
                "Confirmed state changes.",
                &self.signals,
            ),
            (
                "keel_intake_alerts_total",
                "Alerts received through intake and mapped to a component.",
                &self.intake_alerts,
            ),
            (
                "keel_intake_unmapped_total",
                "Alerts received that mapped to no component.",
                &self.intake_unmapped,
            ),
            (
                "keel_intake_rejected_total",
                "Intake requests refused as malformed.",
                &self.intake_rejected,
            ),
            (
                "keel_persist_errors_total",
                "Failed writes to the store (retried).",
                &self.persist_errors,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP keel_source_up 1 when the source is up, 0 when failing, -1 when unknown.\n# TYPE keel_source_up gauge");
        for s in sources {
            let v = match s.state {
                Health::Up => 1,
                Health::Degraded | Health::Down => 0,
                Health::Unknown => -1,
            };
            let _ = writeln!(
                out,
                "keel_source_up{{kind=\"{}\",id=\"{}\",component=\"{}\"}} {v}",
                s.key.kind(),
                escape(&s.key.id()),
                escape(s.component.as_str())
            );
        }
        let _ = writeln!(out, "# HELP keel_source_latency_seconds Latency of the source's last check.\n# TYPE keel_source_latency_seconds gauge");
        for s in sources {
            if let Some(ms) = s.latency_ms {
                let _ = writeln!(
                    out,
                    "keel_source_latency_seconds{{kind=\"{}\",id=\"{}\"}} {}",
                    s.key.kind(),
                    escape(&s.key.id()),
                    ms as f64 / 1000.0
                );
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Tasks alive in the tokio runtime serving this request: one per monitor, one per open
/// connection (served or pooled by the checks) and the jobs. A count that keeps climbing
/// under steady load is a task leak.
pub fn render_tasks() -> String {
    let n = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    format!(
        "# HELP keel_tokio_alive_tasks Tasks alive in Keel's async runtime.\n# TYPE keel_tokio_alive_tasks gauge\nkeel_tokio_alive_tasks {n}\n"
    )
}

/// `keel_open_incidents{severity}`: every severity listed, zero included, so alerts on it
/// have a series to watch from the start.
pub fn render_open_incidents(severities: &[Option<keel_core::assess::Severity>]) -> String {
    use keel_core::assess::Severity;
    let mut out = String::from(
        "# HELP keel_open_incidents Incidents not yet resolved, by severity.\n# TYPE keel_open_incidents gauge\n",
    );
    for s in [
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ] {
        let n = severities.iter().filter(|x| **x == Some(s)).count();
        let _ = writeln!(out, "keel_open_incidents{{severity=\"{s}\"}} {n}");
    }
    let n = severities.iter().filter(|x| x.is_none()).count();
    let _ = writeln!(out, "keel_open_incidents{{severity=\"none\"}} {n}");
    out
}
