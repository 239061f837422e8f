//! `detector health`: is a running daemon attached and its event loop turning? Reads the
//! heartbeat file the daemon rewrites every second (`[health] heartbeat_path`) and exits 0
//! when it is fresh, says attached and not blinded (the daemon's canary exec came back
//! through the kernel programs: see `daemon::canary`), 1 with the reason on stderr otherwise: an exec probe
//! for Kubernetes (readiness and liveness), or a check for anyone on the host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::daemon::heartbeat;

/// Default `--max-age`: ten missed writes (the loop writes every second).
pub const DEFAULT_MAX_AGE_SECS: u64 = 10;

/// Options of `detector health`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit codes: 0 healthy (heartbeat fresh, programs attached, events flowing); 1 unhealthy (no \
heartbeat, stale heartbeat: the daemon stopped or its loop stalled, not attached, or sensor \
blinded: the event stream stopped); 78 no heartbeat \
path (neither --heartbeat nor [health] heartbeat_path in the config).")]
pub struct Args {
    /// The heartbeat file [default: `[health] heartbeat_path` of --config].
    #[arg(long, value_name = "PATH")]
    pub heartbeat: Option<PathBuf>,
    /// The config to read the heartbeat path from when --heartbeat is not given
    /// [default: as for `detector run`].
    #[arg(long, value_name = "PATH", conflicts_with = "heartbeat")]
    pub config: Option<PathBuf>,
    /// Unhealthy when the heartbeat is older than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_AGE_SECS)]
    pub max_age: u64,
}

/// Runs the check; the exit code is the verdict.
pub fn main(args: &Args) -> ExitCode {
    let path = match &args.heartbeat {
        Some(p) => p.clone(),
        None => {
            let config = args
                .config
                .clone()
                .unwrap_or_else(super::run::default_config);
            match Config::load(&config) {
                Ok(c) => match c.health.heartbeat_path {
                    Some(p) => p,
                    None => {
                        eprintln!(
                            "detector: health: no heartbeat: {} sets no [health] heartbeat_path \
                             (or pass --heartbeat PATH)",
                            config.display()
                        );
                        return ExitCode::from(78);
                    }
                },
                Err(e) => {
                    eprintln!("detector: health: {e}");
                    return ExitCode::from(78);
                }
            }
        }
    };
    let max_age = Duration::from_secs(args.max_age);
    match heartbeat::check(&path, max_age, heartbeat::now_ms()) {
        Ok(b) => {
            println!(
                "detector: healthy: attached, pid {}, {} events, {} lost, {} alerts",
                b.pid, b.events, b.lost, b.alerts
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("detector: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
