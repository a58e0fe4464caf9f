//! The `keel` binary as the tests run it: a command with a clean environment, and a served
//! Keel on a random loopback port that is killed when the test drops it.

#![allow(dead_code)]

pub mod pg;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The built binary, with none of the caller's Keel settings leaking in.
pub fn keel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keel"));
    c.env_remove("KEEL_ADMIN_TOKEN")
        .env_remove("KEEL_ADMIN_TOKEN_FILE")
        .env_remove("KEEL_CONFIG")
        .env_remove("KEEL_USER_PASSWORD")
        .env("KEEL_LOG", "info");
    c
}

/// Runs to completion; (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run keel");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `keel serve` running in the background; killed when dropped.
pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Served {
    /// SIGKILL: no shutdown work at all, as a power cut would do.
    pub fn kill9(&mut self) {
        Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process is frozen where it is (sockets open, nothing runs), as a long GC
    /// pause, a hung VM or a debugger would do.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: a paused process runs on from where it was.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.child.id());
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `keel serve --config path` (with `admin` as KEEL_ADMIN_TOKEN) and waits until it
/// says where it serves.
pub fn serve(path: &Path, admin: Option<&str>) -> Served {
    let mut cmd = keel();
    cmd.args(["serve", "--config"]).arg(path);
    if let Some(t) = admin {
        cmd.env("KEEL_ADMIN_TOKEN", t);
    }
    spawn(cmd)
}

/// Starts a serving verb (`serve`, `demo`) and waits until it says where it serves.
pub fn spawn(cmd: Command) -> Served {
    spawn_logged(cmd, None)
}

/// [`serve`], with everything the process writes on stderr also written to `log` (to read
/// when a test fails).
pub fn serve_logged(path: &Path, admin: Option<&str>, log: &Path) -> Served {
    let mut cmd = keel();
    cmd.args(["serve", "--config"]).arg(path);
    if let Some(t) = admin {
        cmd.env("KEEL_ADMIN_TOKEN", t);
    }
    spawn_logged(cmd, Some(log.to_path_buf()))
}

/// [`spawn`], copying stderr to `log` when given.
pub fn spawn_logged(mut cmd: Command, log: Option<PathBuf>) -> Served {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn keel");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut file = log.map(|p| std::fs::File::create(p).expect("create the log file"));
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some(i) = line.find("serving on http://") {
                let rest = &line[i + "serving on ".len()..];
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(url.to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("keel printed its address");
    Served { child, base }
}
