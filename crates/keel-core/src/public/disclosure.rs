//! The disclosure check: what no public text may say.
//!
//! Naming a failing supplier invites attacks on it, and hosts, addresses, internal component
//! names and stack traces tell an attacker how the service is built. Every public text (a
//! responder's update, Keel's drafts, the page's own strings) passes [`check`] before it is
//! published; the rules come from the config ([`DisclosureRules::from_config`]): confidential
//! vendors' names and ids, internal components' names (every locale) and ids, the hosts and
//! addresses monitors and vendors reach, and `[disclosure] confidential_terms` — plus fixed
//! patterns for any IPv4/IPv6 address and stack-trace-like text.
//!
//! Matching is case-insensitive and Unicode-aware: full-width letters (ＡＰＩ) count as their
//! ASCII selves, and runs of white space as one space. A term whose edge is a letter or digit
//! must stand on a word boundary there, so the id `api` does not trip on "rapid" — but
//! Japanese text runs words together, so a CJK character next to a term is a boundary
//! (`dbが停止` names `db`), and so is a change from lower to upper case (`myStripe`).
//! `_` joins words (identifiers); `-` and `.` do not, so `stripe` trips in `stripe-js` and in
//! `api.stripe.com`: for a leak check a false alarm the responder can reword beats a miss.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use crate::config::{Check, Config};

/// Terms of fewer characters than this are not matched: a one-letter id would trip on
/// every "a".
pub const MIN_TERM_CHARS: usize = 2;

/// Why a text may not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("it contains {term:?}: {why}")]
pub struct Finding {
    /// The offending term as configured, or the matched text for a pattern (an address, a
    /// stack frame).
    pub term: String,
    /// What the term is: "the name of confidential vendor `payments`", "an IP address".
    pub why: String,
}

/// One term no public text may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// As written in the config, for the finding.
    text: String,
    folded: Vec<char>,
    why: String,
}

/// Everything the check refuses, built once from the config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisclosureRules {
    terms: Vec<Term>,
    /// Terms by their first folded character, so a scan compares only candidates.
    by_first: BTreeMap<char, Vec<usize>>,
}

impl DisclosureRules {
    /// Only the fixed patterns (addresses, stack traces): no config-specific terms.
    pub fn patterns_only() -> Self {
        DisclosureRules::default()
    }

    /// The rules a config implies (see the module docs for the list).
    pub fn from_config(config: &Config) -> Self {
        let mut rules = DisclosureRules::default();
        for v in config.vendors.iter().filter(|v| v.confidential) {
            let id = v.id.as_str();
            rules.add(&v.name, format!("the name of confidential vendor `{id}`"));
            rules.add(id, format!("the id of confidential vendor `{id}`"));
        }
        for c in config.components.iter().filter(|c| !c.public) {
            let id = c.id.as_str();
            for name in c.name.by_locale.values() {
                rules.add(name, format!("the name of internal component `{id}`"));
            }
            rules.add(id, format!("the id of internal component `{id}`"));
        }
        for m in &config.monitors {
            let id = m.id.as_str();
            let why = || format!("a host in the target of monitor `{id}`");
            match &m.check {
                Check::Http(h) => {
                    if let Some(host) = url_host(&h.url) {
                        rules.add(&host, why());
                    }
                }
                Check::Tcp(t) => rules.add(&t.host, why()),
                Check::Tls(t) => {
                    rules.add(&t.host, why());
                    if let Some(sni) = &t.server_name {
                        rules.add(sni, why());
                    }
                }
                Check::Dns(d) => {
                    rules.add(&d.name, why());
                    for answer in &d.expected {
                        rules.add(answer, format!("an expected answer of monitor `{id}`"));
                    }
                    if let Some(resolver) = d.resolver {
                        rules.add(
                            &resolver.ip().to_string(),
                            format!("the resolver of monitor `{id}`"),
                        );
                    }
                }
                Check::Heartbeat(hb) => {
                    rules.add(
                        hb.token.expose(),
                        format!("the push token of monitor `{id}`"),
                    );
                }
            }
        }
        for v in &config.vendors {
            if let Some(host) = url_host(&v.status_url) {
                rules.add(
                    &host,
                    format!("the status page host of vendor `{}`", v.id.as_str()),
                );
            }
        }
        for term in &config.disclosure.confidential_terms {
            rules.add(term, "a confidential term from [disclosure]".to_string());
        }
        rules
    }

