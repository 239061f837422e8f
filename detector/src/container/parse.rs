//! The pure part of container resolution: a whole cgroup path → container id and runtime.
//!
//! The kernel sends the whole cgroup path of every event's subject (root-relative, walked in
//! the kernel, see `detector_common::EventHeader::cgroup_path_len`); seeding reads the same
//! path from `/proc/<pid>/cgroup`. Runtimes name the cgroup of a container after its id in a
//! handful of ways, and **any** component of the path may be that cgroup: a process at any
//! depth below a container's cgroup (systemd inside a container, `lxc-attach`'s `.lxc`, a
//! container's own sub-cgroups) belongs to the container.
//!
//! Nesting: the **innermost** container wins, as Elastic Defend attributes a process to the
//! container whose cgroup holds it: docker inside an LXC container, or docker-in-docker,
//! gives the inner container (a container in its own right). A runtime's monitor inside an
//! outer container (a conmon in an LXC container) belongs to the outer one.
//!
//! What a name can say safely (the rest is left to the runtimes' own state,
//! [`super::RuntimeLookup`], which the resolver consults when no rule here matches):
//! - self-describing names, at any depth: `docker-<64hex>.scope`,
//!   `cri-containerd-<64hex>.scope`, `nerdctl-<64hex>.scope`, `crio-<64hex>.scope`,
//!   `libpod-<64hex>.scope` (under a user slice too: rootless docker and podman put their
//!   containers there), and the systemd `slice:runtime:<64hex>` notation containerd writes
//!   into cgroupfs paths;
//! - a bare 64-hex directory only under a parent that names its runtime: `docker/`,
//!   `libpod_parent/`, a kubepods `pod<uid>/`;
//! - cgroups a runtime makes at the root of the hierarchy — or, when nested, at the root of
//!   an outer container's cgroup (the root of the nested runtime's cgroup namespace) — and
//!   never deeper, so a host unit named alike is not one: containerd's namespace layout
//!   `/k8s.io/<64hex>` and `/default/<containerd id>`, LXC's `/lxc.payload.<name>`,
//!   `/lxc.payload/<name>` and `/lxc/<name>`;
//! - systemd-nspawn's `machine-<name>.scope` directly in a slice (not libvirt's
//!   `machine-qemu…` nor `machine-lxc…`);
//! - never a container: the runtimes' monitors on the host — `crio-conmon-<id>`,
//!   `libpod-conmon-<id>`, `/libpod_parent/conmon`, `lxc.monitor.<name>`, and nspawn's
//!   `machine-<name>.scope/supervisor` (the `systemd-nspawn` process itself).
//!
//! Other containerd namespaces (`/<namespace>/<id>`) cannot be told from host cgroups by
//! name: they are the runtime state's to recognise.
//!
//! A partial path (the kernel's walk stopped before the root: no leading `/`) is matched
//! without the root-anchored rules, since its first component is not the root's child.
//!
//! Every input is hostile bytes: nothing here panics, allocates more than the path's length,
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

/// Resolve a cgroup path: root-relative (`/a/b/c`, as in the `0::` line of
/// `/proc/<pid>/cgroup`, or as the kernel sends it), or partial (`b/c`: the components
/// nearest the leaf, when the kernel's walk stopped early).
pub fn from_path(path: &[u8]) -> Option<ContainerRef> {
    let anchored = path.first() == Some(&b'/');
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    resolve(&comps, anchored)
}

/// Resolve from the components of a root-relative path, root first.
pub fn from_components(comps: &[&[u8]]) -> Option<ContainerRef> {
    resolve(comps, true)
}

/// Where a component sits relative to the current scope root: the hierarchy's root, or
/// the cgroup of the innermost container found above (a nested runtime makes its cgroups
/// at the root of its own cgroup namespace, which is there).
#[derive(Clone, Copy)]
struct Place {
    /// The component is a child of the scope root.
    child_of_root: bool,
    /// The component's parent is a child of the scope root.
    grandchild_of_root: bool,
}

