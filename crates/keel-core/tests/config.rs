//! Config parsing as a user meets it: the documented shape parses, the example config is
//! clean, every class of mistake is reported at its line with a useful hint, all of them at
//! once, and `KEEL_` environment variables layer over the file.

use std::time::Duration;

use keel_core::config::{
    known_keys, parse, ChannelKind, Check, Config, Diagnostic, NotifyConfig, RecordType,
    SmtpTlsMode, StatusRange, TeamsCard, VendorFormat, EXAMPLE,
};
use proptest::prelude::*;

/// The config Keel was specified with (the product brief's example of the interface users rely
/// on), kept byte for byte: what it promises must keep parsing as written.
const PRODUCT: &str = include_str!("data/product.toml");

fn ok(text: &str) -> Config {
    match parse(text, "keel.toml", &[]) {
        Ok(c) => c,
        Err(diags) => panic!("expected a clean parse, got:\n{}", render(&diags)),
    }
}

fn errs(text: &str) -> Vec<Diagnostic> {
    errs_env(text, &[])
}

fn errs_env(text: &str, env: &[(&str, &str)]) -> Vec<Diagnostic> {
    match parse(text, "keel.toml", &vars(env)) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d,
    }
}

fn vars(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("{d}\n")).collect()
}

/// Exactly one diagnostic, at `line`, whose message contains `msg` and hint contains `hint`.
#[track_caller]
fn one(text: &str, line: usize, msg: &str, hint: &str) -> Diagnostic {
    let d = errs(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    let d = d.into_iter().next().unwrap();
    assert_eq!(d.line, line, "wrong line:\n{d}");
    assert!(d.message.contains(msg), "message lacks {msg:?}:\n{d}");
    let h = d.hint.clone().unwrap_or_default();
    assert!(h.contains(hint), "hint lacks {hint:?}:\n{d}");
    assert_eq!(d.file, "keel.toml");
    assert!(d.column >= 1);
    d
}

/// A valid base that tests append a broken part to. Lines 1-3.
const BASE: &str = "[[component]]\nid = \"api\"\nname = \"API\"\n";

fn with_base(rest: &str) -> String {
    format!("{BASE}{rest}")
}

// --- The documented shape ----------------------------------------------------------------

#[test]
fn product_md_config_parses_verbatim_except_for_its_undeclared_db() {
    // The snippet names a `db` component in depends_on and in a monitor but never declares
    // it; those two references are exactly what Keel must refuse, and nothing else is.
    let d = errs(PRODUCT);
    assert_eq!(d.len(), 2, "{}", render(&d));
    assert_eq!((d[0].line, d[0].column), (14, 15));
    assert_eq!(
        d[0].message,
        "`api` depends on `db`, which is no component or vendor"
    );
    assert_eq!((d[1].line, d[1].column), (36, 13));
    assert_eq!(
        d[1].message,
        "monitor `db-port` names unknown component `db`"
    );
}

#[test]
fn product_md_config_with_db_declared_parses_into_the_documented_values() {
    let c = ok(&format!(
        "{PRODUCT}\n[[component]]\nid = \"db\"\nname = \"Database\"\n"
    ));
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.data_dir.to_str(), Some("./keel-data"));
    assert!(c.server.database_url.is_none());
    assert_eq!(c.page.title, "Acme Status");
    assert_eq!(c.page.locales, ["en", "ja"]);

    let api = &c.components[0];
    assert_eq!(api.id.as_str(), "api");
    assert_eq!(api.name.get("ja"), "Public API");
    assert_eq!(api.users, 12000);
    assert_eq!(api.depends_on, ["db", "payments"]);
    assert_eq!(
        api.workaround.as_ref().map(|w| w.get("en")),
        Some("Use the web dashboard while the API is unavailable.")
    );
    assert!(api.public);

    let v = &c.vendors[0];
    assert_eq!(v.id.as_str(), "payments");
    assert_eq!(v.name, "Payments provider");
    assert_eq!(
        v.status_url,
        "https://status.example-vendor.com/api/v2/summary.json"
    );
    assert_eq!(v.interval, Duration::from_secs(60));
    assert_eq!(v.timeout, Duration::from_secs(10));
    assert!(v.confidential);
    assert_eq!(v.format, VendorFormat::Auto);

    let m = &c.monitors[0];
    assert_eq!(
        (m.id.as_str(), m.component.as_str(), m.kind()),
        ("api-health", "api", "http")
    );
    assert_eq!(
        (m.interval, m.timeout),
        (Duration::from_secs(30), Duration::from_secs(5))
    );
    assert_eq!((m.confirmations, m.recoveries), (2, 1));
    let Check::Http(h) = &m.check else {
        panic!("not http")
    };
    assert_eq!(h.url, "http://127.0.0.1:9000/health");
    assert_eq!(h.method, "GET");
    assert_eq!(h.expected_status, [StatusRange { from: 200, to: 299 }]);
    assert!(h.follow_redirects && h.verify_tls);

    let Check::Tcp(t) = &c.monitors[1].check else {
        panic!("not tcp")
    };
    assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 5432));

    assert_eq!(c.incidents.publish_after, Duration::from_secs(120));
    assert_eq!(c.incidents.stability_window, Duration::from_secs(300));
    assert_eq!(c.incidents.recurrence_window, Duration::from_secs(86_400));
    assert!(!c.notify.allow_private_targets);
}

#[test]
fn the_commented_alternatives_of_product_md_parse() {
    let c = ok(r#"
[server]
database_url = "postgres://keel@127.0.0.1:5432/keel"

[[component]]
id = "api"
name = { en = "Public API", ja = "公開API" }
workaround = { en = "Use the dashboard.", ja = "ダッシュボードをご利用ください。" }
public = false
"#);
    assert_eq!(
        c.server.database_url.as_ref().map(|s| s.expose()),
        Some("postgres://keel@127.0.0.1:5432/keel")
    );
    // The secret never shows in debug output (logs).
    assert!(!format!("{c:?}").contains("postgres://"));
    let api = &c.components[0];
    assert_eq!(api.name.get("ja"), "公開API");
    assert_eq!(api.name.get("en"), "Public API");
    assert_eq!(
        api.workaround.as_ref().map(|w| w.get("ja")),
        Some("ダッシュボードをご利用ください。")
    );
    assert!(!api.public);
}

#[test]
fn an_empty_file_means_all_defaults() {
    let c = ok("");
    assert_eq!(c, Config::default());
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.page.locales, ["en"]);
    assert_eq!(c.intake.max_body_bytes, 1 << 20);
    assert_eq!(c.intake.component_label, "component");
    assert_eq!(c.storage.rollup_retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.storage.daily_retention, Duration::from_secs(400 * 86_400));
    assert_eq!(c.storage.outbox_retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(30));
    assert_eq!(c.scheduler.max_concurrency, 512);
}