    /// Adds one term (ignored when shorter than [`MIN_TERM_CHARS`] or already known: the
    /// first reason given for a term is kept).
    pub fn add(&mut self, term: &str, why: String) {
        let folded: Vec<char> = fold(term.trim()).into_iter().map(|f| f.c).collect();
        if folded.len() < MIN_TERM_CHARS || self.terms.iter().any(|t| t.folded == folded) {
            return;
        }
        self.by_first
            .entry(folded[0])
            .or_default()
            .push(self.terms.len());
        self.terms.push(Term {
            text: term.trim().to_string(),
            folded,
            why,
        });
    }

    /// The configured terms and why each is refused, for `keel check` and tests.
    pub fn terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.terms.iter().map(|t| (t.text.as_str(), t.why.as_str()))
    }
}

/// Passes when `text` contains nothing the rules refuse; otherwise the first finding in the
/// text.
pub fn check(text: &str, rules: &DisclosureRules) -> Result<(), Finding> {
    match findings(text, rules).into_iter().next() {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Every finding in `text`, in the order they appear, each term once.
pub fn findings(text: &str, rules: &DisclosureRules) -> Vec<Finding> {
    let chars = fold(text);
    let mut found: Vec<(usize, Finding)> = Vec::new();
    find_terms(&chars, rules, &mut found);
    find_ipv4(text, &chars, &mut found);
    find_ipv6(text, &chars, &mut found);
    find_trace_phrases(text, &chars, &mut found);
    find_frames(text, &mut found);
    find_source_lines(text, &mut found);
    find_exception_names(text, &mut found);
    // At one place, the longest term first: "db-7.corp" says more than "db".
    found.sort_by_key(|(at, f)| (*at, std::cmp::Reverse(f.term.len())));
    let mut out: Vec<Finding> = Vec::new();
    for (_, f) in found {
        if !out.iter().any(|o| o.term == f.term) {
            out.push(f);
        }
    }
    out
}

/// One character of the folded text: compared in `c`, with the original character (for
/// case boundaries) and its byte range in the original text (for quoting a match).
#[derive(Debug, Clone, Copy)]
struct Folded {
    c: char,
    orig: char,
    start: usize,
    end: usize,
}

/// Lower case, full-width ASCII as ASCII, every run of white space as one space.
fn fold(text: &str) -> Vec<Folded> {
    let mut out: Vec<Folded> = Vec::with_capacity(text.len());
    for (start, orig) in text.char_indices() {
        let end = start + orig.len_utf8();
        let wide = match u32::from(orig) {
            // Full-width forms of ASCII letters, digits and punctuation.
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(orig),
            0x3000 => ' ',
            _ => orig,
        };
        if wide.is_whitespace() {
            if out.last().is_some_and(|f| f.c == ' ') {
                if let Some(last) = out.last_mut() {
                    last.end = end;
                }
                continue;
            }
            out.push(Folded {
                c: ' ',
                orig,
                start,
                end,
            });
            continue;
        }
        // Characters whose lower case is several (İ) compare by the first: close enough
        // for names, and it keeps one folded character per original one.
        let c = wide.to_lowercase().next().unwrap_or(wide);
        out.push(Folded {
            c,
            orig: wide,
            start,
            end,
        });
    }
    out
}

/// Scripts written without spaces between words: a neighbour from them is a boundary.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x30FF      // hiragana, katakana
        | 0x31F0..=0x31FF    // katakana extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0xAC00..=0xD7AF    // hangul
        | 0xFF66..=0xFF9F    // half-width katakana
        | 0x20000..=0x2FFFF) // CJK extensions B–F
}

/// A character that continues a word written with spaces (Latin, Cyrillic, digits, `_`).
fn is_word(c: char) -> bool {
    (c.is_alphanumeric() || c == '_') && !is_cjk(c)
}

fn boundary_before(chars: &[Folded], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).map(|p| chars[p]) else {
        return true;
    };
    !is_word(prev.c) || (prev.orig.is_lowercase() && chars[i].orig.is_uppercase())
}

