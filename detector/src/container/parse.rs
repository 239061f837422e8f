//! The pure part of container resolution: cgroup path components → container id and runtime.
//!
//! Runtimes name the cgroup of a container after its id in a handful of ways. Only the
//! directory names matter, so the input is a list of path components — a whole path read from
//! `/proc/<pid>/cgroup`, or just the parent and leaf names the kernel program reads. The
//! deepest (innermost) component that names a container wins, so docker inside an LXC
//! container resolves to the docker container.
//!
//! Every input is hostile bytes: nothing here panics, allocates more than the name's length,
//! or trusts UTF-8.

use serde::Serialize;

/// A container runtime, spelled as Elastic's `container.runtime` values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Runtime {
    #[serde(rename = "docker")]
    Docker,
    /// containerd, through CRI (Kubernetes) or nerdctl. Also the guess for a bare
    /// `/kubepods/<qos>/pod<uid>/<id>` cgroupfs path, which does not name its runtime.
    #[serde(rename = "containerd")]
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    #[serde(rename = "podman")]
    Podman,
    #[serde(rename = "lxc")]
    Lxc,
    #[serde(rename = "systemd-nspawn")]
    SystemdNspawn,
}

impl Runtime {
    /// The ECS `container.runtime` keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Lxc => "lxc",
            Runtime::SystemdNspawn => "systemd-nspawn",
        }
    }
}

/// What a cgroup path says about its container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    /// Full 64-hex id for runtimes that have one (lower case); the container name for LXC
    /// and systemd-nspawn, which have none.
    pub id: String,
    pub runtime: Runtime,
    /// Kubernetes pod uid (dashed form) when the path is under a `kubepods` pod cgroup.
    pub pod_uid: Option<String>,
}

/// Names longer than this are not container names (cgroup names are at most 255 bytes).
const MAX_NAME: usize = 255;

/// Resolve a cgroup path (`/a/b/c`, as in the `0::` line of `/proc/<pid>/cgroup`).
pub fn from_path(path: &[u8]) -> Option<ContainerRef> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    from_components(&comps)
}

/// Resolve from the parent and leaf directory names the kernel program reads. Empty names
/// are ignored (the host root cgroup has no name).
pub fn from_leaf_parent(parent: &[u8], leaf: &[u8]) -> Option<ContainerRef> {
    let comps: Vec<&[u8]> = [parent, leaf]
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    from_components(&comps)
}

/// Resolve from path components, root first.
pub fn from_components(comps: &[&[u8]]) -> Option<ContainerRef> {
    let pod_uid = comps.iter().rev().find_map(|c| pod_uid(c));
    for i in (0..comps.len()).rev() {
        let parent = if i > 0 { Some(comps[i - 1]) } else { None };
        if let Some((id, runtime)) = match_component(parent, comps[i]) {
            return Some(ContainerRef {
                id,
                runtime,
                pod_uid: pod_uid.filter(|_| is_k8s(runtime, comps)),
            });
        }
    }
    None
}

fn is_k8s(_runtime: Runtime, comps: &[&[u8]]) -> bool {
    comps.iter().any(|c| c.starts_with(b"kubepods"))
}

