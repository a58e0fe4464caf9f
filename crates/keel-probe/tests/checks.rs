//! The monitor checks against real servers on loopback: HTTP (including targets that hang,
//! reset, send 10 MB or redirect forever), TCP, DNS (a tiny authoritative server written
//! here) and TLS (self-signed certificates generated per test).
//!
//! Timeouts in these tests are hang guards, not measurements; nothing asserts how long a
//! check took.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData};
use keel_core::config::{
    Check, DnsCheck, HeartbeatCheck, HttpCheck, RecordType, Secret, StatusRange, TcpCheck, TlsCheck,
};
use keel_core::Health;
use keel_probe::check::{Checker, POOL_IDLE_PER_HOST};
use keel_probe::Outcome;

/// Generous: only stops a broken test from hanging.
const GUARD: Duration = Duration::from_secs(20);

fn checker() -> Checker {
    Checker::new().expect("checker builds")
}

fn http(url: String) -> HttpCheck {
    HttpCheck {
        url,
        method: "GET".into(),
        headers: vec![],
        expected_status: vec![StatusRange { from: 200, to: 299 }],
        keyword: None,
        keyword_absent: None,
        json_pointer: None,
        max_latency: None,
        follow_redirects: true,
        verify_tls: true,
    }
}

async fn run_http(check: HttpCheck) -> Outcome {
    checker().run(&Check::Http(check), GUARD).await
}

fn assert_outcome(outcome: &Outcome, health: Health, reason: &str) {
    assert_eq!(
        (outcome.health, outcome.reason.as_str()),
        (health, reason),
        "whole outcome: {outcome:?}"
    );
}

// ---------------------------------------------------------------- HTTP

#[tokio::test]
async fn http_200_is_up() {
    let server = support::http_server().await;
    let outcome = run_http(http(server.url("/ok"))).await;
    assert_outcome(&outcome, Health::Up, "HTTP 200");
    assert!(outcome.latency > Duration::ZERO);
}

#[tokio::test]
async fn http_503_is_down_with_the_status() {
    let server = support::http_server().await;
    let outcome = run_http(http(server.url("/fail"))).await;
    assert_outcome(&outcome, Health::Down, "HTTP 503 (expected 2xx)");
}

#[tokio::test]
async fn expected_status_set_decides() {
    let server = support::http_server().await;
    let mut check = http(server.url("/fail"));
    check.expected_status = vec![
        StatusRange { from: 200, to: 299 },
        StatusRange { from: 503, to: 503 },
    ];
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 503");

    let mut check = http(server.url("/ok"));
    check.expected_status = vec![
        StatusRange { from: 300, to: 399 },
        StatusRange { from: 418, to: 418 },
    ];
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "HTTP 200 (expected 3xx, 418)",
    );
}

#[tokio::test]
async fn empty_expected_status_means_2xx() {
    let server = support::http_server().await;
    let mut check = http(server.url("/fail"));
    check.expected_status = vec![];
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "HTTP 503 (expected 2xx)",
    );
}

#[tokio::test]
async fn method_and_headers_are_sent() {
    let server = support::http_server().await;

    let mut check = http(server.url("/needs-header"));
    assert_outcome(
        &run_http(check.clone()).await,
        Health::Down,
        "HTTP 400 (expected 2xx)",
    );
    check.headers = vec![("X-Keel-Test".into(), "yes".into())];
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 200");

    let mut check = http(server.url("/post-only"));
    assert_outcome(
        &run_http(check.clone()).await,
        Health::Down,
        "HTTP 405 (expected 2xx)",
    );
    check.method = "post".into();
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 200");
}

#[tokio::test]
async fn bad_header_or_method_is_a_clear_down() {
    let server = support::http_server().await;
    let mut check = http(server.url("/ok"));
    check.headers = vec![("bad header".into(), "x".into())];
    let outcome = run_http(check).await;
    assert_eq!(outcome.health, Health::Down);
    assert!(outcome.reason.starts_with("invalid request"), "{outcome:?}");

    let mut check = http(server.url("/ok"));
    check.method = "GE T".into();
    let outcome = run_http(check).await;
    assert_outcome(
        &outcome,
        Health::Down,
        "invalid request: bad method \"GE T\"",
    );
}

