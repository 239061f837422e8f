//! The process table: how fork, exec and exit change the model.
//!
//! Parts, each keeping its own invariants: the live set (`LiveSet`: running processes,
//! their last-seen order, cgroup counts, and the identity-checked lookup), the exited queue
//! (`ExitedQueue`: recently exited processes, for late events), and the admission policy
//! (`admit`: what leaves when the table is full). This file composes them.
//!
//! Identity: a process is `(tgid, start ticks)`, checked on every lookup (see
//! `live`), so a reused pid never inherits a dead process's record: a fork/exec for
//! a tgid whose record started at another time replaces the stale record (counted as
//! `pid_reuse`).
//!
//! Bound: at most `max_processes` records, live and exited together (default 131,072 in
//! the daemon's configuration), of which at most `exited_grace` exited (default 1,024).
//! Exit events move a record to the exited queue once its document is built (so a late
//! event of a child can still name it). When the table is full, exited records leave
//! first, then records of processes `/proc` no longer lists (lost exits), and only then the
//! least recently seen running process (see `admit` for why). Every removal is counted.
//! The exit of an evicted process does not evict another: its record is rebuilt for its
//! exit document (one over the bound for that moment) and removed.

use std::path::PathBuf;
use std::sync::Arc;

use super::admit::{Admit, Sweep};
use super::entity::IdContext;
use super::exited::ExitedQueue;
use super::live::{LiveSet, Who};
use super::model::ExecImage;
use super::record::Rec;
use super::users::UserNames;
use crate::container::{ContainerResolver, EnrichRoots, ResolverStats};
use crate::event::{EventKind, ProcessEvent};
use crate::host::HostInfo;

/// Tunables of the process model.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Records kept at most, live and exited together (`process.max_processes`). Beyond,
    /// exited records leave first, then those of processes `/proc` no longer lists, then
    /// the least recently seen running process (see the `admit` module for why).
    pub max_processes: usize,
    /// Of those, exited records kept after their exit document, at most.
    pub exited_grace: usize,
    /// `/proc`, to load processes the table missed, refresh process groups on exec, and
    /// find leaked records when the table is full. `None`: events only (synthetic tests).
    pub proc_root: Option<PathBuf>,
    /// Root of the host's `/etc` for user and group names (normally `/`).
    pub host_root: PathBuf,
    /// cgroup v2 mount, to turn a seeded process's cgroup path into its id. `None`:
    /// auto-detect (`/sys/fs/cgroup/unified` on hybrid hosts, else `/sys/fs/cgroup`).
    pub cgroup_root: Option<PathBuf>,
    /// Bound of the container cache (cgroup ids).
    pub container_cache: usize,
    /// Runtime state roots for container names and images; `None` disables.
    pub enrich: Option<EnrichRoots>,
    /// Mount namespaces whose passwd/group files are cached at most.
    pub user_namespaces: usize,
    /// The host's mount namespace (host passwd applies); `None`: read `<proc_root>/self/ns/mnt`.
    pub host_mnt_ns: Option<u64>,
    /// Environment variables kept in `process.env_vars` (`sensor.capture_env_vars`).
    pub env_vars: super::EnvNames,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            max_processes: 131_072,
            exited_grace: 1_024,
            proc_root: Some("/proc".into()),
            host_root: "/".into(),
            cgroup_root: None,
            container_cache: crate::container::resolver::DEFAULT_CAPACITY,
            enrich: Some(EnrichRoots::default()),
            user_namespaces: 64,
            host_mnt_ns: None,
            env_vars: super::EnvNames::new(crate::config::DEFAULT_CAPTURE_ENV_VARS),
        }
    }
}

/// Counters and sizes, for periodic stats and leak tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub live: u64,
    pub exited: u64,
    pub events: u64,
    /// Running processes' records evicted because the table was full.
    pub evicted_live: u64,
    /// Exited records dropped from the grace queue (also for room).
    pub evicted_exited: u64,
    /// Live records found gone from `/proc` (their exit event was lost) when the table
    /// was full, and moved to the exited queue.
    pub reaped: u64,
    /// Listings of `/proc` made to find such records.
    pub proc_sweeps: u64,
    /// A pid reappeared with another start time before we saw the old one exit.
    pub pid_reuse: u64,
    /// Processes loaded from `/proc` at seeding.
    pub seeded: u64,
    /// Processes loaded from `/proc` later, because an event named one we did not know.
    pub loaded_late: u64,
    /// Events whose subject we did not know and built from the event alone.
    pub unknown_subject: u64,
    /// Events whose parent is not known.
    pub unknown_parent: u64,
    /// Credential-change events that changed nothing the model did not already show
    /// (another thread of the same process, see `cred`): no document.
    pub cred_unchanged: u64,
    /// Distinct cgroups with live processes.
    pub cgroups: u64,
    pub user_db_loads: u64,
    pub containers: ResolverStats,
}

