//! The HTML status page rendered from a snapshot (both languages, hostile text, empty page,
//! accessibility structure, contrast of the stylesheet), and the Statuspage round trip: Keel's
//! own vendor poller reads the summary Keel writes, so one Keel can watch another.

#[path = "../../keel-core/tests/sample/mod.rs"]
mod sample;

use std::collections::{BTreeSet, HashMap};

use keel_core::config::VendorFormat;
use keel_core::public::i18n::{self, Key};
use keel_core::public::{statuspage, ComponentStatus, Indicator, Snapshot};
use keel_core::{Health, NodeId};
use keel_probe::status_pages;
use keel_server::status_page;

use sample::{HOSTILE, INTERNAL_ID};

// ---------------------------------------------------------------------------------------
// A small HTML reader for the checks below. The page is ours and regular (quoted attributes,
// no comments, one <style>), so a scanner is enough; it is not a general HTML parser.

struct Tag {
    name: String,
    attrs: HashMap<String, String>,
}

struct Html {
    tags: Vec<Tag>,
    /// Text between tags (outside <style>), entity-decoded.
    text: String,
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn read_html(html: &str) -> Html {
    let mut tags = Vec::new();
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&decode(&rest[..start]));
        text.push(' ');
        let after = &rest[start + 1..];
        let end = after.find('>').expect("unclosed tag");
        let inner = &after[..end];
        rest = &after[end + 1..];
        if inner.starts_with('!') {
            continue;
        }
        let (name, mut attr_src) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        let mut attrs = HashMap::new();
        loop {
            attr_src = attr_src.trim_start();
            if attr_src.is_empty() || attr_src == "/" {
                break;
            }
            let key_end = attr_src
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(attr_src.len());
            let key = attr_src[..key_end].to_string();
            attr_src = &attr_src[key_end..];
            if let Some(v) = attr_src.strip_prefix("=\"") {
                let close = v.find('"').expect("unclosed attribute");
                attrs.insert(key, decode(&v[..close]));
                attr_src = &v[close + 1..];
            } else {
                attrs.insert(key, String::new());
            }
        }
        if name == "style" {
            let close = rest.find("</style>").expect("unclosed style");
            rest = &rest[close..];
        }
        tags.push(Tag {
            name: name.to_string(),
            attrs,
        });
    }
    text.push_str(&decode(rest));
    Html { tags, text }
}

impl Html {
    fn named(&self, name: &str) -> impl Iterator<Item = &Tag> {
        let name = name.to_string();
        self.tags.iter().filter(move |t| t.name == name)
    }

    /// Everything a reader can see or hear: text, and the attributes read aloud or shown.
    fn readable(&self) -> String {
        let mut all = self.text.clone();
        for t in &self.tags {
            for a in ["title", "aria-label", "placeholder", "alt"] {
                if let Some(v) = t.attrs.get(a) {
                    all.push(' ');
                    all.push_str(v);
                }
            }
        }
        all
    }
}

/// The part of the page from the element with `id` to the end of its `</tag>`.
fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = html[..start].rfind(&format!("<{tag}")).unwrap();
    let end = html[start..].find(&format!("</{tag}>")).unwrap() + start;
    &html[start..end]
}

// ---------------------------------------------------------------------------------------

/// Fixed strings the sample snapshot makes the page show.
const PAGE_KEYS: &[Key] = &[
    Key::Operational,
    Key::DegradedPerformance,
    Key::PartialOutage,
    Key::MajorOutage,
    Key::UnderMaintenance,
    Key::SomeSystemsAffected,
    Key::Investigating,
    Key::Identified,
    Key::Monitoring,
    Key::Resolved,
    Key::MaintenanceScheduled,
    Key::MaintenanceInProgress,
    Key::AffectedComponents,
    Key::EstimatedRecovery,
    Key::NoEstimateYet,
    Key::Workaround,
    Key::NoWorkaround,
    Key::ThirdParty,
    Key::SkipToContent,
    Key::Language,
    Key::LastUpdated,
    Key::ActiveIncidents,
    Key::ScheduledMaintenance,
    Key::MaintenanceWindow,
    Key::Components,
    Key::UptimeLast90Days,
    Key::NoData,
    Key::Today,
    Key::IncidentHistory,
    Key::Feeds,
    Key::PoweredBy,
    Key::SubscribeToUpdates,
    Key::SubscribeHow,
    Key::SubscribeHint,
    Key::EmailAddress,
    Key::WebhookUrl,
    Key::SubscribeComponents,
    Key::SubscribeButton,
];

