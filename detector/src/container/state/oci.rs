//! OCI runtime specs (`config.json`), as containerd, podman and CRI-O leave them: where the
//! container's cgroup is, what the annotations say of it, and whether it is privileged.

use serde_json::Value;

use super::ContainerInfo;
use crate::container::parse::{self, Runtime};

/// What one spec says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpecFacts {
    /// `linux.cgroupsPath` as a cgroup v2 path (`/a/b`), see [`cgroup_path`].
    pub cgroup: Option<String>,
    /// The runtime its annotations name (`None`: the caller's guess stands).
    pub runtime: Option<Runtime>,
    pub name: Option<String>,
    pub image: Option<String>,
    pub privileged: Option<bool>,
    /// Kubernetes namespace and pod name.
    pub pod: Option<(String, String)>,
    pub pod_uid: Option<String>,
}

impl SpecFacts {
    /// Copy these facts into `info` (fields `info` already has are kept).
    pub fn apply(&self, info: &mut ContainerInfo) {
        if info.name.is_none() {
            info.name.clone_from(&self.name);
        }
        if info.image_name.is_none()
            && let Some(img) = &self.image
        {
            info.set_image(img);
        }
        if info.privileged.is_none() {
            info.privileged = self.privileged;
        }
        if let Some((ns, pod)) = &self.pod
            && info.orchestrator_namespace.is_none()
        {
            info.set_pod(ns, pod);
        }
        if info.reference.pod_uid.is_none() {
            info.reference.pod_uid.clone_from(&self.pod_uid);
        }
    }
}

fn ann<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get("annotations")?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Read the facts of one OCI spec.
pub fn facts(spec: &Value) -> SpecFacts {
    let cgroup = spec
        .get("linux")
        .and_then(|l| l.get("cgroupsPath"))
        .and_then(Value::as_str)
        .and_then(cgroup_path);
    let a = |k: &str| ann(spec, k).map(str::to_string);
    let mut f = SpecFacts {
        cgroup,
        privileged: privileged(spec),
        ..SpecFacts::default()
    };
    if ann(spec, "io.container.manager") == Some("libpod") {
        // podman writes a few `io.kubernetes.cri-o.*` annotations too: the manager decides.
        f.runtime = Some(Runtime::Podman);
        return f;
    }
    // containerd's CRI plugin.
    if let Some(ns) = a("io.kubernetes.cri.sandbox-namespace") {
        f.runtime = Some(Runtime::Containerd);
        let pod = a("io.kubernetes.cri.sandbox-name").unwrap_or_default();
        f.name = a("io.kubernetes.cri.container-name").or_else(|| Some(pod.clone()));
        f.pod = Some((ns, pod));
        f.pod_uid = a("io.kubernetes.cri.sandbox-uid");
        f.image = a("io.kubernetes.cri.image-name");
        return f;
    }
    // CRI-O: it copies the kubelet's labels into annotations.
    if ann(spec, "io.kubernetes.cri-o.ContainerType").is_some()
        || ann(spec, "io.kubernetes.cri-o.SandboxID").is_some()
    {
        f.runtime = Some(Runtime::CriO);
        let pod = a("io.kubernetes.pod.name").or_else(|| a("io.kubernetes.cri-o.KubeName"));
        if let (Some(ns), Some(pod)) = (a("io.kubernetes.pod.namespace"), pod) {
            f.pod = Some((ns, pod));
        }
        f.name = a("io.kubernetes.container.name").or_else(|| f.pod.as_ref().map(|p| p.1.clone()));
        f.pod_uid = a("io.kubernetes.pod.uid");
        f.image = a("io.kubernetes.cri-o.ImageName").or_else(|| a("io.kubernetes.cri-o.Image"));
    }
    f
}

