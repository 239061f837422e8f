//! `detector run`: the daemon. Reads its config, sets up logging as the config says, and
//! runs the pipeline until SIGTERM/SIGINT; start-up failures exit with a `sysexits` code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Config, LogFormat, Overrides};
use crate::daemon::{RunOptions, StartError};

/// The installed config path.
pub const INSTALLED_CONFIG: &str = "/etc/detector/detector.toml";

/// Options of `detector run`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit codes: 0 clean stop (SIGTERM/SIGINT/--duration); 78 bad config or rules; 77 missing \
privileges; 73 alert file cannot be created; 69 kernel unsupported (no BTF, too old, verifier); \
70 other start-up failure.
Signals: SIGHUP reloads config and rules atomically (an invalid set is refused and the running \
one stays) and reopens the alert file; SIGTERM/SIGINT drain the ring buffer, flush the outputs \
and exit.
Alerts are ECS 9.x documents, one JSON object a line; loss of kernel events is reported in the \
same stream as `event.kind: metric` documents (event.dataset detector.loss).")]
pub struct RunArgs {
    /// Config file [default: config/detector.toml of the source tree when run from it,
    /// else /etc/detector/detector.toml].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Detection-rule TOML files or directories, added to the config's rules.paths.
    #[arg(long = "rules", value_name = "PATH", num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Use only the --rules paths, not the config's.
    #[arg(long, requires = "rules")]
    pub replace_rules: bool,
    /// Write alerts to this NDJSON file (created 0640, appended to).
    #[arg(long, value_name = "PATH")]
    pub alerts_file: Option<PathBuf>,
    /// Also write alerts to standard output.
    #[arg(long)]
    pub stdout: bool,
    /// Stop by itself after this many seconds (tests, benchmarks).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// The default config: the source tree's when this binary was built in it and runs from
/// its `target/`, else the installed one.
pub fn default_config() -> PathBuf {
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let in_tree = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let target = source_tree.join("target").canonicalize().ok()?;
            Some(exe.starts_with(target))
        })
        .unwrap_or(false);
    let tree_config = source_tree.join("config/detector.toml");
    if in_tree && tree_config.exists() {
        tree_config
    } else {
        PathBuf::from(INSTALLED_CONFIG)
    }
}

fn init_logging(config: Option<&Config>) {
    let level = config.map(|c| c.log.level.as_str()).unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_from_env("DETECTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.map(|c| c.log.format) {
        Some(LogFormat::Json) => builder.json().init(),
        _ => builder.init(),
    }
}

/// Runs `detector run`.
pub fn main(args: RunArgs) -> ExitCode {
    let config = args.config.clone().unwrap_or_else(default_config);
    // Logging follows the config; a config that does not load is reported by the daemon's
    // own start-up (with its exit code) right after.
    let early = Config::load(&config).ok();
    init_logging(early.as_ref());
    let opts = RunOptions {
        config,
        overrides: Overrides {
            rules: args.rules,
            replace_rules: args.replace_rules,
            alerts_file: args.alerts_file,
            stdout: args.stdout,
        },
        duration: args
            .duration
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("detector: error: cannot start the tokio runtime: {e}");
            return ExitCode::from(crate::daemon::setup_exit::SOFTWARE);
        }
    };
    match rt.block_on(crate::daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// A start-up failure: one status line (not also logged: the log goes to stderr too, see
/// `daemon::events`), and its `sysexits` code.
fn report(e: &StartError) -> ExitCode {
    eprintln!("detector: error: {e}");
    ExitCode::from(e.exit_code())
}
