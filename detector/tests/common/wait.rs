//! Bounded waits for the end-to-end tests, and the lock that serialises what shares the
//! machine.
//!
//! Every wait on something outside the test — a child process (a container, a daemon, a
//! tool), a thread, a channel, a pipe, a file or `/proc` state — goes through one of these,
//! so a stuck container or daemon fails the test *naming what it waited for* instead of
//! hanging the run until CI's limit and losing the whole report. On a timeout the child is
//! killed (SIGKILL also ends a stopped process) and reaped.
//!
//! Each bound here is a hang guard, not a performance assertion: it is generous, and a test
//! that asserts timing derives its bound from what it measured (see the callers).
//!
//! Include once per test binary, at its root: `#[path = "common/wait.rs"] mod wait;` (the
//! other helpers in `common/` reach it as `crate::wait`).
#![allow(dead_code)]

use std::cell::Cell;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a polling wait looks again.
const POLL: Duration = Duration::from_millis(10);
/// After SIGKILL, how long reaping may take before we give up on the pid (a process in
/// uninterruptible sleep cannot be reaped; the test has failed already).
const REAP: Duration = Duration::from_secs(10);

/// Default bound for a short external tool (`runc state`, `podman inspect`, `mount`…).
pub const TOOL: Duration = Duration::from_secs(60);
/// Default bound for a container run to completion (start-up, the program, tear-down),
/// generous enough for a 15,000-process storm inside one.
pub const CONTAINER: Duration = Duration::from_secs(180);

fn timed_out(what: &str, bound: Duration) -> String {
    format!("timed out after {bound:?} waiting for {what}")
}

/// Polls `child` until it exits or `bound` passes. On timeout the child is killed and
/// reaped and the error names `what`. A stopped (SIGSTOP) child counts as not exited.
pub fn try_wait_timeout(
    child: &mut Child,
    bound: Duration,
    what: &str,
) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
        if Instant::now() >= deadline {
            kill_and_reap(child);
            return Err(format!(
                "{} (pid {}, killed)",
                timed_out(what, bound),
                child.id()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// [`try_wait_timeout`] that fails the test.
pub fn wait_timeout(child: &mut Child, bound: Duration, what: &str) -> ExitStatus {
    try_wait_timeout(child, bound, what).unwrap_or_else(|e| panic!("{e}"))
}

/// SIGKILL (works on a stopped process too), then reap within [`REAP`].
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let deadline = Instant::now() + REAP;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// `waitpid(pid)` for a child forked without `std::process` (raw `fork`/`clone`), with a
/// bound: on timeout it is killed and the test fails naming `what`. Returns the raw wait
/// status.
pub fn waitpid_timeout(pid: i32, bound: Duration, what: &str) -> i32 {
    let deadline = Instant::now() + bound;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with WNOHANG; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        assert!(
            r == 0,
            "waitpid({pid}) for {what}: {}",
            std::io::Error::last_os_error()
        );
        if Instant::now() >= deadline {
            // SAFETY: kill(2) on our own, not yet reaped, child; then a blocking reap of a
            // SIGKILLed process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("{} (pid {pid}, killed)", timed_out(what, bound));
        }
        std::thread::sleep(POLL);
    }
}

/// Reads a pipe to its end on a thread (so neither pipe can fill and block the child).
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            buf
        })
    })
}

/// Like `Command::output()` (stdin from /dev/null, stdout and stderr collected), bounded:
/// the child must exit, and its pipes close, within `bound`; otherwise it is killed and the
/// error names `what` (and what it printed so far is lost with it).
pub fn try_output_timeout(
    cmd: &mut Command,
    bound: Duration,
    what: &str,
) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {what} ({cmd:?}): {e}"))?;
    try_child_output_timeout(child, bound, what)
}

