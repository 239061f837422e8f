//! Fixture trees laid out as each runtime lays out its state (shapes checked against real
//! docker 20.10, containerd 1.6, podman 4.3 and LXC 5 state on a Debian 12 host; CRI-O and
//! nspawn from their documented formats).

use std::fs;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::container::lookup::RuntimeLookup;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ID2: &str = "abababababababababababababababababababababababababababababababab";
const UID: &str = "11111111-2222-3333-4444-555555555555";

fn write(p: &Path, body: impl AsRef<[u8]>) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn spec(cgroups_path: &str, annotations: serde_json::Value, privileged: bool) -> String {
    let caps: Vec<&str> = if privileged {
        vec!["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    } else {
        vec!["CAP_CHOWN", "CAP_KILL"]
    };
    let devices = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    };
    let mut linux = json!({"cgroupsPath": cgroups_path, "resources": {"devices": devices}});
    if !privileged {
        linux["maskedPaths"] = json!(["/proc/kcore", "/sys/firmware"]);
    }
    json!({"ociVersion": "1.0.2", "process": {"capabilities": {"bounding": caps}},
           "annotations": annotations, "linux": linux})
    .to_string()
}

fn task(dir: &Path, root: &str, ns: &str, id: &str, body: &str) {
    write(
        &dir.join(root)
            .join(containerd::TASK_DIR)
            .join(ns)
            .join(id)
            .join("config.json"),
        body,
    );
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
fn cgroups_paths() {
    let table = [
        ("/default/web", Some("/default/web")),
        ("//default//web/", Some("/default/web")),
        ("default/web", Some("/default/web")),
        (
            "kubepods-besteffort-pod1234.slice:cri-containerd:abc",
            Some(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-abc.scope",
            ),
        ),
        (
            "system.slice:docker:abc",
            Some("/system.slice/docker-abc.scope"),
        ),
        (":libpod:abc", Some("/system.slice/libpod-abc.scope")),
        ("-.slice:x:abc", Some("/x-abc.scope")),
        ("machine.slice::web", Some("/machine.slice/web.scope")),
        ("bad-.slice:x:abc", None),
        ("", None),
        ("/", None),
    ];
    for (input, want) in table {
        assert_eq!(oci::cgroup_path(input).as_deref(), want, "{input}");
    }
}

#[test]
fn privileged_shape() {
    let p: serde_json::Value = serde_json::from_str(&spec("/a", json!({}), true)).unwrap();
    let u: serde_json::Value = serde_json::from_str(&spec("/a", json!({}), false)).unwrap();
    assert_eq!(oci::privileged(&p), Some(true));
    assert_eq!(oci::privileged(&u), Some(false));
    // Each part of the shape matters.
    let mut no_admin = p.clone();
    no_admin["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN"]);
    assert_eq!(oci::privileged(&no_admin), Some(false));
    let mut masked = p.clone();
    masked["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    assert_eq!(oci::privileged(&masked), Some(false));
    let mut denied = p.clone();
    denied["linux"]["resources"]["devices"] =
        json!([{"allow": true, "access": "rwm"}, {"allow": false, "access": "rwm"}]);
    assert_eq!(oci::privileged(&denied), Some(false));
    // podman's own flag wins; a spec without `linux` tells nothing.
    let mut flagged = u.clone();
    flagged["annotations"] = json!({"io.podman.annotations.privileged": "TRUE"});
    assert_eq!(oci::privileged(&flagged), Some(true));
    assert_eq!(oci::privileged(&json!({"process": {}})), None);
    assert_eq!(oci::privileged(&json!("x")), None);
}

/// A tree with one container of every runtime; returns the roots.
fn every_runtime(dir: &Path) -> StateRoots {
    let mut roots = StateRoots::under(dir);
    roots.cluster_name = Some("prod-eu".into());
    // containerd `ctr run web` in `default` (privileged shape), a CRI container in `k8s.io`.
    task(
        dir,
        "containerd",
        "default",
        "web",
        &spec("/default/web", json!({}), true),
    );
    task(
        dir,
        "containerd",
        "k8s.io",
        ID2,
        &spec(
            &format!("/kubepods/besteffort/pod{UID}/{ID2}"),
            json!({
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.container-name": "api",
                "io.kubernetes.cri.sandbox-name": "shop-api-7d9",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.image-name": "registry.local/shop/api:2.1",
            }),
            false,
        ),
    );
    // docker: its own store, plus the task in docker's containerd (`moby`).
    let d = dir.join("docker/containers").join(ID);
    write(
        &d.join("config.v2.json"),
        r#"{"ID":"x","Name":"/web-1","Config":{"Image":"local/sshbox:1","Labels":{}}}"#,
    );
    write(
        &d.join("hostconfig.json"),
        r#"{"Privileged":true,"CgroupParent":""}"#,
    );
    task(
        dir,
        "docker-containerd",
        "moby",
        ID,
        &spec(&format!("/docker/{ID}"), json!({}), false),
    );
    // podman (vfs driver) and CRI-O (overlay) sharing containers/storage.
    let pod_id = "b".repeat(64);
    let crio_id = "c".repeat(64);
    write(
        &dir.join("storage/vfs-containers/containers.json"),
        json!([{"id": pod_id, "names": ["rt-pod"], "image": "i1",
                "metadata": "{\"image-name\":\"localhost/rtbox:3.4\",\"name\":\"rt-pod\"}"}])
        .to_string(),
    );
    write(
        &dir.join(format!(
            "storage/vfs-containers/{pod_id}/userdata/config.json"
        )),
        spec(
            &format!("/libpod_parent/libpod-{pod_id}"),
            json!({"io.container.manager": "libpod", "io.kubernetes.cri-o.TTY": "false",
                   "io.podman.annotations.privileged": "FALSE"}),
            false,
        ),
    );
    write(
        &dir.join("storage/overlay-containers/containers.json"),
        json!([{"id": crio_id, "names": ["k8s_db_db-0_data_uid_0"], "image": "i2",
                "metadata": "{\"pod-name\":\"db-0\"}"}])
        .to_string(),
    );
    write(
        &dir.join("storage/overlay-images/images.json"),
        r#"[{"id":"i2","names":["quay.io/data/postgres:16"]}]"#,
    );
    write(
        &dir.join(format!(
            "run-storage/overlay-containers/{crio_id}/userdata/config.json"
        )),
        spec(
            &format!(
                "kubepods-burstable-pod{}.slice:crio:{crio_id}",
                UID.replace('-', "_")
            ),
            json!({"io.kubernetes.cri-o.ContainerType": "container",
                   "io.kubernetes.cri-o.SandboxID": "s",
                   "io.kubernetes.container.name": "db",
                   "io.kubernetes.pod.name": "db-0",
                   "io.kubernetes.pod.namespace": "data",
                   "io.kubernetes.cri-o.ImageName": "quay.io/data/postgres:16"}),
            true,
        ),
    );
    // LXC, one plain and one with an id map.
    write(
        &dir.join("lxc/box/config"),
        "lxc.uts.name = box\nlxc.net.0.type = empty\n",
    );
    write(
        &dir.join("lxc/userns/config"),
        "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n",
    );
    // systemd-nspawn, and a VM that is not a container.
    write(
        &dir.join("machines/deb"),
        "NAME=deb\nSCOPE=machine-deb.scope\nSERVICE=systemd-nspawn\nCLASS=container\nROOT=/var/lib/machines/deb\n",
    );
    write(
        &dir.join("machines/vm1"),
        "NAME=vm1\nCLASS=vm\nSCOPE=machine-qemu-vm1.scope\n",
    );
    roots
}

#[test]
fn every_runtime_by_cgroup_path() {
    let t = tempfile::tempdir().unwrap();
    let roots = every_runtime(t.path());
    let state = RuntimeState::new(roots);
    let h = state.handle();
    let pod_id = "b".repeat(64);
    let crio_id = "c".repeat(64);
    // (cgroup path, id, runtime, name, image, tag, privileged, k8s ns, pod)
    type Row<'a> = (
        String,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<bool>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let table: Vec<Row> = vec![
        (
            "/default/web".into(),
            "web",
            "containerd",
            Some("web"),
            None,
            None,
            Some(true),
            None,
            None,
        ),
        // Three levels below the container's cgroup.
        (
            "/default/web/init.scope/a/b".into(),
            "web",
            "containerd",
            Some("web"),
            None,
            None,
            Some(true),
            None,
            None,
        ),
        (
            format!("/kubepods/besteffort/pod{UID}/{ID2}"),
            ID2,
            "containerd",
            Some("api"),
            Some("registry.local/shop/api"),
            Some("2.1"),
            Some(false),
            Some("shop"),
            Some("shop-api-7d9"),
        ),
        (
            format!("/docker/{ID}"),
            ID,
            "docker",
            Some("web-1"),
            Some("local/sshbox"),
            Some("1"),
            Some(true),
            None,
            None,
        ),
        (
            format!("/libpod_parent/libpod-{pod_id}"),
            &pod_id,
            "podman",
            Some("rt-pod"),
            Some("localhost/rtbox"),
            Some("3.4"),
            Some(false),
            None,
            None,
        ),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-{crio_id}.scope",
                UID.replace('-', "_")
            ),
            &crio_id,
            "cri-o",
            Some("db"),
            Some("quay.io/data/postgres"),
            Some("16"),
            Some(true),
            Some("data"),
            Some("db-0"),
        ),
        (
            "/lxc.payload.box/.lxc".into(),
            "box",
            "lxc",
            Some("box"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            "/lxc.payload.userns".into(),
            "userns",
            "lxc",
            Some("userns"),
            None,
            None,
            Some(false),
            None,
            None,
        ),
        (
            "/machine.slice/machine-deb.scope".into(),
            "deb",
            "systemd-nspawn",
            Some("deb"),
            Some("deb"),
            None,
            None,
            None,
            None,
        ),
    ];
    for (path, id, rt, name, image, tag, privileged, ns, pod) in table {
        let i = h
            .container_of(path.as_bytes())
            .unwrap_or_else(|| panic!("{path}"));
        assert_eq!(i.reference.id, id, "{path}");
        assert_eq!(i.reference.runtime.as_str(), rt, "{path}");
        assert_eq!(i.name.as_deref(), name, "{path}");
        assert_eq!(i.image_name.as_deref(), image, "{path}");
        assert_eq!(i.image_tag.as_deref(), tag, "{path}");
        assert_eq!(i.privileged, privileged, "{path}");
        assert_eq!(i.orchestrator_namespace.as_deref(), ns, "{path}");
        assert_eq!(i.resource_name.as_deref(), pod, "{path}");
        let k8s = ns.is_some();
        assert_eq!(i.orchestrator_type, k8s.then_some("kubernetes"), "{path}");
        assert_eq!(i.resource_type, k8s.then_some("pod"), "{path}");
        assert_eq!(
            i.cluster_name.as_deref(),
            k8s.then_some("prod-eu"),
            "{path}"
        );
    }
    // Host cgroups, look-alikes and the VM are no container.
    let h2 = h.clone();
    for path in [
        "/",
        "/system.slice/ssh.service",
        "/default",
        "/default/webx",
        "/system.slice/web",
        "/machine.slice/machine-qemu-vm1.scope",
        "/libpod_parent/conmon",
    ] {
        assert!(h2.lookup(path.as_bytes()).is_none(), "{path}");
    }
    let s = h.stats();
    assert_eq!(s.entries, 8, "{s:?}");
    assert_eq!(s.malformed, 0, "{s:?}");
    assert!(s.misses >= 7 && s.index_hits >= 9, "{s:?}");
}

