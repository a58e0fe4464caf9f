//! The one name of a signal source, and its one text form.
//!
//! A source is a monitor (checked by Keel itself or by a remote probe at a location), a vendor,
//! or an alert from the intake. Their names do not share one alphabet: an intake key is
//! whatever the sender chose. The store keeps a source as a kind column and an id column
//! (`monitor`/`api`, `monitor`/`api@osaka`, `vendor`/`stripe`, `intake`/`generic/db-errors`),
//! the change feed and the logs print the id, and rollups name a source in one column
//! (`api`, `api@osaka`, `vendor/stripe`). [`SourceKey`] is parsed from and formatted to exactly
//! those strings here and nowhere else.

use std::cmp::Ordering;
use std::fmt;

use crate::config::{is_probe_location, LOCAL};
use crate::ids::{IdError, MonitorId, VendorId};
use crate::SourceKind;

/// Which source an observation, a signal or a stored state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A monitor: checked by Keel itself (`location` is `None`, the [`LOCAL`] location, stored
    /// as the plain id so a monitor that gains locations keeps its history), or by the remote
    /// probe at `location` (`api@osaka`).
    Monitor {
        monitor: MonitorId,
        location: Option<String>,
    },
    /// A vendor's public status.
    Vendor(VendorId),
    /// An alert from the intake: the format it came in (`alertmanager`, `generic`) and the
    /// sender's stable key (a fingerprint, the event's `key`), which may be any text.
    Intake { format: String, key: String },
}

/// Why a stored or received string names no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceKeyError {
    #[error("not a monitor id: {0}")]
    Monitor(IdError),
    #[error(
        "not a location: a location is 1-64 lowercase letters, digits and '-', and not \"local\""
    )]
    Location,
    #[error("not a vendor id: {0}")]
    Vendor(IdError),
    #[error("an intake source is \"<format>/<key>\" with a non-empty format")]
    Intake,
    #[error("unknown source kind {0:?}")]
    Kind(String),
}

impl SourceKey {
    /// The monitor checked by Keel itself.
    pub fn monitor(monitor: MonitorId) -> Self {
        SourceKey::Monitor {
            monitor,
            location: None,
        }
    }

    /// The monitor as checked from `location`; [`LOCAL`] is Keel's own check.
    pub fn monitor_at(monitor: MonitorId, location: &str) -> Self {
        SourceKey::Monitor {
            monitor,
            location: (location != LOCAL).then(|| location.to_owned()),
        }
    }

    pub fn vendor(vendor: VendorId) -> Self {
        SourceKey::Vendor(vendor)
    }

    pub fn intake(format: &str, key: &str) -> Self {
        SourceKey::Intake {
            format: format.to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            SourceKey::Monitor { .. } => SourceKind::Monitor,
            SourceKey::Vendor(_) => SourceKind::Vendor,
            SourceKey::Intake { .. } => SourceKind::Intake,
        }
    }

    /// The monitor, for a monitor's source at any location.
    pub fn monitor_id(&self) -> Option<&MonitorId> {
        match self {
            SourceKey::Monitor { monitor, .. } => Some(monitor),
            _ => None,
        }
    }

    /// The location a monitor's source is checked from ([`LOCAL`] for Keel's own check).
    pub fn location(&self) -> Option<&str> {
        match self {
            SourceKey::Monitor { location, .. } => Some(location.as_deref().unwrap_or(LOCAL)),
            _ => None,
        }
    }

    /// Reads the id column of a source of `kind`: the inverse of [`SourceKey::id`].
    pub fn parse(kind: SourceKind, id: &str) -> Result<Self, SourceKeyError> {
        match kind {
            SourceKind::Monitor => {
                let (monitor, location) = match id.split_once('@') {
                    Some((m, loc)) if is_probe_location(loc) => (m, Some(loc.to_owned())),
                    Some(_) => return Err(SourceKeyError::Location),
                    None => (id, None),
                };
                let monitor = MonitorId::parse(monitor).map_err(SourceKeyError::Monitor)?;
                Ok(SourceKey::Monitor { monitor, location })
            }
            SourceKind::Vendor => VendorId::parse(id)
                .map(SourceKey::Vendor)
                .map_err(SourceKeyError::Vendor),
            SourceKind::Intake => match id.split_once('/') {
                Some((format, key)) if !format.is_empty() => Ok(SourceKey::intake(format, key)),
                _ => Err(SourceKeyError::Intake),
            },
        }
    }

    /// Reads a kind and an id as the store and the change feed write them.
    pub fn parse_kind(kind: &str, id: &str) -> Result<Self, SourceKeyError> {
        let kind: SourceKind = kind
            .parse()
            .map_err(|_| SourceKeyError::Kind(kind.to_owned()))?;
        Self::parse(kind, id)
    }

