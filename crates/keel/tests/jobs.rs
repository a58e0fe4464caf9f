//! A background job that dies stops Keel rather than leaving it half-alive: the job is named
//! in the log, the shutdown is the orderly one SIGTERM takes (this instance leaves the
//! cluster's table as it lets go of its leases), and the exit status is non-zero.
//!
//! No fault from outside ends a job (each retries what fails), so the job is killed through
//! the test-only `KEEL_TEST_KILL_JOB` setting: it panics in its own task, for real.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

mod support;

#[test]
fn a_dying_job_stops_keel_naming_it_with_a_failing_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[[component]]\nid = \"web\"\nname = \"Website\"\n",
            data.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("keel.log");
    let mut cmd = support::keel();
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env(keel_server::jobs::KILL_FOR_TESTS, "incidents");
    let mut keel = support::spawn_logged(cmd, Some(log.clone()));

    let status = wait(&mut keel.child);
    assert_eq!(status.code(), Some(1), "{status}");
    // The last line Keel writes is the error; the log is complete once it is there.
    let text = read_until(&log, "error: ");
    assert!(
        text.contains("job=incidents")
            && text.contains("panicked: killed for a test")
            && text.contains("while Keel was running: Keel stops"),
        "{text}"
    );
    assert!(
        text.contains("error: the incidents job panicked: killed for a test"),
        "{text}"
    );
    // The orderly shutdown ran to its end: the lease job let go and removed this instance.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt.block_on(async {
        let url = format!("sqlite://{}", data.join("keel.db").display());
        let store = keel_store::open(&url).await.unwrap();
        store
            .live_instances(Duration::from_secs(24 * 3600))
            .await
            .unwrap()
    });
    assert!(left.is_empty(), "{left:?}\n{text}");
}

/// The process's exit status; a Keel still running after a minute fails the test.
fn wait(child: &mut std::process::Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "keel is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The log once it holds `line_start` at the start of a line (its copy runs on a thread).
fn read_until(log: &std::path::Path, line_start: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.starts_with(line_start)) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