#[test]
fn every_fixed_string_is_shown_in_the_readers_language() {
    let s = sample::snapshot();
    for (locale, other) in [("en", "ja"), ("ja", "en")] {
        let html = status_page::render(&s, locale, true);
        let readable = read_html(&html).readable();
        for &k in PAGE_KEYS {
            let want = i18n::t(locale, k);
            assert!(
                readable.contains(want),
                "{locale}: {k:?} ({want:?}) missing"
            );
            let wrong = i18n::t(other, k);
            assert!(
                !readable.contains(wrong),
                "{locale}: {k:?} shown in {other} ({wrong:?})"
            );
        }
    }
    let ja = read_html(&status_page::render(&s, "ja", true)).readable();
    for phrase in [
        "約15,000人のユーザーに影響",
        "約500人のユーザーに影響",
        "過去の同様の障害は 20〜45 分で解決しています",
        "2026年11月27日 14:00 UTC",
        "稼働率 99.92%",
        "89日前",
        "2026年11月27日：稼働率 100%",
        "2026年9月3日：データなし",
    ] {
        assert!(ja.contains(phrase), "ja page lacks {phrase:?}");
    }
    let en = read_html(&status_page::render(&s, "en", true)).readable();
    for phrase in [
        "About 15,000 users affected",
        "Similar incidents were resolved in 20–45 minutes",
        "Nov 27, 2026, 14:00 UTC",
        "99.92% uptime",
        "89 days ago",
        "Nov 27, 2026: 100% uptime",
        "Sep 3, 2026: No data",
        "Oct 9, 2026: 93.00% uptime",
    ] {
        assert!(en.contains(phrase), "en page lacks {phrase:?}");
    }
}

#[test]
fn no_english_leaks_into_the_japanese_page() {
    let html = status_page::render(&sample::snapshot(), "ja", true);
    let readable = read_html(&html).readable();
    // Names, not words: formats, brands, the page title, and English as the link to itself.
    let allowed: BTreeSet<&str> = [
        "UTC", "Atom", "RSS", "Keel", "Webhook", "URL", "English", "API", "Acme", "Status",
    ]
    .into();
    let words: BTreeSet<&str> = readable
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2 && !allowed.contains(w))
        .collect();
    assert!(words.is_empty(), "English on the Japanese page: {words:?}");
}

#[test]
fn snapshot_text_is_escaped_everywhere() {
    let s = sample::hostile();
    for locale in ["en", "ja"] {
        let html = status_page::render(&s, locale, true);
        assert!(!html.contains("<script"), "{locale}: raw <script>");
        assert!(!html.contains("<img"), "{locale}: raw <img>");
        let doc = read_html(&html);
        assert!(
            doc.tags
                .iter()
                .all(|t| !t.attrs.contains_key("onerror") && t.name != "script"),
            "{locale}: hostile markup became a tag"
        );
        // Decoded, the hostile text reads back exactly: escaped once, not twice.
        assert!(
            doc.text.contains(HOSTILE),
            "{locale}: text not shown verbatim"
        );
        let title_attr = doc.named("li").filter_map(|t| t.attrs.get("title")).count();
        assert!(title_attr > 0);
        let labels: Vec<_> = doc.named("label").collect();
        assert!(!labels.is_empty());
    }
    let mut evil_locale = sample::snapshot();
    evil_locale.locales = vec!["en".into(), "\"><script>x</script>".into()];
    let html = status_page::render(&evil_locale, "\"><script>x</script>", true);
    assert!(!html.contains("<script"));
}

