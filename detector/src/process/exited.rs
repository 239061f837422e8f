//! The exited queue: records of processes that ended, kept a while for the events that
//! still name them.
//!
//! Why: events of a child can follow its parent's exit (the child runs on; several CPUs
//! feed one ring), and their documents should still name the parent with its executable
//! and args. The queue is in exit order; the table trims it from the oldest (see
//! `admit`). An index counts the records per tgid, so the common miss (a parent never
//! seen) costs one hash lookup, not a scan; the index is private so it cannot drift from
//! the queue.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::live::Who;
use super::record::Rec;

/// Recently exited processes, oldest first (see the module docs).
#[derive(Default)]
pub(super) struct ExitedQueue {
    queue: VecDeque<Rec>,
    /// How many records of `queue` each tgid has (FxHash: kernel-assigned pids, looked up
    /// for every parent the live set lacks).
    tgids: FxHashMap<u32, u32>,
}

impl ExitedQueue {
    /// Number of records kept.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Add the record of a process that just exited (the newest).
    pub fn push(&mut self, rec: Rec) {
        *self.tgids.entry(rec.tgid).or_default() += 1;
        self.queue.push_back(rec);
    }

    /// Drop the oldest record.
    pub fn pop_oldest(&mut self) -> Option<Rec> {
        let rec = self.queue.pop_front()?;
        self.uncount(rec.tgid);
        Some(rec)
    }

    /// Drop the oldest records until at most `n` remain; returns how many were dropped.
    pub fn truncate_oldest(&mut self, n: usize) -> u64 {
        let mut dropped = 0;
        while self.queue.len() > n && self.pop_oldest().is_some() {
            dropped += 1;
        }
        dropped
    }

    /// The most recently exited process `tgid` that is the one `who` means.
    pub fn get(&self, tgid: u32, who: Who) -> Option<&Rec> {
        if !self.tgids.contains_key(&tgid) {
            return None;
        }
        self.queue
            .iter()
            .rev()
            .find(|r| r.tgid == tgid && who.matches(r.start_ticks))
    }

    /// Take out the record of the process `tgid` started at `start_ticks` (an event that
    /// reached it after the table had moved it here).
    pub fn take(&mut self, tgid: u32, start_ticks: u64) -> Option<Rec> {
        if !self.tgids.contains_key(&tgid) {
            return None;
        }
        let at = self
            .queue
            .iter()
            .rposition(|r| r.tgid == tgid && r.start_ticks == start_ticks)?;
        let rec = self.queue.remove(at)?;
        self.uncount(tgid);
        Some(rec)
    }

    fn uncount(&mut self, tgid: u32) {
        if let Some(n) = self.tgids.get_mut(&tgid) {
            *n -= 1;
            if *n == 0 {
                self.tgids.remove(&tgid);
            }
        }
    }

    /// Panics unless the index counts exactly the queue.
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        let mut want: FxHashMap<u32, u32> = FxHashMap::default();
        for r in &self.queue {
            *want.entry(r.tgid).or_default() += 1;
        }
        assert_eq!(self.tgids, want, "exited index");
    }
}

#[cfg(test)]
mod tests {
    use super::super::live::tests::rec;
    use super::*;

    #[test]
    fn newest_first_lookups_and_oldest_first_trimming() {
        let mut q = ExitedQueue::default();
        // pid 10 used twice (started at 100, then at 300), pid 11 once.
        for (tgid, ticks) in [(10, 100), (11, 200), (10, 300)] {
            q.push(rec(tgid, ticks, 0));
        }
        q.assert_consistent();
        // (tgid, who, found start)
        let table = [
            (10, Who::StartedBy(400), Some(300)),
            (10, Who::StartedBy(250), Some(100)),
            (10, Who::StartedBy(50), None),
            (10, Who::Started(100), Some(100)),
            (12, Who::StartedBy(400), None),
        ];
        for (tgid, who, want) in table {
            assert_eq!(
                q.get(tgid, who).map(|r| r.start_ticks),
                want,
                "{tgid} {who:?}"
            );
        }
        assert_eq!(q.take(10, 300).map(|r| r.start_ticks), Some(300));
        assert!(q.take(10, 300).is_none());
        q.assert_consistent();
        assert_eq!(q.truncate_oldest(1), 1);
        assert_eq!(q.pop_oldest().map(|r| r.tgid), Some(11));
        assert_eq!(q.len(), 0);
        q.assert_consistent();
    }
}
