//! Table-driven tests over real cgroup paths of each runtime (as seen in `/proc/<pid>/cgroup`
//! on hosts running them), plus hostile input.

use super::*;

const ID: &str = "3f1c9b5e2a7d4c8b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";
const POD: &str = "6a0f9c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
const POD_US: &str = "6a0f9c3e_1b2d_4e5f_8a9b_0c1d2e3f4a5b";

fn p(s: &str) -> String {
    s.replace("<ID>", ID)
        .replace("<POD>", POD)
        .replace("<POD_>", POD_US)
}

#[test]
fn real_paths() {
    use Runtime::*;
    // (path, expected id (None = host), runtime, pod uid expected)
    let table: &[(&str, Option<&str>, Option<Runtime>, bool)] = &[
        // docker, cgroupfs driver
        ("/docker/<ID>", Some(ID), Some(Docker), false),
        // docker, systemd driver
        (
            "/system.slice/docker-<ID>.scope",
            Some(ID),
            Some(Docker),
            false,
        ),
        // docker running systemd inside (nested init.scope)
        (
            "/system.slice/docker-<ID>.scope/init.scope",
            Some(ID),
            Some(Docker),
            false,
        ),
        // containerd CRI, systemd driver
        (
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<POD_>.slice/cri-containerd-<ID>.scope",
            Some(ID),
            Some(Containerd),
            true,
        ),
        (
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<POD_>.slice/cri-containerd-<ID>.scope",
            Some(ID),
            Some(Containerd),
            true,
        ),
        // guaranteed QoS (no qos slice)
        (
            "/kubepods.slice/kubepods-pod<POD_>.slice/cri-containerd-<ID>.scope",
            Some(ID),
            Some(Containerd),
            true,
        ),
        // containerd's literal systemd notation in a cgroupfs path
        (
            "/kubepods-besteffort-pod<POD_>.slice:cri-containerd:<ID>",
            Some(ID),
            Some(Containerd),
            true,
        ),
        (
            "/system.slice/containerd.service/kubepods-burstable-pod<POD_>.slice:cri-containerd:<ID>",
            Some(ID),
            Some(Containerd),
            true,
        ),
        // kubepods, cgroupfs driver
        (
            "/kubepods/besteffort/pod<POD>/<ID>",
            Some(ID),
            Some(Containerd),
            true,
        ),
        (
            "/kubepods/burstable/pod<POD>/<ID>",
            Some(ID),
            Some(Containerd),
            true,
        ),
        ("/kubepods/pod<POD>/<ID>", Some(ID), Some(Containerd), true),
        // the pod cgroup itself (pause-less sandbox dir) is not a container
        ("/kubepods/besteffort/pod<POD>", None, None, false),
        // nerdctl / plain containerd
        (
            "/system.slice/nerdctl-<ID>.scope",
            Some(ID),
            Some(Containerd),
            false,
        ),
        // CRI-O
        (
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<POD_>.slice/crio-<ID>.scope",
            Some(ID),
            Some(CriO),
            true,
        ),
        (
            "/kubepods/besteffort/pod<POD>/crio-<ID>",
            Some(ID),
            Some(CriO),
            true,
        ),
        (
            "/kubepods-burstable-pod<POD_>.slice:crio:<ID>",
            Some(ID),
            Some(CriO),
            true,
        ),
        // CRI-O's conmon is on the host
        (
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<POD_>.slice/crio-conmon-<ID>.scope",
            None,
            None,
            false,
        ),
        // podman
        (
            "/machine.slice/libpod-<ID>.scope",
            Some(ID),
            Some(Podman),
            false,
        ),
        (
            "/machine.slice/libpod-<ID>.scope/container",
            Some(ID),
            Some(Podman),
            false,
        ),
        ("/libpod_parent/libpod-<ID>", Some(ID), Some(Podman), false),
        (
            "/libpod_parent/libpod-payload-<ID>",
            Some(ID),
            Some(Podman),
            false,
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<ID>.scope",
            Some(ID),
            Some(Podman),
            false,
        ),
        // podman's conmon is on the host
        ("/libpod_parent/conmon", None, None, false),
        ("/machine.slice/libpod-conmon-<ID>.scope", None, None, false),
        // LXC
        ("/lxc/web01", Some("web01"), Some(Lxc), false),
        ("/lxc.payload.web01", Some("web01"), Some(Lxc), false),
        (
            "/lxc.payload.web01/system.slice/cron.service",
            Some("web01"),
            Some(Lxc),
            false,
        ),
        ("/lxc.payload/web01", Some("web01"), Some(Lxc), false),
        ("/lxc.monitor.web01", None, None, false),
        // docker inside an LXC container: innermost wins
        (
            "/lxc.payload.web01/system.slice/docker-<ID>.scope",
            Some(ID),
            Some(Docker),
            false,
        ),
        // systemd-nspawn
        (
            "/machine.slice/machine-debian.scope",
            Some("debian"),
            Some(SystemdNspawn),
            false,
        ),
        (
            "/machine.slice/machine-my\\x2dbox.scope/payload",
            Some("my-box"),
            Some(SystemdNspawn),
            false,
        ),
        // libvirt VMs are not containers
        (
            "/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope",
            None,
            None,
            false,
        ),
        (
            "/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt/emulator",
            None,
            None,
            false,
        ),
        // host processes
        ("/", None, None, false),
        ("", None, None, false),
        ("/init.scope", None, None, false),
        ("/system.slice/sshd.service", None, None, false),
        ("/system.slice/docker.service", None, None, false),
        ("/system.slice/containerd.service", None, None, false),
        (
            "/user.slice/user-0.slice/session-3.scope",
            None,
            None,
            false,
        ),
        (
            "/kubepods.slice/kubepods-besteffort.slice",
            None,
            None,
            false,
        ),
        // near misses: wrong id length, non-hex
        ("/docker/3f1c9b5e2a7d", None, None, false),
        (
            "/system.slice/docker-zz1c9b5e2a7d4c8b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7.scope",
            None,
            None,
            false,
        ),
        ("/some/<ID>", None, None, false),
        // --- whole ancestry: any component may be the container's cgroup ---
        // a process three levels below its container's cgroup
        ("/docker/<ID>/a/b/c", Some(ID), Some(Docker), false),
        (
            "/system.slice/docker-<ID>.scope/system.slice/cron.service",
            Some(ID),
            Some(Docker),
            false,
        ),
        (
            "/kubepods/burstable/pod<POD>/<ID>/init.scope/x",
            Some(ID),
            Some(Containerd),
            true,
        ),
        // LXC: `lxc-attach` runs its command in the `.lxc` sub-cgroup
        ("/lxc.payload.web01/.lxc", Some("web01"), Some(Lxc), false),
        (
            "/lxc.payload.web01/init.scope/a/b",
            Some("web01"),
            Some(Lxc),
            false,
        ),
        // containerd's own layout (ctr, nerdctl with cgroupfs): /<namespace>/<id>
        ("/default/sshbox", Some("sshbox"), Some(Containerd), false),
        (
            "/default/web-1.v2_x",
            Some("web-1.v2_x"),
            Some(Containerd),
            false,
        ),
        (
            "/default/sshbox/sub/deeper",
            Some("sshbox"),
            Some(Containerd),
            false,
        ),
        ("/k8s.io/<ID>", Some(ID), Some(Containerd), false),
        ("/k8s.io/<ID>/init.scope", Some(ID), Some(Containerd), false),
        // ...only at the root, and only valid ids
        ("/k8s.io/sshbox", None, None, false),
        ("/system.slice/default/sshbox", None, None, false),
        ("/system.slice/k8s.io/<ID>", None, None, false),
        ("/default", None, None, false),
        ("/default/-bad", None, None, false),
        ("/default/a..b", None, None, false),
        // other containerd namespaces: the runtime state's to say
        ("/tenant-a/sshbox", None, None, false),
        // docker-in-docker (cgroupfs inside cgroupfs): the inner container
        (
            "/docker/<ID>/docker/0000000000000000000000000000000000000000000000000000000000000abc",
            Some("0000000000000000000000000000000000000000000000000000000000000abc"),
            Some(Docker),
            false,
        ),
        // kind: a Kubernetes node in docker, its pods inside (innermost: the pod container)
        (
            "/docker/0000000000000000000000000000000000000000000000000000000000000abc/kubepods/besteffort/pod<POD>/<ID>",
            Some(ID),
            Some(Containerd),
            true,
        ),
        // containerd inside an LXC container: the nested runtime's root is the outer cgroup
        (
            "/lxc.payload.web01/default/inner",
            Some("inner"),
            Some(Containerd),
            false,
        ),
        (
            "/lxc.payload.web01/lxc.payload.nested",
            Some("nested"),
            Some(Lxc),
            false,
        ),
        // but not below a host unit
        ("/system.slice/lxc.payload.web01", None, None, false),
        ("/system.slice/foo.service/lxc/web01", None, None, false),
        // a runtime's monitor inside an outer container belongs to the outer one
        (
            "/lxc.payload.web01/system.slice/crio-conmon-<ID>.scope",
            Some("web01"),
            Some(Lxc),
            false,
        ),
        // systemd-nspawn's payload and its supervisor (the nspawn process, on the host)
        (
            "/machine.slice/machine-debian.scope/payload/system.slice/cron.service",
            Some("debian"),
            Some(SystemdNspawn),
            false,
        ),
        (
            "/machine.slice/machine-debian.scope/supervisor",
            None,
            None,
            false,
        ),
        // nspawn scopes outside a slice are not registered machines
        ("/machine-debian.scope", None, None, false),
        // rootless docker and podman: their containers' scopes sit under the user's slice
        (
            "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-<ID>.scope",
            Some(ID),
            Some(Docker),
            false,
        ),
        // look-alike host units
        ("/system.slice/docker-<ID>.service", None, None, false),
        ("/system.slice/docker-registry.service", None, None, false),
        ("/system.slice/lxc.service", None, None, false),
        ("/system.slice/lxc-net.service", None, None, false),
        ("/system.slice/machine-debian.service", None, None, false),
        ("/system.slice/crio.service", None, None, false),
        ("/system.slice/podman.service", None, None, false),
        ("/libpod_parent/conmon/x", None, None, false),
        ("/lxc.monitor.web01/x", None, None, false),
        ("/lxc.monitor/web01", None, None, false),
        ("/lxc/lxc.monitor.web01", None, None, false),
    ];
    for (path, id, runtime, has_pod) in table {
        let path = p(path);
        let got = from_path(path.as_bytes());
        assert_eq!(got.as_ref().map(|c| c.id.as_str()), *id, "id for {path}");
        assert_eq!(
            got.as_ref().map(|c| c.runtime),
            *runtime,
            "runtime for {path}"
        );
        assert_eq!(
            got.as_ref().and_then(|c| c.pod_uid.as_deref()),
            if *has_pod { Some(POD) } else { None },
            "pod uid for {path}"
        );
    }
}

