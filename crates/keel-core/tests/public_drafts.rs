//! Public updates end to end over a parsed config: the disclosure check against what the
//! config marks internal, the `[templates]` and `[disclosure]` config, drafts in English and
//! Japanese, Keel drafting and auto-publishing through an incident's life while responders
//! publish, hold and override, and the public snapshot built from it all — which never says
//! anything the check refuses.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use keel_core::assess::{Eta, HealthMap, NodeHealth, Severity};
use keel_core::config::{parse, Config, LocalizedText, Situation};
use keel_core::incident::{
    postmortem, stamp, Actor, Command, DraftFate, EventKind, Incident, IncidentEvent, IncidentId,
    IncidentState, Origin,
};
use keel_core::public::{
    self, check, disclosure::findings, drafts_due, ComponentStatus, DayUptime, DisclosureRules,
    Facts, Indicator, Maintenance, MaintenanceStatus, PublicEta, PublicImpact, PublicStatus,
    Publisher,
};
use keel_core::{ComponentId, Health, NodeId};
use proptest::prelude::*;

const SHOP: &str = r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]
base_url = "https://status.acme.test/"

[incidents]
publish_after = "2m"

[disclosure]
confidential_terms = ["Project Falcon", "falcon-7"]

[[component]]
id = "search"
name = { en = "Search", ja = "検索サービス" }
users = 500
depends_on = ["db"]
workaround = { en = "Browse the catalogue by category.", ja = "カテゴリから商品をお探しください。" }

[[component]]
id = "checkout"
name = { en = "Checkout", ja = "決済" }
users = 300
depends_on = ["payments", "db"]

[[component]]
id = "mail"
name = "Email"
users = 50
depends_on = ["mailer"]

[[component]]
id = "db"
name = { en = "Primary database", ja = "基幹データベース" }
public = false

[[component]]
id = "ledger"
name = "Ledger"
public = false

[[vendor]]
id = "payments"
name = "Stripe"
status_url = "https://status.stripe.com/api/v2/summary.json"
confidential = true

[[vendor]]
id = "mailer"
name = "Postmark"
status_url = "https://status.postmarkapp.com/api/v2/summary.json"

[[monitor]]
id = "db-port"
component = "db"
kind = "tcp"
host = "db-7.corp.acme.test"
port = 5432

[[monitor]]
id = "search-health"
component = "search"
kind = "http"
url = "https://search.internal.acme.test/health"

[[monitor]]
id = "search-dns"
component = "search"
kind = "dns"
name = "search.acme.test"
resolver = "10.0.0.53"

[[monitor]]
id = "checkout-tls"
component = "checkout"
kind = "tls"
host = "pay-gw.acme.test"
server_name = "checkout.acme.test"

[[monitor]]
id = "nightly"
component = "ledger"
kind = "heartbeat"
token = "s3cr3t-push-token-42"
interval = "24h"
"#;

