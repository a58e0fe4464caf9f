//! Child processes of a benchmark run (the target, Keel, the bare loops): started with their
//! output captured line by line, stopped at the end, and killed if the harness is dropped
//! early — a run that fails half-way must not leave a Keel or a target behind.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Lines of a child's output kept to explain a failure.
const TAIL_LINES: usize = 40;

/// A running child. Dropping it kills the process.
pub struct Proc {
    name: String,
    pid: u32,
    child: Child,
    /// Held so the child sees end-of-file on stdin only when we let go (the target exits then).
    stdin: Option<ChildStdin>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// The lines a child writes on one stream, as they arrive.
pub type Lines = mpsc::UnboundedReceiver<String>;

impl Proc {
    /// Starts `cmd` with stdout and stderr piped (and stdin piped, kept open), returning the
    /// process and its stdout and stderr lines. Every line also goes into a short tail used
    /// in error messages.
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<(Proc, Lines, Lines)> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.as_std().get_program()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("{name} exited before it could be watched"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let out = forward(child.stdout.take(), tail.clone());
        let err = forward(child.stderr.take(), tail.clone());
        let stdin = child.stdin.take();
        Ok((
            Proc {
                name: name.to_string(),
                pid,
                child,
                stdin,
                tail,
            },
            out,
            err,
        ))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines the child wrote, for an error message.
    pub fn tail(&self) -> String {
        match self.tail.lock() {
            Ok(t) if !t.is_empty() => {
                let lines: Vec<&str> = t.iter().map(String::as_str).collect();
                format!("last output of {}:\n  {}", self.name, lines.join("\n  "))
            }
            _ => format!("{} wrote nothing", self.name),
        }
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the child to exit on its own, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => anyhow::bail!("{} still running after {limit:?}", self.name),
        }
    }

    /// Kills the child at once (SIGKILL), as a crash would, and reaps it.
    pub async fn kill_now(&mut self) -> anyhow::Result<()> {
        self.child
            .start_kill()
            .with_context(|| format!("cannot kill {}", self.name))?;
        let _ = self.child.wait().await;
        Ok(())
    }

    /// Asks the child to stop (SIGTERM, then closing its stdin) and kills it if it has not
    /// exited within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        // The workspace forbids unsafe code, so the signal goes through kill(1).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        self.stdin = None;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn forward(
    stream: Option<impl AsyncRead + Unpin + Send + 'static>,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> Lines {
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(stream) = stream {
        tokio::spawn(async move {
            // Always drained to the end: a child blocked on a full pipe would stall the run.
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut t) = tail.lock() {
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line.clone());
                }
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Waits up to `limit` for a line on `lines` from which `pick` extracts something.
pub async fn wait_for_line<T>(
    lines: &mut Lines,
    limit: Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(limit, async {
        while let Some(line) = lines.recv().await {
            if let Some(found) = pick(&line) {
                return Some(found);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// How long the loopback target may take to print its address.
const TARGET_START_LIMIT: Duration = Duration::from_secs(15);

/// Starts `exe target` on a random loopback port with `extra` arguments; returns the process
/// (which stops when dropped) and the base URL it printed.
pub async fn spawn_target(
    exe: &std::path::Path,
    extra: &[String],
) -> anyhow::Result<(Proc, String)> {
    let mut cmd = Command::new(exe);
    cmd.args(["target", "--listen", "127.0.0.1:0", "--until-stdin-closes"])
        .args(extra);
    let (target, mut out, _) = Proc::spawn("target", cmd)?;
    let base = wait_for_line(&mut out, TARGET_START_LIMIT, |l| {
        l.starts_with("http://").then(|| l.trim().to_string())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("the target did not print its address\n{}", target.tail()))?;
    Ok((target, base))
}