/// The process model: live processes, their ancestry, leaders and containers.
pub struct ProcessTable {
    pub(super) cfg: TableConfig,
    pub(super) ids: IdContext,
    pub(super) live: LiveSet,
    pub(super) exited: ExitedQueue,
    /// When `/proc` may be listed next for leaked records (`admit`).
    pub(super) sweep: Sweep,
    pub(super) containers: ContainerResolver,
    pub(super) users: UserNames,
    pub(super) stats: TableStats,
}

/// The parent `ppid` of a process started at `child_ticks`: live, or recently exited with
/// `exited`. It must have started no later than the child.
pub(super) fn parent_in<'a>(
    live: &'a LiveSet,
    exited: Option<&'a ExitedQueue>,
    ppid: u32,
    child_ticks: u64,
) -> Option<&'a Rec> {
    if ppid == 0 {
        return None;
    }
    let who = Who::StartedBy(child_ticks);
    live.get(ppid, who)
        .or_else(|| exited.and_then(|e| e.get(ppid, who)))
}

/// What the table knows of an event's subject once the event is applied, before any
/// snapshot: what [`ProcessTable::apply_if_lineage`] asks about. Each part is what the
/// snapshot, if built, would hold.
#[derive(Clone, Copy, Debug)]
pub struct Lineage<'a> {
    /// The subject's image after the event.
    pub image: &'a ExecImage,
    /// The image of the process the snapshot names as parent (`None`: it names none).
    pub parent: Option<&'a ExecImage>,
    /// The image an exec replaced ([`super::Snapshot::previous`]).
    pub previous: Option<&'a ExecImage>,
    /// The subject's container.
    pub container: Option<&'a crate::container::ContainerInfo>,
    /// The event's kind.
    pub kind: EventKind,
    /// The subject's ids after the event, as the snapshot's [`super::Creds`] will hold
    /// them (their names are resolved only for the snapshot); `None`: unknown.
    pub ids: Option<CredIds>,
    /// Whether the subject has a controlling terminal (`process.interactive`); `None`:
    /// unknown.
    pub interactive: Option<bool>,
}

impl<'a> Lineage<'a> {
    /// The lineage a snapshot was built from (each part is what `snap` holds), so what is
    /// decided before a snapshot can be checked against what is decided on it.
    pub fn of(snap: &'a super::Snapshot) -> Self {
        Lineage {
            image: &snap.subject.image,
            parent: snap.parent.as_ref().map(|p| &*p.image),
            previous: snap.previous.as_deref(),
            container: snap.container.as_deref(),
            kind: snap.kind,
            ids: Some(CredIds::of(&snap.subject.creds)),
            interactive: Some(snap.subject.interactive),
        }
    }
}

/// The numeric ids of a process's credentials ([`super::Creds`] without names): what a
/// [`Lineage`] tells of them, so rules on `process.user.id`, `user.id`, … are decided
/// before any snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredIds {
    /// `process.user.id`, `user.id`: the effective uid.
    pub user: u32,
    /// `process.real_user.id`, `user.Ext.real.id`.
    pub real_user: u32,
    /// `process.group.id`, `group.id`: the effective gid.
    pub group: u32,
    /// `process.real_group.id`, `group.Ext.real.id`.
    pub real_group: u32,
    /// `process.thread.capabilities.*`, when known.
    pub caps: Option<crate::event::Caps>,
}

impl CredIds {
    /// The ids of `creds`.
    pub fn of(creds: &super::Creds) -> Self {
        CredIds {
            user: creds.user.id,
            real_user: creds.real_user.id,
            group: creds.group.id,
            real_group: creds.real_group.id,
            caps: creds.caps,
        }
    }
}

