//! Building the pipeline's parts from the configuration, at start and on every reload, and
//! the start-up errors with the exit codes a supervisor acts on.

use std::path::Path;
use std::time::Duration;

use super::RunOptions;
use crate::alert::AlertPolicy;
use crate::config::{Config, ConfigError};
use crate::ecs::DocBuilder;
use crate::host::{AgentInfo, HostInfo};
use crate::process::{ProcessTable, TableConfig};
use crate::rules::{RuleError, RuleSet};
use crate::sensor::{Sensor, SensorConfig, SensorError};
use crate::sink::{FileSink, FileSinkOptions, QueueLimits, Rotation, Sink, StdoutSink};

/// `sysexits.h` codes: a supervisor can tell "fix the config" (78, not worth restarting)
/// from "no permission" (77), "this kernel cannot" (69) and "cannot create output" (73).
pub mod exit {
    pub const SOFTWARE: u8 = 70;
    pub const UNAVAILABLE: u8 = 69;
    pub const CANTCREAT: u8 = 73;
    pub const NOPERM: u8 = 77;
    pub const CONFIG: u8 = 78;
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{} rule file(s) failed to load:\n{}", .0.len(), join_errors(.0))]
    Rules(Vec<RuleError>),
    #[error("no detection rules found in {0}: nothing to detect")]
    NoRules(String),
    #[error("cannot open the alert file {path}: {source}")]
    Output {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Sensor(#[source] SensorError),
    #[error("cannot read /proc to seed the process table: {0}")]
    Proc(#[source] std::io::Error),
    #[error("cannot start the container runtime-state reader thread: {0}")]
    RuntimeState(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

fn join_errors(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl StartError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) | StartError::Rules(_) | StartError::NoRules(_) => exit::CONFIG,
            StartError::Output { .. } | StartError::Metrics { .. } => exit::CANTCREAT,
            StartError::RuntimeState(_) => exit::SOFTWARE,
            StartError::Sensor(
                SensorError::MissingCapabilities { .. }
                | SensorError::SeccompRefused { .. }
                | SensorError::BpfRefused { .. },
            ) => exit::NOPERM,
            StartError::Sensor(
                SensorError::NoBtf(_)
                | SensorError::KernelTooOld { .. }
                | SensorError::Btf(_)
                | SensorError::Verifier { .. },
            ) => exit::UNAVAILABLE,
            StartError::Sensor(_) | StartError::Proc(_) | StartError::Signals(_) => exit::SOFTWARE,
        }
    }
}

/// A complete, valid configuration with its compiled rules and alert policy.
pub struct Settings {
    pub config: Config,
    pub rules: RuleSet,
    /// The EQL sequence rules (run beside the set by the alert stage).
    pub sequences: Vec<crate::rules::SequenceRule>,
    pub policy: AlertPolicy,
}

/// Reads the config file, applies the command line, checks paths and compiles every rule.
/// Any failure rejects the whole set (at start: exit; on reload: keep the old one).
pub fn load_settings(opts: &RunOptions) -> Result<Settings, StartError> {
    compile_rules(load_config(opts)?)
}

/// Reads the config file, applies the command line and checks paths (the first half of
/// [`load_settings`]: the daemon loads its programs between the two).
pub fn load_config(opts: &RunOptions) -> Result<Config, StartError> {
    let mut config = Config::load(&opts.config)?;
    config.apply_overrides(&opts.overrides);
    config.check_paths(&opts.config)?;
    Ok(config)
}

/// Compiles every rule `config` names, with the alert policy (the second half of
/// [`load_settings`]).
pub fn compile_rules(config: Config) -> Result<Settings, StartError> {
    let (rules, sequences, mut errors) =
        crate::alert::sequence::rules::load(&config.rules.paths, crate::ecs::schema());
    // A sequence whose terms need events the sensor never produces is refused like any
    // rule that does not compile (file:line:column, the term named).
    errors.extend(crate::alert::sequence::rules::refuse_unproducible(
        &sequences,
        crate::alert::sequence::rules::SENSOR_CATEGORIES,
    ));
    if !errors.is_empty() {
        return Err(StartError::Rules(errors));
    }
    if rules.is_empty() && sequences.is_empty() {
        let paths: Vec<String> = config
            .rules
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(StartError::NoRules(paths.join(", ")));
    }
    let policy = AlertPolicy::from_config(&config);
    Ok(Settings {
        config,
        rules,
        sequences,
        policy,
    })
}

/// The configured outputs. A file that cannot be opened is a start-up error.
pub fn open_sinks(config: &Config) -> Result<Vec<Box<dyn Sink>>, StartError> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let queue = QueueLimits {
        max_lines: config.sinks.file.queue_max,
        ..QueueLimits::default()
    };
    if let Some(path) = &config.sinks.file.path {
        let file = FileSink::open(FileSinkOptions {
            path: path.clone(),
            mode: 0o640,
            rotation: config.sinks.file.rotate_bytes.map(|max_bytes| Rotation {
                max_bytes,
                keep: config.sinks.file.keep as usize,
            }),
            queue,
        })
        .map_err(|source| StartError::Output {
            path: path.clone(),
            source,
        })?;
        sinks.push(Box::new(file));
    }
    if config.sinks.stdout {
        sinks.push(Box::new(StdoutSink::stdout()));
    }
    Ok(sinks)
}

/// The process table's bounds from the config.
pub fn table_config(config: &Config) -> TableConfig {
    TableConfig {
        max_processes: config.process.max_processes,
        container_cache: config.container.cache_max,
        enrich: Some(config.container.state_roots()),
        env_vars: crate::process::EnvNames::new(&config.sensor.capture_env_vars),
        ..TableConfig::default()
    }
}

/// The sensor's settings from `[sensor]`.
pub fn sensor_config(config: &Config) -> SensorConfig {
    let sensor = &config.sensor;
    SensorConfig {
        ring_bytes: sensor.ring_buffer_bytes as u32,
        wake_interval: Duration::from_micros(sensor.wake_interval_us),
        busy_interval: Duration::from_micros(sensor.busy_poll_interval_us),
        capture_argv: sensor.argv_capture,
        credential_events: sensor.credential_events,
        capture_cwd: sensor.cwd_capture,
        capture_env: !sensor.capture_env_vars.is_empty(),
        capture_caps: sensor.caps_capture,
    }
}

/// The loaded programs as `name=verified_insns,…` (0 when the kernel did not say).
pub fn program_list(sensor: &Sensor) -> String {
    sensor
        .program_stats()
        .iter()
        .map(|s| format!("{}={}", s.name, s.verified_insns.unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(",")
}

/// This host's process model and document builder, as `run` and `trace` both build them.
pub struct HostModel {
    pub table: ProcessTable,
    pub docs: DocBuilder,
    /// The daemon's own pid namespace (its inode), when `/proc` tells.
    pub pid_ns_ino: Option<u64>,
}

impl HostModel {
    /// An empty table for this host (see [`HostModel::seed`]).
    pub fn new(table: TableConfig) -> Self {
        let host = HostInfo::collect(Path::new("/"));
        let agent = AgentInfo::new(&host, None);
        HostModel {
            table: ProcessTable::for_host(table, &host),
            docs: DocBuilder::new(&host, &agent),
            pid_ns_ino: host.pid_ns_ino,
        }
    }

    /// Fills the table from `/proc`; returns how many processes it found. Call it after
    /// the programs are attached: a process started in between is then seen by both (the
    /// table reconciles by start time) rather than by neither.
    pub fn seed(&mut self) -> std::io::Result<u64> {
        Ok(self.table.seed_from_proc(Path::new("/proc"))?.seeded)
    }
}
