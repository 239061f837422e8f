//! A process's life in the table: fork, exec, exit, pid reuse, entity ids, credential changes.

use super::*;

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

/// Credential changes: the model takes the new ids, reports each process's change once
/// (a second thread's identical change is counted, not reported), and a new session makes
/// the process its own session and group leader.
#[test]
fn credential_changes_update_the_model_once() {
    let mut f = table();
    let t = &mut f.t;
    let alice = |e: ProcessEvent| as_ids(1000, e);
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
