//! The per-event stages after the sensor, without the sensor: process model → (probe)
//! → ECS document → rules → alerts. The daemon drives it from the ring buffer;
//! benchmarks and tests drive it from synthetic [`ProcessEvent`]s.
//!
//! Whether an event's document is worth building is the rule set's answer about a probe
//! of it ([`crate::ecs::ModelProbe`]): the stage only asks.

use super::detect::Detection;
use super::stats::PipelineStats;
use crate::ecs::DocBuilder;
use crate::event::{EventKind, ProcessEvent};
use crate::process::ProcessTable;
use crate::rules::VerdictCache;

#[cfg(test)]
mod tests;

/// Process table, document builder, detection and the pipeline's counters: everything one
/// decoded event goes through.
pub struct EventPipeline {
    pub table: ProcessTable,
    pub docs: DocBuilder,
    pub detection: Detection,
    pub stats: PipelineStats,
    /// The rule set's verdicts about lineage probes of `docs`, remembered per event kind
    /// and images (the subject's and its parent's).
    verdicts: VerdictCache,
}

impl EventPipeline {
    /// The stages, with fresh counters.
    pub fn new(table: ProcessTable, docs: DocBuilder, detection: Detection) -> Self {
        EventPipeline {
            table,
            docs,
            detection,
            stats: PipelineStats::default(),
            verdicts: VerdictCache::default(),
        }
    }

    /// Handles one decoded kernel event: updates the process model and, when some rule
    /// could match, builds its document and evaluates the rules (alerts go to the sinks).
    pub fn handle(&mut self, ev: &ProcessEvent) {
        self.stats.count(ev.kind);
        // First, from the subject's, its parent's and its previous images, its container
        // and the event kind alone (decisive for most events, and remembered per all of
        // these): the model is updated, but no snapshot is built.
        let rules = self.detection.rules();
        let (docs, verdicts) = (&self.docs, &mut self.verdicts);
        let mut skipped = false;
        let snap = self.table.apply_if_lineage(ev, |lineage| {
            let probe = docs.lineage_probe(*lineage);
            let wanted = rules.may_match_cached(&probe, verdicts);
            skipped = !wanted;
            wanted
        });
        if skipped {
            self.stats.skipped += 1;
        }
        let Some(snap) = snap else {
            return;
        };
        // Then most remaining events still cannot match any rule (the index knows from the
        // names, executables and args of the process and its parent, the container and the
        // action): skip building their document.
        if !self
            .detection
            .rules()
            .may_match_probe(&self.docs.probe(&snap))
        {
            self.stats.skipped += 1;
            return;
        }
        let doc = self.docs.build(&snap, Some(ev));
        self.detection.evaluate(&doc);
    }

    /// Evaluates the rules over the processes found in `/proc` at start, as if each had
    /// just exec'd; matches carry `detector.startup_scan: true`.
    pub fn startup_scan(&mut self) {
        let now = crate::ecs::now_rfc3339();
        for tgid in self.table.live_tgids() {
            let Some(snap) = self.table.current(tgid, EventKind::Exec) else {
                continue;
            };
            let mut doc = self.docs.build(&snap, None);
            doc.timestamp = Some(now.clone());
            if let Some(d) = doc.detector.as_mut() {
                d.startup_scan = Some(true);
                d.event = None;
            }
            self.stats.startup_matches += self.detection.evaluate(&doc) as u64;
        }
    }
}
