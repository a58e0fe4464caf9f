//! Drafted customer updates: for every new incident and every change of its situation, Keel
//! writes the update customers should read, in every locale of the page, from the facts it
//! holds (affected public components, users, ETA, workarounds); it is published by itself
//! after `[incidents] publish_after` unless a responder publishes, replaces or holds it first.
//!
//! Drafts are built never to trip the disclosure check: a component name or workaround that
//! would is left out (the component becomes "one of our services"), an operator's template
//! that would falls back to Keel's own, and wording that could never pass is refused when the
//! config is read ([`check_wording`]). The responder's side — publishing a draft, holding it,
//! publishing their own text, an admin's override — is decided by [`Publisher::decide`].
//!
//! Everything is level-triggered like the correlation engine: [`Publisher::plan`] looks at
//! the incident as it is and answers with the events that make its public side agree, so the
//! server may call it after every change and on a timer, and calling it again plans nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::disclosure::{check, DisclosureRules, Finding};
use super::model::{PublicEta, PublicStatus};
use super::templates::{self, EtaWords};
use crate::assess::Eta;
use crate::config::{Component, Config, LocalizedText, Situation};
use crate::ids::{ComponentId, NodeId};
use crate::incident::{
    decide, Actor, Command, DraftFate, EventKind, Incident, IncidentState, Refusal, TEXT_MAX_CHARS,
};

/// What Keel knows about an incident that customers may be told.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Impacted public components, in config order: (id, name).
    pub components: Vec<(ComponentId, LocalizedText)>,
    pub affected_users: u64,
    pub eta: PublicEta,
    /// Workarounds of the impacted public components, in config order: (id, text).
    pub workarounds: Vec<(ComponentId, LocalizedText)>,
    /// The locations a regional outage is seen from (empty when it is not regional).
    pub regions: Vec<String>,
}

impl Facts {
    pub fn of(inc: &Incident, config: &Config) -> Facts {
        Facts::judged(inc, config, &|_| true)
    }

    /// [`Facts::of`], offering an alternative only when `usable(id)` too: the status page
    /// asks the current health as well, so it never advertises a backup that fails right now
    /// even before the timeline has caught up.
    pub fn judged(inc: &Incident, config: &Config, usable: &dyn Fn(&NodeId) -> bool) -> Facts {
        let public: Vec<_> = config
            .components
            .iter()
            .filter(|c| c.public && inc.impacted.contains(&NodeId::from(&c.id)))
            .collect();
        Facts {
            components: public
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect(),
            affected_users: inc.affected_users,
            eta: public_eta(inc),
            workarounds: public
                .iter()
                .filter_map(|c| {
                    let offers = offers(inc, config, c, usable);
                    let text = with_offers(c.workaround.as_ref(), &offers, config);
                    Some((c.id.clone(), text?))
                })
                .collect(),
            regions: inc.regions.clone(),
        }
    }
}

/// The names of `component`'s alternatives that may be offered: the timeline's latest word
/// on each is that it is available (the engine judged it and told the responders so), and it
/// is not impacted by this very incident. Everything else is not advertised.
fn offers<'c>(
    inc: &Incident,
    config: &'c Config,
    component: &Component,
    usable: &dyn Fn(&NodeId) -> bool,
) -> Vec<&'c LocalizedText> {
    component
        .alternatives
        .iter()
        .filter_map(|alt| config.components.iter().find(|c| c.id.as_str() == *alt))
        .filter(|alt| {
            let id = NodeId::from(&alt.id);
            !inc.impacted.contains(&id) && usable(&id)
        })
        .filter(|alt| alt.public && inc.backup_offered(alt.name.get("en")))
        .map(|alt| &alt.name)
        .collect()
}

/// A component's workaround followed by "You can use … instead." for each offered
/// alternative, in every locale either is written in and every locale of the page; `None`
/// when there is neither.
fn with_offers(
    workaround: Option<&LocalizedText>,
    offers: &[&LocalizedText],
    config: &Config,
) -> Option<LocalizedText> {
    if offers.is_empty() {
        return workaround.cloned();
    }
    let mut locales: Vec<String> = vec![String::new()];
    locales.extend(config.page.locales.iter().cloned());
    locales.extend(
        workaround
            .into_iter()
            .flat_map(|w| w.by_locale.keys().cloned()),
    );
    let by_locale = locales
        .into_iter()
        .map(|l| {
            // The plain text reads as English, like a plain name.
            let words = if l.is_empty() { "en" } else { l.as_str() };
            let mut parts: Vec<String> = workaround
                .map(|w| w.get(&l).trim().to_string())
                .filter(|w| !w.is_empty())
                .into_iter()
                .collect();
            for name in offers {
                parts.push(templates::alternative_offer(name.get(&l).trim(), words));
            }
            let sep = if templates::is_japanese(words) {
                ""
            } else {
                " "
            };
            (l, parts.join(sep))
        })
        .collect();
    Some(LocalizedText { by_locale })
}

