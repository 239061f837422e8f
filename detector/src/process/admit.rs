//! What leaves the table when it is full: the eviction policy, in one place.
//!
//! `process.max_processes` bounds the whole table: live records plus the exited ones kept
//! for late events. When a new live record needs room, in this order:
//!
//! 1. exited records leave, oldest first (they only serve late events of their children);
//! 2. then live records of processes that are gone: `/proc` no longer lists the pid, so
//!    the exit event was lost (ring overflow) and the record leaked. One listing of `/proc`
//!    finds them all; they move to the exited queue (the most recently seen stay while
//!    there is room, for an exit event still on its way) and count as `reaped`;
//! 3. only then a running process: the one seen least recently (by any event, as subject,
//!    parent or leader). `/proc` reloads it if an event names it again.
//!
//! Why this order, for a security sensor: a long-lived process (sshd, a container's shim,
//! a reverse shell started an hour ago) anchors the ancestry and entry leader of everything
//! it starts, yet is rarely seen. Exits that arrive never fill the table (the record moves
//! to the bounded exited queue), so it fills only with leaked records or a host that runs
//! more processes than the bound. Evicting the least recently seen first would drop exactly
//! the long-lived processes and keep the leaked records of short ones that died a second
//! ago. So a running process is forgotten only when the host really runs more processes
//! than the bound allows.
//!
//! Step 2 costs one read of the `/proc` directory. When a listing frees fewer than
//! `max/16` records, `/proc` is not listed again for the next `max/16` evictions (the one
//! that follows included), so a host that really is over the bound pays one listing per
//! `max/16` new processes. Without a `/proc`
//! (`TableConfig::proc_root` is `None`, synthetic tests) step 2 is skipped. Records seen by
//! the event being applied are never reaped (its subject is on its way in).
//!
//! The policy is passed explicitly ([`Admit`]): the subject of an exit event that was
//! evicted earlier comes back for its end document only and evicts nothing (after a mass
//! exit the table would otherwise forget nearly every live process).

use super::procfs;
use super::table::ProcessTable;

/// How a record enters the live set of a full table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// Make room first, in the order of the module docs.
    MakeRoom,
    /// The subject of an exit event, rebuilt for its end document and removed right
    /// after: the table overflows its bound by this one record for that moment.
    ForExit,
}

/// When `/proc` may be listed next, and which records the current event has seen.
#[derive(Default)]
pub(super) struct Sweep {
    /// Evictions of running processes left before `/proc` is listed again.
    credit: usize,
    /// The live set's clock when the current event began: records seen since are the
    /// event's own, never reaped.
    event_mark: u64,
}

impl Sweep {
    /// An event begins; the live set's clock reads `clock`.
    pub fn begin_event(&mut self, clock: u64) {
        self.event_mark = clock;
    }
}

impl ProcessTable {
    /// Make room for one more live record, as `admit` says.
    pub(super) fn make_room(&mut self, admit: Admit) {
        if admit == Admit::ForExit {
            return;
        }
        let max = self.max_records();
        let mut swept = false;
        while self.live.len() + self.exited.len() >= max {
            if self.exited.pop_oldest().is_some() {
                self.stats.evicted_exited += 1;
            } else if self.sweep.credit == 0 && !swept {
                swept = true;
                let reaped = self.reap_gone();
                let step = (max / 16).max(1);
                self.sweep.credit = if (reaped as usize) < step { step } else { 0 };
            } else if let Some(victim) = self.live.pop_least_recent() {
                self.forget_cgroup(victim.last_of_cgroup);
                self.stats.evicted_live += 1;
                self.sweep.credit = self.sweep.credit.saturating_sub(1);
            } else {
                break;
            }
        }
    }

    /// After an exit: the exited queue keeps at most `exited_grace` records, and the
    /// table at most `max_processes` in all.
    pub(super) fn trim_exited(&mut self) {
        let room = self.max_records().saturating_sub(self.live.len());
        let keep = self.cfg.exited_grace.min(room);
        self.stats.evicted_exited += self.exited.truncate_oldest(keep);
    }

    /// Move live records whose process `/proc` no longer lists to the exited queue (step 2
    /// of the module docs). Returns how many.
    fn reap_gone(&mut self) -> u64 {
        let Some(root) = &self.cfg.proc_root else {
            return 0;
        };
        let pids = match procfs::list_pids(root) {
            Ok(p) if !p.is_empty() => p,
            _ => return 0,
        };
        self.stats.proc_sweeps += 1;
        let gone = self.live.remove_where(self.sweep.event_mark, |r| {
            pids.binary_search(&r.tgid).is_err()
        });
        let n = gone.len() as u64;
        for d in gone {
            self.forget_cgroup(d.last_of_cgroup);
            self.exited.push(d.rec);
        }
        self.stats.reaped += n;
        self.stats.evicted_exited += self.exited.truncate_oldest(self.cfg.exited_grace);
        n
    }
}