/// Like `Child::wait_with_output()`, bounded as [`try_output_timeout`] is (for a child
/// spawned with piped stdout/stderr whose pid the caller needed first).
pub fn try_child_output_timeout(
    mut child: Child,
    bound: Duration,
    what: &str,
) -> Result<Output, String> {
    let deadline = Instant::now() + bound;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = try_wait_timeout(&mut child, bound, what)?;
    // A grandchild that inherited a pipe keeps it open past the child's exit: bounded too.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(5));
    let collect = |h: Option<JoinHandle<Vec<u8>>>, name: &str| match h {
        None => Ok(Vec::new()),
        Some(h) => try_join_timeout(h, left, &format!("{what}'s {name} to close")),
    };
    let stdout = collect(out, "stdout")?;
    let stderr = collect(err, "stderr")?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// [`try_output_timeout`] that fails the test.
pub fn output_timeout(cmd: &mut Command, bound: Duration, what: &str) -> Output {
    try_output_timeout(cmd, bound, what).unwrap_or_else(|e| panic!("{e}"))
}

/// Like `Command::status()` (stdio inherited unless set), bounded.
pub fn try_status_timeout(
    cmd: &mut Command,
    bound: Duration,
    what: &str,
) -> Result<ExitStatus, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {what} ({cmd:?}): {e}"))?;
    try_wait_timeout(&mut child, bound, what)
}

/// [`try_status_timeout`] that fails the test.
pub fn status_timeout(cmd: &mut Command, bound: Duration, what: &str) -> ExitStatus {
    try_status_timeout(cmd, bound, what).unwrap_or_else(|e| panic!("{e}"))
}

/// Joins `handle` within `bound`. A thread that panicked passes its panic on; one that is
/// still running at the bound is left behind (it cannot be killed) and the error names
/// `what`.
pub fn try_join_timeout<T>(
    handle: JoinHandle<T>,
    bound: Duration,
    what: &str,
) -> Result<T, String> {
    let deadline = Instant::now() + bound;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return Err(timed_out(what, bound));
        }
        std::thread::sleep(POLL);
    }
    match handle.join() {
        Ok(v) => Ok(v),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// [`try_join_timeout`] that fails the test.
pub fn join_timeout<T>(handle: JoinHandle<T>, bound: Duration, what: &str) -> T {
    try_join_timeout(handle, bound, what).unwrap_or_else(|e| panic!("{e}"))
}

/// `rx.recv()` within `bound`; fails the test naming `what` on timeout or when the sender
/// is gone.
pub fn recv_timeout<T>(rx: &Receiver<T>, bound: Duration, what: &str) -> T {
    match rx.recv_timeout(bound) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{}", timed_out(what, bound)),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("waiting for {what}: the sender is gone")
        }
    }
}

/// Polls `probe` (every `every`) until it returns `Some`, or `bound` passes (`None`).
pub fn try_until<T>(
    bound: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`try_until`] that fails the test naming `what`.
pub fn until<T>(bound: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    try_until(bound, POLL, probe).unwrap_or_else(|| panic!("{}", timed_out(what, bound)))
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `T` stopped, `Z` zombie…); `None`
/// when the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// A description of an exit status for failure messages (signal included).
pub fn describe(st: &ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => format!("{st:?}"),
    }
}

/// The lock that serialises the tests of one binary that load eBPF programs or storm the
/// machine: each daemon sees every event on the host, and a storm in one test would slow
/// the daemons of others and break their timing. Re-entrant on one thread (a test that
/// holds it may start a daemon that takes it too, or two daemons in turn); released when
/// the thread's last guard drops. Waiting for it is bounded too.
pub struct Serial {
    /// Not `Send`: the guard is released on the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());
/// How long a test waits for the other tests of its binary to finish.
const SERIAL_BOUND: Duration = Duration::from_secs(30 * 60);

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static HELD: std::cell::RefCell<Option<MutexGuard<'static, ()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Takes the binary's serialising lock (see [`Serial`]).
pub fn serial() -> Serial {
    if DEPTH.get() == 0 {
        let deadline = Instant::now() + SERIAL_BOUND;
        let guard = loop {
            match SERIAL.try_lock() {
                Ok(g) => break g,
                // A test that failed while holding it: the lock is still good.
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                timed_out(
                    "the other tests of this binary to release the e2e lock",
                    SERIAL_BOUND
                )
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        HELD.with(|h| *h.borrow_mut() = Some(guard));
    }
    DEPTH.set(DEPTH.get() + 1);
    Serial {
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        let depth = DEPTH.get() - 1;
        DEPTH.set(depth);
        if depth == 0 {
            HELD.with(|h| h.borrow_mut().take());
        }
    }
}
