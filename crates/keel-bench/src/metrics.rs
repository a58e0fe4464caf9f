//! Reading counters out of Keel's Prometheus `/metrics` text: how many checks it ran and how
//! many failed. The harness counts Keel's work from Keel's own counters rather than from the
//! target's request log, so it measures what Keel says it did.

/// Why a counter could not be read from a metrics page.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("metric {0} is not on the page")]
    Missing(String),
    #[error("metric {name} has value {value:?}, which is not a number")]
    NotANumber { name: String, value: String },
}

/// The value of counter `name`, summed over all its label sets.
pub fn counter(text: &str, name: &str) -> Result<f64, MetricsError> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name 12`, `name{a="b"} 12`, optionally followed by a timestamp; but not a longer
        // metric that merely starts with `name` (e.g. `keel_checks_total_created`).
        let rest = if let Some(labelled) = rest.strip_prefix('{') {
            match labelled.rfind('}') {
                Some(i) => &labelled[i + 1..],
                None => continue,
            }
        } else if rest.starts_with(char::is_whitespace) {
            rest
        } else {
            continue;
        };
        let value = rest.split_whitespace().next().unwrap_or("");
        let parsed = value.parse::<f64>().map_err(|_| MetricsError::NotANumber {
            name: name.to_string(),
            value: value.to_string(),
        })?;
        found = true;
        sum += parsed;
    }
    if found {
        Ok(sum)
    } else {
        Err(MetricsError::Missing(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# HELP keel_checks_total Monitor checks run.
# TYPE keel_checks_total counter
keel_checks_total 12345
# HELP keel_check_failures_total Monitor checks that failed.
# TYPE keel_check_failures_total counter
keel_check_failures_total 7
keel_checks_total_created 1700000000
";

    #[test]
    fn reads_plain_counters() {
        assert_eq!(counter(PAGE, "keel_checks_total").unwrap(), 12345.0);
        assert_eq!(counter(PAGE, "keel_check_failures_total").unwrap(), 7.0);
    }

    #[test]
    fn sums_label_sets_and_ignores_timestamps() {
        let page = "x_total{kind=\"http\"} 10 1700000000000\nx_total{kind=\"tcp\",a=\"}\"} 5\n";
        assert_eq!(counter(page, "x_total").unwrap(), 15.0);
    }

    #[test]
    fn missing_counter_is_named() {
        assert_eq!(
            counter("# nothing here\n", "keel_checks_total"),
            Err(MetricsError::Missing("keel_checks_total".into()))
        );
        // A longer name sharing the prefix does not count as the counter.
        assert!(counter("keel_checks_total_created 5\n", "keel_checks_total").is_err());
    }

    #[test]
    fn non_numeric_value_is_refused() {
        let e = counter("keel_checks_total many\n", "keel_checks_total").unwrap_err();
        assert!(e.to_string().contains("\"many\""), "{e}");
        let e = counter("keel_checks_total\n", "keel_checks_total").unwrap_err();
        assert!(matches!(e, MetricsError::Missing(_)), "{e}");
        let e = counter("keel_checks_total{a=\"b\"}\n", "keel_checks_total").unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
    }

    #[test]
    fn unterminated_labels_are_skipped() {
        assert!(counter("keel_checks_total{a=\"b\" 5\n", "keel_checks_total").is_err());
    }
}