/// The ETA customers may see: a vendor cause is "a third party", never named; an estimate
/// from history stays; anything else is no estimate.
pub fn public_eta(inc: &Incident) -> PublicEta {
    match &inc.eta {
        _ if inc.cause_kind == "vendor" => PublicEta::ThirdParty,
        Some(Eta::Vendor { .. }) => PublicEta::ThirdParty,
        Some(Eta::History {
            p50_minutes,
            p90_minutes,
            ..
        }) => PublicEta::History {
            p50_minutes: *p50_minutes,
            p90_minutes: *p90_minutes,
        },
        _ => PublicEta::None,
    }
}

/// The situation the incident is in, as customers hear it: investigating again after it had
/// recovered or resolved reads "the problem has returned".
pub fn situation(inc: &Incident) -> Situation {
    match inc.state {
        IncidentState::Investigating if inc.recurrences > 0 || inc.mitigated_at.is_some() => {
            Situation::Reopened
        }
        IncidentState::Investigating => Situation::Opened,
        IncidentState::Identified => Situation::Identified,
        IncidentState::Monitoring => Situation::Monitoring,
        IncidentState::Resolved => Situation::Resolved,
    }
}

/// The public status a situation's update carries.
pub fn status_for(situation: Situation) -> PublicStatus {
    match situation {
        Situation::Opened | Situation::Reopened => PublicStatus::Investigating,
        Situation::Identified => PublicStatus::Identified,
        Situation::Monitoring => PublicStatus::Monitoring,
        Situation::Resolved => PublicStatus::Resolved,
    }
}

/// The situation whose wording fits an update of `status` on this incident.
fn situation_for_status(status: PublicStatus, inc: &Incident) -> Situation {
    match status {
        PublicStatus::Investigating if inc.recurrences > 0 || inc.mitigated_at.is_some() => {
            Situation::Reopened
        }
        PublicStatus::Investigating => Situation::Opened,
        PublicStatus::Identified => Situation::Identified,
        PublicStatus::Monitoring => Situation::Monitoring,
        PublicStatus::Resolved => Situation::Resolved,
    }
}

/// A drafted update: title and body, one text per locale of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftText {
    pub title: LocalizedText,
    pub body: LocalizedText,
}

/// The draft for the incident's current situation (see [`draft_in`]).
pub fn draft_for(
    inc: &Incident,
    facts: &Facts,
    config: &Config,
    rules: &DisclosureRules,
    locales: &[String],
) -> DraftText {
    draft_in(situation(inc), facts, config, rules, locales)
}

/// The draft for `situation` in every one of `locales`, from the operator's template where
/// one is configured for that locale (or as plain text), else Keel's own.
pub fn draft_in(
    situation: Situation,
    facts: &Facts,
    config: &Config,
    rules: &DisclosureRules,
    locales: &[String],
) -> DraftText {
    let mut title = BTreeMap::new();
    let mut body = BTreeMap::new();
    for locale in locales {
        let real = values(facts, config, rules, locale, false);
        let generic = values(facts, config, rules, locale, true);
        for (field, out) in [("title", &mut title), ("body", &mut body)] {
            let configured = effective(config, situation, field, locale);
            let own = builtin(situation, field, locale);
            // The first wording that passes: the configured template with the facts, Keel's
            // own with the facts, then both with nothing specific (which `check_wording`
            // made sure passes).
            let attempts = [
                (configured, &real),
                (own, &real),
                (configured, &generic),
                (own, &generic),
            ];
            let mut text = String::new();
            for (template, vals) in attempts {
                let Ok(rendered) = templates::render(template, &|name| {
                    vals.get(name).cloned().unwrap_or_default()
                }) else {
                    continue;
                };
                text = rendered;
                if check(&text, rules).is_ok() {
                    break;
                }
            }
            out.insert(locale.clone(), text);
        }
    }
    DraftText {
        title: LocalizedText { by_locale: title },
        body: LocalizedText { by_locale: body },
    }
}