/// A partial path (the kernel's walk stopped early: no leading `/`): self-describing names
/// still resolve, root-anchored rules do not (the first component is not the root's child).
#[test]
fn partial_paths() {
    use Runtime::*;
    let table: &[(&str, Option<Runtime>)] = &[
        ("docker/<ID>", Some(Docker)),
        ("system.slice/docker-<ID>.scope/a/b", Some(Docker)),
        (
            "kubepods-besteffort-pod<POD_>.slice/cri-containerd-<ID>.scope",
            Some(Containerd),
        ),
        (
            "containerd.service/kubepods-pod<POD_>.slice:cri-containerd:<ID>",
            Some(Containerd),
        ),
        ("pod<POD>/<ID>", Some(Containerd)),
        ("kubepods-pod<POD_>.slice/crio-<ID>.scope", Some(CriO)),
        ("kubepods-pod<POD_>.slice/crio-conmon-<ID>.scope", None),
        ("libpod-<ID>.scope/container", Some(Podman)),
        ("libpod_parent/libpod-<ID>", Some(Podman)),
        ("libpod_parent/conmon", None),
        ("machine.slice/machine-c1.scope", Some(SystemdNspawn)),
        // root-anchored layouts cannot be told from a suffix
        ("lxc.payload.c1", None),
        ("default/c1", None),
        ("k8s.io/<ID>", None),
        ("lxc/c1", None),
        ("system.slice/cron.service", None),
        ("", None),
    ];
    for (path, runtime) in table {
        let path = p(path);
        let got = from_path(path.as_bytes());
        assert_eq!(got.as_ref().map(|c| c.runtime), *runtime, "{path}");
        if let Some(c) = got
            && !matches!(c.runtime, Lxc | SystemdNspawn)
        {
            assert_eq!(c.id, ID, "{path}");
        }
    }
}

