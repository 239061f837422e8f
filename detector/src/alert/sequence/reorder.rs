//! The reorder window: events from different CPUs reach the daemon slightly out of
//! `@timestamp` order, and a sequence is defined over `@timestamp` order (Elasticsearch sorts
//! the events of a sequence query by `@timestamp`, then by the tiebreaker). Each event waits
//! here until the stream has moved `window` past it (or the idle clock has), then leaves in
//! order.
//!
//! An event older than what already left is *late*: placing it now would put it after events
//! that happened after it, which could make a sequence Elasticsearch never makes (its terms
//! out of order) — so it is not fed to the sequence engine, and is counted (the caller
//! reports it like any other loss). Single-event rules never wait here.
//!
//! Bounded: beyond `cap` waiting events the oldest leave early (counted as `forced`): that
//! only narrows the window for a burst, it loses nothing by itself.
//!
//! The waiting events are kept sorted in a deque: almost every event arrives at or after the
//! newest one and is appended (no reordering work, no entry moved); a late-comer is inserted
//! after every event of its time or earlier, so equal times leave in arrival order.

use std::collections::VecDeque;

/// One waiting event with its time.
struct Entry<T> {
    ts: i64,
    item: T,
}

/// What the window counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReorderStats {
    /// Events that went through the window.
    pub admitted: u64,
    /// Events that arrived after a later event had already left (not fed to sequences).
    pub late: u64,
    /// Events released early because the window was full.
    pub forced: u64,
    /// Events that arrived behind an event already seen (out of order) but within the
    /// window, and were put back in order.
    pub reordered: u64,
    /// Events waiting now.
    pub waiting: u64,
}

/// Whether [`Reorder::push`] took the event.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<T> {
    Queued,
    /// Older than what already left: handed back, counted in [`ReorderStats::late`].
    Late(T),
}

/// Events by `@timestamp` (nanoseconds), held for a window and released in order.
pub struct Reorder<T> {
    /// Sorted by time, arrival order among equal times.
    waiting: VecDeque<Entry<T>>,
    window_ns: i64,
    cap: usize,
    /// The latest time seen, and the latest released (nothing older may enter).
    newest: Option<i64>,
    released: Option<i64>,
    stats: ReorderStats,
}

impl<T> Reorder<T> {
    /// A window of `window_ns` holding at most `cap` events (at least 1).
    pub fn new(window_ns: i64, cap: usize) -> Self {
        Reorder {
            waiting: VecDeque::new(),
            window_ns: window_ns.max(0),
            cap: cap.max(1),
            newest: None,
            released: None,
            stats: ReorderStats::default(),
        }
    }

    /// The window, in nanoseconds.
    pub fn window_ns(&self) -> i64 {
        self.window_ns
    }

    /// Takes an event at `ts`, then hands `out` every event the stream has moved a window
    /// past (and the oldest ones beyond the cap), in order.
    pub fn push(&mut self, ts: i64, item: T, out: &mut impl FnMut(i64, T)) -> Admit<T> {
        if self.released.is_some_and(|r| ts < r) {
            self.stats.late += 1;
            return Admit::Late(item);
        }
        self.stats.admitted += 1;
        if self.newest.is_some_and(|n| ts < n) {
            self.stats.reordered += 1;
        }
        self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        let entry = Entry { ts, item };
        if self.waiting.back().is_none_or(|b| b.ts <= ts) {
            self.waiting.push_back(entry);
        } else {
            let at = self.waiting.partition_point(|e| e.ts <= ts);
            self.waiting.insert(at, entry);
        }
        while self.waiting.len() > self.cap {
            self.stats.forced += 1;
            self.pop_into(out);
        }
        if let Some(n) = self.newest {
            self.release_until(n.saturating_sub(self.window_ns), out);
        }
        self.stats.waiting = self.waiting.len() as u64;
        Admit::Queued
    }

    /// Releases every event at or before `until` (ns), in order.
    pub fn release_until(&mut self, until: i64, out: &mut impl FnMut(i64, T)) {
        while self.waiting.front().is_some_and(|e| e.ts <= until) {
            self.pop_into(out);
        }
        self.stats.waiting = self.waiting.len() as u64;
    }

    /// The idle flush: the wall clock says `now` (ns), so nothing at or before
    /// `now - window` can still be on its way; release it.
    pub fn flush_idle(&mut self, now: i64, out: &mut impl FnMut(i64, T)) {
        self.release_until(now.saturating_sub(self.window_ns), out);
    }

    /// Releases everything (end of a replay, shutdown, reload).
    pub fn drain(&mut self, out: &mut impl FnMut(i64, T)) {
        while !self.waiting.is_empty() {
            self.pop_into(out);
        }
        self.stats.waiting = 0;
    }

