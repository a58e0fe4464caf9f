//! The result of one run and the two Markdown tables `docs/benchmarks.md` shows: one row per
//! run for Keel (against the reference loops), and one row per reference loop.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bare::{self, ClientKind, Connections, Pace};

/// Everything one `run` measured. Written as JSON by `run --json`, read back by `table`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub monitors: u64,
    pub interval_secs: f64,
    /// Keel's run time before the window (older result files lack it: one interval).
    #[serde(default)]
    pub warmup_secs: Option<f64>,
    pub duration_secs: f64,
    pub clk_tck: u64,
    /// Keel: checks and failures counted by its own `/metrics` over the window.
    pub checks: f64,
    pub failures: f64,
    pub elapsed_secs: f64,
    pub keel_cpu_ticks: u64,
    /// Keel's CPU from its start to the window's: start-up and warm-up work.
    #[serde(default)]
    pub warmup_cpu_ticks: Option<u64>,
    /// Keel's CPU in each 10 s slice of the warm-up, in % of one core.
    #[serde(default)]
    pub warmup_ramp: Vec<f64>,
    pub peak_rss_kib: u64,
    /// Keel's resident set at the end of the window (older result files lack it).
    #[serde(default)]
    pub rss_kib: Option<u64>,
    pub storage_growth_bytes: i64,
    /// CPU used on the machine beside Keel during its window (the target included), in cores.
    pub other_load_cores: f64,
    pub bare: Vec<bare::Report>,
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$}"),
        None => "–".to_string(),
    }
}

pub fn human(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs_f64(secs.max(0.0).round())).to_string()
}

impl RunResult {
    pub fn keel_cpu_secs(&self) -> f64 {
        self.keel_cpu_ticks as f64 / self.clk_tck as f64
    }

    pub fn checks_per_sec(&self) -> f64 {
        self.checks / self.elapsed_secs
    }

    /// Keel's CPU per check in µs, with the half-width of its uncertainty: each tick reading
    /// truncates utime and stime, so a difference of two readings is good to ±2 ticks.
    pub fn keel_us_per_check(&self) -> Option<(f64, f64)> {
        (self.checks > 0.0).then(|| {
            let per = self.keel_cpu_secs() * 1e6 / self.checks;
            let err = 2.0 / self.clk_tck as f64 * 1e6 / self.checks;
            (per, err)
        })
    }

    /// The first report of that kind with requests in it.
    fn bare_us(&self, client: ClientKind, conn: Connections, flat: bool) -> Option<f64> {
        self.bare
            .iter()
            .find(|r| {
                r.client == client
                    && r.connections == conn
                    && matches!(r.pace, Pace::FlatOut(_)) == flat
                    && r.requests > 0
            })
            .map(|r| r.cpu_us_per_request)
    }

    /// The reference Keel is held to: reqwest, pooled, at Keel's rate.
    pub fn reference_us(&self) -> Option<f64> {
        self.bare_us(ClientKind::Reqwest, Connections::Pooled, false)
    }

    /// The floor: reqwest, pooled, flat out.
    pub fn floor_us(&self) -> Option<f64> {
        self.bare_us(ClientKind::Reqwest, Connections::Pooled, true)
    }

    /// Keel's CPU per check divided by `us`.
    fn keel_over(&self, us: Option<f64>) -> Option<f64> {
        let (keel, _) = self.keel_us_per_check()?;
        us.filter(|&u| u > 0.0).map(|u| keel / u)
    }

