//! The daemon's observable events, each modelled once (as Vector's `internal_events`): a
//! small type whose one [`emit`](InternalEvent::emit) writes its line and bumps its
//! counter, so what the log says and what the stats count cannot drift apart.
//!
//! Two kinds of line, never both for one event:
//! - **Status lines** (`detector: ready: …`, `detector: reloaded: N rules`,
//!   `detector: reload refused, …`, `detector: reload: [section] changed; …`,
//!   `{"final_stats": …}`) are the daemon's stderr protocol: supervisors, benchmarks and
//!   tests wait for them. They are printed as plain lines whatever the log level and
//!   format, and are *not* also logged: the log goes to stderr too, so logging them would
//!   print each one twice.
//! - Everything else is a `tracing` record at the level it deserves, filtered and
//!   formatted as `[log]` says.

use serde::Serialize;

/// What the daemon's own events have counted (the `daemon` object of the stats, plus
/// `shutdown_unprocessed` at its top level).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventCounters {
    /// SIGHUP reloads that swapped in a new configuration and rules.
    pub reloads: u64,
    /// SIGHUP reloads refused (invalid config or rules): the running set stayed.
    pub reloads_refused: u64,
    /// Reloads whose new outputs could not be opened: the old outputs stayed.
    pub outputs_refused: u64,
    /// Sections changed by a reload that only take effect at the next start.
    pub restart_needed: u64,
    /// Loss reports written to the alert stream.
    pub loss_reports: u64,
    /// Loss reports an output dropped (carried by the next one).
    pub loss_reports_dropped: u64,
    /// Times reading the ring buffer failed (the daemon then stops).
    pub ring_read_failures: u64,
    /// Events read from the kernel but not evaluated because the shutdown budget ran out.
    #[serde(skip)]
    pub shutdown_unprocessed: u64,
    /// Alert lines still unwritten when the daemon exited.
    pub unflushed_at_exit: u64,
    /// Times the event stream was found stopped (a canary's exec never came back).
    pub blinded: u64,
    /// Times it came back after that.
    pub recovered: u64,
    /// Canaries that could not be spawned (the check goes on at the next interval).
    pub canary_spawn_failed: u64,
}

/// One observable event: its line and its counter, in one place.
pub trait InternalEvent {
    /// Writes the event's line (a status line or a log record, see the module docs) and
    /// counts it.
    fn emit(self, counters: &mut EventCounters);
}

/// Start-up done: the programs are attached and the table is seeded. Status line.
pub struct Ready {
    pub rules: usize,
    pub seeded: u64,
    pub startup_matches: u64,
}

impl InternalEvent for Ready {
    fn emit(self, _: &mut EventCounters) {
        eprintln!("{}", self.line());
    }
}

impl Ready {
    fn line(&self) -> String {
        format!(
            "detector: ready: {} rules, {} processes seeded, {} start-up matches",
            self.rules, self.seeded, self.startup_matches
        )
    }
}

/// The eBPF programs loaded, with their verified instruction counts (`name=insns,…`).
pub struct ProgramsLoaded {
    pub programs: String,
}

impl InternalEvent for ProgramsLoaded {
    fn emit(self, _: &mut EventCounters) {
        tracing::info!(programs = %self.programs, "eBPF programs attached");
    }
}

/// SIGHUP with an invalid config or rule set: the running one stays. Status line.
pub struct ReloadRefused<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ReloadRefused<'_> {
    fn emit(self, counters: &mut EventCounters) {
        eprintln!(
            "detector: reload refused, keeping the running rules: {}",
            self.error
        );
        counters.reloads_refused += 1;
    }
}

/// A reload's new outputs could not be opened: the old ones stay.
pub struct OutputsRefused<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for OutputsRefused<'_> {
    fn emit(self, counters: &mut EventCounters) {
        tracing::error!(
            "reload: new outputs unusable ({}); keeping the old ones",
            self.error
        );
        counters.outputs_refused += 1;
    }
}

/// A reload changed a section that is applied only at start. Status line.
pub struct SectionNeedsRestart {
    pub section: &'static str,
}

impl InternalEvent for SectionNeedsRestart {
    fn emit(self, counters: &mut EventCounters) {
        eprintln!(
            "detector: reload: [{}] changed; it takes effect at the next restart",
            self.section
        );
        counters.restart_needed += 1;
    }
}

/// A reload swapped in new rules (and config). Status line.
pub struct Reloaded {
    pub rules: usize,
}

impl InternalEvent for Reloaded {
    fn emit(self, counters: &mut EventCounters) {
        eprintln!("detector: reloaded: {} rules", self.rules);
        counters.reloads += 1;
    }
}

/// Something was lost since the last report; the report went to the alert stream
/// (`written`) or was dropped by an output and is carried by the next one.
pub struct EventsLost<'a> {
    pub message: &'a str,
    pub written: bool,
}

impl InternalEvent for EventsLost<'_> {
    fn emit(self, counters: &mut EventCounters) {
        if self.written {
            tracing::warn!(message = self.message, "events lost");
            counters.loss_reports += 1;
        } else {
            tracing::warn!(
                message = self.message,
                "events lost; the loss report was dropped by an output and goes into the next"
            );
            counters.loss_reports_dropped += 1;
        }
    }
}