#[test]
fn every_monitor_kind_and_option_parses() {
    let c = ok(&with_base(
        r#"
[[monitor]]
id = "h"
component = "api"
kind = "http"
url = "https://127.0.0.1:8443/status"
method = "post"
headers = { "X-Api-Key" = "k", Accept = "application/json" }
expected_status = [200, "3xx", "400-404"]
keyword = "ok"
keyword_absent = "error"
json_pointer = "/checks/0"
json_equals = { ok = true, n = 3, tags = ["a"] }
max_latency = "750ms"
follow_redirects = false
verify_tls = false
interval = "10s"
timeout = "2s"
retry_interval = "1s"
confirmations = 3
recoveries = 2

[[monitor]]
id = "d"
component = "api"
kind = "dns"
name = "example.test"
record_type = "aaaa"
expected = ["::1"]
resolver = "127.0.0.1:5353"

[[monitor]]
id = "t"
component = "api"
kind = "tls"
host = "127.0.0.1"
port = 8443
server_name = "localhost"
min_days = 7
verify = false

[[monitor]]
id = "b"
component = "api"
kind = "heartbeat"
token = "0123456789abcdef0123"
interval = "1h"
grace = "5m"

[[monitor]]
id = "i"
component = "api"
kind = "http"
url = "http://127.0.0.1:1/"
interval = "2s"
expected_status = 204
"#,
    ));
    let m = &c.monitors;
    let Check::Http(h) = &m[0].check else {
        panic!()
    };
    assert_eq!(h.method, "POST");
    assert_eq!(
        h.headers,
        [
            ("X-Api-Key".into(), "k".into()),
            ("Accept".into(), "application/json".into())
        ]
    );
    assert_eq!(
        h.expected_status,
        [
            StatusRange { from: 200, to: 200 },
            StatusRange { from: 300, to: 399 },
            StatusRange { from: 400, to: 404 }
        ]
    );
    assert_eq!(h.keyword.as_deref(), Some("ok"));
    assert_eq!(h.keyword_absent.as_deref(), Some("error"));
    assert_eq!(
        h.json_pointer,
        Some((
            "/checks/0".into(),
            serde_json::json!({ "ok": true, "n": 3, "tags": ["a"] })
        ))
    );
    assert_eq!(h.max_latency, Some(Duration::from_millis(750)));
    assert!(!h.follow_redirects && !h.verify_tls);
    assert_eq!(
        (m[0].retry_interval, m[0].confirmations, m[0].recoveries),
        (Duration::from_secs(1), 3, 2)
    );

    let Check::Dns(d) = &m[1].check else { panic!() };
    assert_eq!(
        (d.name.as_str(), d.record_type),
        ("example.test", RecordType::Aaaa)
    );
    assert_eq!(d.expected, ["::1"]);
    assert_eq!(
        d.resolver.map(|r| r.to_string()).as_deref(),
        Some("127.0.0.1:5353")
    );

    let Check::Tls(t) = &m[2].check else { panic!() };
    assert_eq!(
        (t.port, t.server_name.as_deref(), t.min_days, t.verify),
        (8443, Some("localhost"), 7, false)
    );

    let Check::Heartbeat(b) = &m[3].check else {
        panic!()
    };
    assert_eq!(b.token.expose(), "0123456789abcdef0123");
    assert_eq!(b.grace, Duration::from_secs(300));

    // A short interval caps the default retry interval, not the timeout.
    assert_eq!(
        (m[4].timeout, m[4].retry_interval),
        (Duration::from_secs(5), Duration::from_secs(2))
    );
    let Check::Http(h) = &m[4].check else {
        panic!()
    };
    assert_eq!(h.expected_status, [StatusRange { from: 204, to: 204 }]);
}