fn shop() -> Config {
    parse(SHOP, "keel.toml", &[]).expect("the shop config parses")
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn set(items: &[&str]) -> BTreeSet<NodeId> {
    items.iter().map(|s| NodeId::parse(*s).unwrap()).collect()
}

fn cid(id: &str) -> ComponentId {
    ComponentId::parse(id).unwrap()
}

fn en(text: &str) -> LocalizedText {
    LocalizedText {
        by_locale: BTreeMap::from([("en".to_string(), text.to_string())]),
    }
}

// --- The disclosure check -------------------------------------------------------------------

#[test]
fn the_check_refuses_everything_the_config_marks_internal() {
    let rules = DisclosureRules::from_config(&shop());
    for (text, term, why) in [
        (
            "Our provider Stripe is down",
            "Stripe",
            "confidential vendor `payments`",
        ),
        ("STRIPE has an outage", "Stripe", "confidential vendor"),
        (
            "the payments vendor is slow",
            "payments",
            "the id of confidential vendor",
        ),
        (
            "The Primary Database failed",
            "Primary database",
            "internal component `db`",
        ),
        (
            "基幹データベースが停止しました",
            "基幹データベース",
            "internal component `db`",
        ),
        (
            "db is unreachable",
            "db",
            "the id of internal component `db`",
        ),
        (
            "dbが停止しました",
            "db",
            "the id of internal component `db`",
        ),
        ("the ledger job", "Ledger", "internal component `ledger`"),
        (
            "we restarted db-7.corp.acme.test",
            "db-7.corp.acme.test",
            "monitor `db-port`",
        ),
        (
            "see search.internal.acme.test",
            "search.internal.acme.test",
            "monitor `search-health`",
        ),
        (
            "search.acme.test does not resolve",
            "search.acme.test",
            "monitor `search-dns`",
        ),
        (
            "resolver 10.0.0.53 timed out",
            "10.0.0.53",
            "resolver of monitor `search-dns`",
        ),
        (
            "pay-gw.acme.test certificate",
            "pay-gw.acme.test",
            "monitor `checkout-tls`",
        ),
        (
            "checkout.acme.test certificate",
            "checkout.acme.test",
            "monitor `checkout-tls`",
        ),
        (
            "status.stripe.com says so",
            "status.stripe.com",
            "vendor `payments`",
        ),
        (
            "status.postmarkapp.com is red",
            "status.postmarkapp.com",
            "vendor `mailer`",
        ),
        ("Project  Falcon slipped", "Project Falcon", "[disclosure]"),
        ("the FALCON-7 rollout", "falcon-7", "[disclosure]"),
        (
            "token s3cr3t-push-token-42",
            "s3cr3t-push-token-42",
            "push token",
        ),
        ("ＳＴＲＩＰＥ障害", "Stripe", "confidential vendor"),
        (
            "upstream 192.168.10.4 refused",
            "192.168.10.4",
            "an IP address",
        ),
        (
            "upstream [2001:db8::7]:443 refused",
            "2001:db8::7",
            "an IP address",
        ),
        (
            "Traceback (most recent call last):\n  File x",
            "Traceback (most recent call last)",
            "stack trace",
        ),
        (
            "thread 'main' panicked at src/main.rs:4:5",
            "panicked at",
            "stack trace",
        ),
        (
            "Exception in thread \"main\" java.lang.Error",
            "Exception in thread",
            "stack trace",
        ),
        (
            "goroutine 1 [running]:\nmain.main()",
            "goroutine 1 [",
            "stack trace",
        ),
        (
            "error\n    at Object.<anonymous> (/app/index.js:1:7)",
            "at Object.<anonymous> (/app/index.js:1:7)",
            "stack trace",
        ),
        (
            "failed\n\tat com.acme.Foo.bar(Foo.java:42)",
            "at com.acme.Foo.bar(Foo.java:42)",
            "stack trace",
        ),
        ("it failed at foo.rs:12", "foo.rs:12", "stack trace"),
        (
            "File \"/srv/app.py\", line 3, in main",
            "/srv/app.py\", line 3",
            "stack trace",
        ),
        (
            "ZeroDivisionError: division by zero",
            "ZeroDivisionError",
            "stack trace",
        ),
        (
            "java.lang.IllegalStateException: closed",
            "java.lang.IllegalStateException",
            "stack trace",
        ),
    ] {
        let finding = check(text, &rules).expect_err(text);
        assert_eq!(finding.term, term, "in {text:?}");
        assert!(finding.why.contains(why), "{text:?}: {finding:?}");
    }
}

#[test]
fn the_check_passes_ordinary_customer_text() {
    let rules = DisclosureRules::from_config(&shop());
    for text in [
        "We are investigating a problem affecting Search. About 500 users may be affected.",
        "検索サービスに影響する問題を調査しています。約500人のユーザーに影響が出ている可能性があります。",
        "A rapid fix is being deployed to the database layer of Checkout.",
        "Payment pages load slowly; please retry.",
        "Updated at 12:30:45 UTC. Next update in 30 minutes.",
        "Version 2.3.1 of the app and release 1.2.3.4.5 are unaffected.",
        "Error rates are dropping. An error: none.",
        "Stripes and dbs and falcons are not terms on their own: falcon, project.",
        "The ledgers are balanced; dashboard_db metrics look normal.",
        "Visit https://status.acme.test for updates.",
        "We looked at the logs and the cause is in a third-party service.",
        "Please use the app at a later time.",
        "Times: 09:00–10:00 JST (00:00–01:00 UTC).",
        "",
    ] {
        assert_eq!(check(text, &rules), Ok(()), "{text:?}");
    }
}

#[test]
fn every_finding_is_listed_once_in_text_order() {
    let rules = DisclosureRules::from_config(&shop());
    let all = findings("Stripe at 10.1.2.3, then db, then Stripe again", &rules);
    let terms: Vec<&str> = all.iter().map(|f| f.term.as_str()).collect();
    assert_eq!(terms, ["Stripe", "10.1.2.3", "db"]);
}

// --- Config ---------------------------------------------------------------------------------

fn errors(text: &str) -> Vec<String> {
    parse(text, "keel.toml", &[])
        .expect_err("the config is refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn templates_are_read_per_situation_field_and_locale() {
    let c = parse(
        r#"
[page]
locales = ["en", "ja"]
[templates]
next_update = "1h"
[templates.opened]
title.en = "Trouble with {components}"
body = { en = "Looking into {components}. {{braces}} {impact}", ja = "{components}を調査中です。" }
[templates.resolved]
body = "All good again."
"#,
        "keel.toml",
        &[],
    )
    .expect("parses");
    assert_eq!(
        c.templates.next_update,
        std::time::Duration::from_secs(3600)
    );
    let opened = &c.templates.overrides[&Situation::Opened];
    assert_eq!(
        opened.title.as_ref().map(|t| t.get("en")),
        Some("Trouble with {components}")
    );
    assert!(c.templates.overrides[&Situation::Resolved].title.is_none());
    assert_eq!(c.page.base_url, None);
}

#[test]
fn the_documented_template_example_parses() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
        .expect("docs/config.md");
    let start = doc
        .find("```toml\n[templates]")
        .expect("the [templates] example")
        + 8;
    let end = start + doc[start..].find("```").expect("its end");
    let config = parse(&doc[start..end], "docs/config.md", &[]).expect("the example parses");
    let opened = &config.templates.overrides[&Situation::Opened];
    assert!(opened
        .body
        .as_ref()
        .is_some_and(|b| b.by_locale.contains_key("ja")));
}

#[test]
fn an_unknown_placeholder_is_refused_where_it_is_written() {
    let errs = errors(
        "[templates.opened]\ntitle = \"x\"\nbody.en = \"Hello {componets}\"\nbody.ja = \"{eta\"\n",
    );
    assert_eq!(
        errs,
        [
            "keel.toml:3:11: `templates.opened.body.en`: unknown placeholder {componets}\n  hint: did you mean {components}?",
            "keel.toml:4:11: `templates.opened.body.ja`: a `{` that is never closed\n  hint: write `{{` for a brace, or close the placeholder: `{components}`",
        ]
    );
    let errs = errors("[templates.identified]\nbody = \"{x}\"\nsubject = \"y\"\n");
    assert!(
        errs[0].starts_with("keel.toml:2:8: `templates.identified.body`: unknown placeholder {x}"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("keel.toml:3:1: unknown key `subject` in [templates.identified]"),
        "{errs:?}"
    );
    let errs = errors("[templates]\nopened = \"text\"\nlater = 1\n");
    assert!(
        errs[0].starts_with("keel.toml:2:10: `templates.opened` must be a table"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("unknown key `later` in [templates]"),
        "{errs:?}"
    );
}

#[test]
fn wording_that_would_trip_the_check_is_refused_at_its_place() {
    // An operator's template naming a confidential vendor.
    let errs = errors(
        r#"[[vendor]]
id = "payments"
name = "Stripe"
status_url = "https://status.stripe.com/api/v2/summary.json"
confidential = true

[templates.opened]
body.en = "Stripe is down, {components} too."
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "keel.toml:8:11: `templates.opened.body` (en) contains \"Stripe\", the name of confidential vendor `payments`"
        ),
        "{errs:?}"
    );
    // A confidential term that Keel's own wording uses: blamed where the term is written.
    let errs = errors("[disclosure]\nconfidential_terms = [\"ok\", \"investigating\"]\n");
    assert!(
        errs.iter().any(|e| e.starts_with(
            "keel.toml:2:29: Keel's built-in opened update body (en) contains \"investigating\""
        )),
        "{errs:?}"
    );
    // ...which an override of every affected template fixes.
    let ok = parse(
        "[disclosure]\nconfidential_terms = [\"investigating\"]\n[templates.opened]\nbody = \"We are looking into a problem affecting {components}.\"\n[templates.reopened]\nbody = \"The problem affecting {components} is back.\"\n",
        "keel.toml",
        &[],
    );
    assert!(ok.is_ok(), "{ok:?}");
    // Fixed phrases too: an internal component whose id is a word Keel's wording uses.
    let errs = errors("[[component]]\nid = \"service\"\npublic = false\n");
    assert!(
        errs.iter().any(|e| e.starts_with("keel.toml:2:6: ")
            && e.contains("\"service\", the name of internal component `service`")),
        "{errs:?}"
    );
}

#[test]
fn disclosure_and_page_keys_are_checked() {
    let errs =
        errors("[disclosure]\nconfidential_terms = [\"x\", 3]\n[page]\nbase_url = \"ftp://x\"\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("expected a string, found an integer")),
        "{errs:?}"
    );
    let errs = errors("[disclosure]\nconfidential_terms = [\"x\"]\n");
    assert_eq!(
        errs,
        ["keel.toml:2:23: `disclosure.confidential_terms`: \"x\" is too short to look for\n  hint: terms need at least 2 characters; a single letter would refuse every text"]
    );
    let errs = errors("[page]\nbase_url = \"ftp://status.acme.test\"\n");
    assert!(
        errs[0].starts_with("keel.toml:2:12: `page.base_url`: URL"),
        "{errs:?}"
    );
    let c = shop();
    assert_eq!(c.page.base_url.as_deref(), Some("https://status.acme.test"));
    let env = [(
        "KEEL_DISCLOSURE__CONFIDENTIAL_TERMS".to_string(),
        "Orion, hq-vpn".to_string(),
    )];
    let c = parse("", "keel.toml", &env).expect("parses");
    assert_eq!(c.disclosure.confidential_terms, ["Orion", "hq-vpn"]);
    let env = [("KEEL_TEMPLATES__OPENED".to_string(), "x".to_string())];
    let errs: Vec<String> = parse("", "keel.toml", &env)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        ["environment: KEEL_TEMPLATES__OPENED: `templates.opened` cannot be set from the environment\n  hint: write a [templates.opened] table in the config file"]
    );
}

// --- Incidents, as the engine writes them ----------------------------------------------------

/// How a detected incident opened: the engine's first events.
struct Opening<'a> {
    id: IncidentId,
    cause: &'a str,
    kind: &'a str,
    impacted: &'a [&'a str],
    users: u64,
    minute: i64,
    eta: Eta,
    /// The engine's reason; `None` for "<cause>-port: connection refused".
    reason: Option<&'a str>,
}

