//! Helpers shared by the end-to-end tests: a cgroup guard, and a handle on a running
//! `detector trace` that collects its JSON lines. (Prerequisite checks: the library's
//! [`detector::testsupport::require`].)
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::Duration,
};

/// Serialises tests that load eBPF programs: each `detector trace` sees every event on the
/// host, and a storm in one test would slow the others' daemons. The binary's one lock
/// ([`crate::wait::serial`]: re-entrant, and waiting for it is bounded).
pub fn ebpf_lock() -> crate::wait::Serial {
    crate::wait::serial()
}

/// Bound on `detector trace` exiting after SIGINT (it drains and prints its counters in
/// well under a second; a hang guard).
const TRACE_STOP_BOUND: Duration = Duration::from_secs(30);

/// Root of the cgroup v2 hierarchy (hybrid hosts mount it at `unified`).
pub fn cgroup2_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        unified.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// A cgroup (and its parent directories) created for a test, removed on drop — also when
/// the test fails. Processes still inside are moved back to the root cgroup first.
pub struct CgroupGuard {
    /// Directories we created, outermost first.
    created: Vec<PathBuf>,
    pub path: PathBuf,
}

impl CgroupGuard {
    /// Creates `root/relative` (each missing component).
    pub fn new(relative: &str) -> std::io::Result<Self> {
        let root = cgroup2_root();
        let mut guard = CgroupGuard {
            created: Vec::new(),
            path: root.join(relative),
        };
        let mut dir = root;
        for comp in Path::new(relative).components() {
            dir.push(comp);
            if !dir.exists() {
                std::fs::create_dir(&dir)?;
                guard.created.push(dir.clone());
            }
        }
        Ok(guard)
    }

    /// Moves process `pid` into this cgroup.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// The cgroup id: the directory's inode number.
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0)
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let root_procs = cgroup2_root().join("cgroup.procs");
        for dir in self.created.iter().rev() {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines() {
                    let _ = std::fs::write(&root_procs, pid);
                }
            }
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A running `detector trace`, with its stdout collected by a background thread so the
/// daemon never blocks on a full pipe.
pub struct Trace {
    child: Child,
    stdout: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    /// Every stdout line as it is printed, for tests that watch events arrive.
    live: mpsc::Receiver<String>,
}

/// What a stopped `detector trace` printed.
pub struct TraceOutput {
    /// Every stdout line, parsed (a line that is not JSON fails the test).
    pub events: Vec<serde_json::Value>,
    /// The `{"counters":…}` line from stderr.
    pub summary: serde_json::Value,
    pub stderr: Vec<String>,
}

impl TraceOutput {
    /// Events of `kind` whose `tgid` is `pid`.
    pub fn of(&self, kind: &str, pid: u32) -> Vec<&serde_json::Value> {
        self.events
            .iter()
            .filter(|e| e["kind"] == kind && e["tgid"] == pid)
            .collect()
    }

    /// The one event of `kind` for `pid`; fails the test otherwise.
    pub fn one(&self, kind: &str, pid: u32) -> &serde_json::Value {
        let found = self.of(kind, pid);
        assert_eq!(
            found.len(),
            1,
            "expected one {kind} event for pid {pid}, got {found:#?}\nsummary: {}",
            self.summary
        );
        found[0]
    }
}

pub fn detector_bin() -> &'static str {
    env!("CARGO_BIN_EXE_detector")
}

impl Trace {
    /// Starts `detector trace --raw` with `args` and waits until its programs are attached.
    pub fn start(args: &[&str]) -> Trace {
        Self::spawn(&["trace", "--raw"], args)
    }

    /// Starts `detector trace` in its default mode (ECS documents, as `detector run`
    /// evaluates them) and waits until it is attached and has seeded its table from /proc.
    pub fn start_ecs(args: &[&str]) -> Trace {
        Self::spawn(&["trace"], args)
    }

    fn spawn(mode: &[&str], args: &[&str]) -> Trace {
        let mut child = Command::new(detector_bin())
            .args(mode)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning detector trace");
        let out = child.stdout.take().unwrap();
        let (live_tx, live) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .inspect(|l| {
                    let _ = live_tx.send(l.clone());
                })
                .collect::<Vec<_>>()
        });
        let err = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("\"ready\":true") {
                    let _ = ready_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        let trace = Trace {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            live,
        };
        if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let out = trace.stop();
            panic!(
                "detector trace did not become ready; stderr:\n{}",
                out.stderr.join("\n")
            );
        }
        trace
    }

    /// Waits up to `timeout` for a printed event that `want` accepts (lines printed before
    /// this call and not yet looked at count too); `None` when none came.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.live.recv_timeout(left).ok()?;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && want(&v)
            {
                return Some(v);
            }
        }
    }

    /// Stops the daemon with SIGINT and returns everything it printed. Bounded: a trace
    /// that does not exit, or whose pipes stay open, is killed and fails the test.
    pub fn stop(mut self) -> TraceOutput {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        crate::wait::wait_timeout(
            &mut self.child,
            TRACE_STOP_BOUND,
            "detector trace to exit after SIGINT",
        );
        let lines = crate::wait::join_timeout(
            self.stdout.take().unwrap(),
            TRACE_STOP_BOUND,
            "detector trace's stdout to close",
        );
        let stderr = crate::wait::join_timeout(
            self.stderr.take().unwrap(),
            TRACE_STOP_BOUND,
            "detector trace's stderr to close",
        );
        let events = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect();
        let summary = stderr
            .iter()
            .rev()
            .find(|l| l.starts_with("{\"counters\""))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        TraceOutput {
            events,
            summary,
            stderr,
        }
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if self.stdout.is_some() {
            crate::wait::kill_and_reap(&mut self.child);
        }
    }
}

/// A private copy of a host binary (so its events can be told apart by path), in a
/// temporary directory readable by everyone.
pub struct PrivateBin {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl PrivateBin {
    pub fn copy(src: &str, name: &str) -> PrivateBin {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("detector-test-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().canonicalize().unwrap().join(name);
        std::fs::copy(src, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Make sure the copy is on disk before anyone execs it (ETXTBSY otherwise).
        std::fs::File::open(&path).unwrap().sync_all().unwrap();
        PrivateBin { dir, path }
    }
}

/// Writes `line` to a child's stdin (used to release a waiting child).
pub fn release(child: &mut Child, line: &str) {
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(line.as_bytes()).unwrap();
    stdin.flush().unwrap();
}
