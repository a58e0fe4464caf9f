//! Reads the team: `[[person]]`, `[[schedule]]`, `[[escalation]]` and `[paging]`.
//!
//! People are read before schedules and schedules before policies, whatever their order in
//! the file, so each reference is checked as it is read, against what the earlier kind
//! declared; a reference to something missing or misspelt gets a did-you-mean.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime};
use toml_edit::{Table, Value};

use super::env::{lookup, EnvLayer};
use super::model::Secret;
use super::parse::{array_entries, read_id, single_in};
use super::position::Pos;
use super::read::{Field, Reader, Tbl};
use super::suggest;
use super::team::*;
use super::validate::Refs;
use super::values::{self, Bad};
use crate::assess::Severity;

pub(crate) const PERSON: &[&str] = &[
    "id",
    "name",
    "timezone",
    "locale",
    "quiet_hours",
    "contacts",
];
/// Every key a contact may take; which apply depends on its `kind`.
pub(crate) const CONTACT: &[&str] = &[
    "kind",
    "address",
    "url",
    "url_env",
    "url_file",
    "secret_env",
    "topic",
    "priority",
    "number",
];
pub(crate) const SCHEDULE: &[&str] = &["id", "name", "people", "rotation", "start", "timezone"];
pub(crate) const ESCALATION: &[&str] = &[
    "id",
    "components",
    "min_severity",
    "repeat",
    "repeat_after",
    "renotify_after",
    "levels",
];
pub(crate) const LEVEL: &[&str] = &["after", "notify"];
pub(crate) const PAGING: &[&str] = &["ack_link_ttl", "ntfy", "twilio"];
pub(crate) const PAGING_NTFY: &[&str] = &["server", "token_env"];
/// `auth_token` is deliberately absent: it is refused with its own message.
pub(crate) const PAGING_TWILIO: &[&str] = &[
    "base_url",
    "account_sid",
    "auth_token_env",
    "auth_token_file",
    "from",
];

/// What the team sections add to [`super::Config`].
pub(crate) struct Team {
    pub people: Vec<Person>,
    pub schedules: Vec<Schedule>,
    pub escalations: Vec<EscalationPolicy>,
    pub paging: PagingConfig,
}

pub(crate) fn team(
    r: &mut Reader<'_>,
    root: &Table,
    layer: &EnvLayer,
    env: &[(String, String)],
    refs: &Refs,
) -> Team {
    let paging_t = single_in(
        r,
        Some(root),
        "paging",
        "paging",
        Pos { line: 1, column: 1 },
        layer,
    );
    let paging = paging(r, &paging_t, layer, env);

    let mut ids = Ids::new("person");
    let mut people = Vec::new();
    let mut sms_without_twilio = Vec::new();
    for t in entries(r, root, "person") {
        if let Some(p) = person(r, &t, env, &mut ids, &mut sms_without_twilio) {
            people.push(p);
        }
    }
    if paging.twilio.is_none() {
        for (kind, pos) in sms_without_twilio {
            r.report(
                pos,
                format!("a contact of kind = \"{kind}\" needs [paging.twilio], which is not set"),
                Some(
                    "add [paging.twilio] with account_sid, auth_token_env and from (the number \
                     pages come from), or remove this contact"
                        .into(),
                ),
            );
        }
    }
    let person_ids = ids.known;

    let mut ids = Ids::new("schedule");
    let mut schedules = Vec::new();
    for t in entries(r, root, "schedule") {
        if let Some(s) = schedule(r, &t, &person_ids, &mut ids) {
            schedules.push(s);
        }
    }
    let schedule_ids = ids.known;

    let nodes: Vec<&str> = refs
        .nodes
        .iter()
        .filter(|n| crate::ids::validate_id(&n.id).is_ok())
        .map(|n| n.id.as_str())
        .collect();
    let mut ids = Ids::new("escalation policy");
    let mut claims = Claims::default();
    let mut escalations = Vec::new();
    for t in entries(r, root, "escalation") {
        let known = Known {
            people: &person_ids,
            schedules: &schedule_ids,
            nodes: &nodes,
        };
        if let Some(e) = escalation(r, &t, &known, &mut ids, &mut claims) {
            escalations.push(e);
        }
    }

    Team {
        people,
        schedules,
        escalations,
        paging,
    }
}

