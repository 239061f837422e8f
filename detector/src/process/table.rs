//! The table of live processes and how fork, exec and exit change it.
//!
//! Identity: a process is `(tgid, start ticks)`. The map is keyed by tgid (only one live
//! process can hold a pid) and every lookup checks the start time, so a reused pid never
//! inherits a dead process's record: a fork/exec for a tgid whose record started at another
//! time replaces the stale record (counted as `pid_reuse`).
//!
//! Bound and eviction: at most `max_live` live records (default 65,536) plus `exited_grace`
//! exited ones (default 1,024). Exit events move a record to the grace queue once its
//! document is built (so a late event of a child can still name it); the grace queue drops
//! its oldest first. When the live map is full, the live record seen least recently (by
//! any event, as subject, parent or leader lookup) is evicted. Every removal is counted.
//! The exit of an evicted process does not evict another: its record is rebuilt for its
//! exit document (one over the bound for that moment) and removed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use super::entity::IdContext;
use super::model::EntryType;
use super::model::{ExecImage, ProcInfo};
use super::users::UserNames;
use crate::container::{ContainerInfo, ContainerResolver, EnrichRoots, ResolverStats};
use crate::event::{EventKind, ProcessEvent};
use crate::host::HostInfo;

/// Tunables of the process model.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Live records kept at most (least recently seen evicted beyond).
    pub max_live: usize,
    /// Exited records kept after their exit document, at most.
    pub exited_grace: usize,
    /// `/proc`, to load processes the table missed and refresh process groups on exec.
    /// `None`: events only (synthetic tests).
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
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            max_live: 65_536,
            exited_grace: 1_024,
            proc_root: Some("/proc".into()),
            host_root: "/".into(),
            cgroup_root: None,
            container_cache: crate::container::resolver::DEFAULT_CAPACITY,
            enrich: Some(EnrichRoots::default()),
            user_namespaces: 64,
            host_mnt_ns: None,
        }
    }
}

/// Counters and sizes, for periodic stats and leak tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub live: u64,
    pub exited: u64,
    pub events: u64,
    /// Live records evicted because the table was full.
    pub evicted_live: u64,
    /// Exited records dropped from the grace queue.
    pub evicted_exited: u64,
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
    /// Distinct cgroups with live processes.
    pub cgroups: u64,
    pub user_db_loads: u64,
    pub containers: ResolverStats,
}

/// A link to a leader: its identity, and what it looked like when last seen (used once it
/// has left the table).
#[derive(Clone, Debug)]
pub(super) struct Link {
    pub tgid: u32,
    pub start_ticks: u64,
    pub last: Arc<ProcInfo>,
}

/// One process.
#[derive(Clone, Debug)]
pub(super) struct Rec {
    pub tgid: u32,
    pub start_ticks: u64,
    pub start_boot_ns: u64,
    /// `process.entity_id`, computed on first use (a SHA-256 per process otherwise, for
    /// the many processes that never reach a document): see [`Rec::entity_id`].
    pub entity_id: std::cell::OnceCell<Arc<str>>,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub ns_pid: u32,
    pub pid_ns: u64,
    pub mnt_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub tty: Option<(u32, u32)>,
    pub image: Arc<ExecImage>,
    pub cgroup_id: u64,
    pub container: Option<Arc<ContainerInfo>>,
    pub session: Option<Link>,
    pub entry: Option<(Link, EntryType)>,
    pub exit: Option<(i32, u64)>,
    pub seq: u64,
}

impl Rec {
    /// `process.entity_id` of this record (computed once, on first use).
    pub fn entity_id(&self, ids: &super::entity::IdContext) -> Arc<str> {
        self.entity_id
            .get_or_init(|| ids.entity_id(self.tgid, self.start_ticks))
            .clone()
    }
}

