//! Building the output records ([`ProcInfo`], [`Snapshot`]) from table records.
//!
//! A [`View`] borrows the live set and the exited queue read-only and the user-name cache
//! mutably: documents are built from records in place (no copies), and building one cannot
//! change which processes the table holds.

use std::sync::Arc;

use super::entity::IdContext;
use super::exited::ExitedQueue;
use super::live::{LiveSet, Who};
use super::model::{Creds, EntryLeader, ExecImage, Id, ProcInfo, ProcRef, Snapshot};
use super::record::{Link, Rec};
use super::table::{ProcessTable, parent_in};
use super::users::UserNames;
use crate::event::EventKind;

/// A record's info without names and without a parent reference.
pub(super) fn bare_info(ids: &IdContext, r: &Rec) -> ProcInfo {
    ProcInfo {
        entity_id: r.entity_id(ids),
        pid: r.tgid,
        vpid: r.ns_pid,
        ppid: r.ppid,
        pgid: r.pgid,
        sid: r.sid,
        image: r.image.clone(),
        start_boot_ns: r.start_boot_ns,
        end_boot_ns: r.exit.map(|(_, end)| end),
        exit_code: r.exit.map(|(code, _)| code),
        interactive: r.tty.is_some(),
        tty: r.tty,
        creds: Creds {
            caps: r.caps,
            user: Id {
                id: r.euid,
                name: None,
            },
            real_user: Id {
                id: r.uid,
                name: None,
            },
            group: Id {
                id: r.egid,
                name: None,
            },
            real_group: Id {
                id: r.gid,
                name: None,
            },
        },
        pid_ns_ino: r.pid_ns,
        mnt_ns_ino: r.mnt_ns,
        cgroup_id: r.cgroup_id,
        parent: None,
    }
}

fn to_ref(ids: &IdContext, r: &Rec) -> ProcRef {
    ProcRef {
        entity_id: r.entity_id(ids),
        pid: r.tgid,
        vpid: r.ns_pid,
        start_boot_ns: r.start_boot_ns,
    }
}

/// The table as documents see it (see the module docs).
pub(super) struct View<'a> {
    pub ids: &'a IdContext,
    pub live: &'a LiveSet,
    pub exited: &'a ExitedQueue,
    pub users: &'a mut UserNames,
}

impl ProcessTable {
    /// A view for building documents and leader links.
    pub(super) fn view(&mut self) -> View<'_> {
        View {
            ids: &self.ids,
            live: &self.live,
            exited: &self.exited,
            users: &mut self.users,
        }
    }

    /// The document for the current state of `tgid`.
    pub(super) fn snapshot(
        &mut self,
        tgid: u32,
        kind: EventKind,
        event_boot_ns: u64,
        previous: Option<Arc<ExecImage>>,
    ) -> Option<Snapshot> {
        let (snap, parent_missing) = self.view().snapshot(tgid, kind, event_boot_ns, previous)?;
        if parent_missing && kind != EventKind::Fork {
            self.stats.unknown_parent += 1;
        }
        Some(snap)
    }
}