impl ProcessTable {
    /// A table computing entity ids in `ids` (boot id, host pid namespace, tick rate).
    pub fn new(cfg: TableConfig, ids: IdContext) -> Self {
        let host_mnt_ns = cfg.host_mnt_ns.unwrap_or_else(|| {
            cfg.proc_root
                .as_ref()
                .and_then(|p| std::fs::read_link(p.join("self/ns/mnt")).ok())
                .and_then(|t| {
                    super::procfs::parse_ns_link(std::os::unix::ffi::OsStrExt::as_bytes(
                        t.as_os_str(),
                    ))
                })
                .unwrap_or(0)
        });
        let proc_root = cfg.proc_root.clone().unwrap_or_else(|| "/proc".into());
        ProcessTable {
            containers: ContainerResolver::new(cfg.container_cache, cfg.enrich.clone()),
            users: UserNames::new(
                cfg.host_root.clone(),
                proc_root,
                host_mnt_ns,
                cfg.user_namespaces,
            ),
            ids,
            cfg,
            live: LiveSet::default(),
            exited: ExitedQueue::default(),
            sweep: Sweep::default(),
            stats: TableStats::default(),
        }
    }

    /// A table fed by events alone — no `/proc`, no runtime state, the usual init
    /// namespaces — for benchmarks and tests that drive the pipeline with synthetic events
    /// and must not read the machine they run on.
    pub fn events_only(boot_id: &str) -> Self {
        let cfg = TableConfig {
            proc_root: None,
            enrich: None,
            host_mnt_ns: Some(4026531841),
            ..TableConfig::default()
        };
        let ids = IdContext {
            boot_id: boot_id.into(),
            pid_ns_ino: 4026531836,
            ticks_per_sec: 100,
        };
        ProcessTable::new(cfg, ids)
    }

    /// A table for this host (ids from its boot id and pid namespace).
    pub fn for_host(cfg: TableConfig, host: &HostInfo) -> Self {
        let ids = IdContext {
            boot_id: host.boot_id.clone().unwrap_or_default(),
            pid_ns_ino: host.pid_ns_ino.unwrap_or(0),
            ticks_per_sec: super::procfs::clock_ticks_per_sec(),
        };
        Self::new(cfg, ids)
    }

    /// Recognise containers the cgroup name patterns cannot from a runtime's state (see
    /// [`crate::container::RuntimeLookup`]); without it, patterns alone decide.
    pub fn set_runtime_lookup(&mut self, lookup: Box<dyn crate::container::RuntimeLookup>) {
        self.containers.set_runtime_lookup(lookup);
    }

    /// Counters and sizes.
    pub fn stats(&self) -> TableStats {
        TableStats {
            live: self.live.len() as u64,
            exited: self.exited.len() as u64,
            cgroups: self.live.cgroups() as u64,
            user_db_loads: self.users.loads,
            containers: self.containers.stats(),
            ..self.stats
        }
    }

    /// Internal sizes that must stay bounded (lru index, cgroup refs), for leak tests.
    #[doc(hidden)]
    pub fn index_sizes(&self) -> (usize, usize, usize, u64) {
        let (order, cgroups, refs) = self.live.index_sizes();
        (order, cgroups, self.containers.queue_len(), refs)
    }

    /// The live processes' tgids, in start order (for the start-up scan).
    pub fn live_tgids(&self) -> Vec<u32> {
        self.live.tgids_by_start()
    }

    /// What the table knows of live process `tgid` now, as a snapshot of kind `kind`,
    /// without changing the table (inspection, tests, a `trace` of seeded processes).
    pub fn current(&mut self, tgid: u32, kind: EventKind) -> Option<super::Snapshot> {
        self.snapshot(tgid, kind, 0, None)
    }

    /// Apply one kernel event and describe it. `None` for an event without a kind.
    pub fn apply(&mut self, ev: &ProcessEvent) -> Option<super::Snapshot> {
        self.apply_if(ev, |_, _| true)
    }

    /// [`ProcessTable::apply`], but the snapshot (the costly part: leaders, names, parent)
    /// is built only when `want` says so for the subject's image after the update; the
    /// model is updated either way. The daemon asks its rule index here, so events no rule
    /// can match cost only the update.
    pub fn apply_if(
        &mut self,
        ev: &ProcessEvent,
        want: impl FnOnce(&ExecImage, EventKind) -> bool,
    ) -> Option<super::Snapshot> {
        self.apply_if_lineage(ev, |l| want(l.image, l.kind))
    }