/// The template configured for a situation, field and locale: the operator's text for that
/// locale, their plain text, or Keel's own.
fn effective<'c>(config: &'c Config, situation: Situation, field: &str, locale: &str) -> &'c str {
    config
        .templates
        .overrides
        .get(&situation)
        .and_then(|o| {
            if field == "title" {
                o.title.as_ref()
            } else {
                o.body.as_ref()
            }
        })
        .and_then(|t| t.by_locale.get(locale).or_else(|| t.by_locale.get("")))
        .map_or_else(|| builtin(situation, field, locale), String::as_str)
}

fn has_override(config: &Config, situation: Situation, field: &str, locale: &str) -> bool {
    config
        .templates
        .overrides
        .get(&situation)
        .and_then(|o| {
            if field == "title" {
                o.title.as_ref()
            } else {
                o.body.as_ref()
            }
        })
        .is_some_and(|t| t.by_locale.contains_key(locale) || t.by_locale.contains_key(""))
}

fn builtin(situation: Situation, field: &str, locale: &str) -> &'static str {
    let (title, body) = templates::builtin(situation, locale);
    if field == "title" {
        title
    } else {
        body
    }
}

/// The placeholders' values in `locale`. Names and workarounds the disclosure check refuses
/// are left out; `generic` leaves out everything specific to the incident.
fn values(
    facts: &Facts,
    config: &Config,
    rules: &DisclosureRules,
    locale: &str,
    generic: bool,
) -> BTreeMap<&'static str, String> {
    let say = |text: &str| check(text, rules).is_ok();
    let name_of = |id: &ComponentId| -> String {
        facts
            .components
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, n)| n.get(locale).trim().to_string())
            .filter(|n| !n.is_empty() && say(n))
            .unwrap_or_else(|| templates::unnamed_component(locale).to_string())
    };
    let mut names: Vec<String> = Vec::new();
    let mut workarounds: Vec<(String, String)> = Vec::new();
    let mut unsayable_workaround = false;
    if !generic {
        for (id, _) in &facts.components {
            let n = name_of(id);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        for (id, text) in &facts.workarounds {
            let text = text.get(locale).trim();
            if text.is_empty() {
                continue;
            }
            if say(text) {
                workarounds.push((name_of(id), text.to_string()));
            } else {
                unsayable_workaround = true;
            }
        }
    }
    let users = if generic { 0 } else { facts.affected_users };
    let eta = match (&facts.eta, generic) {
        (_, true) | (PublicEta::None, _) => EtaWords::None,
        (PublicEta::ThirdParty, _) => EtaWords::ThirdParty,
        (
            PublicEta::History {
                p50_minutes,
                p90_minutes,
            },
            _,
        ) => EtaWords::History {
            p50_minutes: *p50_minutes,
            p90_minutes: *p90_minutes,
        },
    };
    let workaround = if workarounds.is_empty() && unsayable_workaround {
        // There is one, it just may not be quoted: saying there is none would be wrong.
        String::new()
    } else {
        templates::workaround_sentences(&workarounds, facts.components.len() > 1, locale)
    };
    let components = templates::component_list(&names, locale);
    // A regional outage says where from instead of counting every user of the component;
    // location names are the operator's, so they pass the disclosure check like the rest.
    let regional = (!generic && !facts.regions.is_empty())
        .then(|| templates::regional_sentence(&components, &facts.regions, locale))
        .filter(|s| say(s));
    BTreeMap::from([
        ("users", templates::users_phrase(users, locale)),
        (
            "impact",
            regional.unwrap_or_else(|| templates::impact_sentence(users, locale)),
        ),
        ("components", components),
        ("eta", templates::eta_sentence(eta, locale)),
        ("workaround", workaround),
        (
            "next_update",
            templates::duration_words(config.templates.next_update, locale),
        ),
    ])
}

/// Pending drafts whose due time has come, oldest first (Keel publishes the newest).
pub fn drafts_due(inc: &Incident, now: DateTime<Utc>) -> Vec<u32> {
    inc.pending_drafts()
        .filter(|d| d.due_at <= now)
        .map(|d| d.id)
        .collect()
}

