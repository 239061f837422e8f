//! `detector run`: the whole pipeline, sensor → process model → ECS → rules → alerts →
//! sinks, with its signals (SIGHUP reload, SIGTERM/SIGINT drain and stop), periodic stats
//! and loss reports.
//!
//! Start-up order matters: the programs are attached *before* `/proc` is read, so a process
//! started in between is seen by both (the table reconciles by start time) rather than by
//! neither.

mod detect;
mod pending;
mod setup;
mod stage;
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

pub use detect::{DetectStats, Detection};
pub use setup::{Settings, StartError, exit as setup_exit, load_settings};
pub use stage::EventPipeline;
pub use stats::{LOSS_DATASET, PipelineStats};

use crate::ecs::{DocBuilder, EcsDocument};
use crate::event::{Decoder, ProcessEvent};
use crate::host::{AgentInfo, HostInfo};
use crate::process::ProcessTable;
use crate::sensor::{Sensor, SensorConfig};

/// How long SIGTERM may take: the drain and flush must finish well within a supervisor's
/// stop timeout.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Events handled between two looks at the signals (and timers).
const CHUNK: usize = 256;

/// What `detector run` was asked to do (command line; the config file is read from it).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub overrides: crate::config::Overrides,
    /// Stop by itself after this long (tests, benchmarks).
    pub duration: Option<Duration>,
}

/// The pipeline stages after the sensor, plus what only the daemon needs.
struct Pipeline {
    s: EventPipeline,
    decoder: Decoder,
    /// Host and agent only: the base of loss reports.
    report_base: EcsDocument,
}

impl Pipeline {
    fn handle(&mut self, ev: &ProcessEvent) {
        self.s.handle(ev);
    }

    /// The stats document: the pipeline's figures, the kernel's counters and how the reader
    /// drained the ring (whether it polled, and how often on the stretched timer).
    fn summary(
        &self,
        kernel: Option<&crate::sensor::Counters>,
        reader: crate::sensor::ReaderStats,
    ) -> serde_json::Value {
        let mut doc = stats::summary(
            &self.s.stats,
            kernel,
            self.decoder.malformed,
            &self.s.table.stats(),
            &self.s.detection,
        );
        doc["reader"] = serde_json::json!(reader);
        doc
    }

    /// Writes a loss report to the alert stream when something was lost since the last.
    fn report_loss(&mut self, kernel: &crate::sensor::Counters) {
        let mark = self.s.stats.mark();
        if let Some(doc) = self.s.stats.loss_report(
            kernel,
            self.decoder.malformed,
            self.s.detection.stats(),
            &self.report_base,
        ) {
            tracing::warn!(
                message = doc.message.as_deref().unwrap_or(""),
                "events lost"
            );
            if !self.s.detection.write_document(&doc) {
                // Not in the stream: what it carried goes into the next report.
                self.s.stats.rewind(mark);
            }
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT (or `duration`). Start-up failures are returned
/// as [`StartError`]s, which carry the exit code a supervisor can act on.
pub async fn run(opts: RunOptions) -> Result<(), StartError> {
    // Signals first: one that arrives during start-up is then still seen by the loop.
    let mut sighup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;

    let settings = load_settings(&opts)?;
    let sinks = setup::open_sinks(&settings.config)?;
    let detection = Detection::new(settings.rules, settings.policy, sinks);

    let sensor_config = &settings.config.sensor;
    let mut sensor = Sensor::start(&SensorConfig {
        ring_bytes: sensor_config.ring_buffer_bytes as u32,
        wake_interval: std::time::Duration::from_micros(sensor_config.wake_interval_us),
        busy_interval: std::time::Duration::from_micros(sensor_config.busy_poll_interval_us),
        capture_argv: sensor_config.argv_capture,
    })
    .map_err(StartError::Sensor)?;
    let mut records = sensor.records().map_err(StartError::Sensor)?;

    let host = HostInfo::collect(std::path::Path::new("/"));
    let agent = AgentInfo::new(&host, None);
    let docs = DocBuilder::new(&host, &agent);
    let mut table = ProcessTable::for_host(setup::table_config(&settings.config), &host);
    let seeded = table
        .seed_from_proc(std::path::Path::new("/proc"))
        .map_err(StartError::Proc)?;
    let report_base = docs.base();

    let mut p = Pipeline {
        s: EventPipeline::new(table, docs, detection),
        decoder: Decoder::default(),
        report_base,
    };
    if settings.config.alerts.startup_scan {
        p.s.startup_scan();
    }
    let programs: Vec<String> = sensor
        .program_stats()
        .iter()
        .map(|s| format!("{}={}", s.name, s.verified_insns.unwrap_or(0)))
        .collect();
    tracing::info!(
        rules = p.s.detection.rules().len(),
        seeded = seeded.seeded,
        startup_matches = p.s.stats.startup_matches,
        programs = %programs.join(","),
        "detector ready"
    );
    // Unconditional (whatever the log level): tests and supervisors wait for this line.
    eprintln!(
        "detector: ready: {} rules, {} processes seeded, {} start-up matches",
        p.s.detection.rules().len(),
        seeded.seeded,
        p.s.stats.startup_matches
    );

    let mut current = settings.config;
    let stats_every = Duration::from_secs(current.stats.interval_secs.max(1));
    let mut stats_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_every, stats_every);
    let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
    let deadline = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    // Decoded events not handled yet. The ring is read only when this is empty, so a
    // daemon that falls behind lets the kernel ring fill (and count its losses) instead of
    // growing this without bound; and it is handled CHUNK events at a time, so signals are
    // seen within one chunk even with a full ring behind.
    let mut pending = pending::Pending::default();

    loop {
        tokio::select! {
            r = records.next_batch(|b| pending.push_record(&mut p.decoder, b)), if pending.is_empty() => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "reading the ring buffer failed; stopping");
                    break;
                }
            }
            _ = sighup.recv() => {
                reload(&opts, &mut current, &mut p.s.detection);
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = &mut deadline => break,
            _ = stats_tick.tick() => {
                let kernel = sensor.counters().ok();
                if let Some(k) = &kernel {
                    p.report_loss(k);
                }
                tracing::info!(stats = %p.summary(kernel.as_ref(), records.stats()), "stats");
            }
            _ = housekeeping.tick() => p.s.detection.tick(),
            _ = std::future::ready(()), if !pending.is_empty() => {}
        }
        for _ in 0..CHUNK {
            if !pending.pop_with(|ev| p.handle(ev)) {
                break;
            }
        }
    }