impl Opening<'_> {
    fn events(&self) -> Vec<IncidentEvent> {
        stamp(
            self.id,
            1,
            t(self.minute),
            [
                (
                    Actor::System,
                    EventKind::Opened {
                        title: format!("{} is down", self.cause),
                        origin: Origin::Detected,
                        cause: Some(NodeId::parse(self.cause).unwrap()),
                        cause_kind: self.kind.to_string(),
                        failure_kind: "tcp".to_string(),
                        impacted: set(self.impacted),
                        affected_users: self.users,
                        reason: self.reason.map_or_else(
                            || format!("{}-port: connection refused", self.cause),
                            str::to_string,
                        ),
                        failing_since: t(self.minute),
                    },
                ),
                (
                    Actor::System,
                    EventKind::SeverityChanged {
                        from: None,
                        to: Severity::Sev2,
                        reason: "test".into(),
                    },
                ),
                (
                    Actor::System,
                    EventKind::EtaChanged {
                        eta: self.eta.clone(),
                    },
                ),
            ],
        )
    }

    fn incident(&self) -> Incident {
        Incident::replay(&self.events()).expect("valid")
    }
}

/// Incident 1, caused by `cause` (a node of kind `kind`), opened at `minute`, no ETA.
fn opening<'a>(
    cause: &'a str,
    kind: &'a str,
    impacted: &'a [&'a str],
    users: u64,
    minute: i64,
) -> Opening<'a> {
    Opening {
        id: IncidentId(1),
        cause,
        kind,
        impacted,
        users,
        minute,
        eta: Eta::NoHistory,
        reason: None,
    }
}

fn opened(cause: &str, kind: &str, impacted: &[&str], users: u64, minute: i64) -> Incident {
    opening(cause, kind, impacted, users, minute).incident()
}

/// An incident with its timeline, driven the way the server drives it.
struct Story {
    publisher: Publisher,
    inc: Incident,
    events: Vec<IncidentEvent>,
}

impl Story {
    fn new(config: &Config, opening: Opening<'_>) -> Story {
        let events = opening.events();
        Story {
            publisher: Publisher::new(config),
            inc: Incident::replay(&events).expect("valid"),
            events,
        }
    }

    fn append(&mut self, actor: Actor, minute: i64, kinds: Vec<EventKind>) {
        for e in self
            .inc
            .stamp(t(minute), kinds.into_iter().map(|k| (actor.clone(), k)))
        {
            self.inc.apply(&e).expect("a valid event");
            self.events.push(e);
        }
        assert_eq!(Incident::replay(&self.events).as_ref(), Ok(&self.inc));
    }

    /// Keel's public plan at `minute`, applied; running it again plans nothing.
    fn keel(&mut self, minute: i64) -> Vec<&'static str> {
        let kinds = self.publisher.plan(&self.inc, t(minute));
        let names = kinds.iter().map(EventKind::name).collect();
        self.append(Actor::System, minute, kinds);
        assert_eq!(
            self.publisher.plan(&self.inc, t(minute)),
            Vec::new(),
            "idempotent"
        );
        names
    }

    /// The engine (or a responder) moves the incident.
    fn state(&mut self, to: IncidentState, minute: i64) {
        let from = self.inc.state;
        self.append(
            Actor::System,
            minute,
            vec![EventKind::StateChanged {
                from,
                to,
                reason: "test".into(),
            }],
        );
    }

    fn act(&mut self, who: &str, cmd: Command, admin: bool, minute: i64) {
        let kinds = self
            .publisher
            .decide(&self.inc, cmd, admin)
            .expect("accepted");
        self.append(Actor::User(who.to_string()), minute, kinds);
    }

    fn refused(&self, cmd: Command, admin: bool) -> keel_core::incident::Refusal {
        self.publisher
            .decide(&self.inc, cmd, admin)
            .expect_err("refused")
    }

    fn last(&self) -> &EventKind {
        &self.events.last().expect("events").kind
    }
}

fn body_of(kind: &EventKind) -> &LocalizedText {
    match kind {
        EventKind::DraftPrepared { body, .. } | EventKind::UpdatePublished { body, .. } => body,
        other => panic!("not a public update: {other:?}"),
    }
}

#[test]
fn the_first_draft_reads_like_the_glossary_in_both_languages() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    assert_eq!(s.keel(0), ["draft_prepared"]);
    let EventKind::DraftPrepared {
        draft,
        status,
        title,
        body,
        due_at,
    } = s.last().clone()
    else {
        panic!("a draft");
    };
    assert_eq!(
        (draft, status, due_at),
        (1, PublicStatus::Investigating, t(2))
    );
    assert_eq!(title.get("en"), "Problem affecting Search");
    assert_eq!(title.get("ja"), "検索サービスに影響する障害");
    assert_eq!(
        body.get("en"),
        "We are investigating a problem affecting Search. About 500 users may be affected. \
         No estimate yet. Workaround: Browse the catalogue by category. We will post an update \
         within 30 minutes."
    );
    assert_eq!(
        body.get("ja"),
        "検索サービスに影響する問題を調査しています。約500人のユーザーに影響が出ている可能性があります。\
         復旧時期は未定です。回避策：カテゴリから商品をお探しください。30分以内に続報をお知らせします。"
    );
    assert_eq!(
        body.by_locale.len(),
        2,
        "one text per page locale, nothing else"
    );
}

