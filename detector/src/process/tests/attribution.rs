//! Who a process belongs to: session and entry leaders, cgroup moves, container entry.

use super::*;

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

/// The kernel reports each event's process group: a child the shell puts in its own group
/// (job control: `setpgid` between fork and exec) leads it at its exec, and a shell that
/// moved to another group is seen there from the next child it forks, without `/proc`
/// (the table here has none).
#[test]
fn process_groups_from_the_kernel() {
    let mut f = table();
    let t = &mut f.t;
    let in_session = |pgid: u32, e: ProcessEvent| ProcessEvent { sid: 1, pgid, ..e };
    t.apply(&in_session(
        1,
        exec(1, 0, 0, "/usr/lib/systemd/systemd", &["/sbin/init"]),
    ));
    t.apply(&in_session(
        590,
        exec(590, 1, 500, "/usr/bin/sleep", &["sleep", "1d"]),
    ));
    let shell = t
        .apply(&in_session(1, exec(600, 1, 1_000, "/bin/bash", &["bash"])))
        .unwrap();
    assert_eq!(shell.group_leader.as_ref().unwrap().pid, 1);
    // Forked in the shell's group, then moved to its own before exec.
    t.apply(&in_session(1, ev(EventKind::Fork, 601, 600, 2_000, "bash")));
    let job = t
        .apply(&in_session(
            601,
            exec(601, 600, 2_000, "/usr/bin/id", &["id"]),
        ))
        .unwrap();
    assert!(
        job.same_as_process(job.group_leader.as_ref().unwrap()),
        "{job:?}"
    );
    assert_eq!(job.parent_group_leader.as_ref().unwrap().pid, 1);
    // The shell joins 590's group (no event of its own); its next child is forked there,
    // which tells the table where the shell is now.
    t.apply(&in_session(
        590,
        ev(EventKind::Fork, 602, 600, 3_000, "bash"),
    ));
    let next = t
        .apply(&in_session(
            590,
            exec(602, 600, 3_000, "/usr/bin/id", &["id"]),
        ))
        .unwrap();
    assert_eq!(next.group_leader.as_ref().unwrap().pid, 590);
    assert_eq!(next.parent_group_leader.as_ref().unwrap().pid, 590);
    // A fork by another process's thread (CLONE_PARENT-like: the actor is not the parent)
    // says nothing about the parent's group.
    t.apply(&ProcessEvent {
        actor_pid: 1,
        ..in_session(1, ev(EventKind::Fork, 603, 600, 4_000, "bash"))
    });
    let other = t
        .apply(&in_session(
            1,
            exec(603, 600, 4_000, "/usr/bin/true", &["true"]),
        ))
        .unwrap();
    assert_eq!(other.group_leader.as_ref().unwrap().pid, 1);
    assert_eq!(other.parent_group_leader.as_ref().unwrap().pid, 590);
}
