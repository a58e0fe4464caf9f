//! The `keel` binary as a user runs it: init, check, serve, token create, and the faults a
//! user meets first (bad config, database unreachable, data_dir not writable).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{keel, run, serve, spawn};

#[test]
fn init_writes_a_config_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.toml");
    let (code, out, err) = run(keel().args(["init", "--output"]).arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(keel().args(["check", "--config"]).arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok"), "{out}");
    // A second init refuses to overwrite.
    let (code, _, err) = run(keel().args(["init", "--output"]).arg(&path));
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn check_reports_every_problem_with_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[server]
listn = "127.0.0.1:8080"

[[component]]
id = "api"
name = "API"
depends_on = ["db"]

[[monitor]]
id = "api-health"
component = "apx"
kind = "http"
url = "http://127.0.0.1:9/"
interval = "often"
"#,
    )
    .unwrap();
    let (code, _out, err) = run(keel().args(["check", "--config"]).arg(&path));
    assert_eq!(code, 1, "{err}");
    let p = path.display().to_string();
    assert!(
        err.contains(&format!("{p}:2:")),
        "unknown key on line 2: {err}"
    );
    assert!(err.contains("listen"), "did-you-mean: {err}");
    assert!(
        err.contains(&format!("{p}:7:")),
        "depends_on on line 7: {err}"
    );
    assert!(
        err.contains(&format!("{p}:11:")),
        "unknown component on line 11: {err}"
    );
    assert!(
        err.contains(&format!("{p}:14:")),
        "bad duration on line 14: {err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn check_on_a_missing_file_says_how_to_make_one() {
    let (code, _, err) = run(keel().args(["check", "--config", "/nonexistent/keel.toml"]));
    assert_eq!(code, 1);
    assert!(err.contains("keel init"), "{err}");
}

fn write_config(dir: &Path, extra_server: &str) -> std::path::PathBuf {
    let path = dir.join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra_server}\n\n[[component]]\nid = \"keel\"\nname = \"Keel\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn serve_with_an_unreachable_database_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "database_url = \"postgres://keel:secret-pw@127.0.0.1:1/keel\"",
    );
    let (code, _, err) = run(keel().args(["serve", "--config"]).arg(&path));
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("postgres"), "{err}");
    assert!(!err.contains("secret-pw"), "password leaked: {err}");
}

#[test]
fn serve_with_an_unwritable_data_dir_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the data directory should be: even root cannot create it.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "x").unwrap();
    let path = dir.path().join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
            blocker.join("data").display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(keel().args(["serve", "--config"]).arg(&path));
    assert_eq!(code, 1);
    assert!(err.contains("data_dir"), "{err}");
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