    /// The row of the Keel table; columns as in [`KEEL_COLUMNS`].
    pub fn keel_row(&self) -> String {
        let keel_us = match self.keel_us_per_check() {
            Some((v, e)) => format!("{v:.1} ± {e:.1}"),
            None => "–".to_string(),
        };
        let cells = [
            self.monitors.to_string(),
            human(self.interval_secs),
            human(self.warmup_secs.unwrap_or(self.interval_secs)),
            human(self.duration_secs),
            format!("{:.1}", self.checks_per_sec()),
            format!("{:.0}", self.failures),
            keel_us,
            fixed(self.reference_us(), 1),
            fixed(self.keel_over(self.reference_us()), 2),
            fixed(self.floor_us(), 1),
            fixed(self.keel_over(self.floor_us()), 2),
            format!("{:.1}", self.keel_cpu_secs() / self.elapsed_secs * 100.0),
            fixed(
                self.warmup_cpu_ticks
                    .map(|t| t as f64 / self.clk_tck as f64),
                1,
            ),
            format!("{:.1}", self.peak_rss_kib as f64 / 1024.0),
            fixed(self.rss_kib.map(|k| k as f64 / 1024.0), 1),
            format!(
                "{:.0}",
                self.storage_growth_bytes as f64 / 1024.0 / (self.elapsed_secs / 60.0)
            ),
            format!("{:.2}", self.other_load_cores),
        ];
        format!("| {} |", cells.join(" | "))
    }

    /// The rows of the reference table, one per bare loop; columns as in [`BARE_COLUMNS`].
    pub fn bare_rows(&self) -> Vec<String> {
        self.bare
            .iter()
            .map(|r| {
                let pace = match r.pace {
                    Pace::Rate(_) => "Keel's rate".to_string(),
                    Pace::FlatOut(n) => format!("flat out, {n} loops"),
                };
                let per_sec = (r.elapsed_secs > 0.0).then(|| r.requests as f64 / r.elapsed_secs);
                let us = (r.requests > 0).then_some(r.cpu_us_per_request);
                let cells = [
                    self.monitors.to_string(),
                    r.client.to_string(),
                    r.connections.to_string(),
                    pace,
                    fixed(per_sec, 1),
                    r.failures.to_string(),
                    fixed(us, 1),
                    fixed(self.keel_over(us), 2),
                    format!("{:.2}", r.other_load_cores),
                ];
                format!("| {} |", cells.join(" | "))
            })
            .collect()
    }
}

/// Columns of the Keel table.
pub const KEEL_COLUMNS: [&str; 17] = [
    "monitors",
    "interval",
    "warm-up",
    "window",
    "checks/s",
    "failures",
    "Keel CPU µs/check",
    "bare reqwest µs/req at Keel's rate",
    "ratio",
    "bare reqwest µs/req flat out",
    "ratio to flat out",
    "Keel CPU % of one core",
    "Keel CPU s before the window",
    "Keel peak RSS MiB",
    "Keel RSS MiB at the window's end",
    "storage growth KiB/min",
    "other load (cores)",
];

/// Columns of the reference table.
pub const BARE_COLUMNS: [&str; 9] = [
    "monitors",
    "client",
    "connections",
    "pace",
    "requests/s",
    "failures",
    "CPU µs/request",
    "Keel ÷ this",
    "other load (cores)",
];

fn header(columns: &[&str]) -> String {
    let rule: Vec<&str> = columns.iter().map(|_| "---:").collect();
    format!("| {} |\n|{}|", columns.join(" | "), rule.join("|"))
}

