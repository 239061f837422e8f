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
    /// Evaluate rules over ECS event documents (NDJSON) and write alerts to stdout.
    Replay(detector::cli::replay::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckRules(args) => detector::cli::check_rules::main(&args),
        Command::Replay(args) => detector::cli::replay::main(&args),
    }
}