#[test]
fn a_regional_outage_says_where_customers_are_affected_from() {
    let config = shop();
    let mut o = opening("checkout", "component", &["checkout"], 300, 0);
    // As the quorum fold words it, through the node fold ("source: reason").
    o.reason = Some("checkout-tls: failing from osaka only (HTTP 503); fine from local");
    let mut s = Story::new(&config, o);
    assert_eq!(s.inc.regions, ["osaka"]);
    assert_eq!(s.keel(0), ["draft_prepared"]);
    let body = body_of(s.last()).clone();
    assert_eq!(
        body.get("en"),
        "We are investigating a problem affecting Checkout. Customers reaching Checkout from \
         osaka may see errors. No estimate yet. No workaround is available at this time. We will \
         post an update within 30 minutes."
    );
    assert_eq!(
        body.get("ja"),
        "決済に影響する問題を調査しています。osakaから決済をご利用のお客様に、エラーが発生している\
         可能性があります。復旧時期は未定です。現在、利用可能な回避策はありません。30分以内に続報をお知らせします。"
    );

    // It recovers, then fails from everywhere: the relapse's reason is no longer regional,
    // and the next draft says so by counting users again.
    s.append(
        Actor::System,
        3,
        vec![EventKind::Recovered {
            reason: "checkout is up".into(),
        }],
    );
    s.append(
        Actor::System,
        4,
        vec![EventKind::Relapsed {
            health: Health::Down,
            reason: "checkout is down again: checkout-tls: failing from every location (local, \
                     osaka): HTTP 503"
                .into(),
        }],
    );
    assert!(s.inc.regions.is_empty());
    s.state(IncidentState::Identified, 5);
    s.keel(5);
    assert!(body_of(s.last())
        .get("en")
        .contains("About 300 users may be affected."));

    // A location name the disclosure check refuses is never said: the users are counted.
    let mut config = shop();
    config.disclosure.confidential_terms.push("osaka".into());
    let mut o = opening("checkout", "component", &["checkout"], 300, 0);
    o.reason = Some("checkout-tls: failing from osaka only (HTTP 503); fine from local");
    let mut s = Story::new(&config, o);
    s.keel(0);
    let body = body_of(s.last()).clone();
    assert!(!body.get("en").contains("osaka") && !body.get("ja").contains("osaka"));
    assert!(body.get("en").contains("About 300 users may be affected."));
}

#[test]
fn a_vendor_cause_is_a_third_party_never_named_and_history_gives_a_range() {
    let config = shop();
    let rules = DisclosureRules::from_config(&config);
    let mut inc = opened("payments", "vendor", &["payments", "checkout"], 300, 0);
    inc.eta = Some(Eta::Vendor {
        vendor: "Stripe".into(),
        status: "Stripe reports a major outage at 10.2.3.4".into(),
    });
    let p = Publisher::new(&config);
    let d = p.draft(&inc, Situation::Opened);
    assert!(d.body.get("en").contains(
        "A third-party service we rely on is experiencing problems. No workaround is available at this time."
    ), "{}", d.body.get("en"));
    assert!(d.body.get("ja").contains("当社が利用している外部サービスで障害が発生しています。現在、利用可能な回避策はありません。"));
    for text in d.body.by_locale.values().chain(d.title.by_locale.values()) {
        assert_eq!(check(text, &rules), Ok(()), "{text}");
    }
    let mut inc = opened("db", "component", &["db", "search", "checkout"], 800, 0);
    inc.eta = Some(Eta::History {
        samples: 4,
        p50_minutes: 12,
        p90_minutes: 40,
    });
    let d = p.draft(&inc, Situation::Opened);
    assert!(d.body.get("en").contains("affecting Search and Checkout. About 800 users may be affected. Similar incidents were resolved in 12–40 minutes. Workaround for Search: Browse"), "{}", d.body.get("en"));
    assert!(d
        .body
        .get("ja")
        .contains("検索サービス、決済に影響する問題"));
    assert!(d
        .body
        .get("ja")
        .contains("過去の同様の障害は 12〜40 分で解決しています。"));
    assert_eq!(
        Facts::of(&inc, &config).eta,
        PublicEta::History {
            p50_minutes: 12,
            p90_minutes: 40
        }
    );
}

#[test]
fn every_situation_has_its_wording() {
    let config = shop();
    let inc = opened("db", "component", &["db", "search"], 500, 0);
    let p = Publisher::new(&config);
    let body = |s| p.draft(&inc, s).body.get("en").to_string();
    assert!(body(Situation::Identified)
        .starts_with("We have identified the cause of the problem affecting Search"));
    assert_eq!(
        body(Situation::Monitoring),
        "Service for Search is recovering. We are monitoring the results and will post an update within 30 minutes."
    );
    assert_eq!(
        body(Situation::Resolved),
        "This incident has been resolved, and service for Search has returned to normal. We apologize for the inconvenience."
    );
    assert!(body(Situation::Reopened)
        .starts_with("The problem affecting Search has returned, and we are investigating again."));
    let ja = |s| p.draft(&inc, s).body.get("ja").to_string();
    assert_eq!(
        ja(Situation::Resolved),
        "この障害は解決しました。検索サービスは正常に稼働しています。ご不便をおかけしたことをお詫び申し上げます。"
    );
}

#[test]
fn operators_templates_are_used_and_keels_fill_the_rest() {
    let text = format!(
        "{SHOP}\n[templates]\nnext_update = \"45m\"\n[templates.opened]\ntitle.en = \"Trouble with {{components}}\"\nbody.en = \"{{components}}: {{users}} affected. {{eta}} Next update in {{next_update}}.\"\n"
    );
    let config = parse(&text, "keel.toml", &[]).expect("parses");
    let inc = opened("db", "component", &["db", "search"], 500, 0);
    let d = Publisher::new(&config).draft(&inc, Situation::Opened);
    assert_eq!(d.title.get("en"), "Trouble with Search");
    assert_eq!(
        d.title.get("ja"),
        "検索サービスに影響する障害",
        "no ja override: Keel's own"
    );
    assert_eq!(
        d.body.get("en"),
        "Search: about 500 users affected. No estimate yet. Next update in 45 minutes."
    );
    assert!(d
        .body
        .get("ja")
        .ends_with("45分以内に続報をお知らせします。"));
}

#[test]
fn names_and_workarounds_that_may_not_be_said_are_left_out() {
    // A public component whose name contains an internal id, and a workaround naming a host.
    let text = r#"
[page]
locales = ["en", "ja"]
[[component]]
id = "portal"
name = "Ledger portal"
users = 10
depends_on = ["ledger"]
workaround = "Use db-7.corp.acme.test directly."
[[component]]
id = "shop"
name = "Shop"
users = 20
depends_on = ["ledger"]
workaround = { en = "Call us.", ja = "お電話ください。" }
[[component]]
id = "ledger"
public = false
[[monitor]]
id = "db"
component = "ledger"
kind = "tcp"
host = "db-7.corp.acme.test"
port = 5432
"#;
    let config = parse(text, "keel.toml", &[]).expect("parses");
    let rules = DisclosureRules::from_config(&config);
    let inc = opened("ledger", "component", &["ledger", "portal", "shop"], 30, 0);
    let d = Publisher::new(&config).draft(&inc, Situation::Opened);
    assert_eq!(
        d.title.get("en"),
        "Problem affecting one of our services and Shop"
    );
    assert!(
        d.body.get("en").contains("Workaround for Shop: Call us."),
        "{}",
        d.body.get("en")
    );
    assert!(!d.body.get("en").contains("db-7"));
    assert!(d.title.get("ja").starts_with("一部のサービス、Shop"));
    for text in d.body.by_locale.values().chain(d.title.by_locale.values()) {
        assert_eq!(check(text, &rules), Ok(()), "{text}");
    }
    // Only an unsayable workaround: say nothing about workarounds rather than "none".
    let inc = opened("ledger", "component", &["ledger", "portal"], 10, 0);
    let d = Publisher::new(&config).draft(&inc, Situation::Opened);
    assert!(
        !d.body.get("en").contains("orkaround"),
        "{}",
        d.body.get("en")
    );
}

