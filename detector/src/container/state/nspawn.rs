//! systemd-nspawn, as systemd-machined records it: `/run/systemd/machines/<name>`, a
//! `KEY=value` file with `NAME`, `CLASS` (`container` or `vm`), `SERVICE`
//! (`systemd-nspawn`), `SCOPE` (`machine-<name>.scope`) and `ROOT`.
//!
//! Only `CLASS=container` machines are containers (a VM's processes are not ours to see).
//! nspawn has no image store and no privileged flag; `ROOT`'s last component stands for the
//! image name when it names a directory under `/var/lib/machines`.

use std::fs;

use super::{ContainerInfo, EnrichOutcome, Read1, StateRoots, read_capped, reference};
use crate::container::parse::Runtime;

const MAX_MACHINES: usize = 4096;

/// The machine `name`.
pub fn read(roots: &StateRoots, name: &str, out: &mut EnrichOutcome) -> Option<ContainerInfo> {
    read_with_scope(roots, name, out).map(|(_, i)| i)
}

fn read_with_scope(
    roots: &StateRoots,
    name: &str,
    out: &mut EnrichOutcome,
) -> Option<(Option<String>, ContainerInfo)> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let bytes = match read_capped(&roots.machines.join(name)) {
        Read1::Missing => return None,
        Read1::Malformed => {
            out.malformed += 1;
            return None;
        }
        Read1::Ok(b) => b,
    };
    let text = String::from_utf8_lossy(&bytes);
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if get("CLASS").is_some_and(|c| c != "container") {
        return None;
    }
    let mut info = ContainerInfo::bare(reference(name, Runtime::SystemdNspawn, None));
    info.name = Some(get("NAME").unwrap_or(name).to_string());
    if let Some(root) = get("ROOT")
        && let Some(img) = root.strip_prefix("/var/lib/machines/")
        && !img.is_empty()
        && !img.contains('/')
    {
        info.image_name = Some(img.to_string());
    }
    let scope = get("SCOPE").map(|s| format!("/machine.slice/{s}"));
    Some((scope, info))
}

/// Every container machine: `(cgroup path, info)`.
pub fn scan(roots: &StateRoots, out: &mut EnrichOutcome) -> Vec<(Option<String>, ContainerInfo)> {
    let Ok(rd) = fs::read_dir(&roots.machines) else {
        return Vec::new();
    };
    rd.flatten()
        .take(MAX_MACHINES)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| read_with_scope(roots, &e.file_name().to_string_lossy(), out))
        .collect()
}
