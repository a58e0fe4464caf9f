//! Incident history as Atom (`/history.atom`) and RSS 2.0 (`/history.rss`), shaped like the
//! feeds Statuspage publishes: one entry per incident whose HTML content lists its public
//! updates, newest first ("<small>time</small><br><strong>Status</strong> - body").
//!
//! Also the one text-escaping helper the public renderers share: every piece of snapshot text
//! passes through [`escape_into`] before it lands in XML, HTML or SVG.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use super::i18n::{self, Key};
use super::model::{PublicComponent, PublicIncident, Snapshot};
use super::statuspage::page_id;

/// Appends `s` escaped for XML or HTML text and for quoted attribute values (`&`, `<`, `>`,
/// `"`, `'`), dropping the characters XML 1.0 forbids (C0 controls other than tab, newline
/// and carriage return; U+FFFE and U+FFFF) because one of them makes a whole feed unreadable.
pub fn escape_into(out: &mut String, s: &str) {
    let needs_work = |c: char| {
        matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}')
            || (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
    };
    // Most text needs nothing: copy it whole.
    if !s.contains(needs_work) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if needs_work(c) => {}
            c => out.push(c),
        }
    }
}

/// [`escape_into`] into a new string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// Plain text as HTML: escaped, line breaks kept as `<br>`.
fn html_paragraph_text(out: &mut String, text: &str) {
    let text = text.trim();
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push_str("<br>");
        }
        escape_into(out, line.trim_end_matches('\r'));
    }
}

/// The HTML body of one incident's entry: its updates, newest first, then the affected
/// components. This is then escaped once more as the feed's text content.
fn entry_html(i: &PublicIncident, locale: &str, by_id: &HashMap<&str, &PublicComponent>) -> String {
    let mut h = String::with_capacity(256 * (i.updates.len() + 1));
    for u in &i.updates {
        h.push_str("<p><small>");
        escape_into(&mut h, &i18n::format_time(locale, u.created_at));
        h.push_str("</small><br><strong>");
        h.push_str(i18n::incident_status(locale, u.status));
        h.push_str("</strong> - ");
        html_paragraph_text(&mut h, u.body.get(locale));
        h.push_str("</p>");
    }
    let names: Vec<&str> = i
        .components
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|c| c.name.get(locale))
        .collect();
    if !names.is_empty() {
        h.push_str("<p><strong>");
        h.push_str(i18n::t(locale, Key::AffectedComponents));
        h.push_str("</strong>: ");
        escape_into(&mut h, &names.join(", "));
        h.push_str("</p>");
    }
    h
}

struct Links {
    /// `https://status.example.com` without a trailing slash, when configured.
    base: Option<String>,
    page_id: String,
}

impl Links {
    fn new(snap: &Snapshot) -> Self {
        Links {
            base: snap
                .base_url
                .as_deref()
                .map(|b| b.trim_end_matches('/').to_string())
                .filter(|b| !b.is_empty()),
            page_id: page_id(snap),
        }
    }

    /// Ids stay the same across locales and renders, so readers never see an entry twice.
    fn feed_id(&self) -> String {
        match &self.base {
            Some(b) => format!("{b}/history"),
            None => format!("urn:keel:{}:history", self.page_id),
        }
    }

