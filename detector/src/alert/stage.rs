//! The alert stage: compiled rules over one document, the policy (exceptions, suppression
//! in event time), then each alert as one encoded NDJSON line handed to the caller.
//!
//! ```text
//! doc ──RuleSet::matches──► RuleIdx… ──AlertPolicy──► AlertTemplate::alert ──LineEncoder──► AlertLine ──► caller
//!                                      (clock: the documents' @timestamp)
//! ```
//! The daemon's `Detection` hands the lines to its sinks, `replay` writes them to stdout:
//! the alerts themselves come from here, so the two agree on the same documents.
//!
//! Sequence rules run here too ([`super::sequence`]): each document is also offered to the
//! sequence stage (a reorder window by `@timestamp`, then the engine); a completed sequence
//! goes through the same policy (its last event decides exceptions and suppression) and
//! becomes its building-block alerts and its shell alert ([`super::sequence::shape`]).
//! Single-event rules never wait for the window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::{EventTime, StreamClock};
use super::policy::{AlertPolicy, Folded, Verdict};
use super::sequence::engine::Prepared;
use super::sequence::lazy::LazyEvent;
use super::sequence::{Completed, Decision, SequenceSettings, SequenceStage, SequenceStats, shape};
use super::{AlertTemplate, AlertTemplates, LineEncoder};
use crate::ecs::EcsDocument;
use crate::rules::meta::RuleMeta;
use crate::rules::{RuleIdx, RuleSet, SequenceRule};

/// One alert, encoded: what the stage hands its caller.
#[derive(Clone, Copy, Debug)]
pub struct AlertLine<'a> {
    /// The rule (index in [`AlertStage::rules`]).
    pub rule: RuleIdx,
    /// That rule's metadata.
    pub meta: &'a RuleMeta,
    /// The alert document as one JSON line ending in `\n`.
    pub line: &'a [u8],
    /// `Some(n)`: the closing alert of a suppression window that folded `n` matches.
    pub suppressed: Option<u64>,
    /// A building-block alert of a sequence (one of its events; the sequence's own alert
    /// is the shell line written after its blocks): not counted as an alert of its own.
    pub building_block: bool,
}

/// What the stage counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Documents evaluated.
    pub evaluated: u64,
    /// Time spent matching rules (not building or writing alerts).
    pub rule_time: Duration,
    /// Alert lines produced (sequence building blocks not included).
    pub alerts: u64,
    /// Building-block lines of sequence alerts produced.
    pub building_blocks: u64,
    /// Alerts that could not be encoded (logged; none are expected).
    pub encode_failed: u64,
}

/// Rules, their alert templates, the policy and its clock: documents in, alert lines out.
pub struct AlertStage {
    rules: Arc<RuleSet>,
    templates: AlertTemplates,
    policy: AlertPolicy,
    clock: StreamClock,
    encoder: LineEncoder,
    /// Reused buffer of matches.
    matched: Vec<RuleIdx>,
    stats: StageStats,
    /// The sequence rules (index `rules.len() + i` in [`AlertLine::rule`] and the policy)
    /// and their alert templates.
    seq_rules: Arc<[SequenceRule]>,
    seq_templates: Vec<AlertTemplate>,
    /// Sequence rules: the reorder window, the engine, the stored events.
    sequences: SequenceStage,
    settings: SequenceSettings,
    /// Reused buffer of completed sequences.
    completed: Vec<Completed>,
}

impl AlertStage {
    /// A stage over `rules` with `policy` ([`AlertPolicy::off`]: every match is an alert).
    pub fn new(rules: RuleSet, policy: AlertPolicy) -> Self {
        Self::with_sequences(rules, Vec::new(), policy, SequenceSettings::default())
    }

    /// [`AlertStage::new`] with sequence rules, run as `[sequences]` says.
    pub fn with_sequences(
        rules: RuleSet,
        seq_rules: Vec<SequenceRule>,
        policy: AlertPolicy,
        settings: SequenceSettings,
    ) -> Self {
        AlertStage {
            sequences: SequenceStage::new(&seq_rules, settings),
            seq_templates: seq_rules
                .iter()
                .map(|r| AlertTemplate::new(&r.meta))
                .collect(),
            seq_rules: seq_rules.into(),
            settings,
            completed: Vec::new(),
            templates: AlertTemplates::new(&rules),
            rules: Arc::new(rules),
            policy,
            clock: StreamClock::new(),
            encoder: LineEncoder::new(),
            matched: Vec::new(),
            stats: StageStats::default(),
        }
    }

