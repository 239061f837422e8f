//! The fault tests' own harness: a `detector run` child with its stderr collected, a probe
//! binary whose execs alert, the test rule files, and guards for mounts.
//!
//! Kept apart from `common/` on purpose (another suite owns the daemon helpers there), but
//! its waits are bounded by the same helpers (`common/wait.rs`, `crate::wait`), and a
//! running [`Daemon`] holds the binary's serialising lock ([`lock`]).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::wait::{self, Serial};

/// Bound on a daemon's exit after SIGTERM (or by itself): the contract is 5 s; this is the
/// hang guard past which it is killed and the test fails.
const EXIT_BOUND: Duration = Duration::from_secs(30);
/// Bound on the stderr reader finishing once the daemon has exited.
const PIPE_BOUND: Duration = Duration::from_secs(10);

/// The probe's name: the rule below alerts on every exec of it.
pub const PROBE: &str = "dtr-fault-probe";
/// Name of the probe rule (alerts carry it in `rule.name`).
pub const PROBE_RULE: &str = "Faults Probe Exec";

/// One of our test rules in Elastic's TOML format.
pub fn rule_toml(name: &str, rule_id: &str, query: &str) -> String {
    format!(
        r#"[metadata]
creation_date = "2026/11/27"
maturity = "production"
updated_date = "2026/11/27"

[rule]
author = ["detector fault tests"]
description = "Written by the fault-injection tests."
language = "eql"
license = "Apache-2.0"
name = "{name}"
risk_score = 21
rule_id = "{rule_id}"
severity = "low"
type = "eql"
query = '''
{query}
'''
"#
    )
}

/// The probe rule: any exec of a binary named [`PROBE`], host or container.
pub fn probe_rule() -> String {
    rule_toml(
        PROBE_RULE,
        "6a1f0c1e-7f55-4f4e-9b8e-0fa17e5f0001",
        &format!(r#"process where event.type == "start" and process.name == "{PROBE}""#),
    )
}

/// A scratch directory with the rules, the config and the alert file of one daemon.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub rules: PathBuf,
    pub config: PathBuf,
    pub alerts: PathBuf,
    /// The probe: a private copy of /bin/true named [`PROBE`].
    pub probe: PathBuf,
}

impl Setup {
    /// Rules dir with the probe rule; config = `[rules] paths = [rules]`, no stdout, the
    /// alert file in the dir, stats every second, no suppression (every probe run is an
    /// alert: these tests count them), plus `extra` (TOML appended; it may add keys to
    /// `[sinks.file]`, which comes last).
    pub fn new(extra_sections: &str, file_keys: &str) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("detector-faults-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let rules = root.join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("probe.toml"), probe_rule()).unwrap();
        let alerts = root.join("alerts.ndjson");
        let config = root.join("detector.toml");
        let probe = copy_bin("/bin/true", &root.join(PROBE));
        let mut s = Setup {
            dir,
            rules,
            config,
            alerts,
            probe,
        };
        s.write_config(extra_sections, file_keys);
        s
    }

