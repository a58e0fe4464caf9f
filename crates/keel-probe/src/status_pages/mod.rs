//! Vendors' public status pages: one parser per format, and the poller that fetches them.
//!
//! A vendor is a dependency Keel cannot probe directly, so its own status page is the signal.
//! [`parse`] turns a status document into a [`VendorStatus`]: a health, the vendor's own words
//! for it (incident names and the latest update, kept internally as the reason), the ongoing
//! incidents and the components. Each format lives in its own module and only reads the
//! document into a common [`Page`]; choosing the followed components and writing the reason
//! happen once, here, so every format behaves the same way.
//!
//! Formats: Atlassian Statuspage v2 (`summary.json`, `status.json`, `components.json`,
//! `incidents*.json`, `scheduled-maintenances*.json`, a single incident), status.io, the Slack
//! status API v2, Instatus `summary.json`, Google Cloud `incidents.json` and Heroku's
//! current-status API. [`VendorFormat::Auto`] tells them apart by shape.
//!
//! A document Keel cannot read is a [`VendorError`] saying why; [`poll`] turns that, like an
//! unreachable page, into [`Health::Unknown`], which never pages anyone by itself.

mod google_cloud;
mod heroku;
mod instatus;
mod json;
mod poll;
mod slack_status;
mod statusio;
mod statuspage;

use chrono::{DateTime, Utc};
use keel_core::config::VendorFormat;
use keel_core::Health;
use serde_json::Value;

pub use poll::{poll, VendorPoll, MAX_DOCUMENT_BYTES};

use json::Node;

/// What a vendor's status document says, reduced to what Keel acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorStatus {
    /// Health of the followed components, or of the whole page when none are followed.
    pub health: Health,
    /// Why, in the vendor's own words where it has any: headline, affected components,
    /// incident names and latest update text. Internal only: it may name the vendor.
    pub reason: String,
    /// Ongoing incidents and in-progress maintenances that bear on `health`.
    pub incidents: Vec<VendorIncident>,
    /// The followed components, or every component the document lists when none are
    /// followed.
    pub components: Vec<VendorComponent>,
    /// When the vendor last changed its page, if the document says.
    pub updated_at: Option<DateTime<Utc>>,
}

impl VendorStatus {
    /// A status that could not be learned, with the reason why.
    pub fn unknown(reason: impl Into<String>) -> Self {
        VendorStatus {
            health: Health::Unknown,
            reason: reason.into(),
            incidents: Vec::new(),
            components: Vec::new(),
            updated_at: None,
        }
    }
}

/// An ongoing incident (or maintenance in progress) on a vendor's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorIncident {
    pub id: String,
    pub name: String,
    /// The vendor's own word: "investigating", "monitoring", "active", "in_progress", …
    pub status: String,
    /// The vendor's own word for how bad it is: "major", "outage", "SERVICE_DISRUPTION", …;
    /// empty when the format has none.
    pub impact: String,
    /// Text of the most recent update, whitespace-collapsed and capped in length.
    pub latest_update: Option<String>,
    pub url: Option<String>,
}

/// One component (service, system, product) on a vendor's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorComponent {
    pub id: String,
    pub name: String,
    /// The vendor's own word: "partial_outage", "Operational", "blue", …
    pub status: String,
    pub health: Health,
}

/// Why a status document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    #[error("empty document")]
    Empty,
    /// Not JSON at all, or cut short: "not JSON at line 1 column 5: expected value".
    #[error("{0}")]
    NotJson(String),
    /// JSON, but a field Keel needs is missing or of the wrong type.
    #[error("{}", field_message(.path, .reason))]
    Field { path: String, reason: String },
    /// JSON of a shape none of the formats has.
    #[error("unrecognised document: {0}")]
    Unrecognised(String),
}

fn field_message(path: &str, reason: &str) -> String {
    if reason == "missing" {
        format!("missing field `{path}`")
    } else if path.is_empty() {
        reason.to_string()
    } else {
        format!("{path}: {reason}")
    }
}

