//! Seeding the table from `/proc`: fixture trees with hostile names, and the real one.

use super::*;

/// A table for this host (no container enrichment), seeded from the real `/proc`.
fn seeded_from_this_host() -> ProcessTable {
    let host = crate::host::HostInfo::collect(Path::new("/"));
    let mut t = ProcessTable::for_host(
        TableConfig {
            enrich: None,
            ..TableConfig::default()
        },
        &host,
    );
    t.seed_from_proc(Path::new("/proc")).unwrap();
    t
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
    let mut t = seeded_from_this_host();
    let snap = |t: &mut ProcessTable, pid: u32| t.current(pid, EventKind::Exec).unwrap();
    let pty = on_pty.map(|pid| snap(&mut t, pid));
    let script_entry = snap(&mut t, script.id())
        .entry_leader
        .map(|e| e.info.entity_id.clone());
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
    let mut t = seeded_from_this_host();
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
