//! Detection latency: `ssh -V` execs in a runc container while `detector run` writes alerts
//! to a file; latency = when the alert line was readable in the file (CLOCK_BOOTTIME, read
//! through inotify) − the kernel's exec timestamp carried in the alert.
//!
//! Contract with the alert builder: every alert carries the kernel's boot-time timestamp of
//! the event (ns since boot, `bpf_ktime_get_boot_ns`, i.e. CLOCK_BOOTTIME) as an unsigned
//! integer at [`KERNEL_NS_FIELD`] (a dotted path: nested objects `{"detector": {"event": {"boot_ns":
//! N}}` or one flat key `"detector.event.boot_ns"`, both accepted). Alerts are matched to the
//! container by `container.id`.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::child::Measured;
use super::container::Container;
use super::detector::{DetectorCmd, READY_MARKER, READY_TIMEOUT};
use super::report::{Latency, Outcome};
use super::stats::percentile;

/// Where the alert carries the kernel exec timestamp (ns, CLOCK_BOOTTIME).
pub const KERNEL_NS_FIELD: &str = "detector.event.boot_ns";
/// Where the alert carries the container id.
pub const CONTAINER_ID_FIELD: &str = "container.id";

/// Now on CLOCK_BOOTTIME, ns (the clock of `bpf_ktime_get_boot_ns`).
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Looks up a dotted field: nested objects first, then one flat key.
pub fn field<'a>(v: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    let mut nested = true;
    for part in dotted.split('.') {
        match cur.get(part) {
            Some(n) => cur = n,
            None => {
                nested = false;
                break;
            }
        }
    }
    if nested { Some(cur) } else { v.get(dotted) }
}

/// Latency in ns of one alert line seen at `seen_ns`, if it belongs to `container_id`.
pub fn alert_latency(line: &[u8], seen_ns: u64, container_id: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    if field(&v, CONTAINER_ID_FIELD)?.as_str()? != container_id {
        return None;
    }
    let k = field(&v, KERNEL_NS_FIELD)?.as_u64()?;
    seen_ns.checked_sub(k)
}

/// Lines appended to a file, each stamped with CLOCK_BOOTTIME when it became readable.
struct Tail {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(u64, Vec<u8>)>>,
}