    /// The id column: `api`, `api@osaka`, `stripe`, `generic/db-errors`. With the kind, it
    /// names the source; [`fmt::Display`] writes the same.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// The three pieces of the id text, concatenated: for comparing or hashing the id
    /// without building it.
    pub fn id_parts(&self) -> [&str; 3] {
        match self {
            SourceKey::Monitor { monitor, location } => match location {
                Some(l) => [monitor.as_str(), "@", l],
                None => [monitor.as_str(), "", ""],
            },
            SourceKey::Vendor(v) => [v.as_str(), "", ""],
            SourceKey::Intake { format, key } => [format, "/", key],
        }
    }

    /// How a rollup row names its source: a monitor's id text alone (`api`, `api@osaka`),
    /// anything else prefixed with its kind (`vendor/stripe`).
    pub fn rollup_id(&self) -> String {
        match self {
            SourceKey::Monitor { .. } => self.id(),
            other => format!("{}/{}", other.kind(), other),
        }
    }

    /// Reads a rollup row's source: the inverse of [`SourceKey::rollup_id`]. A monitor id
    /// cannot hold `/`, so a prefix is never mistaken for one.
    pub fn parse_rollup(s: &str) -> Result<Self, SourceKeyError> {
        match s.split_once('/') {
            Some((kind, rest)) => {
                let kind: SourceKind = kind
                    .parse()
                    .map_err(|_| SourceKeyError::Kind(kind.to_owned()))?;
                if kind == SourceKind::Monitor {
                    return Err(SourceKeyError::Kind(kind.to_string()));
                }
                Self::parse(kind, rest)
            }
            None => Self::parse(SourceKind::Monitor, s),
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.id_parts() {
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// By kind, then by the id text, as the stored rows sort (so listings keep their order).
impl Ord for SourceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        fn text(k: &SourceKey) -> impl Iterator<Item = u8> + '_ {
            let [a, b, c] = k.id_parts();
            a.bytes().chain(b.bytes()).chain(c.bytes())
        }
        (self.kind() as u8)
            .cmp(&(other.kind() as u8))
            .then_with(|| text(self).cmp(text(other)))
    }
}

impl PartialOrd for SourceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str) -> MonitorId {
        MonitorId::parse(id).unwrap()
    }

    #[test]
    fn the_stored_strings_round_trip() {
        for (kind, id) in [
            (SourceKind::Monitor, "api"),
            (SourceKind::Monitor, "api@osaka"),
            (SourceKind::Vendor, "stripe"),
            (SourceKind::Intake, "generic/db-errors"),
            (SourceKind::Intake, "alertmanager/4f1c2a/with slash"),
            (SourceKind::Intake, "generic/"),
        ] {
            let key = SourceKey::parse(kind, id).unwrap();
            assert_eq!((key.kind(), key.id().as_str()), (kind, id));
            assert_eq!(SourceKey::parse_rollup(&key.rollup_id()), Ok(key));
        }
    }

    #[test]
    fn keel_itself_is_the_plain_monitor_id() {
        assert_eq!(SourceKey::monitor_at(m("api"), LOCAL).id(), "api");
        assert_eq!(SourceKey::monitor_at(m("api"), "osaka").id(), "api@osaka");
        assert_eq!(
            SourceKey::monitor_at(m("api"), "osaka").location(),
            Some("osaka")
        );
        assert_eq!(SourceKey::monitor(m("api")).location(), Some(LOCAL));
        assert_eq!(
            SourceKey::vendor(VendorId::parse("stripe").unwrap()).rollup_id(),
            "vendor/stripe"
        );
    }

    #[test]
    fn what_names_no_source_is_refused() {
        use SourceKind::*;
        assert_eq!(
            SourceKey::parse(Monitor, "API"),
            Err(SourceKeyError::Monitor(IdError::BadChar('A')))
        );
        assert_eq!(
            SourceKey::parse(Monitor, "api@"),
            Err(SourceKeyError::Location)
        );
        assert_eq!(
            SourceKey::parse(Monitor, "api@local"),
            Err(SourceKeyError::Location)
        );
        assert_eq!(
            SourceKey::parse(Monitor, "a@b@c"),
            Err(SourceKeyError::Location)
        );
        assert!(matches!(
            SourceKey::parse(Vendor, "a/b"),
            Err(SourceKeyError::Vendor(_))
        ));
        assert_eq!(
            SourceKey::parse(Intake, "no-slash"),
            Err(SourceKeyError::Intake)
        );
        assert_eq!(SourceKey::parse(Intake, "/k"), Err(SourceKeyError::Intake));
        assert_eq!(
            SourceKey::parse_rollup("monitor/api"),
            Err(SourceKeyError::Kind("monitor".into()))
        );
        assert_eq!(
            SourceKey::parse_kind("probe", "api"),
            Err(SourceKeyError::Kind("probe".into()))
        );
    }

    #[test]
    fn sorted_like_the_text() {
        let mut keys = [
            SourceKey::monitor_at(m("api"), "osaka"),
            SourceKey::monitor(m("api-x")),
            SourceKey::monitor(m("api_x")),
            SourceKey::monitor(m("api")),
        ];
        keys.sort();
        let ids: Vec<String> = keys.iter().map(SourceKey::id).collect();
        let mut texts = ids.clone();
        texts.sort();
        assert_eq!(ids, texts);
    }
}