impl<'a> View<'a> {
    /// The parent of `r`, live or recently exited.
    fn parent_of(&self, r: &Rec) -> Option<&'a Rec> {
        parent_in(self.live, Some(self.exited), r.ppid, r.start_ticks)
    }

    /// Full info for a record: names resolved, parent referenced. Shared: the record's
    /// cached info while it is exactly what would be built now (see `shared`), else a new
    /// one, cached.
    pub fn info(&mut self, r: &Rec) -> Arc<ProcInfo> {
        let parent = self.parent_of(r);
        let generation = self.users.generation();
        let users = &*self.users;
        let misses_hold = || users.misses_hold(r.mnt_ns);
        if let Some(info) = r.info.get(self.ids, r, parent, generation, misses_hold) {
            debug_assert_eq!(*info, self.build_info(r, parent), "a stale shared info");
            return info;
        }
        let info = Arc::new(self.build_info(r, parent));
        // The generation after the lookups: a lookup that reloaded a database has advanced
        // it, and the names found are those of the new one.
        r.info.set(Arc::clone(&info), self.users.generation());
        info
    }

    /// A new info for `r`, whose parent is `parent`.
    fn build_info(&mut self, r: &Rec, parent: Option<&Rec>) -> ProcInfo {
        let mut info = bare_info(self.ids, r);
        let (ns, pid) = (r.mnt_ns, r.tgid);
        info.creds.user.name = self.users.user(ns, pid, r.euid);
        info.creds.real_user.name = if r.uid == r.euid {
            info.creds.user.name.clone()
        } else {
            self.users.user(ns, pid, r.uid)
        };
        info.creds.group.name = self.users.group(ns, pid, r.egid);
        info.creds.real_group.name = if r.gid == r.egid {
            info.creds.group.name.clone()
        } else {
            self.users.group(ns, pid, r.gid)
        };
        info.parent = parent.map(|p| to_ref(self.ids, p));
        info
    }

    /// The leader a link names: fresh from the table while it lives, else its last copy.
    fn resolve_link(&mut self, link: &Link) -> Arc<ProcInfo> {
        match self.live.get(link.tgid, Who::Started(link.start_ticks)) {
            Some(l) => self.info(l),
            None => Arc::clone(&link.last),
        }
    }

    /// The session leader of a record, as a reference.
    fn session_ref(&self, r: &Rec) -> Option<ProcRef> {
        let link = r.session.as_ref()?;
        Some(
            match self.live.get(link.tgid, Who::Started(link.start_ticks)) {
                Some(l) => to_ref(self.ids, l),
                None => link.last.proc_ref(),
            },
        )
    }

    /// The document for the current state of `tgid`, and whether its parent is unknown
    /// (pid known, record not).
    pub fn snapshot(
        &mut self,
        tgid: u32,
        kind: EventKind,
        event_boot_ns: u64,
        previous: Option<Arc<ExecImage>>,
    ) -> Option<(Snapshot, bool)> {
        let live = self.live;
        let rec = live.holder(tgid)?;
        let subject = self.info(rec);
        let parent_rec = self.parent_of(rec);
        let parent_missing = parent_rec.is_none() && rec.ppid != 0;
        let parent = parent_rec.map(|p| self.info(p));
        let group_leader = if rec.pgid == rec.tgid {
            Some(subject.clone())
        } else if rec.pgid != 0 {
            live.get(rec.pgid, Who::StartedBy(rec.start_ticks))
                .map(|g| self.info(g))
        } else {
            None
        };
        let parent_group_leader = parent_rec.and_then(|p| {
            if p.pgid == p.tgid {
                Some(to_ref(self.ids, p))
            } else {
                live.get(p.pgid, Who::StartedBy(p.start_ticks))
                    .map(|g| to_ref(self.ids, g))
            }
        });
        let session_leader = rec.session.as_ref().map(|l| self.resolve_link(l));
        let entry_leader = rec.entry.as_ref().map(|(l, t)| EntryLeader {
            info: self.resolve_link(l),
            entry_type: *t,
        });
        let session_leader_parent_session_leader = session_leader
            .as_ref()
            .and_then(|s| self.parent_session_ref(s));
        let entry_leader_parent_session_leader = entry_leader
            .as_ref()
            .and_then(|e| self.parent_session_ref(&e.info));
        let snap = Snapshot {
            kind,
            event_boot_ns,
            container: rec.container.clone(),
            subject,
            parent,
            group_leader,
            session_leader,
            entry_leader,
            parent_group_leader,
            session_leader_parent_session_leader,
            entry_leader_parent_session_leader,
            previous,
        };
        Some((snap, parent_missing))
    }

    /// The session leader of the parent of `leader`, when the parent is known.
    fn parent_session_ref(&self, leader: &ProcInfo) -> Option<ProcRef> {
        let p = leader.parent.as_ref()?;
        let ticks = self.ids.start_ticks(p.start_boot_ns);
        let prec = parent_in(self.live, Some(self.exited), p.pid, ticks)?;
        self.session_ref(prec)
    }
}
