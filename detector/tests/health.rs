//! Health that a supervisor can act on, end to end with the real daemon: systemd's
//! `sd_notify` protocol spoken to a socket this test listens on (`$NOTIFY_SOCKET`), and the
//! heartbeat file `detector health` checks (the Kubernetes probe). Root tests, gated by
//! [`detector::testsupport::require`]; every wait is bounded.
//!
//! What "cannot pass by accident" means here: READY must come with the programs already
//! attached (the daemon holds a BPF link when it arrives), watchdog pings must stop while
//! the daemon is SIGSTOPped (a stalled loop must let systemd's watchdog fire) and resume
//! after SIGCONT, and the probe must fail for a stopped daemon, a stopped loop and no file.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/monitor.rs"]
mod monitor;
#[path = "common/wait.rs"]
mod wait;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use daemon::{Daemon, Opts, config_file};
use detector::testsupport::{Need, require};
use monitor::health;

/// The watchdog timeout the tests ask for: short, so the test is quick, yet long enough
/// for a loaded machine's scheduling jitter.
const WATCHDOG: Duration = Duration::from_secs(2);
/// Hang guard on each message the daemon should send.
const MESSAGE_BOUND: Duration = Duration::from_secs(15);

/// One datagram received: when, what, and whether the daemon held a BPF link then.
#[derive(Clone, Debug)]
struct Message {
    at: Instant,
    text: String,
    attached: bool,
}

/// A `$NOTIFY_SOCKET` listener collecting every datagram on a thread.
struct Listener {
    messages: Arc<Mutex<Vec<Message>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Whether `pid` holds a BPF link (an fd reading `anon_inode:bpf_link`): its programs are
/// attached.
fn holds_bpf_link(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("anon_inode:bpf_link"))
        })
    })
}

/// Our children's pids (the daemon is the only one while a test runs it).
fn children() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().nth(1))
                    .and_then(|ppid| ppid.parse::<u32>().ok())
                    == Some(me)
            })
        })
        .collect()
}

impl Listener {
    fn bind(path: &Path) -> Listener {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (m, d) = (messages.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !d.load(Ordering::Relaxed) {
                let Ok(len) = sock.recv(&mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                // Checked the moment READY arrives: were the programs attached by then?
                let attached = text == "READY=1" && children().into_iter().any(holds_bpf_link);
                m.lock().unwrap().push(Message {
                    at: Instant::now(),
                    text,
                    attached,
                });
            }
        });
        Listener {
            messages,
            done,
            thread: Some(thread),
        }
    }