#[test]
fn keel_drafts_and_publishes_through_an_incidents_life() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    assert_eq!(s.keel(0), ["draft_prepared"]);
    assert_eq!(s.keel(1), Vec::<&str>::new(), "not due yet");
    assert_eq!(drafts_due(&s.inc, t(1)), Vec::<u32>::new());
    assert_eq!(drafts_due(&s.inc, t(2)), vec![1]);
    assert_eq!(s.keel(2), ["update_published"]);
    let EventKind::UpdatePublished {
        update,
        draft,
        auto,
        ..
    } = s.last().clone()
    else {
        panic!()
    };
    assert_eq!((update, draft, auto), (1, Some(1), true));
    assert_eq!(s.inc.first_public_update_at, Some(t(2)));

    // The cause is found: a new draft; a responder publishes it at once.
    s.state(IncidentState::Identified, 5);
    assert_eq!(s.keel(5), ["draft_prepared"]);
    s.act("ana", Command::PublishDraft { draft: 2 }, false, 6);
    assert_eq!(s.inc.updates[1].published_by, "ana");
    assert!(!s.inc.updates[1].auto);
    assert_eq!(s.keel(9), Vec::<&str>::new(), "nothing left to publish");

    // Recovering: a responder writes English only; Japanese comes from Keel's draft.
    s.state(IncidentState::Monitoring, 10);
    assert_eq!(s.keel(10), ["draft_prepared"]);
    s.act(
        "ana",
        Command::PublishUpdate {
            status: PublicStatus::Monitoring,
            body: en("  A fix is live; we are watching Search closely.  "),
            title: None,
            override_reason: None,
        },
        false,
        11,
    );
    let u = &s.inc.updates[2];
    assert_eq!(
        u.body.get("en"),
        "A fix is live; we are watching Search closely."
    );
    assert!(u
        .body
        .get("ja")
        .starts_with("検索サービスは復旧しつつあります。"));
    assert_eq!(
        u.title.get("en"),
        "Problem affecting Search",
        "the public title stays"
    );
    assert_eq!(s.inc.drafts[2].fate, DraftFate::Superseded);
    assert_eq!(s.keel(13), Vec::<&str>::new());

    // It relapses: "the problem has returned"; a responder holds that draft.
    s.state(IncidentState::Investigating, 15);
    assert_eq!(s.keel(15), ["draft_prepared"]);
    assert!(body_of(s.last())
        .get("en")
        .starts_with("The problem affecting Search has returned"));
    s.act("bo", Command::HoldDraft { draft: 4 }, false, 16);
    assert_eq!(
        s.keel(30),
        Vec::<&str>::new(),
        "a held draft is not published by Keel"
    );
    let r = s.refused(Command::HoldDraft { draft: 4 }, false);
    assert_eq!(
        (r.field, r.reason.as_str()),
        ("draft", "draft 4 is already held")
    );

    // Resolved: Keel drafts the last word and publishes it when due.
    s.state(IncidentState::Resolved, 40);
    assert_eq!(s.keel(40), ["draft_prepared"]);
    assert_eq!(
        s.inc.drafts[3].fate,
        DraftFate::Superseded,
        "the held draft is replaced"
    );
    assert_eq!(s.keel(42), ["update_published"]);
    assert_eq!(
        s.inc.updates.last().map(|u| u.status),
        Some(PublicStatus::Resolved)
    );
    assert_eq!(s.keel(600), Vec::<&str>::new());

    let pm = postmortem(&s.inc, &s.events, &[], t(700));
    assert_eq!(
        pm.json["timings"]["time_to_first_public_update"]["text"],
        "2m"
    );
    assert!(pm.markdown.contains("## What customers were told"));
    assert!(pm.markdown.contains("(published by ana)"));
}

#[test]
fn a_churning_incident_is_not_kept_from_customers() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    s.keel(0);
    s.state(IncidentState::Monitoring, 1);
    assert_eq!(s.keel(1), ["draft_prepared"]);
    let EventKind::DraftPrepared { due_at, .. } = s.last().clone() else {
        panic!()
    };
    assert_eq!(due_at, t(2), "keeps the due time of the draft it replaced");
    assert_eq!(s.keel(2), ["update_published"]);
    assert_eq!(s.inc.updates[0].status, PublicStatus::Monitoring);
}

#[test]
fn publish_after_zero_publishes_at_once() {
    let text = SHOP.replace("publish_after = \"2m\"", "publish_after = \"0s\"");
    let config = parse(&text, "keel.toml", &[]).expect("parses");
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    assert_eq!(s.keel(0), ["draft_prepared", "update_published"]);
}

#[test]
fn nothing_is_drafted_for_what_customers_cannot_see_or_never_heard_of() {
    let config = shop();
    // Only internal components impacted.
    let mut s = Story::new(&config, opening("ledger", "component", &["ledger"], 0, 0));
    assert_eq!(s.keel(0), Vec::<&str>::new());
    assert_eq!(s.keel(10), Vec::<&str>::new());
    // Resolved before anything was drafted (an incident from before drafting existed).
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    s.state(IncidentState::Resolved, 5);
    assert_eq!(s.keel(6), Vec::<&str>::new());
    assert_eq!(public::draft_events(&s.inc, &config, t(6)), Vec::new());
}

#[test]
fn a_responder_who_speaks_first_is_not_repeated() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    s.keel(0);
    // Ahead of the engine: "identified" while Keel still says investigating.
    s.act(
        "ana",
        Command::PublishUpdate {
            status: PublicStatus::Identified,
            body: en("We found it."),
            title: Some(en("Search is slow")),
            override_reason: None,
        },
        false,
        1,
    );
    assert_eq!(s.inc.updates[0].title.get("en"), "Search is slow");
    assert_eq!(
        s.inc.updates[0].title.get("ja"),
        "検索サービスに影響する障害"
    );
    assert_eq!(
        s.keel(3),
        Vec::<&str>::new(),
        "the superseded draft is not published"
    );
    s.state(IncidentState::Identified, 4);
    assert_eq!(s.keel(4), Vec::<&str>::new(), "customers already heard it");
    s.state(IncidentState::Monitoring, 8);
    assert_eq!(s.keel(8), ["draft_prepared"]);
}

