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

fn main() -> ExitCode {
    cli::main()
}