    /// (Re)writes the config file.
    pub fn write_config(&mut self, extra_sections: &str, file_keys: &str) {
        let text = format!(
            "[rules]\npaths = [{rules:?}]\n\n[stats]\ninterval_secs = 1\n\n{extra_sections}\n\n\
             [alerts]\nsuppression_window_secs = 0\n\n[sinks]\nstdout = false\n\n[sinks.file]\npath = {alerts:?}\n{file_keys}\n",
            rules = self.rules.display().to_string(),
            alerts = self.alerts.display().to_string(),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Runs the probe once with `tag` as its argument (waits for it, bounded).
    pub fn probe(&self, tag: &str) {
        let st = wait::status_timeout(Command::new(&self.probe).arg(tag), wait::TOOL, "the probe");
        assert!(st.success(), "probe failed: {st}");
    }
}

/// Copies `src` to `dst` (mode 0755, synced so an exec never sees ETXTBSY).
pub fn copy_bin(src: &str, dst: &Path) -> PathBuf {
    std::fs::copy(src, dst).unwrap();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::File::open(dst).unwrap().sync_all().unwrap();
    dst.to_path_buf()
}

pub fn detector_bin() -> &'static str {
    env!("CARGO_BIN_EXE_detector")
}

/// A daemon stalled by SIGSTOP (its reader reads nothing, so the kernel ring fills);
/// resumed by SIGCONT on drop, also when the test fails.
pub struct Stalled(i32);

impl Stalled {
    pub fn new(d: &Daemon) -> Stalled {
        d.signal(libc::SIGSTOP);
        Stalled(d.pid())
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, which the Daemon still holds
        // (not reaped), so the pid cannot have been reused.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A running `detector run`. Killed on drop (also when the test fails).
pub struct Daemon {
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// From spawn to the ready line (set by [`Daemon::start`]): this machine's pace now,
    /// for bounds derived from it.
    pub started_in: Duration,
    /// Serialises the daemons of this binary (released when this one is gone).
    _serial: Serial,
}

/// What a stopped daemon left behind.
pub struct Stopped {
    pub status: ExitStatus,
    pub stderr: Vec<String>,
    /// The `final_stats` object (Null when the daemon printed none).
    pub final_stats: Value,
}

impl Stopped {
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

impl Daemon {
    /// Spawns `detector run --config <config> <args>` without waiting for anything.
    pub fn spawn(config: &Path, args: &[&str]) -> Daemon {
        let serial = lock();
        let mut child = Command::new(detector_bin())
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("DETECTOR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning detector run");
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            stderr,
            reader: Some(reader),
            started_in: Duration::ZERO,
            _serial: serial,
        }
    }

    /// Spawns and waits for the `ready` line; returns the daemon and the number of
    /// processes it seeded from /proc.
    pub fn start(config: &Path, args: &[&str]) -> (Daemon, u64) {
        let t0 = Instant::now();
        let mut d = Daemon::spawn(config, args);
        let line = d.wait_stderr("detector: ready:", Duration::from_secs(90));
        d.started_in = t0.elapsed();
        let seeded = line
            .split(", ")
            .find_map(|p| p.strip_suffix(" processes seeded"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("cannot parse the ready line {line:?}"));
        (d, seeded)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Number of stderr lines so far (to wait for lines after a point).
    pub fn stderr_len(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    /// Waits for a stderr line containing `needle`; fails the test (with the log) on
    /// timeout or when the daemon exits.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_stderr_after(0, needle, timeout)
    }

    /// Like [`Self::wait_stderr`], only lines from index `from` on.
    pub fn wait_stderr_after(&mut self, from: usize, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr().iter().skip(from).find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // The rest of what it printed: the reader ends when the pipe closes.
                if let Some(r) = self.reader.take() {
                    let _ = wait::try_join_timeout(r, PIPE_BOUND, "the daemon's stderr");
                }
                panic!(
                    "detector exited ({st}) before printing {needle:?}; stderr:\n{}",
                    self.stderr().join("\n")
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "no {needle:?} on stderr within {timeout:?}; stderr:\n{}",
                    self.stderr().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by pid (it has not been reaped: we hold it).
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Is it still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, wait, and collect what it printed.
    pub fn stop(mut self) -> Stopped {
        if self.alive() {
            self.signal(libc::SIGTERM);
        }
        self.finish()
    }

    /// Waits for the exit (after a signal or by itself), with a bound.
    pub fn finish(mut self) -> Stopped {
        let status = wait::try_wait_timeout(&mut self.child, EXIT_BOUND, "detector run to exit")
            .unwrap_or_else(|e| panic!("{e}; stderr:\n{}", self.stderr().join("\n")));
        if let Some(r) = self.reader.take() {
            wait::join_timeout(r, PIPE_BOUND, "the daemon's stderr to close");
        }
        let stderr = self.stderr();
        let final_stats = stderr
            .iter()
            .rev()
            .find(|l| l.starts_with("{\"final_stats\""))
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("final_stats is JSON")["final_stats"]
                    .clone()
            })
            .unwrap_or(Value::Null);
        Stopped {
            status,
            stderr,
            final_stats,
        }
    }

    /// SIGKILL and reap (bounded).
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        wait::wait_timeout(
            &mut self.child,
            EXIT_BOUND,
            "detector run to die of SIGKILL",
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            wait::kill_and_reap(&mut self.child);
        }
    }
}

/// Every line of an NDJSON file, parsed; a line that is not one whole JSON object fails
/// the test (naming the line). A missing file is empty.
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    let bytes = read_or_empty(path);
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "{}: the last line is partial: {:?}",
        path.display(),
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
    );
    parse_lines(path, &bytes)
}

/// The alert file as a crashed writer may leave it (README, "Alert file after a crash"):
/// whole JSON lines, then at most one partial last line (bytes after the last newline).
/// Returns the whole lines parsed and the partial tail (empty when there is none); any
/// other damage — a line in the middle that is not one JSON object — fails the test.
pub fn read_ndjson_after_crash(path: &Path) -> (Vec<Value>, Vec<u8>) {
    let bytes = read_or_empty(path);
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (parse_lines(path, &bytes[..end]), bytes[end..].to_vec())
}

fn read_or_empty(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Parses newline-separated JSON objects, naming the first line that is not one.
fn parse_lines(path: &Path, bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: not one JSON object ({e}): {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(&l[..l.len().min(300)])
                )
            });
            assert!(
                v.is_object(),
                "{} line {}: not an object",
                path.display(),
                i + 1
            );
            v
        })
        .collect()
}