/// The event stream stopped: a canary's exec did not come back (see `daemon::canary`).
/// Reported in the alert stream too (`written`: whether it reached every output).
pub struct SensorBlinded<'a> {
    pub message: &'a str,
    pub written: bool,
}

impl InternalEvent for SensorBlinded<'_> {
    fn emit(self, counters: &mut EventCounters) {
        tracing::error!(
            message = self.message,
            reported = self.written,
            "sensor blinded: the event stream stopped"
        );
        counters.blinded += 1;
    }
}

/// A canary came back after [`SensorBlinded`]: events flow again.
pub struct SensorRecovered<'a> {
    pub message: &'a str,
    pub written: bool,
}

impl InternalEvent for SensorRecovered<'_> {
    fn emit(self, counters: &mut EventCounters) {
        tracing::warn!(
            message = self.message,
            reported = self.written,
            "sensor recovered: events flow again"
        );
        counters.recovered += 1;
    }
}

/// A canary could not be spawned (not fatal: the next interval tries again).
pub struct CanarySpawnFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for CanarySpawnFailed<'_> {
    fn emit(self, counters: &mut EventCounters) {
        tracing::warn!(error = %self.error, "cannot spawn the canary process");
        counters.canary_spawn_failed += 1;
    }
}

/// Reading the ring buffer failed: the daemon stops.
pub struct RingReadFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for RingReadFailed<'_> {
    fn emit(self, counters: &mut EventCounters) {
        tracing::error!(error = %self.error, "reading the ring buffer failed; stopping");
        counters.ring_read_failures += 1;
    }
}

/// The serve loop ended, and why.
pub struct Stopping {
    pub reason: super::reader::StopReason,
}

impl InternalEvent for Stopping {
    fn emit(self, _: &mut EventCounters) {
        tracing::info!(reason = ?self.reason, "stopping: draining the ring buffer");
    }
}

/// The shutdown budget ran out with events still queued: counted, not silently dropped.
pub struct ShutdownBudgetSpent {
    pub events: u64,
}

impl InternalEvent for ShutdownBudgetSpent {
    fn emit(self, counters: &mut EventCounters) {
        counters.shutdown_unprocessed += self.events;
        if self.events > 0 {
            tracing::warn!(
                events = self.events,
                "shutdown budget spent: events still queued were not evaluated"
            );
        }
    }
}

/// Alert lines the outputs still held at exit.
pub struct UnflushedAtExit {
    pub lines: usize,
}

impl InternalEvent for UnflushedAtExit {
    fn emit(self, counters: &mut EventCounters) {
        counters.unflushed_at_exit += self.lines as u64;
        if self.lines > 0 {
            tracing::error!(
                lines = self.lines,
                "alert lines could not be written before exit"
            );
        }
    }
}

/// The periodic stats line (a log record; see `[stats] interval_secs`).
pub struct StatsReported<'a> {
    pub summary: &'a serde_json::Value,
}

impl InternalEvent for StatsReported<'_> {
    fn emit(self, _: &mut EventCounters) {
        tracing::info!(stats = %self.summary, "stats");
    }
}

/// The summary at exit: one machine-readable status line.
pub struct FinalStats<'a> {
    pub summary: &'a serde_json::Value,
}

impl InternalEvent for FinalStats<'_> {
    fn emit(self, _: &mut EventCounters) {
        eprintln!("{}", serde_json::json!({ "final_stats": self.summary }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_keeps_its_protocol_shape() {
        let line = Ready {
            rules: 2,
            seeded: 10,
            startup_matches: 0,
        }
        .line();
        assert_eq!(
            line,
            "detector: ready: 2 rules, 10 processes seeded, 0 start-up matches"
        );
    }

    #[test]
    fn each_event_counts_once() {
        let mut c = EventCounters::default();
        Reloaded { rules: 3 }.emit(&mut c);
        ReloadRefused { error: &"bad" }.emit(&mut c);
        SectionNeedsRestart { section: "sensor" }.emit(&mut c);
        EventsLost {
            message: "m",
            written: true,
        }
        .emit(&mut c);
        EventsLost {
            message: "m",
            written: false,
        }
        .emit(&mut c);
        ShutdownBudgetSpent { events: 0 }.emit(&mut c);
        ShutdownBudgetSpent { events: 7 }.emit(&mut c);
        SensorBlinded {
            message: "m",
            written: true,
        }
        .emit(&mut c);
        SensorRecovered {
            message: "m",
            written: false,
        }
        .emit(&mut c);
        CanarySpawnFailed { error: &"no" }.emit(&mut c);
        assert_eq!(
            c,
            EventCounters {
                reloads: 1,
                reloads_refused: 1,
                restart_needed: 1,
                loss_reports: 1,
                loss_reports_dropped: 1,
                shutdown_unprocessed: 7,
                blinded: 1,
                recovered: 1,
                canary_spawn_failed: 1,
                ..EventCounters::default()
            }
        );
    }
}
