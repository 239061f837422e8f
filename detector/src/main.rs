//! The `detector` command line: parses arguments and dispatches to `detector::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runtime-detection daemon for Linux container hosts: eBPF process events, tagged with
/// their container, evaluated against Elastic detection rules (EQL), alerts as ECS NDJSON.
#[derive(Parser)]
#[command(name = "detector", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: detect with the configured rules, write alerts (ECS NDJSON).
    Run(detector::cli::run::RunArgs),
    /// Stream every process event (fork, exec, exit) as one JSON object a line.
    Trace(detector::cli::trace::TraceArgs),
    /// Compile detection rules (TOML files or directories) and report each one.
    CheckRules(detector::cli::check_rules::Args),
    /// Evaluate rules over ECS event documents (NDJSON) and write alerts to stdout.
    Replay(detector::cli::replay::Args),
    /// Check a running daemon's heartbeat: exit 0 when attached and its loop turns.
    Health(detector::cli::health::Args),
    /// The daemon's canary (`[health] canary_interval_secs`): exits 0 at once; the daemon
    /// only needs to see its exec come back through the kernel programs.
    #[command(hide = true)]
    Canary,
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DETECTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => detector::cli::run::main(args),
        Command::Trace(args) => {
            init_logging();
            match detector::cli::trace::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("detector: error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckRules(args) => detector::cli::check_rules::main(&args),
        Command::Replay(args) => detector::cli::replay::main(&args),
        Command::Health(args) => detector::cli::health::main(&args),
        Command::Canary => ExitCode::SUCCESS,
    }
}