#[test]
fn intake_routes_storage_and_scheduler_parse() {
    let c = ok(&with_base(
        r#"
[intake]
component_label = "service_component"
max_body_bytes = "512KiB"
[[intake.route]]
labels = { service = "x", env = "prod" }
component = "api"

[storage]
rollup_retention = "7d"
daily_retention = "365d"
outbox_retention = "90d"

[scheduler]
max_concurrency = 64
jitter = 0
"#,
    ));
    assert_eq!(c.intake.component_label, "service_component");
    assert_eq!(c.intake.max_body_bytes, 512 * 1024);
    assert_eq!(c.intake.routes.len(), 1);
    assert_eq!(
        c.intake.routes[0].labels.get("service").map(String::as_str),
        Some("x")
    );
    assert_eq!(c.intake.routes[0].component.as_str(), "api");
    assert_eq!(c.storage.rollup_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(c.storage.outbox_retention, Duration::from_secs(90 * 86_400));
    assert_eq!(c.scheduler.max_concurrency, 64);
    assert_eq!(c.scheduler.jitter, 0.0);
    assert_eq!(
        ok("[intake]\nmax_body_bytes = 2048\n")
            .intake
            .max_body_bytes,
        2048
    );
}

// --- The example config ------------------------------------------------------------------

#[test]
fn the_example_config_parses_cleanly_and_watches_loopback() {
    let c = ok(EXAMPLE);
    let urls: Vec<(&str, &str)> = c
        .monitors
        .iter()
        .filter_map(|m| match &m.check {
            Check::Http(h) => Some((m.component.as_str(), h.url.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        urls,
        [
            ("keel", "http://127.0.0.1:8080/healthz"),
            ("web", "http://127.0.0.1:8081/")
        ]
    );
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn the_examples_commented_out_keys_parse_when_uncommented() {
    // Every "# key = value" and "# [[table]]" line in the example is a real option; turning
    // them all on must still give a valid config, so the comments cannot drift from the parser.
    fn re_key(l: &str) -> Option<&str> {
        let body = l.strip_prefix("# ")?;
        let head = body.split_whitespace().next()?;
        // `# [[monitor]]` and `# [notify.smtp]`, but not prose in brackets.
        let is_header = head.starts_with('[') && head.ends_with(']') && body.trim() == head;
        let is_key =
            body.contains(" = ") && head.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        (is_header || is_key).then_some(body)
    }
    let text: String = EXAMPLE
        .lines()
        .map(|l| re_key(l).unwrap_or(l))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert!(text.contains("\n[[vendor]]\n") && text.contains("\n[[intake.route]]\n"));
    assert!(text.contains("\n[notify.smtp]\n") && text.contains("\n[[notify.channel]]\n"));
    let c = ok(&text);
    assert!(c.page.export_dir.is_some());
    let smtp = c.notify.smtp.as_ref().expect("[notify.smtp]");
    assert!(smtp.username.is_some() && smtp.password_file.is_some());
    assert_eq!(c.notify.channels.len(), 1);
    assert_eq!(c.vendors.len(), 1);
    assert_eq!(c.monitors.len(), 6);
    assert_eq!(c.intake.routes.len(), 1);
    assert!(c.server.database_url.is_some());
}

// --- One test per class of mistake ---------------------------------------------------------

#[test]
fn toml_syntax_error_has_its_position() {
    let d = one(
        "[server]\nlisten = \"127.0.0.1:8080\n",
        2,
        "TOML syntax error",
        "quotes",
    );
    assert_eq!(d.column, 25);
    let d = one(
        "[server\n",
        1,
        "TOML syntax error: invalid table header",
        "",
    );
    assert_eq!(d.column, 8);
    one(
        "[[component]]\nid = \"a\"\nid = \"b\"\n",
        3,
        "duplicate key",
        "[[component]]",
    );
}

#[test]
fn unknown_keys_get_a_did_you_mean() {
    let d = one(
        "[server]\ndata_dri = \"x\"\n",
        2,
        "unknown key `data_dri` in [server]",
        "did you mean `data_dir`?",
    );
    assert_eq!(d.column, 1);
    one(
        &with_base("users = 1\npublik = false\n"),
        5,
        "unknown key `publik`",
        "did you mean `public`?",
    );
    one(
        "[[components]]\nid = \"x\"\n",
        1,
        "unknown top-level table `components`",
        "did you mean `[[component]]`?",
    );
    one(
        "listen = \"127.0.0.1:1\"\n",
        1,
        "unknown top-level key `listen`",
        "belongs under [server]",
    );
    one(
        "[incidents]\nfoo = 1\n",
        2,
        "unknown key `foo`",
        "known keys here: `publish_after`",
    );
    one(
        &with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\ntimout = \"1s\"\n"),
        9,
        "unknown key `timout`",
        "did you mean `timeout`?",
    );
    one(
        &with_base("workaround = { en = \"A\", fr = \"A\" }\n"),
        4,
        "unsupported locale \"fr\"",
        "`en`, `ja`",
    );
}

#[test]
fn a_key_of_another_monitor_kind_says_so() {
    one(
        &with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nport = 80\n"),
        9,
        "`port` does not apply to http monitors",
        "`port` is a key of tcp, tls monitors",
    );
}

#[test]
fn wrong_types_name_what_was_expected_and_found() {
    one(
        &with_base("users = \"many\"\n"),
        4,
        "expected an integer, found a string",
        "whole number",
    );
    one(
        "[page]\ntitle = 5\n",
        2,
        "`page.title`: expected a string, found an integer",
        "double quotes",
    );
    one(
        "[notify]\nallow_private_targets = \"yes\"\n",
        2,
        "expected a boolean, found a string",
        "true or false",
    );
    one(
        &with_base("depends_on = \"db\"\n"),
        4,
        "expected an array, found a string",
        "[\"a\", \"b\"]",
    );
    one(
        "[server]\nlisten = [1]\n",
        2,
        "expected a string, found an array",
        "",
    );
    one(
        "server = 1\n",
        1,
        "`server` must be a table [server]",
        "[server]",
    );
    one(
        "[[server]]\n",
        1,
        "`server` must be a table",
        "single brackets",
    );
    one(
        "[component]\nid = \"a\"\n",
        1,
        "must be written [[component]], with double brackets",
        "header starts one more entry",
    );
}

#[test]
fn bad_durations_show_examples() {
    let text = with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\ninterval = \"5 parsecs\"\n");
    one(&text, 9, "bad duration \"5 parsecs\"", "\"30s\", \"2m\"");
    one(
        "[incidents]\npublish_after = 120\n",
        2,
        "expected a duration string, found an integer",
        "did you mean \"120s\"?",
    );
    one(
        "[incidents]\nstability_window = \"5\"\n",
        2,
        "has no unit",
        "did you mean \"5s\"?",
    );
    one(
        "[storage]\nrollup_retention = \"0s\"\n",
        2,
        "must be longer than zero",
        "30s",
    );
    one(
        "[server]\nheader_read_timeout = \"0s\"\n",
        2,
        "must be longer than zero",
        "30s",
    );
    assert_eq!(
        ok("[server]\nheader_read_timeout = \"5s\"\n")
            .server
            .header_read_timeout,
        Duration::from_secs(5)
    );
    // Shorter than a day would forget what was sent while updates may still be re-queued.
    one(
        "[storage]\noutbox_retention = \"1h\"\n",
        2,
        "`storage.outbox_retention` (1h) is shorter than a day",
        "at least \"1d\"",
    );
    assert_eq!(
        ok("[storage]\noutbox_retention = \"1d\"\n")
            .storage
            .outbox_retention,
        Duration::from_secs(86_400)
    );
    // Zero is meaningful for incident windows (publish at once).
    assert_eq!(
        ok("[incidents]\npublish_after = \"0s\"\n")
            .incidents
            .publish_after,
        Duration::ZERO
    );
}

#[test]
fn bad_and_duplicate_ids() {
    one(
        "[[component]]\nid = \"Public API\"\n",
        2,
        "bad id \"Public API\"",
        "lowercase letters",
    );
    one(
        &with_base("[[vendor]]\nid = \"api\"\nstatus_url = \"https://s.example/\"\n"),
        5,
        "duplicate id `api`: already used by the component on line 2",
        "share one set of ids",
    );
    one(
        &with_base("[[component]]\nid = \"api\"\n"),
        5,
        "duplicate id `api`",
        "",
    );
    let m = "[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n";
    one(
        &with_base(&format!("{m}{m}")),
        11,
        "duplicate monitor id `m`: already used on line 5",
        "different id",
    );
    one(
        "[[component]]\nname = \"x\"\n",
        1,
        "[[component]] is missing required key `id`",
        "id = ",
    );
}

#[test]
fn depends_on_naming_nothing_suggests_a_known_id() {
    let d = one(
        &with_base("[[component]]\nid = \"web\"\ndepends_on = [\"apj\"]\n"),
        6,
        "`web` depends on `apj`, which is no component or vendor",
        "did you mean `api`?",
    );
    assert_eq!(d.column, 15);
}

#[test]
fn dependency_cycles_name_their_path() {
    let text = "[[component]]\nid = \"a\"\ndepends_on = [\"b\"]\n[[component]]\nid = \"b\"\ndepends_on = [\"c\"]\n[[component]]\nid = \"c\"\ndepends_on = [\"a\"]\n";
    one(text, 3, "dependency cycle: a → b → c → a", "remove one");
    one(
        "[[component]]\nid = \"a\"\ndepends_on = [\"a\"]\n",
        3,
        "dependency cycle: a → a",
        "",
    );
}

#[test]
fn a_monitor_on_an_unknown_component_or_a_vendor() {
    let m = "[[monitor]]\nid = \"m\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n";
    one(
        &with_base(&format!("{m}component = \"apx\"\n")),
        9,
        "monitor `m` names unknown component `apx`",
        "did you mean `api`?",
    );
    let vendor = "[[vendor]]\nid = \"pay\"\nstatus_url = \"https://s.example/\"\n";
    one(
        &with_base(&format!("{vendor}{m}component = \"pay\"\n")),
        12,
        "names `pay` as its component, but that is a vendor",
        "[[component]]",
    );
    one(
        &with_base("[[intake.route]]\nlabels = { a = \"b\" }\ncomponent = \"nope\"\n"),
        6,
        "intake route names unknown component `nope`",
        "",
    );
}

#[test]
fn missing_required_keys_per_monitor_kind() {
    let head = |kind: &str| {
        with_base(&format!(
            "[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"{kind}\"\n"
        ))
    };
    one(
        &head("http"),
        4,
        "http monitor `m` is missing required key `url`",
        "url = ",
    );
    one(&head("dns"), 4, "missing required key `name`", "name = ");
    one(&head("tls"), 4, "missing required key `host`", "host = ");
    one(
        &head("heartbeat"),
        4,
        "missing required key `token`",
        "openssl rand",
    );
    let d = errs(&head("tcp"));
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "tcp monitor `m` is missing required key `host`",
            "tcp monitor `m` is missing required key `port`"
        ]
    );
    one(
        &with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\n"),
        4,
        "missing required key `kind`",
        "http, tcp, dns, tls, heartbeat",
    );
    one(
        &with_base("[[monitor]]\nid = \"m\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n"),
        4,
        "missing required key `component`",
        "",
    );
}

#[test]
fn unknown_monitor_kind_lists_the_kinds() {
    let text = with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"icmpv9\"\n");
    one(
        &text,
        7,
        "unknown monitor kind \"icmpv9\"",
        "monitor kinds: `http`, `tcp`, `dns`, `tls`, `heartbeat`",
    );
    let text = with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"htp\"\n");
    one(&text, 7, "unknown monitor kind", "did you mean `http`?");
}

fn http_monitor(extra: &str) -> String {
    with_base(&format!("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\n{extra}\n"))
}

#[test]
fn bad_urls_and_addresses() {
    one(&with_base("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"127.0.0.1/health\"\n"), 8, "bad URL", "https://example.com/health");
    one(
        &with_base("[[vendor]]\nid = \"v\"\nstatus_url = \"ftp://x.example/\"\n"),
        6,
        "has scheme `ftp`",
        "http://",
    );
    one(
        "[server]\nlisten = \"localhost:8080\"\n",
        2,
        "bad socket address \"localhost:8080\"",
        "127.0.0.1:8080",
    );
    one(
        "[server]\nlisten = \"127.0.0.1\"\n",
        2,
        "bad socket address",
        "",
    );
    one(
        "[server]\ndatabase_url = \"mysql://u:hunter2@h/db\"\n",
        2,
        "postgres://",
        "SQLite",
    );
    let d = errs("[server]\ndatabase_url = \"mysql://u:hunter2@h/db\"\n");
    assert!(
        !render(&d).contains("hunter2"),
        "the password leaked: {}",
        render(&d)
    );
    let dns = "[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"dns\"\nname = \"example.com\"\nresolver = \"my-resolver\"\n";
    one(&with_base(dns), 9, "bad resolver address", "127.0.0.1:5353");
    let tcp = "[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"tcp\"\nhost = \"http://db\"\nport = 1\n";
    one(&with_base(tcp), 8, "looks like a URL", "port");
}

#[test]
fn locales_other_than_en_and_ja() {
    let d = one(
        "[page]\nlocales = [\"en\", \"fr\"]\n",
        2,
        "unsupported locale \"fr\"",
        "`en`, `ja`",
    );
    assert_eq!(d.column, 18);
    one("[page]\nlocales = []\n", 2, "needs at least one locale", "");
    one(
        "[page]\nlocales = [\"en\", \"en\"]\n",
        2,
        "listed twice",
        "",
    );
}

