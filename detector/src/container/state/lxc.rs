//! LXC: `<lxcpath>/<name>/config`. The container's id and name are its name; its cgroup is
//! `lxc.payload.<name>` (LXC ≥ 4; `lxc-attach` runs in `lxc.payload.<name>/.lxc`), which
//! the cgroup patterns already find, so this reader only adds what the config says.
//!
//! Privileged: LXC calls a container without `lxc.idmap` "privileged" because its root is
//! the host's root, but it still drops capabilities and limits devices, which is not what
//! ECS `container.security_context.privileged` means (all capabilities, all devices). So a
//! container with an id map is `false`, one without is unknown (`None`).

use std::fs;

use super::{ContainerInfo, EnrichOutcome, Read1, StateRoots, read_capped, reference};
use crate::container::parse::Runtime;

const MAX_CONTAINERS: usize = 4096;

/// The container `name`, from the first LXC path that has it.
pub fn read(roots: &StateRoots, name: &str, out: &mut EnrichOutcome) -> Option<ContainerInfo> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    roots.lxc.iter().find_map(|root| {
        let text = match read_capped(&root.join(name).join("config")) {
            Read1::Missing => return None,
            Read1::Malformed => {
                out.malformed += 1;
                return None;
            }
            Read1::Ok(b) => b,
        };
        let Ok(text) = std::str::from_utf8(&text) else {
            out.malformed += 1;
            return None;
        };
        Some(info_of(name, text))
    })
}

fn info_of(name: &str, config: &str) -> ContainerInfo {
    let mut info = ContainerInfo::bare(reference(name, Runtime::Lxc, None));
    info.name = Some(name.to_string());
    let mut idmap = false;
    for line in config.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if matches!(k, "lxc.idmap" | "lxc.id_map") && !v.is_empty() {
            idmap = true;
        }
    }
    info.privileged = idmap.then_some(false);
    info
}

/// Every container in every LXC path: `(cgroup path, info)`, the cgroup being LXC 4's
/// default `/lxc.payload.<name>`.
pub fn scan(roots: &StateRoots, out: &mut EnrichOutcome) -> Vec<(Option<String>, ContainerInfo)> {
    let mut found = Vec::new();
    for root in &roots.lxc {
        let Ok(rd) = fs::read_dir(root) else { continue };
        for e in rd.flatten().take(MAX_CONTAINERS) {
            let name = e.file_name().to_string_lossy().into_owned();
            let one = StateRoots {
                lxc: vec![root.clone()],
                ..roots.clone()
            };
            if let Some(info) = read(&one, &name, out) {
                found.push((Some(format!("/lxc.payload.{name}")), info));
            }
        }
    }
    found
}
