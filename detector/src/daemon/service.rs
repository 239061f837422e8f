//! The daemon's life in three steps, each small: [`Daemon::start`] (everything that can
//! fail with an exit code), [`Daemon::serve`] (events, signals, timers until a stop) and
//! [`Daemon::shutdown`] (bounded drain, last loss report, flush, final stats).

use serde_json::Value;

use super::canary::{Canary, Verdict};
use super::detect::Detection;
use super::events::{
    CanarySpawnFailed, EventCounters, EventsLost, FinalStats as FinalStatsLine, InternalEvent,
    ProgramsLoaded, Ready, RingReadFailed, SensorBlinded, SensorRecovered, ShutdownBudgetSpent,
    StatsReported, Stopping, UnflushedAtExit,
};
use super::heartbeat::{Beat, Heartbeat};
use super::memory;
use super::metrics::{Metrics, Snapshot};
use super::notify::Notifier;
use super::reader::{Control, Reader, StopReason, Wake};
use super::setup::{self, HostModel, StartError};
use super::stage::EventPipeline;
use super::stats::{self, Sources};
use super::ticks::{Cadence, Tick, Timers};
use super::{RunOptions, SHUTDOWN_BUDGET};
use crate::config::Config;
use crate::container::state::{RefreshConfig, RuntimeState};
use crate::ecs::EcsDocument;
use crate::sensor::{Counters, Sensor};

/// A started daemon: the programs attached, the table seeded, the outputs open.
pub struct Daemon {
    opts: RunOptions,
    /// The configuration running now (a reload compares the new one with it).
    config: Config,
    control: Control,
    /// Owns the attached programs: they stay attached as long as it lives.
    sensor: Sensor,
    /// The ring's size, fixed at start (a reload does not resize it).
    ring_bytes: u64,
    reader: Reader,
    pipeline: EventPipeline,
    /// Host and agent only: the base of loss reports.
    report_base: EcsDocument,
    timers: Timers,
    events: EventCounters,
    /// Prometheus snapshots and the health endpoint (`[metrics]`).
    metrics: Metrics,
    /// systemd's readiness protocol (inert without `$NOTIFY_SOCKET`).
    notify: Notifier,
    /// `[health] heartbeat_path` (inert when unset).
    heartbeat: Heartbeat,
    /// `[health] canary_interval_secs`: is the event stream still flowing?
    canary: Canary,
    /// Keeps the runtime-state index fresh (its thread stops when this is dropped).
    _runtime_state: RuntimeState,
}

/// What the daemon counted over its life (the `{"final_stats": …}` line).
#[derive(Debug)]
pub struct FinalStats {
    pub summary: Value,
}

impl Daemon {
    /// Loads the config, loads the programs (see [`Sensor::load`]: the memory peak),
    /// compiles the rules, opens the outputs, attaches the programs, seeds the table from
    /// `/proc` (after attaching: see the module docs of `daemon`), runs the start-up scan
    /// and prints the ready line. Must be called from a tokio runtime.
    pub fn start(opts: RunOptions) -> Result<Daemon, StartError> {
        // Signals first: one that arrives during start-up is then still seen by `serve`.
        let mut control = Control::install(true).map_err(StartError::Signals)?;
        memory::phase("start");
        let config = setup::load_config(&opts)?;
        // The programs are loaded (not attached) before the rules are compiled: loading
        // parses the kernel's BTF, the daemon's largest transient, which is dropped before
        // the compiled rules, its largest lasting structure, are built. Their errors wait
        // until the config, rules and outputs are known good, so those are reported
        // first, as when the sensor was started after them.
        let loaded = Sensor::load(&setup::sensor_config(&config));
        let settings = setup::compile_rules(config)?;
        memory::trim("rules compiled");
        let sinks = setup::open_sinks(&settings.config)?;
        let metrics =
            Metrics::start(&settings.config.metrics).map_err(|source| StartError::Metrics {
                addr: format!("{:?}", settings.config.metrics.listen),
                source,
            })?;
        let mut detection = Detection::new(settings.rules, settings.policy, sinks);
        detection.configure_sequences(
            settings.sequences,
            crate::alert::sequence::SequenceSettings::from_config(&settings.config.sequences),
        );

        let mut sensor = loaded
            .and_then(|l| l.attach())
            .map_err(StartError::Sensor)?;
        memory::phase("programs attached");
        let reader = Reader::new(sensor.records().map_err(StartError::Sensor)?);
        let mut model = HostModel::new(setup::table_config(&settings.config));
        // Runtime state answers for cgroups no name pattern recognises (`ctr run`'s
        // `/default/<name>`): started before seeding, so processes already running in such
        // containers are attributed too.
        let runtime_state = RuntimeState::start(
            settings.config.container.state_roots(),
            RefreshConfig::default(),
        )
        .map_err(StartError::RuntimeState)?;
        model
            .table
            .set_runtime_lookup(Box::new(runtime_state.handle()));
        let seeded = model.seed().map_err(StartError::Proc)?;
        memory::phase("table seeded");
        let report_base = model.docs.base();
        let pid_ns_ino = model.pid_ns_ino;
        let mut pipeline = EventPipeline::new(model.table, model.docs, detection);
        if settings.config.alerts.startup_scan {
            pipeline.startup_scan();
        }
        memory::phase("ready");

        let mut events = EventCounters::default();
        ProgramsLoaded {
            programs: setup::program_list(&sensor),
        }
        .emit(&mut events);
        Ready {
            rules: pipeline.detection.stage().rule_count(),
            seeded,
            startup_matches: pipeline.stats.startup_matches,
        }
        .emit(&mut events);
        // Only now: the programs are attached, the rules loaded, the table seeded.
        let notify = Notifier::from_env();
        notify.ready();
        control.stop_after(opts.duration);
        metrics.set_attached(true);
        metrics.beat();
        Ok(Daemon {
            ring_bytes: settings.config.sensor.ring_buffer_bytes,
            notify,
            heartbeat: Heartbeat::new(settings.config.health.heartbeat_path.clone()),
            canary: Canary::new(settings.config.health.canary_interval_secs, pid_ns_ino),
            timers: Timers::new(Cadence::from_interval_secs(
                settings.config.stats.interval_secs,
            )),
            opts,
            config: settings.config,
            control,
            sensor,
            reader,
            pipeline,
            report_base,
            events,
            metrics,
            _runtime_state: runtime_state,
        })
    }

