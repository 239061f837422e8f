//! Process-table tests over synthetic kernel events, fixture `/proc` trees and the real one.

use std::path::Path;

use super::*;
use crate::event::{EventKind, ProcessEvent};

const HOST_PID_NS: u32 = 4_026_531_836;
const HOST_MNT_NS: u32 = 4_026_531_841;
const MS: u64 = 1_000_000;
const CID: &str = "4f3c2b1a09876543210fedcba9876543210fedcba9876543210fedcba9876543";

fn ids() -> IdContext {
    IdContext {
        boot_id: "6f1e2d3c-0000-4000-8000-00000000beef".into(),
        pid_ns_ino: HOST_PID_NS as u64,
        ticks_per_sec: 100,
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    t: ProcessTable,
}

fn table_with(max_processes: usize, grace: usize) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
    let cfg = TableConfig {
        max_processes,
        exited_grace: grace,
        proc_root: None,
        host_root: dir.path().to_path_buf(),
        cgroup_root: Some(dir.path().to_path_buf()),
        container_cache: 64,
        enrich: None,
        user_namespaces: 4,
        host_mnt_ns: Some(HOST_MNT_NS as u64),
        env_vars: super::EnvNames::new(&["LD_PRELOAD"]),
    };
    Fx {
        t: ProcessTable::new(cfg, ids()),
        _dir: dir,
    }
}

fn table() -> Fx {
    table_with(65_536, 1_024)
}

/// A host event; tweak fields with struct update syntax.
fn ev(kind: EventKind, tgid: u32, ppid: u32, start_ms: u64, comm: &str) -> ProcessEvent {
    ProcessEvent {
        kind: Some(kind),
        boot_ns: start_ms * MS + 1,
        pid: tgid,
        tgid,
        ppid,
        actor_pid: ppid,
        comm: comm.as_bytes().to_vec(),
        cgroup_id: 1,
        pid_ns_ino: HOST_PID_NS,
        mnt_ns_ino: HOST_MNT_NS,
        ns_pid: tgid,
        sid: ppid,
        start_boot_ns: start_ms * MS,
        ..Default::default()
    }
}

