//! End-to-end tests of the sensor through `detector trace` (root only; they skip, saying
//! so, when not root). Each test filters the host-wide event stream by the pids it starts.

mod common;
#[path = "common/wait.rs"]
mod wait;

use std::{
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    process::{Command, Stdio},
};

use common::{CgroupGuard, PrivateBin, Trace, ebpf_lock, release};
use detector::testsupport::{Need, require};
use serde_json::Value;

/// The exact bytes of a byte-string field (its `_hex` sibling when it is not UTF-8).
fn bytes_of(ev: &Value, field: &str) -> Vec<u8> {
    match ev.get(format!("{field}_hex")).and_then(Value::as_str) {
        Some(hex) => unhex(hex),
        None => ev[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {ev}"))
            .as_bytes()
            .to_vec(),
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// argv of an event as exact bytes.
fn argv_of(ev: &Value) -> Vec<Vec<u8>> {
    match ev.get("argv_hex").and_then(Value::as_array) {
        Some(a) => a.iter().map(|h| unhex(h.as_str().unwrap())).collect(),
        None => ev["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().as_bytes().to_vec())
            .collect(),
    }
}

/// What the kernel side captures of an argv: the first ARGV_MAX bytes of the NUL-separated
/// block, split on NUL (a trailing partial argument is kept, flagged as truncated).
fn expected_argv(args: &[Vec<u8>]) -> (Vec<Vec<u8>>, bool) {
    let mut block = Vec::new();
    for a in args {
        block.extend_from_slice(a);
        block.push(0);
    }
    let truncated = block.len() > detector_common::ARGV_MAX;
    block.truncate(detector_common::ARGV_MAX);
    let mut out: Vec<Vec<u8>> = block.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    if block.last() == Some(&0) {
        out.pop();
    }
    (out, truncated)
}

fn my_pid() -> u32 {
    std::process::id()
}

#[test]
fn exec_carries_exact_identity_path_and_argv() {
    if !require("exec_carries_exact_identity_path_and_argv", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    let bin = PrivateBin::copy("/bin/true", "argv-probe");
    let cases: Vec<Vec<Vec<u8>>> = vec![
        vec![
            b"plain".to_vec(),
            b"bad\xff\xfeutf8".to_vec(),
            b"new\nline".to_vec(),
            b"quo\"te's \\ back".to_vec(),
            Vec::new(),
            b"last".to_vec(),
        ],
        // Longer than the bound: two 3000-byte arguments.
        vec![vec![b'x'; 3000], vec![b'y'; 3000]],
    ];
    let trace = Trace::start(&[]);
    let mut pids = Vec::new();
    for args in &cases {
        let mut child = Command::new(&bin.path)
            .args(args.iter().map(|a| OsStr::from_bytes(a)))
            .spawn()
            .unwrap();
        pids.push(child.id());
        assert!(wait::wait_timeout(&mut child, wait::TOOL, "argv-probe").success());
    }
    let out = trace.stop();
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let path = bin.path.as_os_str().as_bytes().to_vec();
    for (args, pid) in cases.iter().zip(pids) {
        let ev = out.one("exec", pid);
        assert_eq!(ev["pid"], pid, "{ev}");
        assert_eq!(ev["ppid"], my_pid(), "{ev}");
        assert_eq!(ev["uid"], uid, "{ev}");
        assert_eq!(ev["gid"], gid, "{ev}");
        assert_eq!(bytes_of(ev, "filename"), path, "{ev}");
        assert_eq!(bytes_of(ev, "exe_path"), path, "{ev}");
        assert_eq!(ev["exe_path_partial"], false, "{ev}");
        assert_eq!(ev["comm"], "argv-probe", "{ev}");
        let mut full = vec![path.clone()];
        full.extend(args.iter().cloned());
        let (want, truncated) = expected_argv(&full);
        assert_eq!(argv_of(ev), want, "{ev}");
        assert_eq!(ev["argv_truncated"], truncated, "{ev}");
    }
    assert!(out.summary["counters"]["argv_truncated"].as_u64().unwrap() >= 1);
}

#[test]
fn fork_gives_child_ids_and_exit_gives_the_code() {
    if !require(
        "fork_gives_child_ids_and_exit_gives_the_code",
        &[Need::Root],
    ) {
        return;
    }
    let _lock = ebpf_lock();
    let sh = PrivateBin::copy("/bin/sh", "exit-probe");
    let trace = Trace::start(&[]);
    let mut results = Vec::new();
    for (script, want) in [
        ("exit 42", 42),
        ("exit 0", 0),
        ("kill -9 $$", 137),
        ("kill -15 $$", 143),
    ] {
        let mut child = Command::new(&sh.path).args(["-c", script]).spawn().unwrap();
        let pid = child.id();
        let status = wait::wait_timeout(&mut child, wait::TOOL, script);
        results.push((pid, want, status));
    }
    let out = trace.stop();
    for (pid, want, status) in results {
        let fork = out.one("fork", pid);
        assert_eq!(fork["pid"], pid, "{fork}");
        assert_eq!(fork["ppid"], my_pid(), "{fork}");
        let exit = out.one("exit", pid);
        assert_eq!(exit["exit_code"], want, "{exit} (wait status {status:?})");
        assert_eq!(exit["ppid"], my_pid(), "{exit}");
    }
}

#[test]
fn a_thread_is_not_a_fork() {
    if !require("a_thread_is_not_a_fork", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    let trace = Trace::start(&[]);
    // SAFETY: gettid has no preconditions.
    let tid = wait::join_timeout(
        std::thread::spawn(|| unsafe { libc::gettid() } as u32),
        wait::TOOL,
        "the thread",
    );
    // A process started in the same window does give a fork (so the filter below works).
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    wait::wait_timeout(&mut child, wait::TOOL, "/bin/true");
    let out = trace.stop();
    out.one("fork", pid);
    let thread_forks: Vec<_> = out
        .events
        .iter()
        .filter(|e| e["kind"] == "fork" && (e["pid"] == tid || e["tgid"] == tid))
        .collect();
    assert!(
        thread_forks.is_empty(),
        "thread {tid} reported as fork: {thread_forks:?}"
    );
    // Our own process is still one tgid: no exit was reported for it either.
    assert!(out.of("exit", my_pid()).is_empty());
}

/// Forks a child that makes a second thread with raw `clone`, then ends the thread group
/// with `exit_group(code)`. With `leader_first` the leader thread exits (plain `exit`)
/// before the other thread ends the group; otherwise the other thread exits first.
fn spawn_threaded(leader_first: bool, code: i32) -> u32 {
    extern "C" fn thread_main(arg: *mut libc::c_void) -> libc::c_int {
        let v = arg as usize;
        let (leader_first, code) = (v & 1 == 1, (v >> 1) as libc::c_long);
        // SAFETY: raw syscalls only: this thread has no TLS of its own.
        unsafe {
            if leader_first {
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                };
                libc::syscall(
                    libc::SYS_nanosleep,
                    &ts,
                    std::ptr::null_mut::<libc::timespec>(),
                );
                libc::syscall(libc::SYS_exit_group, code);
            } else {
                libc::syscall(libc::SYS_exit, 0);
            }
        }
        0
    }
    // SAFETY: the child only makes raw syscalls and libc::clone/mmap (async-signal-safe)
    // before it ends; the parent just returns the pid.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid > 0 {
            return pid as u32;
        }
        let size = 256 * 1024;
        let stack = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            libc::_exit(100);
        }
        let arg = ((code as usize) << 1) | leader_first as usize;
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM;
        let top = (stack as *mut u8).add(size) as *mut libc::c_void;
        if libc::clone(thread_main, top, flags, arg as *mut libc::c_void) < 0 {
            libc::_exit(101);
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        if leader_first {
            libc::syscall(libc::SYS_exit, 0);
        } else {
            libc::syscall(
                libc::SYS_nanosleep,
                &ts,
                std::ptr::null_mut::<libc::timespec>(),
            );
            libc::syscall(libc::SYS_exit_group, code as libc::c_long);
        }
        libc::_exit(102);
    }
}

#[test]
fn exit_is_reported_once_per_multithreaded_process() {
    if !require(
        "exit_is_reported_once_per_multithreaded_process",
        &[Need::Root],
    ) {
        return;
    }
    let _lock = ebpf_lock();
    let trace = Trace::start(&[]);
    let mut cases = Vec::new();
    for (leader_first, code) in [(true, 3), (false, 5)] {
        let pid = spawn_threaded(leader_first, code);
        let status = wait::waitpid_timeout(pid as i32, wait::TOOL, "the threaded child");
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), code);
        cases.push((leader_first, pid, code));
    }
    let out = trace.stop();
    for (leader_first, pid, code) in cases {
        let exits = out.of("exit", pid);
        assert_eq!(exits.len(), 1, "leader_first={leader_first}: {exits:#?}");
        assert_eq!(
            exits[0]["exit_code"], code,
            "leader_first={leader_first}: {}",
            exits[0]
        );
        out.one("fork", pid);
    }
}

/// A 64-hex id unique to this run.
fn hex64() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:032x}{:032x}",
        nanos,
        u128::from(my_pid()) << 64 | 0xd37ec7
    )
}