fn boundary_after(chars: &[Folded], end: usize) -> bool {
    let Some(next) = chars.get(end) else {
        return true;
    };
    !is_word(next.c) || (chars[end - 1].orig.is_lowercase() && next.orig.is_uppercase())
}

fn find_terms(chars: &[Folded], rules: &DisclosureRules, found: &mut Vec<(usize, Finding)>) {
    for i in 0..chars.len() {
        let Some(candidates) = rules.by_first.get(&chars[i].c) else {
            continue;
        };
        for &t in candidates {
            let term = &rules.terms[t];
            let end = i + term.folded.len();
            if end > chars.len()
                || !chars[i..end]
                    .iter()
                    .map(|f| f.c)
                    .eq(term.folded.iter().copied())
            {
                continue;
            }
            let first = term.folded[0];
            let last = term.folded[term.folded.len() - 1];
            if (is_word(first) && !boundary_before(chars, i))
                || (is_word(last) && !boundary_after(chars, end))
            {
                continue;
            }
            found.push((
                chars[i].start,
                Finding {
                    term: term.text.clone(),
                    why: term.why.clone(),
                },
            ));
        }
    }
}

fn quote(text: &str, chars: &[Folded], from: usize, to: usize) -> String {
    text[chars[from].start..chars[to - 1].end].to_string()
}

const IP: &str = "an IP address";
const TRACE: &str = "it looks like a stack trace";

/// Dotted quads with every part 0–255, not inside a longer run of digits and dots (a
/// version number such as 1.2.3.4.5 is not an address).
fn find_ipv4(text: &str, chars: &[Folded], found: &mut Vec<(usize, Finding)>) {
    let digit = |i: usize| chars.get(i).is_some_and(|f| f.c.is_ascii_digit());
    let dot = |i: usize| chars.get(i).is_some_and(|f| f.c == '.');
    let mut i = 0;
    while i < chars.len() {
        // Not in the middle of a word or of a longer dotted number.
        let inside = |p: usize| is_word(chars[p].c) || (chars[p].c == '.' && p > 0 && digit(p - 1));
        let starts = digit(i) && i.checked_sub(1).is_none_or(|p| !inside(p));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut parts = 0;
        let mut ok = true;
        loop {
            let from = j;
            while digit(j) && j - from < 4 {
                j += 1;
            }
            let part: String = chars[from..j].iter().map(|f| f.c).collect();
            if part.is_empty() || part.len() > 3 || part.parse::<u16>().map_or(true, |n| n > 255) {
                ok = false;
                break;
            }
            parts += 1;
            if parts == 4 {
                break;
            }
            if !(dot(j) && digit(j + 1)) {
                ok = false;
                break;
            }
            j += 1;
        }
        let runs_on = chars.get(j).is_some_and(|f| is_word(f.c)) || (dot(j) && digit(j + 1));
        if ok && parts == 4 && !runs_on {
            found.push((
                chars[i].start,
                Finding {
                    term: quote(text, chars, i, j),
                    why: IP.to_string(),
                },
            ));
            i = j;
        } else {
            // Skip the rest of this run of digits so "1234.1.1.1" is not read from its "234".
            while digit(i) {
                i += 1;
            }
        }
    }
}

/// Runs of hex digits, colons and dots that parse as an IPv6 address (with at least two
/// colons and one hex digit, so "12:30" and "::" are not addresses).
fn find_ipv6(text: &str, chars: &[Folded], found: &mut Vec<(usize, Finding)>) {
    let part = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
    let mut i = 0;
    while i < chars.len() {
        if !part(chars[i].c) || (i > 0 && (is_word(chars[i - 1].c) || part(chars[i - 1].c))) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && part(chars[j].c) {
            j += 1;
        }
        let run_end = j;
        // A sentence may end right after the address.
        while j > i && chars[j - 1].c == '.' {
            j -= 1;
        }
        let candidate: String = chars[i..j].iter().map(|f| f.c).collect();
        let followed_by_word = chars.get(run_end).is_some_and(|f| is_word(f.c));
        if !followed_by_word
            && candidate.matches(':').count() >= 2
            && candidate.chars().any(|c| c.is_ascii_hexdigit())
            && candidate.parse::<Ipv6Addr>().is_ok()
        {
            found.push((
                chars[i].start,
                Finding {
                    term: quote(text, chars, i, j),
                    why: IP.to_string(),
                },
            ));
        }
        i = run_end.max(i + 1);
    }
}

