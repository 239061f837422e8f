//! Session and entry leader links: decided when a process forks, execs or is seeded.
//!
//! The decision reads the table (a parent, a live session or group leader) through a
//! [`View`] and returns the change ([`Leaders`]); the caller applies it to the record, in
//! the table or about to enter it.

use std::sync::Arc;

use super::entry;
use super::live::Who;
use super::model::EntryType;
use super::record::{Link, Rec};
use super::view::View;

/// New leader links for a record; `None` fields stay as they are.
#[must_use = "apply the links to the record"]
#[derive(Default)]
pub(super) struct Leaders {
    session: Option<Option<Link>>,
    entry: Option<Option<(Link, EntryType)>>,
}

impl Leaders {
    /// Set the links on `rec`.
    pub fn apply(self, rec: &mut Rec) {
        if let Some(s) = self.session {
            rec.session = s;
        }
        if let Some(e) = self.entry {
            rec.entry = e;
        }
    }
}

impl View<'_> {
    /// The session and entry leader links of `rec` (whose parent is `parent`).
    /// `exec_time`: the session-leader entry rules apply (exec, seeding), not only the
    /// container rule (fork).
    pub fn leaders(&mut self, rec: &Rec, parent: Option<&Rec>, exec_time: bool) -> Leaders {
        let live = self.live;
        let mut out = Leaders::default();
        // Session leader.
        if rec.session.as_ref().is_none_or(|l| l.tgid != rec.sid) {
            out.session = Some(if rec.sid == rec.tgid {
                Some(self.link_to(rec))
            } else if let Some(p) = parent.filter(|p| p.sid == rec.sid && p.session.is_some()) {
                p.session.clone()
            } else {
                live.get(rec.sid, Who::StartedBy(rec.start_ticks))
                    .map(|l| self.link_to_ref(l))
            });
        }
        // Entry leader.
        let subject = entry::Subject {
            tgid: rec.tgid,
            sid: if exec_time { rec.sid } else { 0 },
            ppid: rec.ppid,
            tty: rec.tty,
            image: &rec.image,
            pid_ns: rec.pid_ns,
            ns_pid: rec.ns_pid,
        };
        let p = parent.map(|p| entry::Parent {
            image: &p.image,
            pid_ns: p.pid_ns,
        });
        let host_pid_ns = self.ids.pid_ns_ino;
        // At fork time the child is never a session leader yet (sid 0 above disables rule 3
        // unless tgid is 0, which no process is).
        let decided = entry::classify(&subject, p.as_ref(), host_pid_ns);
        if let Some(t) = decided {
            out.entry = Some(Some((self.link_to(rec), t)));
        } else if rec.entry.is_none() && !entry::is_kernel_thread(rec.tgid, rec.ppid) {
            // Inherit: from the parent, else the session leader, else the group leader.
            let live_entry = |tgid: u32| {
                live.get(tgid, Who::StartedBy(rec.start_ticks))
                    .filter(|l| l.tgid != rec.tgid)
                    .and_then(|l| l.entry.clone())
            };
            out.entry = Some(
                parent
                    .and_then(|p| p.entry.clone())
                    .or_else(|| live_entry(rec.sid))
                    .or_else(|| live_entry(rec.pgid)),
            );
        }
        out
    }

    fn link_to(&mut self, rec: &Rec) -> Link {
        Link {
            tgid: rec.tgid,
            start_ticks: rec.start_ticks,
            last: self.info(rec),
        }
    }

    fn link_to_ref(&self, rec: &Rec) -> Link {
        // Names are resolved at snapshot time for live leaders; the fallback copy has ids only.
        Link {
            tgid: rec.tgid,
            start_ticks: rec.start_ticks,
            last: Arc::new(super::view::bare_info(self.ids, rec)),
        }
    }
}