#[tokio::test]
async fn keyword_present_and_missing() {
    let server = support::http_server().await;
    let mut check = http(server.url("/ok"));
    check.keyword = Some("ok".into());
    assert_outcome(&run_http(check.clone()).await, Health::Up, "HTTP 200");
    check.keyword = Some("healthy".into());
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "keyword 'healthy' missing",
    );
}

#[tokio::test]
async fn keyword_absent_present_is_down() {
    let server = support::http_server().await;
    let mut check = http(server.url("/error-page"));
    check.keyword_absent = Some("error".into());
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "keyword 'error' present",
    );

    let mut check = http(server.url("/ok"));
    check.keyword_absent = Some("error".into());
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 200");
}

#[tokio::test]
async fn json_pointer_equal_unequal_missing_and_not_json() {
    let server = support::http_server().await;
    let pointer = |path: &str, value: serde_json::Value| Some((path.to_string(), value));

    let mut check = http(server.url("/json-ok"));
    check.json_pointer = pointer("/status", serde_json::json!("ok"));
    assert_outcome(&run_http(check.clone()).await, Health::Up, "HTTP 200");

    check.json_pointer = pointer("/checks/db", serde_json::json!(true));
    assert_outcome(&run_http(check.clone()).await, Health::Up, "HTTP 200");

    check.json_pointer = pointer("/version", serde_json::json!("2"));
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "JSON /version missing",
    );

    let mut check = http(server.url("/json-fail"));
    check.json_pointer = pointer("/status", serde_json::json!("ok"));
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "JSON /status is \"fail\", expected \"ok\"",
    );

    let mut check = http(server.url("/not-json"));
    check.json_pointer = pointer("/status", serde_json::json!("ok"));
    assert_outcome(&run_http(check).await, Health::Down, "body is not JSON");
}

#[tokio::test]
async fn body_assertions_are_not_judged_on_a_wrong_status() {
    let server = support::http_server().await;
    let mut check = http(server.url("/fail"));
    check.keyword = Some("ok".into());
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "HTTP 503 (expected 2xx)",
    );
}

#[tokio::test]
async fn slower_than_max_latency_is_degraded() {
    let server = support::http_server().await;
    let mut check = http(server.url("/slow"));
    check.max_latency = Some(Duration::from_millis(1));
    let outcome = run_http(check).await;
    assert_eq!(outcome.health, Health::Degraded, "{outcome:?}");
    assert!(
        outcome.reason.starts_with("slower than 1ms ("),
        "{outcome:?}"
    );
    assert!(outcome.reason.ends_with("ms)"), "{outcome:?}");
}

#[tokio::test]
async fn hanging_target_times_out() {
    let server = support::http_server().await;
    let check = Check::Http(http(server.url("/hang")));
    let outcome = checker().run(&check, Duration::from_millis(300)).await;
    assert_outcome(&outcome, Health::Down, "timed out after 300ms");
}

#[tokio::test]
async fn reset_connection_is_named() {
    let addr = support::reset_server().await;
    let outcome = run_http(http(format!("http://{addr}/"))).await;
    assert_outcome(&outcome, Health::Down, "connection reset");
}

#[tokio::test]
async fn refused_connection_is_named() {
    let addr = support::closed_port().await;
    let outcome = run_http(http(format!("http://{addr}/"))).await;
    assert_outcome(&outcome, Health::Down, "connection refused");
}

#[tokio::test]
async fn ten_megabyte_body_is_read_only_up_to_the_cap() {
    let server = support::http_server().await;

    // The keyword sits past the cap: the check ends, and says how much it looked at.
    let mut check = http(server.url("/big"));
    check.keyword = Some("THE-END".into());
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "keyword 'THE-END' missing in first 1 MiB",
    );

    let mut check = http(server.url("/big"));
    check.keyword = Some("BEGIN".into());
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 200");

    // No assertion needs the body: the status decides.
    assert_outcome(
        &run_http(http(server.url("/big"))).await,
        Health::Up,
        "HTTP 200",
    );

    let mut check = http(server.url("/big"));
    check.json_pointer = Some(("/a".into(), serde_json::json!(1)));
    assert_outcome(
        &run_http(check).await,
        Health::Down,
        "body is not JSON (only the first 1 MiB was read)",
    );
}

#[tokio::test]
async fn redirect_forever_is_too_many_redirects() {
    let server = support::http_server().await;
    let outcome = run_http(http(server.url("/loop/0"))).await;
    assert_outcome(&outcome, Health::Down, "too many redirects (more than 10)");
}

