//! How often the reader polls the ring while events flow.
//!
//! Why the period stretches: each poll wakes the daemon, and a wake-up (timer interrupt,
//! context switch, one turn of the event loop) costs a busy host far more than the CPU the
//! daemon spends: a process that did nothing but wake every millisecond cost a 4-worker
//! exec storm 7 % of its throughput here (2 vCPUs). So while polls
//! keep finding at least [`BUSY_PER_MS`] records per millisecond, the period doubles, up to
//! the busy interval; a poll that finds less than half that rate halves it again, and an
//! empty poll is back at the base interval at once. Light traffic (an interactive shell, a
//! container starting) is therefore read within the base interval, and only a sustained
//! stream waits up to the busy one.
//!
//! Why halve rather than drop to the base at once: an exec storm on 2 vCPUs runs near the
//! busy rate and arrives in bursts, so single polls kept finding less than half of it and
//! the reader fell back to 1 ms polls and climbed again (654 base polls against 188
//! stretched ones in a 4-worker, 4,000-exec storm); the reader is idle-safe either way,
//! since an empty poll still resets the period.

use std::time::Duration;

/// The default busy interval, in wake intervals (`sensor.busy_poll_interval_us` is 16 ms
/// for the 1 ms default). Measured side by side in a 4-worker exec storm on 2 vCPUs, the
/// detector cost 9.6 % of throughput with no stretching, 6.2 % at 4 ms and 2.7–4 % at
/// 16 ms; an event of such a stream then waits up to 20 ms (with the timer slack).
pub const BUSY_INTERVAL_FACTOR: u64 = 16;

/// Records per millisecond of polling period at or above which the reader is busy.
pub const BUSY_PER_MS: u64 = 4;

/// The polling period and its adaptation (see the module docs).
#[derive(Clone, Debug)]
pub struct Pacer {
    base: Duration,
    busy: Duration,
    period: Duration,
}

impl Pacer {
    /// `base`: the period under light traffic; `busy`: the longest period (taken as at
    /// least `base`).
    pub fn new(base: Duration, busy: Duration) -> Self {
        Self {
            base,
            busy: busy.max(base),
            period: base,
        }
    }

    /// The current period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether the period is stretched past the base one: the reader then waits on the
    /// lax timer rather than the base timerfd (see `ring`).
    pub fn is_stretched(&self) -> bool {
        self.period > self.base
    }

    /// Back to the base period (the reader went idle).
    pub fn reset(&mut self) {
        self.period = self.base;
    }

    /// Adapts to a poll that found `n` records; returns whether the period changed.
    pub fn after_poll(&mut self, n: usize) -> bool {
        // Records per millisecond, compared in microseconds to stay in integers.
        let found = n as u128 * 1000;
        let period_us = self.period.as_micros().max(1);
        let busy_at = BUSY_PER_MS as u128 * period_us;
        let next = if found >= busy_at {
            (self.period * 2).min(self.busy)
        } else if n == 0 {
            self.base
        } else if 2 * found < busy_at {
            (self.period / 2).max(self.base)
        } else {
            self.period
        };
        let changed = next != self.period;
        self.period = next;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn stretches_under_a_sustained_stream_and_snaps_back() {
        let mut p = Pacer::new(MS, 4 * MS);
        // (records found by the poll, period after it, changed)
        let steps = [
            (1, MS, false),       // light: stays at base
            (4, 2 * MS, true),    // 4/ms: busy
            (8, 4 * MS, true),    // 4/ms again
            (100, 4 * MS, false), // capped at the busy interval
            (10, 4 * MS, false),  // 2.5/ms: between the marks, kept
            (7, 2 * MS, true),    // under 2/ms: one step down
            (3, MS, true),        // 1.5/ms: one more, to the base
            (1, MS, false),       // never below the base
            (8, 2 * MS, true),    // busy again
            (16, 4 * MS, true),
            (0, MS, true), // an empty poll: back to base at once
            (0, MS, false),
        ];
        for (i, (n, want, changed)) in steps.into_iter().enumerate() {
            assert_eq!(p.after_poll(n), changed, "step {i}");
            assert_eq!(p.period(), want, "step {i}");
            assert_eq!(p.is_stretched(), want > MS, "step {i}");
        }
        p.after_poll(50);
        p.reset();
        assert_eq!(p.period(), MS);
    }

    #[test]
    fn a_busy_interval_at_or_below_base_disables_stretching() {
        let mut p = Pacer::new(2 * MS, MS);
        assert!(!p.after_poll(1000));
        assert_eq!(p.period(), 2 * MS);
        assert!(!p.is_stretched());
    }
}