    /// The rule set (shared: a caller may hold it across a reload).
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The sequence rules (index `rules().len() + i` in alert lines and stats).
    pub fn sequence_rules(&self) -> &[SequenceRule] {
        &self.seq_rules
    }

    /// Every rule, single-event then sequence, with the index its alerts carry.
    pub fn all_rules(&self) -> impl Iterator<Item = (RuleIdx, &RuleMeta)> {
        let n = self.rules.len();
        self.rules.iter().map(|(i, r)| (i, &r.meta)).chain(
            self.seq_rules
                .iter()
                .enumerate()
                .map(move |(i, r)| (RuleIdx::new(n + i), &r.meta)),
        )
    }

    /// Number of rules of both kinds (the size of a table indexed by [`AlertLine::rule`]).
    pub fn rule_count(&self) -> usize {
        self.rules.len() + self.seq_rules.len()
    }

    fn template_of(&self, idx: RuleIdx) -> &AlertTemplate {
        let n = self.rules.len();
        match idx.get().checked_sub(n) {
            Some(i) => &self.seq_templates[i],
            None => self.templates.get(idx),
        }
    }

    /// The policy (its counters: excepted, suppressed, open windows).
    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    /// What was counted so far.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Sets the sequence rules and how they run, at start (before any event: nothing
    /// pending is lost).
    pub fn configure_sequences(
        &mut self,
        seq_rules: Vec<SequenceRule>,
        settings: SequenceSettings,
    ) {
        self.settings = settings;
        self.sequences = SequenceStage::new(&seq_rules, settings);
        self.seq_templates = seq_rules
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        self.seq_rules = seq_rules.into();
    }

    /// The sequence side (its pre-document gate, for callers that skip documents).
    pub fn sequences(&self) -> &SequenceStage {
        &self.sequences
    }

    /// The single-event rules and the sequence side at once (the daemon's pre-snapshot
    /// gate asks the one and tells the other).
    pub fn rules_and_sequences(&mut self) -> (&RuleSet, &mut SequenceStage) {
        (&self.rules, &mut self.sequences)
    }

    /// What the sequence side counted (window, engine, stored events).
    pub fn sequence_stats(&self) -> SequenceStats {
        self.sequences.stats()
    }