    fn entry_id(&self, incident_id: &str) -> String {
        match &self.base {
            Some(b) => format!("{b}/#incident-{incident_id}"),
            None => format!("urn:keel:{}:incident:{incident_id}", self.page_id),
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Pushes `<tag>escaped text</tag>`.
fn element(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>");
    escape_into(out, text);
    let _ = write!(out, "</{tag}>");
}

fn index(snap: &Snapshot) -> HashMap<&str, &PublicComponent> {
    snap.components.iter().map(|c| (c.id.as_str(), c)).collect()
}

/// The incident history as an Atom 1.0 feed, in `locale`.
pub fn atom(snap: &Snapshot, locale: &str) -> String {
    let links = Links::new(snap);
    let by_id = index(snap);
    let mut out = String::with_capacity(1024 + 1024 * snap.incidents.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xml:lang=\"");
    escape_into(&mut out, locale);
    out.push_str("\" xmlns=\"http://www.w3.org/2005/Atom\">\n  ");
    element(&mut out, "id", &links.feed_id());
    out.push('\n');
    if let Some(b) = &links.base {
        out.push_str("  <link rel=\"alternate\" type=\"text/html\" href=\"");
        escape_into(&mut out, b);
        out.push_str("/\"/>\n  <link rel=\"self\" type=\"application/atom+xml\" href=\"");
        escape_into(&mut out, b);
        out.push_str("/history.atom\"/>\n");
    }
    out.push_str("  ");
    element(&mut out, "title", &i18n::feed_title(locale, &snap.title));
    out.push_str("\n  ");
    element(&mut out, "updated", &rfc3339(snap.generated_at));
    out.push_str("\n  <author>");
    element(&mut out, "name", &snap.title);
    out.push_str("</author>\n");
    for i in &snap.incidents {
        out.push_str("  <entry>\n    ");
        element(&mut out, "id", &links.entry_id(&i.id));
        out.push_str("\n    ");
        element(&mut out, "published", &rfc3339(i.created_at));
        out.push_str("\n    ");
        element(&mut out, "updated", &rfc3339(i.updated_at));
        out.push('\n');
        if links.base.is_some() {
            out.push_str("    <link rel=\"alternate\" type=\"text/html\" href=\"");
            escape_into(&mut out, &links.entry_id(&i.id));
            out.push_str("\"/>\n");
        }
        out.push_str("    ");
        element(&mut out, "title", i.name.get(locale));
        out.push_str("\n    <content type=\"html\">");
        escape_into(&mut out, &entry_html(i, locale, &by_id));
        out.push_str("</content>\n  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// The incident history as an RSS 2.0 feed, in `locale`.
pub fn rss(snap: &Snapshot, locale: &str) -> String {
    let links = Links::new(snap);
    let by_id = index(snap);
    let mut out = String::with_capacity(1024 + 1024 * snap.incidents.len());
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:atom=\"http://www.w3.org/2005/Atom\">\n  <channel>\n    ",
    );
    let title = i18n::feed_title(locale, &snap.title);
    element(&mut out, "title", &title);
    out.push_str("\n    ");
    // RSS requires a channel link; without a configured base URL the page's root is the best
    // a static render can say.
    let home = links
        .base
        .as_ref()
        .map_or_else(|| "/".to_string(), |b| format!("{b}/"));
    element(&mut out, "link", &home);
    out.push_str("\n    ");
    element(&mut out, "description", &title);
    out.push_str("\n    ");
    element(&mut out, "language", locale);
    out.push_str("\n    ");
    element(&mut out, "pubDate", &snap.generated_at.to_rfc2822());
    out.push('\n');
    if let Some(b) = &links.base {
        out.push_str("    <atom:link rel=\"self\" type=\"application/rss+xml\" href=\"");
        escape_into(&mut out, b);
        out.push_str("/history.rss\"/>\n");
    }
    for i in &snap.incidents {
        out.push_str("    <item>\n      ");
        element(&mut out, "title", i.name.get(locale));
        out.push_str("\n      ");
        element(&mut out, "description", &entry_html(i, locale, &by_id));
        out.push_str("\n      ");
        element(&mut out, "pubDate", &i.updated_at.to_rfc2822());
        out.push_str("\n      ");
        let id = links.entry_id(&i.id);
        if links.base.is_some() {
            element(&mut out, "link", &id);
            out.push_str("\n      <guid isPermaLink=\"true\">");
        } else {
            out.push_str("<guid isPermaLink=\"false\">");
        }
        escape_into(&mut out, &id);
        out.push_str("</guid>\n    </item>\n");
    }
    out.push_str("  </channel>\n</rss>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        assert_eq!(escape("plain ja 検索"), "plain ja 検索");
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\td\ne\u{FFFF}"), "abc\td\ne");
    }

    #[test]
    fn paragraph_text_keeps_line_breaks() {
        let mut s = String::new();
        html_paragraph_text(&mut s, "one\r\ntwo <b>\n");
        assert_eq!(s, "one<br>two &lt;b&gt;");
    }
}
