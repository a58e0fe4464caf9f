//! `keel user add|list|remove` as an operator runs them: the real binary on a real config and
//! SQLite store, the password from standard input or KEEL_USER_PASSWORD.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::keel;

/// Runs keel with `stdin` piped in; returns (exit code, stdout, stderr).
fn run(cmd: &mut Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keel");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[[component]]\nid = \"web\"\nname = \"Web\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

async fn store(dir: &Path) -> std::sync::Arc<dyn keel_store::Store> {
    keel_store::open(&format!("sqlite://{}", dir.join("data/keel.db").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn users_are_added_listed_and_removed_with_hashed_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());

    let (code, out, err) = run(
        keel()
            .args(["user", "add", "ann", "--role", "responder", "--config"])
            .arg(&cfg),
        "correct horse battery staple\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added responder \"ann\""), "{out}");

    let (code, _, err) = run(
        keel()
            .args(["user", "add", "bob", "--role", "admin", "--config"])
            .arg(&cfg)
            .env("KEEL_USER_PASSWORD", "another long passphrase"),
        "",
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = run(keel().args(["user", "list", "--config"]).arg(&cfg), "");
    assert_eq!(code, 0);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("ann\tresponder\t"), "{out}");
    assert!(lines[1].starts_with("bob\tadmin\t"), "{out}");
    assert!(!out.contains("argon2"), "hashes are never listed: {out}");

    {
        let s = store(dir.path()).await;
        let ann = s.user_by_name("ann").await.unwrap().unwrap();
        assert!(
            ann.password_hash.starts_with("$argon2id$"),
            "{}",
            ann.password_hash
        );
        assert!(!ann.password_hash.contains("correct horse"));
        assert!(keel_server::console::password::verify(
            "correct horse battery staple",
            &ann.password_hash
        ));
        assert!(!keel_server::console::password::verify(
            "correct horse battery stapler",
            &ann.password_hash
        ));
        let bob = s.user_by_name("bob").await.unwrap().unwrap();
        assert!(keel_server::console::password::verify(
            "another long passphrase",
            &bob.password_hash
        ));
    }

    let (code, out, _) = run(
        keel().args(["user", "remove", "ann", "--config"]).arg(&cfg),
        "",
    );
    assert_eq!(code, 0);
    assert!(out.contains("removed \"ann\""), "{out}");
    let (_, out, _) = run(keel().args(["user", "list", "--config"]).arg(&cfg), "");
    assert!(!out.contains("ann"), "{out}");
    assert!(out.contains("bob"), "{out}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let add = |name: &str, role: &str| {
        let mut c = keel();
        c.args(["user", "add", name, "--role", role, "--config"])
            .arg(&cfg);
        c
    };

    let (code, _, err) = run(&mut add("ann", "responder"), "short\n");
    assert_eq!(code, 1);
    assert!(err.contains("at least 12"), "{err}");

    let (code, _, err) = run(&mut add("ann", "root"), "a long enough password\n");
    assert_eq!(code, 1);
    assert!(err.contains("unknown role \"root\""), "{err}");

    let (code, _, err) = run(&mut add(" ann", "viewer"), "a long enough password\n");
    assert_eq!(code, 1);
    assert!(err.contains("spaces"), "{err}");

    assert!(store(dir.path()).await.users().await.unwrap().is_empty());

    let (code, _, _) = run(&mut add("ann", "viewer"), "a long enough password\n");
    assert_eq!(code, 0);
    let (code, _, err) = run(&mut add("ann", "admin"), "a long enough password\n");
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        store(dir.path())
            .await
            .user_by_name("ann")
            .await
            .unwrap()
            .unwrap()
            .role,
        "viewer"
    );

    let (code, _, err) = run(
        keel().args(["user", "remove", "zed", "--config"]).arg(&cfg),
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("no user named \"zed\""), "{err}");

    let (code, _, err) = run(
        keel()
            .args(["user", "list", "--config"])
            .arg(dir.path().join("missing.toml")),
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read config"), "{err}");
}
