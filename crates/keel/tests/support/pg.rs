//! A private PostgreSQL server for one test: `initdb` into a temporary directory, started with
//! `pg_ctl` on a free port bound to 127.0.0.1 only (trust authentication, its socket in that
//! directory), so a test may stop and restart it without disturbing anything else on the
//! machine. Stopped and removed when dropped, also when the test fails.
//!
//! The binaries are looked for in `KEEL_TEST_PG_BIN`, then `/usr/lib/postgresql/*/bin` (the
//! newest), then `pg_config --bindir`. `initdb` refuses to run as root, so as root every
//! command runs as the `postgres` user (`runuser`). When no server can be started, [`start`]
//! says `SKIPPED` on stderr and returns `None`, unless `KEEL_REQUIRE_POSTGRES=1` (CI), where
//! it fails the test.
//!
//! [`start`]: PrivatePg::start

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivatePg {
    bin: PathBuf,
    /// Run every command as `postgres` (this process is root).
    as_postgres: bool,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    /// Holds the data directory, the socket and the log; removed last.
    dir: tempfile::TempDir,
}

impl PrivatePg {
    /// Starts a fresh server, or skips (see the module docs).
    pub fn start() -> Option<PrivatePg> {
        match Self::try_start() {
            Ok(pg) => Some(pg),
            Err(reason) => {
                if std::env::var("KEEL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!(
                        "cannot start a private PostgreSQL ({reason}), and \
                         KEEL_REQUIRE_POSTGRES=1 requires it: install the server binaries \
                         (initdb, pg_ctl) or point KEEL_TEST_PG_BIN at them"
                    );
                }
                eprintln!("SKIPPED: cannot start a private PostgreSQL ({reason})");
                None
            }
        }
    }

    fn try_start() -> Result<PrivatePg, String> {
        let bin = find_bin().ok_or("no initdb/pg_ctl found")?;
        let root = std::fs::metadata("/proc/self")
            .map_err(|e| e.to_string())?
            .uid()
            == 0;
        if root {
            let ok = Command::new("runuser")
                .args(["-u", "postgres", "--", "true"])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(
                    "running as root, and cannot run commands as the postgres user \
                            (initdb refuses root)"
                        .into(),
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("keel-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if root {
            run(Command::new("chown")
                .args(["postgres:", "--"])
                .arg(dir.path()))?;
        }
        let pg = PrivatePg {
            bin,
            as_postgres: root,
            port: free_port()?,
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            dir,
        };
        run(pg.cmd("initdb").arg("-D").arg(&pg.data).args([
            "-A",
            "trust",
            "-U",
            "keel",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        pg.start_again()?;
        Ok(pg)
    }

    /// The URL Keel connects with.
    pub fn url(&self) -> String {
        format!("postgres://keel@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`-m fast`: connections are cut, as a database failover would).
    pub fn stop(&self) {
        run(self.ctl().args(["stop", "-m", "fast", "-w", "-t", "60"])).expect("pg_ctl stop");
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&self) -> Result<(), String> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .ctl()
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "-o", &opts, "start"]))
    }

    /// Stopped (`-m fast`: connections cut) and started again, as `pg_ctl restart -m fast`
    /// does — but started with the log file: `pg_ctl restart` would leave the server writing
    /// to (and holding open) the pipes this process reads its output from.
    pub fn restart(&self) {
        self.stop();
        self.start_again().expect("start PostgreSQL again");
    }

    /// The server's own log, for a failing test's output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `sql` with psql and returns what it printed (or why not): for diagnosis.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "keel", "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("psql: {e}"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn ctl(&self) -> Command {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(&self.data);
        c
    }

    fn cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        // Immediate: nothing of this server is worth a clean shutdown.
        let _ = self
            .ctl()
            .args(["stop", "-m", "immediate", "-w", "-t", "30"])
            .output();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{:?} {:?} failed: {}{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn find_bin() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("KEEL_TEST_PG_BIN").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    // The newest version installed (by number: 9.6 < 10 < 16).
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has(&d).then_some(d)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}