/// The process model: live processes, their ancestry, leaders and containers.
pub struct ProcessTable {
    pub(super) cfg: TableConfig,
    pub(super) ids: IdContext,
    pub(super) live: HashMap<u32, Rec>,
    /// Last-seen order: seq → tgid.
    lru: BTreeMap<u64, u32>,
    seq: u64,
    /// The tgid of an exit event's subject being (re)loaded: its record leaves the table
    /// right after the exit document, so inserting it must not evict a live process.
    exiting: Option<u32>,
    pub(super) exited: VecDeque<Rec>,
    /// How many records of `exited` each tgid has: a parent looked up among the exited
    /// (the common miss, e.g. a parent never seen) costs one hash lookup, not a scan.
    pub(super) exited_tgids: HashMap<u32, u32>,
    cgroup_refs: HashMap<u64, u32>,
    pub(super) containers: ContainerResolver,
    pub(super) users: UserNames,
    pub(super) stats: TableStats,
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
            live: HashMap::new(),
            lru: BTreeMap::new(),
            seq: 0,
            exiting: None,
            exited: VecDeque::new(),
            exited_tgids: HashMap::new(),
            cgroup_refs: HashMap::new(),
            stats: TableStats::default(),
        }
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

    /// Counters and sizes.
    pub fn stats(&self) -> TableStats {
        TableStats {
            live: self.live.len() as u64,
            exited: self.exited.len() as u64,
            cgroups: self.cgroup_refs.len() as u64,
            user_db_loads: self.users.loads,
            containers: self.containers.stats(),
            ..self.stats
        }
    }

    /// Internal sizes that must stay bounded (lru index, cgroup refs), for leak tests.
    #[doc(hidden)]
    pub fn index_sizes(&self) -> (usize, usize, usize, u64) {
        let refs = self.cgroup_refs.values().map(|&n| n as u64).sum();
        (
            self.lru.len(),
            self.cgroup_refs.len(),
            self.containers.queue_len(),
            refs,
        )
    }

    /// The live processes' tgids, in start order (for the start-up scan).
    pub fn live_tgids(&self) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = self
            .live
            .values()
            .map(|r| (r.start_boot_ns, r.tgid))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, t)| t).collect()
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
        let kind = ev.kind?;
        self.stats.events += 1;
        let previous = match kind {
            EventKind::Fork => {
                self.on_fork(ev);
                None
            }
            EventKind::Exec => self.on_exec(ev),
            EventKind::Exit => {
                // A process evicted earlier (table full) comes back for its exit only: it
                // overflows the bound by one until removed below, rather than pushing out
                // a live process (after a mass exit the table would otherwise forget
                // nearly every live process).
                self.exiting = Some(ev.tgid);
                self.ensure(ev);
                self.exiting = None;
                if let Some(r) = self.live.get_mut(&ev.tgid) {
                    r.exit = Some((ev.exit_code.unwrap_or(0), ev.boot_ns));
                }
                None
            }
        };
        let wanted = self
            .live
            .get(&ev.tgid)
            .is_some_and(|r| want(&r.image, kind));
        let snap = if wanted {
            if kind != EventKind::Exit {
                self.refresh_pgid(ev.tgid);
                if let Some(ppid) = self.live.get(&ev.tgid).map(|r| r.ppid) {
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
            *self.exited_tgids.entry(rec.tgid).or_default() += 1;
            self.exited.push_back(rec);
            while self.exited.len() > self.cfg.exited_grace {
                if let Some(old) = self.exited.pop_front()
                    && let Some(n) = self.exited_tgids.get_mut(&old.tgid)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.exited_tgids.remove(&old.tgid);
                    }
                }
                self.stats.evicted_exited += 1;
            }
        }
        snap
    }

    fn on_fork(&mut self, ev: &ProcessEvent) {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        if let Some(old) = self.live.get(&ev.tgid)
            && old.start_ticks != ticks
        {
            self.stats.pid_reuse += 1;
            self.remove(ev.tgid);
        }
        let parent = self.parent_or_load(ev.ppid, ticks);
        // The child has not exec'd: it runs its parent's image (shared, not copied from
        // the event: a fork storm then allocates no image at all).
        let mut rec = self.rec_from_event(ev, parent.as_ref().map(|p| p.image.clone()));
        if let Some(p) = &parent {
            rec.pgid = p.pgid;
        } else {
            self.stats.unknown_parent += 1;
        }
        self.link_leaders(&mut rec, parent.as_ref(), false);
        self.insert(rec);
    }

    /// Exec: returns the image replaced (`None` when the process was unknown until now).
    fn on_exec(&mut self, ev: &ProcessEvent) -> Option<Arc<ExecImage>> {
        let known = self.ensure(ev);
        let new_image = Arc::new(ExecImage::from_exec(ev));
        let mut rec = self.live.remove(&ev.tgid)?;
        let previous = std::mem::replace(&mut rec.image, new_image);
        self.update_from_event(&mut rec, ev);
        // The process group is re-read from /proc only when a snapshot is built
        // (`refresh_pgid`): a read per exec would dominate the cost of an exec storm.
        if rec.tgid == rec.sid {
            rec.pgid = rec.tgid;
        }
        let parent = self.parent_or_load(rec.ppid, rec.start_ticks);
        self.link_leaders(&mut rec, parent.as_ref(), true);
        self.live.insert(rec.tgid, rec);
        known.then_some(previous)
    }

    /// Re-reads the process group of live `tgid` from `/proc` (the kernel event does not
    /// carry it, and `setpgid` after fork changes it), when the process is still there and
    /// is the same one.
    fn refresh_pgid(&mut self, tgid: u32) {
        let Some(root) = self.cfg.proc_root.as_ref() else {
            return;
        };
        let Some(start_ticks) = self.live.get(&tgid).map(|r| r.start_ticks) else {
            return;
        };
        let Ok(buf) = std::fs::read(root.join(tgid.to_string()).join("stat")) else {
            return;
        };
        if let Ok(st) = super::procfs::parse_stat(&buf)
            && st.start_ticks == start_ticks
            && let Some(r) = self.live.get_mut(&tgid)
        {
            r.pgid = st.pgid;
        }
    }

    /// Make sure the event's subject is in the live map (replacing a stale record with the
    /// same pid), loading it from `/proc` or building it from the event when unknown.
    /// Returns whether the table knew the process before this event.
    fn ensure(&mut self, ev: &ProcessEvent) -> bool {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        match self.live.get(&ev.tgid) {
            Some(r) if ev.start_boot_ns == 0 || r.start_ticks == ticks => {
                self.touch(ev.tgid);
                if let Some(mut r) = self.live.remove(&ev.tgid) {
                    self.update_from_event(&mut r, ev);
                    self.live.insert(r.tgid, r);
                }
                return true;
            }
            Some(_) => {
                self.stats.pid_reuse += 1;
                self.remove(ev.tgid);
            }
            None => {}
        }
        if self.load_from_proc(ev.tgid, Some(ticks)) {
            self.stats.loaded_late += 1;
            if let Some(mut r) = self.live.remove(&ev.tgid) {
                self.update_from_event(&mut r, ev);
                self.live.insert(r.tgid, r);
            }
            // `/proc` already shows the state after this event (an exec's new image), so it
            // tells nothing about what came before.
            return false;
        }
        self.stats.unknown_subject += 1;
        let mut rec = self.rec_from_event(ev, None);
        let parent = self.parent_or_load(ev.ppid, ticks);
        if let Some(p) = &parent {
            rec.pgid = p.pgid;
        }
        self.link_leaders(&mut rec, parent.as_ref(), true);
        self.insert(rec);
        false
    }

    /// A new record from the event; its image is `image`, else the one the event shows.
    fn rec_from_event(&mut self, ev: &ProcessEvent, image: Option<Arc<ExecImage>>) -> Rec {
        let ticks = self.ids.start_ticks(ev.start_boot_ns);
        let mut rec = Rec {
            tgid: ev.tgid,
            start_ticks: ticks,
            start_boot_ns: ev.start_boot_ns,
            entity_id: Default::default(),
            ppid: ev.ppid,
            pgid: if ev.sid == ev.tgid { ev.tgid } else { 0 },
            sid: ev.sid,
            ns_pid: ev.ns_pid,
            pid_ns: ev.pid_ns_ino as u64,
            mnt_ns: ev.mnt_ns_ino as u64,
            uid: ev.uid,
            euid: ev.euid,
            gid: ev.gid,
            egid: ev.egid,
            tty: ev.tty,
            image: image.unwrap_or_else(|| Arc::new(ExecImage::from_exec(ev))),
            cgroup_id: 0,
            container: None,
            session: None,
            entry: None,
            exit: None,
            seq: 0,
        };
        self.set_cgroup_from_event(&mut rec, ev);
        rec
    }

    /// Facts every event refreshes: they may change during a process's life.
    fn update_from_event(&mut self, rec: &mut Rec, ev: &ProcessEvent) {
        rec.ppid = ev.ppid;
        rec.uid = ev.uid;
        rec.euid = ev.euid;
        rec.gid = ev.gid;
        rec.egid = ev.egid;
        rec.tty = ev.tty;
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
            self.unref_cgroup(rec.cgroup_id);
            self.set_cgroup_from_event(rec, ev);
            self.ref_cgroup(rec.cgroup_id);
        }
    }

    fn set_cgroup_from_event(&mut self, rec: &mut Rec, ev: &ProcessEvent) {
        rec.cgroup_id = ev.cgroup_id;
        rec.container =
            self.containers
                .resolve_names(ev.cgroup_id, &ev.cgroup_parent, &ev.cgroup_leaf);
    }

    /// The live (or, with `grace`, recently exited) parent `ppid` of a process started at
    /// `child_ticks`: it must have started no later than the child.
    pub(super) fn parent_rec(&self, ppid: u32, child_ticks: u64, grace: bool) -> Option<&Rec> {
        if ppid == 0 {
            return None;
        }
        if let Some(p) = self
            .live
            .get(&ppid)
            .filter(|p| p.start_ticks <= child_ticks)
        {
            return Some(p);
        }
        if grace && self.exited_tgids.contains_key(&ppid) {
            return self
                .exited
                .iter()
                .rev()
                .find(|p| p.tgid == ppid && p.start_ticks <= child_ticks);
        }
        None
    }

    /// The parent (see [`Self::parent_rec`]), marked as seen; loaded from `/proc` when the
    /// table does not know it.
    pub(super) fn parent_or_load(&mut self, ppid: u32, child_ticks: u64) -> Option<Rec> {
        if let Some(p) = self.parent_rec(ppid, child_ticks, true).cloned() {
            self.touch(ppid);
            return Some(p);
        }
        if ppid != 0 && self.load_from_proc(ppid, None) {
            self.stats.loaded_late += 1;
            return self.parent_rec(ppid, child_ticks, false).cloned();
        }
        None
    }

    /// Insert a new live record, evicting the least recently seen when full.
    pub(super) fn insert(&mut self, mut rec: Rec) {
        if self.live.contains_key(&rec.tgid) {
            self.remove(rec.tgid);
        }
        while self.live.len() >= self.cfg.max_live.max(1) && self.exiting != Some(rec.tgid) {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(v) = self.live.remove(&victim) {
                self.unref_cgroup(v.cgroup_id);
                self.stats.evicted_live += 1;
            }
        }
        self.seq += 1;
        rec.seq = self.seq;
        self.lru.insert(rec.seq, rec.tgid);
        self.ref_cgroup(rec.cgroup_id);
        self.live.insert(rec.tgid, rec);
    }

    /// Remove a live record (exit, pid reuse), dropping its cgroup reference.
    fn remove(&mut self, tgid: u32) -> Option<Rec> {
        let rec = self.live.remove(&tgid)?;
        self.lru.remove(&rec.seq);
        self.unref_cgroup(rec.cgroup_id);
        Some(rec)
    }

    /// Mark a record as just seen.
    pub(super) fn touch(&mut self, tgid: u32) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(r) = self.live.get_mut(&tgid) {
            self.lru.remove(&r.seq);
            r.seq = seq;
            self.lru.insert(seq, tgid);
        }
    }

    fn ref_cgroup(&mut self, id: u64) {
        if id != 0 {
            *self.cgroup_refs.entry(id).or_insert(0) += 1;
        }
    }

    /// The last live process of a cgroup is gone: the container cache forgets it.
    fn unref_cgroup(&mut self, id: u64) {
        if let Some(n) = self.cgroup_refs.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.cgroup_refs.remove(&id);
                self.containers.forget(id);
            }
        }
    }
}