    /// Handles events, SIGHUP and the timers until SIGTERM/SIGINT, the deadline, or a
    /// failed ring read; returns which.
    pub async fn serve(&mut self) -> StopReason {
        let reason = loop {
            let Daemon {
                reader,
                control,
                timers,
                ..
            } = self;
            match reader.wait(control, timers.next()).await {
                Wake::Events => {}
                Wake::Hangup => self.reload(),
                Wake::Timer(tick) => self.on_tick(tick),
                Wake::Stop(reason) => break reason,
                Wake::Failed(e) => {
                    RingReadFailed { error: &e }.emit(&mut self.events);
                    break StopReason::ReadFailed;
                }
            }
            let (pipeline, canary) = (&mut self.pipeline, &mut self.canary);
            self.reader.handle_chunk(|ev| {
                canary.observe(ev);
                pipeline.handle(ev);
            });
            self.alive();
        };
        self.notify.stopping();
        if self.heartbeat.is_on() {
            let summary = self.summary(self.sensor.counters().ok().as_ref());
            self.heartbeat.stopped(self.beat_of(&summary));
        }
        Stopping { reason }.emit(&mut self.events);
        reason
    }

    /// Evaluates what the kernel queued before the stop, within half the shutdown budget
    /// (what the budget leaves is counted), reports the last loss, flushes the outputs and
    /// prints the final stats line.
    pub fn shutdown(mut self) -> FinalStats {
        let pipeline = &mut self.pipeline;
        let unprocessed = self
            .reader
            .drain(SHUTDOWN_BUDGET / 2, |ev| pipeline.handle(ev));
        ShutdownBudgetSpent {
            events: unprocessed,
        }
        .emit(&mut self.events);
        let kernel = self.sensor.counters().ok();
        if let Some(k) = &kernel {
            self.report_loss(k);
        }
        UnflushedAtExit {
            lines: self.pipeline.detection.finish(),
        }
        .emit(&mut self.events);
        let mut summary = self.summary(kernel.as_ref());
        // The daemon's own peak RSS over its whole life, drain included: what a harness
        // cannot read once the process has exited (and `wait4`'s figure also holds the RSS
        // of whoever spawned it).
        if let (Some(o), Some(m)) = (summary.as_object_mut(), memory::Usage::now()) {
            o.insert(
                "memory".into(),
                serde_json::json!({ "rss_kib": m.rss, "peak_rss_kib": m.hwm }),
            );
        }
        FinalStatsLine { summary: &summary }.emit(&mut self.events);
        self.metrics.set_attached(false);
        self.publish_metrics(kernel.as_ref());
        FinalStats { summary }
    }

