//! Containers as their runtimes know them: read from each runtime's local state files (no
//! network, no runtime socket), indexed by cgroup path and by id.
//!
//! Cgroup name patterns ([`super::parse`]) are the fast path, but they cannot tell every
//! container from a host service: `ctr run web` puts its process in `/default/web`. The
//! runtimes' own state is the truth where patterns are silent, and the only source of
//! names, images, Kubernetes pods and the privileged flag.
//!
//! | runtime | state read | module |
//! |---|---|---|
//! | containerd (every namespace; also docker's own containerd, namespace `moby`) | `<root>/io.containerd.runtime.v2.task/<ns>/<id>/config.json` (OCI spec: `linux.cgroupsPath`, CRI annotations) | [`containerd`] |
//! | docker | `<docker>/containers/<id>/config.v2.json`, `hostconfig.json` (`Privileged`) | [`docker`] |
//! | podman, CRI-O | containers/storage `<root>/<driver>-containers/containers.json` and `<id>/userdata/config.json` | [`storage`] |
//! | LXC | `<lxcpath>/<name>/config` | [`lxc`] |
//! | systemd-nspawn | `/run/systemd/machines/<name>` | [`nspawn`] |
//! | Kubernetes pods (any CRI) | `/var/log/pods/<ns>_<pod>_<uid>/` | [`pods`] |
//!
//! Every file is optional and hostile: a missing, unreadable, oversized or malformed file
//! leaves fields empty and is counted ([`StateStats`]), never fails resolution.
//!
//! [`RuntimeState`] keeps the index fresh from a background thread and answers the event path
//! from memory; see its docs for what happens on a miss.

pub mod containerd;
pub mod docker;
pub mod index;
pub mod lxc;
pub mod nspawn;
pub mod oci;
pub mod pods;
mod runtime;
pub mod storage;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse::{ContainerRef, Runtime};

pub use index::Index;
pub use runtime::{RefreshConfig, RuntimeState, StateHandle, StateStats};

/// Where the runtimes keep their state. Defaults are the real paths; tests point these at
/// fixture trees or at private engine instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRoots {
    /// containerd state directories (each holding `io.containerd.runtime.v2.task/`):
    /// the system containerd (`/run/containerd`) and docker's own
    /// (`/run/docker/containerd/daemon`).
    pub containerd: Vec<PathBuf>,
    /// docker data roots (`/var/lib/docker`).
    pub docker: Vec<PathBuf>,
    /// containers/storage graph and run roots used by podman and CRI-O
    /// (`/var/lib/containers/storage`, `/run/containers/storage`).
    pub storage: Vec<PathBuf>,
    /// LXC container paths (`/var/lib/lxc`).
    pub lxc: Vec<PathBuf>,
    /// systemd-machined's machine files (`/run/systemd/machines`).
    pub machines: PathBuf,
    /// The kubelet's pod log directory (`/var/log/pods`).
    pub pod_logs: PathBuf,
    /// `orchestrator.cluster.name` for Kubernetes containers: no local state file names the
    /// cluster, so it is configuration.
    pub cluster_name: Option<String>,
}

/// The old name of [`StateRoots`], kept for callers of the resolver.
pub type EnrichRoots = StateRoots;

impl Default for StateRoots {
    fn default() -> Self {
        StateRoots {
            containerd: vec![
                "/run/containerd".into(),
                "/run/docker/containerd/daemon".into(),
            ],
            docker: vec!["/var/lib/docker".into()],
            storage: vec![
                "/var/lib/containers/storage".into(),
                "/run/containers/storage".into(),
            ],
            lxc: vec!["/var/lib/lxc".into()],
            machines: "/run/systemd/machines".into(),
            pod_logs: "/var/log/pods".into(),
            cluster_name: None,
        }
    }
}

