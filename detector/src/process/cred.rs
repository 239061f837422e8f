//! Credential changes (`uid_change`, `gid_change`, `session_id_change`): how they change the
//! model, and which of them are news.
//!
//! The kernel reports a thread whose ids a `set*id`/`setsid` call changed. A process's
//! change can arrive more than once: glibc applies `setuid` to every thread of a process,
//! one syscall each, and every thread's ids really change. The model keeps the process's
//! ids, so the first record changes them and the others find nothing new: only the first
//! is reported. The kind reported is the first id class (uid, gid, session) that differs
//! from the model; when the model did not know the process before this event (it was just
//! loaded from `/proc`, which already shows the new ids), the kernel's kind is trusted.

use super::admit::Admit;
use super::live::Who;
use super::table::{ProcessTable, parent_in};
use crate::event::{EventKind, ProcessEvent};

/// The ids a credential change can touch, as the model holds them.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ids {
    uid: (u32, u32),
    gid: (u32, u32),
    sid: u32,
}

/// Which change `ev` makes to `before`, if any (see the module docs for the order).
pub(super) fn changed_kind(
    before: Option<(u32, u32, u32, u32, u32)>,
    ev: &ProcessEvent,
) -> Option<EventKind> {
    let Some((uid, euid, gid, egid, sid)) = before else {
        return ev.kind;
    };
    let b = Ids {
        uid: (uid, euid),
        gid: (gid, egid),
        sid,
    };
    if b.uid != (ev.uid, ev.euid) {
        Some(EventKind::UidChange)
    } else if b.gid != (ev.gid, ev.egid) {
        Some(EventKind::GidChange)
    } else if b.sid != ev.sid {
        Some(EventKind::SessionIdChange)
    } else {
        None
    }
}

impl ProcessTable {
    /// Applies a credential-change event: the subject's ids (and, for a new session, its
    /// process group and session leader) take the event's values. Returns the kind to
    /// report, `None` when nothing changed for the process (counted in
    /// `TableStats::cred_unchanged`).
    pub(super) fn on_cred_change(&mut self, ev: &ProcessEvent) -> Option<EventKind> {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        let before = self
            .live
            .get(ev.tgid, Who::Started(ticks))
            .map(|r| (r.uid, r.euid, r.gid, r.egid, r.sid));
        // `ensure` leaves the record updated from this event (ids, sid).
        self.ensure(ev, Admit::MakeRoom);
        let kind = changed_kind(before, ev);
        if kind.is_none() {
            self.stats.cred_unchanged += 1;
        }
        if kind == Some(EventKind::SessionIdChange) || before.is_some_and(|b| b.4 != ev.sid) {
            self.new_session(ev.tgid);
        }
        kind
    }

    /// After `setsid`: the process leads its own process group and session.
    fn new_session(&mut self, tgid: u32) {
        let Some((ppid, ticks)) = self.edit(tgid, |r| {
            if r.sid == r.tgid {
                r.pgid = r.tgid;
            }
            (r.ppid, r.start_ticks)
        }) else {
            return;
        };
        let mut view = self.view();
        let live = view.live;
        let Some(rec) = live.holder(tgid) else {
            return;
        };
        let parent = parent_in(live, Some(view.exited), ppid, ticks);
        let leaders = view.leaders(rec, parent, false);
        self.edit(tgid, |r| leaders.apply(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, uid: u32, euid: u32, gid: u32, egid: u32, sid: u32) -> ProcessEvent {
        ProcessEvent {
            kind: Some(kind),
            uid,
            euid,
            gid,
            egid,
            sid,
            ..ProcessEvent::default()
        }
    }

    #[test]
    fn the_first_id_class_that_differs_is_the_change() {
        let before = Some((1000, 1000, 1000, 1000, 50));
        let uid = ev(EventKind::UidChange, 0, 0, 1000, 1000, 50);
        assert_eq!(changed_kind(before, &uid), Some(EventKind::UidChange));
        // Only the effective uid.
        let euid = ev(EventKind::UidChange, 1000, 0, 1000, 1000, 50);
        assert_eq!(changed_kind(before, &euid), Some(EventKind::UidChange));
        // The kernel said uid (a thread without a note), the model shows a gid change.
        let gid = ev(EventKind::UidChange, 1000, 1000, 1000, 65534, 50);
        assert_eq!(changed_kind(before, &gid), Some(EventKind::GidChange));
        let sid = ev(EventKind::SessionIdChange, 1000, 1000, 1000, 1000, 77);
        assert_eq!(changed_kind(before, &sid), Some(EventKind::SessionIdChange));
        // Same ids: the second thread of a process that already changed.
        let same = ev(EventKind::UidChange, 1000, 1000, 1000, 1000, 50);
        assert_eq!(changed_kind(before, &same), None);
        // Unknown before: the kernel's word.
        assert_eq!(changed_kind(None, &same), Some(EventKind::UidChange));
    }
}