    // Drain: whatever the kernel queued before we stopped is still evaluated, within the
    // shutdown budget; what the budget leaves is counted, not silently dropped.
    let stop = Instant::now();
    let over = || stop.elapsed() > SHUTDOWN_BUDGET / 2;
    loop {
        if pending.is_empty() {
            let n = records.drain(|b| pending.push_record(&mut p.decoder, b));
            if n == 0 {
                break;
            }
        }
        while !over() && pending.pop_with(|ev| p.handle(ev)) {}
        if over() {
            p.s.stats.shutdown_unprocessed = pending.len() as u64 + records.drain(|_| ()) as u64;
            if p.s.stats.shutdown_unprocessed > 0 {
                tracing::warn!(
                    events = p.s.stats.shutdown_unprocessed,
                    "shutdown budget spent: events still queued were not evaluated"
                );
            }
            break;
        }
    }
    let kernel = sensor.counters().ok();
    if let Some(k) = &kernel {
        p.report_loss(k);
    }
    let unflushed = p.s.detection.finish();
    if unflushed > 0 {
        tracing::error!(
            lines = unflushed,
            "alert lines could not be written before exit"
        );
    }
    let summary = p.summary(kernel.as_ref(), records.stats());
    tracing::info!(stats = %summary, "final stats");
    // Machine-readable, unconditional: benchmarks and tests read it.
    eprintln!("{}", serde_json::json!({ "final_stats": summary }));
    Ok(())
}

/// SIGHUP: re-read the config and rules; swap them in only if all of it is valid. The file
/// sink is reopened in any case (logrotate moved the file).
fn reload(opts: &RunOptions, current: &mut crate::config::Config, detection: &mut Detection) {
    match load_settings(opts) {
        Err(e) => {
            tracing::error!("reload refused, the running configuration and rules stay: {e}");
            eprintln!("detector: reload refused, keeping the running rules: {e}");
            detection.reopen_sinks();
        }
        Ok(s) => {
            if s.config.sinks != current.sinks {
                match setup::open_sinks(&s.config) {
                    Ok(sinks) => detection.replace_sinks(sinks),
                    Err(e) => {
                        tracing::error!("reload: new outputs unusable ({e}); keeping the old ones");
                        detection.reopen_sinks();
                    }
                }
            } else {
                detection.reopen_sinks();
            }
            // The kernel programs, the process table and the container cache are sized
            // and tuned once, at start: say so rather than ignore the change silently.
            let fixed = [
                ("sensor", s.config.sensor != current.sensor),
                ("process", s.config.process != current.process),
                ("container", s.config.container != current.container),
            ];
            for (section, _) in fixed.iter().filter(|(_, changed)| *changed) {
                tracing::warn!("reload: [{section}] changed; it takes effect at the next restart");
                eprintln!(
                    "detector: reload: [{section}] changed; it takes effect at the next restart"
                );
            }
            let n = s.rules.len();
            detection.replace_rules(s.rules, s.policy);
            tracing::info!(rules = n, "reloaded configuration and rules");
            eprintln!("detector: reloaded: {n} rules");
            *current = s.config;
        }
    }
}