fn entries<'a>(r: &mut Reader<'_>, root: &'a Table, name: &str) -> Vec<Tbl<'a>> {
    let Some((key, item)) = root.get_key_value(name) else {
        return Vec::new();
    };
    let fallback = r.pos(key.span(), Pos { line: 1, column: 1 });
    array_entries(r, item, name, fallback)
}

/// The ids of one kind read so far, for duplicates and references.
struct Ids {
    what: &'static str,
    known: Vec<String>,
    places: Vec<Pos>,
}

impl Ids {
    fn new(what: &'static str) -> Self {
        Ids {
            what,
            known: Vec::new(),
            places: Vec::new(),
        }
    }

    /// Reads `id`; a duplicate is reported (and `None`), so it is never used twice.
    fn read(&mut self, r: &mut Reader<'_>, t: &Tbl<'_>, example: &str) -> Option<String> {
        let (raw, pos, ok) = read_id(r, t, example)?;
        if let Some(i) = self.known.iter().position(|k| *k == raw) {
            r.report(
                pos,
                format!(
                    "duplicate {} id `{raw}`: already used on line {}",
                    self.what, self.places[i].line
                ),
                Some(format!("give each {} a different id", self.what)),
            );
            return None;
        }
        self.known.push(raw.clone());
        self.places.push(pos);
        ok.then_some(raw)
    }
}

/// "did you mean `x`?", or the known ids, or how to declare one.
fn unknown_hint(name: &str, known: &[String], declare: &str) -> String {
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    match suggest::closest(name, refs.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if refs.is_empty() => declare.to_owned(),
        None if refs.len() > 8 => format!(
            "known ids include {} and {} more; or {declare}",
            suggest::join(&refs[..8]),
            refs.len() - 8
        ),
        None => format!("known ids: {}; or {declare}", suggest::join(&refs)),
    }
}

const DECLARE_PERSON: &str = "declare them with [[person]]";
const DECLARE_SCHEDULE: &str = "declare it with [[schedule]]";

// --- [[person]] -----------------------------------------------------------------------------

fn person(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    env: &[(String, String)],
    ids: &mut Ids,
    needs_twilio: &mut Vec<(&'static str, Pos)>,
) -> Option<Person> {
    r.unknown_keys(t, PERSON);
    let id = ids.read(r, t, "id = \"ann\"");
    let name = t.get(r, "name").and_then(|f| r.nonempty(&f));
    let timezone = t
        .require(
            r,
            "timezone",
            "timezone = \"Asia/Tokyo\" (an IANA zone name)",
        )
        .and_then(|f| r.parsed(&f, timezone));
    let locale = t
        .get(r, "locale")
        .map_or(Some("en".to_owned()), |f| r.parsed(&f, values::locale));
    let quiet_hours = match t.get(r, "quiet_hours") {
        None => Some(None),
        Some(f) => r.parsed(&f, quiet_hours).map(Some),
    };
    let label = id
        .as_ref()
        .map_or_else(|| "[[person]]".to_owned(), |i| format!("person `{i}`"));
    let mut contacts = Some(Vec::new());
    if let Some((key, item)) = t.table.and_then(|tl| tl.get_key_value("contacts")) {
        let fallback = r.pos(item.span().or_else(|| key.span()), t.pos);
        for ct in array_entries(r, item, "person.contacts", fallback) {
            match contact(r, &ct, &label, env, needs_twilio) {
                Some(c) => {
                    if let Some(list) = contacts.as_mut() {
                        list.push(c);
                    }
                }
                None => contacts = None,
            }
        }
    }
    let id = id?;
    Some(Person {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        timezone: timezone?,
        locale: locale?,
        quiet_hours: quiet_hours?,
        contacts: contacts?,
    })
}

/// Which keys each contact kind takes, beyond `kind`.
fn contact_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "email" => &["address"],
        "webhook" => &["url", "url_env", "url_file", "secret_env"],
        "slack" | "discord" | "teams" => &["url", "url_env", "url_file"],
        "ntfy" => &["topic", "priority"],
        "sms" | "voice" => &["number"],
        _ => &[],
    }
}