/// Parses a vendor status document of `format` (or detects it, for `Auto`).
///
/// `follow` is the vendor's configured `components`: when non-empty, health comes from those
/// components only (matched by id or name, case-insensitively; for Statuspage also as
/// "Group - Component"), and a name the document does not list is said in the reason. Formats
/// that list no components but name what each incident affects (Slack services, Google Cloud
/// products, Statuspage incident lists) follow through their incidents; formats that name
/// nothing (Statuspage `status.json`, Instatus) report the whole page and say so.
pub fn parse(
    format: VendorFormat,
    body: &[u8],
    follow: &[String],
) -> Result<VendorStatus, VendorError> {
    let doc = read_json(body)?;
    let format = match format {
        VendorFormat::Auto => detect(&doc)?,
        f => f,
    };
    let root = Node::root(&doc);
    let page = match format {
        VendorFormat::Statuspage => statuspage::parse(root)?,
        VendorFormat::StatusIo => statusio::parse(root)?,
        VendorFormat::Slack => slack_status::parse(root)?,
        VendorFormat::Instatus => instatus::parse(root)?,
        VendorFormat::GoogleCloud => google_cloud::parse(root)?,
        VendorFormat::Heroku => heroku::parse(root)?,
        // `detect` never answers Auto.
        VendorFormat::Auto => return Err(VendorError::Unrecognised(EXPECTED.into())),
    };
    Ok(page.finish(follow))
}

const EXPECTED: &str = "expected a Statuspage summary (`page` and `status`), a status.io \
    document (`result.status_overall`), a Slack status (`status` and `active_incidents`), an \
    Instatus summary (`page.status`), Google Cloud incidents (an array of incidents) or a \
    Heroku current status (`status[].system`)";

/// Tells the formats apart by the keys only each has.
fn detect(doc: &Value) -> Result<VendorFormat, VendorError> {
    let unrecognised =
        |found: String| VendorError::Unrecognised(format!("{EXPECTED}; found {found}"));
    match doc {
        Value::Array(items) => match items.first() {
            Some(Value::Object(first))
                if ["external_desc", "affected_products", "service_name"]
                    .iter()
                    .any(|k| first.contains_key(*k)) =>
            {
                Ok(VendorFormat::GoogleCloud)
            }
            Some(_) => Err(unrecognised("an array of something else".into())),
            None => Err(unrecognised("an empty array".into())),
        },
        Value::Object(obj) => {
            let has = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
            if obj
                .get("result")
                .and_then(Value::as_object)
                .is_some_and(|r| r.contains_key("status_overall"))
            {
                return Ok(VendorFormat::StatusIo);
            }
            if let Some(page) = obj.get("page").and_then(Value::as_object) {
                if page.get("status").is_some_and(Value::is_string) || has("activeIncidents") {
                    return Ok(VendorFormat::Instatus);
                }
                if [
                    "status",
                    "components",
                    "incidents",
                    "incident",
                    "scheduled_maintenances",
                ]
                .iter()
                .any(|k| has(k))
                {
                    return Ok(VendorFormat::Statuspage);
                }
            }
            if has("activeIncidents") {
                return Ok(VendorFormat::Instatus);
            }
            if has("active_incidents")
                || obj
                    .get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| matches!(s, "ok" | "active" | "broken"))
            {
                return Ok(VendorFormat::Slack);
            }
            if obj
                .get("status")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_object)
                .is_some_and(|s| s.contains_key("system"))
            {
                return Ok(VendorFormat::Heroku);
            }
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
            keys.sort_unstable();
            Err(unrecognised(if keys.is_empty() {
                "an empty object".into()
            } else {
                format!("an object with keys {}", keys.join(", "))
            }))
        }
        other => Err(unrecognised(json::kind(other).into())),
    }
}

fn read_json(body: &[u8]) -> Result<Value, VendorError> {
    // Some servers prefix a UTF-8 byte-order mark, which JSON forbids but means nothing.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(VendorError::Empty);
    }
    serde_json::from_slice(body).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full);
        let what = if e.is_eof() {
            "truncated JSON"
        } else if body.trim_ascii_start().starts_with(b"<") {
            "not JSON (it looks like HTML or XML: does status_url point at the page instead of its API?)"
        } else {
            "not JSON"
        };
        VendorError::NotJson(format!(
            "{what} at line {} column {}: {msg}",
            e.line(),
            e.column()
        ))
    })
}

// ---- the common page model ------------------------------------------------------------------

/// How `follow` applies to a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowBy {
    /// The document lists every component with its status.
    Components,
    /// The document lists only incidents, each naming what it affects.
    Incidents,
    /// The document names no parts at all.
    Nothing,
}

