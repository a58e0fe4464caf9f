//! The public status page (`/`): one self-contained HTML document rendered from a
//! [`Snapshot`], readable without JavaScript, in the reader's language.
//!
//! Rendering is plain string building rather than a template engine, for three reasons: the
//! page is rebuilt on every change and with many components it holds tens of thousands of
//! uptime bars, which a `push_str` loop writes several times faster than an interpreted
//! template; every piece of snapshot text goes through one escaping function
//! ([`keel_core::public::feed::escape_into`]) at the exact place it is written, which is
//! easy to audit; and it adds no dependency. The stylesheet lives in `assets/page.css`,
//! compiled in and inlined so the page needs no other request.
//!
//! Links are relative (`history.atom`, `subscribe`, `?lang=ja`) so the same bytes work at
//! `/` and from a static export hosted under any path.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use keel_core::public::feed::escape_into;
use keel_core::public::groups::{self, Entry, Group, Layout};
use keel_core::public::i18n::{self, Key};
use keel_core::public::{
    ComponentStatus, DayUptime, Indicator, Maintenance, MaintenanceStatus, PublicComponent,
    PublicEta, PublicImpact, PublicIncident, PublicStatus, Snapshot,
};
use keel_core::ComponentId;

/// The text of the page's one `<style>` element, exactly: its hash is what the page's
/// Content-Security-Policy allows.
const STYLE: &str = concat!("\n", include_str!("../../assets/page.css"));

/// The Content-Security-Policy the page is served with (see docs/architecture.md, "Security
/// headers"). The page runs no script and loads nothing: its only active content is the
/// inline stylesheet, allowed by its SHA-256 rather than by `'unsafe-inline'`, so an injected
/// `<style>` or `style=` attribute would not apply either. The subscribe form posts to the
/// same origin; nothing may frame the page. Computed once; `'static` so that every response
/// clones the header by pointer.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
        Box::leak(
            format!(
                "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
                 base-uri 'none'; frame-ancestors 'none'"
            )
            .into_boxed_str(),
        )
    })
}

/// The name of a language in that language, for the language links.
fn endonym(locale: &str) -> &str {
    match i18n::Lang::of(locale) {
        i18n::Lang::Ja => "日本語",
        i18n::Lang::En if locale.to_ascii_lowercase().starts_with("en") => "English",
        i18n::Lang::En => locale,
    }
}

/// Renders the whole page in `locale`. `lang_links` adds the `?lang=` links between the
/// configured locales (a static export served without query strings turns them off).
pub fn render(snapshot: &Snapshot, locale: &str, lang_links: bool) -> String {
    // Rows in full (a kilobyte or so each) for at most a few hundred components; beyond that
    // a name each.
    let n = snapshot.components.len();
    let mut p = Page {
        out: String::with_capacity(
            16 * 1024 + STYLE.len() + n.min(2 * groups::DETAILED_MAX) * 1024 + n * 48,
        ),
        s: snapshot,
        l: locale,
        by_id: snapshot
            .components
            .iter()
            .map(|c| (c.id.as_str(), c))
            .collect(),
        bar_tags: HashMap::new(),
    };
    let layout = groups::page_layout(&snapshot.components);
    p.document(lang_links, &layout);
    p.out
}

struct Page<'a> {
    out: String,
    s: &'a Snapshot,
    l: &'a str,
    by_id: HashMap<&'a str, &'a PublicComponent>,
    /// Rendered uptime bars by first day, length, lowest and highest value (see
    /// [`Page::bar`]).
    bar_tags: HashMap<(NaiveDate, usize, Option<u64>, Option<u64>), String>,
}

impl<'a> Page<'a> {
    /// Escaped snapshot text.
    fn text(&mut self, s: &str) {
        escape_into(&mut self.out, s);
    }