#[test]
fn serve_answers_and_tokens_from_the_cli_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let (code, token, err) = run(keel()
        .args([
            "token", "create", "--role", "viewer", "--name", "ci", "--config",
        ])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("keel_"), "{token}");
    // The store keeps only the hash.
    let db = std::fs::read(dir.path().join("data/keel.db")).unwrap();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "token stored in clear"
    );
    let (code, _, err) = run(keel()
        .args(["token", "create", "--role", "root", "--config"])
        .arg(&path));
    assert_eq!(code, 1);
    assert!(err.contains("viewer, responder or admin"), "{err}");

    let (code, probe, err) = run(keel()
        .args(["token", "create", "--role", "probe", "--config"])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("created probe token"), "{err}");

    let served = serve(&path, Some("bootstrap-admin-token-123456"));
    let (status, body) = get(&format!("{}/healthz", served.base), None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&format!("{}/api/v1/monitors", served.base), Some(&token));
    assert_eq!(status, 200);
    // A probe token only reports: the management API refuses it.
    let (status, body) = get(
        &format!("{}/api/v1/monitors", served.base),
        Some(probe.trim()),
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = get(
        &format!("{}/api/v1/monitors", served.base),
        Some("bootstrap-admin-token-123456"),
    );
    assert_eq!(status, 200);
    let (status, _) = get(&format!("{}/api/v1/monitors", served.base), None);
    assert_eq!(status, 401);
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let mut served = serve(&path, None);
    let pid = served.child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ok.success());
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = served.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("keel exited after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn incident_verbs_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[page]\nlocales = [\"en\", \"ja\"]\n\n[[component]]\nid = \"api\"\nname = \"Public API\"\nusers = 1200\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let admin = "cli-admin-token-0123456789";
    let served = serve(&path, Some(admin));
    let cli = |args: &[&str]| {
        run(keel()
            .args(args)
            .args(["--url", &served.base])
            .env("KEEL_TOKEN", admin))
    };
    let (code, out, err) = cli(&[
        "incident",
        "declare",
        "--title",
        "Power cut",
        "--component",
        "api",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("#1 Power cut"), "{out}");
    let (code, out, _) = cli(&["incident", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Power cut") && out.contains("1200 users"),
        "{out}"
    );
    let (code, _, err) = cli(&["incident", "ack", "1"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cli(&["incident", "show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ack = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "acknowledged")
        .cloned()
        .unwrap();
    assert_eq!(ack["via"], "cli", "the timeline says how: {ack}");
    let (code, _, err) = cli(&["incident", "note", "1", "Generator starting"]);
    assert_eq!(code, 0, "{err}");
    // A refused command says why and exits non-zero.
    let (code, _, err) = cli(&["incident", "ack", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("409") && err.to_lowercase().contains("already"),
        "{err}"
    );
    let (code, _, err) = cli(&["incident", "state", "1", "sideways"]);
    assert_eq!(code, 1);
    assert!(err.contains("state"), "{err}");
    // Publishing from the terminal: Keel's draft, then words of one's own.
    let (code, out, err) = cli(&["incident", "show", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let draft = v["drafts"][0]["id"].as_u64().expect("a drafted update");
    let (code, _, err) = cli(&["incident", "publish", "1", "--draft", &draft.to_string()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&[
        "incident",
        "update",
        "1",
        "--status",
        "identified",
        "--en",
        "Power is being restored.",
        "--ja",
        "電源を復旧しています。",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&[
        "incident",
        "update",
        "1",
        "--status",
        "identified",
        "--body",
        "host 10.0.0.7 lost power",
    ]);
    assert_eq!(code, 1, "the disclosure check refuses an IP address");
    assert!(err.contains("409"), "{err}");
    let (code, out, _) = cli(&["incident", "show", "1", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["public_updates"].as_array().unwrap().len(), 2, "{v}");
    let (code, _, err) = cli(&["incident", "resolve", "1", "--reason", "power back"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&["postmortem", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Power cut"), "{out}");
    let (code, out, _) = cli(&["incident", "show", "1", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "resolved");
    // Without a token: a clear error.
    let (code, _, err) = run(keel().args(["incident", "list", "--url", &served.base]));
    assert_eq!(code, 1);
    assert!(err.contains("token"), "{err}");
}

#[test]
fn export_writes_the_page_json_feeds_and_badges() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let out = dir.path().join("site");
    let (code, stdout, err) = run(keel()
        .args(["export", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote"), "{stdout}");
    for f in [
        "index.html",
        "en/index.html",
        "api/v2/summary.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances/upcoming.json",
        "history.atom",
        "history.rss",
        "badge.svg",
        "badge/keel.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("api/v2/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["components"][0]["id"], "keel");
    // Exporting into something that is not a folder fails clearly.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let (code, _, err) = run(keel()
        .args(["export", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(blocker.join("site")));
    assert_eq!(code, 1);
    assert!(err.contains("cannot create"), "{err}");
}

#[test]
fn demo_starts_watching_its_shop_with_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = keel();
    cmd.args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"));
    let served = spawn(cmd);
    let (status, body) = get(&format!("{}/api/v2/summary.json", served.base), None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["shop", "checkout"]);
    let (status, page) = get(&format!("{}/?lang=ja", served.base), None);
    assert_eq!(status, 200);
    assert!(page.contains("ショップ"), "{page}");
}

/// The workspace has two binaries (keel, keel-bench), so a bare `cargo run` cannot choose and
/// fails: every `cargo run` the README tells a newcomer to type must name its package.
#[test]
fn every_cargo_run_in_the_readme_names_its_package() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let runs: Vec<&str> = readme.lines().filter(|l| l.contains("cargo run")).collect();
    assert!(!runs.is_empty(), "the README has no cargo run command");
    for line in runs {
        assert!(line.contains(" -p "), "names no package: {line}");
    }
}

#[test]
fn oncall_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.toml");
    std::fs::write(
        &path,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
data_dir = "{}"

[[component]]
id = "api"
name = "Public API"

[[person]]
id = "ann"
name = "Ann Sato"
timezone = "Asia/Tokyo"
contacts = [ {{ kind = "email", address = "ann@example.com" }} ]

[[person]]
id = "carol"
name = "Carol Ito"
timezone = "Europe/Berlin"
contacts = [ {{ kind = "email", address = "carol@example.com" }} ]

[[schedule]]
id = "primary"
people = ["ann", "carol"]
rotation = "1000w"
start = "2026-01-05T09:00:00+09:00"
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let admin = "cli-admin-token-0123456789";
    let served = serve(&path, Some(admin));
    let cli = |args: &[&str]| {
        run(keel()
            .args(args)
            .args(["--url", &served.base])
            .env("KEEL_TOKEN", admin))
    };
    let (code, out, err) = cli(&["oncall"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("primary") && out.contains("Ann Sato (ann)"),
        "{out}"
    );
    let (code, out, err) = cli(&[
        "oncall",
        "override",
        "--schedule",
        "primary",
        "--person",
        "carol",
        "--for",
        "8h",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("carol on call for primary"), "{out}");
    let (code, out, _) = cli(&["oncall"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Carol Ito (carol)") && out.contains("[override 1]"),
        "{out}"
    );
    // Overlapping, unknown and malformed covers are refused with the reason.
    let (code, _, err) = cli(&[
        "oncall",
        "override",
        "--schedule",
        "primary",
        "--person",
        "ann",
        "--for",
        "1h",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("409") && err.contains("overlaps override 1"),
        "{err}"
    );
    let (code, _, err) = cli(&[
        "oncall",
        "override",
        "--schedule",
        "nightly",
        "--person",
        "ann",
        "--for",
        "1h",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("schedule") && err.contains("primary"), "{err}");
    let (code, _, err) = cli(&[
        "oncall",
        "override",
        "--schedule",
        "primary",
        "--person",
        "ann",
        "--until",
        "soon",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--until") && err.contains("RFC 3339"), "{err}");
    let (code, out, _) = cli(&["oncall", "overrides"]);
    assert_eq!(code, 0);
    assert!(out.contains("override 1: carol"), "{out}");
    let (code, _, err) = cli(&["oncall", "remove", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli(&["oncall"]);
    assert_eq!(code, 0);
    assert!(out.contains("Ann Sato (ann)"), "{out}");
    let (code, _, err) = cli(&["oncall", "remove", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}