/// A component as a format read it.
pub(crate) struct Comp {
    pub public: VendorComponent,
    /// How to show it in a reason ("CARRIER NETWORK - SMS, Middle East & Africa").
    pub display: String,
    /// Extra name it may be followed by (Statuspage's "Group - Component").
    pub alias: Option<String>,
    /// Human words for its status ("partial outage", "blue (maintenance)").
    pub words: String,
    /// A Statuspage group: its status repeats its children's, so reasons skip it.
    pub is_group: bool,
}

/// An ongoing incident as a format read it.
pub(crate) struct Inc {
    pub public: VendorIncident,
    /// What this incident alone implies, for formats without component statuses.
    pub health: Health,
    /// Ids and names of the components, services or products it affects.
    pub affects: Vec<String>,
}

/// A status document read into the shape every format shares.
pub(crate) struct Page {
    /// Health of the whole page.
    pub health: Health,
    /// The vendor's own words for the whole page ("Minor Service Outage").
    pub headline: String,
    pub components: Vec<Comp>,
    /// Ongoing only.
    pub incidents: Vec<Inc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub follow_by: FollowBy,
}

/// Longest reason kept; the caller stores it with every state change.
const MAX_REASON_CHARS: usize = 1000;
/// Longest update text quoted per incident inside a reason.
const MAX_UPDATE_IN_REASON: usize = 240;
/// Longest update text kept on a [`VendorIncident`].
pub(crate) const MAX_UPDATE_CHARS: usize = 2000;
const MAX_LISTED_COMPONENTS: usize = 6;
const MAX_LISTED_INCIDENTS: usize = 3;

fn rank(h: Health) -> u8 {
    match h {
        Health::Up => 0,
        Health::Unknown => 1,
        Health::Degraded => 2,
        Health::Down => 3,
    }
}

/// The worst of several healths; `Up` for none. Unknown counts as worse than up, so a
/// followed component in a state Keel cannot read is not reported healthy.
pub(crate) fn worst(hs: impl IntoIterator<Item = Health>) -> Health {
    hs.into_iter()
        .max_by_key(|h| rank(*h))
        .unwrap_or(Health::Up)
}

/// Names as a person types them in config: case and surrounding spaces do not matter.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

impl Comp {
    fn matches(&self, wanted: &str) -> bool {
        same(&self.public.id, wanted)
            || same(&self.public.name, wanted)
            || self.alias.as_deref().is_some_and(|a| same(a, wanted))
    }
}

impl Inc {
    fn affects_any(&self, names: &[&str]) -> bool {
        self.affects
            .iter()
            .any(|a| names.iter().any(|n| same(a, n)))
    }

    fn describe(&self) -> String {
        let i = &self.public;
        let mut s = i.name.trim().to_string();
        let mut tags = Vec::new();
        if !i.status.is_empty() {
            tags.push(i.status.replace('_', " "));
        }
        if !i.impact.is_empty() {
            tags.push(format!("impact {}", i.impact));
        }
        if !tags.is_empty() {
            s.push_str(&format!(" ({})", tags.join(", ")));
        }
        if let Some(u) = i.latest_update.as_deref().filter(|u| !u.is_empty()) {
            s.push_str(" — ");
            s.push_str(&clip(u, MAX_UPDATE_IN_REASON));
        }
        s
    }
}

impl Page {
    pub(crate) fn finish(self, follow: &[String]) -> VendorStatus {
        let wanted: Vec<&str> = follow
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if wanted.is_empty() {
            return self.whole_page();
        }
        match self.follow_by {
            FollowBy::Components => self.follow_components(&wanted),
            FollowBy::Incidents => self.follow_incidents(&wanted),
            FollowBy::Nothing => {
                let mut s = self.whole_page();
                s.reason = clip(
                    &format!(
                        "{} (this document lists no components, so the followed {} cannot be \
                         picked out; this is the whole page)",
                        s.reason,
                        wanted.join(", ")
                    ),
                    MAX_REASON_CHARS,
                );
                s
            }
        }
    }

    fn whole_page(self) -> VendorStatus {
        let mut parts = Vec::new();
        let failing: Vec<&Comp> = self
            .components
            .iter()
            .filter(|c| !c.is_group && c.public.health != Health::Up)
            .collect();
        if !failing.is_empty() {
            parts.push(list_components(&failing));
        }
        let incidents: Vec<&Inc> = self.incidents.iter().collect();
        if !incidents.is_empty() {
            parts.push(list_incidents(&incidents));
        }
        VendorStatus {
            health: self.health,
            reason: compose(&self.headline, &parts),
            incidents: self.incidents.into_iter().map(|i| i.public).collect(),
            components: self.components.into_iter().map(|c| c.public).collect(),
            updated_at: self.updated_at,
        }
    }

