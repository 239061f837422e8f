//! Container facts from the runtimes' local state, read without any network call.
//!
//! | runtime | file | gives |
//! |---|---|---|
//! | docker | `<docker>/containers/<id>/config.v2.json` | `Name`, `Config.Image`, k8s labels |
//! | podman | `<podman>/overlay-containers/containers.json` + `overlay-images/images.json` | names, image name |
//! | CRI (any) | `<pod_logs>/<namespace>_<pod name>_<pod uid>/` | `orchestrator.namespace`, `resource.name` |
//!
//! Every file is optional: a missing or malformed file leaves the fields empty (and is
//! counted by the resolver), never fails resolution. Files are size-capped before parsing.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse::{ContainerRef, Runtime};

/// Where the runtimes keep their state. Tests point these at fixture trees.
#[derive(Clone, Debug)]
pub struct EnrichRoots {
    /// docker's data root (`/var/lib/docker`).
    pub docker: PathBuf,
    /// containers/storage graph root used by podman (`/var/lib/containers/storage`).
    pub podman: PathBuf,
    /// The kubelet's pod log directory (`/var/log/pods`).
    pub pod_logs: PathBuf,
}

impl Default for EnrichRoots {
    fn default() -> Self {
        EnrichRoots {
            docker: "/var/lib/docker".into(),
            podman: "/var/lib/containers/storage".into(),
            pod_logs: "/var/log/pods".into(),
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
    /// `orchestrator.namespace` (Kubernetes namespace).
    pub orchestrator_namespace: Option<String>,
    /// `orchestrator.resource.name` (pod name).
    pub resource_name: Option<String>,
    /// `orchestrator.resource.type`: `"pod"` when in Kubernetes.
    pub resource_type: Option<&'static str>,
    /// `orchestrator.type`: `"kubernetes"` when in Kubernetes.
    pub orchestrator_type: Option<&'static str>,
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
            orchestrator_namespace: None,
            resource_name: None,
            resource_type: k8s.then_some("pod"),
            orchestrator_type: k8s.then_some("kubernetes"),
        }
    }
}

/// Largest state file we parse: bigger ones are skipped (and so counted as failed).
const MAX_STATE_FILE: u64 = 16 << 20;

fn read_capped(path: &Path) -> Option<Vec<u8>> {
    let f = fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_STATE_FILE + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= MAX_STATE_FILE).then_some(buf)
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

/// Outcome of one enrichment: whether some state file was present but unusable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EnrichOutcome {
    pub found: bool,
    pub malformed: bool,
}

/// Fill what the local state knows into `info`.
pub fn enrich(roots: &EnrichRoots, info: &mut ContainerInfo) -> EnrichOutcome {
    let mut out = EnrichOutcome::default();
    let id = info.reference.id.clone();
    match info.reference.runtime {
        Runtime::Docker => docker(roots, &id, info, &mut out),
        Runtime::Podman => podman(roots, &id, info, &mut out),
        _ => {}
    }
    if let Some(uid) = info.reference.pod_uid.clone() {
        pod(roots, &uid, info, &mut out);
    }
    out
}

fn docker(roots: &EnrichRoots, id: &str, info: &mut ContainerInfo, out: &mut EnrichOutcome) {
    let Some(bytes) = read_capped(
        &roots
            .docker
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    ) else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        out.malformed = true;
        return;
    };
    out.found = true;
    if let Some(n) = v.get("Name").and_then(|n| n.as_str()) {
        info.name = Some(n.trim_start_matches('/').to_string()).filter(|n| !n.is_empty());
    }
    let config = v.get("Config");
    if let Some(img) = config.and_then(|c| c.get("Image")).and_then(|i| i.as_str()) {
        let (name, tag) = split_image(img);
        info.image_name = Some(name);
        info.image_tag = tag;
    }
    // dockershim-era Kubernetes containers carry their pod in labels.
    let label = |k: &str| {
        config
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.get(k))
            .and_then(|v| v.as_str())
    };
    if let (Some(ns), Some(pod)) = (
        label("io.kubernetes.pod.namespace"),
        label("io.kubernetes.pod.name"),
    ) {
        set_pod(info, ns, pod);
    }
}