#[test]
fn public_text_is_checked_and_only_an_admin_overrides() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("payments", "vendor", &["payments", "checkout"], 300, 0),
    );
    s.keel(0);
    let naming = || Command::PublishUpdate {
        status: PublicStatus::Identified,
        body: en("Stripe is down; we are waiting for them."),
        title: None,
        override_reason: None,
    };
    let r = s.refused(naming(), true);
    assert_eq!(r.field, "body");
    assert_eq!(
        r.reason,
        "the en text contains \"Stripe\", the name of confidential vendor `payments`: public text \
         may not say it. Remove it, or ask an admin to publish with an override reason."
    );
    let finding = r.disclosure.expect("the finding");
    assert_eq!(finding.term, "Stripe");
    let with_reason = |reason: &str| Command::PublishUpdate {
        status: PublicStatus::Identified,
        body: en("Stripe is down; we are waiting for them."),
        title: None,
        override_reason: Some(reason.to_string()),
    };
    let r = s.refused(with_reason("the vendor agreed"), false);
    assert!(
        r.reason
            .ends_with("Only an admin may override the disclosure check."),
        "{r:?}"
    );
    assert_eq!(s.refused(with_reason("  "), true).field, "override_reason");
    let r = s.refused(
        Command::PublishUpdate {
            status: PublicStatus::Identified,
            body: en("Fine."),
            title: Some(en("Outage at 10.9.8.7")),
            override_reason: None,
        },
        false,
    );
    assert_eq!(
        (r.field, r.disclosure.map(|f| f.term)),
        ("title", Some("10.9.8.7".to_string()))
    );
    // The admin's override goes on the timeline with the reason.
    s.act(
        "root",
        with_reason("the vendor agreed to be named"),
        true,
        3,
    );
    let u = &s.inc.updates[0];
    assert_eq!(
        u.disclosure_override.as_deref(),
        Some("the vendor agreed to be named")
    );
    assert_eq!(u.published_by, "root");
    let line = keel_core::incident::words::describe(s.last(), &s.inc);
    assert!(
        line.contains("[disclosure check overridden: the vendor agreed to be named]"),
        "{line}"
    );
    // Clean text with a reason records no override.
    s.act(
        "root",
        Command::PublishUpdate {
            status: PublicStatus::Identified,
            body: en("A fix is on its way."),
            title: None,
            override_reason: Some("just in case".into()),
        },
        true,
        4,
    );
    assert_eq!(s.inc.updates[1].disclosure_override, None);
}

#[test]
fn bad_public_commands_are_refused_with_their_field() {
    let config = shop();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search"], 500, 0),
    );
    s.keel(0);
    let update = |body: LocalizedText| Command::PublishUpdate {
        status: PublicStatus::Investigating,
        body,
        title: None,
        override_reason: None,
    };
    let pair = |r: keel_core::incident::Refusal| (r.field, r.reason);
    assert_eq!(
        pair(s.refused(update(en("   ")), false)),
        ("body", "must not be empty".to_string())
    );
    let mut fr = en("Bonjour");
    fr.by_locale = BTreeMap::from([("fr".to_string(), "Bonjour".to_string())]);
    assert_eq!(
        pair(s.refused(update(fr), false)),
        (
            "body",
            "locale \"fr\" is not one of the page's locales (en, ja)".to_string()
        )
    );
    assert_eq!(
        pair(s.refused(update(en(&"x".repeat(10_001))), false)),
        (
            "body",
            "the en text must be at most 10000 characters (it has 10001)".to_string()
        )
    );
    assert_eq!(
        pair(s.refused(Command::PublishDraft { draft: 7 }, false)),
        (
            "draft",
            "draft 7 does not exist: the incident has 1 draft".to_string()
        )
    );
    s.act("ana", update(en("We are on it.")), false, 1);
    assert_eq!(
        pair(s.refused(Command::PublishDraft { draft: 1 }, false)),
        (
            "draft",
            "draft 1 was superseded by a newer draft or update: publish the latest draft instead"
                .to_string()
        )
    );
    assert_eq!(
        pair(s.refused(Command::HoldDraft { draft: 1 }, false)),
        (
            "draft",
            "draft 1 is superseded: only a pending draft can be held".to_string()
        )
    );
    // A plain text (no locale) is the text for every locale.
    s.act(
        "ana",
        update(LocalizedText::plain("Same for all.")),
        false,
        2,
    );
    assert_eq!(s.inc.updates[1].body.get("ja"), "Same for all.");
    // Other commands pass through to the incident's own rules.
    s.act("ana", Command::Acknowledge { via: None }, false, 3);
    assert!(s.inc.acknowledged_at.is_some());
}

// --- Drafts never trip the check, whatever the config ---------------------------------------