fn contact(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    owner: &str,
    env: &[(String, String)],
    needs_twilio: &mut Vec<(&'static str, Pos)>,
) -> Option<Contact> {
    r.unknown_keys(t, CONTACT);
    let kind_f = t.require(
        r,
        "kind",
        "kind = \"email\" (email, webhook, slack, discord, teams, ntfy, sms or voice)",
    )?;
    let kind = r.parsed(&kind_f, contact_kind)?;
    let allowed = contact_keys(kind);
    // Keys of another kind are a likely mix-up (an `address` on an sms contact): say so
    // rather than silently ignore them.
    let mut ok = true;
    if let Some(tl) = t.table {
        for (k, _) in tl.iter() {
            if k != "kind" && CONTACT.contains(&k) && !allowed.contains(&k) {
                let pos = r.pos(tl.key(k).and_then(|k| k.span()), t.pos);
                r.report(
                    pos,
                    format!("{owner}: `{k}` does not apply to a contact of kind = \"{kind}\""),
                    Some(format!("a {kind} contact takes {}", suggest::join(allowed))),
                );
                ok = false;
            }
        }
    }
    let missing = |r: &mut Reader<'_>, key: &str, example: &str| {
        r.report(
            t.pos,
            format!("{owner}: a contact of kind = \"{kind}\" is missing `{key}`"),
            Some(format!("add {example}")),
        );
    };
    let c = match kind {
        "email" => {
            let Some(f) = t.get(r, "address") else {
                missing(r, "address", "address = \"ann@example.com\"");
                return None;
            };
            Contact::Email {
                address: r.parsed(&f, values::sender)?,
            }
        }
        "webhook" | "slack" | "discord" | "teams" => {
            let url = url_source(r, t, owner, kind, env);
            let secret = if kind == "webhook" {
                match t.get(r, "secret_env") {
                    None => Some(None),
                    Some(f) => {
                        env_secret(r, &f, env, "the secret the receiver checks signatures with")
                            .map(Some)
                    }
                }
            } else {
                Some(None)
            };
            let (url, secret) = (url?, secret?);
            match kind {
                "webhook" => Contact::Webhook { url, secret },
                "slack" => Contact::Slack { url },
                "discord" => Contact::Discord { url },
                _ => Contact::Teams { url },
            }
        }
        "ntfy" => {
            let Some(f) = t.get(r, "topic") else {
                missing(r, "topic", "topic = \"ann-pages\"");
                return None;
            };
            let topic = r.parsed(&f, ntfy_topic);
            let priority = match t.get(r, "priority") {
                None => Some(None),
                Some(f) => r
                    .uint(&f, 1, 5)
                    .and_then(|p| u8::try_from(p).ok())
                    .map(Some),
            };
            Contact::Ntfy {
                topic: topic?,
                priority: priority?,
            }
        }
        _ => {
            let Some(f) = t.get(r, "number") else {
                missing(r, "number", "number = \"+819012345678\" (E.164)");
                return None;
            };
            let number = r.parsed(&f, e164)?;
            needs_twilio.push((if kind == "sms" { "sms" } else { "voice" }, kind_f.pos));
            if kind == "sms" {
                Contact::Sms { number }
            } else {
                Contact::Voice { number }
            }
        }
    };
    ok.then_some(c)
}