#[test]
fn events_carry_the_cgroup_read_in_the_kernel() {
    if !require("events_carry_the_cgroup_read_in_the_kernel", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    let parent = format!("detector-test-{}.slice", my_pid());
    let leaf = format!("docker-{}.scope", hex64());
    let cg = CgroupGuard::new(&format!("{parent}/{leaf}")).expect("creating the test cgroup");
    let cg_path = cg.path.clone();
    let sh = PrivateBin::copy("/bin/sh", "cg-probe");
    let truebin = PrivateBin::copy("/bin/true", "cg-true");
    let trace = Trace::start(&[]);

    // 1. A process moved into the cgroup, then exec'ing.
    let mut child = Command::new(&sh.path)
        .arg("-c")
        .arg(format!("read x; exec {}", truebin.path.display()))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    cg.add(pid).unwrap();
    release(&mut child, "go\n");
    wait::wait_timeout(&mut child, wait::TOOL, "cg-probe");

    // 2. A child forked straight into the cgroup (clone3 + CLONE_INTO_CGROUP) while its
    //    parent (this test) stays outside: the fork event must carry the child's cgroup.
    let into = clone_into_cgroup(&cg.path);

    let out = trace.stop();
    let id = cg.id();
    assert_ne!(id, 0);
    let true_path = truebin.path.to_str().unwrap();
    let execs: Vec<_> = out
        .of("exec", pid)
        .into_iter()
        .filter(|e| e["exe_path"] == true_path)
        .collect();
    assert_eq!(execs.len(), 1, "{execs:#?}");
    // The whole path, walked in the kernel.
    let path = format!("/{parent}/{leaf}");
    for ev in [execs[0], out.one("exit", pid)] {
        assert_eq!(ev["cgroup_id"], id, "{ev}");
        assert_eq!(ev["cgroup_path"], path.as_str(), "{ev}");
        assert_eq!(ev["cgroup_path_partial"], false, "{ev}");
    }
    // Before the move, the same process was outside the test cgroup.
    let first = out
        .of("exec", pid)
        .into_iter()
        .find(|e| e["exe_path"] != true_path)
        .cloned();
    if let Some(first) = first {
        assert_ne!(first["cgroup_id"], id, "{first}");
    }
    match into {
        Some(child) => {
            let ev = out.one("fork", child);
            assert_eq!(ev["cgroup_id"], id, "{ev}");
            assert_eq!(ev["cgroup_path"], path.as_str(), "{ev}");
        }
        None => eprintln!("note: clone3(CLONE_INTO_CGROUP) unavailable, fork part skipped"),
    }
    drop(cg);
    assert!(
        !cg_path.exists(),
        "cgroup {} not removed",
        cg_path.display()
    );
}

/// Forks a child directly into `cgroup` with clone3; the child exits at once. Returns its
/// pid, or None when the kernel refuses clone3/CLONE_INTO_CGROUP.
fn clone_into_cgroup(cgroup: &std::path::Path) -> Option<u32> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let dir = std::fs::File::open(cgroup).ok()?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: fork-like clone3 (no CLONE_VM); the child only calls exit_group.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: child of a fork: end at once.
        unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    }
    if pid < 0 {
        return None;
    }
    wait::waitpid_timeout(pid as i32, wait::TOOL, "the clone3 child");
    Some(pid as u32)
}