/// Does one component (with its parent for context) name a container?
fn match_component(parent: Option<&[u8]>, c: &[u8]) -> Option<(String, Runtime)> {
    if c.len() > MAX_NAME {
        return None;
    }
    // `…:cri-containerd:<id>` and friends: the systemd-driver "slice:prefix:name" notation
    // written literally into a cgroupfs path.
    if let Some(r) = colon_form(c) {
        return Some(r);
    }
    let stem = c.strip_suffix(b".scope").unwrap_or(c);
    let prefixed: [(&[u8], Runtime); 6] = [
        (b"docker-", Runtime::Docker),
        (b"cri-containerd-", Runtime::Containerd),
        (b"nerdctl-", Runtime::Containerd),
        (b"crio-", Runtime::CriO),
        (b"libpod-payload-", Runtime::Podman),
        (b"libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in prefixed {
        if let Some(rest) = stem.strip_prefix(prefix)
            && let Some(id) = hex64(rest)
        {
            // `crio-conmon-<id>` and `libpod-conmon-<id>` fail hex64, so they are not
            // containers: they are the runtimes' monitors, on the host.
            return Some((id, runtime));
        }
    }
    // podman `libpod-<id>.scope/container`: the payload sits in a child named `container`.
    // Handled by the parent matching above when the walk reaches it; nothing to do here.

    // Bare 64-hex directories: docker cgroupfs `/docker/<id>`, kubepods cgroupfs
    // `/kubepods/<qos>/pod<uid>/<id>`, containerd `/<namespace>/<id>`.
    if let Some(id) = hex64(c) {
        let p = parent.unwrap_or(b"");
        if p == b"docker" {
            return Some((id, Runtime::Docker));
        }
        if pod_uid(p).is_some() {
            return Some((id, Runtime::Containerd));
        }
        if p == b"libpod_parent" {
            return Some((id, Runtime::Podman));
        }
        return None;
    }
    // LXC: `lxc.payload.<name>` (LXC ≥ 4), `/lxc.payload/<name>` (LXC 3), `/lxc/<name>`.
    if let Some(name) = c.strip_prefix(b"lxc.payload.") {
        return name_id(name).map(|n| (n, Runtime::Lxc));
    }
    if matches!(parent, Some(b"lxc") | Some(b"lxc.payload")) && !c.starts_with(b"lxc.monitor") {
        return name_id(c).map(|n| (n, Runtime::Lxc));
    }
    // systemd-nspawn: `machine.slice/machine-<name>.scope`, not libvirt's `machine-qemu…`.
    if let Some(name) = c
        .strip_prefix(b"machine-")
        .and_then(|n| n.strip_suffix(b".scope"))
    {
        let name = unescape_systemd(name);
        if name.starts_with(b"qemu") || name.starts_with(b"lxc-") {
            return None;
        }
        return name_id(&name).map(|n| (n, Runtime::SystemdNspawn));
    }
    None
}

/// `<slice>:<prefix>:<id>` where prefix names the runtime.
fn colon_form(c: &[u8]) -> Option<(String, Runtime)> {
    let mut parts = c.rsplitn(3, |&b| b == b':');
    let id = parts.next()?;
    let prefix = parts.next()?;
    parts.next()?;
    let runtime = match prefix {
        b"cri-containerd" => Runtime::Containerd,
        b"crio" => Runtime::CriO,
        b"docker" => Runtime::Docker,
        b"libpod" => Runtime::Podman,
        _ => return None,
    };
    Some((hex64(id)?, runtime))
}

/// Exactly 64 hex digits → the id in lower case.
fn hex64(s: &[u8]) -> Option<String> {
    if s.len() == 64 && s.iter().all(u8::is_ascii_hexdigit) {
        Some(s.iter().map(|b| b.to_ascii_lowercase() as char).collect())
    } else {
        None
    }
}

/// A container name (LXC, nspawn): non-empty, rendered lossily for the `container.id`
/// keyword.
fn name_id(name: &[u8]) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    Some(String::from_utf8_lossy(name).into_owned())
}

/// systemd unit-name escaping: `\xNN` → byte.
fn unescape_systemd(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && s.get(i + 1) == Some(&b'x')
            && let (Some(h), Some(l)) =
                (s.get(i + 2).and_then(hexval), s.get(i + 3).and_then(hexval))
        {
            out.push(h << 4 | l);
            i += 4;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn hexval(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// The pod uid of a kubepods pod cgroup: `pod<uid>` (cgroupfs) or
/// `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd), in dashed form.
pub fn pod_uid(c: &[u8]) -> Option<String> {
    // `kubepods-…-pod<uid>.slice:cri-containerd:<id>`: the slice is before the first ':'.
    let c = c.split(|&b| b == b':').next().unwrap_or(c);
    let raw = if let Some(rest) = c.strip_prefix(b"pod") {
        rest
    } else if c.starts_with(b"kubepods") {
        let stem = c.strip_suffix(b".slice")?;
        let at = find(stem, b"-pod")?;
        &stem[at + 4..]
    } else {
        return None;
    };
    if raw.len() != 36
        || !raw
            .iter()
            .all(|b| b.is_ascii_hexdigit() || *b == b'-' || *b == b'_')
    {
        return None;
    }
    Some(
        raw.iter()
            .map(|&b| {
                if b == b'_' {
                    '-'
                } else {
                    b.to_ascii_lowercase() as char
                }
            })
            .collect(),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
