//! The daemon's configuration: one TOML file (shipped commented as `config/detector.toml`).
//!
//! Why this shape: an operator's typo must never be silently ignored, so every table denies
//! unknown keys, and every error names the file, the key path (`sinks.file.rotate_bytes`),
//! the line and column, and the reason (see [`ConfigError`]). Every key has a default, so an
//! empty file is a valid configuration equal to [`Config::default`], and the shipped file
//! spells those defaults out with their documentation.
//!
//! Loading is pure (no side effects beyond reading the file): [`Config::load`] parses,
//! validates values and resolves relative paths against the config file's directory.
//! [`Config::apply_overrides`] then layers the command line on top, and
//! [`Config::check_paths`] checks that the rule paths exist once the final set is known.

mod error;
mod exception;
mod locate;
mod sequences;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::{ConfigError, Location};
pub use exception::{Exception, ExceptionSubject};
pub use sequences::{DEFAULT_REORDER_WINDOW_MS, SequencesConfig};

/// The whole configuration. Field order follows the shipped file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[rules]`: where the detection rules come from.
    pub rules: RulesConfig,
    /// `[sensor]`: kernel-side settings.
    pub sensor: SensorConfig,
    /// `[sinks]`: where alerts go.
    pub sinks: SinksConfig,
    /// `[alerts]`: alert post-processing (suppression, start-up scan).
    pub alerts: AlertsConfig,
    /// `[[exceptions]]`: per-rule exceptions; an alert matching one is dropped (and counted).
    pub exceptions: Vec<Exception>,
    /// `[log]`: the daemon's own diagnostics (not alerts).
    pub log: LogConfig,
    /// `[stats]`: periodic statistics in the log.
    pub stats: StatsConfig,
    /// `[process]`: process-table bounds.
    pub process: ProcessConfig,
    /// `[container]`: container-resolution cache bounds.
    pub container: ContainerConfig,
    /// `[metrics]`: Prometheus metrics (textfile and/or loopback HTTP), off by default.
    pub metrics: MetricsConfig,
    /// `[health]`: the heartbeat file `detector health` checks.
    pub health: HealthConfig,
    /// `[sequences]`: the reorder window before EQL sequences and their state bounds.
    pub sequences: SequencesConfig,
}

/// `[rules]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Files or directories of Elastic detection-rule TOML files. Directories are read
    /// non-recursively (`*.toml`). Relative paths are resolved against the directory of the
    /// config file by [`Config::load`], so the shipped `rules = ["rules"]` works from the
    /// source tree (`config/rules`) and when installed (`/etc/detector/rules`).
    pub paths: Vec<PathBuf>,
}

/// `[sensor]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Size of the BPF ring buffer shared by all CPUs, in bytes. The kernel requires a power
    /// of two that is a multiple of the page size. Larger rings absorb longer exec storms
    /// before events are lost (every loss is counted and reported).
    pub ring_buffer_bytes: u64,
    /// Whether the kernel programs copy the argument vector of each exec (`process.args`).
    /// Turning it off saves kernel and ring-buffer work; rules that test `process.args` then
    /// see no arguments.
    pub argv_capture: bool,
    /// The longest an event waits in the ring buffer before the daemon reads it, in
    /// microseconds. The kernel wakes the daemon at most once per interval and the daemon
    /// polls while events flow: a wake-up per event would cost every traced fork and exec
    /// far more than the event itself. `0` wakes the daemon for every event.
    pub wake_interval_us: u64,
    /// The longest the daemon waits between two reads of the ring while a sustained
    /// stream of events flows (more than 4 a millisecond), in microseconds: each read wakes
    /// the daemon, and on a busy host a wake-up costs the workload far more than the events
    /// it reads, so such a host is read in larger, rarer batches (on a lax timer, up to a
    /// quarter interval late). At or below `wake_interval_us`: never stretched.
    pub busy_poll_interval_us: u64,
    /// Whether to report credential changes as Elastic Defend does (`event.action`
    /// `uid_change`, `gid_change`, `session_id_change`): two small programs on the
    /// `set*uid`/`set*gid`/`setsid` syscall tracepoints (they cost only those syscalls;
    /// tracefs is mounted at `/sys/kernel/tracing` if no tracefs is mounted). Rules that
    /// read these events never fire with it off.
    pub credential_events: bool,
    /// Whether the kernel programs walk each exec's working directory
    /// (`process.working_directory`, `process.parent.working_directory`).
    pub cwd_capture: bool,
    /// Whether the kernel programs read each process's effective and permitted capability
    /// sets (`process.thread.capabilities.*`).
    pub caps_capture: bool,
    /// Environment variables kept in `process.env_vars` as `NAME=value` strings, as Elastic
    /// Defend's `linux.advanced.capture_env_vars` does: exact names, at most
    /// [`validate::MAX_ENV_VARS`] of at most [`validate::MAX_ENV_NAME`] bytes. The kernel
    /// copies the first 4 KiB of each exec's environment while the list is not empty; an
    /// empty list turns the capture off.
    pub capture_env_vars: Vec<String>,
}

