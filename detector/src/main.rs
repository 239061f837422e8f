//! The `detector` command line.

mod cli;

use clap::{Parser, Subcommand};

/// Runtime-detection daemon for Linux container hosts.
#[derive(Parser)]
#[command(name = "detector", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream every process event (fork, exec, exit) as one JSON object a line.
    Trace(cli::trace::TraceArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DETECTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trace(args) => cli::trace::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("detector: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