#[test]
fn expected_status_entries() {
    let d = errs(&http_monitor(
        "expected_status = [200, 600, \"6xx\", \"399-300\", true, \"2xx\"]",
    ));
    assert_eq!(d.len(), 4, "{}", render(&d));
    assert!(d.iter().all(|d| d.line == 9));
    let cols: Vec<usize> = d.iter().map(|d| d.column).collect();
    assert_eq!(cols, [25, 30, 37, 48]);
    assert!(d[0].message.contains("600 is not an HTTP status code"));
    assert!(d[1].message.contains("bad status \"6xx\""));
    assert!(d[2].message.contains("backwards"));
    assert!(d[3]
        .hint
        .as_deref()
        .unwrap_or_default()
        .contains("\"300-399\""));
    one(
        &http_monitor("expected_status = []"),
        9,
        "the list is empty",
        "",
    );
}

#[test]
fn record_types() {
    let dns = "[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"dns\"\nname = \"example.com\"\nrecord_type = \"SRV\"\n";
    one(
        &with_base(dns),
        9,
        "unknown DNS record type \"SRV\"",
        "`A`, `AAAA`, `CNAME`, `MX`, `TXT`, `NS`",
    );
}

#[test]
fn zero_confirmations_and_out_of_range_ports() {
    one(
        &http_monitor("confirmations = 0"),
        9,
        "`monitor.confirmations`: 0 is out of range",
        "between 1 and",
    );
    one(&http_monitor("recoveries = -1"), 9, "out of range", "");
    let tcp = |port: &str| {
        with_base(&format!("[[monitor]]\nid = \"m\"\ncomponent = \"api\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"))
    };
    one(
        &tcp("70000"),
        9,
        "70000 is out of range",
        "between 1 and 65535",
    );
    one(&tcp("0"), 9, "0 is out of range", "between 1 and 65535");
    one(
        &tcp("\"5432\""),
        9,
        "expected an integer, found a string",
        "without quotes",
    );
}

#[test]
fn vendor_format_names() {
    let v = |f: &str| {
        with_base(&format!(
            "[[vendor]]\nid = \"v\"\nstatus_url = \"https://s.example/\"\nformat = \"{f}\"\n"
        ))
    };
    one(
        &v("statuspag"),
        7,
        "unknown vendor format \"statuspag\"",
        "did you mean `statuspage`?",
    );
    one(
        &v("rss"),
        7,
        "unknown vendor format",
        "`auto`, `statuspage`, `statusio`, `slack`, `instatus`, `google-cloud`, `heroku`",
    );
    for f in [
        "auto",
        "statuspage",
        "statusio",
        "slack",
        "instatus",
        "google-cloud",
        "heroku",
    ] {
        ok(&v(f));
    }
}

#[test]
fn sizes_timeouts_json_assertions_and_tokens() {
    one(
        "[intake]\nmax_body_bytes = \"1XB\"\n",
        2,
        "bad size \"1XB\"",
        "\"1MiB\"",
    );
    one(
        "[intake]\nmax_body_bytes = 0\n",
        2,
        "must be larger than zero",
        "",
    );
    one(
        &http_monitor("json_pointer = \"/status\""),
        9,
        "without `json_equals`",
        "json_equals",
    );
    one(
        &http_monitor("json_equals = \"ok\""),
        9,
        "without `json_pointer`",
        "/status",
    );
    one(
        &http_monitor("json_pointer = \"status\"\njson_equals = 1"),
        9,
        "must start with '/'",
        "RFC 6901",
    );
    one(
        &http_monitor("method = \"FETCH\""),
        9,
        "unknown HTTP method",
        "GET",
    );
    one(
        &http_monitor("headers = { \"Bad Header\" = \"x\" }"),
        9,
        "not a valid header name",
        "",
    );
    let hb = |token: &str| {
        format!("[[monitor]]\nid = \"b{}\"\ncomponent = \"api\"\nkind = \"heartbeat\"\ntoken = \"{token}\"\n", token.len())
    };
    one(
        &with_base(&hb("short")),
        8,
        "shorter than 12 characters",
        "openssl rand",
    );
    one(
        &with_base(&hb("has spaces in the token")),
        8,
        "only letters, digits",
        "",
    );
    let long = "a".repeat(20);
    let d = one(
        &with_base(&format!(
            "{}{}",
            hb(&long),
            hb(&long).replace("id = \"b", "id = \"c")
        )),
        13,
        "heartbeat token already used by the monitor on line 8",
        "its own token",
    );
    assert!(!d.message.contains(&long));
    one(
        "[scheduler]\njitter = 1.5\n",
        2,
        "1.5 is out of range",
        "between 0 and 1",
    );
    one("[scheduler]\nmax_concurrency = 0\n", 2, "out of range", "");
    one(
        &with_base("[[intake.route]]\ncomponent = \"api\"\nlabels = {}\n"),
        6,
        "at least one label",
        "",
    );
}

// --- All at once ---------------------------------------------------------------------------

#[test]
fn every_problem_in_a_file_is_reported_in_one_run_in_file_order() {
    let text = r#"[server]
listen = "nowhere"

[[component]]
id = "api"
users = -5
depends_on = ["dbb"]

[[component]]
id = "api"

[[monitor]]
id = "m"
component = "ap"
kind = "tcp"
host = "127.0.0.1"
port = 99999
interval = "soon"

[incidents]
publish_aftr = "2m"
"#;
    let d = errs(text);
    let lines: Vec<usize> = d.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 6, 7, 10, 14, 17, 18, 21], "{}", render(&d));
}

// --- Environment layering ------------------------------------------------------------------

#[test]
fn env_variables_override_the_file() {
    let env = vars(&[
        ("KEEL_SERVER__LISTEN", "127.0.0.1:9000"),
        (
            "KEEL_SERVER__DATABASE_URL",
            "postgres://keel@127.0.0.1:5432/keel",
        ),
        ("KEEL_PAGE__TITLE", "Status from env"),
        ("KEEL_PAGE__LOCALES", "ja, en"),
        ("KEEL_INCIDENTS__PUBLISH_AFTER", "5m"),
        ("KEEL_NOTIFY__ALLOW_PRIVATE_TARGETS", "true"),
        ("KEEL_INTAKE__MAX_BODY_BYTES", "2MiB"),
        ("KEEL_SCHEDULER__JITTER", "0.25"),
        // Not config keys: left for other parts of Keel, silently.
        ("KEEL_ADMIN_TOKEN", "secret"),
        ("KEEL_ADMIN_TOKEN_FILE", "/run/secrets/keel"),
        ("KEEL_CONFIG", "keel.toml"),
        ("KEEL_LOG", "debug"),
        ("HOME", "/root"),
    ]);
    let c = parse(PRODUCT_FIXED, "keel.toml", &env).expect("clean");
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(
        c.server.database_url.as_ref().map(|s| s.expose()),
        Some("postgres://keel@127.0.0.1:5432/keel")
    );
    assert_eq!(c.page.title, "Status from env");
    assert_eq!(c.page.locales, ["ja", "en"]);
    assert_eq!(c.incidents.publish_after, Duration::from_secs(300));
    // Keys the environment does not set keep the file's values.
    assert_eq!(c.incidents.stability_window, Duration::from_secs(300));
    assert!(c.notify.allow_private_targets);
    assert_eq!(c.intake.max_body_bytes, 2 << 20);
    assert_eq!(c.scheduler.jitter, 0.25);
}

const PRODUCT_FIXED: &str = concat!(
    include_str!("data/product.toml"),
    "\n[[component]]\nid = \"db\"\n"
);

#[test]
fn env_applies_to_tables_absent_from_the_file() {
    let c = parse(
        "",
        "keel.toml",
        &vars(&[("KEEL_SERVER__LISTEN", "0.0.0.0:80")]),
    )
    .expect("clean");
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:80");
}

