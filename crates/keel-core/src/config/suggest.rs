//! "Did you mean …?" for misspelt keys and ids.
//!
//! A typo in a config key silently falling back to a default is the worst kind of config
//! bug, so every unknown name is reported, and when a known name is close the hint says which.

/// The candidate closest to `word`, if any is close enough to be a likely typo.
pub(crate) fn closest<'c, I>(word: &str, candidates: I) -> Option<&'c str>
where
    I: IntoIterator<Item = &'c str>,
{
    let word_l = word.to_lowercase();
    let mut best: Option<(f64, &'c str)> = None;
    for cand in candidates {
        let cand_l = cand.to_lowercase();
        if cand_l == word_l {
            return Some(cand);
        }
        // Jaro-Winkler rewards shared prefixes (`timout` → `timeout`); the edit distance
        // catches short words and transpositions that Jaro-Winkler scores low.
        let jw = strsim::jaro_winkler(&word_l, &cand_l);
        let edits = strsim::damerau_levenshtein(&word_l, &cand_l);
        let max_edits = match cand_l.chars().count() {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        // Plural/singular slips (`components` for `component`) are common in table names.
        let plural = word_l.strip_suffix('s') == Some(cand_l.as_str())
            || cand_l.strip_suffix('s') == Some(word_l.as_str());
        let score = if plural {
            1.0
        } else if edits <= max_edits || jw >= 0.88 {
            jw
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// A hint for an unknown name: "did you mean `x`?" or, failing that, the list of known names.
pub(crate) fn hint(word: &str, candidates: &[&str], what: &str) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("{what}: {}", join(candidates)),
    }
}

/// "`a`, `b`, `c`" for hints that list the allowed values.
pub(crate) fn join(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let keys = ["interval", "timeout", "retry_interval", "confirmations"];
        assert_eq!(closest("timout", keys), Some("timeout"));
        assert_eq!(closest("intervall", keys), Some("interval"));
        assert_eq!(closest("confirmation", keys), Some("confirmations"));
        assert_eq!(closest("Timeout", keys), Some("timeout"));
    }

    #[test]
    fn finds_plural_slips() {
        assert_eq!(
            closest("components", ["component", "vendor"]),
            Some("component")
        );
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(closest("zebra", ["interval", "timeout"]), None);
        assert_eq!(closest("x", ["url", "port"]), None);
    }

    #[test]
    fn hint_lists_the_known_names_when_nothing_is_close() {
        assert_eq!(
            hint("zebra", &["a", "b"], "known keys"),
            "known keys: `a`, `b`"
        );
        assert_eq!(
            hint("ur", &["url", "port"], "known keys"),
            "did you mean `url`?"
        );
    }
}