#[test]
fn storm_of_20000_fork_exec_loses_nothing() {
    if !require("storm_of_20000_fork_exec_loses_nothing", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    const N: u32 = 20_000;
    let bin = PrivateBin::copy("/bin/true", "storm-true");
    let sh = PrivateBin::copy("/bin/sh", "storm-worker");
    let trace = Trace::start(&[]);
    let started = std::time::Instant::now();
    let mut worker = Command::new(&sh.path)
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt {N} ]; do {}; i=$((i+1)); done",
            bin.path.display()
        ))
        .spawn()
        .unwrap();
    let worker_pid = worker.id();
    assert!(wait::wait_timeout(&mut worker, wait::CONTAINER, "the storm worker").success());
    let elapsed = started.elapsed();
    let out = trace.stop();
    let path = bin.path.to_str().unwrap();
    // Children of the worker only (pids are reused on a busy host, so filter by parent).
    let of_worker = |kind: &str| {
        out.events
            .iter()
            .filter(|e| e["kind"] == kind && e["ppid"] == worker_pid)
            .collect::<Vec<_>>()
    };
    let execs = of_worker("exec")
        .iter()
        .filter(|e| e["exe_path"] == path)
        .count();
    let forks = of_worker("fork").len();
    let exits = of_worker("exit")
        .iter()
        .filter(|e| e["comm"] == "storm-true")
        .count();
    eprintln!(
        "storm: {N} fork+exec in {elapsed:?}: exec {execs}, fork {forks}, exit {exits}; summary {}",
        out.summary
    );
    let lost = out.summary["lost"].as_u64();
    assert_eq!(lost, Some(0), "ring buffer losses: {}", out.summary);
    assert_eq!(execs, N as usize, "summary {}", out.summary);
    assert_eq!(forks, N as usize, "summary {}", out.summary);
    assert_eq!(exits, N as usize, "summary {}", out.summary);
}