#[test]
fn bad_env_values_are_reported_at_line_zero_with_the_variable_name() {
    let d = errs_env(
        "[server]\nlisten = \"127.0.0.1:8080\"\n",
        &[
            ("KEEL_SERVER__LISTEN", "localhost"),
            ("KEEL_INCIDENTS__PUBLISH_AFTER", "soon"),
            ("KEEL_NOTIFY__ALLOW_PRIVATE_TARGETS", "yes"),
            ("KEEL_PAGE__LOCALES", "en,fr"),
            ("KEEL_PAGE__TITEL", "x"),
            ("KEEL_INTAKE__ROUTE", "x"),
        ],
    );
    assert_eq!(d.len(), 6, "{}", render(&d));
    for diag in &d {
        assert_eq!((diag.line, diag.column), (0, 0));
        assert_eq!(diag.file, "environment");
        assert!(diag.message.starts_with("KEEL_"), "{diag}");
    }
    let all = render(&d);
    for var in [
        "KEEL_SERVER__LISTEN",
        "KEEL_INCIDENTS__PUBLISH_AFTER",
        "KEEL_NOTIFY__ALLOW_PRIVATE_TARGETS",
        "KEEL_PAGE__LOCALES",
    ] {
        assert!(all.contains(var), "{var} missing from:\n{all}");
    }
    assert!(all.contains("did you mean `KEEL_PAGE__TITLE`?"));
}

#[test]
fn env_and_file_problems_come_together() {
    let d = errs_env("[page]\ntitle = 3\n", &[("KEEL_SERVER__LISTEN", "x")]);
    assert_eq!(d.iter().map(|d| d.line).collect::<Vec<_>>(), [0, 2]);
}

// --- Output format and docs ----------------------------------------------------------------

#[test]
fn diagnostics_display_as_file_line_column_then_hint() {
    let d = errs("[server]\ndata_dri = \"x\"\n");
    assert_eq!(
        d[0].to_string(),
        "keel.toml:2:1: unknown key `data_dri` in [server]\n  hint: did you mean `data_dir`?"
    );
    let d = errs_env("", &[("KEEL_NOTIFY__ALLOW_PRIVATE_TARGETS", "maybe")]);
    assert_eq!(
        d[0].to_string(),
        "environment: KEEL_NOTIFY__ALLOW_PRIVATE_TARGETS: expected true or false, found \"maybe\"\n  hint: write true or false, without quotes"
    );
}

#[test]
fn every_key_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
        .expect("docs/config.md");
    for key in known_keys() {
        let leaf = key.rsplit('.').next().unwrap_or(&key);
        assert!(
            doc.contains(&format!("`{leaf}`")),
            "docs/config.md does not document `{key}`"
        );
    }
}

// --- [notify]: outbox, email, responders' channels; [page] export_dir ----------------------

#[test]
fn notify_and_export_dir_defaults() {
    let c = ok("");
    assert_eq!(c.notify, NotifyConfig::default());
    assert_eq!(c.notify.timeout, Duration::from_secs(10));
    assert_eq!(c.notify.retry_attempts, 12);
    assert_eq!(c.notify.lease, Duration::from_secs(300));
    assert_eq!(c.notify.workers, 1);
    assert!(c.notify.smtp.is_none() && c.notify.channels.is_empty());
    assert!(c.page.export_dir.is_none());
}

#[test]
fn notify_outbox_keys_and_export_dir_parse() {
    let c = ok("[page]\nexport_dir = \"./public\"\n\
         [notify]\ntimeout = \"20s\"\nretry_attempts = 3\nlease = \"2m\"\nworkers = 8\n");
    assert_eq!(
        c.page.export_dir.as_deref(),
        Some(std::path::Path::new("./public"))
    );
    assert_eq!(c.notify.timeout, Duration::from_secs(20));
    assert_eq!(c.notify.retry_attempts, 3);
    assert_eq!(c.notify.lease, Duration::from_secs(120));
    assert_eq!(c.notify.workers, 8);
}

#[test]
fn notify_outbox_values_out_of_range() {
    one(
        "[notify]\nretry_attempts = 0\n",
        2,
        "`notify.retry_attempts`: 0 is out of range",
        "between 1 and 100",
    );
    one(
        "[notify]\nretry_attempts = 101\n",
        2,
        "out of range",
        "between 1 and 100",
    );
    one(
        "[notify]\nworkers = 65\n",
        2,
        "`notify.workers`: 65 is out of range",
        "between 1 and 64",
    );
    one(
        "[notify]\nworkers = \"2\"\n",
        2,
        "expected an integer, found a string",
        "without quotes",
    );
    one(
        "[notify]\ntimeout = 10\n",
        2,
        "`notify.timeout`: expected a duration string",
        "\"10s\"",
    );
    one(
        "[notify]\nlease = \"0s\"\n",
        2,
        "`notify.lease`: must be longer than zero",
        "duration",
    );
    one(
        "[page]\nexport_dir = \"\"\n",
        2,
        "`page.export_dir`: may not be empty",
        "",
    );
    one(
        "[notify]\ntimout = \"5s\"\n",
        2,
        "unknown key `timout` in [notify]",
        "did you mean `timeout`?",
    );
}

#[test]
fn a_lease_not_longer_than_the_timeout_is_refused_where_it_was_written() {
    let d = one(
        "[notify]\ntimeout = \"30s\"\nlease = \"30s\"\n",
        3,
        "`notify.lease` (30s) must be longer than `notify.timeout` (30s)",
        "sent again",
    );
    assert_eq!(d.column, 9);
    // Only the lease written: compared with the default timeout.
    one(
        "[notify]\nlease = \"5s\"\n",
        2,
        "`notify.lease` (5s) must be longer than the default `notify.timeout` (10s)",
        "lease",
    );
    // Only the timeout written: blamed, since the default lease is fine otherwise.
    one(
        "[notify]\ntimeout = \"10m\"\n",
        2,
        "the default `notify.lease` (5m) must be longer than `notify.timeout` (10m)",
        "lease",
    );
}

const SMTP: &str =
    "[notify.smtp]\nhost = \"smtp.example.com\"\nfrom = \"Keel Status <status@example.com>\"\n";

#[test]
fn smtp_parses_with_port_by_tls_and_the_password_from_the_environment() {
    let c = ok(SMTP);
    let s = c.notify.smtp.expect("smtp");
    assert_eq!(s.host, "smtp.example.com");
    assert_eq!(s.from, "Keel Status <status@example.com>");
    assert_eq!((s.tls, s.port), (SmtpTlsMode::Starttls, 587));
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert_eq!(s.pool_size, 4);
    assert!(s.username.is_none() && s.password.is_none() && s.password_file.is_none());

    for (tls, port) in [("none", 25), ("tls", 465), ("starttls", 587)] {
        let c = ok(&format!("{SMTP}tls = \"{tls}\"\n"));
        assert_eq!(c.notify.smtp.map(|s| s.port), Some(port), "{tls}");
    }
    let c = ok(&format!(
        "{SMTP}tls = \"tls\"\nport = 2465\npool_size = 2\ntimeout = \"30s\"\n"
    ));
    let s = c.notify.smtp.expect("smtp");
    assert_eq!((s.tls, s.port, s.pool_size), (SmtpTlsMode::Tls, 2465, 2));
    assert_eq!(s.timeout, Duration::from_secs(30));

    let text = format!("{SMTP}username = \"keel\"\n");
    let c = parse(
        &text,
        "keel.toml",
        &vars(&[("KEEL_NOTIFY_SMTP_PASSWORD", "hunter2")]),
    )
    .expect("password from the environment");
    let s = c.notify.smtp.expect("smtp");
    assert_eq!(s.username.as_deref(), Some("keel"));
    assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("hunter2"));
    assert!(!format!("{s:?}").contains("hunter2"));

    let c = ok(&format!(
        "{SMTP}username = \"keel\"\npassword_file = \"/run/secrets/smtp\"\n"
    ));
    let s = c.notify.smtp.expect("smtp");
    assert_eq!(
        s.password_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/smtp"))
    );
    assert!(s.password.is_none());
    // Written as dotted keys under [notify], too.
    let c = ok("[notify]\nsmtp.host = \"127.0.0.1\"\nsmtp.from = \"a@example.com\"\n");
    assert_eq!(c.notify.smtp.map(|s| s.host), Some("127.0.0.1".to_owned()));
}

