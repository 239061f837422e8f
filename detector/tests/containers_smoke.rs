//! Proves the container test helpers (and the cgroup → container resolution) on real
//! containers: runc with docker- and kubepods-style cgroup paths, and podman.
//! Root tests: each starts with the prerequisite gate ([`detector::testsupport::require`]).

#[path = "common/containers.rs"]
mod containers;
#[path = "common/wait.rs"]
mod wait;

use std::path::Path;

use containers::{PodmanContainer, RuncContainer, hex_id};
use detector::container::{self, ContainerResolver, EnrichRoots, Runtime};
use detector::process::{ProcessTable, TableConfig};
use detector::testsupport::{Need, require};

/// The `0::` line of /proc/<pid>/cgroup.
fn cgroup_of(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string()
}

#[test]
fn runc_ssh_version_docker_cgroup() {
    if !require(
        "runc_ssh_version_docker_cgroup",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let id = hex_id();
    let mut c =
        RuncContainer::new(&["/usr/bin/ssh", "-V"], Some(&format!("/docker/{id}"))).unwrap();
    let out = c.run().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ssh -V in runc: {stderr}");
    assert!(stderr.starts_with("OpenSSH_"), "ssh -V printed {stderr:?}");
}

#[test]
fn runc_sshd_and_autossh_run() {
    if !require(
        "runc_sshd_and_autossh_run",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let mut c = RuncContainer::new(
        &["/usr/sbin/sshd", "-t"],
        Some(&format!("/docker/{}", hex_id())),
    )
    .unwrap();
    let out = c.run().unwrap();
    assert!(
        out.status.success(),
        "sshd -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = RuncContainer::new(&["/usr/bin/autossh", "-V"], None).unwrap();
    let out = c.run().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("autossh"),
        "autossh -V: {text}"
    );
}

/// A long-running container process sits in the cgroup runc was given, and the resolver
/// and the seeded process table attribute it, for each cgroupfs form runc accepts here.
#[test]
fn runc_long_running_cgroup_paths() {
    if !require(
        "runc_long_running_cgroup_paths",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let pod = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let pod_ = pod.replace('-', "_");
    let id = hex_id();
    let forms = [
        (format!("/docker/{id}"), Runtime::Docker),
        (
            format!("/kubepods/besteffort/pod{pod}/{id}"),
            Runtime::Containerd,
        ),
        (
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_}.slice/cri-containerd-{id}.scope"
            ),
            Runtime::Containerd,
        ),
    ];
    for (path, runtime) in forms {
        let mut c = RuncContainer::new(&["/bin/sleep", "30"], Some(&path)).unwrap();
        // Run as uid 100: `sshd` in the container's passwd (the host names 100 otherwise).
        c.edit_config(|cfg| cfg["process"]["user"]["uid"] = 100.into())
            .unwrap();
        let pid = c.start().unwrap();
        // `runc run -d` returns once the container exists; its init may still be
        // `runc:[2:INIT]` for a moment before it execs the entrypoint.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default() != b"sleep\n"
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let cg = cgroup_of(pid);
        assert_eq!(cg, path, "runc put the process in its cgroupsPath");
        let r = container::from_path(cg.as_bytes()).expect("attributed");
        assert_eq!((r.id.as_str(), r.runtime), (id.as_str(), runtime), "{path}");
        // A partial kernel path (its walk stopped early) with only the leaf and its parent
        // gives the same answer.
        let comps: Vec<&str> = path.rsplitn(3, '/').collect();
        let suffix = format!("{}/{}", comps[1], comps[0]);
        let by_names = container::from_path(suffix.as_bytes()).unwrap();
        assert_eq!(by_names.id, id);
        // Seeding finds the container's process with its container.
        let cfg = TableConfig {
            enrich: None,
            ..TableConfig::default()
        };
        let host = detector::host::HostInfo::collect(Path::new("/"));
        let mut t = ProcessTable::for_host(cfg, &host);
        t.seed_from_proc(Path::new("/proc")).unwrap();
        let snap = t
            .apply(&detector::event::ProcessEvent {
                kind: Some(detector::event::EventKind::Exit),
                tgid: pid,
                pid,
                // What the kernel would say; cgroup id 0 = "not known", keeps seeding's.
                uid: 100,
                euid: 100,
                ..Default::default()
            })
            .unwrap();
        // `sleep` is a busybox applet: the kernel's comm says sleep, the executable (and so
        // process.name, as Elastic Defend reports it) is busybox.
        assert_eq!(snap.subject.image.comm, b"sleep");
        assert_eq!(snap.subject.image.name, b"busybox");
        let sc = snap
            .container
            .as_ref()
            .expect("seeded container process attributed");
        assert_eq!(
            (sc.reference.id.as_str(), sc.reference.runtime),
            (id.as_str(), runtime)
        );
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(containers::cgroup2_root().join(path.trim_start_matches('/')))
            .unwrap()
            .ino();
        assert_eq!(
            snap.subject.cgroup_id, ino,
            "cgroup id = the cgroup directory's inode"
        );
        assert_eq!(snap.subject.creds.user.id, 100);
        assert_eq!(
            snap.subject.creds.user.name.as_deref(),
            Some("sshd"),
            "named by the container's passwd"
        );
        assert_eq!(snap.subject.vpid, 1);
        let e = snap.entry_leader.as_ref().expect("entry leader");
        assert_eq!(e.entry_type.as_str(), "container");
        assert_eq!(e.info.pid, pid);
        drop(c);
        // runc removed the container's cgroup; our guard removed the parents it created.
        assert!(
            !containers::cgroup2_root()
                .join(path.trim_start_matches('/'))
                .exists()
        );
    }
}

#[test]
fn podman_libpod() {
    if !require(
        "podman_libpod",
        &[Need::Root, Need::Tool("podman"), Need::Tool("runc")],
    ) {
        return;
    }
    let out = match PodmanContainer::run(&["/usr/bin/ssh", "-V"]) {
        Ok(o) => o,
        Err(e) => panic!("podman does not work here: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("OpenSSH_"),
        "podman ssh -V: {stderr}"
    );

    let (guard, id, pid) = PodmanContainer::start(&["/bin/sleep", "30"]).unwrap();
    let cg = cgroup_of(pid);
    let r = container::from_path(cg.as_bytes()).unwrap_or_else(|| panic!("not attributed: {cg}"));
    assert_eq!(
        (r.id.as_str(), r.runtime),
        (id.as_str(), Runtime::Podman),
        "{cg}"
    );
    // podman's own store names the container and its image.
    let mut res = ContainerResolver::new(8, Some(EnrichRoots::default()));
    let info = res.resolve_path(42, cg.as_bytes()).unwrap();
    assert_eq!(info.name.as_deref(), Some(guard.name.as_str()));
    assert_eq!(info.image_name.as_deref(), Some("localhost/detector-test"));
    assert_eq!(info.image_tag.as_deref(), Some("v1"));
    drop(guard);
}

/// The container helpers are bounded: a container whose process is deliberately stopped
/// (SIGSTOP, so `runc run` would wait for it for ever) makes `run_within` fail within its
/// bound, naming the container, instead of hanging the run; the guard then removes it.
#[test]
fn a_stopped_runc_container_fails_within_its_bound() {
    if !require(
        "a_stopped_runc_container_fails_within_its_bound",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let id = hex_id();
    // The init waits for a child that stops itself (pid 1 of a namespace ignores a
    // SIGSTOP from inside, its child does not).
    let mut c = RuncContainer::new(
        &["/bin/sh", "-c", "/bin/sh -c 'kill -STOP $$'; echo resumed"],
        Some(&format!("/docker/{id}")),
    )
    .unwrap();
    let bound = std::time::Duration::from_secs(3);
    let t0 = std::time::Instant::now();
    let err = c
        .run_within(bound)
        .expect_err("a stopped container completed");
    let took = t0.elapsed();
    assert!(err.contains("timed out") && err.contains(&c.id), "{err}");
    // The bound, plus killing and reaping runc (bounded too).
    assert!(
        took < bound + std::time::Duration::from_secs(15),
        "failed after {took:?}"
    );
    let name = c.id.clone();
    drop(c);
    assert!(
        wait::try_output_timeout(
            std::process::Command::new("runc").args(["state", &name]),
            wait::TOOL,
            "runc state"
        )
        .is_ok_and(|o| !o.status.success()),
        "container {name} still exists after its guard dropped"
    );
}

/// The same through podman: `podman start -a` of a container whose process stops itself
/// fails within its bound, and the container is removed.
#[test]
fn a_stopped_podman_container_fails_within_its_bound() {
    if !require(
        "a_stopped_podman_container_fails_within_its_bound",
        &[Need::Root, Need::Tool("runc"), Need::Tool("podman")],
    ) {
        return;
    }
    let bound = std::time::Duration::from_secs(5);
    let t0 = std::time::Instant::now();
    let err = PodmanContainer::run_with_id_within(
        &["/bin/sh", "-c", "/bin/sh -c 'kill -STOP $$'; echo resumed"],
        bound,
    )
    .expect_err("a stopped container completed");
    let took = t0.elapsed();
    assert!(
        err.contains("timed out") && err.contains("podman start -a"),
        "{err}"
    );
    // Image import (first use), create, the bound, and the kill.
    assert!(
        took < bound + std::time::Duration::from_secs(60),
        "failed after {took:?}"
    );
}