/// A URL given exactly once, as `url`, `url_env` (resolved from `env` now) or `url_file`
/// (read by the binary).
fn url_source(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    owner: &str,
    kind: &str,
    env: &[(String, String)],
) -> Option<SecretSource> {
    let url_f = t.get(r, "url");
    let env_f = t.get(r, "url_env");
    let file_f = t.get(r, "url_file");
    let given: Vec<&Field<'_>> = [&url_f, &env_f, &file_f]
        .into_iter()
        .filter_map(Option::as_ref)
        .collect();
    match given.as_slice() {
        [] => {
            r.report(
                t.pos,
                format!("{owner}: a contact of kind = \"{kind}\" is missing `url`"),
                Some(
                    "add url_env = \"ANN_SLACK_URL\" (a variable holding the URL), url_file = \
                     \"/run/secrets/ann-slack-url\", or url = \"https://…\""
                        .into(),
                ),
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            r.report(
                second.pos,
                format!("{owner}: give only one of url, url_env and url_file"),
                Some("the URL must come from one place; remove the others".into()),
            );
            return None;
        }
    }
    if let Some(f) = &url_f {
        return r
            .parsed(f, values::secret_url)
            .map(|u| SecretSource::Value(Secret(u)));
    }
    if let Some(f) = &file_f {
        return r
            .nonempty(f)
            .map(|p| SecretSource::File(std::path::PathBuf::from(p)));
    }
    let f = env_f.as_ref()?;
    let var = r.parsed(f, values::env_var_name)?;
    match lookup(env, &var) {
        None | Some("") => {
            r.report(
                f.pos,
                format!("{}: environment variable {var} is not set", f.name),
                Some(format!("set {var} to the {kind} URL, or use url_file")),
            );
            None
        }
        Some(text) => match values::secret_url(text) {
            Ok(u) => Some(SecretSource::Value(Secret(u))),
            Err(bad) => {
                r.report(
                    f.pos,
                    format!("{}: environment variable {var}: {}", f.name, bad.message),
                    bad.hint,
                );
                None
            }
        },
    }
}

/// A secret from the environment variable that `f` names; it must be set and not empty.
fn env_secret(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    env: &[(String, String)],
    what: &str,
) -> Option<Secret> {
    let var = r.parsed(f, values::env_var_name)?;
    let state = match lookup(env, &var) {
        None => "not set",
        Some("") => "empty",
        Some(v) => return Some(Secret(v.to_owned())),
    };
    r.report(
        f.pos,
        format!("{}: environment variable {var} is {state}", f.name),
        Some(format!("set {var} to {what}")),
    );
    None
}

fn contact_kind(text: &str) -> Result<&'static str, Bad> {
    let t = text.trim().to_ascii_lowercase();
    CONTACT_KINDS
        .iter()
        .copied()
        .find(|k| *k == t)
        .ok_or_else(|| {
            Bad::new(
                format!("unknown contact kind {text:?}"),
                suggest::hint(text, CONTACT_KINDS, "contact kinds"),
            )
        })
}

/// An IANA zone name, as chrono-tz knows them.
pub(crate) fn timezone(text: &str) -> Result<chrono_tz::Tz, Bad> {
    let t = text.trim();
    if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
    let hint = match suggest::closest(t, names) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "write an IANA time zone name such as \"Asia/Tokyo\", \"Europe/Berlin\", \
                 \"America/New_York\" or \"UTC\""
            .to_owned(),
    };
    Err(Bad::new(format!("unknown time zone {text:?}"), hint))
}

const QUIET_HINT: &str = "write two 24-hour times as \"HH:MM-HH:MM\", e.g. \"22:00-07:00\" \
                          (it may wrap midnight)";

/// "22:00-07:00".
pub(crate) fn quiet_hours(text: &str) -> Result<QuietHours, Bad> {
    let bad = || Bad::new(format!("bad quiet hours {text:?}"), QUIET_HINT);
    let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
    let time = |s: &str| {
        let s = s.trim();
        // Exactly HH:MM: chrono alone would also take "7:0".
        let shaped = s.len() == 5 && s.as_bytes()[2] == b':';
        shaped
            .then(|| NaiveTime::parse_from_str(s, "%H:%M").ok())
            .flatten()
    };
    let (Some(from), Some(to)) = (time(a), time(b)) else {
        return Err(bad());
    };
    if from == to {
        return Err(Bad::new(
            format!("quiet hours {text:?} start and end at the same time"),
            "give a span such as \"22:00-07:00\"; to never be paged below SEV1, leave the \
             person out of the schedules instead",
        ));
    }
    Ok(QuietHours { from, to })
}

/// E.164: `+`, a country code not starting with 0, at most 15 digits in all.
pub(crate) fn e164(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    let digits = t.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(Bad::new(
            format!("{text:?} is not an E.164 phone number"),
            "write + then the country code and number, digits only, e.g. \"+819012345678\" \
             (no spaces, dashes or leading 0 after the country code)",
        ))
    }
}

