//! A detection rule's metadata, as Elastic's detection-rules TOML files write it.
//!
//! Only what alerts need is kept; unknown keys are ignored because published rule files
//! carry many (`from`, `interval`, `index`, `note`, `setup`, …) that a local engine has no
//! use for.

use serde::Deserialize;

/// The `[rule]` table's descriptive keys (the query lives beside them, see the loader).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RuleMeta {
    pub rule_id: String,
    pub name: String,
    pub description: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: Severity,
    pub risk_score: u8,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub author: Vec<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `[rule] version` when present (detection-rules keeps it in a lock file otherwise).
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub threat: Vec<Threat>,
}

/// Elastic's four severities. `event.severity` takes the numeric form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Elastic Security's severity scale, which the External Alerts rule maps back.
    pub fn score(self) -> u8 {
        match self {
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One `[[rule.threat]]` table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Threat {
    pub framework: String,
    pub tactic: ThreatRef,
    #[serde(default)]
    pub technique: Vec<Technique>,
}

/// A tactic, technique or subtechnique reference: id, name, reference URL.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ThreatRef {
    pub id: String,
    pub name: String,
    pub reference: String,
}

/// A `[[rule.threat.technique]]` table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Technique {
    pub id: String,
    pub name: String,
    pub reference: String,
    #[serde(default)]
    pub subtechnique: Vec<ThreatRef>,
}
