//! `cargo xtask …`: developer and operator tasks for detector (see ARCHITECTURE.md).
//!
//! Subcommands: `dist` (release tarball), `bench` (measurements against peers). `setup`,
//! `run` and `test` are added beside them as further `Cmd` variants, each in its own module.

mod bench;
mod dist;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "detector's developer and operator tasks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the release binary and package target/dist/detector-<version>-<arch>.tar.gz
    /// (binary, installed config, rules, systemd unit, logrotate policy, INSTALL).
    Dist(dist::DistArgs),
    /// Measure the detector against peers (root): exec storm, cost, detection latency,
    /// start-up, rule scaling; prints a table, writes target/bench/<time>.json.
    Bench(Box<bench::BenchArgs>),
    // Setup, Run, Test: see their modules.
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Dist(args) => dist::run(&args),
        Cmd::Bench(args) => bench::run(*args),
    }
}
