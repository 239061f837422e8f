//! The live set: one record per running process, the order they were last seen in, and
//! how many live processes each cgroup holds.
//!
//! Why one type: three structures must agree at every moment — the map (tgid → record),
//! the last-seen order eviction reads, and the per-cgroup counts by which the container
//! cache forgets a container whose last process is gone. A stale order entry would evict
//! the wrong process (or none); a missing count would keep a dead container cached, an
//! extra one forget a live container. So the fields are private, and every change goes
//! through a method that keeps the three in step.
//!
//! Identity: a process is `(tgid, start ticks)`. The map is keyed by tgid (only one live
//! process can hold a pid), so a lookup by pid alone could answer for another process that
//! reused the pid. [`LiveSet::get`] is the lookup: it says which process it means
//! ([`Who`]) and checks the record's start time. [`LiveSet::holder`] (whoever holds the
//! pid now, unchecked) is for the callers that mean exactly that: the subject an event has
//! just made current, and inspection by pid.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::record::Rec;

/// Which process a lookup by pid means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Who {
    /// The process that started at these ticks: an event's subject, the leader a link
    /// names.
    Started(u64),
    /// The holder of the pid if it started no later than these ticks: the parent or a
    /// leader of a process that started then (one started later holds a reused pid).
    StartedBy(u64),
}

impl Who {
    /// Whether a record started at `start_ticks` is the process meant.
    pub fn matches(self, start_ticks: u64) -> bool {
        match self {
            Who::Started(t) => start_ticks == t,
            Who::StartedBy(t) => start_ticks <= t,
        }
    }
}

/// A record that left the live set.
#[must_use = "a cgroup left without live processes must be forgotten by the container cache"]
pub(super) struct Departed {
    pub rec: Rec,
    /// It was the last live process of this cgroup.
    pub last_of_cgroup: Option<u64>,
}

struct Slot {
    rec: Rec,
    /// Its key in `LiveSet::order`.
    seen: u64,
}

/// The running processes (see the module docs).
///
/// The maps hash with FxHash, not std's SipHash: their keys are pids and cgroup ids the
/// kernel assigns (no one picks them to collide), and they are looked up several times per
/// event.
#[derive(Default)]
pub(super) struct LiveSet {
    map: FxHashMap<u32, Slot>,
    /// Last-seen order, `seen` → tgid: the first entry is the least recently seen.
    order: BTreeMap<u64, u32>,
    /// The last `seen` value handed out.
    clock: u64,
    /// Live processes per cgroup id (0, unknown, is not counted).
    cgroups: FxHashMap<u64, u32>,
}

impl LiveSet {
    /// Number of live records.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The live process `tgid`, if it is the one `who` means.
    pub fn get(&self, tgid: u32, who: Who) -> Option<&Rec> {
        self.map
            .get(&tgid)
            .map(|s| &s.rec)
            .filter(|r| who.matches(r.start_ticks))
    }

    /// Whichever process holds pid `tgid` now, whatever its start time.
    pub fn holder(&self, tgid: u32) -> Option<&Rec> {
        self.map.get(&tgid).map(|s| &s.rec)
    }

    /// Whether some process holds pid `tgid`.
    pub fn contains(&self, tgid: u32) -> bool {
        self.map.contains_key(&tgid)
    }

    /// Add `rec` as the most recently seen. The set has no bound of its own: the caller
    /// made room. A record holding the same pid leaves and is returned.
    pub fn insert(&mut self, rec: Rec) -> Option<Departed> {
        let old = self.remove(rec.tgid);
        self.clock += 1;
        self.order.insert(self.clock, rec.tgid);
        self.count_cgroup(rec.cgroup_id);
        self.map.insert(
            rec.tgid,
            Slot {
                rec,
                seen: self.clock,
            },
        );
        old
    }

    /// Remove the record of pid `tgid`.
    pub fn remove(&mut self, tgid: u32) -> Option<Departed> {
        let slot = self.map.remove(&tgid)?;
        self.order.remove(&slot.seen);
        Some(Departed {
            last_of_cgroup: self.uncount_cgroup(slot.rec.cgroup_id),
            rec: slot.rec,
        })
    }

    /// Remove the least recently seen record.
    pub fn pop_least_recent(&mut self) -> Option<Departed> {
        let (_, &tgid) = self.order.first_key_value()?;
        self.remove(tgid)
    }

    /// Mark `tgid` as just seen.
    pub fn touch(&mut self, tgid: u32) {
        if let Some(s) = self.map.get_mut(&tgid) {
            self.clock += 1;
            self.order.remove(&s.seen);
            s.seen = self.clock;
            self.order.insert(self.clock, tgid);
        }
    }

    /// Change the record of `tgid` in place with `f`, which must not change its identity
    /// (tgid, start ticks); the cgroup counts follow its `cgroup_id`. Returns what `f`
    /// returned and the cgroup the record left as its last live process, if any.
    pub fn update<R>(
        &mut self,
        tgid: u32,
        f: impl FnOnce(&mut Rec) -> R,
    ) -> Option<(R, Option<u64>)> {
        let slot = self.map.get_mut(&tgid)?;
        let (before, ticks) = (slot.rec.cgroup_id, slot.rec.start_ticks);
        let out = f(&mut slot.rec);
        debug_assert!(
            slot.rec.tgid == tgid && slot.rec.start_ticks == ticks,
            "update changed a record's identity"
        );
        let after = slot.rec.cgroup_id;
        let mut left = None;
        if after != before {
            self.count_cgroup(after);
            left = self.uncount_cgroup(before);
        }
        Some((out, left))
    }