    /// A fixed string (ours, but escaped all the same: it costs nothing and survives edits).
    fn key(&mut self, k: Key) {
        escape_into(&mut self.out, i18n::t(self.l, k));
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn time(&mut self, at: DateTime<Utc>) {
        let _ = write!(
            self.out,
            "<time datetime=\"{}\">",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let shown = i18n::format_time(self.l, at);
        self.text(&shown);
        self.raw("</time>");
    }

    /// Plain text with its line breaks kept.
    fn paragraph(&mut self, text: &str) {
        self.raw("<p>");
        for (n, line) in text.trim().split('\n').enumerate() {
            if n > 0 {
                self.raw("<br>");
            }
            escape_into(&mut self.out, line.trim_end_matches('\r'));
        }
        self.raw("</p>");
    }

    /// The public names of `ids`; ids that are not public components are skipped, never shown.
    fn names(&self, ids: &[ComponentId]) -> Vec<&'a str> {
        ids.iter()
            .filter_map(|id| self.by_id.get(id.as_str()))
            .map(|c| c.name.get(self.l))
            .collect()
    }

    fn document(&mut self, lang_links: bool, layout: &Layout<'_>) {
        self.raw("<!doctype html>\n<html lang=\"");
        self.text(self.l);
        self.raw("\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<title>");
        self.text(&self.s.title);
        self.raw(" - ");
        self.text(i18n::overall(self.l, self.s.indicator));
        self.raw("</title>\n");
        let feed_title = i18n::feed_title(self.l, &self.s.title);
        for (ty, href) in [
            ("application/atom+xml", "history.atom"),
            ("application/rss+xml", "history.rss"),
        ] {
            let _ = write!(
                self.out,
                "<link rel=\"alternate\" type=\"{ty}\" href=\"{href}\" title=\""
            );
            self.text(&feed_title);
            self.raw("\">\n");
        }
        if lang_links {
            for loc in &self.s.locales {
                self.raw("<link rel=\"alternate\" hreflang=\"");
                self.text(loc);
                self.raw("\" href=\"?lang=");
                self.text(loc);
                self.raw("\">\n");
            }
        }
        self.raw("<style>");
        self.raw(STYLE);
        self.raw("</style>\n</head>\n<body>\n<a class=\"skip\" href=\"#main\">");
        self.key(Key::SkipToContent);
        self.raw("</a>\n<header class=\"top\"><div class=\"wrap\">\n<h1>");
        self.text(&self.s.title);
        self.raw("</h1>\n");
        if lang_links && self.s.locales.len() > 1 {
            self.languages();
        }
        self.raw("</div></header>\n<main id=\"main\" class=\"wrap\">\n");
        self.banner();
        self.active_incidents();
        self.maintenances();
        self.components(layout);
        self.history();
        self.subscribe(layout);
        self.raw("</main>\n<footer><div class=\"wrap\">\n<p>");
        self.key(Key::Feeds);
        self.raw(": <a href=\"history.atom\">Atom</a> · <a href=\"history.rss\">RSS</a></p>\n<p>");
        self.key(Key::PoweredBy);
        self.raw("</p>\n</div></footer>\n</body>\n</html>\n");
    }

    fn languages(&mut self) {
        self.raw("<nav aria-label=\"");
        self.key(Key::Language);
        self.raw("\"><ul class=\"langs\">");
        for loc in &self.s.locales {
            self.raw("<li><a href=\"?lang=");
            self.text(loc);
            self.raw("\" hreflang=\"");
            self.text(loc);
            self.raw("\" lang=\"");
            self.text(loc);
            self.raw("\"");
            if loc == self.l {
                self.raw(" aria-current=\"true\"");
            }
            self.raw(">");
            self.text(endonym(loc));
            self.raw("</a></li>");
        }
        self.raw("</ul></nav>\n");
    }

    fn banner(&mut self) {
        let class = match self.s.indicator {
            Indicator::None => "ind-none",
            Indicator::Minor => "ind-minor",
            Indicator::Major => "ind-major",
            Indicator::Critical => "ind-critical",
            Indicator::Maintenance => "ind-maintenance",
        };
        let _ = write!(self.out, "<section class=\"banner {class}\" aria-label=\"");
        self.text(i18n::overall(self.l, self.s.indicator));
        self.raw("\">\n<p class=\"headline\">");
        self.text(i18n::overall(self.l, self.s.indicator));
        self.raw("</p>\n<p class=\"updated\">");
        self.key(Key::LastUpdated);
        self.raw(": ");
        self.time(self.s.generated_at);
        self.raw("</p>\n</section>\n");
    }

    /// Opens a landmark section named by its heading (`h-{id}`).
    fn open_section(&mut self, id: &str, title: Key) {
        let _ = write!(
            self.out,
            "<section aria-labelledby=\"h-{id}\">\n<h2 id=\"h-{id}\">"
        );
        self.key(title);
        self.raw("</h2>\n");
    }

    fn active_incidents(&mut self) {
        let s = self.s;
        let mut active = s
            .incidents
            .iter()
            .filter(|i| i.status != PublicStatus::Resolved)
            .peekable();
        if active.peek().is_none() {
            return;
        }
        self.open_section("active", Key::ActiveIncidents);
        for i in active {
            self.incident(i);
        }
        self.raw("</section>\n");
    }

    fn incident(&mut self, i: &PublicIncident) {
        let impact = match i.impact {
            PublicImpact::None => "impact-none",
            PublicImpact::Minor => "impact-minor",
            PublicImpact::Major => "impact-major",
            PublicImpact::Critical => "impact-critical",
        };
        let _ = write!(
            self.out,
            "<article class=\"card incident {impact}\" id=\"incident-"
        );
        self.text(&i.id);
        self.raw("\" aria-labelledby=\"incident-");
        self.text(&i.id);
        self.raw("-title\">\n<h3 id=\"incident-");
        self.text(&i.id);
        self.raw("-title\">");
        self.text(i.name.get(self.l));
        self.raw("</h3>\n<p><span class=\"pill\">");
        self.text(i18n::incident_status(self.l, i.status));
        self.raw("</span> <span class=\"when\">");
        self.time(i.updated_at);
        self.raw("</span></p>\n");
        if let Some(users) = i18n::users_affected(self.l, i.affected_users) {
            self.raw("<p class=\"users\">");
            self.text(&users);
            self.raw("</p>\n");
        }
        if i.eta == PublicEta::ThirdParty {
            self.raw("<p class=\"third-party\">");
            self.key(Key::ThirdParty);
            self.raw("</p>\n");
        }
        self.raw("<dl class=\"facts\">\n");
        let names = self.names(&i.components);
        if !names.is_empty() {
            self.raw("<div><dt>");
            self.key(Key::AffectedComponents);
            self.raw("</dt><dd>");
            self.text(&names.join(", "));
            self.raw("</dd></div>\n");
        }
        self.raw("<div><dt>");
        self.key(Key::EstimatedRecovery);
        self.raw("</dt><dd>");
        let eta = i18n::eta(self.l, &i.eta);
        self.text(&eta);
        self.raw("</dd></div>\n<div><dt>");
        self.key(Key::Workaround);
        self.raw("</dt><dd>");
        let workarounds: Vec<_> = i
            .workarounds
            .iter()
            .map(|(id, w)| {
                (
                    self.by_id.get(id.as_str()).map(|c| c.name.get(self.l)),
                    w.get(self.l),
                )
            })
            .filter(|(_, w)| !w.trim().is_empty())
            .collect();
        if workarounds.is_empty() {
            self.key(Key::NoWorkaround);
        } else {
            self.raw("<ul>");
            for (name, w) in workarounds {
                self.raw("<li>");
                if let Some(name) = name {
                    self.raw("<strong>");
                    self.text(name);
                    self.raw("</strong>: ");
                }
                self.text(w);
                self.raw("</li>");
            }
            self.raw("</ul>");
        }
        self.raw("</dd></div>\n</dl>\n");
        self.updates(i);
        self.raw("</article>\n");
    }

    fn updates(&mut self, i: &PublicIncident) {
        if i.updates.is_empty() {
            return;
        }
        self.raw("<ol class=\"updates\">\n");
        for u in &i.updates {
            self.raw("<li><p><strong>");
            self.text(i18n::incident_status(self.l, u.status));
            self.raw("</strong> <span class=\"when\">");
            self.time(u.created_at);
            self.raw("</span></p>");
            self.paragraph(u.body.get(self.l));
            self.raw("</li>\n");
        }
        self.raw("</ol>\n");
    }

    fn maintenances(&mut self) {
        let s = self.s;
        let mut open = s
            .maintenances
            .iter()
            .filter(|m| m.status != MaintenanceStatus::Completed)
            .peekable();
        if open.peek().is_none() {
            return;
        }
        self.open_section("maintenance", Key::ScheduledMaintenance);
        for m in open {
            self.maintenance(m);
        }
        self.raw("</section>\n");
    }

    fn maintenance(&mut self, m: &Maintenance) {
        self.raw("<article class=\"card maintenance\" id=\"maintenance-");
        self.text(&m.id);
        self.raw("\">\n<h3>");
        self.text(m.name.get(self.l));
        self.raw("</h3>\n<p><span class=\"pill\">");
        self.text(i18n::maintenance_status(self.l, m.status));
        self.raw("</span></p>\n<dl class=\"facts\">\n<div><dt>");
        self.key(Key::MaintenanceWindow);
        self.raw("</dt><dd>");
        self.time(m.scheduled_for);
        self.raw(" – ");
        self.time(m.scheduled_until);
        self.raw("</dd></div>\n");
        let names = self.names(&m.components);
        if !names.is_empty() {
            self.raw("<div><dt>");
            self.key(Key::AffectedComponents);
            self.raw("</dt><dd>");
            self.text(&names.join(", "));
            self.raw("</dd></div>\n");
        }
        self.raw("</dl>\n");
        let body = m.body.get(self.l);
        if !body.trim().is_empty() {
            self.paragraph(body);
        }
        self.raw("</article>\n");
    }

    fn components(&mut self, layout: &Layout<'_>) {
        if self.s.components.is_empty() {
            return;
        }
        self.open_section("components", Key::Components);
        self.raw("<ul class=\"components\">\n");
        let named_groups = layout
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Group(g) if g.id.is_some()));
        for entry in &layout.entries {
            match entry {
                Entry::Component(c) => self.component(c, layout.bars),
                Entry::Group(g) => self.group(g, layout, named_groups),
            }
        }
        self.raw("</ul>\n</section>\n");
    }

    /// A component's row: name, status, and its uptime.
    fn component(&mut self, c: &PublicComponent, bars: bool) {
        self.raw("<li class=\"component\" id=\"component-");
        self.text(c.id.as_str());
        self.raw("\">\n<div class=\"crow\"><h3>");
        self.text(c.name.get(self.l));
        let _ = write!(
            self.out,
            "</h3><span class=\"st {}\">",
            status_class(c.status)
        );
        self.text(i18n::component_status(self.l, c.status));
        self.raw("</span></div>\n");
        self.uptime(&c.uptime, c.uptime_ratio, bars);
        self.raw("</li>\n");
    }

    /// A group's row: one line (name, worst status, how many are affected) that opens on its
    /// members, then the group's uptime. Open by default while a member is not operational.
    /// With many components (`detailed` false) the members are listed by status, names only.
    fn group(&mut self, g: &Group<'_>, layout: &Layout<'_>, named_groups: bool) {
        let detailed = layout.detailed;
        let status = g.status();
        self.raw("<li class=\"component group\"");
        if let Some(id) = g.id {
            self.raw(" id=\"group-");
            self.text(id);
            self.raw("\"");
        }
        self.raw("><details");
        if status != ComponentStatus::Operational {
            self.raw(" open");
        }
        self.raw("><summary><span class=\"gname\">");
        match g.name {
            Some(name) => self.text(name.get(self.l)),
            None if named_groups => self.key(Key::OtherComponents),
            None => self.key(Key::AllComponents),
        }
        let _ = write!(
            self.out,
            "</span> <span class=\"st {}\">",
            status_class(status)
        );
        self.text(i18n::component_status(self.l, status));
        self.raw("</span> <span class=\"gcount\">");
        let count = i18n::group_count(self.l, g.members.len(), g.affected());
        self.text(&count);
        self.raw("</span></summary>\n");
        if detailed {
            self.raw("<ul class=\"components members\">\n");
            for c in &g.members {
                self.component(c, true);
            }
            self.raw("</ul>\n");
        } else {
            // Worst first; each status once, then the names that have it.
            let mut statuses: Vec<ComponentStatus> = g.members.iter().map(|c| c.status).collect();
            statuses.sort_by_key(|s| std::cmp::Reverse(status_rank(*s)));
            statuses.dedup();
            for st in statuses {
                let n = g.members.iter().filter(|c| c.status == st).count();
                let _ = write!(self.out, "<p class=\"st {}\">", status_class(st));
                let heading = i18n::status_count(self.l, st, n);
                self.text(&heading);
                self.raw("</p>\n<ul class=\"names\">");
                for c in g.members.iter().filter(|c| c.status == st) {
                    self.raw("<li>");
                    self.text(c.name.get(self.l));
                    self.raw("</li>");
                }
                self.raw("</ul>\n");
            }
        }
        self.raw("</details>\n");
        let days = g.uptime();
        let ratio = mean_ratio(&days);
        self.uptime(&days, ratio, layout.bars);
        self.raw("</li>\n");
    }

    /// The uptime bars of the last days and their legend. Consecutive days of the same colour
    /// are one bar as wide as they are many (`w2`…`w90`), cut back into days by the
    /// stylesheet, with one tooltip for the run (its days, and its uptime or the range of it):
    /// a page of a hundred rows stays small, and a day of another colour is always its own.
    ///
    /// Without `bars` (hundreds of rows), only the summary, in words.
    fn uptime(&mut self, days: &[DayUptime], ratio: Option<f64>, bars: bool) {
        if days.is_empty() {
            return;
        }
        let summary = i18n::uptime_text(self.l, ratio);
        if !bars {
            self.raw("<p class=\"legend\"><span>");
            self.key(Key::UptimeLast90Days);
            self.raw(": ");
            self.text(&summary);
            self.raw("</span></p>\n");
            return;
        }
        // The bars are one image to assistive technology, described by the summary; each
        // bar's title is the detail for pointer users.
        self.raw("<ol class=\"bars");
        if days.len() == 90 {
            self.raw(" t90");
        }
        self.raw("\" role=\"img\" aria-label=\"");
        self.key(Key::UptimeLast90Days);
        self.raw(": ");
        self.text(&summary);
        self.raw("\">");
        let mut start = 0;
        while start < days.len() {
            let class = bar_class(days[start].ratio);
            let run = &days[start..];
            let len = run
                .iter()
                .take_while(|d| bar_class(d.ratio) == class)
                .count();
            self.bar(&run[..len], class);
            start += len;
        }
        self.raw("</ol>\n<p class=\"legend\"><span>");
        let ago = i18n::days_ago(self.l, days.len().saturating_sub(1));
        self.text(&ago);
        self.raw("</span><span>");
        self.text(&summary);
        self.raw("</span><span>");
        self.key(Key::Today);
        self.raw("</span></p>\n");
    }

    /// One bar for `run`, days of one colour.
    fn bar(&mut self, run: &[DayUptime], class: &'static str) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let values = run.iter().filter_map(|d| d.ratio.filter(|r| r.is_finite()));
        let lo = values.clone().reduce(f64::min);
        let hi = values.reduce(f64::max);
        // Most rows share the same days and most days are at 100%: the escaped tag is made
        // once per (first day, length, lowest, highest) instead of once per bar.
        let key = (
            first.day,
            run.len(),
            lo.map(f64::to_bits),
            hi.map(f64::to_bits),
        );
        if !self.bar_tags.contains_key(&key) {
            let sep = if i18n::Lang::of(self.l) == i18n::Lang::Ja {
                "："
            } else {
                ": "
            };
            let title = format!(
                "{}{sep}{}",
                i18n::date_range(self.l, first.day, last.day),
                i18n::uptime_range(self.l, lo, hi)
            );
            let mut tag = format!("<li class=\"{class}");
            if run.len() > 1 {
                let _ = write!(tag, " w{}", run.len().min(90));
            }
            tag.push_str("\" title=\"");
            escape_into(&mut tag, &title);
            tag.push_str("\"></li>");
            self.bar_tags.insert(key, tag);
        }
        if let Some(tag) = self.bar_tags.get(&key) {
            self.out.push_str(tag);
        }
    }

    fn history(&mut self) {
        self.open_section("history", Key::IncidentHistory);
        let s = self.s;
        let mut past = s
            .incidents
            .iter()
            .filter(|i| i.status == PublicStatus::Resolved)
            .peekable();
        if past.peek().is_none() {
            self.raw("<p class=\"empty\">");
            self.key(Key::NoIncidents);
            self.raw("</p>\n");
        } else {
            self.raw("<ul class=\"history\">\n");
            for i in past {
                self.raw("<li id=\"incident-");
                self.text(&i.id);
                self.raw("\"><details><summary><span class=\"hname\">");
                self.text(i.name.get(self.l));
                self.raw("</span> <span class=\"when\">");
                self.time(i.created_at);
                if let Some(r) = i.resolved_at {
                    self.raw(" – ");
                    self.time(r);
                }
                self.raw("</span></summary>\n");
                let names = self.names(&i.components);
                if !names.is_empty() {
                    self.raw("<p>");
                    self.key(Key::AffectedComponents);
                    self.raw(": ");
                    self.text(&names.join(", "));
                    self.raw("</p>\n");
                }
                self.updates(i);
                self.raw("</details></li>\n");
            }
            self.raw("</ul>\n");
        }
        self.raw("</section>\n");
    }

    /// One checkbox of the subscribe form. Ids by position, not by component id, so any id
    /// makes a valid HTML id.
    fn choice(&mut self, n: &mut usize, value: &str, label: &str) {
        let _ = write!(
            self.out,
            "<div><input type=\"checkbox\" id=\"sub-c{n}\" name=\"components\" value=\""
        );
        self.text(value);
        let _ = write!(self.out, "\"> <label for=\"sub-c{n}\">");
        self.text(label);
        self.raw("</label></div>\n");
        *n += 1;
    }

    fn subscribe(&mut self, layout: &Layout<'_>) {
        self.open_section("subscribe", Key::SubscribeToUpdates);
        self.raw("<form method=\"post\" action=\"subscribe\">\n<input type=\"hidden\" name=\"locale\" value=\"");
        self.text(self.l);
        self.raw("\">\n<fieldset><legend>");
        self.key(Key::SubscribeHow);
        self.raw("</legend>\n<p class=\"hint\" id=\"sub-hint\">");
        self.key(Key::SubscribeHint);
        self.raw("</p>\n<div class=\"field\"><label for=\"sub-email\">");
        self.key(Key::EmailAddress);
        self.raw("</label><input id=\"sub-email\" name=\"email\" type=\"email\" autocomplete=\"email\" aria-describedby=\"sub-hint\"></div>\n<div class=\"field\"><label for=\"sub-webhook\">");
        self.key(Key::WebhookUrl);
        self.raw("</label><input id=\"sub-webhook\" name=\"webhook\" type=\"url\" inputmode=\"url\" aria-describedby=\"sub-hint\"></div>\n</fieldset>\n");
        if !self.s.components.is_empty() {
            self.raw("<fieldset><legend>");
            self.key(Key::SubscribeComponents);
            self.raw("</legend>\n<div class=\"checks\">\n");
            // Every component while the page shows each in full; past that, the rows of the
            // top level: components with a row of their own, and groups (the server takes a
            // group's id for all of its components).
            let mut n = 0;
            for entry in &layout.entries {
                match entry {
                    Entry::Component(c) => self.choice(&mut n, c.id.as_str(), c.name.get(self.l)),
                    Entry::Group(g) if layout.detailed => {
                        for c in &g.members {
                            self.choice(&mut n, c.id.as_str(), c.name.get(self.l));
                        }
                    }
                    Entry::Group(g) => {
                        if let (Some(id), Some(name)) = (g.id, g.name) {
                            self.choice(&mut n, id, name.get(self.l));
                        }
                    }
                }
            }
            self.raw("</div>\n</fieldset>\n");
        }
        self.raw("<button type=\"submit\">");
        self.key(Key::SubscribeButton);
        self.raw("</button>\n</form>\n</section>\n");
    }
}

