//! A running `detector run` for end-to-end tests: started on the SHIPPED config
//! (`config/detector.toml`) or a variant of it, with a temporary alert file; waits for the
//! ready line, signals by pid, stops with SIGTERM and collects the final stats. Dropping it
//! kills the daemon, so a failing test never leaves one behind.
//!
//! Every wait here is bounded ([`crate::wait`]), and a running [`Daemon`] holds the binary's
//! serialising lock ([`crate::wait::serial`]): daemons see every event on the host, so tests
//! that run them (and the storms some of them make) go one at a time.
//!
//! Include with `#[path = "common/daemon.rs"] mod daemon;` (and `common/wait.rs` as
//! `mod wait` at the crate root).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::wait::{self, Serial};

/// Bound on the ready line: loading the programs and seeding from /proc takes well under a
/// second here; this is a hang guard only (the measured time is [`Daemon::started_in`]).
const READY_BOUND: Duration = Duration::from_secs(60);
/// The daemon's documented stop contract (README): SIGTERM/SIGINT → exit 0 within 5 s.
pub const STOP_CONTRACT: Duration = Duration::from_secs(5);
/// After the contract, how long `stop` waits before it kills the daemon and fails.
const STOP_BOUND: Duration = Duration::from_secs(30);
/// Bound on the output threads finishing once the daemon has exited (its pipes closed).
const PIPES_BOUND: Duration = Duration::from_secs(10);

/// The rule the shipped `config/rules/` holds.
pub const SSH_RULE_ID: &str = "03a514d9-500e-443e-b6a9-72718c548f6c";
pub const SSH_RULE_NAME: &str = "SSH Process Launched From Inside A Container";

/// The repository root (`detector/..`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped config file.
pub fn shipped_config() -> PathBuf {
    repo().join("config/detector.toml")
}

/// The shipped config's text with `rules.paths` made absolute (so a copy written elsewhere
/// still finds the shipped rules) and `edit` applied.
pub fn config_variant(edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(shipped_config()).expect("shipped config");
    let rules = repo().join("config/rules").canonicalize().unwrap();
    let text = text.replace(
        "\npaths = [\"rules\"]\n",
        &format!("\npaths = [{:?}]\n", rules.display().to_string()),
    );
    assert!(
        text.contains(&rules.display().to_string()),
        "rules.paths line moved"
    );
    edit(text)
}

/// A config file in a fresh temporary directory: the shipped config with `edit` applied
/// (see [`config_variant`]). The directory lives as long as the returned guard.
pub fn config_file(edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("detector.toml");
    std::fs::write(&config, config_variant(edit)).unwrap();
    (dir, config)
}

/// The shipped config with suppression off (`[alerts] suppression_window_secs = 0`): every
/// match is an alert, for tests that count matches. (The shipped window folds identical
/// matches; tests/alert_noise.rs checks that.) The directory lives as long as the guard.
pub fn unsuppressed_config() -> (tempfile::TempDir, PathBuf) {
    config_file(|t| {
        let shipped = "\nsuppression_window_secs = 60\n";
        assert!(t.contains(shipped), "the shipped window moved");
        t.replace(shipped, "\nsuppression_window_secs = 0\n")
    })
}

/// A daemon stopped by [`Daemon::pause`]; resumed on drop.
pub struct Paused(u32);

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// How to start the daemon.
#[derive(Default)]
pub struct Opts {
    /// Config file; the shipped one when `None`.
    pub config: Option<PathBuf>,
    /// More arguments after `run --config … --alerts-file …`.
    pub args: Vec<String>,
    /// Environment variables set for the daemon (`NOTIFY_SOCKET`, …).
    pub env: Vec<(String, String)>,
}

pub struct Daemon {
    child: Child,
    /// Temporary directory holding the alert file (and anything the test puts there).
    pub dir: tempfile::TempDir,
    pub alerts_path: PathBuf,
    /// The `detector: ready: …` line.
    pub ready: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
    stdout_thread: Option<JoinHandle<()>>,
    /// From spawn to the ready line: this machine's pace now, for bounds derived from it.
    pub started_in: Duration,
    /// Serialises the tests that run a daemon (released when the daemon is stopped).
    _serial: Serial,
}

/// What a stopped daemon left.
pub struct Stopped {
    pub status: ExitStatus,
    /// From SIGTERM to exit.
    pub took: Duration,
    pub final_stats: Value,
    pub stderr: Vec<String>,
    /// The alert file's bytes.
    pub raw: Vec<u8>,
    /// Every line of the alert file, parsed (a torn or non-JSON line fails the test).
    pub docs: Vec<Value>,
    /// The alert file's permission bits (`None`: no file).
    pub mode: Option<u32>,
}

impl Stopped {
    /// Alerts (not loss reports) of `container_id`.
    pub fn alerts_for(&self, container_id: &str) -> Vec<&Value> {
        alerts_for(&self.docs, container_id)
    }
}

/// Alerts of `container_id` among `docs`.
pub fn alerts_for<'a>(docs: &'a [Value], container_id: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["event"]["kind"] == "alert" && d["container"]["id"] == container_id)
        .collect()
}

/// Parses NDJSON; panics naming the line that is not a whole JSON object.
pub fn parse_ndjson(raw: &[u8]) -> Vec<Value> {
    assert!(
        raw.is_empty() || raw.ends_with(b"\n"),
        "alert file does not end with a newline (torn last line): …{:?}",
        String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..])
    );
    raw.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "alert line {} is not JSON ({e}): {:?}",
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            });
            assert!(v.is_object(), "alert line {} is not an object", i + 1);
            v
        })
        .collect()
}