    /// The last-seen clock now: records seen from here on have a later mark.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Remove every record last seen no later than `seen_by` for which `gone` holds, least
    /// recently seen first.
    pub fn remove_where(&mut self, seen_by: u64, gone: impl Fn(&Rec) -> bool) -> Vec<Departed> {
        let victims: Vec<u32> = self
            .order
            .range(..=seen_by)
            .map(|(_, &tgid)| tgid)
            .filter(|tgid| self.map.get(tgid).is_some_and(|s| gone(&s.rec)))
            .collect();
        victims
            .into_iter()
            .filter_map(|tgid| self.remove(tgid))
            .collect()
    }

    /// The live tgids in start order.
    pub fn tgids_by_start(&self) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = self
            .map
            .values()
            .map(|s| (s.rec.start_boot_ns, s.rec.tgid))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Distinct cgroups with live processes.
    pub fn cgroups(&self) -> usize {
        self.cgroups.len()
    }

    /// Index sizes for leak tests: (last-seen order entries, cgroups, sum of the cgroup
    /// counts).
    pub fn index_sizes(&self) -> (usize, usize, u64) {
        let refs = self.cgroups.values().map(|&n| n as u64).sum();
        (self.order.len(), self.cgroups.len(), refs)
    }

    fn count_cgroup(&mut self, id: u64) {
        if id != 0 {
            *self.cgroups.entry(id).or_insert(0) += 1;
        }
    }

    /// Returns `id` when its last live process is gone.
    fn uncount_cgroup(&mut self, id: u64) -> Option<u64> {
        let n = self.cgroups.get_mut(&id)?;
        *n -= 1;
        if *n == 0 {
            self.cgroups.remove(&id);
            return Some(id);
        }
        None
    }

    /// Panics unless the map, the order and the cgroup counts agree.
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        assert_eq!(
            self.order.len(),
            self.map.len(),
            "one order entry per record"
        );
        for (&seen, tgid) in &self.order {
            assert_eq!(self.map[tgid].seen, seen, "order entry of {tgid}");
        }
        let mut want: FxHashMap<u64, u32> = FxHashMap::default();
        for s in self.map.values().filter(|s| s.rec.cgroup_id != 0) {
            *want.entry(s.rec.cgroup_id).or_default() += 1;
        }
        assert_eq!(self.cgroups, want, "cgroup counts");
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A bare record for the set's own tests.
    pub(in crate::process) fn rec(tgid: u32, start_ticks: u64, cgroup_id: u64) -> Rec {
        Rec {
            tgid,
            start_ticks,
            start_boot_ns: start_ticks * 10_000_000,
            entity_id: Default::default(),
            info: Default::default(),
            ppid: 1,
            pgid: 0,
            sid: 0,
            ns_pid: tgid,
            pid_ns: 0,
            mnt_ns: 0,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            caps: None,
            tty: None,
            image: Default::default(),
            cgroup_id,
            container: None,
            session: None,
            entry: None,
            exit: None,
        }
    }

    #[test]
    #[rustfmt::skip]
    fn lookups_check_the_start_time() {
        let mut s = LiveSet::default();
        let _ = s.insert(rec(10, 100, 0));
        // (tgid, who, found)
        let table = [
            (10, Who::Started(100), true),
            (10, Who::Started(99), false),
            (10, Who::Started(101), false),
            (10, Who::StartedBy(100), true),
            (10, Who::StartedBy(150), true),
            (10, Who::StartedBy(99), false),
            (11, Who::Started(100), false),
            (11, Who::StartedBy(100), false),
        ];
        for (tgid, who, found) in table {
            assert_eq!(s.get(tgid, who).is_some(), found, "{tgid} {who:?}");
        }
        assert_eq!(s.holder(10).map(|r| r.start_ticks), Some(100));
    }

    #[test]
    fn order_and_cgroup_counts_follow_every_change() {
        let mut s = LiveSet::default();
        for (tgid, cg) in [(1, 7), (2, 7), (3, 8), (4, 0)] {
            assert!(s.insert(rec(tgid, tgid as u64, cg)).is_none());
        }
        s.assert_consistent();
        assert_eq!(s.cgroups(), 2);
        // Seen again: no longer the least recent.
        s.touch(1);
        let d = s.pop_least_recent().unwrap();
        assert_eq!((d.rec.tgid, d.last_of_cgroup), (2, None), "7 still has 1");
        // Moving the last process of cgroup 8 into 7 leaves 8 empty.
        let (_, left) = s.update(3, |r| r.cgroup_id = 7).unwrap();
        assert_eq!(left, Some(8));
        s.assert_consistent();
        // A new process with the same pid replaces the old one.
        let old = s.insert(rec(3, 50, 9)).unwrap();
        assert_eq!((old.rec.start_ticks, old.last_of_cgroup), (3, None));
        s.assert_consistent();
        // Removal by predicate, least recently seen first, sparing later marks.
        let mark = s.clock();
        s.touch(4);
        let gone: Vec<u32> = s
            .remove_where(mark, |_| true)
            .into_iter()
            .map(|d| d.rec.tgid)
            .collect();
        assert_eq!(gone, vec![1, 3], "4 was seen after the mark");
        s.assert_consistent();
        assert_eq!((s.len(), s.cgroups()), (1, 0));
        assert_eq!(s.index_sizes(), (1, 0, 0));
    }
}