fn exec(tgid: u32, ppid: u32, start_ms: u64, exe: &str, args: &[&str]) -> ProcessEvent {
    let comm = exe.rsplit('/').next().unwrap();
    ProcessEvent {
        exe_path: exe.as_bytes().to_vec(),
        filename: exe.as_bytes().to_vec(),
        argv: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..ev(
            EventKind::Exec,
            tgid,
            ppid,
            start_ms,
            &comm[..comm.len().min(15)],
        )
    }
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn fork_exec_exit() {
    let mut f = table();
    let t = &mut f.t;
    let sh = t
        .apply(&ProcessEvent {
            uid: 1000,
            euid: 1000,
            gid: 1000,
            egid: 1000,
            ..exec(100, 1, 1_000, "/bin/bash", &["bash"])
        })
        .unwrap();
    assert_eq!(sh.kind, EventKind::Exec);
    assert_eq!(sh.subject.creds.user.name.as_deref(), Some("alice"));
    assert_eq!(sh.subject.creds.group.name.as_deref(), Some("alice"));

    let fork = t
        .apply(&ProcessEvent {
            uid: 1000,
            euid: 1000,
            sid: 1,
            ..ev(EventKind::Fork, 101, 100, 2_000, "bash")
        })
        .unwrap();
    assert_eq!(fork.kind, EventKind::Fork);
    assert_eq!(
        s(&fork.subject.image.executable),
        "/bin/bash",
        "fork carries the parent's image"
    );
    assert_eq!(fork.subject.image.args, vec![b"bash".to_vec()]);
    let parent = fork.parent.as_ref().unwrap();
    assert_eq!(
        (parent.pid, parent.entity_id.clone()),
        (100, sh.subject.entity_id.clone())
    );
    assert_eq!(
        fork.subject.parent.as_ref().unwrap().entity_id,
        sh.subject.entity_id
    );
    assert!(fork.previous.is_none());

    let args = ["ls", "-la", "/tmp/a b"];
    let ex = t
        .apply(&ProcessEvent {
            sid: 1,
            ..exec(101, 100, 2_000, "/usr/bin/ls", &args)
        })
        .unwrap();
    assert_eq!(
        ex.subject.entity_id, fork.subject.entity_id,
        "exec keeps the process identity"
    );
    assert_eq!(s(&ex.subject.image.executable), "/usr/bin/ls");
    assert_eq!(s(&ex.subject.image.name), "ls");
    assert_eq!(ex.subject.image.args_count(), 3);
    assert_eq!(s(&ex.subject.image.command_line()), "ls -la /tmp/a b");
    assert_eq!(s(&ex.previous.as_ref().unwrap().executable), "/bin/bash");
    assert_eq!(ex.parent.as_ref().unwrap().pid, 100);

    let end = t
        .apply(&ProcessEvent {
            exit_code: Some(2),
            boot_ns: 9_000 * MS,
            sid: 1,
            ..ev(EventKind::Exit, 101, 100, 2_000, "ls")
        })
        .unwrap();
    assert_eq!(end.kind, EventKind::Exit);
    assert_eq!(end.subject.exit_code, Some(2));
    assert_eq!(end.subject.end_boot_ns, Some(9_000 * MS));
    assert_eq!(s(&end.subject.image.executable), "/usr/bin/ls");
    assert_eq!(end.subject.entity_id, fork.subject.entity_id);
    let st = t.stats();
    assert_eq!((st.live, st.exited), (1, 1));
    assert_eq!(t.index_sizes().0, 1);
    assert_eq!(t.index_sizes().3, 1);
    assert!(
        t.apply(&ProcessEvent {
            kind: None,
            ..Default::default()
        })
        .is_none()
    );
}

#[test]
fn pid_reuse_never_mixes_processes() {
    let mut f = table();
    let t = &mut f.t;
    t.apply(&exec(10, 1, 100, "/usr/sbin/cron", &["cron"]));
    t.apply(&exec(11, 1, 100, "/usr/sbin/nginx", &["nginx"]));
    let a = t
        .apply(&ev(EventKind::Fork, 200, 10, 1_000, "cron"))
        .unwrap();
    t.apply(&ev(EventKind::Exit, 200, 10, 1_000, "cron"));
    let b = t
        .apply(&ev(EventKind::Fork, 200, 11, 5_000, "nginx"))
        .unwrap();
    assert_ne!(a.subject.entity_id, b.subject.entity_id);
    assert_eq!(s(&b.subject.image.executable), "/usr/sbin/nginx");
    assert_eq!(b.parent.unwrap().pid, 11);
    assert_eq!(t.stats().pid_reuse, 0);
    // The exit of the second 200 was lost; a third 200 replaces it.
    let c = t
        .apply(&ev(EventKind::Fork, 200, 10, 9_000, "cron"))
        .unwrap();
    assert_eq!(t.stats().pid_reuse, 1);
    assert_eq!(s(&c.subject.image.executable), "/usr/sbin/cron");
    // An exec whose start time names the dead one does not get the live one's record.
    let d = t
        .apply(&exec(200, 10, 12_000, "/bin/true", &["true"]))
        .unwrap();
    assert_eq!(t.stats().pid_reuse, 2);
    assert!(d.previous.is_none(), "unknown subject: no previous image");
    assert_eq!(s(&d.subject.image.executable), "/bin/true");
    // A parent with the same pid that started after the child is not its parent.
    t.apply(&ev(EventKind::Exit, 11, 1, 100, "nginx"));
    t.apply(&exec(11, 1, 20_000, "/usr/bin/other", &["other"]));
    let orphan = t.apply(&exec(300, 11, 15_000, "/bin/x", &["x"])).unwrap();
    assert!(
        orphan
            .parent
            .as_ref()
            .is_none_or(|p| p.start_boot_ns <= 15_000 * MS)
    );
}

#[test]
fn ssh_session_leaders() {
    let mut f = table();
    let t = &mut f.t;
    t.apply(&ProcessEvent {
        sid: 1,
        ..exec(1, 0, 0, "/usr/lib/systemd/systemd", &["/sbin/init"])
    });
    let sshd = t
        .apply(&ProcessEvent {
            sid: 500,
            ..exec(500, 1, 1_000, "/usr/sbin/sshd", &["sshd", "-D"])
        })
        .unwrap();
    let e = sshd.entry_leader.as_ref().unwrap();
    assert_eq!((e.entry_type, e.info.pid), (EntryType::Init, 500));
    // sshd forks a session process, which setsid()s and execs the user's shell on a pty.
    t.apply(&ProcessEvent {
        sid: 500,
        ..ev(EventKind::Fork, 501, 500, 2_000, "sshd")
    });
    let tty = Some((136, 3));
    let shell = t
        .apply(&ProcessEvent {
            sid: 501,
            tty,
            ..exec(501, 500, 2_000, "/bin/bash", &["-bash"])
        })
        .unwrap();
    assert!(shell.subject.interactive);
    assert_eq!(shell.subject.tty, tty);
    let e = shell.entry_leader.as_ref().unwrap();
    assert_eq!((e.entry_type, e.info.pid), (EntryType::Sshd, 501));
    assert!(shell.same_as_process(&e.info));
    assert!(shell.same_as_process(shell.session_leader.as_ref().unwrap()));
    assert!(shell.same_as_process(shell.group_leader.as_ref().unwrap()));
    // The shell runs a child.
    t.apply(&ProcessEvent {
        sid: 501,
        tty,
        ..ev(EventKind::Fork, 502, 501, 3_000, "bash")
    });
    let child = t
        .apply(&ProcessEvent {
            sid: 501,
            tty,
            ..exec(502, 501, 3_000, "/usr/bin/id", &["id"])
        })
        .unwrap();
    let e = child.entry_leader.as_ref().unwrap();
    assert_eq!(
        (e.entry_type, e.info.pid, s(&e.info.image.executable)),
        (EntryType::Sshd, 501, "/bin/bash")
    );
    assert_eq!(e.info.entity_id, shell.subject.entity_id);
    assert_eq!(child.session_leader.as_ref().unwrap().pid, 501);
    assert_eq!(
        child.group_leader.as_ref().unwrap().pid,
        501,
        "pgid inherited from the shell"
    );
    assert_eq!(child.parent_group_leader.as_ref().unwrap().pid, 501);
    assert!(!child.same_as_process(&e.info));
    assert_eq!(
        e.info.parent.as_ref().unwrap().pid,
        500,
        "entry_leader.parent"
    );
    assert_eq!(
        child
            .entry_leader_parent_session_leader
            .as_ref()
            .unwrap()
            .pid,
        500
    );
    assert_eq!(
        child
            .session_leader_parent_session_leader
            .as_ref()
            .unwrap()
            .pid,
        500
    );
    assert!(child.subject.interactive);
    // The shell exits; the child (now orphaned) still names it as leader.
    t.apply(&ProcessEvent {
        sid: 501,
        ..ev(EventKind::Exit, 501, 500, 2_000, "bash")
    });
    let late = t
        .apply(&ProcessEvent {
            sid: 501,
            ..ev(EventKind::Exit, 502, 1, 3_000, "id")
        })
        .unwrap();
    assert_eq!(
        late.entry_leader.as_ref().unwrap().info.entity_id,
        shell.subject.entity_id
    );
    assert_eq!(
        late.session_leader.as_ref().unwrap().entity_id,
        shell.subject.entity_id
    );
    // Without a tty: not interactive.
    let daemon = t
        .apply(&ProcessEvent {
            sid: 1,
            ..exec(600, 1, 4_000, "/usr/bin/cron", &["cron"])
        })
        .unwrap();
    assert!(!daemon.subject.interactive);
}

/// A process that moves to another cgroup and then execs: its document carries the cgroup
/// (and container) of the exec's own record, into a container at depth and back out.
#[test]
fn exec_after_a_cgroup_move_takes_the_new_cgroup() {
    let mut f = table();
    let t = &mut f.t;
    let host = ProcessEvent {
        cgroup_path: b"/user.slice/session-3.scope".to_vec(),
        ..exec(900, 1, 1_000, "/bin/sh", &["sh"])
    };
    assert!(t.apply(&host).unwrap().container.is_none());
    let deep = ProcessEvent {
        cgroup_id: 9_100,
        cgroup_path: format!("/docker/{CID}/a/b/c").into_bytes(),
        ..exec(900, 1, 1_000, "/usr/bin/ssh", &["ssh", "-V"])
    };
    let snap = t.apply(&deep).unwrap();
    assert_eq!(snap.subject.cgroup_id, 9_100);
    assert_eq!(snap.container.as_ref().unwrap().reference.id, CID);
    let back = ProcessEvent {
        cgroup_id: 1,
        cgroup_path: b"/".to_vec(),
        ..exec(900, 1, 1_000, "/usr/bin/ssh", &["ssh", "-V"])
    };
    let snap = t.apply(&back).unwrap();
    assert_eq!(snap.subject.cgroup_id, 1);
    assert!(snap.container.is_none(), "stale container after moving out");
}

#[test]
fn container_entry_and_attribution() {
    let mut f = table();
    let t = &mut f.t;
    let leaf = format!("docker-{CID}.scope");
    t.apply(&ProcessEvent {
        sid: 700,
        ..exec(700, 1, 1_000, "/usr/sbin/runc", &["runc", "run", "x"])
    });
    // runc forks the container's init into a new pid namespace and its cgroup.
    let cns = ProcessEvent {
        pid_ns_ino: 4_026_532_000,
        mnt_ns_ino: 4_026_532_001,
        ns_pid: 1,
        cgroup_id: 9_001,
        cgroup_path: format!("/system.slice/{leaf}").into_bytes(),
        sid: 700,
        ..ev(EventKind::Fork, 701, 700, 2_000, "runc:[2:INIT]")
    };
    let init = t.apply(&cns).unwrap();
    let c = init.container.as_ref().unwrap();
    assert_eq!(
        (c.reference.id.as_str(), c.reference.runtime.as_str()),
        (CID, "docker")
    );
    let e = init.entry_leader.as_ref().unwrap();
    assert_eq!((e.entry_type, e.info.pid), (EntryType::Container, 701));
    // Its very first exec is attributed (kernel names, no /proc).
    let ssh = t
        .apply(&ProcessEvent {
            kind: Some(EventKind::Exec),
            exe_path: b"/usr/bin/ssh".to_vec(),
            argv: vec![b"ssh".to_vec(), b"-V".to_vec()],
            comm: b"ssh".to_vec(),
            ..cns.clone()
        })
        .unwrap();
    assert_eq!(ssh.container.as_ref().unwrap().reference.id, CID);
    assert_eq!(ssh.subject.vpid, 1);
    assert_eq!(ssh.subject.pid, 701);
    let e = ssh.entry_leader.as_ref().unwrap();
    assert_eq!(
        (e.entry_type, s(&e.info.image.executable)),
        (EntryType::Container, "/usr/bin/ssh")
    );
    assert_eq!(ssh.parent.as_ref().unwrap().pid, 700);
    // A child inside inherits the container entry.
    let child = t
        .apply(&ProcessEvent {
            ns_pid: 2,
            ..cns.clone().with(702, 701, 3_000)
        })
        .unwrap();
    let e = child.entry_leader.as_ref().unwrap();
    assert_eq!((e.entry_type, e.info.pid), (EntryType::Container, 701));
    assert_eq!(child.container.as_ref().unwrap().reference.id, CID);
    // Host processes have no container.
    let host = t
        .apply(&exec(800, 1, 4_000, "/usr/bin/ssh", &["ssh", "-V"]))
        .unwrap();
    assert!(host.container.is_none());
    // The container's processes exit: the cache forgets the cgroup.
    assert_eq!(t.stats().containers.entries, 2);
    for (pid, start) in [(702, 3_000), (701, 2_000)] {
        t.apply(&ProcessEvent {
            kind: Some(EventKind::Exit),
            ..cns.clone().with(pid, 700, start)
        });
    }
    let st = t.stats();
    assert_eq!(st.containers.forgotten, 1);
    assert_eq!(st.containers.entries, 1);
}

trait With {
    fn with(self, tgid: u32, ppid: u32, start_ms: u64) -> Self;
}
impl With for ProcessEvent {
    fn with(self, tgid: u32, ppid: u32, start_ms: u64) -> Self {
        ProcessEvent {
            tgid,
            pid: tgid,
            ppid,
            start_boot_ns: start_ms * MS,
            ..self
        }
    }
}

#[test]
fn entity_ids_stable_across_instances() {
    let events = vec![
        exec(100, 1, 1_000, "/bin/bash", &["bash"]),
        ev(EventKind::Fork, 101, 100, 1_500, "bash"),
        exec(101, 100, 1_500, "/bin/ls", &["ls"]),
    ];
    let run = |events: &[ProcessEvent]| -> Vec<String> {
        let mut f = table();
        events
            .iter()
            .filter_map(|e| f.t.apply(e))
            .map(|s| s.subject.entity_id.to_string())
            .collect()
    };
    let (a, b) = (run(&events), run(&events));
    assert_eq!(a, b);
    assert_ne!(a[0], a[1]);

    // A process seeded from /proc (ticks) gets the id the kernel event (ns) gave it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("4242");
    std::fs::create_dir_all(&p).unwrap();
    // start 1.5 s = 150 ticks; the kernel said 1_503 ms (truncates to the same tick).
    std::fs::write(
        p.join("stat"),
        "4242 (ls) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 150 0 0",
    )
    .unwrap();
    let mut f = table();
    f.t.seed_from_proc(dir.path()).unwrap();
    let seeded =
        f.t.apply(&ev(EventKind::Exit, 4242, 1, 1_503, "ls"))
            .unwrap();
    let mut g = table();
    let live =
        g.t.apply(&ev(EventKind::Fork, 4242, 1, 1_503, "ls"))
            .unwrap();
    assert_eq!(seeded.subject.entity_id, live.subject.entity_id);
    assert_eq!(f.t.stats().seeded, 1);
    assert_eq!(f.t.stats().unknown_subject, 0);
}

#[test]
fn seeded_tree_hostile_comm_and_leaders() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |pid: u32,
              comm: &[u8],
              ppid: u32,
              sid: u32,
              tty: u32,
              start: u64,
              cmd: &[u8],
              cgroup: &str| {
        let d = dir.path().join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let mut stat = format!("{pid} (").into_bytes();
        stat.extend_from_slice(comm);
        stat.extend_from_slice(
            format!(") S {ppid} {sid} {sid} {tty} -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0")
                .as_bytes(),
        );
        std::fs::write(d.join("stat"), stat).unwrap();
        std::fs::write(d.join("cmdline"), cmd).unwrap();
        std::fs::write(
            d.join("status"),
            format!("Tgid:\t{pid}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t{pid}\n"),
        )
        .unwrap();
        std::fs::write(d.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
    };
    mk(1, b"systemd", 0, 1, 0, 1, b"/sbin/init\0", "/init.scope");
    mk(
        300,
        b"sshd",
        1,
        300,
        0,
        100,
        b"sshd: /usr/sbin/sshd -D\0",
        "/system.slice/ssh.service",
    );
    mk(
        310,
        b"bash",
        300,
        310,
        34816,
        200,
        b"-bash\0",
        "/user.slice",
    );
    mk(
        320,
        b"a) b (c",
        310,
        310,
        34816,
        300,
        b"./a) b (c\0x\xffy\0",
        &format!("/system.slice/docker-{CID}.scope"),
    );
    let mut f = table();
    let r = f.t.seed_from_proc(dir.path()).unwrap();
    assert_eq!(r.seeded, 4);
    let snap =
        f.t.apply(&ProcessEvent {
            sid: 310,
            tty: Some((136, 0)),
            ..ev(EventKind::Exit, 320, 310, 3_000, "a) b (c")
        })
        .unwrap();
    assert_eq!(snap.subject.image.name, b"a) b (c");
    assert_eq!(
        snap.subject.image.args,
        vec![b"./a) b (c".to_vec(), b"x\xffy".to_vec()]
    );
    assert_eq!(snap.parent.as_ref().unwrap().image.name, b"bash");
    assert_eq!(snap.session_leader.as_ref().unwrap().pid, 310);
    // The seeded shell's parent has no executable (no exe link in the fixture): the sshd
    // rule needs the parent's executable name, which falls back to comm.
    let e = snap.entry_leader.as_ref().unwrap();
    assert_eq!((e.entry_type, e.info.pid), (EntryType::Sshd, 310));
    assert_eq!(snap.group_leader.as_ref().unwrap().pid, 310);
    assert_eq!(snap.subject.creds.user.name.as_deref(), Some("root"));
    // Seeded cgroup path resolves (id 0: not stat-able in the fixture, so not cached).
    assert_eq!(
        snap.container.as_ref().map(|c| c.reference.id.as_str()),
        None,
        "the exit event's cgroup (1) wins"
    );
}

#[test]
fn churn_stays_bounded() {
    let mut f = table_with(1_000, 64);
    let t = &mut f.t;
    t.apply(&exec(1, 0, 0, "/sbin/init", &["init"]));
    let mut kept = 0u64;
    let started = std::time::Instant::now();
    for i in 0..100_000u32 {
        let pid = 1_000 + (i % 30_000);
        let start = 1_000 + i as u64;
        let cg = 10_000 + (i as u64 % 500);
        let path = format!("/system.slice/docker-{:064x}.scope", cg);
        let base = ProcessEvent {
            cgroup_id: cg,
            cgroup_path: path.into_bytes(),
            ..ev(EventKind::Fork, pid, 1, start, "w")
        };
        t.apply(&base);
        t.apply(&ProcessEvent {
            kind: Some(EventKind::Exec),
            exe_path: b"/bin/true".to_vec(),
            ..base.clone()
        });
        // Every 7th exit is "lost": those stay live until evicted or their pid is reused.
        if i % 7 != 0 {
            t.apply(&ProcessEvent {
                kind: Some(EventKind::Exit),
                exit_code: Some(0),
                ..base
            });
        } else {
            kept += 1;
        }
        let st = t.stats();
        assert!(
            st.live <= 1_000 && st.exited <= 64,
            "bounded at {i}: {st:?}"
        );
        // The exited-tgid index counts exactly the grace queue; the live set's order and
        // cgroup counts match its records.
        if i % 1_000 == 0 {
            t.exited.assert_consistent();
            t.live.assert_consistent();
        }
    }
    let st = t.stats();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "churn: {} events in {secs:.2} s = {:.0} events/s; {st:?}",
        st.events,
        st.events as f64 / secs
    );
    let (lru, cgroups, queue, refs) = t.index_sizes();
    assert_eq!(lru as u64, st.live, "lru index matches the live map");
    assert_eq!(refs, st.live, "one cgroup reference per live process");
    assert!(cgroups <= 501 && cgroups as u64 == st.cgroups);
    assert!(st.containers.entries <= 64 && queue <= 2 * 64 + 17);
    assert!(
        st.evicted_live + st.pid_reuse >= kept - 1_000,
        "{st:?} kept {kept}"
    );
    assert!(st.evicted_live > 0);
    assert_eq!(st.events, 1 + 100_000 * 2 + (100_000 - kept));
}