/// `container.security_context.privileged` from a spec. Runtimes do not record the
/// `--privileged` flag in the spec (podman's `io.podman.annotations.privileged` aside, which
/// wins when present); what they record is its effect, and that is what we test, the
/// *privileged shape* that `docker`/`podman`/`ctr --privileged` and Kubernetes'
/// `privileged: true` all produce:
///
/// 1. `CAP_SYS_ADMIN` in the bounding set (the full set is not required: a runtime drops
///    what the host's root lacks, e.g. `CAP_SYS_RESOURCE` on these machines);
/// 2. the device cgroup allows every device (the last catch-all rule allows);
/// 3. no masked paths (`/proc/kcore`, `/sys/firmware`, … visible).
///
/// Seccomp is not part of the test: plain `ctr run` has none either. A spec without a
/// `process` or `linux` section tells nothing (`None`).
pub fn privileged(spec: &Value) -> Option<bool> {
    if let Some(p) = ann(spec, "io.podman.annotations.privileged") {
        return Some(p.eq_ignore_ascii_case("true"));
    }
    let linux = spec.get("linux")?;
    let bounding = spec
        .get("process")?
        .get("capabilities")
        .and_then(|c| c.get("bounding"))
        .and_then(Value::as_array);
    let sys_admin = bounding.is_some_and(|b| b.iter().any(|c| c.as_str() == Some("CAP_SYS_ADMIN")));
    let all_devices = linux
        .get("resources")
        .and_then(|r| r.get("devices"))
        .and_then(Value::as_array)
        .and_then(|rules| {
            rules.iter().rev().find_map(|r| {
                let catch_all = r.get("major").is_none_or(Value::is_null)
                    && r.get("minor").is_none_or(Value::is_null)
                    && r.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "a");
                catch_all.then(|| r.get("allow").and_then(Value::as_bool) == Some(true))
            })
        })
        .unwrap_or(false);
    let unmasked = linux
        .get("maskedPaths")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    Some(sys_admin && all_devices && unmasked)
}

/// The cgroup v2 path of an OCI `linux.cgroupsPath`:
/// - cgroupfs form, `/default/web` → itself (slashes collapsed);
/// - systemd form, `slice:prefix:name` → `/<slice expanded>/<prefix>-<name>.scope`, the slice
///   expanded as systemd does (`a-b.slice` is `/a.slice/a-b.slice`, empty is
///   `system.slice`, `-.slice` the root);
/// - a relative path is taken from the root.
///
/// `None` for an empty or absurd value.
pub fn cgroup_path(v: &str) -> Option<String> {
    if v.is_empty() || v.len() > 4096 {
        return None;
    }
    let parts: Vec<&str> = v.split(':').collect();
    if !v.starts_with('/') && parts.len() == 3 {
        let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
        let mut out = expand_slice(if slice.is_empty() {
            "system.slice"
        } else {
            slice
        })?;
        let unit = if name.ends_with(".slice") {
            return expand_slice(name);
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        out.push('/');
        out.push_str(&unit);
        return Some(out);
    }
    let comps: Vec<&str> = v.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() {
        return None;
    }
    Some(format!("/{}", comps.join("/")))
}

fn expand_slice(slice: &str) -> Option<String> {
    let stem = slice.strip_suffix(".slice")?;
    if stem == "-" {
        return Some(String::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return None;
    }
    let mut out = String::new();
    for (i, _) in stem.match_indices('-') {
        out.push('/');
        out.push_str(&stem[..i]);
        out.push_str(".slice");
    }
    out.push('/');
    out.push_str(slice);
    Some(out)
}

/// A container id shaped like containerd's (`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76
/// bytes, as containerd's `identifiers.Validate` accepts): only such names are probed as
/// task directories, and only such a cgroup component is taken for a containerd id.
pub fn is_task_id(c: &[u8]) -> bool {
    !c.is_empty()
        && c.len() <= 76
        && c[0].is_ascii_alphanumeric()
        && c[c.len() - 1].is_ascii_alphanumeric()
        && c.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !c
            .windows(2)
            .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
}

/// The pod uid of a cgroup path's pod component, if any.
pub fn pod_uid_of(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find_map(|c| parse::pod_uid(c.as_bytes()))
}
