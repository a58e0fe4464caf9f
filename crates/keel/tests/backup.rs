//! `keel backup` and `keel restore` end to end, with the real binary: a Keel serving on SQLite
//! with an incident, a user and a token is backed up while it serves, restored into a private
//! PostgreSQL, and `keel serve` on PostgreSQL shows the same incidents through the API.
//!
//! PostgreSQL is a private server for this test (tests/support/pg.rs): skipped visibly without
//! the server binaries, a failure with `KEEL_REQUIRE_POSTGRES=1`.

mod support;

use std::path::Path;

use serde_json::Value;
use support::pg::PrivatePg;
use support::{keel, run, serve, Served};

const ADMIN: &str = "backup-admin-token-0123456789";

const BODY: &str = "\n[page]\nlocales = [\"en\", \"ja\"]\n\n[[component]]\nid = \"api\"\nname = \"Public API\"\nusers = 1200\n";

fn write_config(path: &Path, data_dir: &Path, database_url: Option<&str>) {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
        data_dir.display()
    );
    if let Some(url) = database_url {
        text.push_str(&format!("database_url = \"{url}\"\n"));
    }
    text.push_str(BODY);
    std::fs::write(path, text).unwrap();
}

/// A verb against a served Keel's API with `token`; (code, stdout, stderr).
fn api(served: &Served, token: &str, args: &[&str]) -> (i32, String, String) {
    run(keel()
        .args(args)
        .args(["--url", &served.base])
        .env("KEEL_TOKEN", token))
}

fn show(served: &Served, token: &str, id: &str) -> Value {
    let (code, out, err) = api(served, token, &["incident", "show", id, "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// What must survive the move: the incident's identity, state and whole timeline.
fn essence(v: &Value) -> Value {
    serde_json::json!({
        "id": v["id"],
        "title": v["title"],
        "state": v["state"],
        "severity": v["severity"],
        "timeline": v["timeline"],
    })
}

#[test]
fn a_sqlite_deployment_moves_to_postgres_with_backup_and_restore() {
    let Some(pg) = PrivatePg::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_cfg = dir.path().join("sqlite.toml");
    let pg_cfg = dir.path().join("pg.toml");
    write_config(&sqlite_cfg, &dir.path().join("sqlite-data"), None);
    write_config(&pg_cfg, &dir.path().join("pg-data"), Some(&pg.url()));
    let file = dir.path().join("keel.backup");

    // A Keel on SQLite with an incident (declared, acknowledged, noted), a user and a token.
    let served = serve(&sqlite_cfg, Some(ADMIN));
    for args in [
        &[
            "incident",
            "declare",
            "--title",
            "Power cut",
            "--component",
            "api",
        ][..],
        &["incident", "ack", "1"],
        &["incident", "note", "1", "Generator starting — 発電機"],
        &[
            "incident",
            "declare",
            "--title",
            "Slow search",
            "--component",
            "api",
        ],
    ] {
        let (code, _, err) = api(&served, ADMIN, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (code, _, err) = run(keel()
        .args(["user", "add", "ann", "--role", "admin", "--config"])
        .arg(&sqlite_cfg)
        .env("KEEL_USER_PASSWORD", "a long enough passphrase"));
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = run(keel()
        .args([
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "dashboard",
            "--config",
        ])
        .arg(&sqlite_cfg));
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    let before: Vec<Value> = ["1", "2"]
        .iter()
        .map(|id| essence(&show(&served, ADMIN, id)))
        .collect();
    assert_eq!(before[0]["title"], "Power cut");
    let timeline = before[0]["timeline"].as_array().expect("a timeline");
    assert!(
        timeline.len() >= 3,
        "opened, acknowledged, noted: {timeline:?}"
    );
    let (_, list_before, _) = api(&served, ADMIN, &["incident", "list"]);
    assert!(list_before.contains("Power cut") && list_before.contains("Slow search"));

    // The backup is taken while that Keel serves.
    let (code, out, err) = run(keel()
        .args(["backup", "--config"])
        .arg(&sqlite_cfg)
        .arg("--out")
        .arg(&file));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from sqlite"), "{out}");
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(
        first.starts_with("{\"format\":\"keel-backup\",\"version\":1,"),
        "{first}"
    );
    drop(served);

    // Restored into PostgreSQL: once; a second time is refused and changes nothing.
    let restore = || {
        run(keel()
            .args(["restore", "--config"])
            .arg(&pg_cfg)
            .arg("--in")
            .arg(&file))
    };
    let (code, out, err) = restore();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("restored") && out.contains("from sqlite"),
        "{out}"
    );
    let (code, _, err) = restore();
    assert_eq!(code, 1);
    assert!(
        err.contains("not empty") && err.contains("--force") && err.contains("keeps what it held"),
        "{err}"
    );

    // A malformed file is refused with the line that is wrong.
    let bad = dir.path().join("bad.backup");
    std::fs::write(&bad, first.replacen("\n[", "\n[oops", 1)).unwrap();
    let (code, _, err) = run(keel()
        .args(["restore", "--force", "--config"])
        .arg(&pg_cfg)
        .arg("--in")
        .arg(&bad));
    assert_eq!(code, 1);
    assert!(err.contains("malformed backup at line"), "{err}");

    // Keel on PostgreSQL shows the same incidents, and the restored token and user work.
    let served = serve(&pg_cfg, Some(ADMIN));
    let after: Vec<Value> = ["1", "2"]
        .iter()
        .map(|id| essence(&show(&served, ADMIN, id)))
        .collect();
    assert_eq!(after, before);
    let (code, list_after, err) = api(&served, &token, &["incident", "list"]);
    assert_eq!(code, 0, "the restored viewer token works: {err}");
    assert!(list_after.contains("Power cut") && list_after.contains("Slow search"));
    let (code, users, _) = run(keel().args(["user", "list", "--config"]).arg(&pg_cfg));
    assert_eq!(code, 0);
    assert!(users.contains("ann"), "{users}");
    // New incidents get new ids.
    let (code, out, err) = api(
        &served,
        ADMIN,
        &[
            "incident",
            "declare",
            "--title",
            "After the move",
            "--component",
            "api",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("#3 After the move"), "{out}");

    // And back: a backup of the PostgreSQL Keel, taken while it serves, holds the same rows.
    let again = dir.path().join("again.backup");
    let (code, out, err) = run(keel()
        .args(["backup", "--config"])
        .arg(&pg_cfg)
        .arg("--out")
        .arg(&again));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from postgres"), "{out}");
    drop(served);
}

#[test]
fn backup_of_a_missing_database_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("keel.toml");
    write_config(&cfg, &dir.path().join("nothing-here"), None);
    let out = dir.path().join("keel.backup");
    let (code, _, err) = run(keel()
        .args(["backup", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 1);
    assert!(err.contains("no SQLite database"), "{err}");
    assert!(!out.exists());
    assert!(!dir.path().join("keel.backup.partial").exists());
}