/// The default [`SensorConfig::capture_env_vars`]: every variable Elastic's Linux rules
/// read in `process.env_vars` (their `like~` patterns match either case, so both cases of
/// the proxy variables), plus `LD_PRELOAD`, Elastic Defend's own default. A test checks the
/// list against the corpus.
pub const DEFAULT_CAPTURE_ENV_VARS: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "GLIBC_TUNABLES",
    "HISTFILE",
    "HISTFILESIZE",
    "HISTSIZE",
    "HISTCONTROL",
    "RUNNER_TRACKING_ID",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// `[sinks]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// Write each alert as one JSON line on standard output.
    pub stdout: bool,
    /// `[sinks.file]`: the append-only NDJSON alert file.
    pub file: FileSinkConfig,
}

/// `[sinks.file]`. The file is created with mode 0640 (not configurable: alerts reveal what
/// runs on the host, so other users must not read them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSinkConfig {
    /// Path of the alert file; `None` disables the file sink. A relative path is resolved
    /// against the config file's directory. Reopened on SIGHUP (for logrotate).
    pub path: Option<PathBuf>,
    /// Rotate the file when it would grow beyond this many bytes (`None`: never; leave
    /// rotation to logrotate).
    pub rotate_bytes: Option<u64>,
    /// Number of rotated files kept (`alerts.ndjson.1` … `.N`) when `rotate_bytes` is set.
    pub keep: u32,
    /// How many alerts are held in memory while the file cannot be written (disk full);
    /// beyond that new lines are dropped and counted.
    pub queue_max: usize,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Identical alerts (same rule, `container.id` and `process.executable`) within this many
    /// seconds of the first become one alert carrying a count; 0 turns suppression off.
    pub suppression_window_secs: u64,
    /// At start, evaluate the rules against processes already running (an sshd started before
    /// the daemon) and report matches once, marked as found at start-up.
    pub startup_scan: bool,
}

/// Output format of the daemon's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Minimum level of the daemon's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including per-event tracing.
    Trace,
    /// Diagnostics for debugging.
    Debug,
    /// Start-up, reloads, stats.
    Info,
    /// Recoverable problems (losses, sink failures).
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The name `tracing` filters understand.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: LogLevel,
}

/// `[stats]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Seconds between statistics lines in the log; 0 turns periodic stats off (the summary
    /// at exit is always written). Loss is checked with each line, and at least once a
    /// minute when they are off or rarer (see `daemon::Cadence`).
    pub interval_secs: u64,
}

/// `[process]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Upper bound of the process table, live and recently exited processes together.
    /// When full, exited entries are evicted first (oldest first), then entries of processes
    /// `/proc` no longer lists (lost exits), and only then the running process seen least
    /// recently, so a long-lived process is not forgotten because short ones churn
    /// (evictions are counted). Bounds memory under pid churn.
    pub max_processes: usize,
}

/// `[container]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// Upper bound of the cgroup → container cache.
    pub cache_max: usize,
    /// containerd state directories (each holding `io.containerd.runtime.v2.task/`): how
    /// `ctr`, nerdctl and Kubernetes containers are found when no cgroup name pattern tells.
    pub containerd_state: Vec<PathBuf>,
    /// docker data roots: names, images and the privileged flag of docker containers.
    pub docker_root: Vec<PathBuf>,
    /// containers/storage graph and run roots (podman, CRI-O).
    pub storage_root: Vec<PathBuf>,
    /// LXC container paths (`lxc-* -P`).
    pub lxc_path: Vec<PathBuf>,
    /// systemd-machined's machine files (systemd-nspawn).
    pub machines_dir: PathBuf,
    /// The kubelet's pod log directory (pod names and namespaces of CRI containers).
    pub pod_logs_dir: PathBuf,
    /// `orchestrator.cluster.name` for Kubernetes containers: no local file names the
    /// cluster, so only configuration can.
    pub cluster_name: Option<String>,
}

