//! docker's container store: `<data-root>/containers/<id>/config.v2.json` (`Name`,
//! `Config.Image`, labels) and `hostconfig.json` (`Privileged`, `CgroupParent`).
//!
//! docker records `--privileged` itself, so its flag is the truth for docker containers
//! (the OCI privileged shape is the fallback for runtimes that do not).

use std::fs;

use serde_json::Value;

use super::{ContainerInfo, EnrichOutcome, StateRoots, read_json, reference};
use crate::container::parse::Runtime;

const MAX_CONTAINERS: usize = 16_384;

/// The container `id` as docker's store describes it, from the first data root that has it.
pub fn read(roots: &StateRoots, id: &str, out: &mut EnrichOutcome) -> Option<ContainerInfo> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return None;
    }
    roots.docker.iter().find_map(|root| {
        let dir = root.join("containers").join(id);
        let config = read_json(&dir.join("config.v2.json"), out)?;
        let host = read_json(&dir.join("hostconfig.json"), out);
        Some(info_of(id, &config, host.as_ref()))
    })
}

fn info_of(id: &str, v: &Value, host: Option<&Value>) -> ContainerInfo {
    let mut info = ContainerInfo::bare(reference(id, Runtime::Docker, None));
    if let Some(n) = v.get("Name").and_then(Value::as_str) {
        info.name = Some(n.trim_start_matches('/').to_string()).filter(|n| !n.is_empty());
    }
    let config = v.get("Config");
    if let Some(img) = config.and_then(|c| c.get("Image")).and_then(Value::as_str) {
        info.set_image(img);
    }
    // dockershim-era Kubernetes containers carry their pod in labels.
    let label = |k: &str| {
        config
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    if let (Some(ns), Some(pod)) = (
        label("io.kubernetes.pod.namespace"),
        label("io.kubernetes.pod.name"),
    ) {
        info.set_pod(ns, pod);
        info.reference.pod_uid = label("io.kubernetes.pod.uid").map(str::to_string);
    }
    info.privileged = host
        .and_then(|h| h.get("Privileged"))
        .and_then(Value::as_bool);
    info
}

/// The cgroup docker gives a container with the cgroupfs driver: `<parent>/<id>`
/// (`/docker/<id>` unless `CgroupParent` says otherwise). With the systemd driver the
/// pattern `docker-<id>.scope` already finds it.
fn cgroup_of(id: &str, host: Option<&Value>) -> String {
    let parent = host
        .and_then(|h| h.get("CgroupParent"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && !p.ends_with(".slice"))
        .unwrap_or("/docker");
    let parent = parent.trim_end_matches('/');
    if parent.starts_with('/') {
        format!("{parent}/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// Every container in every data root: `(cgroup path, info)`.
pub fn scan(roots: &StateRoots, out: &mut EnrichOutcome) -> Vec<(Option<String>, ContainerInfo)> {
    let mut found = Vec::new();
    for root in &roots.docker {
        let Ok(dir) = fs::read_dir(root.join("containers")) else {
            continue;
        };
        for e in dir.flatten().take(MAX_CONTAINERS) {
            let id = e.file_name().to_string_lossy().into_owned();
            let Some(config) = read_json(&e.path().join("config.v2.json"), out) else {
                continue;
            };
            let host = read_json(&e.path().join("hostconfig.json"), out);
            found.push((
                Some(cgroup_of(&id, host.as_ref())),
                info_of(&id, &config, host.as_ref()),
            ));
        }
    }
    found
}
