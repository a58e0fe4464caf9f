//! The team sections of the config — `[[person]]`, `[[schedule]]`, `[[escalation]]` and
//! `[paging]` — as a user meets them: the documented shape parses into the model, and every
//! class of mistake is reported at its line with a hint.

use std::time::Duration;

use keel_core::assess::Severity;
use keel_core::config::{parse, Config, Contact, Diagnostic, PageTarget, SecretSource, EXAMPLE};

fn vars(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok_env(text: &str, env: &[(&str, &str)]) -> Config {
    match parse(text, "keel.toml", &vars(env)) {
        Ok(c) => c,
        Err(d) => panic!("expected a clean parse, got:\n{}", render(&d)),
    }
}

fn ok(text: &str) -> Config {
    ok_env(text, &[])
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("{d}\n")).collect()
}

fn errs_env(text: &str, env: &[(&str, &str)]) -> Vec<Diagnostic> {
    match parse(text, "keel.toml", &vars(env)) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d,
    }
}

/// Exactly one diagnostic, at `line`, whose message contains `msg` and hint contains `hint`.
#[track_caller]
fn one_env(text: &str, env: &[(&str, &str)], line: usize, msg: &str, hint: &str) -> Diagnostic {
    let d = errs_env(text, env);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    let d = d.into_iter().next().unwrap();
    assert_eq!(d.line, line, "wrong line:\n{d}");
    assert!(d.message.contains(msg), "message lacks {msg:?}:\n{d}");
    let h = d.hint.clone().unwrap_or_default();
    assert!(h.contains(hint), "hint lacks {hint:?}:\n{d}");
    assert_eq!(d.file, "keel.toml");
    d
}

#[track_caller]
fn one(text: &str, line: usize, msg: &str, hint: &str) -> Diagnostic {
    one_env(text, &[], line, msg, hint)
}

/// Two people, a schedule and a component, lines 1-12; tests append a broken part.
const BASE: &str = r#"[[component]]
id = "shop"
[[person]]
id = "ann"
name = "Ann Sato"
timezone = "Asia/Tokyo"
contacts = [ { kind = "email", address = "ann@example.com" } ]
[[person]]
id = "carol"
timezone = "Europe/Berlin"
[[schedule]]
id = "primary"
"#;

/// The rest of BASE's schedule, lines 13-15.
const SCHEDULE_REST: &str =
    "people = [\"ann\", \"carol\"]\nrotation = \"1w\"\nstart = \"2026-12-07T09:00:00+09:00\"\n";

fn base(rest: &str) -> String {
    format!("{BASE}{SCHEDULE_REST}{rest}")
}

// --- The documented shape ----------------------------------------------------------------

const FULL: &str = r#"[[component]]
id = "shop"
[[component]]
id = "search"

[[person]]
id = "ann"
name = "Ann Sato"
timezone = "Asia/Tokyo"
locale = "ja"
quiet_hours = "22:00-07:00"
contacts = [ { kind = "email", address = "ann@example.com" },
             { kind = "webhook", url = "https://hooks.example.com/ann", secret_env = "ANN_HOOK_SECRET" },
             { kind = "slack", url_env = "ANN_SLACK_URL" },
             { kind = "discord", url_file = "/run/secrets/ann-discord" },
             { kind = "teams", url = "https://example.webhook.office.com/x" },
             { kind = "ntfy", topic = "ann-pages", priority = 3 },
             { kind = "sms", number = "+819012345678" },
             { kind = "voice", number = "+819012345678" } ]

[[person]]
id = "bob"
timezone = "UTC"

[[schedule]]
id = "primary"
name = "Primary"
people = ["ann", "bob"]
rotation = "1w"
start = "2026-12-07T09:00:00+09:00"
timezone = "Europe/Berlin"

[[schedule]]
id = "secondary"
people = ["bob"]
rotation = "1d"
start = 2026-12-07T00:00:00Z

