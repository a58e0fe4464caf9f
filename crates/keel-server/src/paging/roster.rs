//! The roster the escalation engine asks: the config's people and schedules, with the stored
//! overrides.

use keel_core::config::{Config, Person};
use keel_core::escalation::Roster;
use keel_core::oncall::{self, Override};

pub struct TeamRoster<'a> {
    config: &'a Config,
    overrides: Vec<Override>,
}

impl<'a> TeamRoster<'a> {
    pub fn new(config: &'a Config, overrides: Vec<Override>) -> Self {
        TeamRoster { config, overrides }
    }
}

impl Roster for TeamRoster<'_> {
    fn on_call(&self, schedule: &str, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let s = self.config.schedules.iter().find(|s| s.id == schedule)?;
        let own: Vec<Override> = self
            .overrides
            .iter()
            .filter(|o| o.schedule == schedule)
            .cloned()
            .collect();
        oncall::on_call(s, &own, at).map(|c| c.person)
    }

    fn person(&self, id: &str) -> Option<&Person> {
        self.config.people.iter().find(|p| p.id == id)
    }
}
