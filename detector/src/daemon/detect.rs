//! The detection stage: the alert stage ([`AlertStage`]: compiled rules over ECS
//! documents, the alert policy with exceptions and suppression, encoded alert lines), then
//! every line to every sink. `detector replay` runs the same [`AlertStage`] with stdout as
//! its output, so `run` and `replay` give the same alerts for the same documents.
//!
//! Replaced whole on SIGHUP ([`Detection::replace_rules`]): a new rule set and policy are
//! built first and swapped in only when everything compiled, so a bad reload leaves the
//! running set untouched.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::alert::{AlertLine, AlertPolicy, AlertStage, LineEncoder};
use crate::ecs::EcsDocument;
use crate::rules::RuleSet;
use crate::sink::{Delivery, Sink};

/// Alerts written, by rule name, and matches not written, for stats.
#[derive(Clone, Debug, Default)]
pub struct DetectStats {
    pub alerts: u64,
    pub by_rule: FxHashMap<String, u64>,
    /// Documents evaluated, and the time spent evaluating them.
    pub evaluated: u64,
    pub rule_time: Duration,
    /// Alert lines a sink had to drop (retry queue full), summed over sinks.
    pub sink_dropped: u64,
    pub encode_failed: u64,
    /// Alerts written by rule id: (the rule's latest name, count), for metrics.
    pub by_rule_id: FxHashMap<String, (String, u64)>,
    /// Building-block lines of sequence alerts written (one per event of a sequence; the
    /// sequence itself is counted in `alerts`).
    pub building_blocks: u64,
    /// The sequence side's counters (reorder window, engine, stored events).
    pub sequences: crate::alert::sequence::SequenceStats,
}

/// The alert stage, the sinks its lines go to, and the counters.
pub struct Detection {
    stage: AlertStage,
    /// Encodes the non-alert lines (loss reports).
    encoder: LineEncoder,
    sinks: Vec<Box<dyn Sink>>,
    stats: DetectStats,
    /// Report documents that could not be encoded (the stage counts its own alerts).
    reports_unencodable: u64,
    /// Time spent on each evaluated document (`detector_rule_evaluation_seconds`).
    rule_seconds: super::metrics::RuleSeconds,
}

/// Hands one alert line to every sink and counts it.
fn deliver(sinks: &mut [Box<dyn Sink>], stats: &mut DetectStats, a: AlertLine<'_>) {
    for s in sinks.iter_mut() {
        if s.write_line(a.line) == Delivery::Dropped {
            stats.sink_dropped += 1;
        }
    }
    if a.building_block {
        // One event of a sequence alert: the shell line after it is the alert.
        stats.building_blocks += 1;
        return;
    }
    stats.alerts += 1;
    match stats.by_rule.get_mut(a.meta.name.as_str()) {
        Some(n) => *n += 1,
        None => {
            stats.by_rule.insert(a.meta.name.clone(), 1);
        }
    }
    match stats.by_rule_id.get_mut(a.meta.rule_id.as_str()) {
        Some((name, n)) => {
            *n += 1;
            if *name != a.meta.name {
                name.clone_from(&a.meta.name);
            }
        }
        None => {
            let entry = (a.meta.name.clone(), 1);
            stats.by_rule_id.insert(a.meta.rule_id.clone(), entry);
        }
    }
}

impl Detection {
    pub fn new(rules: RuleSet, policy: AlertPolicy, sinks: Vec<Box<dyn Sink>>) -> Self {
        Detection {
            stage: AlertStage::new(rules, policy),
            encoder: LineEncoder::new(),
            sinks,
            stats: DetectStats::default(),
            reports_unencodable: 0,
            rule_seconds: super::metrics::RuleSeconds::default(),
        }
    }

    /// Runs one document's evaluation and records its time in the histogram (the stage
    /// already times it: this only takes the difference).
    fn timed(&mut self, f: impl FnOnce(&mut Self) -> usize) -> usize {
        let (n, t) = (self.stats.evaluated, self.stats.rule_time);
        let r = f(self);
        if self.stats.evaluated > n {
            let spent = self.stats.rule_time.saturating_sub(t);
            self.rule_seconds.observe(spent);
        }
        r
    }

    /// The per-document rule evaluation time histogram.
    pub fn rule_seconds(&self) -> &super::metrics::RuleSeconds {
        &self.rule_seconds
    }