#[test]
fn a_normal_user_gets_the_capability_error() {
    if !require(
        "a_normal_user_gets_the_capability_error",
        &[Need::Root, Need::Tool("setpriv")],
    ) {
        return;
    }
    // The test binary's directory may not be readable by `nobody`: run a copy.
    let bin = PrivateBin::copy(common::detector_bin(), "detector");
    let out = wait::output_timeout(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin.path)
            .args(["trace", "--raw", "--duration", "1"]),
        wait::TOOL,
        "detector trace as nobody",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited successfully: {stderr}");
    assert!(stderr.contains("missing capabilities"), "stderr: {stderr}");
    assert!(stderr.contains("CAP_BPF"), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn exe_path_crosses_mounts_and_respects_chroot() {
    if !require("exe_path_crosses_mounts_and_respects_chroot", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    // A bind mount made in a private mount namespace (gone with the namespace), and a
    // chroot whose root holds a copy of /bin/true.
    let src = PrivateBin::copy("/bin/true", "mnt-true");
    let target = tempfile::Builder::new()
        .prefix("detector-mnt-")
        .tempdir()
        .unwrap();
    let target_path = target.path().canonicalize().unwrap();
    let jail = PrivateBin::copy("/bin/true", "jail-true");
    // A static-enough program inside the chroot: busybox-static (a prerequisite).
    let busybox = std::path::Path::new("/bin/busybox");
    let trace = Trace::start(&[]);
    let mut unshare = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} {} && exec {}/mnt-true",
            src.dir.path().display(),
            target_path.display(),
            target_path.display()
        ))
        .spawn()
        .unwrap();
    let mnt_pid = unshare.id();
    assert!(wait::wait_timeout(&mut unshare, wait::TOOL, "unshare -m").success());
    let chroot_pid = if require(
        "exe_path_crosses_mounts_and_respects_chroot (chroot part)",
        &[Need::Path("/bin/busybox")],
    ) {
        std::fs::create_dir_all(jail.dir.path().join("bin")).unwrap();
        std::fs::copy(busybox, jail.dir.path().join("bin/busybox")).unwrap();
        let mut c = Command::new("chroot")
            .arg(jail.dir.path())
            .args(["/bin/busybox", "true"])
            .spawn()
            .unwrap();
        let pid = c.id();
        assert!(wait::wait_timeout(&mut c, wait::TOOL, "chroot").success());
        Some(pid)
    } else {
        None
    };
    let out = trace.stop();
    let want = format!("{}/mnt-true", target_path.display());
    let ev = out
        .of("exec", mnt_pid)
        .into_iter()
        .find(|e| e["comm"] == "mnt-true")
        .unwrap_or_else(|| panic!("no exec of mnt-true: {:#?}", out.of("exec", mnt_pid)));
    assert_eq!(ev["exe_path"], want.as_str(), "{ev}");
    assert_eq!(ev["exe_path_partial"], false, "{ev}");
    if let Some(pid) = chroot_pid {
        let ev = out
            .of("exec", pid)
            .into_iter()
            .find(|e| e["comm"] == "busybox")
            .unwrap_or_else(|| panic!("no exec of busybox: {:#?}", out.of("exec", pid)));
        assert_eq!(ev["exe_path"], "/bin/busybox", "{ev}");
    }
}

