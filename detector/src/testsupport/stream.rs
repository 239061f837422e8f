//! ONE synthetic fork/exec/exit stream, for the benches and the tests that measure or
//! compare the per-event pipeline: a few long-lived shells (on the host and in
//! containers), then many short processes each forked from one of them, exec'ing one
//! program of a list and exiting, 20 µs of `boot_ns` apart.

use crate::event::{EventKind, ProcessEvent};

/// What varies between the users of the stream.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Containers with a shell each (one more shell on the host).
    pub containers: usize,
    /// Every process whose tgid is a multiple of this runs with `euid` 0 (`None`: never).
    pub root_every: Option<u32>,
    /// Every exec whose tgid is a multiple of this has a partial executable path.
    pub partial_every: Option<u32>,
}

impl Default for Shape {
    /// Four containers, every process as uid 1000, full executable paths.
    fn default() -> Self {
        Shape {
            containers: 4,
            root_every: None,
            partial_every: None,
        }
    }
}

/// `lives` processes forked from the shells of `shape` (every third on the host, the
/// others in container `n % containers`), each exec'ing `programs[n % len]` (executable,
/// argv) and exiting: the shells' own fork and exec first (`setup`), then the stream.
pub fn fork_exec_exit(
    lives: usize,
    programs: &[(&str, &[&str])],
    shape: Shape,
) -> (Vec<ProcessEvent>, Vec<ProcessEvent>) {
    let containers = shape.containers;
    let mut clock = 10_000_000_000u64;
    let mut tick = || {
        clock += 20_000;
        clock
    };
    let base = |kind, tgid: u32, ppid: u32, c: Option<usize>, start: u64, now: u64| ProcessEvent {
        kind: Some(kind),
        boot_ns: now,
        pid: tgid,
        tgid,
        ppid,
        actor_pid: ppid,
        cgroup_id: c.map_or(1234, |i| 9000 + i as u64),
        cgroup_path: match c {
            Some(i) => format!(
                "/system.slice/docker-{:064x}.scope",
                0xc0ffee_u64 + i as u64
            )
            .into_bytes(),
            None => b"/system.slice/session-3.scope".to_vec(),
        },
        mnt_ns_ino: 4026531836,
        pid_ns_ino: 4026531841,
        ns_pid: tgid,
        sid: ppid,
        start_boot_ns: start,
        uid: 1000,
        euid: match shape.root_every {
            Some(k) if tgid.is_multiple_of(k) => 0,
            _ => 1000,
        },
        gid: 1000,
        egid: 1000,
        ..Default::default()
    };
    let exec = |mut ev: ProcessEvent, exe: &str, argv: &[&str]| {
        ev.kind = Some(EventKind::Exec);
        ev.filename = exe.as_bytes().to_vec();
        ev.exe_path = exe.as_bytes().to_vec();
        ev.exe_path_partial = shape
            .partial_every
            .is_some_and(|k| ev.tgid.is_multiple_of(k));
        ev.comm = argv[0].as_bytes().iter().take(15).copied().collect();
        ev.argv = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
        ev
    };
    let shells: Vec<u32> = (0..=containers as u32).map(|i| 500 + i).collect();
    let mut setup = Vec::new();
    for (i, &pid) in shells.iter().enumerate() {
        let c = (i < containers).then_some(i);
        let start = tick();
        setup.push(base(EventKind::Fork, pid, 1, c, start, start));
        setup.push(exec(
            base(EventKind::Exec, pid, 1, c, start, tick()),
            "/usr/bin/bash",
            &["bash"],
        ));
    }
    let mut stream = Vec::with_capacity(lives * 3);
    for n in 0..lives {
        let (exe, argv) = programs[n % programs.len()];
        let c = (n % 3 != 0 && containers > 0).then(|| n % containers);
        let parent = shells[c.unwrap_or(containers)];
        let tgid = 10_000 + n as u32;
        let start = tick();
        let mut fork = base(EventKind::Fork, tgid, parent, c, start, start);
        fork.comm = b"bash".to_vec();
        fork.exe_path = b"/usr/bin/bash".to_vec();
        stream.push(fork);
        stream.push(exec(
            base(EventKind::Exec, tgid, parent, c, start, tick()),
            exe,
            argv,
        ));
        let mut exit = base(EventKind::Exit, tgid, parent, c, start, tick());
        exit.comm = argv[0].as_bytes().to_vec();
        exit.exe_path = exe.as_bytes().to_vec();
        exit.exit_code = Some(0);
        stream.push(exit);
    }
    (setup, stream)
}
