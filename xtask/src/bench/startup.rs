//! Start-up: time from launching `detector trace` to its first event line on stdout (and
//! to its `{"ready":…}` line on stderr), while a background loop execs `/bin/true` so an
//! event is always on its way.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use anyhow::{Context, bail};

use super::detector::{DetectorCmd, READY_MARKER};
use super::report::{Outcome, Startup};
use super::stats::median;

/// Longest a launch may take to deliver its first event.
const FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Measures `runs` launches.
pub fn run(det: &DetectorCmd, runs: u32) -> Outcome<Startup> {
    if !det.bin.is_file() {
        return Outcome::Unavailable {
            reason: format!("no binary at {}", det.bin.display()),
        };
    }
    match Command::new(&det.bin).args(["trace", "--help"]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Outcome::Unavailable {
                reason: format!(
                    "`detector trace --help` failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                ),
            };
        }
        Err(e) => {
            return Outcome::Unavailable {
                reason: format!("cannot execute {}: {e}", det.bin.display()),
            };
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let background = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = Command::new("/bin/true").status();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut first = Vec::new();
    let mut ready = Vec::new();
    let mut error = None;
    for _ in 0..runs.max(1) {
        if super::interrupt::requested() {
            error = Some("interrupted".to_owned());
            break;
        }
        match once(det) {
            Ok((f, r)) => {
                first.push(f);
                ready.extend(r);
            }
            Err(e) => {
                error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = background.join();
    match (error, median(&first)) {
        (Some(reason), _) => Outcome::Unavailable { reason },
        (None, Some(f)) => Outcome::Measured(Startup {
            runs: first.len() as u32,
            ready_ms: median(&ready),
            first_event_ms: f,
        }),
        (None, None) => Outcome::Unavailable {
            reason: "no launch measured".into(),
        },
    }
}

/// One launch: (ms to first stdout line, ms to ready line if seen by then).
fn once(det: &DetectorCmd) -> anyhow::Result<(f64, Option<f64>)> {
    let t0 = Instant::now();
    let mut child = det
        .trace_command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("start detector trace")?;
    let (tx, rx) = mpsc::channel::<(bool, Instant, String)>();
    let out = child.stdout.take().context("stdout")?;
    let err = child.stderr.take().context("stderr")?;
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        if BufReader::new(out).read_line(&mut line).unwrap_or(0) > 0 {
            let _ = tx.send((true, Instant::now(), line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send((false, Instant::now(), line));
        }
    });
    let mut ready = None;
    let mut stderr_tail = Vec::new();
    let result = loop {
        match rx.recv_timeout(FIRST_EVENT_TIMEOUT.saturating_sub(t0.elapsed())) {
            Ok((true, at, _)) => break Ok((at - t0).as_secs_f64() * 1e3),
            Ok((false, at, l)) => {
                if ready.is_none() && l.contains(READY_MARKER) {
                    ready = Some((at - t0).as_secs_f64() * 1e3);
                }
                stderr_tail.push(l);
            }
            Err(_) => {
                break Err(if let Ok(Some(st)) = child.try_wait() {
                    format!("detector trace exited ({st}): {}", stderr_tail.join(" | "))
                } else {
                    format!("no event within {} s", FIRST_EVENT_TIMEOUT.as_secs())
                });
            }
        }
    };
    // SAFETY: signalling our own child; then reaped below.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match result {
        Ok(f) => Ok((f, ready)),
        Err(e) => bail!(e),
    }
}
