//! The in-memory index of every container the runtimes' state describes: by cgroup path (to
//! find a container from any process's cgroup, at any depth below it) and by runtime and id
//! (to describe a container a cgroup pattern found).

use std::collections::HashMap;
use std::sync::Arc;

use super::{ContainerInfo, EnrichOutcome, StateRoots, containerd, docker, lxc, nspawn, storage};
use crate::container::parse::Runtime;

/// Deepest cgroup path considered (components); deeper ones are cut.
pub const MAX_DEPTH: usize = 32;

/// Containers kept at most; a scan that finds more keeps the first ones (and counts the rest
/// as dropped).
pub const MAX_ENTRIES: usize = 65_536;

/// One snapshot of the runtimes' state.
#[derive(Default, Debug)]
pub struct Index {
    by_cgroup: HashMap<Box<str>, Arc<ContainerInfo>>,
    by_id: HashMap<(Runtime, Box<str>), Arc<ContainerInfo>>,
    /// containerd namespaces seen, probed for 64-hex ids on a miss.
    namespaces: Vec<String>,
    /// Containers found beyond [`MAX_ENTRIES`].
    pub dropped: u64,
}

/// What a scan read: how many state files were unusable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanOutcome {
    pub containers: u64,
    pub malformed: u64,
}

impl Index {
    /// Whether `other` knows exactly the same cgroup paths and container ids (metadata
    /// aside): what decides if a cached "no container" answer may have become stale.
    pub fn same_containers(&self, other: &Index) -> bool {
        self.by_cgroup.len() == other.by_cgroup.len()
            && self.by_id.len() == other.by_id.len()
            && self
                .by_cgroup
                .keys()
                .all(|k| other.by_cgroup.contains_key(k))
            && self.by_id.keys().all(|k| other.by_id.contains_key(k))
    }

    /// Read every runtime's state under `roots`.
    pub fn build(roots: &StateRoots) -> (Index, ScanOutcome) {
        let mut idx = Index::default();
        let mut malformed = 0;
        let mut add =
            |idx: &mut Index, found: Vec<(Option<String>, ContainerInfo)>, out: EnrichOutcome| {
                malformed += u64::from(out.malformed);
                for (cg, info) in found {
                    idx.insert(cg, info);
                }
            };
        // docker's own store first: it is the truth for docker containers, and the
        // containerd reader fills its `moby` tasks from it.
        for scan in [
            docker::scan,
            containerd::scan,
            storage::scan,
            lxc::scan,
            nspawn::scan,
        ] {
            let mut out = EnrichOutcome::default();
            let found = scan(roots, &mut out);
            add(&mut idx, found, out);
        }
        let mut nss: Vec<String> = containerd::DEFAULT_NAMESPACES
            .iter()
            .map(|s| s.to_string())
            .collect();
        for tasks in containerd::task_roots(roots) {
            if let Ok(rd) = std::fs::read_dir(tasks) {
                for e in rd.flatten().take(64) {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if !nss.contains(&n) {
                        nss.push(n);
                    }
                }
            }
        }
        idx.namespaces = nss;
        let out = ScanOutcome {
            containers: idx.by_id.len() as u64,
            malformed,
        };
        (idx, out)
    }

    /// Add one container (a later source for the same container fills what is missing).
    pub fn insert(&mut self, cgroup: Option<String>, info: ContainerInfo) -> Arc<ContainerInfo> {
        let key = (
            info.reference.runtime,
            Box::<str>::from(info.reference.id.as_str()),
        );
        let info = match self.by_id.get(&key) {
            Some(old) => {
                let mut merged = (**old).clone();
                merged.fill_from(&info);
                Arc::new(merged)
            }
            None if self.by_id.len() >= MAX_ENTRIES => {
                self.dropped += 1;
                return Arc::new(info);
            }
            None => Arc::new(info),
        };
        if let Some(cg) = cgroup {
            self.by_cgroup.insert(cg.into_boxed_str(), info.clone());
        }
        self.by_id.insert(key, info.clone());
        info
    }

    /// The container whose cgroup is `path` or its nearest indexed ancestor.
    pub fn by_path(&self, path: &[u8]) -> Option<&Arc<ContainerInfo>> {
        let path = std::str::from_utf8(path).ok()?;
        let mut ends: Vec<usize> = Vec::with_capacity(8);
        let mut depth = 0;
        for (i, c) in path.char_indices() {
            if c == '/' && i > 0 && !path[..i].ends_with('/') {
                ends.push(i);
                depth += 1;
                if depth >= MAX_DEPTH {
                    break;
                }
            }
        }
        if depth < MAX_DEPTH {
            ends.push(path.trim_end_matches('/').len());
        }
        ends.iter()
            .rev()
            .find_map(|&e| self.by_cgroup.get(&path[..e]))
    }

    /// The container `id` of `runtime`.
    pub fn by_id(&self, runtime: Runtime, id: &str) -> Option<&Arc<ContainerInfo>> {
        self.by_id.get(&(runtime, Box::from(id)))
    }

    /// containerd namespaces to probe for a 64-hex id.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Containers indexed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no container is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