    fn all(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until a message at or after index `from` satisfies `pred`; returns its index.
    fn wait_from(&self, from: usize, what: &str, pred: impl Fn(&str) -> bool) -> usize {
        wait::until(MESSAGE_BOUND, what, || {
            self.all()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| pred(&m.text))
                .map(|(i, _)| i)
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            wait::join_timeout(t, Duration::from_secs(10), "the notify listener to stop");
        }
    }
}

fn pings(messages: &[Message]) -> Vec<Instant> {
    messages
        .iter()
        .filter(|m| m.text == "WATCHDOG=1")
        .map(|m| m.at)
        .collect()
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` is measured.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[test]
fn sd_notify_ready_after_attach_watchdog_only_while_the_loop_turns() {
    if !require(
        "sd_notify_ready_after_attach_watchdog_only_while_the_loop_turns",
        &[Need::Root, Need::Path("/sys/kernel/btf/vmlinux")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let listener = Listener::bind(&socket);
    let (_cfg_dir, config) = config_file(|t| t.replace("interval_secs = 60", "interval_secs = 1"));
    let d = Daemon::start_with(Opts {
        config: Some(config),
        env: vec![
            ("NOTIFY_SOCKET".into(), socket.to_str().unwrap().into()),
            ("WATCHDOG_USEC".into(), WATCHDOG.as_micros().to_string()),
        ],
        ..Opts::default()
    });

    // READY=1 first, with the programs attached by then and the ready line printed.
    let ready = listener.wait_from(0, "READY=1", |t| t == "READY=1");
    let all = listener.all();
    assert_eq!(ready, 0, "READY=1 was not the first message: {all:?}");
    assert!(
        all[0].attached,
        "READY=1 arrived while the daemon held no BPF link"
    );
    assert!(d.ready.starts_with("detector: ready: "), "{}", d.ready);

    // STATUS= with the counters at each stats tick; regular pings.
    let status = listener.wait_from(0, "STATUS=", |t| t.starts_with("STATUS="));
    let text = &listener.all()[status].text;
    assert!(
        text.starts_with("STATUS=attached; ")
            && text.contains(" events, ")
            && text.contains(" lost, ")
            && text.ends_with(" alerts"),
        "{text}"
    );
    wait::until(MESSAGE_BOUND, "four watchdog pings", || {
        (pings(&listener.all()).len() >= 4).then_some(())
    });
    let p = pings(&listener.all());
    for w in p.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap < WATCHDOG,
            "pings {gap:?} apart: systemd's watchdog ({WATCHDOG:?}) would have fired"
        );
    }

    // SIGSTOP for longer than the watchdog timeout: not one ping (datagrams sent before
    // the stop are given 200 ms to arrive first).
    {
        let _paused = d.pause();
        wait::until(Duration::from_secs(10), "the daemon to be stopped", || {
            (wait::proc_state(d.pid()) == Some('T')).then_some(())
        });
        std::thread::sleep(Duration::from_millis(200));
        let before = listener.all().len();
        std::thread::sleep(WATCHDOG + WATCHDOG / 2);
        let during = &listener.all()[before..];
        assert!(
            pings(during).is_empty(),
            "watchdog pings while the daemon was stopped: {during:?}"
        );
    }
    let resumed = listener.all().len();
    listener.wait_from(resumed, "a ping after SIGCONT", |t| t == "WATCHDOG=1");

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    let from = listener.all().len();
    d.signal(libc::SIGHUP);
    let reloading = listener.wait_from(from, "RELOADING=1", |t| t.starts_with("RELOADING=1"));
    let text = listener.all()[reloading].text.clone();
    let usec: u64 = text
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC with RELOADING=1: {text:?}"));
    let now = monotonic_usec();
    assert!(
        usec <= now && now - usec < 60_000_000,
        "MONOTONIC_USEC={usec} is not a recent CLOCK_MONOTONIC (now {now})"
    );
    let ready_again = listener.wait_from(reloading, "READY=1 after the reload", |t| t == "READY=1");
    assert!(ready_again > reloading);
    assert!(
        d.wait_stderr(
            |l| l.starts_with("detector: reloaded: "),
            Duration::from_secs(10)
        )
        .is_some()
    );

    // SIGTERM: STOPPING=1.
    let from = listener.all().len();
    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.status);
    listener.wait_from(from, "STOPPING=1", |t| t == "STOPPING=1");
}

#[test]
fn health_probe_fails_without_heartbeat_stalled_loop_or_stopped_daemon() {
    if !require(
        "health_probe_fails_without_heartbeat_stalled_loop_or_stopped_daemon",
        &[Need::Root, Need::Path("/sys/kernel/btf/vmlinux")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hb = dir.path().join("heartbeat");
    let hb_arg = hb.to_str().unwrap();
    let max_age = "2";
    let probe = ["--heartbeat", hb_arg, "--max-age", max_age];

    let (ok, msg) = health(&probe);
    assert!(!ok && msg.contains("cannot read heartbeat"), "{msg}");

    let (_cfg_dir, config) = config_file(|t| {
        t.replace(
            "# heartbeat_path = \"/run/detector/heartbeat\"",
            &format!("heartbeat_path = {hb_arg:?}"),
        )
    });
    let d = Daemon::start_with(Opts {
        config: Some(config.clone()),
        ..Opts::default()
    });
    let msg = wait::until(MESSAGE_BOUND, "detector health to pass", || {
        let (ok, msg) = health(&probe);
        ok.then_some(msg)
    });
    assert!(
        msg.starts_with("detector: healthy: attached, pid "),
        "{msg}"
    );
    // The path from the config, as a probe without --heartbeat reads it.
    let (ok, msg) = health(&["--config", config.to_str().unwrap()]);
    assert!(ok, "{msg}");

    // A stopped loop: stale after --max-age.
    {
        let _paused = d.pause();
        std::thread::sleep(Duration::from_millis(3_500));
        let (ok, msg) = health(&probe);
        assert!(
            !ok && msg.contains("old (max 2 s)"),
            "a daemon stopped for 3.5 s: {msg}"
        );
    }
    wait::until(
        MESSAGE_BOUND,
        "detector health to pass after SIGCONT",
        || health(&probe).0.then_some(()),
    );

    // A stopped daemon: unhealthy at once (its last beat says not attached).
    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.status);
    let (ok, msg) = health(&probe);
    assert!(!ok && msg.contains("not attached"), "{msg}");
}
