//! The harness's pieces run for real: the `target` process on a loopback port and the `bare`
//! loop against it with each client and connection mode, plus the clear errors for bad input.
//! No timing is asserted; only that work was done, counted and reported.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keel-bench"))
}

/// A running target, killed on drop.
struct Target {
    child: Child,
    base: String,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target() -> Target {
    let mut child = bench()
        .args(["target", "--listen", "127.0.0.1:0", "--until-stdin-closes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start target");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("target prints its address");
    let base = line.trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base:?}");
    Target { child, base }
}

fn bare(base: &str, client: &str, connections: &str) -> Output {
    bench()
        .args(["bare", "--url-base", base, "--requests-per-sec", "40"])
        .args(["--duration", "1s", "--warmup", "200ms", "--paths", "7"])
        .args(["--client", client, "--connections", connections])
        .output()
        .expect("run bare")
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "bare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report on stdout")
}

#[test]
fn bare_loops_reach_the_target_with_every_client_and_mode() {
    let t = target();
    for (client, connections) in [
        ("reqwest", "pooled"),
        ("hyper-util", "pooled"),
        ("reqwest", "fresh"),
        ("hyper-util", "fresh"),
    ] {
        let r = report(&bare(&t.base, client, connections));
        assert_eq!(r["client"], client);
        assert_eq!(r["connections"], connections);
        assert!(r["requests"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["failures"], 0, "{r}");
        assert!(r["cpu_secs"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn target_exits_when_its_stdin_closes() {
    let mut t = target();
    drop(t.child.stdin.take());
    let status = t.child.wait().expect("target exits");
    assert!(status.success(), "{status}");
}

#[test]
fn bare_loop_against_nothing_counts_failures_with_a_reason() {
    // Bind then drop a listener: nothing answers on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = report(&bare(
        &format!("http://127.0.0.1:{port}"),
        "reqwest",
        "pooled",
    ));
    assert!(r["failures"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["failures"], r["requests"], "{r}");
    assert!(r["first_failure"].as_str().unwrap().contains("/m/"), "{r}");
}

fn stderr_of(args: &[&str]) -> String {
    let out = bench().args(args).output().expect("run keel-bench");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let e = stderr_of(&[
        "bare",
        "--url-base",
        "http://127.0.0.1:9",
        "--requests-per-sec",
        "0",
        "--duration",
        "1s",
    ]);
    assert!(
        e.contains("--requests-per-sec must be a positive number"),
        "{e}"
    );

    let e = stderr_of(&[
        "bare",
        "--url-base",
        "http://127.0.0.1:9",
        "--requests-per-sec",
        "5",
        "--duration",
        "soon",
    ]);
    assert!(e.contains("write durations like 10s"), "{e}");

    let e = stderr_of(&[
        "run",
        "--monitors",
        "10",
        "--duration",
        "1s",
        "--bare",
        "curl:pooled",
    ]);
    assert!(e.contains("the client is reqwest or hyper-util"), "{e}");

    let e = stderr_of(&[
        "run",
        "--monitors",
        "10",
        "--duration",
        "1s",
        "--keel",
        "/nonexistent/keel",
    ]);
    assert!(e.contains("no keel binary at /nonexistent/keel"), "{e}");
}

#[test]
fn table_refuses_files_that_are_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"monitors": "many"}"#).unwrap();
    let e = stderr_of(&["table", bad.to_str().unwrap()]);
    assert!(e.contains("is not a keel-bench run result"), "{e}");
    let e = stderr_of(&["table", "/nonexistent/run.json"]);
    assert!(e.contains("cannot read /nonexistent/run.json"), "{e}");
}

#[test]
fn flat_out_loop_reports_its_pace() {
    let t = target();
    let out = bench()
        .args(["bare", "--url-base", &t.base, "--flat-out", "2"])
        .args(["--duration", "500ms", "--warmup", "100ms"])
        .output()
        .expect("run bare");
    let r = report(&out);
    assert_eq!(r["pace"]["flat-out"], 2, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
}

#[test]
fn soak_refuses_runs_it_could_not_judge() {
    // Nothing after the (default, 10 min) baseline to compare with.
    let e = stderr_of(&["soak", "--duration", "5m"]);
    assert!(
        e.contains("--duration must leave at least one --sample-every after --baseline"),
        "{e}"
    );
    let e = stderr_of(&["soak", "--duration", "11m", "--page-rate", "0"]);
    assert!(e.contains("--page-rate must be above 0"), "{e}");
    let e = stderr_of(&["soak", "--duration", "11m", "--keel", "/nonexistent/keel"]);
    assert!(e.contains("no keel binary at /nonexistent/keel"), "{e}");
}