#[test]
fn describe_pattern_found_containers() {
    let t = tempfile::tempdir().unwrap();
    let roots = every_runtime(t.path());
    // Without an index: the direct readers.
    for (rt, id, name) in [
        (Runtime::Docker, ID.to_string(), "web-1"),
        (Runtime::Containerd, ID2.to_string(), "api"),
        (Runtime::Podman, "b".repeat(64), "rt-pod"),
        (Runtime::CriO, "c".repeat(64), "db"),
        (Runtime::Lxc, "box".into(), "box"),
        (Runtime::SystemdNspawn, "deb".into(), "deb"),
    ] {
        let mut i = ContainerInfo::bare(reference(&id, rt, None));
        let out = enrich(&roots, &mut i);
        assert!(out.found && out.malformed == 0, "{rt:?}");
        assert_eq!(i.name.as_deref(), Some(name), "{rt:?}");
    }
    // Through the index.
    let state = RuntimeState::new(roots);
    let i = state
        .handle()
        .describe(&reference(ID, Runtime::Docker, None));
    assert_eq!(i.privileged, Some(true));
    assert_eq!(i.image_tag.as_deref(), Some("1"));
}

#[test]
fn new_task_found_by_probe_before_any_rescan() {
    let t = tempfile::tempdir().unwrap();
    let roots = StateRoots::under(t.path());
    let state = RuntimeState::new(roots);
    let h = state.handle();
    assert!(h.container_of(b"/default/late").is_none());
    // The task appears after the scan: the next lookup probes its directory.
    task(
        t.path(),
        "containerd",
        "default",
        "late",
        &spec("/default/late", json!({}), false),
    );
    task(
        t.path(),
        "containerd",
        "k8s.io",
        ID,
        &spec(&format!("/kubepods/pod{UID}/{ID}"), json!({}), false),
    );
    // A task whose spec puts it elsewhere is not this cgroup's container.
    task(
        t.path(),
        "containerd",
        "default",
        "moved",
        &spec("/custom/moved", json!({}), false),
    );
    let i = h.container_of(b"/default/late/sub").unwrap();
    assert_eq!(
        (i.reference.id.as_str(), i.name.as_deref()),
        ("late", Some("late"))
    );
    let i = h
        .container_of(format!("/kubepods/pod{UID}/{ID}").as_bytes())
        .unwrap();
    assert_eq!(i.reference.pod_uid.as_deref(), Some(UID));
    assert_eq!(i.name, None);
    assert!(h.container_of(b"/default/moved").is_none());
    let s = h.stats();
    assert_eq!((s.probe_hits, s.entries), (2, 0), "{s:?}");
    // The custom cgroup is known after a rescan, and the generation tells.
    let g = h.generation();
    state.refresh();
    assert!(h.generation() > g);
    // A rescan that finds the same containers leaves it, so cached misses stay cached.
    let g = h.generation();
    state.refresh();
    assert_eq!(
        h.generation(),
        g,
        "nothing changed, yet the generation moved"
    );
    assert_eq!(
        h.container_of(b"/custom/moved").unwrap().reference.id,
        "moved"
    );
    assert_eq!(h.stats().entries, 3);
}