impl ContainerConfig {
    /// Where the container state readers look, as configured.
    pub fn state_roots(&self) -> crate::container::state::StateRoots {
        crate::container::state::StateRoots {
            containerd: self.containerd_state.clone(),
            docker: self.docker_root.clone(),
            storage: self.storage_root.clone(),
            lxc: self.lxc_path.clone(),
            machines: self.machines_dir.clone(),
            pod_logs: self.pod_logs_dir.clone(),
            cluster_name: self.cluster_name.clone(),
        }
    }
}

/// `[metrics]`: read at start only (a reload that changes it logs that a restart is needed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Absolute path of a file for node_exporter's textfile collector, rewritten atomically
    /// (temp file in the same directory, then rename) every `interval_secs` and at exit.
    /// `None`: no file.
    pub textfile: Option<PathBuf>,
    /// Address serving `/metrics` and `/healthz` over HTTP; `None`: nothing listens.
    /// Must be a loopback address unless `allow_non_loopback` is set: the counters tell
    /// what runs on the host.
    pub listen: Option<std::net::SocketAddr>,
    /// Let `listen` be a non-loopback address (an explicit choice, off by default).
    pub allow_non_loopback: bool,
    /// Seconds between two metric snapshots (what `/metrics` serves and the textfile holds).
    pub interval_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            textfile: None,
            listen: None,
            allow_non_loopback: false,
            interval_secs: 15,
        }
    }
}

/// `[health]`. (systemd's readiness and watchdog need no key: the daemon speaks
/// `sd_notify` whenever `$NOTIFY_SOCKET` is set.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Absolute path of the heartbeat file the event loop rewrites every second (JSON:
    /// timestamp, attached, counters) for `detector health` (a Kubernetes exec probe);
    /// `None`: no heartbeat. Its directory must exist and be writable.
    pub heartbeat_path: Option<PathBuf>,
    /// Seconds between two canaries: the daemon runs its own executable (`detector
    /// canary`, which exits at once) and expects that exec back through the kernel
    /// programs; one unseen after twice the interval (at least 10 s) means the event
    /// stream stopped: the sensor is blinded (logged, counted, reported in the alert
    /// stream, unhealthy). 0: no canary.
    pub canary_interval_secs: u64,
}

/// Default `[health] canary_interval_secs`.
pub const DEFAULT_CANARY_INTERVAL_SECS: u64 = 5;

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            heartbeat_path: None,
            canary_interval_secs: DEFAULT_CANARY_INTERVAL_SECS,
        }
    }
}

/// Default ring buffer: the sensor's default (4 MiB), which carried a 20,000 fork+exec
/// storm with no loss on the build machines (records carry argv and paths).
pub const DEFAULT_RING_BUFFER_BYTES: u64 = detector_common::DEFAULT_RING_BYTES as u64;

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            paths: vec![PathBuf::from("rules")],
        }
    }
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            argv_capture: true,
            wake_interval_us: detector_common::DEFAULT_WAKE_INTERVAL_NS / 1000,
            busy_poll_interval_us: crate::sensor::BUSY_INTERVAL_FACTOR
                * detector_common::DEFAULT_WAKE_INTERVAL_NS
                / 1000,
            credential_events: true,
            cwd_capture: true,
            caps_capture: true,
            capture_env_vars: DEFAULT_CAPTURE_ENV_VARS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl Default for SinksConfig {
    fn default() -> Self {
        SinksConfig {
            stdout: true,
            file: FileSinkConfig::default(),
        }
    }
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        FileSinkConfig {
            path: None,
            rotate_bytes: None,
            keep: 5,
            queue_max: 10_000,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            // One user action (a wrapper script's forks and execs) becomes one alert now
            // and one with the folded count later (README, "Alert noise").
            suppression_window_secs: 60,
            startup_scan: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: LogLevel::Info,
        }
    }
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { interval_secs: 60 }
    }
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            max_processes: 131_072,
        }
    }
}