/// Words that only stack traces and crash reports say.
const TRACE_PHRASES: &[&str] = &[
    "traceback (most recent call last)",
    "panicked at",
    "exception in thread",
    "stack backtrace:",
    "core dumped",
    "stack trace:",
];

fn find_trace_phrases(text: &str, chars: &[Folded], found: &mut Vec<(usize, Finding)>) {
    let folded: Vec<char> = chars.iter().map(|f| f.c).collect();
    for phrase in TRACE_PHRASES {
        let p: Vec<char> = phrase.chars().collect();
        for i in 0..folded.len().saturating_sub(p.len() - 1) {
            if folded[i..i + p.len()] == p[..] && boundary_before(chars, i) {
                found.push((
                    chars[i].start,
                    Finding {
                        term: quote(text, chars, i, i + p.len()),
                        why: TRACE.to_string(),
                    },
                ));
            }
        }
    }
    // Go: "goroutine 1 [running]:".
    let g: Vec<char> = "goroutine ".chars().collect();
    for i in 0..folded.len().saturating_sub(g.len()) {
        if folded[i..i + g.len()] != g[..] || !boundary_before(chars, i) {
            continue;
        }
        let mut j = i + g.len();
        let digits = j;
        while folded.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        if j > digits && folded.get(j) == Some(&' ') && folded.get(j + 1) == Some(&'[') {
            found.push((
                chars[i].start,
                Finding {
                    term: quote(text, chars, i, j + 2),
                    why: TRACE.to_string(),
                },
            ));
        }
    }
}

/// Indented "at …" lines with a call or a file position: Java, JavaScript and .NET frames.
fn find_frames(text: &str, found: &mut Vec<(usize, Finding)>) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indented = trimmed.len() < line.len();
        if indented && trimmed.starts_with("at ") {
            let rest = trimmed[3..].trim_end();
            let call = rest.contains('(') && rest.contains(')');
            let place = rest.contains(':') && rest.chars().any(|c| c.is_ascii_digit());
            if call || place {
                let start = offset + (line.len() - trimmed.len());
                found.push((
                    start,
                    Finding {
                        term: trimmed.trim_end().chars().take(80).collect(),
                        why: TRACE.to_string(),
                    },
                ));
            }
        }
        offset += line.len();
    }
}

/// Source files' extensions, for "main.rs:12" and `File "app.py", line 3`.
const SOURCE_EXTENSIONS: &[&str] = &[
    "rs", "go", "py", "java", "js", "mjs", "cjs", "ts", "tsx", "jsx", "rb", "php", "cs", "cpp",
    "cc", "cxx", "c", "h", "hpp", "kt", "kts", "scala", "ex", "exs", "erl", "swift", "lua", "pl",
    "clj", "dart", "vb", "fs", "groovy",
];

/// A source file name followed by a line number: "foo.rs:12", "Bar.java:42)",
/// `"app.py", line 3`, "File.cs:line 7".
fn find_source_lines(text: &str, found: &mut Vec<(usize, Finding)>) {
    let bytes = text.as_bytes();
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'\\');
    for (dot, _) in text.match_indices('.') {
        // The file name before the dot.
        let mut start = dot;
        while start > 0 && name_byte(bytes[start - 1]) {
            start -= 1;
        }
        if start == dot {
            continue;
        }
        let ext_start = dot + 1;
        let mut ext_end = ext_start;
        while ext_end < bytes.len() && bytes[ext_end].is_ascii_alphanumeric() {
            ext_end += 1;
        }
        let ext = text[ext_start..ext_end].to_ascii_lowercase();
        if !SOURCE_EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        let after = &text[ext_end..];
        let line_no = ["\", line ", ":line ", ":"]
            .iter()
            .find_map(|sep| after.strip_prefix(sep))
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        if let Some(rest) = line_no {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let end = text.len() - rest.len() + digits;
            found.push((
                start,
                Finding {
                    term: text[start..end].to_string(),
                    why: TRACE.to_string(),
                },
            ));
        }
    }
}

