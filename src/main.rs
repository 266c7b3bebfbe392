use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cinemo::cli::run(cinemo::cli::Cli::parse())
}
