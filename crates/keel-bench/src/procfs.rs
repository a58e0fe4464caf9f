//! Readings from Linux `/proc` and the system clocks: a process's CPU time and peak memory,
//! the machine's busy time, the bare loop's own CPU time, and the size of a data directory.
//!
//! The harness measures other processes (Keel, the target) from outside, so it reads their
//! `/proc/PID/stat` counters rather than asking them; the parsers are separate from the reads so
//! that malformed text can be tested without a process.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `USER_HZ` assumed when `getconf CLK_TCK` cannot be run; it is 100 on every mainstream Linux.
const DEFAULT_CLK_TCK: u64 = 100;

/// Why a `/proc` reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unexpected contents in {what}: {reason}")]
    Malformed { what: String, reason: String },
}

fn malformed(what: &str, reason: impl Into<String>) -> ProcError {
    ProcError::Malformed {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn read(path: PathBuf) -> Result<String, ProcError> {
    std::fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

/// Clock ticks per second of the `/proc` CPU counters, asked of `getconf` once.
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

/// User plus system CPU ticks of a whole process (all its threads, living and exited), from the
/// text of `/proc/PID/stat`.
pub fn parse_stat_cpu_ticks(what: &str, stat: &str) -> Result<u64, ProcError> {
    // The command name (field 2) is in parentheses and may itself hold spaces and ')', so the
    // numeric fields are counted from the last ')'. After it come field 3 (state) onwards;
    // utime and stime are fields 14 and 15.
    let close = stat
        .rfind(')')
        .ok_or_else(|| malformed(what, "no ')' closing the command name"))?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, ProcError> {
        let raw = fields.get(n - 3).ok_or_else(|| {
            malformed(what, format!("only {} fields after the name", fields.len()))
        })?;
        raw.parse::<u64>()
            .map_err(|_| malformed(what, format!("field {n} is {raw:?}, not a tick count")))
    };
    Ok(field(14)? + field(15)?)
}

/// The fields of `/proc/PID/stat` used to add up a server's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFields {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime.
    pub ticks: u64,
    /// cutime + cstime: the CPU of children it has waited for (a server's exited workers).
    pub children_ticks: u64,
}

pub fn parse_stat_fields(what: &str, stat: &str) -> Result<StatFields, ProcError> {
    let open = stat
        .find('(')
        .ok_or_else(|| malformed(what, "no '(' opening the command name"))?;
    let close = stat
        .rfind(')')
        .ok_or_else(|| malformed(what, "no ')' closing the command name"))?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, ProcError> {
        let raw = fields.get(n - 3).ok_or_else(|| {
            malformed(what, format!("only {} fields after the name", fields.len()))
        })?;
        raw.parse::<u64>()
            .map_err(|_| malformed(what, format!("field {n} is {raw:?}, not a number")))
    };
    Ok(StatFields {
        comm: stat[open + 1..close].to_string(),
        ppid: field(4)? as u32,
        ticks: field(14)? + field(15)?,
        children_ticks: field(16)? + field(17)?,
    })
}

/// CPU ticks of process `root` and of its children, each with its reaped children's (a
/// PostgreSQL server: the postmaster holds the CPU of backends that have exited, the living
/// backends and helpers hold their own). Processes vanishing during the scan count 0.
pub fn ticks_of_tree(root: u32) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{root}/stat"));
    let text = read(path.clone())?;
    let own = parse_stat_fields(&path.display().to_string(), &text)?;
    let mut total = own.ticks + own.children_ticks;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Ok(total);
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Ok(f) = parse_stat_fields("stat", &text) {
            if f.ppid == root {
                total += f.ticks + f.children_ticks;
            }
        }
    }
    Ok(total)
}

/// CPU ticks of every process whose command name is `comm`, their reaped children's included.
/// Processes vanishing during the scan count 0.
pub fn ticks_of_processes_named(comm: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let path = PathBuf::from(format!("/proc/{pid}/stat"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(f) = parse_stat_fields("stat", &text) {
            if f.comm == comm {
                total += f.ticks + f.children_ticks;
            }
        }
    }
    total
}

/// One `Key:   N kB` line of `/proc/PID/status`, in KiB.
pub fn parse_status_kib(what: &str, status: &str, key: &str) -> Result<u64, ProcError> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        .ok_or_else(|| malformed(what, format!("no {key} line")))?;
    let mut parts = line.split_whitespace();
    let value = parts
        .next()
        .ok_or_else(|| malformed(what, format!("{key} has no value")))?;
    if parts.next() != Some("kB") {
        return Err(malformed(what, format!("{key} is not in kB")));
    }
    value
        .parse::<u64>()
        .map_err(|_| malformed(what, format!("{key} value {value:?} is not a number")))
}

/// Busy and total CPU ticks of the whole machine, summed over its cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
}

/// The aggregate `cpu` line of `/proc/stat`.
pub fn parse_machine_ticks(what: &str, stat: &str) -> Result<MachineTicks, ProcError> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| malformed(what, "no aggregate 'cpu' line"))?;
    let values = line
        .split_whitespace()
        .skip(1)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| malformed(what, format!("cpu field {v:?} is not a number")))
        })
        .collect::<Result<Vec<u64>, _>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
    // inside user, so it is not added again.
    if values.len() < 8 {
        return Err(malformed(
            what,
            format!("cpu line has {} fields, expected at least 8", values.len()),
        ));
    }
    let idle = values[3] + values[4];
    let busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7];
    Ok(MachineTicks {
        busy,
        total: busy + idle,
    })
}

