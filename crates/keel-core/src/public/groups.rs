//! Component groups (`[[component]] group = "Europe"`), as Statuspage has them: the page shows
//! each group as one collapsible row, and the Statuspage JSON lists a group component
//! (`group: true`, its members' ids in `components`) whose members carry its `group_id`.
//!
//! A group holds no facts of its own: its status is its worst member's, its uptime per day the
//! mean of its members' that day, so a group can never read better than what is in it by
//! status, and reads like the share of its service that was up by uptime.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::model::{ComponentStatus, DayUptime, PublicComponent};
use super::snapshot::rank;
use crate::config::LocalizedText;

/// Up to this many public components, the page shows every component in full (status and
/// uptime bars), grouped ones inside their group; beyond it, a group lists its members by
/// status, names only, and at most this many ungrouped components get a row of their own (the
/// rest are listed like a group's members). That keeps the page under 1 MB with 10,000
/// components (docs/benchmarks.md, "The page at scale").
pub const DETAILED_MAX: usize = 100;

/// Up to this many rows at the top level, each row draws its uptime bars; beyond it (hundreds
/// of groups), a row says its uptime in words only.
pub const ROWS_WITH_BARS: usize = 200;

/// One group's members, in page order.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// `None` for the page's list of ungrouped components past [`DETAILED_MAX`].
    pub id: Option<&'a str>,
    pub name: Option<&'a LocalizedText>,
    pub members: Vec<&'a PublicComponent>,
}

impl Group<'_> {
    /// The worst status of its members.
    pub fn status(&self) -> ComponentStatus {
        self.members
            .iter()
            .map(|c| c.status)
            .max_by_key(|s| rank(*s))
            .unwrap_or(ComponentStatus::Operational)
    }

    /// Members not operational.
    pub fn affected(&self) -> usize {
        self.members
            .iter()
            .filter(|c| c.status != ComponentStatus::Operational)
            .count()
    }

    /// The latest change of a member.
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.members.iter().map(|c| c.updated_at).max()
    }

    /// Per day, oldest first, the mean uptime of the members that have data that day (`None`
    /// when none has).
    pub fn uptime(&self) -> Vec<DayUptime> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        // Members read the same days (the server loads 90 days for each): add by index.
        let days: Vec<NaiveDate> = first.uptime.iter().map(|d| d.day).collect();
        let aligned = self.members.iter().all(|c| {
            c.uptime.len() == days.len()
                && c.uptime.first().map(|d| d.day) == days.first().copied()
                && c.uptime.last().map(|d| d.day) == days.last().copied()
        });
        let mut sums: Vec<(f64, u32)> = vec![(0.0, 0); days.len()];
        let mut by_day: BTreeMap<NaiveDate, (f64, u32)> = BTreeMap::new();
        for c in &self.members {
            for (i, d) in c.uptime.iter().enumerate() {
                let slot = if aligned {
                    &mut sums[i]
                } else {
                    by_day.entry(d.day).or_default()
                };
                if let Some(r) = d.ratio.filter(|r| r.is_finite()) {
                    slot.0 += r;
                    slot.1 += 1;
                }
            }
        }
        let mean = |(sum, n): (f64, u32)| (n > 0).then(|| sum / f64::from(n));
        if aligned {
            days.into_iter()
                .zip(sums)
                .map(|(day, s)| DayUptime {
                    day,
                    ratio: mean(s),
                })
                .collect()
        } else {
            let skip = by_day.len().saturating_sub(90);
            by_day
                .into_iter()
                .skip(skip)
                .map(|(day, s)| DayUptime {
                    day,
                    ratio: mean(s),
                })
                .collect()
        }
    }
}

/// A row of the top level: a component of no group, or a group.
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    Component(&'a PublicComponent),
    Group(Group<'a>),
}

/// The top level in page order: each group takes the place of its first member.
pub fn top_level(components: &[PublicComponent]) -> Vec<Entry<'_>> {
    let mut sorted: Vec<&PublicComponent> = components.iter().collect();
    sorted.sort_by_key(|c| c.position);
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut slot: BTreeMap<&str, usize> = BTreeMap::new();
    for c in sorted {
        let Some(g) = &c.group else {
            entries.push(Entry::Component(c));
            continue;
        };
        match slot.get(g.id.as_str()) {
            Some(&i) => {
                if let Entry::Group(group) = &mut entries[i] {
                    group.members.push(c);
                }
            }
            None => {
                slot.insert(&g.id, entries.len());
                entries.push(Entry::Group(Group {
                    id: Some(&g.id),
                    name: Some(&g.name),
                    members: vec![c],
                }));
            }
        }
    }
    entries
}

/// What the page shows: its rows, and whether every component is shown in full.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    pub entries: Vec<Entry<'a>>,
    /// At most [`DETAILED_MAX`] components: every one in full.
    pub detailed: bool,
    /// At most [`ROWS_WITH_BARS`] rows: each draws its uptime bars.
    pub bars: bool,
}

/// The page's rows (see [`DETAILED_MAX`]): past it, when more than that many components are in
/// no group, they are listed together in a last group without id or name.
pub fn page_layout(components: &[PublicComponent]) -> Layout<'_> {
    let mut entries = top_level(components);
    let detailed = components.len() <= DETAILED_MAX;
    let loose = entries
        .iter()
        .filter(|e| matches!(e, Entry::Component(_)))
        .count();
    if !detailed && loose > DETAILED_MAX {
        let mut rest = Group {
            id: None,
            name: None,
            members: Vec::with_capacity(loose),
        };
        entries.retain(|e| match e {
            Entry::Component(c) => {
                rest.members.push(*c);
                false
            }
            Entry::Group(_) => true,
        });
        entries.push(Entry::Group(rest));
    }
    let bars = entries.len() <= ROWS_WITH_BARS;
    Layout {
        entries,
        detailed,
        bars,
    }
}