/// The probe alerts in `docs`, as their tag (the probe's first argument).
pub fn probe_tags(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| d["event"]["kind"] == "alert" && d["rule"]["name"] == PROBE_RULE)
        .filter(|d| {
            d["process"]["args"][1]
                .as_str()
                .is_some_and(|t| t.starts_with(TAG_PREFIX))
        })
        .filter_map(|d| d["process"]["args"][1].as_str().map(str::to_owned))
        .collect()
}

/// Waits until `path` holds probe alerts for every tag in `tags`; returns all its docs.
pub fn wait_tags(path: &Path, tags: &[String], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let docs = read_ndjson_whole(path);
        let have = probe_tags(&docs);
        if tags.iter().all(|t| have.contains(t)) {
            return docs;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = tags.iter().filter(|t| !have.contains(t)).collect();
            panic!(
                "{}: no alert for {missing:?} within {timeout:?} (have {have:?})",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The whole lines of `path` while a daemon writes it: a last line without its newline yet
/// is being written (the sink writes a line with one `write(2)`, so this is rare) and is
/// left for the next look.
fn read_ndjson_whole(path: &Path) -> Vec<Value> {
    read_ndjson_after_crash(path).0
}

/// Asserts every tag occurs exactly once in `have` and nothing else does.
pub fn assert_exactly_once(have: &[String], want: &[String], what: &str) {
    for t in want {
        let n = have.iter().filter(|h| *h == t).count();
        assert_eq!(n, 1, "{what}: alert {t:?} found {n} times (all: {have:?})");
    }
    for h in have {
        assert!(
            want.contains(h),
            "{what}: unexpected alert {h:?} (want {want:?})"
        );
    }
}

/// Every tag starts with this (another suite's probes on the host never match).
pub const TAG_PREFIX: &str = "fault-tag-";

/// Tags `fault-tag-<prefix>-0` … `-(n-1)`.
pub fn tags(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{TAG_PREFIX}{prefix}-{i}"))
        .collect()
}

/// A tmpfs mounted by the test; unmounted (lazily, so a busy file cannot leave it behind)
/// on drop.
pub struct TmpfsGuard {
    pub path: PathBuf,
    _parent: tempfile::TempDir,
}

impl TmpfsGuard {
    pub fn mount(size: &str) -> TmpfsGuard {
        let parent = tempfile::Builder::new()
            .prefix("detector-faults-tmpfs-")
            .tempdir()
            .unwrap();
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let st = wait::status_timeout(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0755"),
                    "tmpfs",
                ])
                .arg(&path),
            wait::TOOL,
            "mount -t tmpfs",
        );
        assert!(st.success(), "mount tmpfs failed: {st}");
        TmpfsGuard {
            path,
            _parent: parent,
        }
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = wait::try_status_timeout(
            Command::new("umount").arg("-l").arg(&self.path),
            wait::TOOL,
            "umount -l",
        );
    }
}

/// Serialises the tests of this binary (each daemon sees every exec on the host; a storm
/// in one would disturb another's timing): the binary's one re-entrant, bounded lock
/// ([`crate::wait::serial`]), also taken by every [`Daemon`] and by the trace in
/// `hostile.rs`.
pub fn lock() -> Serial {
    wait::serial()
}