#[test]
fn an_smtp_password_in_the_file_is_refused_without_repeating_it() {
    let d = one(
        &format!("{SMTP}password = \"hunter2\"\n"),
        4,
        "`notify.smtp.password`: secrets never live in the file: use password_file or KEEL_NOTIFY_SMTP_PASSWORD",
        "password_file = ",
    );
    assert_eq!(d.column, 1);
    assert!(!d.to_string().contains("hunter2"));
    // As an environment variable in the config-key shape, it points at the right one.
    let d = errs_env(SMTP, &[("KEEL_NOTIFY__SMTP__PASSWORD", "hunter2")]);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!((d[0].file.as_str(), d[0].line), ("environment", 0));
    assert!(d[0]
        .hint
        .as_deref()
        .unwrap_or("")
        .contains("KEEL_NOTIFY_SMTP_PASSWORD"));
}

#[test]
fn smtp_mistakes_are_reported_at_their_line() {
    one(
        &format!("{SMTP}username = \"keel\"\n"),
        4,
        "`notify.smtp.username`: a username is set but no password",
        "KEEL_NOTIFY_SMTP_PASSWORD",
    );
    one(
        "[notify.smtp]\nhost = \"smtp.example.com\"\nfrom = \"status.example.com\"\n",
        3,
        "bad sender \"status.example.com\": no `@`",
        "Keel Status <status@example.com>",
    );
    one(
        "[notify.smtp]\nhost = \"smtp.example.com\"\nfrom = \"Keel <status@example.com\"\n",
        3,
        "`<` must be closed",
        "status@example.com",
    );
    one(
        "[notify.smtp]\nhost = \"smtp.example.com\"\nfrom = \"Keel status@example.com\"\n",
        3,
        "contains a space",
        "",
    );
    one(
        &format!("{SMTP}tls = \"startls\"\n"),
        4,
        "unknown SMTP TLS mode \"startls\"",
        "did you mean `starttls`?",
    );
    one(
        &format!("{SMTP}port = 70000\n"),
        4,
        "`notify.smtp.port`: 70000 is out of range",
        "between 1 and 65535",
    );
    one(
        &format!("{SMTP}pool_size = 0\n"),
        4,
        "`notify.smtp.pool_size`: 0 is out of range",
        "between 1 and 64",
    );
    one(
        &format!("{SMTP}timeout = \"soon\"\n"),
        4,
        "`notify.smtp.timeout`: bad duration",
        "\"30s\"",
    );
    one(
        &format!("{SMTP}usrname = \"keel\"\n"),
        4,
        "unknown key `usrname` in [notify.smtp]",
        "did you mean `username`?",
    );
    one(
        "[notify.smtp]\nhost = \"smtp://smtp.example.com\"\nfrom = \"a@example.com\"\n",
        2,
        "looks like a URL",
        "",
    );
    one(
        "[notify.smtp]\nfrom = \"a@example.com\"\n",
        1,
        "[notify.smtp] is missing required key `host`",
        "host = \"smtp.example.com\"",
    );
    one(
        "[notify.smtp]\nhost = \"smtp.example.com\"\n",
        1,
        "[notify.smtp] is missing required key `from`",
        "from = ",
    );
    one(
        "[notify]\nsmtp = \"smtp.example.com\"\n",
        2,
        "`notify.smtp` must be a table [notify.smtp]",
        "[notify.smtp] header",
    );
    one(
        &format!("{SMTP}password_file = \"\"\n"),
        4,
        "`notify.smtp.password_file`: may not be empty",
        "",
    );
}

#[test]
fn credentials_over_plain_smtp_only_to_loopback() {
    let env = vars(&[("KEEL_NOTIFY_SMTP_PASSWORD", "pw")]);
    let text = format!("{SMTP}tls = \"none\"\nusername = \"keel\"\n");
    let d = parse(&text, "keel.toml", &env).expect_err("plain credentials");
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(d[0].line, 4);
    assert!(
        d[0].message
            .contains("send the password in clear to smtp.example.com"),
        "{}",
        d[0]
    );
    for host in ["127.0.0.1", "localhost", "::1"] {
        let text = format!("[notify.smtp]\nhost = \"{host}\"\nfrom = \"a@example.com\"\ntls = \"none\"\nusername = \"keel\"\n");
        assert!(parse(&text, "keel.toml", &env).is_ok(), "{host}");
    }
    // Without a username, plain SMTP anywhere is the operator's call.
    ok(&format!("{SMTP}tls = \"none\"\n"));
}

#[test]
fn an_empty_smtp_password_variable_is_reported() {
    let d = errs_env(SMTP, &[("KEEL_NOTIFY_SMTP_PASSWORD", "")]);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!((d[0].file.as_str(), d[0].line), ("environment", 0));
    assert_eq!(d[0].message, "KEEL_NOTIFY_SMTP_PASSWORD is set but empty");
}

#[test]
fn channels_of_every_kind_parse() {
    let text = "\
[[notify.channel]]
name = \"ops\"
kind = \"slack\"
url_env = \"SLACK_URL\"

[[notify.channel]]
name = \"war-room\"
kind = \"discord\"
url = \"https://discord.com/api/webhooks/1/abc\"

[[notify.channel]]
name = \"teams-new\"
kind = \"teams\"
url_file = \"/run/secrets/teams\"

[[notify.channel]]
name = \"teams-old\"
kind = \"Teams\"
card = \"message_card\"
url = \"https://example.webhook.office.com/webhookb2/x\"

[[notify.channel]]
name = \"pager\"
kind = \"webhook\"
url = \"http://127.0.0.1:9000/hook\"
secret_env = \"PAGER_SECRET\"
";
    let env = vars(&[
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/tok"),
        ("PAGER_SECRET", "s3cret"),
    ]);
    let c = match parse(text, "keel.toml", &env) {
        Ok(c) => c,
        Err(d) => panic!("{}", render(&d)),
    };
    let ch = &c.notify.channels;
    assert_eq!(ch.len(), 5);
    let kinds: Vec<ChannelKind> = ch.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChannelKind::Slack,
            ChannelKind::Discord,
            ChannelKind::Teams,
            ChannelKind::Teams,
            ChannelKind::Webhook
        ]
    );
    assert_eq!(ch[0].name, "ops");
    assert_eq!(ch[0].url_env.as_deref(), Some("SLACK_URL"));
    assert_eq!(
        ch[0].url.as_ref().map(|u| u.expose()),
        Some("https://hooks.slack.com/services/T0/B0/tok")
    );
    assert_eq!(
        ch[1].url.as_ref().map(|u| u.expose()),
        Some("https://discord.com/api/webhooks/1/abc")
    );
    assert!(ch[1].url_env.is_none() && ch[1].url_file.is_none());
    assert!(ch[2].url.is_none());
    assert_eq!(
        ch[2].url_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/teams"))
    );
    assert_eq!(ch[2].card, TeamsCard::Adaptive);
    assert_eq!(ch[3].card, TeamsCard::MessageCard);
    assert_eq!(ch[4].secret_env.as_deref(), Some("PAGER_SECRET"));
    // The URLs carry tokens: Debug never shows them.
    assert!(!format!("{c:?}").contains("T0/B0/tok"));
    // Inline-table form.
    let c = ok(
        "[notify]\nchannel = [{ name = \"a\", kind = \"slack\", url = \"https://h.example/x\" }]\n",
    );
    assert_eq!(c.notify.channels.len(), 1);
}

const CH: &str = "[[notify.channel]]\nname = \"ops\"\nkind = \"slack\"\n";

