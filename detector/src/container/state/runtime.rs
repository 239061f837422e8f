//! The shared, self-refreshing view of the runtimes' state that the event path consults.
//!
//! **Refresh.** A background thread rebuilds the [`Index`] off the event path: each `period`
//! it stats the runtimes' state directories (a few `stat`s) and rescans only when one
//! changed, or when `full_every` has passed (a backstop for changes no directory mtime
//! shows), or when the event path asked for it after a miss (at most once per
//! `kick_interval`). The new index replaces the old one with a pointer swap.
//!
//! **Miss.** The event path never lists a directory. On a cgroup path the index does not
//! cover it does one bounded, targeted probe ([`containerd::probe_path`]): for the layouts
//! containerd clients give by default (`/<namespace>/<id>`, a 64-hex id in a known
//! namespace), open that one task's `config.json` and keep it only if the spec's cgroup is
//! that path. This is what makes the *first* exec of a brand-new container attributed:
//! containerd writes the task's spec before `runc create`, so it exists before any process
//! of the container can exec. Only a container whose cgroup has no such shape (a custom
//! `--cgroup` path) can miss until the next scan; the miss is counted, a scan is kicked, and
//! [`StateHandle::generation`] changes once it is done, so a caller that cached the miss can
//! ask again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::index::Index;
use super::{ContainerInfo, EnrichOutcome, StateRoots, containerd, enrich};
use crate::container::lookup::RuntimeLookup;
use crate::container::parse::ContainerRef;

/// Probe results kept between scans, at most (cleared by every scan).
const MAX_PROBED: usize = 4096;

/// Counters, for the daemon's periodic stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Cgroup paths asked about.
    pub lookups: u64,
    /// Answered from the index.
    pub index_hits: u64,
    /// Targeted probes of a task directory (index misses).
    pub probes: u64,
    /// Probes that found the container.
    pub probe_hits: u64,
    /// Lookups no state knew (host cgroups, mostly).
    pub misses: u64,
    /// Containers described by runtime and id (metadata for a pattern's container).
    pub describes: u64,
    /// Full scans done.
    pub scans: u64,
    /// Scans asked for by the event path after a miss.
    pub kicks: u64,
    /// State files present but unusable (oversized, malformed), in scans and probes.
    pub malformed: u64,
    /// Containers not indexed because the index was full.
    pub dropped: u64,
    /// Containers in the index now.
    pub entries: u64,
}

#[derive(Default)]
struct Counters {
    lookups: AtomicU64,
    index_hits: AtomicU64,
    probes: AtomicU64,
    probe_hits: AtomicU64,
    misses: AtomicU64,
    describes: AtomicU64,
    scans: AtomicU64,
    kicks: AtomicU64,
    malformed: AtomicU64,
}

struct Shared {
    roots: StateRoots,
    index: RwLock<Arc<Index>>,
    probed: Mutex<HashMap<Box<str>, Arc<ContainerInfo>>>,
    generation: AtomicU64,
    wake: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
    last_kick: Mutex<Option<Instant>>,
    kick_interval: Duration,
    n: Counters,
}

impl Shared {
    fn rescan(&self) {
        let (idx, out) = Index::build(&self.roots);
        self.n.scans.fetch_add(1, Ordering::Relaxed);
        self.n.malformed.fetch_add(out.malformed, Ordering::Relaxed);
        let changed = {
            let mut slot = self.index.write().unwrap_or_else(|e| e.into_inner());
            let changed = !slot.same_containers(&idx);
            *slot = Arc::new(idx);
            changed
        };
        self.probed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Only a change in which containers exist may turn a cached "no container" into
        // one: bumping on every scan would make every miss (which kicks a scan) re-ask every
        // host cgroup, again and again.
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    fn index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn kick(&self) {
        let mut last = self.last_kick.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.kick_interval) {
            return;
        }
        *last = Some(now);
        self.n.kicks.fetch_add(1, Ordering::Relaxed);
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }

    /// The mtimes of the directories whose change means a container came or went.
    fn fingerprint(&self) -> Vec<Option<SystemTime>> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for t in containerd::task_roots(&self.roots) {
            if let Ok(rd) = std::fs::read_dir(&t) {
                dirs.extend(rd.flatten().take(64).map(|e| e.path()));
            }
            dirs.push(t);
        }
        dirs.extend(self.roots.docker.iter().map(|d| d.join("containers")));
        for s in &self.roots.storage {
            if let Ok(rd) = std::fs::read_dir(s) {
                for e in rd.flatten().take(16) {
                    if e.file_name().to_string_lossy().ends_with("-containers") {
                        dirs.push(e.path().join("containers.json"));
                        dirs.push(e.path());
                    }
                }
            }
        }
        dirs.extend(self.roots.lxc.iter().cloned());
        dirs.push(self.roots.machines.clone());
        dirs.iter()
            .map(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The runtimes' state, kept fresh by a background thread (see the module docs). Dropping it
/// stops the thread.
pub struct RuntimeState {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The state directories' mtimes as of the first scan, for the refresher to start from.
    seen: Vec<Option<SystemTime>>,
}

/// How often the refresher looks, and how it is bounded.
#[derive(Clone, Copy, Debug)]
pub struct RefreshConfig {
    /// Between two looks at the state directories' mtimes.
    pub period: Duration,
    /// A full rescan at least this often, changed or not.
    pub full_every: Duration,
    /// Scans kicked by misses, at most one per this interval.
    pub kick_interval: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            period: Duration::from_secs(1),
            full_every: Duration::from_secs(30),
            kick_interval: Duration::from_millis(250),
        }
    }
}

impl RuntimeState {
    /// Scan once now (so the first events find what already runs), without a refresher:
    /// [`RuntimeState::refresh`] rescans on demand. For tests and one-shot tools.
    pub fn new(roots: StateRoots) -> Self {
        Self::with(roots, RefreshConfig::default())
    }

    fn with(roots: StateRoots, cfg: RefreshConfig) -> Self {
        let shared = Arc::new(Shared {
            roots,
            index: RwLock::new(Arc::new(Index::default())),
            probed: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            wake: Mutex::new(false),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            last_kick: Mutex::new(None),
            kick_interval: cfg.kick_interval,
            n: Counters::default(),
        });
        let seen = shared.fingerprint();
        shared.rescan();
        RuntimeState {
            shared,
            thread: None,
            seen,
        }
    }

    /// Scan once now, then keep the index fresh from a background thread.
    pub fn start(roots: StateRoots, cfg: RefreshConfig) -> std::io::Result<Self> {
        let mut s = Self::with(roots, cfg);
        let shared = s.shared.clone();
        let seen = std::mem::take(&mut s.seen);
        s.thread = Some(
            std::thread::Builder::new()
                .name("runtime-state".into())
                .spawn(move || refresher(&shared, cfg, seen))?,
        );
        Ok(s)
    }

    /// Rescan now (synchronously).
    pub fn refresh(&self) {
        self.shared.rescan();
    }