[[escalation]]
id = "default"
components = []
min_severity = "SEV2"
repeat = 1
repeat_after = "5m"
renotify_after = "30m"
levels = [ { after = "0s", notify = ["schedule:primary"] },
           { after = "5m", notify = ["person:bob", "schedule:secondary"] } ]

[[escalation]]
id = "shop"
components = ["shop"]
min_severity = "SEV1"
levels = [ { notify = ["person:ann"] } ]

[paging]
ack_link_ttl = "12h"

[paging.ntfy]
server = "https://ntfy.example.com/"
token_env = "KEEL_NTFY_TOKEN"

[paging.twilio]
base_url = "http://127.0.0.1:9999"
account_sid = "AC123"
auth_token_env = "KEEL_TWILIO_AUTH_TOKEN"
from = "+15005550006"
"#;

const FULL_ENV: &[(&str, &str)] = &[
    ("ANN_HOOK_SECRET", "hook-secret"),
    ("ANN_SLACK_URL", "https://hooks.slack.com/services/T/B/x"),
    ("KEEL_NTFY_TOKEN", "tk_abc"),
    ("KEEL_TWILIO_AUTH_TOKEN", "twilio-token"),
];

#[test]
fn the_documented_shape_parses_into_the_model() {
    let c = ok_env(FULL, FULL_ENV);
    assert_eq!(c.people.len(), 2);
    let ann = &c.people[0];
    assert_eq!(ann.name, "Ann Sato");
    assert_eq!(ann.timezone, chrono_tz::Tz::Asia__Tokyo);
    assert_eq!(ann.locale, "ja");
    assert_eq!(ann.quiet_hours.unwrap().to_string(), "22:00–07:00");
    let kinds: Vec<&str> = ann.contacts.iter().map(Contact::kind).collect();
    assert_eq!(
        kinds,
        ["email", "webhook", "slack", "discord", "teams", "ntfy", "sms", "voice"]
    );
    match &ann.contacts[1] {
        Contact::Webhook { url, secret } => {
            assert_eq!(
                url.value().unwrap().expose(),
                "https://hooks.example.com/ann"
            );
            assert_eq!(secret.as_ref().unwrap().expose(), "hook-secret");
        }
        other => panic!("{other:?}"),
    }
    match &ann.contacts[2] {
        Contact::Slack { url } => {
            assert_eq!(
                url.value().unwrap().expose(),
                "https://hooks.slack.com/services/T/B/x"
            );
        }
        other => panic!("{other:?}"),
    }
    match &ann.contacts[3] {
        Contact::Discord { url } => {
            assert_eq!(url, &SecretSource::File("/run/secrets/ann-discord".into()));
            let read = url.resolve(|p| Ok::<_, ()>(format!("https://d.example/{}\n", p.display())));
            assert_eq!(
                read.unwrap().expose(),
                "https://d.example//run/secrets/ann-discord"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ann.contacts[5],
        Contact::Ntfy {
            topic: "ann-pages".into(),
            priority: Some(3)
        }
    );
    let bob = &c.people[1];
    assert_eq!((bob.name.as_str(), bob.locale.as_str()), ("bob", "en"));
    assert!(bob.quiet_hours.is_none() && bob.contacts.is_empty());

    let s = &c.schedules[0];
    assert_eq!((s.id.as_str(), s.name.as_str()), ("primary", "Primary"));
    assert_eq!(s.people, ["ann", "bob"]);
    assert_eq!(s.rotation, Duration::from_secs(7 * 86_400));
    assert_eq!(s.start.to_rfc3339(), "2026-12-07T09:00:00+09:00");
    assert_eq!(s.timezone, Some(chrono_tz::Tz::Europe__Berlin));
    let s2 = &c.schedules[1];
    assert_eq!(s2.name, "secondary");
    assert_eq!(s2.start.to_rfc3339(), "2026-12-07T00:00:00+00:00");
    assert_eq!(s2.timezone, None);

    let p = &c.escalations[0];
    assert!(p.components.is_empty());
    assert_eq!((p.min_severity, p.repeat), (Severity::Sev2, 1));
    assert_eq!(p.repeat_after, Duration::from_secs(300));
    assert_eq!(p.renotify_after, Duration::from_secs(1800));
    assert_eq!(p.levels.len(), 2);
    assert_eq!(p.levels[1].after, Duration::from_secs(300));
    assert_eq!(
        p.levels[1].notify,
        [
            PageTarget::Person("bob".into()),
            PageTarget::Schedule("secondary".into())
        ]
    );
    assert_eq!(p.levels[1].notify[1].to_string(), "schedule:secondary");
    let shop = &c.escalations[1];
    assert_eq!(shop.components, ["shop"]);
    assert_eq!((shop.min_severity, shop.repeat), (Severity::Sev1, 0));
    assert_eq!(shop.levels[0].after, Duration::ZERO);

    assert_eq!(c.paging.ack_link_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(c.paging.ntfy.server, "https://ntfy.example.com");
    assert_eq!(c.paging.ntfy.token.as_ref().unwrap().expose(), "tk_abc");
    let tw = c.paging.twilio.as_ref().unwrap();
    assert_eq!(tw.base_url, "http://127.0.0.1:9999");
    assert_eq!(tw.auth_token.value().unwrap().expose(), "twilio-token");
    assert_eq!(tw.from, "+15005550006");
}

#[test]
fn defaults_without_any_team_section() {
    let c = ok("");
    assert!(c.people.is_empty() && c.schedules.is_empty() && c.escalations.is_empty());
    assert_eq!(c.paging.ack_link_ttl, Duration::from_secs(86_400));
    assert_eq!(c.paging.ntfy.server, "https://ntfy.sh");
    assert!(c.paging.ntfy.token.is_none() && c.paging.twilio.is_none());
}

#[test]
fn the_example_config_shows_the_team_sections() {
    for header in [
        "# [[person]]",
        "# [[schedule]]",
        "# [[escalation]]",
        "# [paging]",
        "# [paging.ntfy]",
        "# [paging.twilio]",
    ] {
        assert!(EXAMPLE.contains(header), "keel.example.toml lacks {header}");
    }
}

#[test]
fn paging_can_be_set_from_the_environment() {
    let c = ok_env("", &[("KEEL_PAGING__ACK_LINK_TTL", "1h")]);
    assert_eq!(c.paging.ack_link_ttl, Duration::from_secs(3600));
}

// --- People --------------------------------------------------------------------------------

#[test]
fn an_invalid_time_zone_suggests_the_closest() {
    let text = BASE.replace("Asia/Tokyo", "Asia/Tokio") + SCHEDULE_REST;
    one(
        &text,
        6,
        "unknown time zone \"Asia/Tokio\"",
        "did you mean `Asia/Tokyo`?",
    );
    let text = BASE.replace("Asia/Tokyo", "Moon/Base") + SCHEDULE_REST;
    one(&text, 6, "unknown time zone", "IANA time zone name");
}

#[test]
fn a_person_needs_a_time_zone() {
    let text = base("[[person]]\nid = \"dan\"\n");
    one(
        &text,
        16,
        "[[person]] is missing required key `timezone`",
        "Asia/Tokyo",
    );
}

#[test]
fn a_contact_of_unknown_kind_gets_a_did_you_mean() {
    let text = base(
        "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"emial\", address = \"d@example.com\" } ]\n",
    );
    one(
        &text,
        19,
        "unknown contact kind \"emial\"",
        "did you mean `email`?",
    );
    let text =
        base("[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"pager\" } ]\n");
    one(
        &text,
        19,
        "unknown contact kind",
        "contact kinds: `email`, `webhook`",
    );
}

#[test]
fn a_contact_missing_its_key() {
    for (contact, key) in [
        ("{ kind = \"email\" }", "address"),
        ("{ kind = \"sms\" }", "number"),
        ("{ kind = \"ntfy\" }", "topic"),
        ("{ kind = \"slack\" }", "url"),
    ] {
        let text = base(&format!(
            "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ {contact} ]\n"
        ));
        let d = errs_env(&text, &[]);
        let d = d
            .iter()
            .find(|d| d.message.contains("is missing"))
            .unwrap_or_else(|| panic!("{}", render(&d)));
        assert_eq!(d.line, 19, "{d}");
        assert!(d.message.contains(&format!("is missing `{key}`")), "{d}");
        assert!(d.hint.as_deref().unwrap().starts_with("add "), "{d}");
    }
}

#[test]
fn a_key_of_another_contact_kind_is_refused() {
    let text = base(
        "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"email\", address = \"d@example.com\", number = \"+15005550006\" } ]\n",
    );
    one(
        &text,
        19,
        "person `dan`: `number` does not apply to a contact of kind = \"email\"",
        "a email contact takes `address`",
    );
}

#[test]
fn a_malformed_phone_number() {
    let text = base(
        "[paging.twilio]\naccount_sid = \"AC1\"\nauth_token_file = \"/run/t\"\nfrom = \"+15005550006\"\n[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"sms\", number = \"090-1234-5678\" } ]\n",
    );
    one(
        &text,
        23,
        "is not an E.164 phone number",
        "\"+819012345678\"",
    );
    let text = base("[paging.twilio]\naccount_sid = \"AC1\"\nauth_token_file = \"/run/t\"\nfrom = \"5550006\"\n");
    one(
        &text,
        19,
        "`paging.twilio.from`: \"5550006\" is not an E.164",
        "+ then the country code",
    );
}

#[test]
fn sms_and_voice_need_twilio() {
    let text = base(
        "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"voice\", number = \"+15005550006\" } ]\n",
    );
    one(
        &text,
        19,
        "a contact of kind = \"voice\" needs [paging.twilio], which is not set",
        "add [paging.twilio]",
    );
}

#[test]
fn bad_quiet_hours() {
    let text = base("[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\nquiet_hours = \"10pm-7am\"\n");
    one(&text, 19, "bad quiet hours \"10pm-7am\"", "\"HH:MM-HH:MM\"");
}

#[test]
fn an_unset_secret_variable_is_named() {
    let text = base(
        "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"webhook\", url = \"https://h.example/x\", secret_env = \"DAN_SECRET\" } ]\n",
    );
    one(
        &text,
        19,
        "environment variable DAN_SECRET is not set",
        "set DAN_SECRET",
    );
    let text = base(
        "[[person]]\nid = \"dan\"\ntimezone = \"UTC\"\ncontacts = [ { kind = \"slack\", url_env = \"DAN_SLACK\", url_file = \"/x\" } ]\n",
    );
    one(
        &text,
        19,
        "give only one of url, url_env and url_file",
        "one place",
    );
}

#[test]
fn duplicate_ids() {
    let text = base("[[person]]\nid = \"ann\"\ntimezone = \"UTC\"\n");
    one(
        &text,
        17,
        "duplicate person id `ann`: already used on line 4",
        "different id",
    );
    let text = base("[[schedule]]\nid = \"primary\"\npeople = [\"ann\"]\nrotation = \"1d\"\nstart = \"2026-01-01T00:00:00Z\"\n");
    one(
        &text,
        17,
        "duplicate schedule id `primary`: already used on line 12",
        "different id",
    );
    let lv = "levels = [ { notify = [\"person:ann\"] } ]\n";
    let text = base(&format!(
        "[[escalation]]\nid = \"p\"\ncomponents = [\"shop\"]\n{lv}[[escalation]]\nid = \"p\"\n{lv}"
    ));
    one(
        &text,
        21,
        "duplicate escalation policy id `p`: already used on line 17",
        "different id",
    );
}

// --- Schedules -----------------------------------------------------------------------------

#[test]
fn a_schedule_with_an_unknown_person() {
    let text = format!("{BASE}people = [\"ann\", \"carl\"]\nrotation = \"1w\"\nstart = \"2026-12-07T09:00:00+09:00\"\n");
    one(
        &text,
        13,
        "schedule `primary` names unknown person `carl`",
        "did you mean `carol`?",
    );
}

#[test]
fn a_schedule_with_nobody() {
    let text =
        format!("{BASE}people = []\nrotation = \"1w\"\nstart = \"2026-12-07T09:00:00+09:00\"\n");
    one(
        &text,
        13,
        "schedule `primary`: `people` is empty",
        "rotation order",
    );
}

#[test]
fn a_zero_rotation() {
    let text = format!(
        "{BASE}people = [\"ann\"]\nrotation = \"0s\"\nstart = \"2026-12-07T09:00:00+09:00\"\n"
    );
    one(
        &text,
        14,
        "`schedule.rotation`: must be longer than zero",
        "duration",
    );
}

#[test]
fn a_start_without_offset() {
    let text =
        format!("{BASE}people = [\"ann\"]\nrotation = \"1w\"\nstart = \"2026-12-07 09:00\"\n");
    one(
        &text,
        15,
        "is not an RFC 3339 time with an offset",
        "\"2026-12-07T09:00:00+09:00\"",
    );
    // A bare TOML local date-time has no offset either.
    let text =
        format!("{BASE}people = [\"ann\"]\nrotation = \"1w\"\nstart = 2026-12-07T09:00:00\n");
    one(
        &text,
        15,
        "is not an RFC 3339 time with an offset",
        "with its offset",
    );
}

#[test]
fn a_schedule_time_zone_is_checked() {
    let text = base("timezone = \"Europe/Berln\"\n");
    one(
        &text,
        16,
        "unknown time zone",
        "did you mean `Europe/Berlin`?",
    );
}

// --- Escalation policies -------------------------------------------------------------------

fn policy(lines: &str) -> String {
    base(&format!("[[escalation]]\nid = \"p\"\n{lines}"))
}

#[test]
fn targets_must_name_known_people_and_schedules() {
    let text = policy("levels = [ { notify = [\"person:caroll\"] } ]\n");
    one(
        &text,
        18,
        "policy `p`: level 1 names unknown person `caroll`",
        "did you mean `carol`?",
    );
    let text = policy("levels = [ { notify = [\"schedule:primay\"] } ]\n");
    one(
        &text,
        18,
        "level 1 names unknown schedule `primay`",
        "did you mean `primary`?",
    );
}

#[test]
fn a_target_needs_its_prefix() {
    let text = policy("levels = [ { notify = [\"carol\"] } ]\n");
    one(
        &text,
        18,
        "target \"carol\" does not start with `person:` or `schedule:`",
        "did you mean `person:carol`?",
    );
    let text = policy("levels = [ { notify = [\"primary\"] } ]\n");
    one(
        &text,
        18,
        "does not start with",
        "did you mean `schedule:primary`?",
    );
    let text = policy("levels = [ { notify = [\"team:ops\"] } ]\n");
    one(&text, 18, "does not start with", "write \"person:ID\"");
}

#[test]
fn levels_out_of_order() {
    let text = policy(
        "levels = [ { after = \"5m\", notify = [\"person:ann\"] },\n           { after = \"2m\", notify = [\"person:carol\"] } ]\n",
    );
    one(
        &text,
        19,
        "policy `p`: level 2 comes after 2m but level 1 after 5m; levels are out of order",
        "earliest first",
    );
}

#[test]
fn empty_levels_and_empty_notify() {
    let text = policy("levels = []\n");
    one(&text, 18, "policy `p` has no levels", "add at least one");
    let text = policy("");
    one(
        &text,
        16,
        "[[escalation]] is missing required key `levels`",
        "levels = [",
    );
    let text = policy("levels = [ { after = \"0s\", notify = [] } ]\n");
    one(
        &text,
        18,
        "policy `p`: level 1 notifies nobody",
        "notify = [",
    );
}

#[test]
fn unknown_components_in_a_policy() {
    let text = policy("components = [\"shpo\"]\nlevels = [ { notify = [\"person:ann\"] } ]\n");
    one(
        &text,
        18,
        "policy `p` names unknown component `shpo`",
        "did you mean `shop`?",
    );
}

#[test]
fn two_catch_all_policies() {
    let lv = "levels = [ { notify = [\"person:ann\"] } ]\n";
    let text = base(&format!(
        "[[escalation]]\nid = \"a\"\n{lv}[[escalation]]\nid = \"b\"\ncomponents = []\n{lv}"
    ));
    one(
        &text,
        21,
        "policy `b` is a second catch-all policy (components = []): policy `a` on line 16",
        "only one policy may leave components empty",
    );
}

#[test]
fn a_component_claimed_by_two_policies() {
    let lv = "levels = [ { notify = [\"person:ann\"] } ]\n";
    let text = base(&format!(
        "[[escalation]]\nid = \"a\"\ncomponents = [\"shop\"]\n{lv}[[escalation]]\nid = \"b\"\ncomponents = [\"shop\"]\n{lv}"
    ));
    one(
        &text,
        22,
        "component `shop` is already claimed by policy `a` (line 18)",
        "one escalation policy",
    );
}

#[test]
fn min_severity_must_be_sev1_to_sev4() {
    let text = policy("min_severity = \"SEV5\"\nlevels = [ { notify = [\"person:ann\"] } ]\n");
    one(&text, 18, "unknown severity \"SEV5\"", "SEV1 is the worst");
    let text = policy("min_severity = \"sev 2\"\nlevels = [ { notify = [\"person:ann\"] } ]\n");
    one(&text, 18, "unknown severity", "did you mean `SEV2`?");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "{BASE}people = [\"zed\"]\nrotation = \"0s\"\nstart = \"soon\"\n[[escalation]]\nid = \"p\"\nlevels = [ {{ notify = [\"x\"] }} ]\n"
    );
    let d = errs_env(&text, &[]);
    let lines: Vec<usize> = d.iter().map(|d| d.line).collect();
    assert_eq!(lines, [13, 14, 15, 18], "{}", render(&d));
}

// --- [paging] ------------------------------------------------------------------------------

#[test]
fn twilio_auth_token_never_in_the_file() {
    let text = base("[paging.twilio]\naccount_sid = \"AC1\"\nauth_token = \"s3cret\"\nauth_token_env = \"T\"\nfrom = \"+15005550006\"\n");
    let d = one_env(
        &text,
        &[("T", "x")],
        18,
        "secrets never live in the file",
        "auth_token_env",
    );
    assert!(!d.to_string().contains("s3cret"));
    let text = base("[paging.twilio]\naccount_sid = \"AC1\"\nfrom = \"+15005550006\"\n");
    one(
        &text,
        16,
        "[paging.twilio] is missing its auth token",
        "auth_token_file",
    );
}

#[test]
fn unknown_paging_keys_get_a_did_you_mean() {
    let text = base("[paging]\nack_link_tll = \"1h\"\n");
    one(
        &text,
        17,
        "unknown key `ack_link_tll` in [paging]",
        "did you mean `ack_link_ttl`?",
    );
    let text = base("[paging.ntfy]\nserver = \"ntfy.sh\"\n");
    one(&text, 17, "`paging.ntfy.server`: bad URL", "full URL");
    let text = base("[paging.ntfy]\ntoken_env = \"NTFY_TOKEN\"\n");
    one(
        &text,
        17,
        "environment variable NTFY_TOKEN is not set",
        "ntfy access token",
    );
}