/// Words a config might use, several of which collide with each other or with ordinary text.
const WORDS: &[&str] = &[
    "Search",
    "API",
    "api",
    "db",
    "Core",
    "Stripe",
    "Acme Pay",
    "Falcon",
    "payments",
    "mail",
    "Ledger",
    "基幹DB",
    "決済",
    "検索",
    "app",
    "web",
    "Portal",
    "search-api",
    "queue",
];
const HOSTS: &[&str] = &[
    "db-1.corp.test",
    "10.0.0.5",
    "api.acme.test",
    "search.acme.test",
    "2001:db8::5",
    "localhost",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn host() -> impl Strategy<Value = String> {
    prop::sample::select(HOSTS).prop_map(str::to_string)
}

/// A config: public components (names and workarounds drawn from the same words as the
/// internal things, sometimes naming a host), internal components, a confidential vendor and
/// monitors on hosts. Returns the TOML.
fn config_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((word(), word(), prop::option::of((word(), host()))), 1..4),
        prop::collection::vec(word(), 1..3),
        word(),
        prop::collection::vec(host(), 1..3),
        prop::collection::vec(word(), 0..2),
    )
        .prop_map(|(public, internal, vendor, hosts, terms)| {
            let mut t = String::from("[page]\nlocales = [\"en\", \"ja\"]\n");
            t.push_str(&format!(
                "[disclosure]\nconfidential_terms = [{}]\n",
                terms
                    .iter()
                    .map(|w| format!("{w:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            t.push_str(&format!(
                "[[vendor]]\nid = \"vend\"\nname = {vendor:?}\nstatus_url = \"https://status.vendor-{}.test/api/v2/summary.json\"\nconfidential = true\n",
                vendor.len()
            ));
            for (i, name) in internal.iter().enumerate() {
                t.push_str(&format!(
                    "[[component]]\nid = \"int{i}\"\nname = {{ en = {name:?}, ja = \"内部{i}\" }}\npublic = false\ndepends_on = [\"vend\"]\n"
                ));
            }
            for (i, (en_name, ja_name, workaround)) in public.iter().enumerate() {
                t.push_str(&format!(
                    "[[component]]\nid = \"pub{i}\"\nname = {{ en = {en_name:?}, ja = {ja_name:?} }}\nusers = {}\ndepends_on = [\"int0\"]\n",
                    (i + 1) * 100
                ));
                if let Some((w, h)) = workaround {
                    t.push_str(&format!("workaround = \"Use {w} via {h} meanwhile.\"\n"));
                }
            }
            for (i, h) in hosts.iter().enumerate() {
                t.push_str(&format!(
                    "[[monitor]]\nid = \"m{i}\"\ncomponent = \"int0\"\nkind = \"tcp\"\nhost = {h:?}\nport = 443\n"
                ));
            }
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn drafts_never_trip_the_disclosure_check(
        text in config_text(),
        vendor_cause in any::<bool>(),
        eta in prop::option::of((1u64..100, 1u64..300)),
    ) {
        // Some generated configs are refused (a term colliding with Keel's own wording):
        // those never draft anything.
        let Ok(config) = parse(&text, "keel.toml", &[]) else {
            return Ok(());
        };
        let rules = DisclosureRules::from_config(&config);
        let mut impacted: Vec<&str> = vec!["vend", "int0"];
        let ids: Vec<String> = config.components.iter().map(|c| c.id.as_str().to_string()).collect();
        impacted.extend(ids.iter().map(String::as_str));
        let (cause, kind) = if vendor_cause { ("vend", "vendor") } else { ("int0", "component") };
        let open = Opening {
            eta: eta.map_or(Eta::NoHistory, |(a, b)| Eta::History {
                samples: 3,
                p50_minutes: a,
                p90_minutes: a + b,
            }),
            ..opening(cause, kind, &impacted, 1234, 0)
        };
        let inc = open.incident();
        let p = Publisher::new(&config);
        for situation in Situation::ALL {
            let d = p.draft(&inc, situation);
            for text in d.title.by_locale.values().chain(d.body.by_locale.values()) {
                prop_assert_eq!(check(text, &rules), Ok(()), "{}\n{:?}", text, config);
                prop_assert!(!text.is_empty());
            }
        }
        // And the whole public snapshot of it, serialized.
        let mut s = Story::new(&config, open);
        s.keel(0);
        s.keel(2);
        let snap = public::build_snapshot(&config, &[s.inc.clone()], &HealthMap::new(), &BTreeMap::new(), &[], t(3));
        let json = serde_json::to_string(&snap).expect("serializes");
        let leaked = findings(&json, &rules);
        // Public names are the operator's choice and shown as written; anything else is a leak.
        let names: Vec<String> = config.components.iter().filter(|c| c.public)
            .flat_map(|c| c.name.by_locale.values().cloned()).collect();
        for f in leaked {
            prop_assert!(
                names.iter().any(|n| findings(n, &rules).iter().any(|g| g.term == f.term)),
                "{:?} leaked in {}", f, json
            );
        }
    }
}

/// One thing that may happen to an incident's public side.
#[derive(Debug, Clone)]
enum Step {
    /// Minutes pass and Keel plans.
    Wait(i64),
    State(IncidentState),
    PublishLatestDraft,
    HoldLatestDraft,
    Publish(PublicStatus, bool),
}

fn step() -> impl Strategy<Value = Step> {
    let state = prop::sample::select(vec![
        IncidentState::Investigating,
        IncidentState::Identified,
        IncidentState::Monitoring,
        IncidentState::Resolved,
    ]);
    let status = prop::sample::select(vec![
        PublicStatus::Investigating,
        PublicStatus::Identified,
        PublicStatus::Monitoring,
        PublicStatus::Resolved,
    ]);
    prop_oneof![
        3 => (0i64..4).prop_map(Step::Wait),
        2 => state.prop_map(Step::State),
        1 => Just(Step::PublishLatestDraft),
        1 => Just(Step::HoldLatestDraft),
        1 => (status, any::<bool>()).prop_map(|(s, ja)| Step::Publish(s, ja)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_life_keeps_the_public_side_consistent(steps in prop::collection::vec(step(), 1..40)) {
        let config = shop();
        let rules = DisclosureRules::from_config(&config);
        let mut s = Story::new(&config, opening("db", "component", &["db", "search"], 500, 0));
        let mut minute = 0;
        s.keel(minute);
        for step in steps {
            match step {
                Step::Wait(m) => minute += m,
                Step::State(to) if to != s.inc.state => s.state(to, minute),
                Step::State(_) => {}
                Step::PublishLatestDraft | Step::HoldLatestDraft => {
                    let Some(draft) = s.inc.drafts.last().map(|d| d.id) else { continue };
                    let cmd = if matches!(step, Step::HoldLatestDraft) {
                        Command::HoldDraft { draft }
                    } else {
                        Command::PublishDraft { draft }
                    };
                    // Refused when it is not pending any more: that is fine.
                    if let Ok(kinds) = s.publisher.decide(&s.inc, cmd, false) {
                        s.append(Actor::User("ana".into()), minute, kinds);
                    }
                }
                Step::Publish(status, ja) => {
                    let body = if ja {
                        LocalizedText { by_locale: BTreeMap::from([("ja".to_string(), "対応中です。".to_string())]) }
                    } else {
                        en("We are on it.")
                    };
                    let cmd = Command::PublishUpdate { status, body, title: None, override_reason: None };
                    let kinds = s.publisher.decide(&s.inc, cmd, false).expect("clean text is accepted");
                    s.append(Actor::User("ana".into()), minute, kinds);
                }
            }
            // Keel runs after everything, as the server does (this also checks idempotence).
            s.keel(minute);
            prop_assert!(s.inc.pending_drafts().count() <= 1);
            for d in s.inc.pending_drafts() {
                prop_assert!(d.due_at <= d.prepared_at + Duration::minutes(2));
                prop_assert!(d.due_at > t(minute), "a due draft is published at once");
            }
            for u in &s.inc.updates {
                for text in u.body.by_locale.values().chain(u.title.by_locale.values()) {
                    prop_assert_eq!(check(text, &rules), Ok(()));
                }
                prop_assert_eq!(u.body.by_locale.len(), 2, "every locale of the page");
            }
            // Nothing is left unsaid for long: the situation was drafted or published for.
            prop_assert!(s.inc.public_mark.is_some());
        }
        prop_assert!(!s.publisher.may_plan(&s.inc) || s.inc.pending_drafts().next().is_some()
            || s.publisher.plan(&s.inc, t(minute)).is_empty());
    }

    #[test]
    fn the_check_never_panics(text in any::<String>(), extra in "[ -~\\u{3000}-\\u{30ff}\\u{ff01}-\\u{ff5e}]{0,80}") {
        let rules = DisclosureRules::from_config(&shop());
        let _ = findings(&text, &rules);
        let _ = findings(&extra, &rules);
        let _ = findings(&format!("{extra}\n    at {text}:1\n{extra}.rs:9"), &rules);
    }
}

// --- The snapshot ---------------------------------------------------------------------------

fn down(node: &str, since: i64) -> (NodeId, NodeHealth) {
    (
        NodeId::parse(node).unwrap(),
        NodeHealth {
            health: Health::Down,
            since: t(since),
            reasons: vec!["db-port: connection refused at 10.0.0.9".into()],
            failure_kind: "tcp".into(),
        },
    )
}

#[test]
fn the_snapshot_shows_public_components_and_what_customers_were_told() {
    let config = shop();
    let health: HealthMap = [down("db", 0)].into_iter().collect();
    let mut s = Story::new(
        &config,
        opening("db", "component", &["db", "search", "checkout"], 800, 0),
    );
    s.keel(0);
    let mut internal = opened("ledger", "component", &["ledger"], 0, 0);
    internal.id = IncidentId(2);
    let uptime = BTreeMap::from([(
        cid("search"),
        (0..100)
            .map(|d| DayUptime {
                day: (t(0) - Duration::days(99 - d)).date_naive(),
                ratio: if d % 2 == 0 { Some(1.0) } else { None },
            })
            .collect::<Vec<_>>(),
    )]);
    let snap = public::build_snapshot(
        &config,
        &[s.inc.clone(), internal.clone()],
        &health,
        &uptime,
        &[],
        t(1),
    );
    assert_eq!(snap.title, "Acme Status");
    assert_eq!(snap.base_url.as_deref(), Some("https://status.acme.test"));
    let ids: Vec<&str> = snap.components.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["search", "checkout", "mail"],
        "internal components never appear"
    );
    let status: Vec<ComponentStatus> = snap.components.iter().map(|c| c.status).collect();
    assert_eq!(
        status,
        [
            ComponentStatus::MajorOutage,
            ComponentStatus::MajorOutage,
            ComponentStatus::Operational
        ]
    );
    assert_eq!(snap.indicator, Indicator::Critical);
    assert_eq!(snap.components[0].uptime.len(), 90);
    assert_eq!(snap.components[0].uptime_ratio, Some(1.0));
    assert_eq!(snap.components[2].uptime_ratio, None);
    assert_eq!(
        snap.incidents.len(),
        1,
        "the internal incident is not listed"
    );
    let i = &snap.incidents[0];
    assert_eq!(
        i.name.get("en"),
        "Problem affecting Search and Checkout",
        "the draft's title, not \"db is down\""
    );
    assert_eq!(i.status, PublicStatus::Investigating);
    assert_eq!(i.impact, PublicImpact::Major);
    assert_eq!(i.components, ["search", "checkout"]);
    assert_eq!(i.affected_users, 800);
    assert_eq!(i.eta, PublicEta::None);
    assert_eq!(i.workarounds.len(), 1);
    assert!(i.updates.is_empty(), "a draft is not an update");

    // Published, then resolved and published again.
    s.keel(2);
    s.state(IncidentState::Resolved, 20);
    s.keel(20);
    let during = public::build_snapshot(
        &config,
        &[s.inc.clone()],
        &HealthMap::new(),
        &BTreeMap::new(),
        &[],
        t(21),
    );
    assert_eq!(
        during.incidents[0].status,
        PublicStatus::Investigating,
        "until the resolved update is out"
    );
    assert_eq!(during.indicator, Indicator::None);
    s.keel(22);
    let after = public::build_snapshot(
        &config,
        &[s.inc.clone()],
        &HealthMap::new(),
        &BTreeMap::new(),
        &[],
        t(23),
    );
    let i = &after.incidents[0];
    assert_eq!(i.status, PublicStatus::Resolved);
    assert_eq!(i.resolved_at, Some(t(20)));
    let statuses: Vec<PublicStatus> = i.updates.iter().map(|u| u.status).collect();
    assert_eq!(
        statuses,
        [PublicStatus::Resolved, PublicStatus::Investigating],
        "newest first"
    );
    assert_eq!(i.updates[0].id, "1-2");
    // History keeps 90 days.
    let later = public::build_snapshot(
        &config,
        &[s.inc.clone()],
        &HealthMap::new(),
        &BTreeMap::new(),
        &[],
        t(20) + Duration::days(91),
    );
    assert!(later.incidents.is_empty());
}

#[test]
fn component_status_follows_severity_and_degradation_and_maintenance() {
    let config = shop();
    let mut degraded = opened("db", "component", &["db", "search"], 500, 0);
    let health: HealthMap = [(
        NodeId::parse("db").unwrap(),
        NodeHealth {
            health: Health::Degraded,
            since: t(0),
            reasons: vec![],
            failure_kind: "tcp".into(),
        },
    )]
    .into_iter()
    .collect();
    let snap = public::build_snapshot(
        &config,
        &[degraded.clone()],
        &health,
        &BTreeMap::new(),
        &[],
        t(1),
    );
    assert_eq!(
        snap.components[0].status,
        ComponentStatus::PartialOutage,
        "SEV2 degraded"
    );
    assert_eq!(snap.indicator, Indicator::Major);
    degraded.severity = Some(Severity::Sev3);
    let snap = public::build_snapshot(
        &config,
        &[degraded.clone()],
        &health,
        &BTreeMap::new(),
        &[],
        t(1),
    );
    assert_eq!(
        snap.components[0].status,
        ComponentStatus::DegradedPerformance
    );
    assert_eq!(snap.indicator, Indicator::Minor);
    assert_eq!(snap.incidents[0].impact, PublicImpact::Minor);
    // Declared (no cause to look at): the severity decides.
    degraded.cause = None;
    degraded.severity = Some(Severity::Sev1);
    let snap = public::build_snapshot(
        &config,
        &[degraded.clone()],
        &HealthMap::new(),
        &BTreeMap::new(),
        &[],
        t(1),
    );
    assert_eq!(snap.components[0].status, ComponentStatus::MajorOutage);
    assert_eq!(snap.incidents[0].impact, PublicImpact::Critical);
    // A component's own failing check, with no incident.
    let own: HealthMap = [down("mail", 3)].into_iter().collect();
    let snap = public::build_snapshot(&config, &[], &own, &BTreeMap::new(), &[], t(5));
    assert_eq!(snap.components[2].status, ComponentStatus::MajorOutage);
    assert_eq!(snap.components[2].updated_at, t(3));
    // Maintenance under way: the planned work explains it.
    let m = Maintenance {
        id: "m1".into(),
        name: LocalizedText::plain("Database upgrade"),
        status: MaintenanceStatus::Scheduled,
        scheduled_for: t(0),
        scheduled_until: t(60),
        components: vec![cid("search"), cid("db")],
        body: LocalizedText::plain("We are upgrading."),
        created_at: t(-100),
        updated_at: t(-100),
    };
    let snap = public::build_snapshot(
        &config,
        &[],
        &HealthMap::new(),
        &BTreeMap::new(),
        std::slice::from_ref(&m),
        t(5),
    );
    assert_eq!(snap.components[0].status, ComponentStatus::UnderMaintenance);
    assert_eq!(snap.indicator, Indicator::Maintenance);
    assert_eq!(
        snap.maintenances[0].components,
        ["search"],
        "internal ids are dropped"
    );
    let snap = public::build_snapshot(
        &config,
        &[],
        &HealthMap::new(),
        &BTreeMap::new(),
        &[m],
        t(61),
    );
    assert_eq!(snap.components[0].status, ComponentStatus::Operational);
    assert_eq!(snap.indicator, Indicator::None);
}

#[test]
fn the_serialized_snapshot_says_nothing_internal() {
    let config = shop();
    let rules = DisclosureRules::from_config(&config);
    let health: HealthMap = [down("db", 0), down("payments", 0)].into_iter().collect();
    let mut a = Story::new(
        &config,
        opening("db", "component", &["db", "search", "ledger"], 500, 0),
    );
    a.keel(0);
    a.keel(2);
    let vendor = Opening {
        id: IncidentId(2),
        eta: Eta::Vendor {
            vendor: "Stripe".into(),
            status: "major outage".into(),
        },
        ..opening("payments", "vendor", &["payments", "checkout"], 300, 1)
    };
    let mut b = Story::new(&config, vendor);
    b.keel(1);
    b.act(
        "ana",
        Command::PublishUpdate {
            status: PublicStatus::Identified,
            body: en("Card transactions fail for some customers; a third party is fixing it."),
            title: None,
            override_reason: None,
        },
        false,
        2,
    );
    let snap = public::build_snapshot(
        &config,
        &[a.inc.clone(), b.inc.clone()],
        &health,
        &BTreeMap::new(),
        &[],
        t(5),
    );
    assert_eq!(snap.incidents.len(), 2);
    assert_eq!(snap.incidents[0].eta, PublicEta::ThirdParty);
    let json = serde_json::to_string_pretty(&snap).expect("serializes");
    assert_eq!(findings(&json, &rules), Vec::new(), "{json}");
    for internal in [
        "db is down",
        "payments is down",
        "connection refused",
        "Stripe",
        "ledger",
    ] {
        assert!(
            !json.to_lowercase().contains(&internal.to_lowercase()),
            "{internal} in {json}"
        );
    }
}