#[tokio::test]
async fn redirects_followed_or_judged_as_status() {
    let server = support::http_server().await;
    let mut check = http(server.url("/moved"));
    assert_outcome(&run_http(check.clone()).await, Health::Up, "HTTP 200");

    check.follow_redirects = false;
    assert_outcome(
        &run_http(check.clone()).await,
        Health::Down,
        "HTTP 303 (expected 2xx)",
    );

    check.expected_status = vec![StatusRange { from: 300, to: 399 }];
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 303");
}

#[tokio::test]
async fn pooled_connections_are_reused() {
    let server = support::http_server().await;
    let checker = checker();
    let checks = [
        Check::Http(http(server.url("/counted"))),
        Check::Http(HttpCheck {
            keyword: Some("counted".into()),
            ..http(server.url("/counted"))
        }),
    ];
    for _ in 0..3 {
        for check in &checks {
            assert_outcome(&checker.run(check, GUARD).await, Health::Up, "HTTP 200");
            // Lets the client hand the connection back to its pool before the next check.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let connections = server.peers.lock().unwrap().len();
    assert!(connections < 6, "6 checks used {connections} connections");
}

/// Checks that bunch up each open a connection; the pool keeps only `POOL_IDLE_PER_HOST` of
/// them and closes the rest as they come back, so the connections held open do not follow
/// the last burst. No idle timeout is involved: it is longer than the guard, and the check at
/// the end must still find a kept connection.
#[tokio::test]
async fn idle_connections_to_a_host_are_capped_after_a_burst() {
    const BURST: usize = 32;
    const { assert!(POOL_IDLE_PER_HOST < BURST, "the burst must exceed the cap") };
    let server = support::counting_server(BURST).await;
    let checker = Arc::new(checker());
    let check = Check::Http(http(server.url("/")));
    let mut tasks = Vec::new();
    for _ in 0..BURST {
        let (checker, check) = (checker.clone(), check.clone());
        tasks.push(tokio::spawn(
            async move { checker.run(&check, GUARD).await },
        ));
    }
    for task in tasks {
        assert_outcome(&task.await.unwrap(), Health::Up, "HTTP 200");
    }
    // Every answer waited for all the requests, so each check had a connection of its own.
    assert_eq!(server.accepted(), BURST);
    let mut open = server.open.clone();
    let settled = tokio::time::timeout(GUARD, open.wait_for(|n| *n <= POOL_IDLE_PER_HOST))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        settled,
        "{} connections still open after the burst; the pool keeps {POOL_IDLE_PER_HOST}",
        *open.borrow()
    );
    // What the pool kept is used: one more check opens no new connection.
    assert_outcome(&checker.run(&check, GUARD).await, Health::Up, "HTTP 200");
    assert_eq!(server.accepted(), BURST);
}

#[tokio::test]
async fn one_checker_serves_many_checks_at_once() {
    let server = support::http_server().await;
    let checker = Arc::new(checker());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let checker = checker.clone();
        // A few hanging targets among them must not hold the others back.
        let (path, timeout) = if i % 10 == 0 {
            ("/hang", Duration::from_secs(1))
        } else {
            ("/ok", GUARD)
        };
        let check = Check::Http(http(server.url(path)));
        tasks.push(tokio::spawn(async move {
            (path, checker.run(&check, timeout).await)
        }));
    }
    for task in tasks {
        let (path, outcome) = task.await.unwrap();
        match path {
            "/hang" => assert_outcome(&outcome, Health::Down, "timed out after 1s"),
            _ => assert_outcome(&outcome, Health::Up, "HTTP 200"),
        }
    }
}

#[tokio::test]
async fn https_verification_on_and_off() {
    let (cert, key) = support::self_signed(time::Duration::days(-1), time::Duration::days(30));
    let addr = support::tls_server(cert, key).await;
    let mut check = http(format!("https://localhost:{}/", addr.port()));
    check.keyword = Some("secure".into());

    let outcome = run_http(check.clone()).await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert!(
        outcome
            .reason
            .starts_with("certificate not trusted: unknown issuer"),
        "{outcome:?}"
    );

    check.url = format!("https://127.0.0.1:{}/", addr.port());
    check.verify_tls = false;
    assert_outcome(&run_http(check).await, Health::Up, "HTTP 200");
}