#[test]
fn background_refresh_sees_new_containers() {
    let t = tempfile::tempdir().unwrap();
    let cfg = RefreshConfig {
        period: std::time::Duration::from_millis(20),
        ..RefreshConfig::default()
    };
    let state = RuntimeState::start(StateRoots::under(t.path()), cfg).unwrap();
    let h = state.handle();
    fs::create_dir_all(t.path().join("containerd").join(containerd::TASK_DIR)).unwrap();
    task(
        t.path(),
        "containerd",
        "default",
        "bg",
        &spec("/elsewhere/bg", json!({}), false),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.stats().entries == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no rescan: {:?}",
            h.stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(h.container_of(b"/elsewhere/bg").unwrap().reference.id, "bg");
    drop(state); // joins the thread
}

#[test]
fn malformed_oversized_and_missing_state_is_counted_not_fatal() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let roots = StateRoots::under(dir);
    task(dir, "containerd", "default", "bad", "{not json\u{1}");
    task(dir, "containerd", "default", "array", "[1,2]");
    let big = vec![b' '; (MAX_STATE_FILE + 1) as usize];
    write(
        &dir.join("containerd")
            .join(containerd::TASK_DIR)
            .join("default/big/config.json"),
        &big,
    );
    write(
        &dir.join(format!("docker/containers/{ID}/config.v2.json")),
        b"\xff\xfe",
    );
    write(
        &dir.join("storage/overlay-containers/containers.json"),
        "{\"not\":\"a list\"}",
    );
    write(&dir.join("lxc/bin/config"), b"lxc.idmap = \xff\xfe");
    write(&dir.join("machines/m"), "garbage without equals");
    let state = RuntimeState::new(roots.clone());
    let h = state.handle();
    let s = h.stats();
    assert!(s.malformed >= 5, "{s:?}");
    // A spec that parses but says nothing is a container with empty fields.
    let i = h.container_of(b"/default/array");
    assert!(i.is_none(), "no cgroupsPath, so no cgroup to index: {i:?}");
    for p in ["/default/bad", "/default/big", &format!("/docker/{ID}")] {
        assert!(h.container_of(p.as_bytes()).is_none(), "{p}");
    }
    // Pattern-found containers with broken state keep their bare reference.
    for (rt, id) in [
        (Runtime::Docker, ID),
        (Runtime::Containerd, "bad"),
        (Runtime::CriO, ID),
    ] {
        let bare = ContainerInfo::bare(reference(id, rt, None));
        let mut i = bare.clone();
        let out = enrich(&roots, &mut i);
        assert!(!out.found, "{rt:?}");
        assert_eq!(i, bare, "{rt:?}");
    }
    let mut i = ContainerInfo::bare(reference(ID, Runtime::Docker, None));
    assert_eq!(enrich(&roots, &mut i).malformed, 1);
    // Nothing at all: empty, no error, nothing counted.
    let empty = tempfile::tempdir().unwrap();
    let state = RuntimeState::new(StateRoots::under(empty.path()));
    assert_eq!(state.handle().stats().malformed, 0);
    for rt in [
        Runtime::Docker,
        Runtime::Podman,
        Runtime::Containerd,
        Runtime::CriO,
        Runtime::Lxc,
        Runtime::SystemdNspawn,
    ] {
        let mut i = ContainerInfo::bare(reference(ID, rt, Some(UID.into())));
        let before = i.clone();
        assert_eq!(
            enrich(&StateRoots::under(empty.path()), &mut i),
            EnrichOutcome::default()
        );
        assert_eq!(i, before);
    }
}

