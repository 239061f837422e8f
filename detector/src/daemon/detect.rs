//! The detection stage: compiled rules over ECS documents, then the alert policy
//! (exceptions, suppression), then alert lines to every sink.
//!
//! Replaced whole on SIGHUP ([`Detection::replace_rules`]): a new rule set and policy are
//! built first and swapped in only when everything compiled, so a bad reload leaves the
//! running set untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::alert::{AlertPolicy, AlertTemplate, LineEncoder, Verdict};
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
}

/// Rules, their alert templates, the policy and the sinks.
pub struct Detection {
    rules: Arc<RuleSet>,
    templates: Vec<AlertTemplate>,
    policy: AlertPolicy,
    encoder: LineEncoder,
    sinks: Vec<Box<dyn Sink>>,
    stats: DetectStats,
}

impl Detection {
    pub fn new(rules: RuleSet, policy: AlertPolicy, sinks: Vec<Box<dyn Sink>>) -> Self {
        let templates = rules
            .rules()
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        Detection {
            rules: Arc::new(rules),
            templates,
            policy,
            encoder: LineEncoder::new(),
            sinks,
            stats: DetectStats::default(),
        }
    }

    /// Swaps in a new rule set and policy (SIGHUP). Open suppression windows of the old
    /// policy are closed and reported first, so no folded count is lost.
    pub fn replace_rules(&mut self, rules: RuleSet, policy: AlertPolicy) {
        for (idx, doc, n) in self.policy.drain() {
            self.write_alert(idx, &doc, Some(n));
        }
        self.templates = rules
            .rules()
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        self.rules = Arc::new(rules);
        self.policy = policy;
    }

    /// Replaces the sinks (a reload that changed the outputs), flushing the old ones.
    pub fn replace_sinks(&mut self, sinks: Vec<Box<dyn Sink>>) {
        for s in &mut self.sinks {
            s.flush();
        }
        self.sinks = sinks;
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn sinks(&self) -> &[Box<dyn Sink>] {
        &self.sinks
    }

    /// Evaluates every rule that can match `doc`; writes the alerts the policy lets
    /// through. Returns how many alerts were written.
    pub fn evaluate(&mut self, doc: &EcsDocument) -> usize {
        let started = Instant::now();
        let rules = self.rules.clone();
        let mut matched = Vec::new();
        rules.matches(doc, &mut matched);
        self.stats.evaluated += 1;
        self.stats.rule_time += started.elapsed();
        if matched.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let mut written = 0;
        for rule in matched {
            let idx = rule_index(&rules, rule);
            if self.policy.check(idx, &rule.meta, doc, now) == Verdict::Emit {
                self.write_alert(idx, doc, None);
                written += 1;
            }
        }
        written
    }

    /// Periodic work: close expired suppression windows (writing their counts) and retry
    /// queued lines.
    pub fn tick(&mut self) {
        for (idx, doc, n) in self.policy.expire(Instant::now()) {
            self.write_alert(idx, &doc, Some(n));
        }
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
                self.stats.encode_failed += 1;
                tracing::error!(error = %e, "cannot encode a report document");
                false
            }
        }
    }

    fn write_alert(&mut self, idx: usize, doc: &EcsDocument, suppressed: Option<u64>) {
        let Some(template) = self.templates.get(idx) else {
            return;
        };
        let alert = match suppressed {
            Some(n) => template.alert_with_suppressed(doc, n),
            None => template.alert(doc),
        };
        match self.encoder.encode(&alert) {
            Ok(line) => {
                for s in &mut self.sinks {
                    if s.write_line(line) == Delivery::Dropped {
                        self.stats.sink_dropped += 1;
                    }
                }
                self.stats.alerts += 1;
                let name = alert.message.as_deref().unwrap_or("");
                match self.stats.by_rule.get_mut(name) {
                    Some(n) => *n += 1,
                    None => {
                        self.stats.by_rule.insert(name.to_owned(), 1);
                    }
                }
            }
            Err(e) => {
                self.stats.encode_failed += 1;
                tracing::error!(error = %e, "cannot encode an alert");
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
        for (idx, doc, n) in self.policy.drain() {
            self.write_alert(idx, &doc, Some(n));
        }
        self.sinks.iter_mut().map(|s| s.flush()).sum()
    }

    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }
}

/// The position of `rule` in `set`: matches are references into `set.rules()`, so the
/// offset from the slice's start is the index (no search per match).
fn rule_index(set: &RuleSet, rule: &crate::rules::Rule) -> usize {
    let base = set.rules().as_ptr() as usize;
    (rule as *const crate::rules::Rule as usize - base)
        / std::mem::size_of::<crate::rules::Rule>().max(1)
}
