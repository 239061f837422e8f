//! `[sequences]`: how EQL sequence rules run in the daemon — the reorder window before the
//! sequence engine and the bounds of its state.

use serde::Deserialize;

use super::validate::{Invalid, range};

/// `[sequences]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequencesConfig {
    /// How long (ms of `@timestamp`) an event waits before the sequence engine sees it, so
    /// events that reach the daemon slightly out of order (from different CPUs) are put back
    /// in order. An event arriving later than this behind the stream is counted as late
    /// (stats, metrics, a loss report in the alert stream) and not fed to sequences.
    /// Single-event rules never wait. 0 to 10000.
    pub reorder_window_ms: u64,
    /// The most events the window holds; beyond it the oldest go on early (counted).
    pub reorder_max_events: usize,
    /// Pending sequences kept at most, over all rules and per rule; beyond either, the
    /// oldest pending sequence is evicted (counted and reported as loss).
    pub max_pending: usize,
    pub max_pending_per_rule: usize,
    /// How long a sequence without `maxspan` may stay pending, in seconds.
    pub max_span_secs: u64,
}

/// Default `[sequences] reorder_window_ms`: a process's events are stamped on the CPU it
/// ran on and share one ring buffer, so arrival skew is microseconds to a few ms under
/// load; 100 ms covers a busy host's batching and delays sequence alerts by little.
pub const DEFAULT_REORDER_WINDOW_MS: u64 = 100;

impl Default for SequencesConfig {
    fn default() -> Self {
        SequencesConfig {
            reorder_window_ms: DEFAULT_REORDER_WINDOW_MS,
            reorder_max_events: 65_536,
            max_pending: 100_000,
            max_pending_per_rule: 100_000,
            max_span_secs: 3600,
        }
    }
}

impl SequencesConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        range(
            "sequences.reorder_window_ms",
            self.reorder_window_ms,
            0,
            10_000,
        )?;
        range(
            "sequences.reorder_max_events",
            self.reorder_max_events as u64,
            1,
            10_000_000,
        )?;
        range(
            "sequences.max_pending",
            self.max_pending as u64,
            1,
            100_000_000,
        )?;
        range(
            "sequences.max_pending_per_rule",
            self.max_pending_per_rule as u64,
            1,
            100_000_000,
        )?;
        range("sequences.max_span_secs", self.max_span_secs, 1, 7 * 86_400)
    }
}