#[test]
fn nothing_internal_appears() {
    let s = sample::snapshot();
    for locale in ["en", "ja"] {
        let html = status_page::render(&s, locale, true);
        for word in [
            INTERNAL_ID,
            "by_locale",
            "affected_users",
            "p50",
            "p90",
            "uptime_ratio",
            "ThirdParty",
            "Critical",
            "PartialOutage",
        ] {
            assert!(!html.contains(word), "{locale}: {word:?} on the page");
        }
    }
    // The incident naming an internal component lists only the public one.
    let html = status_page::render(&s, "en", true);
    let api = element(&html, "article", "incident-13");
    assert!(api.contains("<dd>Public API</dd>"), "{api}");
}

#[test]
fn incidents_with_and_without_workaround() {
    let s = sample::snapshot();
    let html = status_page::render(&s, "en", true);
    let with = element(&html, "article", "incident-12");
    assert!(
        with.contains("<strong>Search</strong>: Browse products from the category pages"),
        "{with}"
    );
    assert!(!with.contains(i18n::t("en", Key::NoWorkaround)));
    assert!(with.contains("About 15,000 users affected"));
    assert!(with.contains("Similar incidents were resolved in 20–45 minutes"));
    assert!(!with.contains(i18n::t("en", Key::ThirdParty)));
    // Updates newest first, line breaks kept.
    let identified = with.find("We have found the cause").unwrap();
    let investigating = with
        .find("We are investigating a problem affecting Search.<br>About")
        .unwrap();
    assert!(identified < investigating);

    let without = element(&html, "article", "incident-13");
    assert!(
        without.contains(i18n::t("en", Key::NoWorkaround)),
        "{without}"
    );
    assert!(without.contains(i18n::t("en", Key::ThirdParty)));
    assert!(without.contains(i18n::t("en", Key::NoEstimateYet)));

    let ja = status_page::render(&s, "ja", true);
    let with = element(&ja, "article", "incident-12");
    assert!(
        with.contains("<strong>検索</strong>: 検索が遅い間は"),
        "{with}"
    );
    assert!(element(&ja, "article", "incident-13").contains("現在、利用可能な回避策はありません"));

    // A workaround text that is blank counts as none.
    let mut blank = s.clone();
    blank.incidents[1].workarounds[0].1 = keel_core::config::LocalizedText::plain("  ");
    let html = status_page::render(&blank, "en", true);
    assert!(element(&html, "article", "incident-12").contains(i18n::t("en", Key::NoWorkaround)));

    // Resolved incidents are history, not active.
    let active = element(&html, "section", "h-active");
    assert!(!active.contains("incident-9"));
    assert!(element(&html, "li", "incident-9").contains("<details>"));
}

#[test]
fn the_empty_page() {
    for locale in ["en", "ja"] {
        let html = status_page::render(&sample::empty(), locale, true);
        let doc = read_html(&html);
        let text = doc.readable();
        assert!(text.contains(i18n::t(locale, Key::AllSystemsOperational)));
        assert!(text.contains(i18n::t(locale, Key::NoIncidents)));
        assert!(!text.contains(i18n::t(locale, Key::ActiveIncidents)));
        assert!(!text.contains(i18n::t(locale, Key::SubscribeComponents)));
        assert!(doc.named("form").count() == 1);
        assert_accessible(&html, locale);
    }
}

/// How many days an uptime bar stands for: `w12` is twelve, no width class one.
fn width(class: &str) -> usize {
    class
        .split(' ')
        .find_map(|c| c.strip_prefix('w').and_then(|n| n.parse().ok()))
        .unwrap_or(1)
}

