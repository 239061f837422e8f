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
    /// The same for the sequence rules' terms.
    seq_verdicts: VerdictCache,
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
            seq_verdicts: VerdictCache::default(),
        }
    }

    /// Handles one decoded kernel event: updates the process model and, when some rule
    /// could match, builds its document and evaluates the rules (alerts go to the sinks).
    pub fn handle(&mut self, ev: &ProcessEvent) {
        self.stats.count(ev.kind);
        // First, from the subject's, its parent's and its previous images, its container
        // and the event kind alone (decisive for most events, and remembered per all of
        // these): the model is updated, but no snapshot is built.
        // Sequence rules are asked too: an event one of their terms may match is needed
        // even when no single-event rule wants it.
        let rules = self.detection.rules();
        let seqs = self.detection.sequences();
        let (docs, verdicts, seq_verdicts) =
            (&self.docs, &mut self.verdicts, &mut self.seq_verdicts);
        let mut skipped = false;
        let snap = self.table.apply_if_lineage(ev, |lineage| {
            let probe = docs.lineage_probe(*lineage);
            let wanted = rules.may_match_cached(&probe, verdicts)
                || seqs.may_match_cached(&probe, seq_verdicts);
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
        let wanted = {
            let probe = self.docs.probe(&snap);
            self.detection
                .rules()
                .may_match_cached(&probe, &mut self.verdicts)
                || self.detection.sequences().may_match_probe(&probe)
        };
        if !wanted {
            self.stats.skipped += 1;
            return;
        }
        let doc = self.docs.build(&snap, Some(ev));
        self.detection.evaluate(&doc);
    }

    /// Evaluates the rules over the processes found in `/proc` at start. Each is first
    /// what Elastic Defend reports for it, `event.action: already_running` with
    /// `event.type: info`; when that raises no alert, it is evaluated again as if it had
    /// just exec'd (`exec` / `start`), so rules written for live execs (the seed rule on an
    /// sshd started before the daemon) still see it. Either way its alerts carry
    /// `detector.startup_scan: true`; one process raises the alerts of one view only, so a
    /// rule that ignores `event.action` does not alert twice.
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
            let exec_view = doc.event.clone();
            if let Some(e) = doc.event.as_mut() {
                e.action = Some(crate::ecs::ALREADY_RUNNING_ACTION.into());
                e.r#type = vec![crate::ecs::ALREADY_RUNNING_TYPE.into()];
            }
            let mut matches = self.detection.evaluate(&doc);
            if matches == 0 {
                doc.event = exec_view;
                matches = self.detection.evaluate(&doc);
            }
            self.stats.startup_matches += matches as u64;
        }
    }
}