#[test]
fn hostile_ids_and_paths_do_not_escape_the_roots() {
    let t = tempfile::tempdir().unwrap();
    let roots = StateRoots::under(t.path());
    write(
        &t.path().join("secret/config.v2.json"),
        r#"{"Name":"/leak"}"#,
    );
    for id in ["../secret", "..", "", "a/b", ".hidden"] {
        for rt in [
            Runtime::Docker,
            Runtime::Lxc,
            Runtime::SystemdNspawn,
            Runtime::Podman,
            Runtime::Containerd,
        ] {
            let mut i = ContainerInfo::bare(reference(id, rt, None));
            assert!(!enrich(&roots, &mut i).found, "{id} {rt:?}");
        }
    }
    let state = RuntimeState::new(roots);
    let h = state.handle();
    let long = format!("/{}", "x/".repeat(10_000));
    for p in [
        &b"/../../etc"[..],
        b"\xff\xfe/\x00",
        long.as_bytes(),
        b"",
        b"////",
    ] {
        assert!(h.container_of(p).is_none());
    }
}

#[test]
fn kubernetes_pods_from_log_dirs_and_docker_labels() {
    let t = tempfile::tempdir().unwrap();
    let roots = StateRoots::under(t.path());
    fs::create_dir_all(
        t.path()
            .join("pods/kube-system_coredns-5d78c9869d-abcde_99999999-2222-3333-4444-555555555555"),
    )
    .unwrap();
    fs::create_dir_all(t.path().join(format!("pods/shop_web-6f7b9_{UID}/web"))).unwrap();
    let mut i = ContainerInfo::bare(reference(ID, Runtime::Containerd, Some(UID.into())));
    assert!(enrich(&roots, &mut i).found);
    assert_eq!(i.orchestrator_namespace.as_deref(), Some("shop"));
    assert_eq!(i.resource_name.as_deref(), Some("web-6f7b9"));
    assert_eq!(
        (i.resource_type, i.orchestrator_type),
        (Some("pod"), Some("kubernetes"))
    );
    write(
        &t.path()
            .join(format!("docker/containers/{ID}/config.v2.json")),
        r#"{"Name":"/k8s_app","Config":{"Image":"app","Labels":{"io.kubernetes.pod.namespace":"prod","io.kubernetes.pod.name":"app-7d9"}}}"#,
    );
    let mut i = ContainerInfo::bare(reference(ID, Runtime::Docker, None));
    enrich(&roots, &mut i);
    assert_eq!(i.orchestrator_namespace.as_deref(), Some("prod"));
    assert_eq!(i.resource_name.as_deref(), Some("app-7d9"));
    assert_eq!(i.privileged, None, "no hostconfig.json: unknown");
}
