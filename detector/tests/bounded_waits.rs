//! The bounded-wait helpers of `common/wait.rs` fail within their bounds, naming what they
//! waited for, on the things that used to hang a run: a stopped child, a child that never
//! exits, a grandchild holding a pipe open, a stuck thread, a silent channel. No root
//! needed. (The container helpers on a stopped container: `containers_smoke.rs`.)

#[path = "common/wait.rs"]
mod wait;

use std::process::Command;
use std::time::{Duration, Instant};

/// Slack for killing and reaping after the bound (a loaded machine is slow to schedule).
const SLACK: Duration = Duration::from_secs(10);

/// A child stopped with SIGSTOP: `try_wait_timeout` fails within its bound, naming what
/// it waited for, and the child is killed and reaped (SIGKILL ends a stopped process).
#[test]
fn a_stopped_child_fails_the_wait_within_its_bound() {
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = child.id();
    // SAFETY: kill(2) on our own, not yet reaped, child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    wait::until(Duration::from_secs(10), "the child to stop", || {
        (wait::proc_state(pid) == Some('T')).then_some(())
    });
    let bound = Duration::from_millis(500);
    let t0 = Instant::now();
    let err = wait::try_wait_timeout(&mut child, bound, "the stopped sleep").unwrap_err();
    let took = t0.elapsed();
    assert!(
        took >= bound && took < bound + SLACK,
        "failed after {took:?}"
    );
    assert!(
        err.contains("timed out") && err.contains("the stopped sleep"),
        "{err}"
    );
    // Reaped: the pid is gone (not even a zombie).
    assert_eq!(wait::proc_state(pid), None, "pid {pid} left behind");
}

/// The panicking form says the same.
#[test]
#[should_panic(expected = "waiting for a child that never exits")]
fn wait_timeout_panics_naming_what_it_waited_for() {
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    wait::wait_timeout(
        &mut child,
        Duration::from_millis(200),
        "a child that never exits",
    );
}

/// `output_timeout` on a command that stops itself fails within its bound.
#[test]
fn a_command_that_stops_itself_fails_output_within_its_bound() {
    let bound = Duration::from_millis(500);
    let t0 = Instant::now();
    let err = wait::try_output_timeout(
        Command::new("sh").args(["-c", "kill -STOP $$; echo never"]),
        bound,
        "a self-stopping sh",
    )
    .unwrap_err();
    let took = t0.elapsed();
    assert!(took < bound + SLACK, "failed after {took:?}");
    assert!(err.contains("a self-stopping sh"), "{err}");
}

/// The child exits, but a grandchild keeps its stdout open: collecting the output is
/// bounded too, and the error says which pipe stayed open.
#[test]
fn a_grandchild_holding_the_pipe_fails_output_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let bound = Duration::from_millis(500);
    let t0 = Instant::now();
    let err = wait::try_output_timeout(
        Command::new("sh")
            .args(["-c", "sleep 600 & echo $! > \"$0\""])
            .arg(&pidfile),
        bound,
        "a sh whose grandchild keeps stdout",
    )
    .unwrap_err();
    let took = t0.elapsed();
    // The pipes get at least 5 s after the exit (see `try_child_output_timeout`).
    assert!(
        took < Duration::from_secs(5) + SLACK,
        "failed after {took:?}"
    );
    assert!(err.contains("stdout to close"), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the sleep this test started (its pid, read back from the file).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// A thread that never finishes: the join fails within its bound.
#[test]
fn a_stuck_thread_fails_the_join_within_its_bound() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let stuck = std::thread::spawn(move || rx.recv().ok());
    let bound = Duration::from_millis(300);
    let t0 = Instant::now();
    let err = wait::try_join_timeout(stuck, bound, "a stuck reader").unwrap_err();
    assert!(t0.elapsed() < bound + SLACK);
    assert!(err.contains("a stuck reader"), "{err}");
    drop(tx); // releases the thread
}

/// A silent channel: `recv_timeout` panics naming what it waited for.
#[test]
#[should_panic(expected = "timed out after 200ms waiting for a line that never comes")]
fn a_silent_channel_fails_recv_within_its_bound() {
    let (_tx, rx) = std::sync::mpsc::channel::<String>();
    wait::recv_timeout(&rx, Duration::from_millis(200), "a line that never comes");
}

/// The serialising lock is re-entrant on one thread (a test holding it may start a
/// daemon that takes it too) and excludes other threads until the last guard drops.
#[test]
fn the_serial_lock_is_reentrant_and_exclusive() {
    let outer = wait::serial();
    let inner = wait::serial();
    let (tx, rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let _g = wait::serial();
        tx.send(()).unwrap();
    });
    drop(inner);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "another thread got the lock while this one held it"
    );
    drop(outer);
    wait::recv_timeout(
        &rx,
        Duration::from_secs(10),
        "the other thread to get the lock",
    );
    wait::join_timeout(other, Duration::from_secs(10), "the other thread");
}
