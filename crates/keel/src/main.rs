//! The `keel` binary: parses the command line and hands over to [`cli`]. Kept thin so that
//! everything it does is reachable from tests through the library crates.

mod backup;
mod cli;
mod demo;
mod oncall;
mod probe;
mod remote;
mod user;

use std::process::ExitCode;

/// jemalloc rather than the system's malloc: glibc keeps what a large config's parse and the
/// start-up burst freed in per-thread arenas (about 330 MB at 100,000 monitors); jemalloc
/// returns it to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::main()
}
