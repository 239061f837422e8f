//! The per-event stages after the sensor, without the sensor: process model → (probe)
//! → ECS document → rules → alerts. The daemon drives it from the ring buffer;
//! benchmarks and tests drive it from synthetic [`ProcessEvent`]s.
//!
//! Whether an event's document is worth building is the rule set's answer about a probe
//! of it ([`crate::ecs::ModelProbe`]): the stage only asks.

use super::detect::Detection;
use super::stats::PipelineStats;
use crate::alert::sequence::Decision;
use crate::alert::sequence::lazy::{LaterBuilder, LazyEvent};
use crate::ecs::DocBuilder;
use crate::event::{EventKind, ProcessEvent};
use crate::process::{ProcessTable, Snapshot};
use crate::rules::VerdictCache;
use std::sync::{Arc, Mutex};

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
    /// Builds the documents of events kept for sequences when they are needed (made from
    /// `docs` on first use).
    later: Option<LaterBuilder>,
    /// [`EventPipeline::sequences_only`]'s decision, for the event being handled.
    decided: Option<Decision>,
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
            later: None,
            decided: None,
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
        // even when no single-event rule wants it, unless every such term is a later one
        // of a rule with nothing under way (`alert::sequence::idle`).
        let (rules, seqs) = self.detection.rules_and_sequences();
        let (docs, verdicts, seq_verdicts) =
            (&self.docs, &mut self.verdicts, &mut self.seq_verdicts);
        let (mut skipped, mut rules_may) = (false, false);
        let snap = self.table.apply_if_lineage(ev, |lineage| {
            let probe = docs.lineage_probe(*lineage);
            rules_may = rules.may_match_cached(&probe, verdicts);
            let wanted =
                rules_may || seqs.wants_lineage(&probe, docs.unix_ns(ev.boot_ns), seq_verdicts);
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
        // action): skip building their document. The lineage probe's "no" is final (a probe
        // answers no only when no rule can match whatever the unknown fields hold): an
        // event only the sequences wanted is not asked about again.
        let rules = rules_may && {
            let probe = self.docs.probe(&snap);
            self.detection
                .rules()
                .may_match_cached(&probe, &mut self.verdicts)
        };
        // No single-event rule wants it: the sequence terms decide on the snapshot (one
        // indexed pass, which also says when no term can take it); only when they cannot
        // tell does the index's three-valued verdict decide whether the document is built.
        if !rules && self.detection.sequences().is_active() && self.sequences_only(&snap) {
            return self.keep_for_sequences(snap, ev);
        }
        let wanted = rules || {
            let probe = self.docs.probe(&snap);
            self.detection.sequences().may_match_probe(&probe)
        };
        if !wanted {
            self.stats.skipped += 1;
            return;
        }
        let doc = self.docs.build(&snap, Some(ev));
        self.detection.evaluate(&doc);
    }

    /// For an event only sequence rules may want: whether their terms and keys are decided
    /// on its snapshot (then nothing else needs its document; see
    /// [`crate::alert::sequence::lazy`]). Remembers the decision for
    /// [`EventPipeline::keep_for_sequences`].
    fn sequences_only(&mut self, snap: &Snapshot) -> bool {
        let probe = self.docs.probe(snap);
        self.decided = Some(self.detection.decide_sequences(&probe, snap));
        !matches!(self.decided, Some(Decision::Undecided))
    }

    /// The event decided by [`EventPipeline::sequences_only`] through the sequences, kept
    /// as its snapshot if a sequence holds it; no document is built.
    fn keep_for_sequences(&mut self, snap: Snapshot, ev: &ProcessEvent) {
        let ts = self.docs.unix_ns(snap.event_boot_ns);
        let Some(Decision::Hits(p)) = self.decided.take() else {
            // No term takes it: skipped, as any event no rule can match.
            self.stats.skipped += 1;
            return;
        };
        let later = self
            .later
            .get_or_insert_with(|| Arc::new(Mutex::new(self.docs.same_host())));
        let event = LazyEvent::new(snap, ev, Arc::clone(later));
        self.detection.evaluate_decided(ts, Some((p, event)));
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