fn assert_accessible(html: &str, locale: &str) {
    let doc = read_html(html);
    let html_tag = doc.named("html").next().unwrap();
    assert_eq!(html_tag.attrs.get("lang").map(String::as_str), Some(locale));
    for landmark in ["header", "main", "footer"] {
        assert_eq!(doc.named(landmark).count(), 1, "{locale}: one <{landmark}>");
    }
    let mut ids = BTreeSet::new();
    for t in &doc.tags {
        if let Some(id) = t.attrs.get("id") {
            assert!(ids.insert(id.clone()), "{locale}: duplicate id {id}");
        }
    }
    let label_for: BTreeSet<&str> = doc
        .named("label")
        .filter_map(|l| l.attrs.get("for").map(String::as_str))
        .collect();
    for input in doc.named("input") {
        if input.attrs.get("type").map(String::as_str) == Some("hidden") {
            continue;
        }
        let id = input.attrs.get("id").expect("input without id");
        assert!(
            label_for.contains(id.as_str()),
            "{locale}: input #{id} has no label"
        );
    }
    for t in &doc.tags {
        if let Some(target) = t
            .attrs
            .get("aria-labelledby")
            .or(t.attrs.get("aria-describedby"))
        {
            assert!(
                ids.contains(target),
                "{locale}: points at missing #{target}"
            );
        }
    }
    for ol in doc.named("ol").filter(|t| {
        t.attrs
            .get("class")
            .is_some_and(|c| c.split(' ').any(|c| c == "bars"))
    }) {
        assert_eq!(ol.attrs.get("role").map(String::as_str), Some("img"));
        assert!(ol
            .attrs
            .get("aria-label")
            .is_some_and(|l| l.contains(i18n::t(locale, Key::UptimeLast90Days))));
    }
    let headings: Vec<_> = doc.named("h1").collect();
    assert_eq!(headings.len(), 1, "{locale}: one h1");
}

#[test]
fn page_structure_is_accessible() {
    let s = sample::snapshot();
    for locale in ["en", "ja"] {
        let html = status_page::render(&s, locale, true);
        assert_accessible(&html, locale);
        let doc = read_html(&html);
        assert_eq!(doc.named("nav").count(), 1);
        let current: Vec<_> = doc
            .named("a")
            .filter(|a| a.attrs.contains_key("aria-current"))
            .collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].attrs["href"], format!("?lang={locale}"));
        // The subscribe form posts what the server expects.
        let form = doc.named("form").next().unwrap();
        assert_eq!(form.attrs["method"], "post");
        assert_eq!(form.attrs["action"], "subscribe");
        let names: BTreeSet<&str> = doc
            .named("input")
            .filter_map(|i| i.attrs.get("name").map(String::as_str))
            .collect();
        assert_eq!(names, ["components", "email", "locale", "webhook"].into());
        let hidden = doc
            .named("input")
            .find(|i| i.attrs["name"] == "locale")
            .unwrap();
        assert_eq!(hidden.attrs["value"], locale);
        let boxes: Vec<&str> = doc
            .named("input")
            .filter(|i| i.attrs["name"] == "components")
            .map(|i| i.attrs["value"].as_str())
            .collect();
        assert_eq!(boxes, ["search", "api", "web", "billing", "reports"]);
        // Ninety days per component, oldest first, days without data marked; days with the
        // same uptime share one bar as wide as they are many.
        let bars: Vec<_> = doc
            .named("li")
            .filter(|l| l.attrs.contains_key("title"))
            .collect();
        let days = |class: Option<&str>| -> usize {
            bars.iter()
                .filter(|b| class.is_none_or(|c| b.attrs["class"].split(' ').next() == Some(c)))
                .map(|b| width(&b.attrs["class"]))
                .sum()
        };
        assert_eq!(days(None), 90 * s.components.len());
        assert_eq!(days(Some("nd")), 5 * s.components.len());
        // The gap, the full days between the bad ones, and the two bad days on their own.
        assert_eq!(bars.len(), 6 * s.components.len());
        let first = bars[0];
        assert_eq!(first.attrs["class"], "nd w5");
        let bad = bars.iter().find(|b| b.attrs["class"] == "ma").unwrap();
        assert!(
            bad.attrs["title"].contains("93.00%"),
            "{}",
            bad.attrs["title"]
        );
    }
    let no_links = status_page::render(&s, "en", false);
    assert!(!no_links.contains("?lang="));
    assert_eq!(read_html(&no_links).named("nav").count(), 0);
}