    /// A handle for the event path.
    pub fn handle(&self) -> StateHandle {
        StateHandle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for RuntimeState {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        *self.shared.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn refresher(shared: &Shared, cfg: RefreshConfig, mut seen: Vec<Option<SystemTime>>) {
    let mut last_full = Instant::now();
    loop {
        let kicked = {
            let mut w = shared.wake.lock().unwrap_or_else(|e| e.into_inner());
            if !*w {
                w = shared
                    .cv
                    .wait_timeout(w, cfg.period)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::take(&mut *w)
        };
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let now = shared.fingerprint();
        if kicked || now != seen || last_full.elapsed() >= cfg.full_every {
            shared.rescan();
            seen = now;
            last_full = Instant::now();
        }
    }
}

/// The event path's view of [`RuntimeState`]: cheap to clone, answers from memory, probes a
/// single task directory on a miss.
#[derive(Clone)]
pub struct StateHandle {
    shared: Arc<Shared>,
}

impl StateHandle {
    /// The container whose cgroup is `path` (a whole cgroup v2 path, `/a/b/c`) or one of its
    /// ancestors, with everything the state says of it.
    pub fn container_of(&self, path: &[u8]) -> Option<Arc<ContainerInfo>> {
        let s = &self.shared;
        s.n.lookups.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = s.index().by_path(path) {
            s.n.index_hits.fetch_add(1, Ordering::Relaxed);
            return Some(i.clone());
        }
        {
            let probed = s.probed.lock().unwrap_or_else(|e| e.into_inner());
            let p = String::from_utf8_lossy(path);
            let mut key: &str = p.trim_end_matches('/');
            loop {
                if let Some(i) = probed.get(key) {
                    s.n.index_hits.fetch_add(1, Ordering::Relaxed);
                    return Some(i.clone());
                }
                match key.rfind('/') {
                    Some(at) if at > 0 => key = &key[..at],
                    _ => break,
                }
            }
        }
        s.n.probes.fetch_add(1, Ordering::Relaxed);
        let mut out = EnrichOutcome::default();
        let idx = s.index();
        let found = containerd::probe_path(&s.roots, path, idx.namespaces(), &mut out);
        s.n.malformed
            .fetch_add(u64::from(out.malformed), Ordering::Relaxed);
        match found {
            Some((cg, info)) => {
                s.n.probe_hits.fetch_add(1, Ordering::Relaxed);
                let info = Arc::new(info);
                let mut probed = s.probed.lock().unwrap_or_else(|e| e.into_inner());
                if probed.len() < MAX_PROBED {
                    probed.insert(cg.into_boxed_str(), info.clone());
                }
                drop(probed);
                // Let the next scan index it (with its neighbours).
                s.kick();
                Some(info)
            }
            None => {
                s.n.misses.fetch_add(1, Ordering::Relaxed);
                s.kick();
                None
            }
        }
    }

    /// Everything the state says of a container a cgroup pattern found: from the index, else
    /// read from that one container's state files.
    pub fn describe(&self, r: &ContainerRef) -> ContainerInfo {
        let mut info = ContainerInfo::bare(r.clone());
        self.enrich(&mut info);
        info
    }

    /// Fill `info` from the index, else from its container's own state files.
    pub fn enrich(&self, info: &mut ContainerInfo) -> EnrichOutcome {
        let s = &self.shared;
        s.n.describes.fetch_add(1, Ordering::Relaxed);
        if let Some(known) = s.index().by_id(info.reference.runtime, &info.reference.id) {
            info.fill_from(known);
            return EnrichOutcome {
                found: true,
                malformed: 0,
            };
        }
        let out = enrich(&s.roots, info);
        s.n.malformed
            .fetch_add(u64::from(out.malformed), Ordering::Relaxed);
        out
    }

    /// Changes after every scan: a caller that cached "no container" for a cgroup can ask
    /// again when it changed.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Counters and sizes.
    pub fn stats(&self) -> StateStats {
        let n = &self.shared.n;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let idx = self.shared.index();
        StateStats {
            lookups: g(&n.lookups),
            index_hits: g(&n.index_hits),
            probes: g(&n.probes),
            probe_hits: g(&n.probe_hits),
            misses: g(&n.misses),
            describes: g(&n.describes),
            scans: g(&n.scans),
            kicks: g(&n.kicks),
            malformed: g(&n.malformed),
            dropped: idx.dropped,
            entries: idx.len() as u64,
        }
    }
}

impl RuntimeLookup for StateHandle {
    fn lookup(&self, cgroup_path: &[u8]) -> Option<ContainerRef> {
        self.container_of(cgroup_path).map(|i| i.reference.clone())
    }

    fn enrich(&self, info: &mut ContainerInfo) -> Option<EnrichOutcome> {
        Some(StateHandle::enrich(self, info))
    }

    fn generation(&self) -> u64 {
        StateHandle::generation(self)
    }
}