impl Tail {
    /// Watches `file`'s directory with inotify and reads new complete lines as they land.
    fn start(file: PathBuf) -> anyhow::Result<Tail> {
        // SAFETY: plain syscalls; the fd is owned by OwnedFd from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            bail!("inotify_init1: {}", std::io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let dir = file.parent().unwrap_or(Path::new("/"));
        let cdir = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))?;
        let wd = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                cdir.as_ptr(),
                libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO,
            )
        };
        if wd < 0 {
            bail!(
                "inotify_add_watch {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            let mut offset = 0u64;
            let mut evbuf = [0u8; 4096];
            loop {
                let done = flag.load(Ordering::Relaxed);
                let mut pfd = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; then drain the non-blocking inotify fd.
                unsafe {
                    libc::poll(&mut pfd, 1, 20);
                    while libc::read(fd.as_raw_fd(), evbuf.as_mut_ptr().cast(), evbuf.len()) > 0 {}
                }
                if let Ok(mut f) = std::fs::File::open(&file)
                    && f.seek(SeekFrom::Start(offset)).is_ok()
                {
                    let mut buf = Vec::new();
                    if let Ok(n) = f.read_to_end(&mut buf) {
                        let now = boottime_ns();
                        offset += n as u64;
                        pending.extend_from_slice(&buf);
                        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            seen.push((now, line));
                        }
                    }
                }
                if done {
                    return seen;
                }
            }
        });
        Ok(Tail { stop, handle })
    }

    fn finish(self) -> Vec<(u64, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// Generous: 60 s plus 100 ms per exec (runs take about 8 ms per `ssh -V` here).
/// A copy of a config with `suppression_window_secs = 0`, beside the original (so its
/// relative paths still resolve), removed on drop.
struct UnsuppressedConfig(PathBuf);

impl UnsuppressedConfig {
    fn write(config: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("reading {}", config.display()))?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .with_context(|| format!("parsing {}", config.display()))?;
        doc["alerts"]["suppression_window_secs"] = toml_edit::value(0);
        let name = format!(".bench-latency-{}.toml", std::process::id());
        let path = config.with_file_name(name);
        std::fs::write(&path, doc.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(UnsuppressedConfig(path))
    }
}

impl Drop for UnsuppressedConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn container_timeout(execs: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(100).saturating_mul(execs.min(1 << 20) as u32)
}

fn loop_script(n: u64) -> String {
    format!("i=0; while [ $i -lt {n} ]; do ssh -V 2>/dev/null; i=$((i+1)); done")
}

/// Runs the measurement; without a detector, still runs the container once so the
/// plumbing is proven, and says so in the reason.
pub fn run(det: &DetectorCmd, scratch: &Path, execs: u64) -> Outcome<Latency> {
    match measure(det, scratch, execs) {
        Ok(o) => o,
        Err(e) => Outcome::Unavailable {
            reason: format!("{e:#}"),
        },
    }
}

fn measure(det: &DetectorCmd, scratch: &Path, execs: u64) -> anyhow::Result<Outcome<Latency>> {
    let ctr = Container::prepare(scratch, &loop_script(execs))?;
    if let Err(why) = det.check() {
        let t = Instant::now();
        ctr.run(container_timeout(execs))?;
        return Ok(Outcome::Unavailable {
            reason: format!(
                "detector: {why}; container ran {execs} ssh -V in {:.2} s without it",
                t.elapsed().as_secs_f64()
            ),
        });
    }
    let alerts = scratch.join("latency-alerts.ndjson");
    // Every `ssh -V` must be an alert to be timed: the shipped config folds identical
    // alerts for a minute, so the daemon runs on a copy with that window off.
    let unsuppressed = UnsuppressedConfig::write(&det.config)?;
    let det = &DetectorCmd {
        config: unsuppressed.0.clone(),
        ..det.clone()
    };
    let mut p = Measured::spawn({
        let mut c = det.run_command(&alerts);
        c.stdout(std::process::Stdio::null());
        c
    })?;
    p.wait_ready(READY_TIMEOUT, |m| {
        m.stderr_lines().iter().any(|l| l.contains(READY_MARKER))
    })?;
    let tail = Tail::start(alerts.clone())?;
    let ran = ctr.run(container_timeout(execs));
    // Give the last alerts time to land: stop after 2 s without growth (at most 20 s).
    let mut last_len = 0;
    let mut still = Instant::now();
    let begin = Instant::now();
    while still.elapsed() < Duration::from_secs(2) && begin.elapsed() < Duration::from_secs(20) {
        let len = std::fs::metadata(&alerts).map_or(0, |m| m.len());
        if len != last_len {
            last_len = len;
            still = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = tail.finish();
    let _ = p.stop(libc::SIGTERM, Duration::from_secs(30));
    ran?;
    let lat: Vec<f64> = lines
        .iter()
        .filter_map(|(seen, l)| alert_latency(l, *seen, &ctr.id))
        .map(|ns| ns as f64 / 1e6)
        .collect();
    if lat.is_empty() {
        bail!(
            "{} alert lines, none for container {} with a numeric {KERNEL_NS_FIELD}",
            lines.len(),
            &ctr.id[..12]
        );
    }
    Ok(Outcome::Measured(Latency {
        execs,
        alerts: lat.len() as u64,
        p50_ms: percentile(&lat, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile(&lat, 99.0).unwrap_or(f64::NAN),
        max_ms: percentile(&lat, 100.0).unwrap_or(f64::NAN),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_lines() {
        let id = "a".repeat(64);
        let nested =
            format!(r#"{{"container":{{"id":"{id}"}},"detector":{{"event":{{"boot_ns":1000}}}}}}"#);
        let flat = format!(r#"{{"container.id":"{id}","detector.event.boot_ns":1500}}"#);
        let other = r#"{"container":{"id":"b"},"detector":{"event":{"boot_ns":1}}}"#;
        let future =
            format!(r#"{{"container":{{"id":"{id}"}},"detector":{{"event":{{"boot_ns":9000}}}}}}"#);
        let cases: &[(&str, Option<u64>)] = &[
            (&nested, Some(4000)),
            (&flat, Some(3500)),
            (other, None),
            (&future, None),
            ("{\"container\":{\"id\":\"", None),
            (r#"{"container":{"id":"x"}}"#, None),
        ];
        for (line, want) in cases {
            assert_eq!(alert_latency(line.as_bytes(), 5000, &id), *want, "{line}");
        }
    }

    #[test]
    fn tail_sees_whole_lines_with_their_time() {
        use std::io::Write;
        // Removed on drop, also when an assertion fails.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let file = dir.join("alerts.ndjson");
        let tail = Tail::start(file.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut f = std::fs::File::create(&file).unwrap();
        let mut written = Vec::new();
        for i in 0..20 {
            written.push(boottime_ns());
            // A line in two writes: the tail must not emit the half.
            f.write_all(format!("{{\"n\":{i}").as_bytes()).unwrap();
            f.flush().unwrap();
            f.write_all(b"}\n").unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        f.write_all(b"partial").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let lines = tail.finish();
        assert_eq!(lines.len(), 20);
        for (i, (seen, line)) in lines.iter().enumerate() {
            assert_eq!(line, format!("{{\"n\":{i}}}\n").as_bytes());
            assert!(*seen >= written[i], "line {i} seen before it was written");
            assert!(*seen - written[i] < 1_000_000_000, "line {i} seen late");
        }
    }

    #[test]
    fn boottime_advances() {
        let a = boottime_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(boottime_ns() >= a + 2_000_000);
    }
}