#[tokio::test]
async fn tls_to_a_plain_http_server_fails_the_handshake() {
    let server = support::http_server().await;
    let mut check = http(format!("https://{}/ok", server.addr));
    check.verify_tls = false;
    let outcome = run_http(check).await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert!(
        outcome.reason.starts_with("TLS handshake failed: "),
        "{outcome:?}"
    );
}

// ---------------------------------------------------------------- TCP

#[tokio::test]
async fn tcp_open_port_is_up() {
    let server = support::http_server().await;
    let check = Check::Tcp(TcpCheck {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
    });
    let outcome = checker().run(&check, GUARD).await;
    assert_outcome(
        &outcome,
        Health::Up,
        &format!("connected to 127.0.0.1:{}", server.addr.port()),
    );
}

#[tokio::test]
async fn tcp_closed_port_is_refused() {
    let addr = support::closed_port().await;
    let check = Check::Tcp(TcpCheck {
        host: "127.0.0.1".into(),
        port: addr.port(),
    });
    assert_outcome(
        &checker().run(&check, GUARD).await,
        Health::Down,
        "connection refused",
    );
}

#[tokio::test]
async fn tcp_resolves_names() {
    let server = support::http_server().await;
    let check = Check::Tcp(TcpCheck {
        host: "localhost".into(),
        port: server.addr.port(),
    });
    let outcome = checker().run(&check, GUARD).await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");
}

// ---------------------------------------------------------------- DNS

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