impl StateRoots {
    /// Roots under one directory, as a fixture tree lays them out: `containerd/`,
    /// `docker-containerd/`, `docker/`, `storage/`, `run-storage/`, `lxc/`, `machines/`,
    /// `pods/`.
    pub fn under(dir: &Path) -> Self {
        StateRoots {
            containerd: vec![dir.join("containerd"), dir.join("docker-containerd")],
            docker: vec![dir.join("docker")],
            storage: vec![dir.join("storage"), dir.join("run-storage")],
            lxc: vec![dir.join("lxc")],
            machines: dir.join("machines"),
            pod_logs: dir.join("pods"),
            cluster_name: None,
        }
    }
}

/// Everything known about one container: the ECS `container.*` and `orchestrator.*` facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// `container.id`, `container.runtime` (and the pod uid when in Kubernetes).
    pub reference: ContainerRef,
    /// `container.name`.
    pub name: Option<String>,
    /// `container.image.name` (repository, without tag or digest).
    pub image_name: Option<String>,
    /// `container.image.tag`.
    pub image_tag: Option<String>,
    /// `container.security_context.privileged`: `None` when the state does not tell
    /// (see [`oci::privileged`] for what counts as privileged).
    pub privileged: Option<bool>,
    /// `orchestrator.namespace` (Kubernetes namespace).
    pub orchestrator_namespace: Option<String>,
    /// `orchestrator.resource.name` (pod name).
    pub resource_name: Option<String>,
    /// `orchestrator.resource.type`: `"pod"` when in Kubernetes.
    pub resource_type: Option<&'static str>,
    /// `orchestrator.type`: `"kubernetes"` when in Kubernetes.
    pub orchestrator_type: Option<&'static str>,
    /// `orchestrator.cluster.name`, from configuration ([`StateRoots::cluster_name`]).
    pub cluster_name: Option<String>,
}

impl ContainerInfo {
    /// Only what the cgroup path says.
    pub fn bare(reference: ContainerRef) -> Self {
        let k8s = reference.pod_uid.is_some();
        ContainerInfo {
            reference,
            name: None,
            image_name: None,
            image_tag: None,
            privileged: None,
            orchestrator_namespace: None,
            resource_name: None,
            resource_type: k8s.then_some("pod"),
            orchestrator_type: k8s.then_some("kubernetes"),
            cluster_name: None,
        }
    }

    /// Set the Kubernetes pod (namespace and name).
    pub fn set_pod(&mut self, namespace: &str, pod: &str) {
        self.orchestrator_namespace = Some(namespace.to_string()).filter(|s| !s.is_empty());
        self.resource_name = Some(pod.to_string()).filter(|s| !s.is_empty());
        self.resource_type = Some("pod");
        self.orchestrator_type = Some("kubernetes");
    }

    /// Set `container.image.*` from a reference like `reg:5000/a/b:1.2@sha256:…`.
    pub fn set_image(&mut self, reference: &str) {
        let (name, tag) = split_image(reference);
        if !name.is_empty() {
            self.image_name = Some(name);
            self.image_tag = tag;
        }
    }

    /// Fill every field `self` lacks from `other` (same container, another source).
    pub fn fill_from(&mut self, other: &ContainerInfo) {
        fn fill<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if a.is_none() {
                a.clone_from(b);
            }
        }
        fill(&mut self.name, &other.name);
        if self.image_name.is_none() {
            self.image_name.clone_from(&other.image_name);
            self.image_tag.clone_from(&other.image_tag);
        }
        fill(&mut self.privileged, &other.privileged);
        fill(
            &mut self.orchestrator_namespace,
            &other.orchestrator_namespace,
        );
        fill(&mut self.resource_name, &other.resource_name);
        fill(&mut self.resource_type, &other.resource_type);
        fill(&mut self.orchestrator_type, &other.orchestrator_type);
        fill(&mut self.cluster_name, &other.cluster_name);
        fill(&mut self.reference.pod_uid, &other.reference.pod_uid);
    }
}

