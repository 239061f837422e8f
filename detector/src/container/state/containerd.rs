//! containerd's task state: `<root>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`,
//! the OCI spec of every running task, in every namespace (`default` for `ctr`, `k8s.io` for
//! CRI, `moby` for docker, anything else a client picks).
//!
//! A task in namespace `moby` is a docker container: it is reported as docker, with docker's
//! own state (name, image, `Privileged`) filling what the spec lacks.

use std::fs;
use std::path::{Path, PathBuf};

use super::oci::{self, SpecFacts};
use super::{ContainerInfo, EnrichOutcome, StateRoots, docker, read_json, reference};
use crate::container::parse::Runtime;

/// The task directory under a containerd state root.
pub const TASK_DIR: &str = "io.containerd.runtime.v2.task";

/// Namespaces probed for a bare id when the index knows none yet.
pub const DEFAULT_NAMESPACES: &[&str] = &["default", "k8s.io", "moby"];

/// Bounds of one scan: namespaces per root, tasks per namespace.
const MAX_NAMESPACES: usize = 64;
const MAX_TASKS: usize = 16_384;

/// `<root>/io.containerd.runtime.v2.task`, for each configured root.
pub fn task_roots(roots: &StateRoots) -> impl Iterator<Item = PathBuf> + '_ {
    roots.containerd.iter().map(|r| r.join(TASK_DIR))
}

/// The container one task directory describes, and its cgroup path.
pub fn read_task(
    roots: &StateRoots,
    ns: &str,
    id: &str,
    dir: &Path,
    out: &mut EnrichOutcome,
) -> Option<(Option<String>, ContainerInfo)> {
    let spec = read_json(&dir.join("config.json"), out)?;
    let f = oci::facts(&spec);
    Some((f.cgroup.clone(), info_of(roots, ns, id, &f, out)))
}

fn info_of(
    roots: &StateRoots,
    ns: &str,
    id: &str,
    f: &SpecFacts,
    out: &mut EnrichOutcome,
) -> ContainerInfo {
    let docker_ns = ns == "moby";
    let runtime = if docker_ns {
        Runtime::Docker
    } else {
        f.runtime.unwrap_or(Runtime::Containerd)
    };
    let pod_uid = f
        .pod_uid
        .clone()
        .or_else(|| f.cgroup.as_deref().and_then(oci::pod_uid_of));
    let mut info = ContainerInfo::bare(reference(id, runtime, pod_uid));
    if docker_ns && let Some(d) = docker::read(roots, id, out) {
        info.fill_from(&d);
    }
    f.apply(&mut info);
    // `ctr run NAME` and nerdctl name the task; a 64-hex id is no name.
    if info.name.is_none() && !(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        info.name = Some(id.to_string());
    }
    if info.orchestrator_type.is_some() {
        info.cluster_name.clone_from(&roots.cluster_name);
    }
    info
}

/// Every task of every namespace under every root: `(cgroup path, info)`.
pub fn scan(roots: &StateRoots, out: &mut EnrichOutcome) -> Vec<(Option<String>, ContainerInfo)> {
    let mut found = Vec::new();
    for tasks in task_roots(roots) {
        let Ok(nss) = fs::read_dir(&tasks) else {
            continue;
        };
        for ns in nss.flatten().take(MAX_NAMESPACES) {
            let ns_name = ns.file_name().to_string_lossy().into_owned();
            let Ok(ids) = fs::read_dir(ns.path()) else {
                continue;
            };
            for t in ids.flatten().take(MAX_TASKS) {
                let id = t.file_name().to_string_lossy().into_owned();
                if let Some(x) = read_task(roots, &ns_name, &id, &t.path(), out) {
                    found.push(x);
                }
            }
        }
    }
    found
}

/// The task named `id` in one of `namespaces` (all of [`DEFAULT_NAMESPACES`] when empty),
/// under any root: a handful of `open`s, no directory listing.
pub fn probe_id(
    roots: &StateRoots,
    id: &str,
    namespaces: &[&str],
    out: &mut EnrichOutcome,
) -> Option<ContainerInfo> {
    if !oci::is_task_id(id.as_bytes()) {
        return None;
    }
    let nss = if namespaces.is_empty() {
        DEFAULT_NAMESPACES
    } else {
        namespaces
    };
    for tasks in task_roots(roots) {
        for ns in nss {
            let dir = tasks.join(ns).join(id);
            if let Some((_, info)) = read_task(roots, ns, id, &dir, out) {
                return Some(info);
            }
        }
    }
    None
}

/// For a cgroup path no index entry covers yet (a task started since the last scan): try
/// the layouts clients give by default, `/<namespace>/<id>` (ctr, nerdctl with cgroupfs)
/// and `…/<64-hex id>` (CRI, in any of `namespaces`), and keep a task only if its spec's
/// cgroup is that path or an ancestor of it. Bounded: at most two opens per path component
/// and root for the first layout, one per namespace for 64-hex components.
pub fn probe_path(
    roots: &StateRoots,
    path: &[u8],
    namespaces: &[String],
    out: &mut EnrichOutcome,
) -> Option<(String, ContainerInfo)> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .take(super::index::MAX_DEPTH)
        .collect();
    let prefix_of = |n: usize| -> String {
        let mut s = String::new();
        for c in &comps[..n] {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(c));
        }
        s
    };
    for i in (0..comps.len()).rev() {
        let c = comps[i];
        if !oci::is_task_id(c) {
            continue;
        }
        let id = String::from_utf8_lossy(c);
        let mut candidates: Vec<String> = Vec::new();
        if i > 0 && oci::is_task_id(comps[i - 1]) {
            candidates.push(String::from_utf8_lossy(comps[i - 1]).into_owned());
        }
        if c.len() == 64 && c.iter().all(u8::is_ascii_hexdigit) {
            candidates.extend(namespaces.iter().cloned());
        }
        let want = prefix_of(i + 1);
        for tasks in task_roots(roots) {
            for ns in &candidates {
                let dir = tasks.join(ns).join(&*id);
                let Some((cg, info)) = read_task(roots, ns, &id, &dir, out) else {
                    continue;
                };
                if cg.as_deref() == Some(want.as_str()) {
                    return Some((want, info));
                }
            }
        }
    }
    None
}