impl Default for ContainerConfig {
    fn default() -> Self {
        let roots = crate::container::state::StateRoots::default();
        ContainerConfig {
            cache_max: 4096,
            containerd_state: roots.containerd,
            docker_root: roots.docker,
            storage_root: roots.storage,
            lxc_path: roots.lxc,
            machines_dir: roots.machines,
            pod_logs_dir: roots.pod_logs,
            cluster_name: roots.cluster_name,
        }
    }
}

impl Default for Config {
    /// The documented defaults: what an empty file gives, and what the shipped
    /// `config/detector.toml` spells out.
    fn default() -> Self {
        Config {
            rules: RulesConfig::default(),
            sensor: SensorConfig::default(),
            sinks: SinksConfig::default(),
            alerts: AlertsConfig::default(),
            exceptions: Vec::new(),
            log: LogConfig::default(),
            stats: StatsConfig::default(),
            process: ProcessConfig::default(),
            container: ContainerConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            sequences: SequencesConfig::default(),
        }
    }
}

/// Largest config file accepted (1 MiB; the shipped one is about 5 KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Command-line settings layered on top of the file by [`Config::apply_overrides`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--rules PATH…`: rule files or directories (relative to the current directory).
    pub rules: Vec<PathBuf>,
    /// When true, `rules` replaces the config's `rules.paths`; otherwise it adds to them.
    pub replace_rules: bool,
    /// `--alerts-file PATH`: enables the file sink at this path.
    pub alerts_file: Option<PathBuf>,
    /// `--stdout`: also write alerts to standard output.
    pub stdout: bool,
}

impl Config {
    /// Reads, parses and validates the config file at `path`, and resolves its relative
    /// paths against the file's directory. Errors name the file, key, line:column and cause.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let io = |source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            // Bounded: `--config /dev/zero` must be an error, not an out-of-memory kill.
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: path.to_path_buf(),
                max: MAX_CONFIG_BYTES,
            });
        }
        let mut config = Config::parse(&bytes, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parses and validates config text without touching the file system; relative paths
    /// stay relative. `origin` only names the source in errors.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Config, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Encoding {
            file: origin.to_path_buf(),
            location: Location::of_offset(bytes, e.valid_up_to()),
        })?;
        let config: Config =
            toml::from_str(text).map_err(|e| error::from_toml(origin, text, &e))?;
        validate::validate(&config).map_err(|v| error::from_invalid(origin, text, v))?;
        Ok(config)
    }

    /// Makes relative paths absolute against `base` (the config file's directory): rule
    /// paths and the alert file.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in &mut self.rules.paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = &mut self.sinks.file.path
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }

    /// Layers the command line on top of the file: `--rules` adds to (or replaces) the rule
    /// paths, `--alerts-file` enables the file sink there, `--stdout` turns stdout on.
    pub fn apply_overrides(&mut self, o: &Overrides) {
        if o.replace_rules {
            self.rules.paths.clear();
        }
        self.rules.paths.extend(o.rules.iter().cloned());
        if let Some(p) = &o.alerts_file {
            self.sinks.file.path = Some(p.clone());
        }
        if o.stdout {
            self.sinks.stdout = true;
        }
    }

    /// Checks what only the final (file + command line) configuration can tell: there is at
    /// least one rule path, each exists, and at least one sink is on. Called at start and on
    /// every reload, after [`Config::apply_overrides`].
    pub fn check_paths(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: origin.to_path_buf(),
            key,
            location: None,
            message,
        };
        if self.rules.paths.is_empty() {
            return Err(invalid(
                "rules.paths".into(),
                "no rule files or directories given (set rules.paths or pass --rules)".into(),
            ));
        }
        for (i, p) in self.rules.paths.iter().enumerate() {
            if let Err(e) = std::fs::metadata(p) {
                return Err(invalid(
                    format!("rules.paths[{i}]"),
                    format!("cannot access {}: {e}", p.display()),
                ));
            }
        }
        if !self.sinks.stdout && self.sinks.file.path.is_none() {
            return Err(invalid(
                "sinks".into(),
                "no sink enabled: alerts would go nowhere (set sinks.stdout = true or \
                 sinks.file.path, or pass --stdout / --alerts-file)"
                    .into(),
            ));
        }
        Ok(())
    }
}