/// An ntfy topic: what ntfy accepts in a topic name.
fn ntfy_topic(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    let ok = (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(Bad::new(
            format!("bad ntfy topic {text:?}"),
            "topics are 1-64 letters, digits, '-' and '_'; anyone who knows the topic can \
             read it on a public server, so pick one that is hard to guess",
        ))
    }
}

// --- [[schedule]] ---------------------------------------------------------------------------

fn schedule(r: &mut Reader<'_>, t: &Tbl<'_>, people: &[String], ids: &mut Ids) -> Option<Schedule> {
    r.unknown_keys(t, SCHEDULE);
    let id = ids.read(r, t, "id = \"primary\"");
    let label = id
        .as_ref()
        .map_or_else(|| "[[schedule]]".to_owned(), |i| format!("schedule `{i}`"));
    let name = t.get(r, "name").and_then(|f| r.nonempty(&f));
    let members = t
        .require(
            r,
            "people",
            "people = [\"ann\", \"bob\"] (in rotation order)",
        )
        .and_then(|f| {
            let list = r.strings(&f)?;
            if list.is_empty() {
                r.report(
                    f.pos,
                    format!("{label}: `people` is empty, so nobody would ever be on call"),
                    Some("list the people in rotation order: people = [\"ann\", \"bob\"]".into()),
                );
                return None;
            }
            let mut ok = true;
            for (p, pos) in &list {
                if !people.contains(p) {
                    r.report(
                        *pos,
                        format!("{label} names unknown person `{p}`"),
                        Some(unknown_hint(p, people, DECLARE_PERSON)),
                    );
                    ok = false;
                }
            }
            ok.then(|| list.into_iter().map(|(p, _)| p).collect::<Vec<_>>())
        });
    let rotation = t
        .require(r, "rotation", "rotation = \"1w\" (each person's turn)")
        .and_then(|f| r.duration(&f, false));
    let start = t
        .require(r, "start", "start = \"2026-12-07T09:00:00+09:00\"")
        .and_then(|f| start(r, &f));
    let timezone = match t.get(r, "timezone") {
        None => Some(None),
        Some(f) => r.parsed(&f, timezone).map(Some),
    };
    let id = id?;
    Some(Schedule {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        people: members?,
        rotation: rotation?,
        start: start?,
        timezone: timezone?,
    })
}

const START_HINT: &str = "write an RFC 3339 time with its offset, e.g. \
                          \"2026-12-07T09:00:00+09:00\" or \"2026-12-07T00:00:00Z\"";

/// `start`: a quoted RFC 3339 string, or TOML's own offset date-time written bare.
fn start(r: &mut Reader<'_>, f: &Field<'_>) -> Option<DateTime<FixedOffset>> {
    let text = match f.toml_value() {
        Some(Value::Datetime(d)) => d.value().to_string(),
        _ => r.string(f)?,
    };
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => Some(t),
        Err(_) => {
            r.bad(
                f,
                Bad::new(
                    format!("{text:?} is not an RFC 3339 time with an offset"),
                    START_HINT,
                ),
            );
            None
        }
    }
}

// --- [[escalation]] -------------------------------------------------------------------------

struct Known<'a> {
    people: &'a [String],
    schedules: &'a [String],
    nodes: &'a [&'a str],
}

/// Which policy claims what: the catch-all, and each component.
#[derive(Default)]
struct Claims {
    catch_all: Option<(String, Pos)>,
    components: Vec<(String, String, Pos)>,
}