    fn pop_into(&mut self, out: &mut impl FnMut(i64, T)) {
        if let Some(e) = self.waiting.pop_front() {
            self.released = Some(self.released.map_or(e.ts, |r| r.max(e.ts)));
            out(e.ts, e.item);
        }
    }

    /// What was counted.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Events waiting now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(window: i64, cap: usize, input: &[i64]) -> (Vec<i64>, Vec<i64>, ReorderStats) {
        let mut r = Reorder::new(window, cap);
        let mut out = Vec::new();
        let mut late = Vec::new();
        for &ts in input {
            if let Admit::Late(t) = r.push(ts, ts, &mut |_, t| out.push(t)) {
                late.push(t);
            }
        }
        r.drain(&mut |_, t| out.push(t));
        (out, late, r.stats())
    }

    #[test]
    fn out_of_order_within_the_window_leaves_in_order() {
        let (out, late, s) = run(10, 1000, &[5, 3, 8, 1, 12, 9, 30, 25, 40]);
        assert_eq!(out, [1, 3, 5, 8, 9, 12, 25, 30, 40]);
        assert!(late.is_empty());
        assert_eq!(s.reordered, 4);
        assert_eq!(s.late, 0);
    }

    #[test]
    fn an_event_later_than_the_window_is_late_and_counted() {
        // 30 releases everything at or before 20; 15 then arrives after 20 left.
        let (out, late, s) = run(10, 1000, &[5, 20, 30, 15, 29]);
        assert_eq!(late, [15]);
        assert_eq!(out, [5, 20, 29, 30]);
        assert_eq!((s.late, s.admitted), (1, 4));
    }

    #[test]
    fn equal_times_keep_arrival_order() {
        let mut r = Reorder::new(0, 10);
        let mut out = Vec::new();
        for (i, ts) in [7, 7, 7].into_iter().enumerate() {
            let _ = r.push(ts, i, &mut |_, t| out.push(t));
        }
        r.drain(&mut |_, t| out.push(t));
        assert_eq!(out, [0, 1, 2]);
    }

    #[test]
    fn the_cap_forces_the_oldest_out_and_counts_it() {
        let (out, late, s) = run(1_000_000, 2, &[1, 2, 3, 4]);
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(late.is_empty());
        assert_eq!(s.forced, 2);
    }

    #[test]
    fn idle_flush_releases_what_the_clock_has_passed() {
        let mut r = Reorder::new(100, 10);
        let mut out = Vec::new();
        let _ = r.push(1_000, 1, &mut |_, t| out.push(t));
        let _ = r.push(1_050, 2, &mut |_, t| out.push(t));
        assert!(out.is_empty());
        r.flush_idle(1_120, &mut |_, t| out.push(t));
        assert_eq!(out, [1]);
        r.flush_idle(1_150, &mut |_, t| out.push(t));
        assert_eq!(out, [1, 2]);
        assert_eq!(r.stats().waiting, 0);
    }

    /// Random arrivals (times jittered around a rising clock, many equal) leave exactly as
    /// a stable sort by time of what was admitted, and what is late is exactly what arrived
    /// behind something already released.
    #[test]
    fn random_arrivals_leave_as_a_stable_sort() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let window = (next() % 50) as i64;
            let cap = 1 + (next() % 40) as usize;
            let mut r = Reorder::new(window, cap);
            let mut out: Vec<(i64, usize)> = Vec::new();
            let mut admitted: Vec<(i64, usize)> = Vec::new();
            let mut clock = 1_000i64;
            for i in 0..300 {
                clock += (next() % 4) as i64;
                let ts = clock - (next() % 60) as i64;
                let released_before = out.last().map(|o| o.0);
                match r.push(ts, i, &mut |t, x| out.push((t, x))) {
                    Admit::Queued => admitted.push((ts, i)),
                    Admit::Late(x) => {
                        assert_eq!(x, i);
                        assert!(released_before.is_some_and(|rb| ts < rb), "round {round}");
                    }
                }
            }
            r.drain(&mut |t, x| out.push((t, x)));
            // Each release is in order of time, arrival order among equal times, except
            // that the cap may force an event out before a later-arriving earlier one.
            let mut sorted = admitted.clone();
            sorted.sort_by_key(|&(t, _)| t);
            if r.stats().forced == 0 {
                assert_eq!(out, sorted, "round {round}");
            } else {
                let mut got = out.clone();
                got.sort();
                let mut want = admitted.clone();
                want.sort();
                assert_eq!(got, want, "round {round}: every admitted event leaves once");
            }
        }
    }
}