    /// [`ProcessTable::apply_if`] whose `want` is told, besides the subject's image, what
    /// the snapshot would name as parent, previous image and container ([`Lineage`]), so
    /// rules on those are decided before the snapshot and its reads of `/proc`.
    pub fn apply_if_lineage(
        &mut self,
        ev: &ProcessEvent,
        want: impl FnOnce(&Lineage<'_>) -> bool,
    ) -> Option<super::Snapshot> {
        let mut kind = ev.kind?;
        self.stats.events += 1;
        self.sweep.begin_event(self.live.clock());
        let previous = match kind {
            EventKind::UidChange | EventKind::GidChange | EventKind::SessionIdChange => {
                kind = self.on_cred_change(ev)?;
                None
            }
            EventKind::Fork => {
                self.on_fork(ev);
                None
            }
            EventKind::Exec => self.on_exec(ev),
            EventKind::Exit => {
                self.ensure(ev, Admit::ForExit);
                self.edit(ev.tgid, |r| {
                    r.exit = Some((ev.exit_code.unwrap_or(0), ev.boot_ns));
                });
                None
            }
        };
        let wanted = self.live.holder(ev.tgid).is_some_and(|r| {
            let parent = parent_in(&self.live, Some(&self.exited), r.ppid, r.start_ticks);
            want(&Lineage {
                image: &r.image,
                parent: parent.map(|p| &*p.image),
                previous: previous.as_deref(),
                container: r.container.as_deref(),
                kind,
                ids: Some(CredIds {
                    user: r.euid,
                    real_user: r.uid,
                    group: r.egid,
                    real_group: r.gid,
                    caps: r.caps,
                }),
                interactive: Some(r.tty.is_some()),
            })
        });
        let snap = if wanted {
            // The kernel reports the subject's process group with each event, and a
            // parent's with its own events and forks; only a record without one (a kernel
            // whose `signal_struct` lacks the field) is read back from `/proc`.
            if kind != EventKind::Exit && ev.pgid == 0 {
                self.refresh_pgid(ev.tgid);
                if let Some(ppid) = self.live.holder(ev.tgid).map(|r| r.ppid) {
                    self.refresh_pgid(ppid);
                }
            }
            self.snapshot(ev.tgid, kind, ev.boot_ns, previous)
        } else {
            None
        };
        if kind == EventKind::Exit
            && let Some(rec) = self.remove(ev.tgid)
        {
            self.exited.push(rec);
            self.trim_exited();
        }
        snap
    }

    fn on_fork(&mut self, ev: &ProcessEvent) {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        if self
            .live
            .holder(ev.tgid)
            .is_some_and(|old| old.start_ticks != ticks)
        {
            self.stats.pid_reuse += 1;
            self.remove(ev.tgid);
        }
        self.parent_or_load(ev.ppid, ticks);
        // The child has not exec'd: it runs its parent's image (shared, not copied from
        // the event: a fork storm then allocates no image at all).
        let parent = parent_in(&self.live, Some(&self.exited), ev.ppid, ticks)
            .map(|p| (p.image.clone(), p.pgid));
        let mut rec = self.rec_from_event(ev, parent.as_ref().map(|p| p.0.clone()));
        match parent {
            Some((_, pgid)) if ev.pgid == 0 => rec.pgid = pgid,
            Some(_) => {}
            None => self.stats.unknown_parent += 1,
        }
        // A child forked by its parent's main thread starts in the group its parent is in
        // now: that is the parent's process group (it may have moved since its last event).
        if ev.pgid != 0 && ev.actor_pid == ev.ppid {
            self.edit(ev.ppid, |p| p.pgid = ev.pgid);
        }
        self.link_and_insert(rec, false, Admit::MakeRoom);
    }

    /// Exec: returns the image replaced (`None` when the process was unknown until now).
    fn on_exec(&mut self, ev: &ProcessEvent) -> Option<Arc<ExecImage>> {
        // `ensure` leaves the record updated from this event.
        let known = self.ensure(ev, Admit::MakeRoom);
        let image = Arc::new(ExecImage::from_exec(ev, &self.cfg.env_vars));
        let (previous, ppid, ticks) = self.edit(ev.tgid, |r| {
            // The process group is re-read from /proc only when a snapshot is built
            // (`refresh_pgid`): a read per exec would dominate the cost of an exec storm.
            if r.tgid == r.sid {
                r.pgid = r.tgid;
            }
            (
                std::mem::replace(&mut r.image, image),
                r.ppid,
                r.start_ticks,
            )
        })?;
        self.parent_or_load(ppid, ticks);
        let mut view = self.view();
        let live = view.live;
        let rec = live.holder(ev.tgid)?;
        let parent = parent_in(live, Some(view.exited), ppid, ticks);
        let leaders = view.leaders(rec, parent, true);
        self.edit(ev.tgid, |r| leaders.apply(r));
        known.then_some(previous)
    }

    /// Re-reads the process group of live `tgid` from `/proc` (the kernel event does not
    /// carry it, and `setpgid` after fork changes it), when the process is still there and
    /// is the same one.
    fn refresh_pgid(&mut self, tgid: u32) {
        let Some(root) = self.cfg.proc_root.as_ref() else {
            return;
        };
        let Some(start_ticks) = self.live.holder(tgid).map(|r| r.start_ticks) else {
            return;
        };
        let Ok(buf) = std::fs::read(root.join(tgid.to_string()).join("stat")) else {
            return;
        };
        if let Ok(st) = super::procfs::parse_stat(&buf)
            && st.start_ticks == start_ticks
        {
            self.edit(tgid, |r| r.pgid = st.pgid);
        }
    }

    /// Make sure the event's subject is in the live map (replacing a stale record with the
    /// same pid), loading it from `/proc` or building it from the event when unknown; a
    /// new record enters as `admit` says. Leaves the record updated from the event.
    /// Returns whether the table knew the process before this event.
    pub(super) fn ensure(&mut self, ev: &ProcessEvent, admit: Admit) -> bool {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        match self.live.holder(ev.tgid) {
            Some(r) if ev.start_boot_ns == 0 || r.start_ticks == ticks => {
                self.live.touch(ev.tgid);
                self.update_from_event(ev);
                return true;
            }
            Some(_) => {
                self.stats.pid_reuse += 1;
                self.remove(ev.tgid);
            }
            None => {}
        }
        // Moved to the exited queue as gone from `/proc` while this event was on its way.
        if ev.start_boot_ns != 0
            && let Some(rec) = self.exited.take(ev.tgid, ticks)
        {
            self.insert(rec, admit);
            self.update_from_event(ev);
            return true;
        }
        if self.load_from_proc(ev.tgid, Some(ticks), admit) {
            self.stats.loaded_late += 1;
            self.update_from_event(ev);
            // `/proc` already shows the state after this event (an exec's new image), so it
            // tells nothing about what came before.
            return false;
        }
        self.stats.unknown_subject += 1;
        let mut rec = self.rec_from_event(ev, None);
        self.parent_or_load(ev.ppid, ticks);
        if let Some(p) = parent_in(&self.live, Some(&self.exited), ev.ppid, ticks) {
            rec.pgid = p.pgid;
        }
        self.link_and_insert(rec, true, admit);
        false
    }

    /// Link the leaders of `rec` (a record not yet in the table; its parent live or
    /// recently exited) and insert it.
    fn link_and_insert(&mut self, mut rec: Rec, exec_time: bool, admit: Admit) {
        let mut view = self.view();
        let parent = parent_in(view.live, Some(view.exited), rec.ppid, rec.start_ticks);
        view.leaders(&rec, parent, exec_time).apply(&mut rec);
        self.insert(rec, admit);
    }

    /// A new record from the event; its image is `image`, else the one the event shows.
    fn rec_from_event(&mut self, ev: &ProcessEvent, image: Option<Arc<ExecImage>>) -> Rec {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        Rec {
            tgid: ev.tgid,
            start_ticks: ticks,
            start_boot_ns: ev.start_boot_ns,
            entity_id: Default::default(),
            info: Default::default(),
            ppid: ev.ppid,
            pgid: match ev.pgid {
                0 if ev.sid == ev.tgid => ev.tgid,
                pgid => pgid,
            },
            sid: ev.sid,
            ns_pid: ev.ns_pid,
            pid_ns: ev.pid_ns_ino as u64,
            mnt_ns: ev.mnt_ns_ino as u64,
            uid: ev.uid,
            euid: ev.euid,
            gid: ev.gid,
            egid: ev.egid,
            tty: ev.tty,
            image: image.unwrap_or_else(|| Arc::new(ExecImage::from_exec(ev, &self.cfg.env_vars))),
            caps: ev.caps,
            cgroup_id: ev.cgroup_id,
            container: self.containers.resolve(ev.cgroup_id, &ev.cgroup_path),
            session: None,
            entry: None,
            exit: None,
        }
    }

    /// Refresh the facts every event carries on the live record of its subject: they may
    /// change during a process's life.
    fn update_from_event(&mut self, ev: &ProcessEvent) {
        let containers = &mut self.containers;
        let left = self.live.update(ev.tgid, |rec| {
            rec.ppid = ev.ppid;
            rec.uid = ev.uid;
            rec.euid = ev.euid;
            rec.gid = ev.gid;
            rec.egid = ev.egid;
            if ev.caps.is_some() {
                rec.caps = ev.caps;
            }
            rec.tty = ev.tty;
            if ev.pgid != 0 {
                rec.pgid = ev.pgid;
            }
            if ev.sid != rec.sid {
                rec.sid = ev.sid;
                rec.session = None;
            }
            if ev.ns_pid != 0 {
                rec.ns_pid = ev.ns_pid;
            }
            if ev.pid_ns_ino != 0 {
                rec.pid_ns = ev.pid_ns_ino as u64;
            }
            if ev.mnt_ns_ino != 0 {
                rec.mnt_ns = ev.mnt_ns_ino as u64;
            }
            if ev.start_boot_ns != 0 {
                rec.start_boot_ns = ev.start_boot_ns;
            }
            // Id 0: the event does not know (keep what seeding or an earlier event said).
            if ev.cgroup_id != 0 && ev.cgroup_id != rec.cgroup_id {
                rec.cgroup_id = ev.cgroup_id;
                rec.container = containers.resolve(ev.cgroup_id, &ev.cgroup_path);
            }
        });
        self.forget_cgroup(left.and_then(|(_, left)| left));
    }

    /// Make sure the parent `ppid` of a process started at `child_ticks` is known (live
    /// or recently exited), loading it from `/proc` if not; a live parent is marked seen.
    fn parent_or_load(&mut self, ppid: u32, child_ticks: u64) {
        if ppid == 0 {
            return;
        }
        if self.live.get(ppid, Who::StartedBy(child_ticks)).is_some() {
            self.live.touch(ppid);
            return;
        }
        if parent_in(&self.live, Some(&self.exited), ppid, child_ticks).is_some() {
            return;
        }
        if self.load_from_proc(ppid, None, Admit::MakeRoom) {
            self.stats.loaded_late += 1;
        }
    }

    /// Insert a new live record (replacing whichever holds its pid), making room as
    /// `admit` says.
    pub(super) fn insert(&mut self, rec: Rec, admit: Admit) {
        self.remove(rec.tgid);
        self.make_room(admit);
        if let Some(old) = self.live.insert(rec) {
            // Not reached: removed above.
            self.forget_cgroup(old.last_of_cgroup);
        }
    }

    /// Remove a live record (exit, pid reuse).
    fn remove(&mut self, tgid: u32) -> Option<Rec> {
        let d = self.live.remove(tgid)?;
        self.forget_cgroup(d.last_of_cgroup);
        Some(d.rec)
    }

    /// Change the live record of `tgid` in place (see [`LiveSet::update`]).
    pub(super) fn edit<R>(&mut self, tgid: u32, f: impl FnOnce(&mut Rec) -> R) -> Option<R> {
        let (out, left) = self.live.update(tgid, f)?;
        self.forget_cgroup(left);
        Some(out)
    }

    /// The last live process of a cgroup is gone: the container cache forgets it.
    pub(super) fn forget_cgroup(&mut self, left: Option<u64>) {
        if let Some(id) = left {
            self.containers.forget(id);
        }
    }

    /// The table's bound, live and exited records together.
    pub(super) fn max_records(&self) -> usize {
        self.cfg.max_processes.max(1)
    }
}