fn escalation(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    known: &Known<'_>,
    ids: &mut Ids,
    claims: &mut Claims,
) -> Option<EscalationPolicy> {
    r.unknown_keys(t, ESCALATION);
    let id = ids.read(r, t, "id = \"default\"");
    let label = id
        .as_ref()
        .map_or_else(|| "[[escalation]]".to_owned(), |i| format!("policy `{i}`"));
    let name = id.clone().unwrap_or_default();

    let components_f = t.get(r, "components");
    let components = match &components_f {
        None => Some(Vec::new()),
        Some(f) => r.strings(f).map(|list| {
            let mut out = Vec::new();
            for (c, pos) in list {
                if !known.nodes.contains(&c.as_str()) {
                    let nodes: Vec<String> = known.nodes.iter().map(|s| (*s).to_owned()).collect();
                    r.report(
                        pos,
                        format!("{label} names unknown component `{c}`"),
                        Some(unknown_hint(
                            &c,
                            &nodes,
                            "declare it with [[component]], [[vendor]] or [[infra]]",
                        )),
                    );
                    continue;
                }
                if let Some((_, other, at)) = claims.components.iter().find(|(x, _, _)| *x == c) {
                    r.report(
                        pos,
                        format!(
                            "component `{c}` is already claimed by policy `{other}` (line {})",
                            at.line
                        ),
                        Some(
                            "each component has one escalation policy; remove it from one of \
                             them"
                                .into(),
                        ),
                    );
                    continue;
                }
                claims.components.push((c.clone(), name.clone(), pos));
                if !out.contains(&c) {
                    out.push(c);
                }
            }
            out
        }),
    };
    {
        let listed_nothing = match &components_f {
            None => true,
            Some(f) => r_is_empty_array(f),
        };
        if listed_nothing {
            let pos = components_f.as_ref().map_or(t.pos, |f| f.pos);
            match &claims.catch_all {
                Some((other, at)) => r.report(
                    pos,
                    format!(
                        "{label} is a second catch-all policy (components = []): policy `{other}` \
                         on line {} already covers every other component",
                        at.line
                    ),
                    Some(
                        "only one policy may leave components empty; list this one's \
                         components, or remove it"
                            .into(),
                    ),
                ),
                None => claims.catch_all = Some((name.clone(), pos)),
            }
        }
    }

    let min_severity = t
        .get(r, "min_severity")
        .map_or(Some(Severity::Sev2), |f| r.parsed(&f, values::severity));
    let repeat = t
        .get(r, "repeat")
        .map_or(Some(0), |f| r.uint(&f, 0, 100))
        .and_then(|n| u32::try_from(n).ok());
    let repeat_after = t
        .get(r, "repeat_after")
        .map_or(Some(Duration::from_secs(300)), |f| r.duration(&f, true));
    let renotify_after = t
        .get(r, "renotify_after")
        .map_or(Some(Duration::from_secs(1800)), |f| r.duration(&f, true));
    let levels = levels(r, t, &label, known);

    Some(EscalationPolicy {
        id: id?,
        components: components?,
        min_severity: min_severity?,
        repeat: repeat?,
        repeat_after: repeat_after?,
        renotify_after: renotify_after?,
        levels: levels?,
    })
}

fn r_is_empty_array(f: &Field<'_>) -> bool {
    matches!(f.toml_value(), Some(Value::Array(a)) if a.is_empty())
}

fn levels(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    label: &str,
    known: &Known<'_>,
) -> Option<Vec<EscalationLevel>> {
    let example = "levels = [ { after = \"0s\", notify = [\"schedule:primary\"] } ]";
    let Some((key, item)) = t.table.and_then(|tl| tl.get_key_value("levels")) else {
        r.report(
            t.pos,
            format!("{} is missing required key `levels`", t.display),
            Some(format!("add {example}")),
        );
        return None;
    };
    let pos = r.pos(item.span().or_else(|| key.span()), t.pos);
    if matches!(item.as_value(), Some(Value::Array(a)) if a.is_empty()) {
        r.report(
            pos,
            format!("{label} has no levels, so it would never page anyone"),
            Some(format!("add at least one: {example}")),
        );
        return None;
    }
    let mut out = Some(Vec::new());
    let mut prev: Option<(Duration, usize)> = None;
    for (i, lt) in array_entries(r, item, "escalation.levels", pos)
        .iter()
        .enumerate()
    {
        r.unknown_keys(lt, LEVEL);
        let n = i + 1;
        let after_f = lt.get(r, "after");
        let after = match &after_f {
            None => Some(Duration::ZERO),
            Some(f) => r.duration(f, true),
        };
        if let (Some(a), Some((p, pn))) = (after, prev) {
            if a < p {
                r.report(
                    after_f.as_ref().map_or(lt.pos, |f| f.pos),
                    format!(
                        "{label}: level {n} comes after {} but level {pn} after {}; levels are \
                         out of order",
                        humantime::format_duration(a),
                        humantime::format_duration(p)
                    ),
                    Some(
                        "levels fire in the order written; list them by `after`, earliest first"
                            .into(),
                    ),
                );
            }
        }
        if let Some(a) = after {
            prev = Some((a, n));
        }
        let notify = lt
            .require(r, "notify", "notify = [\"schedule:primary\"]")
            .and_then(|f| targets(r, &f, label, n, known));
        match (after, notify) {
            (Some(after), Some(notify)) => {
                if let Some(v) = out.as_mut() {
                    v.push(EscalationLevel { after, notify });
                }
            }
            _ => out = None,
        }
    }
    // Out-of-order levels were reported; the reader's error state stops the parse.
    out
}

