//! Kubernetes pods of any CRI runtime, by pod uid: the kubelet's log directory
//! `<pod_logs>/<namespace>_<pod name>_<pod uid>/`. Namespaces and pod names are DNS labels
//! and subdomains, which cannot contain `_`, so the split is unambiguous.

use std::fs;

use super::{ContainerInfo, EnrichOutcome, StateRoots};

const MAX_PODS: usize = 100_000;

/// Fill `info`'s pod from its pod uid's log directory.
pub fn read(roots: &StateRoots, uid: &str, info: &mut ContainerInfo) -> EnrichOutcome {
    let mut out = EnrichOutcome::default();
    let Ok(dir) = fs::read_dir(&roots.pod_logs) else {
        return out;
    };
    let suffix = format!("_{uid}");
    for entry in dir.flatten().take(MAX_PODS) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_suffix(&suffix) else {
            continue;
        };
        if let Some((ns, pod)) = rest.split_once('_') {
            out.found = true;
            info.set_pod(ns, pod);
            return out;
        }
    }
    out
}