#[test]
fn banner_follows_the_indicator() {
    let mut s = sample::empty();
    for (ind, class, key) in [
        (Indicator::None, "ind-none", Key::AllSystemsOperational),
        (Indicator::Minor, "ind-minor", Key::SomeSystemsAffected),
        (
            Indicator::Critical,
            "ind-critical",
            Key::SomeSystemsAffected,
        ),
        (
            Indicator::Maintenance,
            "ind-maintenance",
            Key::SomeSystemsUnderMaintenance,
        ),
    ] {
        s.indicator = ind;
        let html = status_page::render(&s, "ja", true);
        assert!(html.contains(&format!("class=\"banner {class}\"")));
        assert!(html.contains(&format!("<p class=\"headline\">{}</p>", i18n::t("ja", key))));
    }
}

/// Relative luminance and contrast ratio, as WCAG 2 defines them.
fn contrast(a: &str, b: &str) -> f64 {
    fn lum(hex: &str) -> f64 {
        let h = hex.trim_start_matches('#');
        let ch = |i: usize| {
            let c = f64::from(u8::from_str_radix(&h[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4)
    }
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn colours_have_enough_contrast_in_both_schemes() {
    let css = include_str!("../assets/page.css");
    let vars = |block: &str| -> HashMap<String, String> {
        block
            .split(';')
            .filter_map(|d| {
                let d = &d[d.find("--")?..];
                let (k, v) = d.split_once(':')?;
                let (k, v) = (k.trim(), v.trim());
                (k.starts_with("--") && v.starts_with('#') && v.len() == 7)
                    .then(|| (k.to_string(), v.to_string()))
            })
            .collect()
    };
    let light_start = css.find(":root {").unwrap();
    let dark_start = css.find("@media (prefers-color-scheme: dark)").unwrap();
    let light = vars(&css[light_start..dark_start]);
    let mut dark = light.clone();
    let dark_block = &css[dark_start..];
    dark.extend(vars(&dark_block[..dark_block.find("}\n}").unwrap()]));
    assert_ne!(light["--bg"], dark["--bg"], "a dark scheme exists");
    for (scheme, v) in [("light", &light), ("dark", &dark)] {
        let mut pairs = vec![
            ("--fg", "--bg"),
            ("--fg", "--card"),
            ("--muted", "--bg"),
            ("--muted", "--card"),
            ("--link", "--bg"),
            ("--link", "--card"),
            ("--on-status", "--link"),
        ];
        for st in ["--ok", "--minor", "--partial", "--major", "--maint"] {
            pairs.push(("--on-status", st)); // banner text
            pairs.push((st, "--bg")); // component status words
        }
        for (fg, bg) in pairs {
            let r = contrast(&v[fg], &v[bg]);
            assert!(r >= 4.5, "{scheme}: {fg} on {bg} is {r:.2}:1");
        }
    }
    for c in [
        keel_core::public::badge::color::OPERATIONAL,
        keel_core::public::badge::color::DEGRADED,
        keel_core::public::badge::color::PARTIAL,
        keel_core::public::badge::color::MAJOR,
        keel_core::public::badge::color::MAINTENANCE,
        keel_core::public::badge::color::LABEL,
    ] {
        assert!(contrast("#ffffff", c) >= 4.5, "badge colour {c}");
    }
}

// ---------------------------------------------------------------------------------------
// Round trip: our Statuspage documents through Keel's own vendor parser.

fn read_back(doc: &serde_json::Value, follow: &[&str]) -> status_pages::VendorStatus {
    let bytes = serde_json::to_vec(doc).unwrap();
    let follow: Vec<String> = follow.iter().map(|s| s.to_string()).collect();
    status_pages::parse(VendorFormat::Statuspage, &bytes, &follow).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn keel_reads_its_own_summary_as_a_vendor() {
    let mut s = sample::snapshot();
    for (ind, health) in [
        (Indicator::Critical, Health::Down),
        (Indicator::Major, Health::Down),
        (Indicator::Minor, Health::Degraded),
        (Indicator::Maintenance, Health::Degraded),
        (Indicator::None, Health::Up),
    ] {
        s.indicator = ind;
        for locale in ["en", "ja"] {
            let got = read_back(&statuspage::summary(&s, locale), &[]);
            assert_eq!(got.health, health, "{ind:?} in {locale}");
        }
    }
    // Following one component reads that component's status, by name.
    for (name, health) in [
        ("Search", Health::Degraded),
        ("Public API", Health::Down),
        ("Website", Health::Up),
    ] {
        let got = read_back(&statuspage::summary(&s, "en"), &[name]);
        assert_eq!(got.health, health, "{name}");
    }
    // The unresolved incidents come through with their names and statuses.
    let got = read_back(&statuspage::summary(&s, "en"), &[]);
    let names: Vec<&str> = got.incidents.iter().map(|i| i.name.as_str()).collect();
    assert!(
        names.contains(&"Search is slow") && names.contains(&"Public API errors"),
        "{names:?}"
    );
    assert!(got.incidents.iter().any(|i| i.status == "identified"));
    assert_eq!(got.components.len(), s.components.len());
    assert!(got
        .components
        .iter()
        .any(|c| c.name == "Search" && c.status == "partial_outage"));

    // An empty page is up, and Auto detection recognises ours as Statuspage.
    let empty = serde_json::to_vec(&statuspage::summary(&sample::empty(), "en")).unwrap();
    assert_eq!(
        status_pages::parse(VendorFormat::Auto, &empty, &[])
            .unwrap()
            .health,
        Health::Up
    );
}

#[test]
fn every_document_reads_back() {
    let s = sample::snapshot();
    let docs: Vec<(&str, serde_json::Value)> = vec![
        ("status", statuspage::status(&s, "en")),
        ("components", statuspage::components(&s, "en")),
        ("incidents", statuspage::incidents(&s, "en")),
        ("unresolved", statuspage::incidents_unresolved(&s, "en")),
        ("maintenances", statuspage::scheduled_maintenances(&s, "en")),
        (
            "upcoming",
            statuspage::scheduled_maintenances_upcoming(&s, "en"),
        ),
        (
            "active",
            statuspage::scheduled_maintenances_active(&s, "en"),
        ),
    ];
    for (what, doc) in docs {
        let got = read_back(&doc, &[]);
        let want = match what {
            "status" => Health::Down,
            // Worst component: the Public API's major outage.
            "components" => Health::Down,
            // Unresolved incidents' impact: one critical.
            "incidents" | "unresolved" => Health::Down,
            // In-progress maintenance degrades; a scheduled one alone does not.
            "maintenances" | "active" => Health::Degraded,
            "upcoming" => Health::Up,
            _ => unreachable!(),
        };
        assert_eq!(got.health, want, "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// The page at scale, and component groups.

/// A config of `n` public components (`groups` groups, or none), parsed by Keel's own parser,
/// built into a snapshot with 90 days of uptime each (some imperfect days, the newest tenth
/// checked for less than 90 days) and 1% of them down.
fn scale_snapshot(n: usize, groups: usize) -> Snapshot {
    use chrono::{TimeDelta, TimeZone, Utc};
    use keel_core::assess::NodeHealth;
    use keel_core::public::DayUptime;
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    let mut toml = String::from("[page]\ntitle = \"Scale Status\"\nlocales = [\"en\", \"ja\"]\n\n");
    for i in 0..n {
        let _ = write!(
            toml,
            "[[component]]\nid = \"c{i:05}\"\nname = \"Service {i:05}\"\n"
        );
        if groups > 0 {
            let _ = writeln!(toml, "group = \"Region {:03}\"", i * groups / n);
        }
        toml.push('\n');
    }
    let config = keel_core::config::parse(&toml, "scale.toml", &[]).expect("parses");
    let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
    let today = now.date_naive();
    let mut uptime = BTreeMap::new();
    let mut health = BTreeMap::new();
    for (i, c) in config.components.iter().enumerate() {
        let since = if i % 10 == 9 { i % 30 } else { 90 };
        let days = (0..90)
            .map(|d| DayUptime {
                day: today - TimeDelta::days(89 - d as i64),
                ratio: if 89 - d >= since {
                    None
                } else if (i + d) % 37 == 0 {
                    Some(0.993)
                } else if (i * 7 + d) % 211 == 0 {
                    Some(0.94)
                } else {
                    Some(1.0)
                },
            })
            .collect::<Vec<_>>();
        uptime.insert(c.id.clone(), days);
        if i % 100 == 42 {
            health.insert(
                NodeId::from(&c.id),
                NodeHealth {
                    health: Health::Down,
                    since: now - TimeDelta::minutes(5),
                    reasons: vec!["HTTP 503".into()],
                    failure_kind: "http".into(),
                },
            );
        }
    }
    keel_core::public::snapshot::build(&config, &[], &health, &uptime, &[], now)
}

#[test]
fn ten_thousand_components_make_a_page_under_a_megabyte() {
    // In a hundred groups, in a thousand (rows then say their uptime in words), and in none
    // (then they are listed together, by status).
    for groups in [100, 1_000, 0] {
        let s = scale_snapshot(10_000, groups);
        for locale in ["en", "ja"] {
            let html = status_page::render(&s, locale, true);
            assert!(
                html.len() < 1_000_000,
                "{groups} groups, {locale}: the page is {} bytes",
                html.len()
            );
            assert_accessible(&html, locale);
            // Still meaningful: every component is named, every down one under its status.
            let doc = read_html(&html);
            for i in [0, 42, 4_242, 9_999] {
                assert!(doc.text.contains(&format!("Service {i:05}")), "{i}");
            }
            let down = html.find(i18n::t(locale, Key::MajorOutage)).unwrap();
            assert!(html[down..].contains("Service 00042"));
        }
    }
}

#[test]
fn groups_collapse_with_their_worst_status_and_their_uptime() {
    // 300 components in three groups: past the number shown in full.
    let s = scale_snapshot(300, 3);
    let html = status_page::render(&s, "en", true);
    let doc = read_html(&html);
    assert_accessible(&html, "en");
    let details: Vec<_> = doc.named("details").collect();
    assert_eq!(details.len(), 3, "one per group");
    // Each group has a component down (c00042, c00142, c00242): all open.
    assert!(details.iter().all(|d| d.attrs.contains_key("open")));
    let group = group_html(&html, "Region 000");
    assert!(
        group.contains("<span class=\"gname\">Region 000</span>"),
        "{group}"
    );
    assert!(group.contains("Major outage</span>"));
    assert!(group.contains("100 components, 1 affected"));
    // Members by status, worst first, names only; the group's own uptime bars.
    let major = group.find("Major outage (1)").unwrap();
    let operational = group.find("Operational (99)").unwrap();
    assert!(major < operational);
    assert!(group[major..operational].contains("<li>Service 00042</li>"));
    assert_eq!(group.matches("class=\"bars").count(), 1);
    // The subscribe form offers the groups.
    let boxes: Vec<&str> = doc
        .named("input")
        .filter(|i| i.attrs.get("name").map(String::as_str) == Some("components"))
        .map(|i| i.attrs["value"].as_str())
        .collect();
    assert_eq!(
        boxes,
        ["Region 000", "Region 001", "Region 002"]
            .map(group_id)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );

    // A group with nothing wrong stays closed; in Japanese it reads Japanese.
    let calm = scale_snapshot(300, 300);
    let html = status_page::render(&calm, "ja", true);
    let doc = read_html(&html);
    let closed = doc
        .named("details")
        .filter(|d| !d.attrs.contains_key("open"))
        .count();
    assert_eq!(closed, 297);
    assert!(html.contains("1 サービス（すべて正常稼働）"));
    // Three hundred rows: too many to draw bars for; each says its uptime in words.
    assert!(!html.contains("class=\"bars"));
    assert_eq!(
        html.matches(&format!("{}: ", i18n::t("ja", Key::UptimeLast90Days)))
            .count(),
        300
    );
}

#[test]
fn a_small_page_shows_every_member_in_full_inside_its_group() {
    let s = scale_snapshot(12, 2);
    let html = status_page::render(&s, "en", true);
    assert_accessible(&html, "en");
    let group = group_html(&html, "Region 000");
    for i in 0..6 {
        assert!(group.contains(&format!("id=\"component-c{i:05}\"")), "{i}");
    }
    // The group's bars and each member's.
    assert_eq!(group.matches("class=\"bars").count(), 7);
    let doc = read_html(&html);
    let boxes = doc
        .named("input")
        .filter(|i| i.attrs.get("name").map(String::as_str) == Some("components"))
        .count();
    assert_eq!(boxes, 12, "every component can be chosen");
}

/// A group's row, up to the next group's (the pages these tests render have groups only).
fn group_html<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"group-{}\"", group_id(name)))
        .unwrap_or_else(|| panic!("no group {name}"));
    let rest = &html[start..];
    let end = rest[1..]
        .find("<li class=\"component group")
        .map_or_else(|| rest.find("</section>").unwrap(), |e| e + 1);
    &rest[..end]
}

fn group_id(name: &str) -> String {
    keel_core::config::group_id(&keel_core::config::LocalizedText::plain(name))
}

#[test]
fn groups_in_the_json_have_statuspages_shape() {
    let s = scale_snapshot(12, 2);
    let doc = statuspage::components(&s, "en");
    let list = doc["components"].as_array().unwrap();
    assert_eq!(
        list.len(),
        14,
        "two group components and their twelve members"
    );
    let europe = group_id("Region 000");
    let g = &list[0];
    assert_eq!(g["id"], europe.as_str());
    assert_eq!(g["group"], true);
    assert_eq!(g["group_id"], serde_json::Value::Null);
    assert_eq!(g["position"], 0);
    assert_eq!(g["status"], "operational");
    assert_eq!(
        g["components"],
        serde_json::json!(["c00000", "c00001", "c00002", "c00003", "c00004", "c00005"])
    );
    for (j, m) in list[1..7].iter().enumerate() {
        assert_eq!(m["group_id"], europe.as_str());
        assert_eq!(m["group"], false);
        assert_eq!(m["position"], j, "members count within their group");
    }
    assert_eq!(list[7]["group"], true);
    assert_eq!(list[7]["position"], 1);
    // The same keys, in the same order, as a real page's group component and member.
    let real = String::from_utf8(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/statuspage/twilio-summary-incidents-upcoming-maintenances.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let real_doc: serde_json::Value = serde_json::from_str(&real).unwrap();
    let real_list = real_doc["components"].as_array().unwrap();
    let real_group = real_list.iter().find(|c| c["group"] == true).unwrap();
    let real_member = real_list
        .iter()
        .find(|c| c["group_id"].is_string())
        .unwrap();
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    // Twilio's capture (2020) predates `start_date`, which Keel writes like Discord's does.
    let ours = |v: &serde_json::Value| {
        let mut k = keys(v);
        k.remove("start_date");
        k
    };
    assert_eq!(ours(g), keys(real_group));
    assert_eq!(ours(&list[1]), keys(real_member));
    let text = String::from_utf8(statuspage::document(
        statuspage::Document::Components,
        &s,
        "en",
    ))
    .unwrap();
    let first = &text[text.find("\"components\":[{").unwrap()..];
    let first = &first[..first.find(']').unwrap()];
    let order: Vec<usize> = ["\"only_show_if_degraded\"", "\"components\":["]
        .iter()
        .map(|k| first.rfind(k).unwrap())
        .collect();
    assert!(
        order[0] < order[1],
        "members' ids come last, as Statuspage writes them"
    );
    // A group's status is its worst member's.
    let mut down = s.clone();
    down.components[3].status = ComponentStatus::PartialOutage;
    let doc = statuspage::components(&down, "en");
    assert_eq!(doc["components"][0]["status"], "partial_outage");
    // Keel's own vendor poller reads a grouped page: the whole of it, a group, a member.
    down.indicator = Indicator::Major;
    let summary = statuspage::summary(&down, "en");
    assert_eq!(read_back(&summary, &[]).health, Health::Down);
    assert_eq!(
        read_back(&summary, &["Service 00003"]).health,
        Health::Degraded
    );
    assert_eq!(read_back(&summary, &["Service 00007"]).health, Health::Up);
    assert_eq!(
        read_back(&summary, &["Region 000"]).health,
        Health::Degraded
    );
}