impl Daemon {
    /// Starts `detector run` on the shipped config.
    pub fn start() -> Daemon {
        Self::start_with(Opts::default())
    }

    /// Starts `detector run` and waits (bounded) for its ready line.
    pub fn start_with(opts: Opts) -> Daemon {
        let serial = wait::serial();
        let dir = tempfile::Builder::new()
            .prefix("detector-daemon-")
            .tempdir()
            .unwrap();
        let alerts_path = dir.path().join("alerts.ndjson");
        let config = opts.config.unwrap_or_else(shipped_config);
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--alerts-file")
            .arg(&alerts_path)
            .args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning detector run");
        // stdout (the shipped config also writes alerts there) is drained so the daemon
        // never blocks on a full pipe.
        let mut out = child.stdout.take().unwrap();
        let stdout_thread = std::thread::spawn(move || {
            let mut sink = [0u8; 65536];
            while matches!(out.read(&mut sink), Ok(n) if n > 0) {}
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        let stderr_thread = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut d = Daemon {
            child,
            dir,
            alerts_path,
            ready: String::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
            stdout_thread: Some(stdout_thread),
            started_in: Duration::ZERO,
            _serial: serial,
        };
        match d.wait_stderr(|l| l.starts_with("detector: ready: "), READY_BOUND) {
            Some(l) => d.ready = l,
            None => panic!(
                "detector run did not become ready within {READY_BOUND:?} (exit: {:?}); stderr:\n{}",
                d.child.try_wait(),
                d.stderr_lines().join("\n")
            ),
        }
        d.started_in = t0.elapsed();
        d
    }

    /// Stops the daemon with SIGSTOP until the returned guard drops (SIGCONT), also when
    /// the test fails: a stopped daemon would hang `stop`.
    pub fn pause(&self) -> Paused {
        self.signal(libc::SIGSTOP);
        Paused(self.pid())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the daemon (our own child, by pid).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; it is not reaped before `stop`/drop.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line at or after index `from` satisfies `pred`.
    pub fn wait_stderr_from(
        &self,
        from: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .skip(from)
                .find(|l| pred(l))
            {
                return Some(l.clone());
            }
            if Instant::now() > deadline || self.exited() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_stderr(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.wait_stderr_from(0, pred, timeout)
    }

    fn exited(&self) -> bool {
        // Without reaping: /proc/<pid>/stat shows Z once it has exited.
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }

    /// The whole lines of the alert file so far, parsed.
    pub fn docs(&self) -> Vec<Value> {
        let raw = std::fs::read(&self.alerts_path).unwrap_or_default();
        let end = raw.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        parse_ndjson(&raw[..end])
    }

    /// Waits until `pred` holds for the alerts of `container_id` (returns them), or the
    /// timeout passes (returns what there is).
    pub fn wait_alerts(
        &self,
        container_id: &str,
        pred: impl Fn(&[&Value]) -> bool,
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let docs = self.docs();
            let mine: Vec<&Value> = alerts_for(&docs, container_id);
            if pred(&mine) || Instant::now() > deadline {
                return mine.into_iter().cloned().collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait (bounded: past it the daemon is killed and the test fails), collect
    /// the alert file and final stats.
    pub fn stop(self) -> Stopped {
        self.stop_with(libc::SIGTERM)
    }

    /// Like [`Daemon::stop`] with another signal (SIGINT).
    pub fn stop_with(mut self, sig: i32) -> Stopped {
        self.signal(sig);
        let t0 = Instant::now();
        let status = wait::try_wait_timeout(
            &mut self.child,
            STOP_BOUND,
            "detector run to exit after its stop signal",
        )
        .unwrap_or_else(|e| panic!("{e}; stderr:\n{}", self.stderr_lines().join("\n")));
        let took = t0.elapsed();
        self.join_output();
        let stderr = self.stderr_lines();
        let final_stats = stderr
            .iter()
            .rev()
            .find_map(|l| {
                l.starts_with("{\"final_stats\"")
                    .then(|| serde_json::from_str::<Value>(l).ok())
                    .flatten()
            })
            .map(|v| v["final_stats"].clone())
            .unwrap_or(Value::Null);
        let raw = std::fs::read(&self.alerts_path).unwrap_or_default();
        let mode = std::fs::metadata(&self.alerts_path).ok().map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o7777
        });
        let docs = parse_ndjson(&raw);
        Stopped {
            mode,
            status,
            took,
            final_stats,
            stderr,
            raw,
            docs,
        }
    }
}

impl Daemon {
    /// Joins the output threads of an exited daemon (bounded: a grandchild holding a pipe
    /// fails the test instead of hanging it).
    fn join_output(&mut self) {
        if let Some(t) = self.stderr_thread.take() {
            wait::join_timeout(t, PIPES_BOUND, "the daemon's stderr to close");
        }
        if let Some(t) = self.stdout_thread.take() {
            wait::join_timeout(t, PIPES_BOUND, "the daemon's stdout to close");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.stderr_thread.is_some() {
            // SIGKILL ends a paused (SIGSTOPped) daemon too.
            wait::kill_and_reap(&mut self.child);
        }
    }
}

/// Runs `detector run` to completion (start-up failures): exit status and stderr. A daemon
/// that does not exit by itself (it would be running) is killed and fails the test.
pub fn run_to_exit(cmd: &mut Command) -> (ExitStatus, String) {
    let out = wait::output_timeout(
        cmd,
        Duration::from_secs(30),
        "detector run to exit by itself (a start-up failure)",
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