    fn follow_components(self, wanted: &[&str]) -> VendorStatus {
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !self.components.iter().any(|c| c.matches(w)))
            .collect();
        let matched: Vec<&Comp> = self
            .components
            .iter()
            .filter(|c| wanted.iter().any(|w| c.matches(w)))
            .collect();

        if matched.is_empty() {
            let reason = format!(
                "none of the followed components are on the page: {} (the page says: {})",
                wanted.join(", "),
                self.headline
            );
            return VendorStatus {
                health: Health::Unknown,
                reason: clip(&reason, MAX_REASON_CHARS),
                incidents: Vec::new(),
                components: Vec::new(),
                updated_at: self.updated_at,
            };
        }

        let keys: Vec<&str> = matched
            .iter()
            .flat_map(|c| [c.public.id.as_str(), c.public.name.as_str()])
            .chain(matched.iter().filter_map(|c| c.alias.as_deref()))
            .collect();
        let relevant: Vec<&Inc> = self
            .incidents
            .iter()
            .filter(|i| i.affects_any(&keys))
            .collect();

        let health = worst(matched.iter().map(|c| c.public.health));
        let mut parts = vec![list_components(&matched)];
        if !relevant.is_empty() {
            parts.push(list_incidents(&relevant));
        }
        if !missing.is_empty() {
            parts.push(format!("not on the page: {}", missing.join(", ")));
        }
        let headline = if health == Health::Up {
            "followed components operational"
        } else {
            "followed components affected"
        };
        VendorStatus {
            health,
            reason: compose(headline, &parts),
            incidents: relevant.into_iter().map(|i| i.public.clone()).collect(),
            components: matched.into_iter().map(|c| c.public.clone()).collect(),
            updated_at: self.updated_at,
        }
    }

    fn follow_incidents(self, wanted: &[&str]) -> VendorStatus {
        let relevant: Vec<&Inc> = self
            .incidents
            .iter()
            .filter(|i| i.affects_any(wanted))
            .collect();
        let health = worst(relevant.iter().map(|i| i.health));
        let reason = if relevant.is_empty() {
            format!("no ongoing incident affects {}", wanted.join(", "))
        } else {
            compose(
                &format!("incidents affecting {}", wanted.join(", ")),
                &[list_incidents(&relevant)],
            )
        };
        VendorStatus {
            health,
            reason: clip(&reason, MAX_REASON_CHARS),
            incidents: relevant.into_iter().map(|i| i.public.clone()).collect(),
            components: self
                .components
                .iter()
                .filter(|c| wanted.iter().any(|w| c.matches(w)))
                .map(|c| c.public.clone())
                .collect(),
            updated_at: self.updated_at,
        }
    }
}

fn list_components(comps: &[&Comp]) -> String {
    let mut s: Vec<String> = comps
        .iter()
        .take(MAX_LISTED_COMPONENTS)
        .map(|c| format!("{}: {}", c.display, c.words))
        .collect();
    if comps.len() > MAX_LISTED_COMPONENTS {
        s.push(format!("and {} more", comps.len() - MAX_LISTED_COMPONENTS));
    }
    s.join(", ")
}

fn list_incidents(incs: &[&Inc]) -> String {
    let mut s: Vec<String> = incs
        .iter()
        .take(MAX_LISTED_INCIDENTS)
        // Update texts end in full stops; dropping them reads better before the "; ".
        .map(|i| i.describe().trim_end_matches('.').to_string())
        .collect();
    if incs.len() > MAX_LISTED_INCIDENTS {
        s.push(format!(
            "and {} more incidents",
            incs.len() - MAX_LISTED_INCIDENTS
        ));
    }
    s.join("; ")
}

fn compose(headline: &str, parts: &[String]) -> String {
    let headline = headline.trim();
    let reason = if parts.is_empty() {
        headline.to_string()
    } else {
        format!("{headline}: {}", parts.join("; "))
    };
    clip(&reason, MAX_REASON_CHARS)
}

/// Collapses whitespace (vendors' update bodies carry `\r\n` paragraphs) and cuts to at most
/// `max` characters, on a character boundary, marking the cut with an ellipsis.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let keep = max.saturating_sub(1);
    let end = collapsed
        .char_indices()
        .nth(keep)
        .map_or(collapsed.len(), |(i, _)| i);
    format!("{}…", collapsed[..end].trim_end())
}