    /// Evaluates every rule that can match `doc`, read now, and hands `out` each alert the
    /// policy lets through, after the closing alerts of windows the document's time ended.
    /// Returns how many of `doc`'s own matches became alerts.
    pub fn evaluate(&mut self, doc: &EcsDocument, out: &mut dyn FnMut(AlertLine<'_>)) -> usize {
        let now = Instant::now();
        self.run(doc, None, now, now, out)
    }

    /// [`AlertStage::evaluate`] of a document read as `raw` JSON (replay): a sequence that
    /// holds it shows it as read, every field included.
    pub fn evaluate_raw(
        &mut self,
        doc: &EcsDocument,
        raw: &[u8],
        out: &mut dyn FnMut(AlertLine<'_>),
    ) -> usize {
        let now = Instant::now();
        self.run(doc, Some(raw), now, now, out)
    }

    /// [`AlertStage::evaluate`] for a document read at `seen` (tests and simulations of a
    /// live stream: `seen` only matters to [`AlertStage::tick_at`]'s running clock).
    pub fn evaluate_at(
        &mut self,
        doc: &EcsDocument,
        seen: Instant,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) -> usize {
        self.run(doc, None, seen, Instant::now(), out)
    }

    /// What the sequence rules make of an event seen through its snapshot (`run`, when
    /// no single-event rule can match it): see [`SequenceStage::decide`].
    pub fn decide_sequences(
        &mut self,
        probe: &dyn crate::rules::Probe,
        snap: &crate::process::Snapshot,
    ) -> Decision {
        self.sequences.decide(probe, snap)
    }

    /// [`AlertStage::evaluate`] of an event at `ts_ns` that no single-event rule can match,
    /// decided on its snapshot ([`AlertStage::decide_sequences`]: not
    /// [`Decision::Undecided`]): the same sequences and policy work as for its document,
    /// without building it.
    pub fn evaluate_decided(
        &mut self,
        ts_ns: i64,
        hits: Option<(Prepared, LazyEvent)>,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) -> usize {
        let seen = Instant::now();
        self.stats.evaluated += 1;
        if let Some((prepared, event)) = hits {
            self.sequences
                .offer_lazy(prepared, ts_ns, event, &mut self.completed);
        }
        self.stats.rule_time += seen.elapsed();
        let mut written = 0;
        if !self.completed.is_empty() {
            written += self.emit_sequences(seen, out);
        }
        if self.policy.open_windows() == 0 {
            return written;
        }
        let at = self
            .clock
            .observe_time(Some(EventTime::from_unix_nanos(ts_ns)), seen);
        let now = self.clock.mark().map_or(at, |m| m.max(at));
        self.close_windows(now, out);
        written
    }

    fn run(
        &mut self,
        doc: &EcsDocument,
        raw: Option<&[u8]>,
        seen: Instant,
        started: Instant,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) -> usize {
        self.rules.matches(doc, &mut self.matched);
        self.stats.evaluated += 1;
        if self.sequences.is_active() {
            self.sequences.offer(doc, raw, &mut self.completed);
        }
        self.stats.rule_time += started.elapsed();
        let mut written = 0;
        if !self.completed.is_empty() {
            written += self.emit_sequences(seen, out);
        }
        if self.matched.is_empty() && self.policy.open_windows() == 0 {
            return written;
        }
        // Time only matters while a window is open or a match may open one.
        let at = self.clock.observe(doc.timestamp.as_deref(), seen);
        let now = self.clock.mark().map_or(at, |m| m.max(at));
        self.close_windows(now, out);
        let matched = std::mem::take(&mut self.matched);
        for &idx in &matched {
            let meta = &self.rules.rule(idx).meta;
            if self.policy.check(idx, meta, doc, at) == Verdict::Emit {
                written += usize::from(self.emit(idx, doc, None, out));
            }
        }
        self.matched = matched;
        written
    }

    /// Periodic work of a live stream: closes the windows that ended by the stream's time at
    /// real instant `now` (the latest `@timestamp` plus the time since it was read), so a
    /// quiet stream still reports its folded counts on time.
    pub fn tick_at(&mut self, now: Instant, out: &mut dyn FnMut(AlertLine<'_>)) {
        if self.sequences.is_active() {
            // The sequence window and expiry run on the wall clock: live documents carry
            // the time they happened.
            let wall = EventTime::wall_clock().unix_nanos();
            self.sequences.tick(wall, &mut self.completed);
            if !self.completed.is_empty() {
                self.emit_sequences(now, out);
            }
        }
        if self.policy.open_windows() > 0 {
            let t = self.clock.now(now);
            self.close_windows(t, out);
        }
    }

    /// The end of a replay's input: releases the sequence window and settles what only the
    /// end of the data settles (a sequence ending in a missing event: nothing follows it).
    /// Then call [`AlertStage::finish`]. Returns how many sequences were pending when the
    /// input ended (every event fed, before the end settled them).
    pub fn end_of_input(&mut self, out: &mut dyn FnMut(AlertLine<'_>)) -> u64 {
        self.sequences.finish(false, &mut self.completed);
        let pending = self.sequences.stats().engine.pending;
        self.sequences.finish(true, &mut self.completed);
        if !self.completed.is_empty() {
            self.emit_sequences(Instant::now(), out);
        }
        pending
    }

    /// Closes every window (shutdown, end of a replay), handing out their closing alerts;
    /// events still waiting in the sequence window go through the engine first.
    pub fn finish(&mut self, out: &mut dyn FnMut(AlertLine<'_>)) {
        self.sequences.finish(false, &mut self.completed);
        if !self.completed.is_empty() {
            self.emit_sequences(Instant::now(), out);
        }
        for f in self.policy.drain() {
            self.emit_folded(f, out);
        }
    }

    /// Swaps in a new rule set and policy (SIGHUP). The old policy's windows are closed and
    /// their alerts handed out first, while their rule indices still mean the old set.
    pub fn replace(
        &mut self,
        rules: RuleSet,
        policy: AlertPolicy,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) {
        let (seq_rules, settings) = (Arc::clone(&self.seq_rules), self.settings);
        self.install(rules, seq_rules, policy, settings, out);
    }

    /// [`AlertStage::replace`] with new sequence rules and settings too (SIGHUP). Sequences
    /// pending under the old rules end with them (their indices mean the old set); events
    /// waiting in the reorder window go through the old engine first.
    pub fn replace_all(
        &mut self,
        rules: RuleSet,
        seq_rules: Vec<SequenceRule>,
        policy: AlertPolicy,
        settings: SequenceSettings,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) {
        self.install(rules, seq_rules.into(), policy, settings, out);
    }

    fn install(
        &mut self,
        rules: RuleSet,
        seq_rules: Arc<[SequenceRule]>,
        policy: AlertPolicy,
        settings: SequenceSettings,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) {
        self.finish(out);
        self.settings = settings;
        self.sequences = SequenceStage::new(&seq_rules, settings);
        self.seq_templates = seq_rules
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        self.seq_rules = seq_rules;
        self.templates = AlertTemplates::new(&rules);
        self.rules = Arc::new(rules);
        self.policy = policy;
    }

    fn close_windows(&mut self, now: EventTime, out: &mut dyn FnMut(AlertLine<'_>)) {
        for f in self.policy.expire(now) {
            self.emit_folded(f, out);
        }
    }

    fn emit_folded(&mut self, f: Folded, out: &mut dyn FnMut(AlertLine<'_>)) {
        self.emit(f.rule, &f.doc, Some(f.count), out);
    }

    /// Builds, encodes and hands out one alert; false when it could not be encoded.
    fn emit(
        &mut self,
        idx: RuleIdx,
        doc: &EcsDocument,
        suppressed: Option<u64>,
        out: &mut dyn FnMut(AlertLine<'_>),
    ) -> bool {
        let template = self.template_of(idx);
        let alert = match suppressed {
            Some(n) => template.alert_with_suppressed(doc, n),
            None => template.alert(doc),
        };
        match self.encoder.encode(&alert) {
            Ok(line) => {
                self.stats.alerts += 1;
                out(AlertLine {
                    rule: idx,
                    meta: meta_of(&self.rules, &self.seq_rules, idx),
                    line,
                    suppressed,
                    building_block: false,
                });
                true
            }
            Err(e) => {
                self.stats.encode_failed += 1;
                tracing::error!(error = %e, "cannot encode an alert");
                false
            }
        }
    }

    /// Completed sequences through the policy (their last event decides), then each as its
    /// building blocks and shell alert. Returns how many sequences were written.
    fn emit_sequences(&mut self, seen: Instant, out: &mut dyn FnMut(AlertLine<'_>)) -> usize {
        let completed = std::mem::take(&mut self.completed);
        let mut written = 0;
        for c in completed {
            let idx = RuleIdx::new(self.rules.len() + c.rule);
            let at = self.clock.observe(c.last.timestamp.as_deref(), seen);
            let now = self.clock.mark().map_or(at, |m| m.max(at));
            self.close_windows(now, out);
            let meta = &self.seq_rules[c.rule].meta;
            if self.policy.check(idx, meta, &c.last, at) != Verdict::Emit {
                continue;
            }
            let lines = shape::build(
                &self.seq_templates[c.rule],
                shape::Group {
                    events: c.events,
                    join_key: c.join_key,
                },
            );
            let n = lines.len();
            for (i, line) in lines.iter().enumerate() {
                let building_block = i + 1 < n;
                match self.encoder.encode_value(line) {
                    Ok(bytes) => {
                        if building_block {
                            self.stats.building_blocks += 1;
                        } else {
                            self.stats.alerts += 1;
                        }
                        out(AlertLine {
                            rule: idx,
                            meta: &self.seq_rules[c.rule].meta,
                            line: bytes,
                            suppressed: None,
                            building_block,
                        });
                    }
                    Err(e) => {
                        self.stats.encode_failed += 1;
                        tracing::error!(error = %e, "cannot encode a sequence alert");
                    }
                }
            }
            written += 1;
        }
        written
    }
}

/// The metadata of rule `idx` (either kind: sequence rules follow the set's).
fn meta_of<'a>(rules: &'a RuleSet, seq_rules: &'a [SequenceRule], idx: RuleIdx) -> &'a RuleMeta {
    match idx.get().checked_sub(rules.len()) {
        Some(i) => &seq_rules[i].meta,
        None => &rules.rule(idx).meta,
    }
}
