//! Shared infos (`shared`): snapshots share a process's info while the process does not
//! change, and a snapshot keeps what its processes were when one changes later.

use std::sync::Arc;

use super::*;

#[test]
fn snapshots_share_unchanged_processes_and_keep_their_past() {
    // No grace: an exited parent leaves the table at once.
    let mut f = table_with(65_536, 0);
    let t = &mut f.t;
    let alice = |e: ProcessEvent| as_ids(1000, e);
    let sh = t
        .apply(&alice(exec(100, 1, 1_000, "/bin/bash", &["bash"])))
        .unwrap();
    let fork = t
        .apply(&alice(ev(EventKind::Fork, 200, 100, 2_000, "bash")))
        .unwrap();
    // The unchanged shell is one info, in both snapshots.
    let parent = fork.parent.clone().unwrap();
    assert!(
        Arc::ptr_eq(&sh.subject, &parent),
        "the shell's info is shared"
    );
    let (was_subject, was_parent) = ((*fork.subject).clone(), (*parent).clone());
    assert_eq!(was_subject.creds.user.name.as_deref(), Some("alice"));

    // The child becomes root: a new info for it; the fork's snapshot keeps alice.
    let root = t
        .apply(&ProcessEvent {
            uid: 0,
            euid: 0,
            gid: 1000,
            egid: 1000,
            ..ev(EventKind::UidChange, 200, 100, 2_000, "bash")
        })
        .unwrap();
    assert_eq!(root.subject.creds.user.name.as_deref(), Some("root"));
    assert!(!Arc::ptr_eq(&root.subject, &fork.subject));
    assert!(Arc::ptr_eq(root.parent.as_ref().unwrap(), &parent));
    // It execs: a new image in the new info only.
    let id = t
        .apply(&ProcessEvent {
            uid: 0,
            euid: 0,
            gid: 1000,
            egid: 1000,
            ..exec(200, 100, 2_000, "/usr/bin/id", &["id"])
        })
        .unwrap();
    assert_eq!(s(&id.subject.image.executable), "/usr/bin/id");
    assert_eq!(s(&root.subject.image.executable), "/bin/bash");

    // The shell exits: its exit document has an end; earlier snapshots do not.
    let end = t
        .apply(&alice(ProcessEvent {
            exit_code: Some(3),
            boot_ns: 5_000 * MS,
            ..ev(EventKind::Exit, 100, 1, 1_000, "bash")
        }))
        .unwrap();
    assert_eq!(end.subject.exit_code, Some(3));
    assert_eq!(end.subject.end_boot_ns, Some(5_000 * MS));
    // Gone from the table (no grace): the child's next snapshot names no parent, though
    // the child's record did not change.
    let orphan = t.current(200, EventKind::Exec).unwrap();
    assert!(orphan.parent.is_none());
    assert!(
        orphan.subject.parent.is_none(),
        "the parent reference is checked"
    );
    assert_eq!(orphan.subject.ppid, 100);
    assert!(id.subject.parent.is_some());

    // Nothing leaked into the first snapshots.
    assert_eq!(*fork.subject, was_subject);
    assert_eq!(**fork.parent.as_ref().unwrap(), was_parent);
    assert_eq!(fork.parent.as_ref().unwrap().exit_code, None);
    assert_eq!(fork.subject.creds.user.name.as_deref(), Some("alice"));
    assert_eq!(s(&fork.subject.image.executable), "/bin/bash");
    assert!(fork.subject.parent.is_some());
}

#[test]
fn missing_names_are_shared_while_the_files_stay_loaded() {
    let mut f = table();
    let t = &mut f.t;
    // uid 4242 is in no passwd file: no names, and none until the files are reloaded.
    let nobody = |e: ProcessEvent| as_ids(4242, e);
    let sh = t
        .apply(&nobody(exec(100, 1, 1_000, "/bin/sh", &["sh"])))
        .unwrap();
    assert_eq!(sh.subject.creds.user.name, None);
    let loads = t.stats().user_db_loads;
    let a = t
        .apply(&nobody(ev(EventKind::Fork, 200, 100, 2_000, "sh")))
        .unwrap();
    let b = t
        .apply(&nobody(ev(EventKind::Fork, 300, 100, 3_000, "sh")))
        .unwrap();
    assert!(Arc::ptr_eq(&sh.subject, a.parent.as_ref().unwrap()));
    assert!(Arc::ptr_eq(&sh.subject, b.parent.as_ref().unwrap()));
    assert_eq!(
        t.stats().user_db_loads,
        loads,
        "no reload within the window"
    );
}