/// Both tables for a set of runs, ready to paste into Markdown.
pub fn render(runs: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(&header(&KEEL_COLUMNS));
    out.push('\n');
    for r in runs {
        out.push_str(&r.keel_row());
        out.push('\n');
    }
    out.push_str("\nReference loops, run in the same invocation right after Keel was stopped:\n\n");
    out.push_str(&header(&BARE_COLUMNS));
    out.push('\n');
    for r in runs {
        for row in r.bare_rows() {
            out.push_str(&row);
            out.push('\n');
        }
    }
    let ramps: Vec<&RunResult> = runs.iter().filter(|r| !r.warmup_ramp.is_empty()).collect();
    if !ramps.is_empty() {
        out.push_str("\nKeel's CPU in each 10 s of its warm-up, in % of one core (start-up work fading):\n\n");
        for r in ramps {
            let slices: Vec<String> = r.warmup_ramp.iter().map(|p| format!("{p:.0}")).collect();
            out.push_str(&format!(
                "- {} monitors: {}\n",
                r.monitors,
                slices.join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bare::Report;

    fn report(client: ClientKind, connections: Connections, pace: Pace, us: f64) -> Report {
        Report {
            client,
            connections,
            pace,
            requests: 60_000,
            failures: 0,
            elapsed_secs: 60.0,
            cpu_secs: us * 60_000.0 / 1e6,
            cpu_us_per_request: us,
            other_load_cores: 0.04,
            first_failure: None,
        }
    }

    fn result() -> RunResult {
        RunResult {
            monitors: 10_000,
            interval_secs: 10.0,
            warmup_secs: Some(10.0),
            duration_secs: 60.0,
            clk_tck: 100,
            checks: 60_000.0,
            failures: 0.0,
            elapsed_secs: 60.0,
            keel_cpu_ticks: 180,
            warmup_cpu_ticks: Some(250),
            warmup_ramp: vec![120.4, 33.0, 9.96],
            peak_rss_kib: 40 * 1024,
            rss_kib: Some(38 * 1024),
            storage_growth_bytes: 600 * 1024,
            other_load_cores: 0.05,
            bare: vec![
                report(
                    ClientKind::Reqwest,
                    Connections::Pooled,
                    Pace::Rate(1000.0),
                    15.0,
                ),
                report(
                    ClientKind::HyperUtil,
                    Connections::Pooled,
                    Pace::Rate(1000.0),
                    11.0,
                ),
                report(
                    ClientKind::Reqwest,
                    Connections::Pooled,
                    Pace::FlatOut(8),
                    10.0,
                ),
            ],
        }
    }

    #[test]
    fn rows_have_one_cell_per_column() {
        let r = result();
        assert_eq!(r.keel_row().matches(" | ").count(), KEEL_COLUMNS.len() - 1);
        for row in r.bare_rows() {
            assert_eq!(row.matches(" | ").count(), BARE_COLUMNS.len() - 1, "{row}");
        }
    }

    #[test]
    fn keel_row_figures() {
        // 1.8 s over 60,000 checks = 30 µs: 2.0× the paced loop, 3.0× the flat-out one.
        assert_eq!(
            result().keel_row(),
            "| 10000 | 10s | 10s | 1m | 1000.0 | 0 | 30.0 ± 0.3 | 15.0 | 2.00 | 10.0 | 3.00 | 3.0 | 2.5 | 40.0 | 38.0 | 600 | 0.05 |"
        );
    }

    #[test]
    fn bare_rows_name_client_mode_and_pace() {
        let rows = result().bare_rows();
        assert_eq!(
            rows[1],
            "| 10000 | hyper-util | pooled | Keel's rate | 1000.0 | 0 | 11.0 | 2.73 | 0.04 |"
        );
        assert!(rows[2].contains("| flat out, 8 loops |"), "{}", rows[2]);
    }

    #[test]
    fn missing_reference_shows_a_dash() {
        let mut r = result();
        r.bare.clear();
        r.checks = 0.0;
        let row = r.keel_row();
        assert!(row.contains("| – | – | – | – | – |"), "{row}");
        r.rss_kib = None;
        assert!(r.keel_row().contains("| 40.0 | – |"), "{}", r.keel_row());
    }

    #[test]
    fn render_holds_both_tables() {
        let text = render(&[result(), result()]);
        assert_eq!(text.matches("| 10000 | 10s | 10s |").count(), 2);
        assert_eq!(text.matches("| 10000 | reqwest |").count(), 4);
        assert!(text.contains("| monitors | client |"));
        assert!(text.contains("- 10000 monitors: 120 33 10\n"), "{text}");
    }
}