    /// One turn of the event loop done: mark the metrics endpoint healthy, ping the watchdog
    /// and write the heartbeat when due (a loop that stops turning stops all three).
    fn alive(&mut self) {
        self.metrics.beat();
        self.notify.alive();
        if self.heartbeat.due() {
            let summary = self.summary(self.sensor.counters().ok().as_ref());
            let beat = self.beat_of(&summary);
            self.heartbeat.beat(&beat);
        }
    }

    /// The heartbeat for `summary`, with the canary's verdict.
    fn beat_of(&self, summary: &Value) -> Beat {
        let mut beat = Beat::from_summary(summary);
        beat.blinded = self.canary.blinded();
        beat
    }

    /// The canary's periodic work; a verdict is logged, counted, written to the alert
    /// stream and turns both health paths (the heartbeat follows at its next write).
    fn check_canary(&mut self) {
        let report = self.canary.tick();
        if let Some(e) = &report.spawn_failed {
            CanarySpawnFailed { error: e }.emit(&mut self.events);
        }
        let Some(verdict) = report.verdict else {
            return;
        };
        let doc = verdict.document(&self.report_base);
        let written = self.pipeline.detection.write_document(&doc);
        let message = doc.message.as_deref().unwrap_or("");
        match verdict {
            Verdict::Blinded { .. } => {
                self.metrics.set_blinded(true);
                SensorBlinded { message, written }.emit(&mut self.events);
            }
            Verdict::Recovered { .. } => {
                self.metrics.set_blinded(false);
                SensorRecovered { message, written }.emit(&mut self.events);
            }
        }
    }

    fn reload(&mut self) {
        self.notify.reloading();
        let stats_before = self.config.stats.clone();
        super::reload::reload(
            &self.opts,
            &mut self.config,
            &mut self.pipeline.detection,
            &mut self.events,
        );
        if self.config.stats != stats_before {
            self.timers = Timers::new(Cadence::from_interval_secs(self.config.stats.interval_secs));
        }
        self.heartbeat
            .set_path(self.config.health.heartbeat_path.clone());
        self.canary
            .set_interval(self.config.health.canary_interval_secs);
        self.metrics.set_blinded(self.canary.blinded());
        self.notify.ready();
    }

    fn on_tick(&mut self, tick: Tick) {
        match tick {
            Tick::Housekeeping => {
                self.pipeline.detection.tick();
                self.check_canary();
                if self.metrics.due() {
                    let kernel = self.sensor.counters().ok();
                    self.publish_metrics(kernel.as_ref());
                }
            }
            Tick::Loss => {
                if let Ok(k) = self.sensor.counters() {
                    self.report_loss(&k);
                }
            }
            Tick::Stats => {
                let kernel = self.sensor.counters().ok();
                if let Some(k) = &kernel {
                    self.report_loss(k);
                }
                let summary = self.summary(kernel.as_ref());
                StatsReported { summary: &summary }.emit(&mut self.events);
                let b = Beat::from_summary(&summary);
                self.notify.status(b.events, b.lost, b.alerts);
            }
        }
    }

    /// Writes a loss report to the alert stream when something was lost since the last.
    fn report_loss(&mut self, kernel: &Counters) {
        let p = &mut self.pipeline;
        let mark = p.stats.mark();
        let Some(doc) = p.stats.loss_report(
            kernel,
            self.reader.malformed(),
            p.detection.stats(),
            &self.report_base,
        ) else {
            return;
        };
        let written = p.detection.write_document(&doc);
        if !written {
            // Not in the stream: what it carried goes into the next report.
            p.stats.rewind(mark);
        }
        EventsLost {
            message: doc.message.as_deref().unwrap_or(""),
            written,
        }
        .emit(&mut self.events);
    }

    /// A metrics snapshot to `/metrics` and the textfile, when either is on.
    fn publish_metrics(&mut self, kernel: Option<&Counters>) {
        if !self.metrics.enabled() {
            return;
        }
        let snapshot = Snapshot::from_sources(&self.sources(kernel));
        self.metrics.publish(&snapshot);
    }

    /// The stats document: every stage's counters, the kernel's, how the reader drained
    /// the ring, and the daemon's own events.
    fn summary(&self, kernel: Option<&Counters>) -> Value {
        stats::summary(&self.sources(kernel))
    }

    fn sources<'a>(&'a self, kernel: Option<&'a Counters>) -> Sources<'a> {
        Sources {
            pipeline: &self.pipeline.stats,
            kernel,
            malformed: self.reader.malformed(),
            fault_dropped: self.reader.fault_dropped(),
            canary: self.canary.stats(),
            table: self.pipeline.table.stats(),
            detection: &self.pipeline.detection,
            reader: self.reader.stats(),
            ring: (self.ring_bytes, self.reader.fill()),
            events: &self.events,
        }
    }
}
