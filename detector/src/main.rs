//! The `detector` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "detector",
    version,
    about = "Runtime detection for Linux container hosts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile detection rules (TOML files or directories) and report each one.
    CheckRules(detector::cli::check_rules::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckRules(args) => detector::cli::check_rules::main(&args),
    }
}
