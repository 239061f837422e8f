//! containers/storage, shared by podman and CRI-O: `<root>/<driver>-containers/containers.json`
//! (ids, names, podman's `metadata` with `image-name`), `<driver>-images/images.json` (image
//! names), and `<root>/<driver>-containers/<id>/userdata/config.json` (the OCI spec: cgroup,
//! annotations). The driver prefix is whatever the store uses (`overlay`, `vfs`, `btrfs`…).
//!
//! Which runtime a container belongs to comes from its spec's annotations
//! (`io.container.manager=libpod` is podman, `io.kubernetes.cri-o.*` is CRI-O); without a
//! spec, a store entry with podman metadata is podman.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::oci;
use super::{ContainerInfo, EnrichOutcome, StateRoots, read_json, reference};
use crate::container::parse::Runtime;

const MAX_DRIVERS: usize = 8;
const MAX_CONTAINERS: usize = 16_384;

/// `<root>/<driver>-containers` directories of every root.
fn container_dirs(roots: &StateRoots) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for root in &roots.storage {
        let Ok(rd) = fs::read_dir(root) else { continue };
        dirs.extend(
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with("-containers"))
                .take(MAX_DRIVERS)
                .map(|e| e.path()),
        );
    }
    dirs
}

/// One store entry of `containers.json`.
struct StoreEntry {
    name: Option<String>,
    image: Option<String>,
    podman: bool,
}

fn store_entries(dir: &Path, out: &mut EnrichOutcome) -> Vec<(String, StoreEntry)> {
    let Some(v) = read_json(&dir.join("containers.json"), out) else {
        return Vec::new();
    };
    let Some(list) = v.as_array() else {
        out.malformed += 1;
        return Vec::new();
    };
    let images = image_names(dir, out);
    list.iter()
        .take(MAX_CONTAINERS)
        .filter_map(|c| {
            let id = c.get("id")?.as_str()?.to_string();
            let meta: Option<Value> = c
                .get("metadata")
                .and_then(Value::as_str)
                .and_then(|m| serde_json::from_str(m).ok());
            let image = meta
                .as_ref()
                .and_then(|m| m.get("image-name"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let iid = c.get("image")?.as_str()?;
                    images
                        .iter()
                        .find(|(i, _)| i == iid)
                        .map(|(_, n)| n.clone())
                });
            let podman = meta.as_ref().is_some_and(|m| m.get("image-name").is_some());
            Some((
                id,
                StoreEntry {
                    name: first_name(c),
                    image,
                    podman,
                },
            ))
        })
        .collect()
}

/// `(image id, first name)` from the sibling `<driver>-images/images.json`.
fn image_names(containers_dir: &Path, out: &mut EnrichOutcome) -> Vec<(String, String)> {
    let name = containers_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let Some(driver) = name.as_deref().and_then(|n| n.strip_suffix("-containers")) else {
        return Vec::new();
    };
    let path = containers_dir
        .with_file_name(format!("{driver}-images"))
        .join("images.json");
    let Some(v) = read_json(&path, out) else {
        return Vec::new();
    };
    v.as_array()
        .map(|l| {
            l.iter()
                .take(MAX_CONTAINERS)
                .filter_map(|i| Some((i.get("id")?.as_str()?.to_string(), first_name(i)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn first_name(v: &Value) -> Option<String> {
    v.get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

fn build(
    roots: &StateRoots,
    id: &str,
    entry: Option<&StoreEntry>,
    spec: Option<&Value>,
) -> (Option<String>, ContainerInfo) {
    let f = spec.map(oci::facts).unwrap_or_default();
    let runtime = f.runtime.unwrap_or(if entry.is_some_and(|e| e.podman) {
        Runtime::Podman
    } else {
        Runtime::CriO
    });
    let pod_uid = f
        .pod_uid
        .clone()
        .or_else(|| f.cgroup.as_deref().and_then(oci::pod_uid_of));
    let mut info = ContainerInfo::bare(reference(id, runtime, pod_uid));
    f.apply(&mut info);
    if let Some(e) = entry {
        if runtime == Runtime::Podman || info.name.is_none() {
            info.name.clone_from(&e.name);
        }
        if info.image_name.is_none()
            && let Some(img) = &e.image
        {
            info.set_image(img);
        }
    }
    if info.orchestrator_type.is_some() {
        info.cluster_name.clone_from(&roots.cluster_name);
    }
    (f.cgroup, info)
}

/// The container `id`, from whichever store root has it.
pub fn read(roots: &StateRoots, id: &str, out: &mut EnrichOutcome) -> Option<ContainerInfo> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return None;
    }
    let dirs = container_dirs(roots);
    let spec = dirs
        .iter()
        .find_map(|d| read_json(&d.join(id).join("userdata/config.json"), out));
    let entries: Vec<(String, StoreEntry)> = dirs
        .iter()
        .flat_map(|d| store_entries(d, out))
        .filter(|(i, _)| i == id)
        .collect();
    let entry = entries.first().map(|(_, e)| e);
    if spec.is_none() && entry.is_none() {
        return None;
    }
    Some(build(roots, id, entry, spec.as_ref()).1)
}

/// Every container with a spec (a container never started has no cgroup to index).
pub fn scan(roots: &StateRoots, out: &mut EnrichOutcome) -> Vec<(Option<String>, ContainerInfo)> {
    let mut found = Vec::new();
    let dirs = container_dirs(roots);
    let entries: Vec<(String, StoreEntry)> =
        dirs.iter().flat_map(|d| store_entries(d, out)).collect();
    let mut seen = std::collections::HashSet::new();
    for d in &dirs {
        let Ok(rd) = fs::read_dir(d) else { continue };
        for e in rd.flatten().take(MAX_CONTAINERS) {
            let id = e.file_name().to_string_lossy().into_owned();
            let Some(spec) = read_json(&e.path().join("userdata/config.json"), out) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            let entry = entries.iter().find(|(i, _)| *i == id).map(|(_, e)| e);
            found.push(build(roots, &id, entry, Some(&spec)));
        }
    }
    found
}