#[test]
fn channel_mistakes_are_reported_at_their_line() {
    one(
        &format!("{CH}url_env = \"SLACK_URL\"\n"),
        4,
        "`notify.channel.url_env`: environment variable SLACK_URL is not set",
        "set SLACK_URL",
    );
    one(
        CH,
        1,
        "channel `ops` has no URL",
        "url_env = \"SLACK_WEBHOOK_URL\"",
    );
    one(
        &format!("{CH}url = \"https://h.example/x\"\nurl_file = \"/run/u\"\n"),
        5,
        "channel `ops`: give only one of url, url_env and url_file",
        "one place",
    );
    one(
        "[[notify.channel]]\nname = \"ops\"\nkind = \"slak\"\nurl = \"https://h.example/x\"\n",
        3,
        "unknown channel kind \"slak\"",
        "did you mean `slack`?",
    );
    one(
        "[[notify.channel]]\nname = \"ops\"\nkind = \"email\"\nurl = \"https://h.example/x\"\n",
        3,
        "unknown channel kind",
        "`slack`, `discord`, `teams`, `webhook`",
    );
    one(
        &format!("{CH}url = \"https://h.example/x\"\ncard = \"adaptive\"\n"),
        5,
        "channel `ops`: `card` only applies to kind = \"teams\", not \"slack\"",
        "remove card",
    );
    one(
        "[[notify.channel]]\nname = \"t\"\nkind = \"teams\"\nurl = \"https://h.example/x\"\ncard = \"messagecard\"\n",
        5,
        "unknown Teams card \"messagecard\"",
        "did you mean `message_card`?",
    );
    one(
        &format!("{CH}url = \"https://h.example/x\"\nsecret_env = \"S\"\n"),
        5,
        "`secret_env` only applies to kind = \"webhook\"",
        "remove secret_env",
    );
    one(
        "[[notify.channel]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret_env = \"HOOK_SECRET\"\n",
        5,
        "environment variable HOOK_SECRET is not set",
        "HOOK_SECRET",
    );
    one(
        &format!("{CH}url_env = \"https://hooks.slack.com/x\"\n"),
        4,
        "is not an environment variable name",
        "SLACK_WEBHOOK_URL",
    );
    one(
        &format!("{CH}url = \"\"\n"),
        4,
        "`notify.channel.url`: not a valid URL",
        "https://",
    );
    one(
        "[[notify.channel]]\nkind = \"slack\"\nurl = \"https://h.example/x\"\n",
        1,
        "[[notify.channel]] is missing required key `name`",
        "name = ",
    );
    one(
        "[[notify.channel]]\nname = \"ops\"\nurl = \"https://h.example/x\"\n",
        1,
        "[[notify.channel]] is missing required key `kind`",
        "slack, discord, teams or webhook",
    );
    one(
        &format!("{CH}url = \"https://h.example/x\"\nurl_evn = \"X\"\n"),
        5,
        "unknown key `url_evn` in [[notify.channel]]",
        "did you mean `url_env`?",
    );
    one(
        "[notify.channel]\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://h.example/x\"\n",
        1,
        "`notify.channel` must be written [[notify.channel]], with double brackets",
        "starts one more entry",
    );
}

#[test]
fn channel_urls_are_checked_and_never_repeated() {
    let d = one(
        &format!("{CH}url = \"ftp://hooks.example/T0/tok3n\"\n"),
        4,
        "URL has scheme `ftp`",
        "http",
    );
    assert!(!d.to_string().contains("tok3n"));
    let d = one(
        &format!("{CH}url = \"hooks.slack.com/services/tok3n\"\n"),
        4,
        "not a valid URL",
        "https://",
    );
    assert!(!d.to_string().contains("tok3n"));
    let d = errs_env(
        &format!("{CH}url_env = \"SLACK_URL\"\n"),
        &[("SLACK_URL", "hooks.slack.com/services/tok3n")],
    );
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(d[0].line, 4);
    assert!(
        d[0].message
            .contains("environment variable SLACK_URL: not a valid URL"),
        "{}",
        d[0]
    );
    assert!(!d[0].to_string().contains("tok3n"));
}

#[test]
fn duplicate_channel_names() {
    let text = format!("{CH}url = \"https://h.example/a\"\n\n{CH}url = \"https://h.example/b\"\n");
    one(
        &text,
        7,
        "duplicate channel name `ops`: already used on line 2",
        "different name",
    );
}

#[test]
fn env_layers_over_notify_and_smtp() {
    let text = format!("[notify]\ntimeout = \"5s\"\n{SMTP}");
    let c = parse(
        &text,
        "keel.toml",
        &vars(&[
            ("KEEL_NOTIFY__TIMEOUT", "20s"),
            ("KEEL_NOTIFY__RETRY_ATTEMPTS", "5"),
            ("KEEL_NOTIFY__LEASE", "10m"),
            ("KEEL_NOTIFY__WORKERS", "4"),
            ("KEEL_NOTIFY__SMTP__HOST", "mail.internal"),
            ("KEEL_NOTIFY__SMTP__TLS", "tls"),
            ("KEEL_PAGE__EXPORT_DIR", "/srv/status"),
        ]),
    )
    .expect("env over file");
    assert_eq!(c.notify.timeout, Duration::from_secs(20));
    assert_eq!(c.notify.retry_attempts, 5);
    assert_eq!(c.notify.lease, Duration::from_secs(600));
    assert_eq!(c.notify.workers, 4);
    let s = c.notify.smtp.expect("smtp");
    assert_eq!(
        (s.host.as_str(), s.tls, s.port),
        ("mail.internal", SmtpTlsMode::Tls, 465)
    );
    assert_eq!(
        c.page.export_dir.as_deref(),
        Some(std::path::Path::new("/srv/status"))
    );

    // Variables alone turn email on; what they leave out is reported at line 0.
    let c = parse(
        "",
        "keel.toml",
        &vars(&[
            ("KEEL_NOTIFY__SMTP__HOST", "127.0.0.1"),
            ("KEEL_NOTIFY__SMTP__FROM", "status@example.com"),
        ]),
    )
    .expect("env-only smtp");
    assert_eq!(c.notify.smtp.map(|s| s.port), Some(587));
    let d = errs_env("", &[("KEEL_NOTIFY__SMTP__HOST", "127.0.0.1")]);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!((d[0].file.as_str(), d[0].line), ("environment", 0));
    assert_eq!(d[0].message, "[notify.smtp] is missing required key `from`");

    let d = errs_env("", &[("KEEL_NOTIFY__LEASE", "1s")]);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(d[0].line, 0);
    assert!(
        d[0].message
            .starts_with("KEEL_NOTIFY__LEASE (1s) must be longer than"),
        "{}",
        d[0]
    );
    let d = errs_env("", &[("KEEL_NOTIFY__WORKERS", "many")]);
    assert_eq!(
        d[0].message,
        "KEEL_NOTIFY__WORKERS: expected a whole number, found \"many\""
    );
    let d = errs_env("", &[("KEEL_NOTIFY__SMTP__HOTS", "x")]);
    assert_eq!(
        d[0].hint.as_deref(),
        Some("did you mean `KEEL_NOTIFY__SMTP__HOST`?")
    );
    let d = errs_env("", &[("KEEL_NOTIFY__CHANNEL", "x")]);
    assert!(
        d[0].message.contains("cannot be set from the environment"),
        "{}",
        d[0]
    );
    assert!(d[0]
        .hint
        .as_deref()
        .unwrap_or("")
        .contains("[[notify.channel]]"));
}

// --- Where a monitor checks from: locations and quorum -------------------------------------

#[test]
fn locations_default_to_the_server_and_quorum_to_a_majority() {
    let c = ok(&http_monitor(""));
    assert_eq!(c.monitors[0].locations, ["local"]);
    assert_eq!(c.monitors[0].quorum, 1);
    assert!(c.monitors[0].checks_locally() && !c.monitors[0].is_located());
    for (list, majority) in [
        ("[\"local\", \"osaka\"]", 2),
        ("[\"local\", \"osaka\", \"frankfurt\"]", 2),
        ("[\"a\", \"b\", \"c\", \"d\"]", 3),
        ("[\"osaka\"]", 1),
    ] {
        let c = ok(&http_monitor(&format!("locations = {list}")));
        assert_eq!(c.monitors[0].quorum, majority, "{list}");
        assert!(c.monitors[0].is_located(), "{list}");
    }
    let c = ok(&http_monitor(
        "locations = [\"local\", \"osaka\", \"eu-west-1\"]\nquorum = 1",
    ));
    let m = &c.monitors[0];
    assert_eq!(m.locations, ["local", "osaka", "eu-west-1"]);
    assert_eq!(m.quorum, 1);
    assert!(m.runs_at("osaka") && !m.runs_at("local") && !m.runs_at("tokyo"));
    let remote_only = ok(&http_monitor("locations = [\"osaka\", \"tokyo\"]"));
    assert!(!remote_only.monitors[0].checks_locally());
}