/// `from_components` is `from_path` on a root-relative path.
#[test]
fn components_are_root_relative() {
    let path = p("/lxc.payload.web01/.lxc");
    let comps: Vec<&[u8]> = path
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(from_components(&comps), from_path(path.as_bytes()));
    assert_eq!(from_components(&comps).unwrap().id, "web01");
}

#[test]
fn upper_case_ids_are_lowered() {
    let up = format!("/docker/{}", ID.to_ascii_uppercase());
    assert_eq!(from_path(up.as_bytes()).unwrap().id, ID);
}

/// Hostile names never panic and invalid UTF-8 names are rendered lossily.
#[test]
fn hostile_bytes() {
    let lxc = from_path(b"/lxc/we\xffb\n01").unwrap();
    assert_eq!(lxc.id, "we\u{fffd}b\n01");
    let mut long = b"/lxc.payload.".to_vec();
    long.extend(std::iter::repeat_n(b'a', 10_000));
    assert_eq!(from_path(&long), None);
    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        junk.push((x >> 16) as u8);
    }
    for w in junk.chunks(97) {
        let _ = from_path(w);
        let _ = from_path(&w[w.len() / 2..]);
        let mut rooted = b"/".to_vec();
        rooted.extend_from_slice(w);
        let _ = from_path(&rooted);
    }
    for s in [
        &b"machine-\\x.scope"[..],
        b"machine-\\x2.scope",
        b"machine-\\",
        b"a:b:c",
        b"::",
        b":cri-containerd:",
        b"pod",
    ] {
        let _ = from_path(s);
    }
    assert_eq!(
        from_path(b"/machine.slice/machine-\\xZZ.scope").unwrap().id,
        "\\xZZ"
    );
}