async fn zone() -> SocketAddr {
    support::dns_server(vec![
        ("app.test.", RData::A(A(Ipv4Addr::new(127, 0, 0, 1)))),
        ("app.test.", RData::A(A(Ipv4Addr::new(127, 0, 0, 2)))),
        ("v6.test.", RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
        (
            "txt.test.",
            RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
        ),
        ("alias.test.", RData::CNAME(CNAME(name("Target.Test.")))),
        ("mail.test.", RData::MX(MX::new(10, name("mx1.test.")))),
    ])
    .await
}

fn dns(resolver: SocketAddr, name: &str, record_type: RecordType, expected: &[&str]) -> Check {
    Check::Dns(DnsCheck {
        name: name.into(),
        record_type,
        expected: expected.iter().map(|s| s.to_string()).collect(),
        resolver: Some(resolver),
    })
}

#[tokio::test]
async fn dns_expected_answer_is_up() {
    let resolver = zone().await;
    let checker = checker();
    let outcome = checker
        .run(
            &dns(resolver, "app.test", RecordType::A, &["127.0.0.2"]),
            GUARD,
        )
        .await;
    assert_outcome(&outcome, Health::Up, "DNS: 127.0.0.1, 127.0.0.2");

    let outcome = checker
        .run(&dns(resolver, "APP.test.", RecordType::A, &[]), GUARD)
        .await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");

    let outcome = checker
        .run(
            &dns(resolver, "v6.test", RecordType::Aaaa, &["0:0:0:0:0:0:0:1"]),
            GUARD,
        )
        .await;
    assert_outcome(&outcome, Health::Up, "DNS: ::1");

    let outcome = checker
        .run(
            &dns(resolver, "txt.test", RecordType::Txt, &["v=spf1 -all"]),
            GUARD,
        )
        .await;
    assert_outcome(&outcome, Health::Up, "DNS: v=spf1 -all");

    let outcome = checker
        .run(
            &dns(resolver, "alias.test", RecordType::Cname, &["target.test."]),
            GUARD,
        )
        .await;
    assert_outcome(&outcome, Health::Up, "DNS: target.test");

    let outcome = checker
        .run(
            &dns(resolver, "mail.test", RecordType::Mx, &["MX1.test"]),
            GUARD,
        )
        .await;
    assert_outcome(&outcome, Health::Up, "DNS: 10 mx1.test");
}

#[tokio::test]
async fn dns_wrong_answer_is_down() {
    let resolver = zone().await;
    let outcome = checker()
        .run(
            &dns(
                resolver,
                "app.test",
                RecordType::A,
                &["10.0.0.1", "10.0.0.9"],
            ),
            GUARD,
        )
        .await;
    assert_outcome(
        &outcome,
        Health::Down,
        "DNS: expected 10.0.0.1 or 10.0.0.9, got 127.0.0.1, 127.0.0.2",
    );
}

#[tokio::test]
async fn dns_missing_record_type_is_down() {
    let resolver = zone().await;
    let outcome = checker()
        .run(&dns(resolver, "txt.test", RecordType::A, &[]), GUARD)
        .await;
    assert_outcome(&outcome, Health::Down, "DNS: no A record for txt.test");
}

#[tokio::test]
async fn dns_nxdomain_is_down() {
    let resolver = zone().await;
    let outcome = checker()
        .run(&dns(resolver, "nope.test", RecordType::A, &[]), GUARD)
        .await;
    assert_outcome(
        &outcome,
        Health::Down,
        "DNS: nope.test does not exist (NXDOMAIN)",
    );
}

#[tokio::test]
async fn dns_without_a_server_is_down() {
    let resolver = support::closed_udp_port().await;
    let outcome = checker()
        .run(
            &dns(resolver, "app.test", RecordType::A, &[]),
            Duration::from_secs(1),
        )
        .await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert!(
        outcome.reason.contains("timed out") || outcome.reason.contains("refused"),
        "{outcome:?}"
    );
}

// ---------------------------------------------------------------- TLS

/// `days` from now plus half a day, so whole days left read as `days` however slow the test.
fn days_and_a_half(days: i64) -> time::Duration {
    time::Duration::days(days) + time::Duration::hours(12)
}

async fn tls_target(not_before: time::Duration, not_after: time::Duration) -> SocketAddr {
    let (cert, key) = support::self_signed(not_before, not_after);
    support::tls_server(cert, key).await
}

fn tls(addr: SocketAddr, min_days: u32, verify: bool) -> Check {
    Check::Tls(TlsCheck {
        host: "127.0.0.1".into(),
        port: addr.port(),
        server_name: Some("localhost".into()),
        min_days,
        verify,
    })
}

#[tokio::test]
async fn tls_sixty_days_left_is_up() {
    let addr = tls_target(time::Duration::days(-1), days_and_a_half(60)).await;
    let outcome = checker().run(&tls(addr, 14, false), GUARD).await;
    assert_outcome(&outcome, Health::Up, "certificate expires in 60 days");
}

#[tokio::test]
async fn tls_six_days_left_is_degraded() {
    let addr = tls_target(time::Duration::days(-80), days_and_a_half(6)).await;
    let outcome = checker().run(&tls(addr, 14, false), GUARD).await;
    assert_outcome(&outcome, Health::Degraded, "certificate expires in 6 days");
}

#[tokio::test]
async fn tls_expired_is_down() {
    let addr = tls_target(time::Duration::days(-90), -days_and_a_half(3)).await;
    let outcome = checker().run(&tls(addr, 14, false), GUARD).await;
    assert_outcome(&outcome, Health::Down, "certificate expired 3 days ago");

    // Expiry is the clearer reason even when trust is checked too.
    let outcome = checker().run(&tls(addr, 14, true), GUARD).await;
    assert_outcome(&outcome, Health::Down, "certificate expired 3 days ago");
}

#[tokio::test]
async fn tls_self_signed_with_verify_is_not_trusted() {
    let addr = tls_target(time::Duration::days(-1), days_and_a_half(60)).await;
    let outcome = checker().run(&tls(addr, 14, true), GUARD).await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert!(
        outcome
            .reason
            .starts_with("certificate not trusted: unknown issuer"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn tls_against_plain_tcp_fails_the_handshake() {
    let server = support::http_server().await;
    let outcome = checker().run(&tls(server.addr, 14, false), GUARD).await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert!(
        outcome.reason.starts_with("TLS handshake failed: "),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn tls_closed_port_is_refused() {
    let addr = support::closed_port().await;
    let outcome = checker().run(&tls(addr, 14, false), GUARD).await;
    assert_outcome(&outcome, Health::Down, "connection refused");
}

// ---------------------------------------------------------------- heartbeat

#[tokio::test]
async fn heartbeat_is_left_to_pushes() {
    let check = Check::Heartbeat(HeartbeatCheck {
        token: Secret("t0ken".into()),
        grace: Duration::from_secs(0),
    });
    let outcome = checker().run(&check, GUARD).await;
    assert_outcome(
        &outcome,
        Health::Unknown,
        "heartbeat monitors are judged by pushes",
    );
}
