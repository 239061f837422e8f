//! Alerts: the event a rule matched, turned into an ECS alert document, and its encoding as
//! one NDJSON line.
//!
//! An alert is the event document plus `event.kind: alert`, a fresh `event.id` (UUID v4),
//! `event.created` (now), `event.severity` (21/47/73/99) and `event.risk_score` from the rule,
//! `event.module: detector` (not `cloud_defend`), `event.dataset: detector.alerts`,
//! `message` = the rule's name, `tags` = the rule's tags (replacing any the event had),
//! `rule.*` and `threat.*`. Elastic's "External Alerts" rule promotes exactly such
//! `event.kind: alert` documents into Elastic Security and maps `event.severity` back.
//!
//! Per-rule parts (`rule.*`, `threat.*`, tags) are built once per rule in an
//! [`AlertTemplate`] and shared by every alert of that rule; [`AlertTemplates`] holds them
//! for a whole rule set, indexed like its matches.
//!
//! [`AlertStage`] is the one path from a document to alert lines (rules → [`AlertPolicy`]
//! with exceptions and suppression → alert document → NDJSON line), shared by the daemon
//! (`daemon::Detection` hands its lines to the sinks) and `detector replay` (to stdout), so
//! both give the same alerts for the same documents. Suppression runs on event time
//! ([`clock`]).

pub mod clock;
mod policy;
pub mod sequence;
mod stage;
mod threat;

pub use clock::{EventTime, StreamClock};
pub use policy::{AlertPolicy, Folded, Verdict};
pub use stage::{AlertLine, AlertStage, StageStats};

use crate::ecs::{
    ALERT_DATASET, DetectorAlert, EVENT_MODULE, EcsDocument, Event, Rule, Shared, Threat,
    now_rfc3339,
};
use crate::rules::meta::RuleMeta;
use crate::rules::{RuleIdx, RuleSet};

/// `rule.ruleset` of our alerts when the caller names none: the rules run by this daemon,
/// whatever their origin (Elastic's published rules or local ones).
pub const DEFAULT_RULESET: &str = "detector";

/// The parts of an alert that depend only on the rule: built once per rule.
#[derive(Clone, Debug)]
pub struct AlertTemplate {
    rule: Shared<Rule>,
    threat: Option<Shared<Threat>>,
    severity: i64,
    risk_score: f64,
    name: String,
    tags: Vec<String>,
}

impl AlertTemplate {
    /// The template of a rule, with `rule.ruleset` = [`DEFAULT_RULESET`].
    pub fn new(meta: &RuleMeta) -> Self {
        Self::with_ruleset(meta, DEFAULT_RULESET)
    }

    /// The template of a rule with an explicit `rule.ruleset` (e.g. the rule directory's
    /// name).
    ///
    /// `rule.reference` is ECS `keyword` (one value): it takes the rule's *first* reference;
    /// `rule.id` and `rule.uuid` both take `rule_id` (the identifier stable across rule
    /// versions, as Elastic uses it); `rule.version` is the `[rule] version` as a string
    /// (ECS `keyword`), left out when the file has none.
    pub fn with_ruleset(meta: &RuleMeta, ruleset: &str) -> Self {
        let rule = Rule {
            id: Some(meta.rule_id.clone()),
            uuid: Some(meta.rule_id.clone()),
            name: Some(meta.name.clone()),
            description: Some(meta.description.trim().to_owned()),
            reference: meta.references.first().cloned(),
            author: meta.author.clone(),
            license: meta.license.clone(),
            ruleset: Some(ruleset.to_owned()),
            version: meta.version.map(|v| v.to_string()),
            category: None,
        };
        AlertTemplate {
            rule: Shared::new(rule),
            threat: threat::flatten(&meta.threat).map(Shared::new),
            severity: i64::from(meta.severity.score()),
            risk_score: f64::from(meta.risk_score),
            name: meta.name.clone(),
            tags: meta.tags.clone(),
        }
    }

    /// The alert for one matching event.
    pub fn alert(&self, event: &EcsDocument) -> EcsDocument {
        let mut doc = event.clone();
        let now = now_rfc3339();
        let ev = doc.event.get_or_insert_with(Event::default);
        ev.kind = Some("alert".into());
        ev.id = Some(uuid::Uuid::new_v4().to_string());
        ev.module = Some(EVENT_MODULE.into());
        ev.dataset = Some(ALERT_DATASET.into());
        ev.severity = Some(self.severity);
        ev.risk_score = Some(self.risk_score);
        if doc.timestamp.is_none() {
            doc.timestamp = Some(now.clone());
        }
        ev.created = Some(now);
        doc.message = Some(self.name.clone());
        doc.tags = self.tags.clone();
        doc.rule = Some(self.rule.clone());
        doc.threat = self.threat.clone();
        if doc.ecs.is_none() {
            doc.ecs = Some(crate::ecs::Ecs::current());
        }
        doc
    }

    /// The alert for an event that stands for `suppressed` further identical alerts that a
    /// suppression window folded into it (`detector.alert.suppressed_count`).
    pub fn alert_with_suppressed(&self, event: &EcsDocument, suppressed: u64) -> EcsDocument {
        let mut doc = self.alert(event);
        set_suppressed_count(&mut doc, suppressed);
        doc
    }
}

/// The alert templates of every rule of a set, indexed by [`RuleIdx`]: the one place a
/// rule set's templates are built (the daemon, replay and the benches use it).
#[derive(Clone, Debug)]
pub struct AlertTemplates(Vec<AlertTemplate>);

impl AlertTemplates {
    /// One template per rule of `rules`, with `rule.ruleset` = [`DEFAULT_RULESET`].
    pub fn new(rules: &RuleSet) -> Self {
        AlertTemplates(
            rules
                .iter()
                .map(|(_, r)| AlertTemplate::new(&r.meta))
                .collect(),
        )
    }

    /// The template of rule `idx` of the set these were built from.
    #[inline]
    pub fn get(&self, idx: RuleIdx) -> &AlertTemplate {
        &self.0[idx.get()]
    }
}

/// Builds the alert of `meta` for `event` (convenience for one-off use; a pipeline keeps an
/// [`AlertTemplate`] per rule).
pub fn build_alert(event: &EcsDocument, meta: &RuleMeta) -> EcsDocument {
    AlertTemplate::new(meta).alert(event)
}

/// Records how many identical alerts were suppressed into this one.
pub fn set_suppressed_count(doc: &mut EcsDocument, suppressed: u64) {
    doc.detector.get_or_insert_with(Default::default).alert = Some(DetectorAlert {
        suppressed_count: Some(suppressed),
    });
}

/// Encodes documents as NDJSON lines into one reused buffer: one `serde_json::to_writer`
/// and a `\n`, no allocation once the buffer has grown.
#[derive(Debug, Default)]
pub struct LineEncoder {
    buf: Vec<u8>,
}

impl LineEncoder {
    /// An encoder with an empty buffer (it grows to the largest line seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// The document as one JSON line ending in `\n`, valid for any bytes in any field
    /// (serde_json escapes control characters; strings are UTF-8 by construction).
    pub fn encode(&mut self, doc: &EcsDocument) -> Result<&[u8], serde_json::Error> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, doc)?;
        self.buf.push(b'\n');
        Ok(&self.buf)
    }

    /// [`LineEncoder::encode`] of a JSON value (sequence alerts, built as JSON).
    pub fn encode_value(&mut self, v: &serde_json::Value) -> Result<&[u8], serde_json::Error> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.push(b'\n');
        Ok(&self.buf)
    }
}

#[cfg(test)]
mod tests;