    /// Runs `f` on the stage with an output that delivers each alert line to the sinks,
    /// then takes the stage's counters into the stats.
    fn with_sinks<R>(
        &mut self,
        f: impl FnOnce(&mut AlertStage, &mut dyn FnMut(AlertLine<'_>)) -> R,
    ) -> R {
        let Detection {
            stage,
            sinks,
            stats,
            reports_unencodable,
            ..
        } = self;
        let r = f(stage, &mut |a| deliver(sinks, stats, a));
        let s = stage.stats();
        stats.evaluated = s.evaluated;
        stats.rule_time = s.rule_time;
        stats.encode_failed = s.encode_failed + *reports_unencodable;
        stats.sequences = stage.sequence_stats();
        r
    }

    /// The sequence rules and how they run (`[sequences]`), at start: before any event.
    pub fn configure_sequences(
        &mut self,
        seq_rules: Vec<crate::rules::SequenceRule>,
        settings: crate::alert::sequence::SequenceSettings,
    ) {
        self.stage.configure_sequences(seq_rules, settings);
    }

    /// [`Detection::replace_rules`] with new sequence rules and settings too (SIGHUP).
    pub fn replace_all_rules(
        &mut self,
        rules: RuleSet,
        seq_rules: Vec<crate::rules::SequenceRule>,
        policy: AlertPolicy,
        settings: crate::alert::sequence::SequenceSettings,
    ) {
        self.with_sinks(|stage, out| stage.replace_all(rules, seq_rules, policy, settings, out))
    }

    /// The stage (its rules of both kinds, for stats and tests).
    pub fn stage(&self) -> &AlertStage {
        &self.stage
    }

    /// Swaps in a new rule set and policy (SIGHUP). Open suppression windows of the old
    /// policy are closed and reported first, so no folded count is lost.
    pub fn replace_rules(&mut self, rules: RuleSet, policy: AlertPolicy) {
        self.with_sinks(|stage, out| stage.replace(rules, policy, out))
    }

    /// Replaces the sinks (a reload that changed the outputs), flushing the old ones.
    pub fn replace_sinks(&mut self, sinks: Vec<Box<dyn Sink>>) {
        for s in &mut self.sinks {
            s.flush();
        }
        self.sinks = sinks;
    }

    pub fn rules(&self) -> &RuleSet {
        self.stage.rules()
    }

    /// The sequence side of the stage (its pre-document gate).
    pub fn sequences(&self) -> &crate::alert::sequence::SequenceStage {
        self.stage.sequences()
    }

    /// [`AlertStage::rules_and_sequences`].
    pub fn rules_and_sequences(
        &mut self,
    ) -> (&RuleSet, &mut crate::alert::sequence::SequenceStage) {
        self.stage.rules_and_sequences()
    }

    pub fn sinks(&self) -> &[Box<dyn Sink>] {
        &self.sinks
    }

    /// Evaluates every rule that can match `doc`; writes the alerts the policy lets
    /// through (after the closing alerts of suppression windows that `doc`'s time ended).
    /// Returns how many of `doc`'s matches were written.
    pub fn evaluate(&mut self, doc: &EcsDocument) -> usize {
        self.timed(|d| d.with_sinks(|stage, out| stage.evaluate(doc, out)))
    }

    /// What the sequence rules make of an event seen through its snapshot
    /// ([`AlertStage::decide_sequences`]).
    pub fn decide_sequences(
        &mut self,
        probe: &dyn crate::rules::Probe,
        snap: &crate::process::Snapshot,
    ) -> crate::alert::sequence::Decision {
        self.stage.decide_sequences(probe, snap)
    }

    /// [`Detection::evaluate`] of an event decided on its snapshot
    /// ([`AlertStage::evaluate_decided`]).
    pub fn evaluate_decided(
        &mut self,
        ts_ns: i64,
        hits: Option<(
            crate::alert::sequence::engine::Prepared,
            crate::alert::sequence::lazy::LazyEvent,
        )>,
    ) -> usize {
        self.timed(|d| d.with_sinks(|stage, out| stage.evaluate_decided(ts_ns, hits, out)))
    }

    /// [`Detection::evaluate`] of a document read at `seen` (simulations of a live stream).
    pub fn evaluate_at(&mut self, doc: &EcsDocument, seen: Instant) -> usize {
        self.timed(|d| d.with_sinks(|stage, out| stage.evaluate_at(doc, seen, out)))
    }

    /// Periodic work: close the suppression windows that ended (writing their counts) and
    /// retry queued lines.
    pub fn tick(&mut self) {
        self.tick_at(Instant::now());
    }

    /// [`Detection::tick`] at real instant `now` (simulations of a live stream).
    pub fn tick_at(&mut self, now: Instant) {
        self.with_sinks(|stage, out| stage.tick_at(now, out));
        for s in &mut self.sinks {
            s.retry();
        }
    }

    /// Writes a non-alert line (a loss report) to every sink. Returns false when a sink
    /// dropped it (or it could not be encoded), so the caller can report it again.
    pub fn write_document(&mut self, doc: &EcsDocument) -> bool {
        match self.encoder.encode(doc) {
            Ok(line) => {
                let mut delivered = true;
                for s in &mut self.sinks {
                    if s.write_line(line) == Delivery::Dropped {
                        self.stats.sink_dropped += 1;
                        delivered = false;
                    }
                }
                delivered
            }
            Err(e) => {
                self.reports_unencodable += 1;
                self.stats.encode_failed += 1;
                tracing::error!(error = %e, "cannot encode a report document");
                false
            }
        }
    }

    /// Reopens every sink (SIGHUP, after logrotate moved the file).
    pub fn reopen_sinks(&mut self) {
        for s in &mut self.sinks {
            if let Err(e) = s.reopen() {
                tracing::error!(sink = s.name(), error = %e, "reopening the alert output failed; still writing to the old one");
            }
        }
    }

    /// Shutdown: report open suppression windows, then give queued lines a last chance.
    /// Returns the lines still queued (lost).
    pub fn finish(&mut self) -> usize {
        self.with_sinks(|stage, out| stage.finish(out));
        self.sinks.iter_mut().map(|s| s.flush()).sum()
    }

    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    pub fn policy(&self) -> &AlertPolicy {
        self.stage.policy()
    }
}