/// Inode of one of our own namespaces (`/proc/self/ns/<name>`).
fn own_ns(name: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/ns/{name}"))
        .unwrap()
        .ino()
}

#[test]
fn namespaces_tty_and_session_are_reported() {
    if !require("namespaces_tty_and_session_are_reported", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    let bin = PrivateBin::copy("/bin/true", "ns-true");
    let trace = Trace::start(&[]);
    // In a new pid namespace the program is pid 1 there.
    let st = wait::status_timeout(
        Command::new("unshare")
            .args(["--pid", "--fork", "--"])
            .arg(&bin.path),
        wait::TOOL,
        "unshare --pid",
    );
    assert!(st.success());
    // Under `script` it runs on a pseudo-terminal, as a session leader.
    // `script` starts the command through `$SHELL -c`; whether that shell
    // forks or execs a lone command differs between shells (and CI's
    // `$SHELL` is not ours), so `exec` makes the program itself the
    // session leader whatever the shell.
    let st = wait::status_timeout(
        Command::new("script")
            .env("SHELL", "/bin/sh")
            .arg("-qc")
            .arg(format!("exec {}", bin.path.display()))
            .arg("/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
        wait::TOOL,
        "script",
    );
    assert!(st.success());
    let out = trace.stop();
    let execs: Vec<&Value> = out
        .events
        .iter()
        .filter(|e| e["kind"] == "exec" && e["comm"] == "ns-true")
        .collect();
    assert_eq!(execs.len(), 2, "{execs:#?}");
    let in_ns = execs
        .iter()
        .find(|e| e["ns_pid"] == 1)
        .expect("an exec with ns_pid 1");
    assert_ne!(in_ns["pid"], 1, "{in_ns}");
    assert_ne!(in_ns["pid_ns_ino"], own_ns("pid"), "{in_ns}");
    assert_eq!(in_ns["mnt_ns_ino"], own_ns("mnt"), "{in_ns}");
    let on_tty = execs
        .iter()
        .find(|e| !e["tty"].is_null())
        .expect("an exec with a tty");
    // Unix98 pseudo-terminal slaves have majors 136..=143.
    let major = on_tty["tty"]["major"].as_u64().unwrap();
    assert!((136..=143).contains(&major), "{on_tty}");
    assert_eq!(on_tty["sid"], on_tty["pid"], "{on_tty}");
    assert_eq!(on_tty["pid_ns_ino"], own_ns("pid"), "{on_tty}");
    assert_eq!(on_tty["ns_pid"], on_tty["pid"], "{on_tty}");
}

#[test]
fn a_tiny_ring_counts_what_it_loses() {
    if !require("a_tiny_ring_counts_what_it_loses", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    const N: u64 = 3000;
    let bin = PrivateBin::copy("/bin/true", "tiny-ring-true");
    let sh = PrivateBin::copy("/bin/sh", "tiny-ring-worker");
    // One page: a few records at most.
    let trace = Trace::start(&["--ring-bytes", "4096"]);
    let st = wait::status_timeout(
        Command::new(&sh.path).arg("-c").arg(format!(
            "i=0; while [ $i -lt {N} ]; do {}; i=$((i+1)); done",
            bin.path.display()
        )),
        wait::CONTAINER,
        "the tiny-ring worker",
    );
    assert!(st.success());
    let out = trace.stop();
    let path = bin.path.to_str().unwrap();
    let got = out
        .events
        .iter()
        .filter(|e| e["kind"] == "exec" && e["exe_path"] == path)
        .count() as u64;
    let lost = out.summary["counters"]["lost_exec"].as_u64().unwrap();
    eprintln!("tiny ring: {got} of {N} execs received, lost_exec {lost}");
    // Every exec is either delivered or counted as lost: nothing vanishes silently.
    assert!(
        got + lost >= N,
        "received {got} + lost {lost} < {N}: {}",
        out.summary
    );
    assert_eq!(out.summary["malformed"], 0);
}

#[test]
fn a_bad_ring_size_is_a_clear_error() {
    if !require("a_bad_ring_size_is_a_clear_error", &[Need::Root]) {
        return;
    }
    let out = wait::output_timeout(
        Command::new(common::detector_bin()).args([
            "trace",
            "--raw",
            "--duration",
            "0",
            "--ring-bytes",
            "5000",
        ]),
        wait::TOOL,
        "detector trace with a bad ring size",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("power of two"), "{stderr}");
}
