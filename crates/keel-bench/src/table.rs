//! The result of one run and its Markdown table row, as `docs/benchmarks.md` shows it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bare;

/// Everything one `run` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub monitors: u64,
    pub interval_secs: f64,
    pub duration_secs: f64,
    pub clk_tck: u64,
    /// Keel: checks and failures counted by its own `/metrics` over the window.
    pub checks: f64,
    pub failures: f64,
    pub elapsed_secs: f64,
    pub keel_cpu_ticks: u64,
    pub peak_rss_kib: u64,
    pub storage_growth_bytes: i64,
    /// CPU used on the machine beside Keel during its window (the target included), in cores.
    pub other_load_cores: f64,
    pub bare: Vec<bare::Report>,
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

    fn bare_us(&self, client: bare::ClientKind, conn: bare::Connections) -> Option<f64> {
        self.bare
            .iter()
            .find(|r| r.client == client && r.connections == conn && r.requests > 0)
            .map(|r| r.cpu_us_per_request)
    }

    /// The reference Keel is held to: reqwest, pooled, as Keel makes its requests.
    pub fn reference_us(&self) -> Option<f64> {
        self.bare_us(bare::ClientKind::Reqwest, bare::Connections::Pooled)
    }

    pub fn ratio(&self) -> Option<f64> {
        let (keel, _) = self.keel_us_per_check()?;
        let reference = self.reference_us()?;
        (reference > 0.0).then(|| keel / reference)
    }

    /// The Markdown row; columns as in [`header`].
    pub fn row(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "–".to_string(),
        };
        let keel_us = match self.keel_us_per_check() {
            Some((v, e)) => format!("{v:.1} ± {e:.1}"),
            None => "–".to_string(),
        };
        let bare_load = self
            .bare
            .iter()
            .map(|r| format!("{:.2}", r.other_load_cores))
            .collect::<Vec<_>>()
            .join(" / ");
        let minutes = self.elapsed_secs / 60.0;
        let cells = [
            self.monitors.to_string(),
            humantime::format_duration(Duration::from_secs_f64(self.interval_secs)).to_string(),
            humantime::format_duration(Duration::from_secs_f64(self.duration_secs.round()))
                .to_string(),
            format!("{:.1}", self.checks_per_sec()),
            format!("{:.0}", self.failures),
            keel_us,
            opt(self.reference_us(), 1),
            opt(self.ratio(), 2),
            opt(
                self.bare_us(bare::ClientKind::HyperUtil, bare::Connections::Pooled),
                1,
            ),
            opt(
                self.bare_us(bare::ClientKind::Reqwest, bare::Connections::Fresh),
                1,
            ),
            format!("{:.1}", self.keel_cpu_secs() / self.elapsed_secs * 100.0),
            format!("{:.1}", self.peak_rss_kib as f64 / 1024.0),
            format!("{:.0}", self.storage_growth_bytes as f64 / 1024.0 / minutes),
            format!(
                "{:.2} / {}",
                self.other_load_cores,
                if bare_load.is_empty() {
                    "–".into()
                } else {
                    bare_load
                }
            ),
        ];
        format!("| {} |", cells.join(" | "))
    }
}

/// The table header (two lines) matching [`RunResult::row`].
pub fn header() -> String {
    let names = [
        "monitors",
        "interval",
        "duration",
        "checks/s",
        "failures",
        "Keel CPU µs/check",
        "bare reqwest pooled µs/req",
        "ratio",
        "bare hyper-util pooled µs/req",
        "bare reqwest fresh µs/req",
        "Keel CPU % of one core",
        "Keel peak RSS MiB",
        "storage growth KiB/min",
        "other load, cores (Keel / bare runs)",
    ];
    let rule: Vec<&str> = names.iter().map(|_| "---:").collect();
    format!("| {} |\n|{}|", names.join(" | "), rule.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bare::{ClientKind, Connections, Report};

    fn report(client: ClientKind, connections: Connections, us: f64) -> Report {
        Report {
            client,
            connections,
            requests: 60_000,
            failures: 0,
            elapsed_secs: 60.0,
            cpu_secs: us * 60_000.0 / 1e6,
            cpu_us_per_request: us,
            other_load_cores: if connections == Connections::Fresh {
                0.1
            } else {
                0.04
            },
            first_failure: None,
        }
    }

    fn result() -> RunResult {
        RunResult {
            monitors: 10_000,
            interval_secs: 10.0,
            duration_secs: 60.0,
            clk_tck: 100,
            checks: 60_000.0,
            failures: 0.0,
            elapsed_secs: 60.0,
            keel_cpu_ticks: 180,
            peak_rss_kib: 40 * 1024,
            storage_growth_bytes: 600 * 1024,
            other_load_cores: 0.05,
            bare: vec![
                report(ClientKind::Reqwest, Connections::Pooled, 15.0),
                report(ClientKind::HyperUtil, Connections::Pooled, 11.0),
                report(ClientKind::Reqwest, Connections::Fresh, 95.0),
            ],
        }
    }

    #[test]
    fn row_has_one_cell_per_header_column() {
        let header = header();
        let columns = header.lines().next().unwrap().matches(" | ").count();
        assert_eq!(result().row().matches(" | ").count(), columns);
    }

    #[test]
    fn row_figures() {
        let row = result().row();
        // 1.8 s over 60,000 checks = 30 µs, ratio 2.0 against 15 µs, 3% of a core.
        assert!(row.starts_with("| 10000 | 10s | 1m | 1000.0 | 0 | 30.0 ± 0.3 | 15.0 | 2.00 | 11.0 | 95.0 | 3.0 | 40.0 | 600 |"), "{row}");
        assert!(row.ends_with("| 0.05 / 0.04 / 0.04 / 0.10 |"), "{row}");
    }

    #[test]
    fn missing_reference_shows_a_dash() {
        let mut r = result();
        r.bare.clear();
        r.checks = 0.0;
        let row = r.row();
        assert!(row.contains("| – | – | – |"), "{row}");
    }
}