#[test]
fn bad_locations_are_named_with_a_hint() {
    one(
        &http_monitor("locations = []"),
        9,
        "`monitor.locations`: the list is empty",
        "\"local\" is the Keel server itself",
    );
    let d = one(
        &http_monitor("locations = [\"local\", \"Osaka\"]"),
        9,
        "`monitor.locations`: \"Osaka\" is not a location name",
        "lowercase letters, digits and '-'",
    );
    assert_eq!(d.column, 23, "at the bad entry: {d}");
    one(
        &http_monitor("locations = [\"local\", \"osaka\", \"osaka\"]"),
        9,
        "\"osaka\" is listed twice",
        "each location once",
    );
    one(
        &http_monitor("locations = \"osaka\""),
        9,
        "`monitor.locations`: expected an array",
        "brackets",
    );
    one(
        &http_monitor("locations = [\"local\", 3]"),
        9,
        "expected a string",
        "",
    );
}

#[test]
fn a_quorum_outside_the_locations_is_refused() {
    one(
        &http_monitor("locations = [\"local\", \"osaka\"]\nquorum = 3"),
        10,
        "`monitor.quorum`: 3 is more than the 2 locations listed",
        "1 to 2 here (remove it for a majority, 2)",
    );
    one(
        &http_monitor("locations = [\"local\", \"osaka\"]\nquorum = 0"),
        10,
        "`monitor.quorum`: a failure must be seen from at least one location",
        "1 to 2 here",
    );
    one(
        &http_monitor("quorum = 2"),
        9,
        "2 is more than the 1 location listed",
        "1 to 1 here",
    );
    one(
        &http_monitor("quorum = \"2\""),
        9,
        "`monitor.quorum`: expected an integer",
        "without quotes",
    );
    one(&http_monitor("quorum = -1"), 9, "-1 is out of range", "");
    // A refused list is reported once, not again through the quorum that counts it.
    one(
        &http_monitor("locations = [\"Osaka\"]\nquorum = 5"),
        9,
        "is not a location name",
        "",
    );
}

#[test]
fn heartbeat_monitors_cannot_be_checked_from_elsewhere() {
    let hb = "[[monitor]]\nid = \"b\"\ncomponent = \"api\"\nkind = \"heartbeat\"\ntoken = \"0123456789abcdef\"\n";
    one(
        &with_base(&format!("{hb}locations = [\"local\", \"osaka\"]\n")),
        9,
        "a heartbeat monitor cannot be checked from \"osaka\"",
        "pushed to Keel itself",
    );
    let c = ok(&with_base(&format!("{hb}locations = [\"local\"]\n")));
    assert_eq!(c.monitors[0].locations, ["local"]);
}

// --- Robustness ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text, "keel.toml", &[]);
    }

    #[test]
    fn arbitrary_tomlish_text_never_panics(text in "[\\[\\]a-z_=\"{}, .0-9\n#-]{0,200}") {
        let _ = parse(&text, "keel.toml", &[]);
    }

    /// Damaging the example in one place exercises the section walkers, not just the TOML
    /// tokenizer: the result is either a config or diagnostics with real positions.
    #[test]
    fn a_damaged_example_never_panics(at in 0usize..EXAMPLE.len(), cut in 0usize..40, insert in "[\\[\\]a-z=\"{}0-9\n]{0,8}") {
        let mut text = EXAMPLE.to_owned();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        if let Err(diags) = parse(&text, "keel.toml", &[]) {
            let lines = text.lines().count().max(1);
            for d in diags {
                prop_assert!(d.line >= 1 && d.line <= lines + 1, "line {} of {}: {}", d.line, lines, d);
                prop_assert!(d.column >= 1);
            }
        }
    }

    #[test]
    fn arbitrary_env_values_never_panic(key in "[A-Z_]{0,30}", value in any::<String>()) {
        let env = vec![(format!("KEEL_{key}"), value.clone()), ("KEEL_SERVER__LISTEN".to_owned(), value)];
        let _ = parse(EXAMPLE, "keel.toml", &env);
    }
}

// --- [[component]] group; [incidents] canary_grace -------------------------------------------

#[test]
fn components_name_their_group() {
    let c = ok(r#"
[page]
locales = ["en", "ja"]

[[component]]
id = "paris"
group = { en = "Europe", ja = "ヨーロッパ" }

[[component]]
id = "tokyo"
group = "Asia"

[[component]]
id = "berlin"
group = { en = "Europe", ja = "ヨーロッパ" }

[[component]]
id = "api"
"#);
    let group = |id: &str| {
        c.components
            .iter()
            .find(|x| x.id.as_str() == id)
            .unwrap()
            .group
            .clone()
    };
    assert_eq!(group("paris"), group("berlin"));
    assert_eq!(group("paris").unwrap().get("ja"), "ヨーロッパ");
    assert_eq!(group("tokyo").unwrap().get("ja"), "Asia");
    assert_eq!(group("api"), None);
    // Ids are stable, Statuspage-shaped and differ between groups.
    let europe = keel_core::config::group_id(&group("paris").unwrap());
    let asia = keel_core::config::group_id(&group("tokyo").unwrap());
    assert_eq!(europe.len(), 12);
    assert!(europe
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_ne!(europe, asia);
    assert_eq!(
        europe,
        keel_core::config::group_id(&group("berlin").unwrap())
    );
}

#[test]
fn a_group_must_be_named_and_written_one_way() {
    one(
        &with_base("\n[[component]]\nid = \"paris\"\ngroup = \" \"\n"),
        7,
        "`component.group`: may not be empty",
        "leave `group` out",
    );
    // The same name in English, written differently: two groups called "Europe".
    one(
        &with_base(
            "group = \"Europe\"\n\n[[component]]\nid = \"paris\"\ngroup = { en = \"Europe\", ja = \"欧州\" }\n",
        ),
        8,
        "reads \"Europe\" in en, like the group of component `api` (line 4)",
        "the same `group` value",
    );
    one(&with_base("group = 42\n"), 4, "group", "{ en = \"text\"");
}

#[test]
fn canary_grace_defaults_to_the_canaries_confirmation_time() {
    let canary = |extra: &str| {
        format!(
            "{BASE}\n[[infra]]\nid = \"internet\"\ncanary = true\n\n[[monitor]]\nid = \"dns\"\ncomponent = \"internet\"\nkind = \"tcp\"\nhost = \"1.1.1.1\"\nport = 53\ninterval = \"10s\"\ntimeout = \"2s\"\nretry_interval = \"1s\"\nconfirmations = 3\n{extra}"
        )
    };
    // The next check after 10 s, three failures of at most 2 s each, two retries 1 s apart.
    assert_eq!(
        ok(&canary("")).incidents.canary_grace,
        Duration::from_secs(10 + 3 * 2 + 2)
    );
    // The slowest canary monitor decides.
    let two = canary("\n[[monitor]]\nid = \"dns2\"\ncomponent = \"internet\"\nkind = \"tcp\"\nhost = \"8.8.8.8\"\nport = 53\ninterval = \"1m\"\n");
    let slow = ok(&two);
    assert!(slow.incidents.canary_grace > Duration::from_secs(60));
    // Written, it wins, zero included.
    let set = ok(&canary("\n[incidents]\ncanary_grace = \"45s\"\n"));
    assert_eq!(set.incidents.canary_grace, Duration::from_secs(45));
    let off = ok(&canary("\n[incidents]\ncanary_grace = \"0s\"\n"));
    assert_eq!(off.incidents.canary_grace, Duration::ZERO);
    // No canary, or a canary no monitor watches: nothing to wait for.
    assert_eq!(ok(BASE).incidents.canary_grace, Duration::ZERO);
    assert_eq!(
        ok(&format!(
            "{BASE}\n[[infra]]\nid = \"internet\"\ncanary = true\n"
        ))
        .incidents
        .canary_grace,
        Duration::ZERO
    );
    one(
        &with_base("\n[incidents]\ncanary_grace = \"soon\"\n"),
        6,
        "canary_grace",
        "",
    );
}