/// The colour of a day's bar.
fn bar_class(ratio: Option<f64>) -> &'static str {
    match ratio.filter(|r| r.is_finite()) {
        None => "nd",
        Some(r) if r >= 0.999 => "ok",
        Some(r) if r >= 0.99 => "mi",
        Some(r) if r >= 0.95 => "pa",
        Some(_) => "ma",
    }
}

fn status_class(status: ComponentStatus) -> &'static str {
    match status {
        ComponentStatus::Operational => "s-operational",
        ComponentStatus::DegradedPerformance => "s-degraded_performance",
        ComponentStatus::PartialOutage => "s-partial_outage",
        ComponentStatus::MajorOutage => "s-major_outage",
        ComponentStatus::UnderMaintenance => "s-under_maintenance",
    }
}

/// Worse first when sorted descending: maintenance is planned, so it ranks below trouble.
fn status_rank(status: ComponentStatus) -> u8 {
    match status {
        ComponentStatus::Operational => 0,
        ComponentStatus::UnderMaintenance => 1,
        ComponentStatus::DegradedPerformance => 2,
        ComponentStatus::PartialOutage => 3,
        ComponentStatus::MajorOutage => 4,
    }
}

/// The mean over the days with data.
fn mean_ratio(days: &[DayUptime]) -> Option<f64> {
    let known: Vec<f64> = days.iter().filter_map(|d| d.ratio).collect();
    #[allow(clippy::cast_precision_loss)]
    (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
}
