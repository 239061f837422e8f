//! Runtime state read from real engines on this machine, through the library API
//! (`detector::container::state`): private dockerd, containerd (`ctr run` in `default` and
//! `k8s.io`), podman and LXC, each started here with its own roots and removed after.
//! Privileged detection from real state: `docker create --privileged`, `ctr run --privileged`,
//! `podman create --privileged`; the plain cases must say `false`.
//!
//! Root tests; run under the machine-wide lock:
//! `flock /tmp/detector-e2e.lock cargo test -p detector --test runtime_state -- --test-threads=1`.

#[path = "common/runtime_fixtures.rs"]
mod runtime_fixtures;
#[path = "common/wait.rs"]
mod wait;

use std::process::Command;

use detector::container::state::{RuntimeState, StateRoots};
use detector::container::{ContainerInfo, ContainerRef, Runtime};
use detector::testsupport::{Need, require};
use runtime_fixtures::*;

fn roots(dir: &std::path::Path) -> StateRoots {
    let mut r = StateRoots::under(dir);
    r.cluster_name = Some("test-cluster".into());
    r
}

fn docker_ref(id: &str) -> ContainerRef {
    ContainerRef {
        id: id.into(),
        runtime: Runtime::Docker,
        pod_uid: None,
    }
}

#[test]
fn docker_privileged_plain_names_and_images() {
    if !require(
        "docker_privileged_plain_names_and_images",
        &[Need::Root, Need::Tool("dockerd"), Need::Tool("docker")],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(t.path());
    let mut d = Dockerd::start("rstate");
    let tar = t.path().join("rootfs.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        "tar",
    );
    let tar_s = tar.to_string_lossy().into_owned();
    run(
        &mut d.cli(&["import", &tar_s, "local/rtbox:1.2"]),
        "docker import",
    );
    let priv_id = d.create(&[
        "--privileged",
        "--network",
        "none",
        "--name",
        "rs-priv",
        "local/rtbox:1.2",
        "/bin/busybox",
        "sleep",
        "600",
    ]);
    let plain_id = d.create(&[
        "--network",
        "none",
        "--name",
        "rs-plain",
        "local/rtbox:1.2",
        "/bin/busybox",
        "sleep",
        "600",
    ]);
    run(&mut d.cli(&["start", &plain_id]), "docker start");
    let pid: u32 = run(
        &mut d.cli(&["inspect", "-f", "{{.State.Pid}}", &plain_id]),
        "inspect",
    )
    .parse()
    .unwrap();

    let mut r = roots(t.path());
    r.docker = vec![d.data_root.clone()];
    r.containerd = vec![d.exec_root.join("containerd/daemon")];
    // Both the direct readers and the index.
    let state = RuntimeState::new(r.clone());
    let h = state.handle();
    for (id, name, privileged) in [(&priv_id, "rs-priv", true), (&plain_id, "rs-plain", false)] {
        let mut direct = ContainerInfo::bare(docker_ref(id));
        assert!(detector::container::state::enrich(&r, &mut direct).found);
        let indexed = h.describe(&docker_ref(id));
        for i in [&direct, &indexed] {
            assert_eq!(i.name.as_deref(), Some(name));
            assert_eq!(i.image_name.as_deref(), Some("local/rtbox"));
            assert_eq!(i.image_tag.as_deref(), Some("1.2"));
            assert_eq!(i.privileged, Some(privileged), "{name}");
            assert_eq!(i.orchestrator_type, None);
        }
    }
    // The running one, from its real cgroup (via the index: docker's store and its
    // containerd `moby` task).
    let cg = cgroup_of(pid);
    let i = h
        .container_of(cg.as_bytes())
        .unwrap_or_else(|| panic!("{cg}"));
    assert_eq!(i.reference.id, plain_id);
    assert_eq!(i.reference.runtime, Runtime::Docker);
    assert_eq!(i.privileged, Some(false));
    assert_eq!(h.stats().malformed, 0, "{:?}", h.stats());
}

#[test]
fn containerd_ctr_default_and_k8s_first_exec_and_privileged() {
    if !require(
        "containerd_ctr_default_and_k8s_first_exec_and_privileged",
        &[
            Need::Root,
            Need::Tool("containerd"),
            Need::Tool("ctr"),
            Need::Tool("runc"),
        ],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(t.path());
    let mut c = Containerd::start("rstate");
    let mut r = roots(t.path());
    r.containerd = vec![c.state.clone()];
    // The state is read before any task exists: what follows is found by the miss probe,
    // as the first exec of a brand-new container is.
    let state = RuntimeState::new(r);
    let h = state.handle();
    assert_eq!(h.stats().entries, 0);

    let web = c.run_task("default", "rs-web", &[], &rootfs);
    let privileged = c.run_task("default", "rs-priv", &["--privileged"], &rootfs);
    let id = "ab".repeat(32);
    let uid = "11111111-2222-3333-4444-555555555555";
    let cgroup = format!("/kubepods/besteffort/pod{uid}/{id}");
    let k8s = c.run_task(
        "k8s.io",
        &id,
        &[
            "--cgroup",
            &cgroup,
            "--annotation",
            "io.kubernetes.cri.container-type=container",
            "--annotation",
            "io.kubernetes.cri.container-name=api",
            "--annotation",
            "io.kubernetes.cri.sandbox-name=shop-api-7d9",
            "--annotation",
            "io.kubernetes.cri.sandbox-namespace=shop",
            "--annotation",
            "io.kubernetes.cri.image-name=registry.local/shop/api:2.1",
        ],
        &rootfs,
    );
    assert_eq!(cgroup_of(web), "/default/rs-web");
    assert_eq!(cgroup_of(k8s), cgroup);

    let check = |h: &detector::container::StateHandle| {
        let i = h.container_of(cgroup_of(web).as_bytes()).expect("rs-web");
        assert_eq!(
            (i.reference.id.as_str(), i.name.as_deref()),
            ("rs-web", Some("rs-web"))
        );
        assert_eq!(i.reference.runtime, Runtime::Containerd);
        assert_eq!(i.privileged, Some(false));
        let i = h
            .container_of(cgroup_of(privileged).as_bytes())
            .expect("rs-priv");
        assert_eq!(i.privileged, Some(true), "ctr run --privileged");
        let i = h.container_of(cgroup_of(k8s).as_bytes()).expect("k8s");
        assert_eq!(i.reference.id, id);
        assert_eq!(i.reference.pod_uid.as_deref(), Some(uid));
        assert_eq!(i.name.as_deref(), Some("api"));
        assert_eq!(i.image_name.as_deref(), Some("registry.local/shop/api"));
        assert_eq!(i.image_tag.as_deref(), Some("2.1"));
        assert_eq!(i.orchestrator_namespace.as_deref(), Some("shop"));
        assert_eq!(i.resource_name.as_deref(), Some("shop-api-7d9"));
        assert_eq!(i.orchestrator_type, Some("kubernetes"));
        assert_eq!(i.cluster_name.as_deref(), Some("test-cluster"));
        // A host cgroup named like the task is not it.
        assert!(h.container_of(b"/system.slice/rs-web").is_none());
    };
    check(&h);
    let s = h.stats();
    assert!(s.probe_hits >= 3, "{s:?}");
    // And from the index after a scan.
    state.refresh();
    let before = h.stats().probes;
    check(&h);
    let s = h.stats();
    assert_eq!(s.entries, 3, "{s:?}");
    assert_eq!(
        s.probes,
        before + 1,
        "only the host look-alike probes: {s:?}"
    );
}

#[test]
fn podman_privileged_plain_names_and_images() {
    if !require(
        "podman_privileged_plain_names_and_images",
        &[Need::Root, Need::Tool("podman"), Need::Tool("runc")],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(t.path());
    let p = Podman::new("rstate");
    let tar = t.path().join("rootfs.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        "tar",
    );
    run(
        &mut p.cli(&["import", &tar.to_string_lossy(), "localhost/rtbox:3.4"]),
        "podman import",
    );
    let common = ["--network", "none", "--runtime", "runc"];
    let mut args = vec!["create", "--privileged", "--name", "rs-ppriv"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["localhost/rtbox:3.4", "/bin/busybox", "sleep", "600"]);
    let priv_id = run(&mut p.cli(&args), "podman create --privileged");
    // `init` writes the spec; the start itself may be refused here (root lacks
    // CAP_SYS_RESOURCE), the state stays.
    let _ = try_run(&mut p.cli(&["init", &priv_id]), "podman init");
    let mut args = vec!["run", "-d", "--name", "rs-pplain"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&[
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        "localhost/rtbox:3.4",
        "/bin/busybox",
        "sleep",
        "600",
    ]);
    let plain_id = run(&mut p.cli(&args), "podman run");
    let pid: u32 = run(
        &mut p.cli(&["inspect", "-f", "{{.State.Pid}}", &plain_id]),
        "inspect",
    )
    .parse()
    .unwrap();
    let mut r = roots(t.path());
    r.storage = vec![p.root.clone(), p.runroot.clone()];
    let state = RuntimeState::new(r);
    let h = state.handle();
    for (id, name, privileged) in [
        (&priv_id, "rs-ppriv", true),
        (&plain_id, "rs-pplain", false),
    ] {
        let i = h.describe(&ContainerRef {
            id: id.clone(),
            runtime: Runtime::Podman,
            pod_uid: None,
        });
        assert_eq!(i.name.as_deref(), Some(name));
        assert_eq!(i.image_name.as_deref(), Some("localhost/rtbox"));
        assert_eq!(i.image_tag.as_deref(), Some("3.4"));
        assert_eq!(i.privileged, Some(privileged), "{name}");
    }
    let cg = cgroup_of(pid);
    let i = h
        .container_of(cg.as_bytes())
        .unwrap_or_else(|| panic!("{cg}"));
    assert_eq!(
        (i.reference.id.as_str(), i.reference.runtime),
        (plain_id.as_str(), Runtime::Podman)
    );
}

#[test]
fn lxc_start_and_attach_cgroups() {
    if !require(
        "lxc_start_and_attach_cgroups",
        &[
            Need::Root,
            Need::Tool("lxc-create"),
            Need::Tool("lxc-start"),
        ],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let l = Lxc::create("rstate");
    run(l.cmd("lxc-start").arg("-d"), "lxc-start");
    let pid: u32 = wait::until(std::time::Duration::from_secs(30), "lxc init pid", || {
        try_run(l.cmd("lxc-info").arg("-pH"), "lxc-info")
            .ok()?
            .parse()
            .ok()
    });
    let mut r = roots(t.path());
    r.lxc = vec![l.path.clone()];
    let state = RuntimeState::new(r);
    let h = state.handle();
    let init_cg = cgroup_of(pid);
    assert_eq!(init_cg, format!("/lxc.payload.{}", l.name));
    for cg in [init_cg.clone(), format!("{init_cg}/.lxc")] {
        let i = h
            .container_of(cg.as_bytes())
            .unwrap_or_else(|| panic!("{cg}"));
        assert_eq!(i.reference.id, l.name);
        assert_eq!(i.reference.runtime, Runtime::Lxc);
        assert_eq!(i.name.as_deref(), Some(l.name.as_str()));
        // No id map: LXC's "privileged", which is not ECS's; unknown.
        assert_eq!(i.privileged, None);
    }
}