fn podman(roots: &EnrichRoots, id: &str, info: &mut ContainerInfo, out: &mut EnrichOutcome) {
    let Some(bytes) = read_capped(&roots.podman.join("overlay-containers/containers.json")) else {
        return;
    };
    let Ok(serde_json::Value::Array(list)) = serde_json::from_slice::<serde_json::Value>(&bytes)
    else {
        out.malformed = true;
        return;
    };
    let Some(c) = list
        .iter()
        .find(|c| c.get("id").and_then(|i| i.as_str()) == Some(id))
    else {
        return;
    };
    out.found = true;
    info.name = first_name(c);
    let Some(image_id) = c.get("image").and_then(|i| i.as_str()) else {
        return;
    };
    let image_name = read_capped(&roots.podman.join("overlay-images/images.json"))
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|i| i.get("id").and_then(|x| x.as_str()) == Some(image_id))
                .and_then(first_name)
        });
    if let Some(img) = image_name {
        let (name, tag) = split_image(&img);
        info.image_name = Some(name);
        info.image_tag = tag;
    }
}

fn first_name(v: &serde_json::Value) -> Option<String> {
    v.get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

/// `<pod_logs>/<namespace>_<pod>_<uid>`: namespaces and pod names are DNS labels and
/// subdomains, which cannot contain `_`, so the split is unambiguous.
fn pod(roots: &EnrichRoots, uid: &str, info: &mut ContainerInfo, out: &mut EnrichOutcome) {
    let Ok(dir) = fs::read_dir(&roots.pod_logs) else {
        return;
    };
    let suffix = format!("_{uid}");
    for entry in dir.flatten().take(100_000) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_suffix(&suffix) else {
            continue;
        };
        if let Some((ns, pod)) = rest.split_once('_') {
            out.found = true;
            set_pod(info, ns, pod);
            return;
        }
    }
}

