//! `detector run`: the whole pipeline, sensor → process model → ECS → rules → alerts →
//! sinks, with its signals (SIGHUP reload, SIGTERM/SIGINT drain and stop), periodic stats
//! and loss reports.
//!
//! - `service`: the daemon's life, [`Daemon::start`] / [`Daemon::serve`] /
//!   [`Daemon::shutdown`].
//! - `reader`: ring → decoded queue → chunked handling, signals, bounded drain; shared
//!   with `detector trace`.
//! - `events`: each observable event (a status line or a log record, and its counter).
//! - `ticks`: when stats lines and loss checks happen; `reload`: SIGHUP; `setup`: building
//!   the parts from the config, start-up errors and exit codes.
//! - `stage` (the per-event stages), `detect`, `probe`, `stats`, `pending`; `memory`: RSS
//!   per start-up phase and the heap trims between phases.
//! - `metrics`: Prometheus metrics, a textfile and/or a loopback `/metrics` + `/healthz`.
//! - `notify`: systemd's `sd_notify` (READY, STATUS, WATCHDOG, RELOADING, STOPPING);
//!   `heartbeat`: the file `detector health` checks; `canary`: the blinded-sensor check
//!   (a canary process whose exec must come back through the kernel programs).
//!
//! Start-up order matters: the programs are attached *before* `/proc` is read, so a process
//! started in between is seen by both (the table reconciles by start time) rather than by
//! neither. They are *loaded* before the rules are compiled (and attached after): loading
//! parses the kernel's BTF, which is dropped before the compiled rules are built, so the
//! daemon's peak memory is the larger of the two, not their sum (`memory` logs each phase
//! at debug level).

pub mod canary;
mod detect;
mod events;
pub mod heartbeat;
pub(crate) mod memory;
mod metrics;
mod pending;
mod reader;
mod reload;
mod service;
mod setup;
mod stage;
mod stats;
mod ticks;

pub mod notify;

use std::path::PathBuf;
use std::time::Duration;

pub use detect::{DetectStats, Detection};
pub use metrics::{Metrics, Snapshot as MetricsSnapshot};
pub use reader::{Control, FAULT_DROP_RECORDS_ENV, Reader, StopReason, Wake};
pub use service::{Daemon, FinalStats};
pub use setup::{HostModel, Settings, StartError, exit as setup_exit, load_settings};
pub use stage::EventPipeline;
pub use stats::{LOSS_DATASET, PipelineStats};
pub use ticks::{Cadence, LOSS_CHECK_MAX};

/// How long SIGTERM may take: the drain and flush must finish well within a supervisor's
/// stop timeout.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// What `detector run` was asked to do (command line; the config file is read from it).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub overrides: crate::config::Overrides,
    /// Stop by itself after this long (tests, benchmarks).
    pub duration: Option<Duration>,
}

/// Runs the daemon until SIGTERM/SIGINT (or `duration`). Start-up failures are returned
/// as [`StartError`]s, which carry the exit code a supervisor can act on.
pub async fn run(opts: RunOptions) -> Result<(), StartError> {
    let mut daemon = Daemon::start(opts)?;
    daemon.serve().await;
    daemon.shutdown();
    Ok(())
}
