//! When the daemon does its periodic work: the stats line, loss checks and housekeeping.
//!
//! `[stats] interval_secs` sets the stats line: every N seconds, 0 = never. Loss (kernel
//! events, undecodable records, dropped alert lines) is checked, and reported in the alert
//! stream when there is any, before each stats line, and on a timer of its own at least
//! every [`LOSS_CHECK_MAX`] when stats lines are off or rarer than that: a gap in detection
//! must reach whoever tails the alerts within a minute, whatever the log says. It is also
//! checked once more at exit. A SIGHUP that changes `[stats]` restarts the timers.

use std::time::Duration;

use tokio::time::{Instant, Interval, interval, interval_at};

/// The longest loss may go unreported (the default stats interval).
pub const LOSS_CHECK_MAX: Duration = Duration::from_secs(60);

/// Between two housekeeping ticks (suppression windows, retrying outputs).
pub const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// The periods of the stats line and of the loss checks of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// Between two stats lines (each preceded by a loss check); `None`: no stats line.
    pub stats: Option<Duration>,
    /// Between two loss checks of their own; `None` when the stats lines come often enough
    /// (at least every [`LOSS_CHECK_MAX`]).
    pub loss: Option<Duration>,
}

impl Cadence {
    /// The cadence for `[stats] interval_secs` (0: no stats line).
    pub fn from_interval_secs(secs: u64) -> Self {
        let stats = (secs > 0).then(|| Duration::from_secs(secs));
        let loss = match stats {
            Some(every) if every <= LOSS_CHECK_MAX => None,
            _ => Some(LOSS_CHECK_MAX),
        };
        Cadence { stats, loss }
    }
}

/// What a timer says to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Check for loss, then log the stats line.
    Stats,
    /// Check for loss.
    Loss,
    /// Close due suppression windows, retry outputs.
    Housekeeping,
}

/// The daemon's timers.
pub struct Timers {
    stats: Option<Interval>,
    loss: Option<Interval>,
    housekeeping: Interval,
}

impl Timers {
    /// Starts the timers: the first stats line and loss check one period from now.
    /// Must be called from a tokio runtime.
    pub fn new(cadence: Cadence) -> Self {
        let after = |every: Duration| interval_at(Instant::now() + every, every);
        Timers {
            stats: cadence.stats.map(after),
            loss: cadence.loss.map(after),
            housekeeping: interval(HOUSEKEEPING),
        }
    }

    /// The next tick. Cancel-safe (only `Interval::tick`s are awaited).
    pub async fn next(&mut self) -> Tick {
        async fn maybe(timer: &mut Option<Interval>) {
            match timer {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = maybe(&mut self.stats) => Tick::Stats,
            () = maybe(&mut self.loss) => Tick::Loss,
            _ = self.housekeeping.tick() => Tick::Housekeeping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_the_stats_line_off_but_not_loss_checks() {
        let secs = Duration::from_secs;
        for (interval, stats, loss) in [
            (0, None, Some(LOSS_CHECK_MAX)),
            (1, Some(secs(1)), None),
            (60, Some(secs(60)), None),
            (61, Some(secs(61)), Some(LOSS_CHECK_MAX)),
            (86_400, Some(secs(86_400)), Some(LOSS_CHECK_MAX)),
        ] {
            assert_eq!(
                Cadence::from_interval_secs(interval),
                Cadence { stats, loss },
                "interval_secs = {interval}"
            );
        }
    }

    /// The ticks other than housekeeping, until `n` of them came.
    async fn first(cadence: Cadence, n: usize) -> Vec<Tick> {
        let mut t = Timers::new(cadence);
        let mut seen = Vec::new();
        while seen.len() < n {
            match t.next().await {
                Tick::Housekeeping => {}
                tick => seen.push(tick),
            }
        }
        seen
    }

    #[tokio::test]
    async fn no_stats_timer_means_no_stats_tick() {
        let loss_only = Cadence {
            stats: None,
            loss: Some(Duration::from_millis(20)),
        };
        assert_eq!(first(loss_only, 3).await, [Tick::Loss; 3]);
        let stats_only = Cadence {
            stats: Some(Duration::from_millis(20)),
            loss: None,
        };
        assert_eq!(first(stats_only, 3).await, [Tick::Stats; 3]);
    }
}