/// Innermost container of `comps` (root first). `anchored`: `comps[0]` is a child of the
/// hierarchy's root.
fn resolve(comps: &[&[u8]], anchored: bool) -> Option<ContainerRef> {
    // Containers found, outermost first: (component index, id, runtime).
    let mut found: Vec<(usize, String, Runtime)> = Vec::new();
    // Index of the first component below the current scope root; `None`: unknown.
    let mut scope: Option<usize> = anchored.then_some(0);
    for (i, &c) in comps.iter().enumerate() {
        if c.len() > MAX_NAME {
            continue;
        }
        let parent = i.checked_sub(1).map(|p| comps[p]);
        let place = Place {
            child_of_root: scope == Some(i),
            grandchild_of_root: i > 0 && scope == Some(i - 1),
        };
        if let Some((id, runtime)) = container_name(parent, c, place) {
            found.push((i, id, runtime));
            scope = Some(i + 1);
        } else if c == b"supervisor" && parent.is_some_and(|p| nspawn_name(p).is_some()) {
            // `machine-<name>.scope/supervisor` is the systemd-nspawn process itself, on the
            // host (or in whatever held the machine's scope).
            if found.last().is_some_and(|(at, _, _)| at + 1 == i) {
                found.pop();
            }
            scope = None;
        }
    }
    let (at, id, runtime) = found.pop()?;
    // The container's own component too: the colon form carries its pod's slice.
    let above = &comps[..=at];
    let pod_uid = above.iter().rev().find_map(|c| pod_uid(c));
    let k8s = above.iter().any(|c| c.starts_with(b"kubepods"));
    Some(ContainerRef {
        id,
        runtime,
        pod_uid: pod_uid.filter(|_| k8s),
    })
}

/// The container one component names, given its parent and place (see the module docs for
/// the rules).
fn container_name(parent: Option<&[u8]>, c: &[u8], place: Place) -> Option<(String, Runtime)> {
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
    // podman `libpod-<id>.scope/container`: the payload sits in a child named `container`,
    // below the container's cgroup, which has matched above.

    let p = parent.unwrap_or(b"");
    // Bare 64-hex directories under a parent naming the runtime: docker cgroupfs
    // `/docker/<id>`, kubepods cgroupfs `/kubepods/<qos>/pod<uid>/<id>`, podman cgroupfs
    // `/libpod_parent/<id>`.
    if let Some(id) = hex64(c) {
        if p == b"docker" {
            return Some((id, Runtime::Docker));
        }
        if pod_uid(p).is_some() {
            return Some((id, Runtime::Containerd));
        }
        if p == b"libpod_parent" {
            return Some((id, Runtime::Podman));
        }
    }
    if place.child_of_root
        && let Some(name) = c.strip_prefix(b"lxc.payload.")
    {
        // LXC ≥ 4.
        return name_id(name).map(|n| (n, Runtime::Lxc));
    }
    if place.grandchild_of_root {
        match p {
            // containerd's `/<namespace>/<id>`: CRI's namespace has 64-hex ids; `default`
            // (ctr, nerdctl) any containerd id, which is the container's name.
            b"k8s.io" => return hex64(c).map(|id| (id, Runtime::Containerd)),
            b"default" => return containerd_id(c).map(|id| (id, Runtime::Containerd)),
            // LXC 3 (`/lxc.payload/<name>`) and 2 (`/lxc/<name>`).
            b"lxc" | b"lxc.payload" if !c.starts_with(b"lxc.monitor") => {
                return name_id(c).map(|n| (n, Runtime::Lxc));
            }
            _ => {}
        }
    }
    // systemd-nspawn: `<slice>/machine-<name>.scope`.
    if p.ends_with(b".slice")
        && let Some(name) = nspawn_name(c)
    {
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

/// systemd-nspawn's scope `machine-<name>.scope` → the unescaped machine name; `None` for
/// other scopes and for libvirt's `machine-qemu…` and `machine-lxc…`.
fn nspawn_name(c: &[u8]) -> Option<Vec<u8>> {
    let name = c.strip_prefix(b"machine-")?.strip_suffix(b".scope")?;
    let name = unescape_systemd(name);
    if name.starts_with(b"qemu") || name.starts_with(b"lxc-") {
        return None;
    }
    Some(name)
}

/// A containerd container id ([`super::state::oci::is_task_id`]), as a string.
fn containerd_id(c: &[u8]) -> Option<String> {
    super::state::oci::is_task_id(c).then(|| String::from_utf8_lossy(c).into_owned())
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