/// Seed from the real `/proc` and find this test process with its parent, name, args and a
/// start time consistent with the kernel's clock.
#[test]
fn seed_real_proc_finds_self() {
    let host = crate::host::HostInfo::collect(Path::new("/"));
    let cfg = TableConfig {
        enrich: None,
        ..TableConfig::default()
    };
    let mut t = ProcessTable::for_host(cfg, &host);
    // A child started between two readings of the kernel's boot clock.
    let before = boottime_ns();
    let mut child = std::process::Command::new("sleep")
        .arg("7")
        .spawn()
        .unwrap();
    let after = boottime_ns();
    let r = t.seed_from_proc(Path::new("/proc")).unwrap();
    assert!(r.seeded > 2, "{r:?}");
    let kid = t
        .apply(&ProcessEvent {
            kind: Some(EventKind::Exit),
            tgid: child.id(),
            pid: child.id(),
            ppid: std::process::id(),
            ..Default::default()
        })
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let tick = 1_000_000_000 / procfs::clock_ticks_per_sec();
    assert!(
        kid.subject.start_boot_ns + tick >= before && kid.subject.start_boot_ns <= after,
        "child start {} not within [{before}, {after}]",
        kid.subject.start_boot_ns
    );
    assert_eq!(
        kid.subject.image.args,
        vec![b"sleep".to_vec(), b"7".to_vec()]
    );
    assert_eq!(kid.subject.image.name, b"sleep");
    assert_eq!(kid.parent.as_ref().unwrap().pid, std::process::id());
    let me = std::process::id();
    let stat = procfs::parse_stat(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
    let ticks = stat.start_ticks;
    let boot_now = boottime_ns();
    // An exit event for ourselves, as the kernel would send it (start in ns).
    let start_ns = ticks * (1_000_000_000 / procfs::clock_ticks_per_sec());
    let snap = t
        .apply(&ProcessEvent {
            kind: Some(EventKind::Exec),
            tgid: me,
            pid: me,
            ppid: stat.ppid,
            sid: stat.sid,
            start_boot_ns: start_ns + 3,
            comm: stat.comm.clone(),
            exe_path: std::fs::read_link("/proc/self/exe")
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(t.stats().loaded_late, 0, "found by seeding");
    let prev = snap.previous.as_ref().unwrap();
    // `process.name` is the executable's full name, `process.thread.name` the comm.
    assert_eq!(prev.comm, stat.comm);
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(prev.name, exe.file_name().unwrap().as_encoded_bytes());
    let args: Vec<Vec<u8>> = std::env::args_os()
        .map(|a| a.into_encoded_bytes())
        .collect();
    assert_eq!(prev.args, args);
    assert_eq!(
        prev.executable,
        std::fs::read_link("/proc/self/exe")
            .unwrap()
            .into_os_string()
            .into_encoded_bytes()
    );
    assert!(
        snap.subject.start_boot_ns <= boot_now
            && boot_now - snap.subject.start_boot_ns < 3_600 * 1_000_000_000
    );
    let parent = snap.parent.as_ref().expect("parent seeded");
    assert_eq!(parent.pid, unsafe { libc::getppid() } as u32);
    let pcomm = std::fs::read(format!("/proc/{}/comm", parent.pid)).unwrap();
    assert_eq!(parent.image.name, pcomm.strip_suffix(b"\n").unwrap());
    assert!(parent.start_boot_ns <= snap.subject.start_boot_ns);
    assert_eq!(snap.subject.pid_ns_ino, host.pid_ns_ino.unwrap());
    assert!(snap.session_leader.is_some() || stat.sid == 0);
}

fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The pid of a child of `parent` named `comm`, waiting up to 3 s for it to appear.
fn find_child(parent: u32, comm: &[u8]) -> Option<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        for pid in procfs::list_pids(Path::new("/proc")).unwrap_or_default() {
            if let Ok(e) = procfs::read_process(Path::new("/proc"), pid)
                && e.stat.ppid == parent
                && e.stat.comm == comm
            {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// Seeded processes: one under a pty the test allocates (through `script`) is interactive
/// and its own session leader, with the entry leader of `script`; one in a new session
/// without a terminal is not interactive.
#[test]
fn seed_real_pty_interactive() {
    use crate::testsupport::{Need, require};
    let needs = [Need::Path("/usr/bin/script"), Need::Path("/usr/bin/setsid")];
    if !require("process::tests::seed_real_pty_interactive", &needs) {
        return;
    }
    let null = || std::process::Stdio::null();
    let mut script = std::process::Command::new("/usr/bin/script")
        .args(["-qfc", "exec sleep 11", "/dev/null"])
        .stdin(null())
        .stdout(null())
        .stderr(null())
        .spawn()
        .unwrap();
    let mut plain = std::process::Command::new("/usr/bin/setsid")
        .args(["sleep", "11"])
        .stdin(null())
        .spawn()
        .unwrap();
    let on_pty = find_child(script.id(), b"sleep");
    let host = crate::host::HostInfo::collect(Path::new("/"));
    let mut t = ProcessTable::for_host(
        TableConfig {
            enrich: None,
            ..TableConfig::default()
        },
        &host,
    );
    t.seed_from_proc(Path::new("/proc")).unwrap();
    let snap = |t: &mut ProcessTable, pid: u32| t.current(pid, EventKind::Exec).unwrap();
    let pty = on_pty.map(|pid| snap(&mut t, pid));
    let script_entry = snap(&mut t, script.id())
        .entry_leader
        .map(|e| e.info.entity_id);
    let no_tty = snap(&mut t, plain.id());
    let _ = script.kill();
    let _ = plain.kill();
    if let Some(pid) = on_pty {
        // SAFETY: plain kill of the sleep our own `script` started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let _ = script.wait();
    let _ = plain.wait();
    let pty = pty.expect("sleep under script found");
    assert!(pty.subject.interactive);
    assert_eq!(pty.subject.tty.map(|t| t.0), Some(136), "a /dev/pts device");
    // A pty session under `script` starts no entry (Elastic's rules): it inherits script's.
    assert_eq!(
        pty.entry_leader.as_ref().map(|e| e.info.entity_id.clone()),
        script_entry
    );
    assert!(pty.same_as_process(pty.session_leader.as_ref().unwrap()));
    assert_eq!(pty.parent.as_ref().unwrap().image.name, b"script");
    assert!(!no_tty.subject.interactive);
    assert_eq!(no_tty.subject.tty, None);
}

/// A running `#!` script read from `/proc`: its executable is the script, not the
/// interpreter the kernel mapped; its name is the script's.
#[test]
fn seed_real_script_executable() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("detscript");
    std::fs::write(&script, "#!/bin/sh\nexec 2>/dev/null; read -r x\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Another test thread's fork may briefly hold our write fd (ETXTBSY): retry.
    let mut tries = 0;
    let mut child = loop {
        match std::process::Command::new(&script)
            .stdin(std::process::Stdio::piped())
            .spawn()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    // Wait until the exec happened (comm becomes the script's name).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::fs::read(format!("/proc/{}/comm", child.id())).unwrap_or_default() != b"detscript\n"
    {
        assert!(std::time::Instant::now() < deadline, "script did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let host = crate::host::HostInfo::collect(Path::new("/"));
    let mut t = ProcessTable::for_host(
        TableConfig {
            enrich: None,
            ..TableConfig::default()
        },
        &host,
    );
    t.seed_from_proc(Path::new("/proc")).unwrap();
    let snap = t.current(child.id(), EventKind::Exec).unwrap();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(snap.subject.image.name, b"detscript");
    assert_eq!(
        snap.subject.image.executable,
        script.as_os_str().as_encoded_bytes()
    );
    assert_eq!(
        snap.subject.image.args[1],
        script.as_os_str().as_encoded_bytes()
    );
}

/// Found by the end-to-end churn test: after more processes than the bound lived and then
/// exited at once, each exit of an evicted process pushed out another live one, until the
/// table knew almost nothing of what still runs. An exit must not evict.
#[test]
fn exit_of_evicted_process_evicts_nothing() {
    let mut fx = table_with(4, 8);
    for (i, pid) in (10..15u32).enumerate() {
        fx.t.apply(&ev(EventKind::Fork, pid, 1, 100 + i as u64, "sleep"));
    }
    // Five forks into a table of four: the least recently seen (10) was evicted.
    assert_eq!((fx.t.stats().live, fx.t.stats().evicted_live), (4, 1));
    let snap =
        fx.t.apply(&ev(EventKind::Exit, 10, 1, 100, "sleep"))
            .unwrap();
    assert_eq!(snap.subject.pid, 10);
    let st = fx.t.stats();
    assert_eq!((st.live, st.evicted_live), (4, 1), "{st:?}");
    for pid in 11..15 {
        assert!(
            fx.t.current(pid, EventKind::Exit).is_some(),
            "{pid} still known"
        );
    }
}

#[test]
fn apply_if_updates_the_model_without_a_snapshot() {
    let mut f = table();
    let t = &mut f.t;
    let mut asked = Vec::new();
    let none = t.apply_if(&exec(300, 1, 1_000, "/bin/bash", &["bash"]), |img, kind| {
        asked.push((img.name.clone(), kind));
        false
    });
    assert!(none.is_none(), "not wanted: no snapshot");
    assert_eq!(asked, vec![(b"bash".to_vec(), EventKind::Exec)]);
    // The model still learned the exec: a child's fork carries the parent's image.
    let child = t
        .apply_if(&ev(EventKind::Fork, 301, 300, 2_000, "bash"), |_, _| true)
        .unwrap();
    assert_eq!(s(&child.subject.image.executable), "/bin/bash");
    assert_eq!(child.parent.as_ref().map(|p| p.pid), Some(300));
    // An unwanted exit still removes the process.
    assert!(
        t.apply_if(
            &ProcessEvent {
                exit_code: Some(0),
                ..ev(EventKind::Exit, 300, 1, 1_000, "bash")
            },
            |_, _| false
        )
        .is_none()
    );
    assert!(
        t.current(300, EventKind::Exec).is_none(),
        "exited process removed"
    );
}

// ---- The bound and what leaves a full table (see `admit`). ----

/// One step of an eviction scenario: events of host processes whose parent (pid 1) the
/// table does not know. Pid `p` starts at tick `p` (`p * 10` ms).
#[derive(Clone, Copy, Debug)]
enum Step {
    Fork(u32),
    /// An exec: the process is seen again.
    Exec(u32),
    Exit(u32),
    /// Forks of pids `a..b` whose exits are lost (short processes, ring overflow).
    Churn(u32, u32),
}

fn step_events(step: Step) -> Vec<ProcessEvent> {
    let start = |p: u32| p as u64 * 10;
    match step {
        Step::Fork(p) => vec![ev(EventKind::Fork, p, 1, start(p), "w")],
        Step::Exec(p) => vec![exec(p, 1, start(p), "/usr/bin/sleep", &["sleep", "100"])],
        Step::Exit(p) => vec![ev(EventKind::Exit, p, 1, start(p), "w")],
        Step::Churn(a, b) => (a..b)
            .map(|p| ev(EventKind::Fork, p, 1, start(p), "w"))
            .collect(),
    }
}

/// A table with `max` records, `grace` exited, and a fixture `/proc` listing `running`
/// (`None`: no `/proc` at all).
fn table_over_proc(max: usize, grace: usize, running: Option<&[u32]>) -> Fx {
    let mut f = table_with(max, grace);
    if let Some(pids) = running {
        let root = f._dir.path().join("proc");
        std::fs::create_dir_all(&root).unwrap();
        for p in pids {
            std::fs::create_dir_all(root.join(p.to_string())).unwrap();
        }
        f.t.cfg.proc_root = Some(root);
    }
    f
}

/// What `max_processes` promises (config docs, README): the bound holds live and exited
/// records together; exited ones leave first, then records of processes `/proc` no longer
/// lists, then the least recently seen running process. A long-lived process is not
/// forgotten because short ones churn with lost exits.
#[test]
#[rustfmt::skip]
fn eviction_order() {
    use Step::*;
    struct Case {
        what: &'static str,
        max: usize,
        grace: usize,
        running: Option<&'static [u32]>,
        steps: &'static [Step],
        live: &'static [u32],
        exited: u64,
        /// (evicted_live, evicted_exited, reaped)
        counts: (u64, u64, u64),
    }
    let cases = [
        Case {
            what: "exited records leave before any live one",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Exit(12), Fork(13), Fork(14)],
            live: &[10, 11, 13, 14], exited: 0, counts: (0, 1, 0),
        },
        Case {
            what: "then the least recently seen running process",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exec(10), Fork(14)],
            live: &[10, 12, 13, 14], exited: 0, counts: (1, 0, 0),
        },
        Case {
            what: "exited records count toward the bound",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exit(10), Exit(11)],
            live: &[12, 13], exited: 2, counts: (0, 0, 0),
        },
        Case {
            what: "the grace queue keeps at most `grace`",
            max: 8, grace: 1, running: None,
            steps: &[Fork(10), Fork(11), Exit(10), Exit(11)],
            live: &[], exited: 1, counts: (0, 1, 0),
        },
        Case {
            what: "a long-lived process survives churn with lost exits",
            max: 4, grace: 2, running: Some(&[50]),
            steps: &[Fork(50), Churn(100, 120)],
            live: &[50, 118, 119], exited: 1, counts: (0, 17, 18),
        },
        Case {
            what: "without /proc to tell leaks from live processes, it does not (the fallback)",
            max: 4, grace: 2, running: None,
            steps: &[Fork(50), Churn(100, 120)],
            live: &[116, 117, 118, 119], exited: 0, counts: (17, 0, 0),
        },
        Case {
            what: "a host really over the bound: the least recently seen running process",
            max: 4, grace: 2, running: Some(&[10, 11, 12, 13, 14]),
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exec(10), Fork(14)],
            live: &[10, 12, 13, 14], exited: 0, counts: (1, 0, 0),
        },
    ];
    for c in cases {
        let mut f = table_over_proc(c.max, c.grace, c.running);
        for &step in c.steps {
            for e in step_events(step) {
                f.t.apply(&e);
                let st = f.t.stats();
                assert!(
                    st.live + st.exited <= c.max as u64 && st.exited <= c.grace as u64,
                    "{}: bound after {step:?}: {st:?}", c.what
                );
                f.t.live.assert_consistent();
                f.t.exited.assert_consistent();
            }
        }
        let st = f.t.stats();
        let mut live = f.t.live_tgids();
        live.sort_unstable();
        assert_eq!(live, c.live, "{}: live", c.what);
        assert_eq!(st.exited, c.exited, "{}: exited", c.what);
        assert_eq!((st.evicted_live, st.evicted_exited, st.reaped), c.counts, "{}: {st:?}", c.what);
    }
}

/// A host really over the bound lists `/proc` once per `max/16` evictions, not per new
/// process.
#[test]
fn listing_proc_is_rate_limited() {
    let running: Vec<u32> = (100..200).collect();
    let mut f = table_over_proc(32, 4, Some(&running));
    for p in 100..132 {
        f.t.apply(&ev(EventKind::Fork, p, 1, p as u64 * 10, "w"));
    }
    assert_eq!(f.t.stats().proc_sweeps, 0, "not full yet");
    for p in 132..140 {
        f.t.apply(&ev(EventKind::Fork, p, 1, p as u64 * 10, "w"));
    }
    let st = f.t.stats();
    // 8 evictions, max/16 = 2 per listing.
    assert_eq!(
        (st.evicted_live, st.reaped, st.proc_sweeps),
        (8, 0, 4),
        "{st:?}"
    );
}

/// The sweep spares what the current event has seen, and a reaped record whose events were
/// still on their way (here its exit) comes back whole, not rebuilt from the event.
#[test]
fn reaped_records_serve_late_events() {
    let mut f = table_over_proc(3, 4, Some(&[20]));
    // Pid 20 runs and is readable in /proc: the exec of 30 (reparented to it) loads it.
    std::fs::write(
        f._dir.path().join("proc/20/stat"),
        "20 (bash) S 1 20 20 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 20 0 0",
    )
    .unwrap();
    f.t.apply(&ev(EventKind::Fork, 30, 1, 300, "w"));
    f.t.apply(&ev(EventKind::Fork, 32, 1, 320, "w"));
    f.t.apply(&exec(31, 1, 310, "/usr/bin/sleep", &["sleep", "1000"]));
    // Full (3). 30's exec names parent 20, which must be loaded. None of 30, 31, 32 is in
    // /proc, but 30 is this event's subject: 32 and 31 (least recently seen first) are
    // reaped, 32 then leaves the exited queue for room.
    let snap =
        f.t.apply(&exec(30, 20, 300, "/bin/true", &["true"]))
            .unwrap();
    assert_eq!(snap.parent.as_ref().map(|p| p.pid), Some(20));
    let st = f.t.stats();
    assert_eq!(
        (
            st.live,
            st.exited,
            st.reaped,
            st.evicted_exited,
            st.loaded_late
        ),
        (2, 1, 2, 1, 1),
        "{st:?}"
    );
    let mut live = f.t.live_tgids();
    live.sort_unstable();
    assert_eq!(live, vec![20, 30]);
    // 31's exit arrives: its document has what its exec said.
    let end =
        f.t.apply(&ProcessEvent {
            exit_code: Some(0),
            ..ev(EventKind::Exit, 31, 1, 310, "sleep")
        })
        .unwrap();
    assert_eq!(s(&end.subject.image.executable), "/usr/bin/sleep");
    assert_eq!(end.subject.image.args_count(), 2);
    assert_eq!(end.subject.exit_code, Some(0));
    let st = f.t.stats();
    assert_eq!((st.unknown_subject, st.evicted_live), (1, 0), "{st:?}");
    assert!(st.live + st.exited <= 3, "{st:?}");
}

/// Credential changes: the model takes the new ids, reports each process's change once
/// (a second thread's identical change is counted, not reported), and a new session makes
/// the process its own session and group leader.
#[test]
fn credential_changes_update_the_model_once() {
    let mut f = table();
    let t = &mut f.t;
    let alice = |e: ProcessEvent| ProcessEvent {
        uid: 1000,
        euid: 1000,
        gid: 1000,
        egid: 1000,
        ..e
    };
    t.apply(&alice(exec(100, 1, 1_000, "/bin/bash", &["bash"])))
        .unwrap();
    t.apply(&alice(ev(EventKind::Fork, 200, 100, 2_000, "bash")))
        .unwrap();
    t.apply(&alice(exec(
        200,
        100,
        2_000,
        "/usr/bin/sudo",
        &["sudo", "id"],
    )))
    .unwrap();
    // setuid(0): the kernel's record after the change (ids 0/0).
    let to_root = ProcessEvent {
        euid: 0,
        uid: 0,
        gid: 1000,
        egid: 1000,
        sid: 100,
        ..ev(EventKind::UidChange, 200, 100, 2_000, "sudo")
    };
    let snap = t.apply(&to_root).expect("a uid change is reported");
    assert_eq!(snap.kind, EventKind::UidChange);
    assert_eq!(snap.subject.creds.user.id, 0);
    assert_eq!(snap.subject.creds.user.name.as_deref(), Some("root"));
    assert_eq!(snap.subject.creds.real_user.id, 0);
    assert_eq!(snap.subject.creds.group.id, 1000);
    assert_eq!(s(&snap.subject.image.name), "sudo");
    // Another thread of the same process makes the same change: nothing new.
    let thread = ProcessEvent {
        pid: 201,
        ..to_root.clone()
    };
    assert!(t.apply(&thread).is_none());
    assert_eq!(t.stats().cred_unchanged, 1);
    // The kernel's kind is a hint: a record that says uid but changes the gid is a gid
    // change.
    let gid = ProcessEvent {
        gid: 0,
        egid: 0,
        ..to_root.clone()
    };
    assert_eq!(t.apply(&gid).unwrap().kind, EventKind::GidChange);
    // Later documents carry the new ids.
    let exit = t
        .apply(&ProcessEvent {
            exit_code: Some(0),
            ..ev(EventKind::Exit, 200, 100, 2_000, "sudo")
        })
        .unwrap();
    assert_eq!(exit.subject.creds.user.id, 0);
    // setsid: a process that led nothing leads its session and group.
    t.apply(&alice(ev(EventKind::Fork, 300, 100, 3_000, "bash")))
        .unwrap();
    let before = t.current(300, EventKind::Exec).unwrap();
    assert_eq!(before.session_leader.as_ref().unwrap().pid, 100);
    let snap = t
        .apply(&alice(ProcessEvent {
            sid: 300,
            ..ev(EventKind::SessionIdChange, 300, 100, 3_000, "bash")
        }))
        .expect("a new session is reported");
    assert_eq!(snap.kind, EventKind::SessionIdChange);
    assert_eq!(snap.subject.sid, 300);
    assert_eq!(snap.session_leader.as_ref().unwrap().pid, 300);
    assert!(snap.same_as_process(snap.session_leader.as_ref().unwrap()));
    assert_eq!(snap.group_leader.as_ref().unwrap().pid, 300);
}
