//! `cargo xtask …`: developer and operator tasks for detector (see ARCHITECTURE.md).
//!
//! Subcommands: `dist` (release tarball). `setup`, `run`, `test` and `bench` are added
//! beside it as further `Cmd` variants, each in its own module.

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
    // Setup, Run, Test, Bench: see their modules.
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Dist(args) => dist::run(&args),
    }
}