/// CPU ticks used so far by process `pid`.
pub fn process_cpu_ticks(pid: u32) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let text = read(path.clone())?;
    parse_stat_cpu_ticks(&path.display().to_string(), &text)
}

/// Peak resident set size of process `pid` so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = read(path.clone())?;
    parse_status_kib(&path.display().to_string(), &text, "VmHWM")
}

/// Resident set size of process `pid` now (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = read(path.clone())?;
    parse_status_kib(&path.display().to_string(), &text, "VmRSS")
}

/// Busy and total ticks of the machine so far.
pub fn machine_ticks() -> Result<MachineTicks, ProcError> {
    let path = PathBuf::from("/proc/stat");
    let text = read(path.clone())?;
    parse_machine_ticks("/proc/stat", &text)
}

/// CPU time used so far by this whole process, to the nanosecond. Used by the bare loop, whose
/// per-request cost is small enough that 10 ms ticks would blur it over a one-minute run.
pub fn self_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(t.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// Total size in bytes of the regular files under `dir` (Keel's SQLite file with its WAL and
/// shared-memory files, and anything else it keeps there).
pub fn dir_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            // A file removed between listing and stat (a SQLite journal, say) simply counts 0.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line from this machine, with a command name holding a space and a parenthesis.
    const STAT: &str = "25365 (keel (x) y) S 25360 25365 25360 0 -1 4194304 1200 0 0 0 \
                        731 214 0 0 20 0 6 0 889911 123456789 4567 18446744073709551615 1 1 0 0 0 0 \
                        0 4096 17663 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_sums_utime_and_stime_past_an_awkward_name() {
        assert_eq!(parse_stat_cpu_ticks("t", STAT).unwrap(), 731 + 214);
    }

    #[test]
    fn stat_fields_name_parent_and_children() {
        let f = parse_stat_fields("t", STAT).unwrap();
        assert_eq!(f.comm, "keel (x) y");
        assert_eq!(f.ppid, 25360);
        assert_eq!(f.ticks, 731 + 214);
        assert_eq!(f.children_ticks, 0);
        let reaped = STAT.replace(" 731 214 0 0 ", " 731 214 5 7 ");
        assert_eq!(parse_stat_fields("t", &reaped).unwrap().children_ticks, 12);
    }

    #[test]
    fn tree_of_self_counts_at_least_self() {
        let me = std::process::id();
        // Self first: the tree, read after, has only had more time to run.
        let own = process_cpu_ticks(me).unwrap();
        assert!(ticks_of_tree(me).unwrap() >= own);
        assert!(ticks_of_tree(u32::MAX).is_err());
    }

    #[test]
    fn stat_without_closing_paren_is_refused() {
        let e = parse_stat_cpu_ticks("t", "25365 (keel S 1 2 3").unwrap_err();
        assert!(e.to_string().contains("no ')'"), "{e}");
    }

    #[test]
    fn truncated_stat_is_refused() {
        let e = parse_stat_cpu_ticks("t", "25365 (keel) S 1 2 3 4").unwrap_err();
        assert!(e.to_string().contains("fields after the name"), "{e}");
    }

    #[test]
    fn non_numeric_utime_is_refused() {
        let bad = STAT.replace(" 731 ", " lots ");
        let e = parse_stat_cpu_ticks("t", &bad).unwrap_err();
        assert!(e.to_string().contains("field 14"), "{e}");
    }

    #[test]
    fn real_self_stat_parses() {
        let ticks = process_cpu_ticks(std::process::id()).unwrap();
        assert!(ticks < u64::MAX);
    }

    const STATUS: &str =
        "Name:\tkeel\nVmPeak:\t  900000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t   40000 kB\n";

    #[test]
    fn status_reads_vmhwm() {
        assert_eq!(parse_status_kib("t", STATUS, "VmHWM").unwrap(), 41234);
    }

    #[test]
    fn status_missing_key_wrong_unit_or_value_is_refused() {
        let e = parse_status_kib("t", "Name:\tkeel\n", "VmHWM").unwrap_err();
        assert!(e.to_string().contains("no VmHWM line"), "{e}");
        let e = parse_status_kib("t", "VmHWM:\t 12 MB\n", "VmHWM").unwrap_err();
        assert!(e.to_string().contains("not in kB"), "{e}");
        let e = parse_status_kib("t", "VmHWM:\t big kB\n", "VmHWM").unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = parse_status_kib("t", "VmHWM:\n", "VmHWM").unwrap_err();
        assert!(e.to_string().contains("no value"), "{e}");
    }

    #[test]
    fn real_self_status_parses() {
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn machine_ticks_from_real_shape() {
        let stat = "cpu  42057 0 10775 70222 1237 0 110 23 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let t = parse_machine_ticks("t", stat).unwrap();
        assert_eq!(t.busy, 42057 + 10775 + 110 + 23);
        assert_eq!(t.total, t.busy + 70222 + 1237);
    }

    #[test]
    fn machine_ticks_malformed_is_refused() {
        let e = parse_machine_ticks("t", "intr 1 2 3\n").unwrap_err();
        assert!(e.to_string().contains("no aggregate"), "{e}");
        let e = parse_machine_ticks("t", "cpu  1 2 3\n").unwrap_err();
        assert!(e.to_string().contains("expected at least 8"), "{e}");
        let e = parse_machine_ticks("t", "cpu  1 2 x 4 5 6 7 8\n").unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
    }

    #[test]
    fn self_cpu_advances() {
        let a = self_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu() > a);
    }

    #[test]
    fn dir_size_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 50]).unwrap();
        assert_eq!(dir_size(dir.path()).unwrap(), 150);
    }
}