fn targets(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    label: &str,
    level: usize,
    known: &Known<'_>,
) -> Option<Vec<PageTarget>> {
    let list = r.strings(f)?;
    if list.is_empty() {
        r.report(
            f.pos,
            format!("{label}: level {level} notifies nobody (`notify` is empty)"),
            Some("name who to page: notify = [\"schedule:primary\"] or [\"person:ann\"]".into()),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (text, pos) in list {
        let target = match text.split_once(':') {
            Some(("person", p)) => {
                if known.people.iter().any(|k| k == p) {
                    Some(PageTarget::Person(p.to_owned()))
                } else {
                    r.report(
                        pos,
                        format!("{label}: level {level} names unknown person `{p}`"),
                        Some(unknown_hint(p, known.people, DECLARE_PERSON)),
                    );
                    None
                }
            }
            Some(("schedule", s)) => {
                if known.schedules.iter().any(|k| k == s) {
                    Some(PageTarget::Schedule(s.to_owned()))
                } else {
                    r.report(
                        pos,
                        format!("{label}: level {level} names unknown schedule `{s}`"),
                        Some(unknown_hint(s, known.schedules, DECLARE_SCHEDULE)),
                    );
                    None
                }
            }
            _ => {
                let bare = text.rsplit(':').next().unwrap_or(&text);
                let hint = if known.people.iter().any(|k| k == bare) {
                    format!("did you mean `person:{bare}`?")
                } else if known.schedules.iter().any(|k| k == bare) {
                    format!("did you mean `schedule:{bare}`?")
                } else {
                    "write \"person:ID\" for a [[person]] or \"schedule:ID\" for whoever is on \
                     call in a [[schedule]]"
                        .to_owned()
                };
                r.report(
                    pos,
                    format!(
                        "{label}: level {level} target {text:?} does not start with `person:` \
                         or `schedule:`"
                    ),
                    Some(hint),
                );
                None
            }
        };
        match target {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

// --- [paging] -------------------------------------------------------------------------------

fn paging(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    layer: &EnvLayer,
    env: &[(String, String)],
) -> PagingConfig {
    r.unknown_keys(t, PAGING);
    let d = PagingConfig::default();
    let ack_link_ttl = t
        .get(r, "ack_link_ttl")
        .and_then(|f| r.duration(&f, false))
        .unwrap_or(d.ack_link_ttl);

    let nt = single_in(r, t.table, "ntfy", "paging.ntfy", t.pos, layer);
    r.unknown_keys(&nt, PAGING_NTFY);
    let server = nt
        .get(r, "server")
        .and_then(|f| {
            r.parsed(&f, values::http_url)
                .map(|u| u.trim_end_matches('/').to_owned())
        })
        .unwrap_or(d.ntfy.server);
    let token = nt
        .get(r, "token_env")
        .and_then(|f| env_secret(r, &f, env, "the ntfy access token"));
    let ntfy = NtfyConfig { server, token };

    let tt = single_in(r, t.table, "twilio", "paging.twilio", t.pos, layer);
    let twilio = (tt.table.is_some() || layer.sets_table("paging.twilio"))
        .then(|| twilio(r, &tt, env))
        .flatten();
    PagingConfig {
        ack_link_ttl,
        ntfy,
        twilio,
    }
}

fn twilio(r: &mut Reader<'_>, t: &Tbl<'_>, env: &[(String, String)]) -> Option<TwilioConfig> {
    if let Some((k, _)) = t.table.and_then(|tl| tl.get_key_value("auth_token")) {
        let pos = r.pos(k.span(), t.pos);
        r.report(
            pos,
            "`paging.twilio.auth_token`: secrets never live in the file: use auth_token_env or \
             auth_token_file",
            Some(
                "write auth_token_env = \"KEEL_TWILIO_AUTH_TOKEN\" and set that variable, or \
                 auth_token_file = \"/run/secrets/twilio-token\"; then remove this line"
                    .into(),
            ),
        );
    }
    let mut allowed = PAGING_TWILIO.to_vec();
    allowed.push("auth_token");
    r.unknown_keys(t, &allowed);
    let base_url = t.get(r, "base_url").map_or_else(
        || Some("https://api.twilio.com".to_owned()),
        |f| {
            r.parsed(&f, values::http_url)
                .map(|u| u.trim_end_matches('/').to_owned())
        },
    );
    let account_sid = t
        .require(r, "account_sid", "account_sid = \"AC…\"")
        .and_then(|f| r.nonempty(&f));
    let env_f = t.get(r, "auth_token_env");
    let file_f = t.get(r, "auth_token_file");
    let auth_token = match (&env_f, &file_f) {
        (Some(_), Some(f)) => {
            r.report(
                f.pos,
                "[paging.twilio]: give only one of auth_token_env and auth_token_file",
                Some("the auth token must come from one place; remove the other".into()),
            );
            None
        }
        (Some(f), None) => env_secret(r, f, env, "the Twilio auth token").map(SecretSource::Value),
        (None, Some(f)) => r
            .nonempty(f)
            .map(|p| SecretSource::File(std::path::PathBuf::from(p))),
        (None, None) => {
            r.report(
                t.pos,
                "[paging.twilio] is missing its auth token",
                Some(
                    "add auth_token_env = \"KEEL_TWILIO_AUTH_TOKEN\" (and set that variable) or \
                     auth_token_file = \"/run/secrets/twilio-token\""
                        .into(),
                ),
            );
            None
        }
    };
    let from = t
        .require(r, "from", "from = \"+15005550006\" (E.164)")
        .and_then(|f| r.parsed(&f, e164));
    Some(TwilioConfig {
        base_url: base_url?,
        account_sid: account_sid?,
        auth_token: auth_token?,
        from: from?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_shapes() {
        let q = quiet_hours("22:00-07:00").unwrap();
        assert!(q.contains(NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(q.contains(NaiveTime::from_hms_opt(6, 59, 0).unwrap()));
        assert!(!q.contains(NaiveTime::from_hms_opt(7, 0, 0).unwrap()));
        assert!(!q.contains(NaiveTime::from_hms_opt(12, 0, 0).unwrap()));
        let day = quiet_hours("09:00 - 17:30").unwrap();
        assert!(day.contains(NaiveTime::from_hms_opt(9, 0, 0).unwrap()));
        assert!(!day.contains(NaiveTime::from_hms_opt(17, 30, 0).unwrap()));
        for bad in [
            "22-07",
            "7:00-8:00",
            "22:00",
            "25:00-07:00",
            "22:00-22:00",
            "",
        ] {
            assert!(quiet_hours(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phone_numbers() {
        assert!(e164("+819012345678").is_ok());
        assert!(e164("+15005550006").is_ok());
        for bad in [
            "819012345678",
            "+81 90 1234 5678",
            "+0123",
            "+1",
            "+1234567890123456",
            "+",
        ] {
            assert!(e164(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn time_zones_suggest_the_closest_name() {
        assert_eq!(timezone("Asia/Tokyo"), Ok(chrono_tz::Tz::Asia__Tokyo));
        assert_eq!(
            timezone("Asia/Tokio").unwrap_err().hint.as_deref(),
            Some("did you mean `Asia/Tokyo`?")
        );
        assert!(timezone("Mars/Olympus")
            .unwrap_err()
            .hint
            .unwrap()
            .contains("IANA"));
    }
}