fn set_pod(info: &mut ContainerInfo, ns: &str, pod: &str) {
    info.orchestrator_namespace = Some(ns.to_string());
    info.resource_name = Some(pod.to_string());
    info.resource_type = Some("pod");
    info.orchestrator_type = Some("kubernetes");
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn roots(dir: &Path) -> EnrichRoots {
        EnrichRoots {
            docker: dir.join("docker"),
            podman: dir.join("storage"),
            pod_logs: dir.join("pods"),
        }
    }

    fn info(runtime: Runtime, pod_uid: Option<&str>) -> ContainerInfo {
        ContainerInfo::bare(ContainerRef {
            id: ID.into(),
            runtime,
            pod_uid: pod_uid.map(str::to_string),
        })
    }

    #[test]
    fn image_references() {
        let table = [
            ("nginx", ("nginx", None)),
            ("nginx:1.25", ("nginx", Some("1.25"))),
            (
                "docker.io/library/nginx:latest",
                ("docker.io/library/nginx", Some("latest")),
            ),
            ("localhost:5000/team/app", ("localhost:5000/team/app", None)),
            (
                "localhost:5000/team/app:v2",
                ("localhost:5000/team/app", Some("v2")),
            ),
            ("quay.io/a/b@sha256:abcd", ("quay.io/a/b", None)),
            ("quay.io/a/b:1@sha256:abcd", ("quay.io/a/b", Some("1"))),
            ("", ("", None)),
            ("x:", ("x", None)),
        ];
        for (input, (name, tag)) in table {
            assert_eq!(
                split_image(input),
                (name.to_string(), tag.map(str::to_string)),
                "{input}"
            );
        }
    }

    #[test]
    fn docker_config() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("docker/containers").join(ID);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("config.v2.json"),
            r#"{"ID":"x","Name":"/web-1","Config":{"Image":"registry.local:5000/shop/web:2.1","Labels":{"a":"b"}}}"#,
        )
        .unwrap();
        let mut i = info(Runtime::Docker, None);
        let out = enrich(&roots(t.path()), &mut i);
        assert!(out.found && !out.malformed);
        assert_eq!(i.name.as_deref(), Some("web-1"));
        assert_eq!(
            i.image_name.as_deref(),
            Some("registry.local:5000/shop/web")
        );
        assert_eq!(i.image_tag.as_deref(), Some("2.1"));
        assert_eq!(i.orchestrator_namespace, None);
    }

    #[test]
    fn docker_k8s_labels_and_malformed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("docker/containers").join(ID);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("config.v2.json"),
            r#"{"Name":"/k8s_app","Config":{"Image":"app","Labels":{"io.kubernetes.pod.namespace":"prod","io.kubernetes.pod.name":"app-7d9"}}}"#,
        )
        .unwrap();
        let mut i = info(Runtime::Docker, None);
        enrich(&roots(t.path()), &mut i);
        assert_eq!(i.orchestrator_namespace.as_deref(), Some("prod"));
        assert_eq!(i.resource_name.as_deref(), Some("app-7d9"));
        assert_eq!(i.resource_type, Some("pod"));
        fs::write(d.join("config.v2.json"), b"{not json\xff").unwrap();
        let mut i = info(Runtime::Docker, None);
        let out = enrich(&roots(t.path()), &mut i);
        assert!(out.malformed && !out.found);
        assert_eq!(i, info(Runtime::Docker, None));
    }

    #[test]
    fn podman_store() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("storage");
        fs::create_dir_all(s.join("overlay-containers")).unwrap();
        fs::create_dir_all(s.join("overlay-images")).unwrap();
        fs::write(
            s.join("overlay-containers/containers.json"),
            format!(r#"[{{"id":"other","names":["x"],"image":"i0"}},{{"id":"{ID}","names":["happy_turing"],"image":"i1","layer":"l"}}]"#),
        )
        .unwrap();
        fs::write(
            s.join("overlay-images/images.json"),
            r#"[{"id":"i1","names":["localhost/test:latest"]}]"#,
        )
        .unwrap();
        let mut i = info(Runtime::Podman, None);
        assert!(enrich(&roots(t.path()), &mut i).found);
        assert_eq!(i.name.as_deref(), Some("happy_turing"));
        assert_eq!(i.image_name.as_deref(), Some("localhost/test"));
        assert_eq!(i.image_tag.as_deref(), Some("latest"));
    }

    #[test]
    fn cri_pod_dirs() {
        let uid = "6a0f9c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join(
            "pods/kube-system_coredns-5d78c9869d-abcde_11111111-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
        ))
        .unwrap();
        fs::create_dir_all(t.path().join(format!("pods/shop_web-6f7b9_{uid}/web"))).unwrap();
        let mut i = info(Runtime::Containerd, Some(uid));
        assert!(enrich(&roots(t.path()), &mut i).found);
        assert_eq!(i.orchestrator_namespace.as_deref(), Some("shop"));
        assert_eq!(i.resource_name.as_deref(), Some("web-6f7b9"));
        assert_eq!(i.resource_type, Some("pod"));
        assert_eq!(i.orchestrator_type, Some("kubernetes"));
    }

    #[test]
    fn missing_state_is_not_an_error() {
        let t = tempfile::tempdir().unwrap();
        for rt in [
            Runtime::Docker,
            Runtime::Podman,
            Runtime::Containerd,
            Runtime::CriO,
            Runtime::Lxc,
        ] {
            let mut i = info(rt, Some("6a0f9c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b"));
            let before = i.clone();
            let out = enrich(&roots(t.path()), &mut i);
            assert_eq!(out, EnrichOutcome::default());
            assert_eq!(i, before);
        }
    }
}