/// [`Publisher::draft_events`] for a one-off call; a server keeps a [`Publisher`].
pub fn draft_events(inc: &Incident, config: &Config, now: DateTime<Utc>) -> Vec<EventKind> {
    Publisher::new(config).draft_events(inc, now)
}

/// Drafting, auto-publishing and the responders' public commands for one config. Built once
/// (it holds the disclosure rules) and rebuilt when the config changes.
#[derive(Debug, Clone)]
pub struct Publisher {
    config: Arc<Config>,
    rules: DisclosureRules,
}

impl Publisher {
    /// A publisher with its own copy of the config.
    pub fn new(config: &Config) -> Publisher {
        Publisher::shared(Arc::new(config.clone()))
    }

    /// A publisher sharing the caller's config: a config of 100,000 monitors is tens of
    /// megabytes, not worth a second copy.
    pub fn shared(config: Arc<Config>) -> Publisher {
        Publisher {
            rules: DisclosureRules::from_config(&config),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn rules(&self) -> &DisclosureRules {
        &self.rules
    }

    pub fn locales(&self) -> &[String] {
        &self.config.page.locales
    }

    pub fn facts(&self, inc: &Incident) -> Facts {
        Facts::of(inc, &self.config)
    }

    /// The draft for `situation` on this incident, now.
    pub fn draft(&self, inc: &Incident, situation: Situation) -> DraftText {
        draft_in(
            situation,
            &self.facts(inc),
            &self.config,
            &self.rules,
            self.locales(),
        )
    }

    /// A `DraftPrepared` when customers have not heard about the incident's current
    /// situation: a new incident, a state change, a reopening. Nothing for an incident that
    /// impacts no public component, for one already drafted or published for (by Keel or a
    /// responder), and for a resolved incident customers never heard of.
    ///
    /// The draft is due `publish_after` from `now` — or at the due time of the pending draft
    /// it replaces, if that is sooner, so an incident that keeps changing is not kept from
    /// customers by its own churn.
    pub fn draft_events(&self, inc: &Incident, now: DateTime<Utc>) -> Vec<EventKind> {
        let facts = self.facts(inc);
        if !self.needs_draft(inc, &facts) {
            return Vec::new();
        }
        let situation = situation(inc);
        let text = draft_in(situation, &facts, &self.config, &self.rules, self.locales());
        let grace = chrono::TimeDelta::from_std(self.config.incidents.publish_after)
            .unwrap_or(chrono::TimeDelta::MAX);
        let mut due_at = now
            .checked_add_signed(grace)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if let Some(earlier) = inc.pending_drafts().map(|d| d.due_at).min() {
            due_at = due_at.min(earlier);
        }
        vec![EventKind::DraftPrepared {
            draft: inc.drafts.len() as u32 + 1,
            status: status_for(situation),
            title: text.title,
            body: text.body,
            due_at,
        }]
    }

    fn needs_draft(&self, inc: &Incident, facts: &Facts) -> bool {
        if facts.components.is_empty() {
            return false;
        }
        let now = inc.mark();
        if inc.public_mark == Some(now) {
            return false;
        }
        if inc.is_resolved() && inc.public_mark.is_none() {
            // Customers never heard of it (an old incident, or one resolved before anything
            // was drafted): announcing its end would only confuse them.
            return false;
        }
        // A responder may have said it already, ahead of Keel.
        let said = inc.latest_update().is_some_and(|u| {
            u.status == status_for(situation(inc)) && u.during.recurrences == inc.recurrences
        });
        !said
    }

    /// Whether [`Publisher::plan`] could plan anything for this incident: a cheap filter for
    /// a server that looks at every incident on every tick. False only when there is no
    /// pending draft and customers have heard about the incident's current situation (or
    /// never heard of a resolved one), which is every old incident.
    pub fn may_plan(&self, inc: &Incident) -> bool {
        inc.pending_drafts().next().is_some()
            || (inc.public_mark != Some(inc.mark())
                && !(inc.is_resolved() && inc.public_mark.is_none()))
    }

    /// Everything Keel does on the public side of an incident at `now`, to append as
    /// [`Actor::System`] in order: a new draft when one is needed, then the newest pending
    /// draft that has fallen due, published. A due draft that no longer passes the
    /// disclosure check (the config changed) is held instead, with a prompt for responders.
    pub fn plan(&self, inc: &Incident, now: DateTime<Utc>) -> Vec<EventKind> {
        if !self.may_plan(inc) {
            return Vec::new();
        }
        let mut events = self.draft_events(inc, now);
        let mut next = inc.clone();
        for e in inc.stamp(now, events.iter().map(|k| (Actor::System, k.clone()))) {
            if next.apply(&e).is_err() {
                return events;
            }
        }
        let Some(&id) = drafts_due(&next, now).last() else {
            return events;
        };
        let Some(draft) = next.drafts.iter().find(|d| d.id == id) else {
            return events;
        };
        match self.check_texts(&draft.title, &draft.body) {
            Ok(()) => events.push(EventKind::UpdatePublished {
                update: next.updates.len() as u32 + 1,
                status: draft.status,
                title: draft.title.clone(),
                body: draft.body.clone(),
                draft: Some(id),
                auto: true,
                disclosure_override: None,
            }),
            Err((field, locale, finding)) => {
                events.push(EventKind::DraftHeld { draft: id });
                events.push(EventKind::Prompt {
                    text: format!(
                        "Draft {id} was not published automatically: its {} {field} contains \
                         {:?} ({}). Publish an update by hand.",
                        locale_words(&locale),
                        finding.term,
                        finding.why
                    ),
                });
            }
        }
        events
    }

    /// The public title customers know the incident by (see [`public_title`]).
    pub fn public_title(&self, inc: &Incident) -> LocalizedText {
        public_title(inc, &self.config, &self.rules)
    }

    /// Decides a responder's command. Public commands (publish a draft, hold one, publish
    /// an update) are checked here; everything else goes to [`decide`].
    ///
    /// `may_override` says whether the caller is an admin: only an admin's
    /// `override_reason` lets a text the disclosure check refuses through, and the reason is
    /// recorded on the update.
    pub fn decide(
        &self,
        inc: &Incident,
        cmd: Command,
        may_override: bool,
    ) -> Result<Vec<EventKind>, Refusal> {
        match cmd {
            Command::PublishDraft { draft } => {
                let d = find_draft(inc, draft)?;
                match d.fate {
                    DraftFate::Pending | DraftFate::Held => {}
                    DraftFate::Superseded => {
                        return Err(Refusal::new(
                            "draft",
                            format!(
                                "draft {draft} was superseded by a newer draft or update: \
                                 publish the latest draft instead"
                            ),
                        ));
                    }
                    DraftFate::Published => {
                        return Err(Refusal::new(
                            "draft",
                            format!("draft {draft} is already published"),
                        ));
                    }
                }
                if let Err((field, locale, finding)) = self.check_texts(&d.title, &d.body) {
                    return Err(refused(
                        field,
                        &locale,
                        finding,
                        " Publish your own text instead (an admin may override the check).",
                    ));
                }
                Ok(vec![EventKind::UpdatePublished {
                    update: inc.updates.len() as u32 + 1,
                    status: d.status,
                    title: d.title.clone(),
                    body: d.body.clone(),
                    draft: Some(draft),
                    auto: false,
                    disclosure_override: None,
                }])
            }
            Command::HoldDraft { draft } => {
                let d = find_draft(inc, draft)?;
                match d.fate {
                    DraftFate::Pending => Ok(vec![EventKind::DraftHeld { draft }]),
                    DraftFate::Held => Err(Refusal::new(
                        "draft",
                        format!("draft {draft} is already held"),
                    )),
                    fate => Err(Refusal::new(
                        "draft",
                        format!(
                            "draft {draft} is {}: only a pending draft can be held",
                            crate::incident::fate_words(fate)
                        ),
                    )),
                }
            }
            Command::PublishUpdate {
                status,
                body,
                title,
                override_reason,
            } => self.publish_update(inc, status, body, title, override_reason, may_override),
            other => decide(inc, other),
        }
    }

    fn publish_update(
        &self,
        inc: &Incident,
        status: PublicStatus,
        body: LocalizedText,
        title: Option<LocalizedText>,
        override_reason: Option<String>,
        may_override: bool,
    ) -> Result<Vec<EventKind>, Refusal> {
        let override_reason = match override_reason {
            Some(r) => Some(crate::incident::text_field(
                "override_reason",
                &r,
                TEXT_MAX_CHARS,
            )?),
            None => None,
        };
        let body = self.given_text("body", &body)?;
        let title = match title {
            Some(t) => Some(self.given_text("title", &t)?),
            None => None,
        };
        let draft = self.draft(inc, situation_for_status(status, inc));
        let current_title = self.public_title(inc);
        let mut full_title = BTreeMap::new();
        let mut full_body = BTreeMap::new();
        for locale in self.locales() {
            let pick = |given: Option<&LocalizedText>, fallback: &LocalizedText| {
                given
                    .and_then(|g| g.by_locale.get(locale).or_else(|| g.by_locale.get("")))
                    .cloned()
                    .unwrap_or_else(|| fallback.get(locale).to_string())
            };
            full_body.insert(locale.clone(), pick(Some(&body), &draft.body));
            full_title.insert(locale.clone(), pick(title.as_ref(), &current_title));
        }
        let title = LocalizedText {
            by_locale: full_title,
        };
        let body = LocalizedText {
            by_locale: full_body,
        };
        let disclosure_override = match self.check_texts(&title, &body) {
            Ok(()) => None,
            Err((field, locale, finding)) => match (&override_reason, may_override) {
                (Some(reason), true) => Some(reason.clone()),
                (Some(_), false) => {
                    return Err(refused(
                        field,
                        &locale,
                        finding,
                        " Only an admin may override the disclosure check.",
                    ));
                }
                (None, _) => {
                    return Err(refused(
                        field,
                        &locale,
                        finding,
                        " Remove it, or ask an admin to publish with an override reason.",
                    ));
                }
            },
        };
        Ok(vec![EventKind::UpdatePublished {
            update: inc.updates.len() as u32 + 1,
            status,
            title,
            body,
            draft: None,
            auto: false,
            disclosure_override,
        }])
    }

    /// A responder's text: every locale one of the page's (or plain), trimmed, not empty,
    /// not too long.
    fn given_text(
        &self,
        field: &'static str,
        text: &LocalizedText,
    ) -> Result<LocalizedText, Refusal> {
        let mut out = BTreeMap::new();
        for (locale, value) in &text.by_locale {
            if !locale.is_empty() && !self.locales().contains(locale) {
                return Err(Refusal::new(
                    field,
                    format!(
                        "locale {locale:?} is not one of the page's locales ({})",
                        self.locales().join(", ")
                    ),
                ));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let chars = value.chars().count();
            if chars > TEXT_MAX_CHARS {
                return Err(Refusal::new(
                    field,
                    format!(
                        "the {} text must be at most {TEXT_MAX_CHARS} characters (it has {chars})",
                        locale_words(locale)
                    ),
                ));
            }
            out.insert(locale.clone(), value.to_string());
        }
        if out.is_empty() {
            return Err(Refusal::new(field, "must not be empty"));
        }
        Ok(LocalizedText { by_locale: out })
    }

    /// The first text (title before body, locales in order) the disclosure check refuses.
    fn check_texts(
        &self,
        title: &LocalizedText,
        body: &LocalizedText,
    ) -> Result<(), (&'static str, String, Finding)> {
        for (field, text) in [("title", title), ("body", body)] {
            for (locale, value) in &text.by_locale {
                check(value, &self.rules).map_err(|f| (field, locale.clone(), f))?;
            }
        }
        Ok(())
    }
}

/// The public title customers know the incident by: the latest published update's, else the
/// first draft's, else what Keel would draft now — never the internal title.
pub fn public_title(inc: &Incident, config: &Config, rules: &DisclosureRules) -> LocalizedText {
    if let Some(u) = inc.latest_update() {
        return u.title.clone();
    }
    if let Some(d) = inc.drafts.first() {
        return d.title.clone();
    }
    let facts = Facts::of(inc, config);
    draft_in(situation(inc), &facts, config, rules, &config.page.locales).title
}

fn find_draft(inc: &Incident, draft: u32) -> Result<&crate::incident::Draft, Refusal> {
    inc.drafts.iter().find(|d| d.id == draft).ok_or_else(|| {
        let reason = match inc.drafts.len() {
            0 => format!("draft {draft} does not exist: the incident has no drafts"),
            1 => format!("draft {draft} does not exist: the incident has 1 draft"),
            n => format!("draft {draft} does not exist: the incident has {n} drafts"),
        };
        Refusal::new("draft", reason)
    })
}

fn refused(field: &'static str, locale: &str, finding: Finding, advice: &str) -> Refusal {
    Refusal {
        field,
        reason: format!(
            "the {} text contains {:?}, {}: public text may not say it.{advice}",
            locale_words(locale),
            finding.term,
            finding.why
        ),
        disclosure: Some(finding),
    }
}

fn locale_words(locale: &str) -> String {
    if locale.is_empty() {
        "plain".to_string()
    } else {
        locale.to_string()
    }
}

/// Drafting wording that the disclosure check would refuse, found when the config is read.
#[derive(Debug, Clone, PartialEq)]
pub struct WordingProblem {
    /// The template at fault (situation, "title"/"body", locale), when it is one.
    pub template: Option<(Situation, &'static str, String)>,
    pub finding: Finding,
    pub message: String,
    pub hint: String,
}

/// Checks that every template the drafts would use (the operator's or Keel's own, in every
/// locale of the page) and Keel's fixed phrases pass the disclosure check with nothing
/// specific filled in — which is what a draft falls back to, so drafts always pass.
pub fn check_wording(config: &Config) -> Vec<WordingProblem> {
    let rules = DisclosureRules::from_config(config);
    let empty = Facts {
        components: Vec::new(),
        affected_users: 0,
        eta: PublicEta::None,
        workarounds: Vec::new(),
        regions: Vec::new(),
    };
    let mut problems: Vec<WordingProblem> = Vec::new();
    for locale in &config.page.locales {
        // Every phrase a draft may contain, specific or not.
        let mut phrases = vec![
            templates::unnamed_component(locale).to_string(),
            templates::component_list(&[], locale),
            templates::users_phrase(500, locale),
            templates::impact_sentence(500, locale),
            templates::workaround_sentences(&[], false, locale),
            templates::workaround_sentences(&[("A".into(), "x".into())], false, locale),
            templates::workaround_sentences(&[("A".into(), "x".into())], true, locale),
            templates::duration_words(config.templates.next_update, locale),
        ];
        for eta in [
            EtaWords::None,
            EtaWords::ThirdParty,
            EtaWords::History {
                p50_minutes: 10,
                p90_minutes: 30,
            },
        ] {
            phrases.push(templates::eta_sentence(eta, locale));
        }
        for phrase in &phrases {
            if let Err(finding) = check(phrase, &rules) {
                if problems.iter().any(|p| p.finding.term == finding.term) {
                    continue;
                }
                problems.push(WordingProblem {
                    template: None,
                    message: format!(
                        "Keel's wording for drafted updates ({locale}) contains {:?}, {}: \
                         \"{phrase}\"",
                        finding.term, finding.why
                    ),
                    hint: "drafts must pass the disclosure check: remove the term from \
                           [disclosure] confidential_terms, or rename what it names"
                        .to_string(),
                    finding,
                });
            }
        }
        let generic = values(&empty, config, &rules, locale, true);
        for situation in Situation::ALL {
            for field in ["title", "body"] {
                let template = effective(config, situation, field, locale);
                let is_override = has_override(config, situation, field, locale);
                let Ok(literal) = templates::render(template, &|_| String::new()) else {
                    continue;
                };
                let finding = match check(&literal, &rules) {
                    Err(f) => f,
                    Ok(()) => {
                        let Ok(sample) = templates::render(template, &|name| {
                            generic.get(name).cloned().unwrap_or_default()
                        }) else {
                            continue;
                        };
                        match check(&sample, &rules) {
                            // The phrases themselves are reported above.
                            Err(f) if !problems.iter().any(|p| p.finding.term == f.term) => f,
                            _ => continue,
                        }
                    }
                };
                let (message, hint) = if is_override {
                    (
                        format!(
                            "`templates.{situation}.{field}` ({locale}) contains {:?}, {}",
                            finding.term, finding.why
                        ),
                        "drafts must pass the disclosure check: reword the template".to_string(),
                    )
                } else {
                    (
                        format!(
                            "Keel's built-in {situation} update {field} ({locale}) contains \
                             {:?}, {}, so its drafts could never be published",
                            finding.term, finding.why
                        ),
                        format!(
                            "override it with [templates.{situation}] {field}.{locale} = \"…\", \
                             or drop the term"
                        ),
                    )
                };
                problems.push(WordingProblem {
                    template: Some((situation, field, locale.clone())),
                    finding,
                    message,
                    hint,
                });
            }
        }
    }
    problems
}