/// Exception class names followed by a colon: "NullPointerException:", "ZeroDivisionError:",
/// "java.lang.IllegalStateException:". A bare "Error:" is ordinary prose and passes.
fn find_exception_names(text: &str, found: &mut Vec<(usize, Finding)>) {
    for suffix in ["Exception:", "Error:"] {
        for (at, _) in text.match_indices(suffix) {
            let bytes = text.as_bytes();
            let mut start = at;
            while start > 0
                && (bytes[start - 1].is_ascii_alphanumeric()
                    || matches!(bytes[start - 1], b'.' | b'_' | b'$'))
            {
                start -= 1;
            }
            let name = &text[start..at];
            // Something before the suffix, starting the class name with a capital.
            let class = name.rsplit('.').next().unwrap_or(name);
            if class.is_empty() || !class.starts_with(|c: char| c.is_ascii_uppercase()) {
                continue;
            }
            let end = at + suffix.len() - 1;
            found.push((
                start,
                Finding {
                    term: text[start..end].to_string(),
                    why: TRACE.to_string(),
                },
            ));
        }
    }
}

/// The host of a URL, when it has one.
fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    // IPv6 hosts come bracketed; the bare address is what a text would contain.
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(terms: &[&str]) -> DisclosureRules {
        let mut r = DisclosureRules::default();
        for t in terms {
            r.add(t, format!("term {t}"));
        }
        r
    }

    fn trips(text: &str, r: &DisclosureRules) -> Option<String> {
        check(text, r).err().map(|f| f.term)
    }

    #[test]
    fn folding_keeps_one_entry_per_character_and_collapses_space() {
        let f = fold("Ａ  b\t\nC");
        let s: String = f.iter().map(|x| x.c).collect();
        assert_eq!(s, "a b c");
        assert_eq!(f[1].start, 3, "full-width A is three bytes");
    }

    #[test]
    fn boundaries() {
        let r = rules(&["api", "db", "Stripe"]);
        assert_eq!(trips("a rapid fix", &r), None);
        assert_eq!(trips("the API is slow", &r).as_deref(), Some("api"));
        assert_eq!(trips("dbが停止しました", &r).as_deref(), Some("db"));
        assert_eq!(trips("myStripe account", &r).as_deref(), Some("Stripe"));
        assert_eq!(trips("stripes and dots", &r), None);
        assert_eq!(trips("api_key", &r), None);
        assert_eq!(trips("api-gateway", &r).as_deref(), Some("api"));
        assert_eq!(trips("ＡＰＩ障害", &r).as_deref(), Some("api"));
    }

    #[test]
    fn short_terms_are_ignored() {
        let r = rules(&["a", " ", ""]);
        assert_eq!(r.terms().count(), 0);
    }

    #[test]
    fn ipv4_shapes() {
        let r = DisclosureRules::patterns_only();
        assert_eq!(
            trips("host 10.0.0.12 is down", &r).as_deref(),
            Some("10.0.0.12")
        );
        assert_eq!(
            trips("at 192.168.1.1:5432.", &r).as_deref(),
            Some("192.168.1.1")
        );
        assert_eq!(trips("version 1.2.3.4.5", &r), None);
        assert_eq!(trips("256.1.1.1", &r), None);
        assert_eq!(trips("v1.2.3.4", &r), None);
        assert_eq!(trips("1.2.3", &r), None);
        assert_eq!(trips("９.９.９.９", &r).as_deref(), Some("９.９.９.９"));
    }

    #[test]
    fn ipv6_shapes() {
        let r = DisclosureRules::patterns_only();
        assert_eq!(
            trips("at [2001:db8::1]:443", &r).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(trips("loopback ::1.", &r).as_deref(), Some("::1"));
        assert_eq!(trips("fe80::1%eth0", &r).as_deref(), Some("fe80::1"));
        assert_eq!(trips("at 12:30:45 UTC", &r), None);
        assert_eq!(trips("a :: b", &r), None);
        assert_eq!(trips("Step::new", &r), None);
    }
}