/// Largest state file we parse: bigger ones are skipped (and counted as malformed).
pub const MAX_STATE_FILE: u64 = 4 << 20;

/// What reading one state file gave.
#[derive(Debug)]
pub enum Read1 {
    /// Not there (or not readable): nothing to count.
    Missing,
    /// There but unusable: oversized, or not what its format says.
    Malformed,
    Ok(Vec<u8>),
}

/// Read a state file, at most [`MAX_STATE_FILE`] bytes.
pub fn read_capped(path: &Path) -> Read1 {
    let Ok(f) = fs::File::open(path) else {
        return Read1::Missing;
    };
    let mut buf = Vec::new();
    if f.take(MAX_STATE_FILE + 1).read_to_end(&mut buf).is_err() {
        return Read1::Missing;
    }
    if buf.len() as u64 > MAX_STATE_FILE {
        return Read1::Malformed;
    }
    Read1::Ok(buf)
}

/// Read and parse a JSON state file; malformed ones are counted in `out`.
pub fn read_json(path: &Path, out: &mut EnrichOutcome) -> Option<serde_json::Value> {
    match read_capped(path) {
        Read1::Missing => None,
        Read1::Malformed => {
            out.malformed += 1;
            None
        }
        Read1::Ok(b) => match serde_json::from_slice(&b) {
            Ok(v) => Some(v),
            Err(_) => {
                out.malformed += 1;
                None
            }
        },
    }
}

/// Split an image reference into repository name and tag: `reg:5000/a/b:1.2@sha256:…` →
/// (`reg:5000/a/b`, `1.2`). A digest-only reference has no tag.
pub fn split_image(reference: &str) -> (String, Option<String>) {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (
                no_digest[..at].to_string(),
                Some(no_digest[at + 1..].to_string()).filter(|t| !t.is_empty()),
            )
        }
        None => (no_digest.to_string(), None),
    }
}

/// Outcome of reading some state: whether a container was found, whether a file was present
/// but unusable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EnrichOutcome {
    pub found: bool,
    /// State files present but unusable.
    pub malformed: u32,
}

impl EnrichOutcome {
    fn merge(&mut self, o: EnrichOutcome) {
        self.found |= o.found;
        self.malformed += o.malformed;
    }
}

/// Fill what the local state knows of `info`'s container, reading the files of that one
/// container directly (no index). The resolver's synchronous path; [`StateHandle::describe`]
/// answers from the index first.
pub fn enrich(roots: &StateRoots, info: &mut ContainerInfo) -> EnrichOutcome {
    let mut out = EnrichOutcome::default();
    let id = info.reference.id.clone();
    let found = match info.reference.runtime {
        Runtime::Docker => docker::read(roots, &id, &mut out)
            .or_else(|| containerd::probe_id(roots, &id, &["moby"], &mut out)),
        Runtime::Containerd => containerd::probe_id(roots, &id, &[], &mut out),
        Runtime::Podman | Runtime::CriO => storage::read(roots, &id, &mut out),
        Runtime::Lxc => lxc::read(roots, &id, &mut out),
        Runtime::SystemdNspawn => nspawn::read(roots, &id, &mut out),
    };
    if let Some(found) = found {
        out.found = true;
        info.fill_from(&found);
    }
    if let Some(uid) = info.reference.pod_uid.clone()
        && info.orchestrator_namespace.is_none()
    {
        out.merge(pods::read(roots, &uid, info));
    }
    if info.orchestrator_type.is_some() && info.cluster_name.is_none() {
        info.cluster_name.clone_from(&roots.cluster_name);
    }
    out
}

/// A bare reference for a runtime-state container.
pub(crate) fn reference(id: &str, runtime: Runtime, pod_uid: Option<String>) -> ContainerRef {
    ContainerRef {
        id: id.to_string(),
        runtime,
        pod_uid,
    }
}

#[cfg(test)]
mod tests;
