//! `cargo xtask test`: the test runner. Builds every test binary of the workspace, runs each
//! one on its own (serially, extra arguments passed through) under a ceiling, then the doc
//! tests, and ends with a summary a reviewer can trust:
//! - per binary: passed / failed / ignored, and the tests that returned early because a
//!   prerequisite was missing (libtest counts those as passed);
//! - the number of privileged tests that ran;
//! - the list of skipped tests with their reasons.
//!
//! The skip and ran records come from the tests' gate (`detector::testsupport::require`):
//! each binary gets a fresh report directory in `DETECTOR_TEST_REPORT_DIR`. A binary that
//! outlives its ceiling is killed with its whole process group, and the runner prints its
//! last lines and the tests that had not finished. Every binary runs even when one fails
//! (`--no-fail-fast`); the exit status is non-zero when anything failed or timed out.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Environment variable naming the directory the tests' gate writes its records to.
const REPORT_DIR_VAR: &str = "DETECTOR_TEST_REPORT_DIR";
/// Lines of a hung binary's output shown when it is killed.
const TAIL_LINES: usize = 40;
/// How long the output of an exited binary may keep coming (a grandchild holding the pipe).
const DRAIN_BOUND: Duration = Duration::from_secs(5);

/// Options of `cargo xtask test` (parsed from the arguments after `test`).
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask test",
    about = "Build and run every test binary, then the doc tests, and print a summary"
)]
pub struct TestArgs {
    /// Run only the test binaries whose name contains one of these (e.g. `sensor`,
    /// `detector (lib)`, `doc` for the doc tests). Repeatable.
    #[arg(long = "bin-filter", value_name = "TEXT")]
    pub bin_filter: Vec<String>,
    /// Ceiling for one test binary, in seconds: past it the binary and its process group
    /// are killed and the run fails, naming what it was waiting for. (The whole suite takes
    /// about 5 minutes as root on 2 cores; its slowest binary, `daemon`, 1.5 minutes.)
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout_secs: u64,
    /// A command each test binary is run through, split at spaces: for instance
    /// `--wrap 'setpriv --reuid=65534 --regid=65534 --clear-groups --'` runs the suite as
    /// `nobody`, to see what an unprivileged user (or CI without root) gets. The report
    /// directories are then writable by all.
    #[arg(long, value_name = "COMMAND")]
    pub wrap: Option<String>,
    /// Arguments for every test binary (libtest's: a name filter, `--test-threads=1`,
    /// `--include-ignored`, …). `--test-threads=1` makes a hang name its test exactly.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub test_args: Vec<String>,
}

/// One test executable cargo built.
#[derive(Debug, Clone)]
struct TestBinary {
    /// `detector (lib)`, `detector (test sensor)`, …
    label: String,
    exe: PathBuf,
    /// The package's directory: cargo runs test binaries there.
    package_dir: PathBuf,
    package: String,
}

/// What one binary (or the doc-test run) did.
#[derive(Debug, Default)]
struct Outcome {
    label: String,
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Tests reported as FAILED.
    failed_tests: Vec<String>,
    /// Exit status: success, a failure, or killed at the ceiling.
    status: Status,
    took: Duration,
    /// Gate records of this binary.
    records: Vec<Record>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Status {
    #[default]
    Ok,
    Failed(String),
    TimedOut,
}

/// One record of the tests' gate.
#[derive(Debug, Clone, serde::Deserialize)]
struct Record {
    test: String,
    outcome: String,
    #[serde(default)]
    why: String,
}

/// Entry point: `args` are everything after `cargo xtask test`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let args = TestArgs::try_parse_from(
        std::iter::once("cargo xtask test".to_string()).chain(args.iter().cloned()),
    )
    .map_err(|e| {
        let _ = e.print();
        anyhow::anyhow!("bad arguments for `cargo xtask test`")
    })?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let report_root = fresh_report_dir()?;
    let result = run_all(root, &args, timeout, &report_root);
    let _ = std::fs::remove_dir_all(&report_root);
    result
}

fn run_all(root: &Path, args: &TestArgs, timeout: Duration, report_root: &Path) -> Result<()> {
    crate::step("building the test binaries");
    let binaries = build(root)?;
    let wanted = |label: &str| {
        args.bin_filter.is_empty() || args.bin_filter.iter().any(|f| label.contains(f.as_str()))
    };
    let selected: Vec<&TestBinary> = binaries.iter().filter(|b| wanted(&b.label)).collect();
    if selected.is_empty() && !wanted("doc tests") && !wanted("fuzz targets (check)") {
        bail!(
            "no test binary matches {:?}; there are: {}",
            args.bin_filter,
            binaries
                .iter()
                .map(|b| b.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let dist = dist_for_image_test(&selected)?;
    let mut outcomes = Vec::new();
    for (i, bin) in selected.iter().enumerate() {
        crate::step(&format!("[{}/{}] {}", i + 1, selected.len(), bin.label));
        let reports = report_root.join(format!("{i:03}"));
        std::fs::create_dir(&reports).with_context(|| format!("creating {}", reports.display()))?;
        if args.wrap.is_some() {
            // The wrapped binary may run as another user; the directory is this run's own.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&reports, std::fs::Permissions::from_mode(0o777))?;
        }
        let tests = list_tests(bin, args.wrap.as_deref(), &args.test_args);
        let mut cmd = wrapped(args.wrap.as_deref(), &bin.exe);
        cmd.args(&args.test_args)
            .current_dir(&bin.package_dir)
            .env("CARGO_MANIFEST_DIR", &bin.package_dir)
            .env("CARGO_PKG_NAME", &bin.package)
            .env(REPORT_DIR_VAR, &reports);
        if let Some(tarball) = &dist {
            cmd.env(DIST_TARBALL_VAR, tarball);
        }
        let mut outcome = run_bounded(&bin.label, cmd, timeout, &tests);
        outcome.records = read_records(&reports);
        outcomes.push(outcome);
    }

    if wanted("doc tests") {
        crate::step("doc tests");
        let reports = report_root.join("doc");
        std::fs::create_dir(&reports)?;
        let mut cmd = cargo_test(root);
        cmd.args(["--doc", "--"])
            .args(&args.test_args)
            .env(REPORT_DIR_VAR, &reports);
        let mut outcome = run_bounded("doc tests", cmd, timeout, &HashSet::new());
        outcome.records = read_records(&reports);
        outcomes.push(outcome);
    }

    // The fuzz crate is not a workspace member: build its targets (a check, not a fuzz
    // run) so a change that breaks them fails here, not in the next fuzzing session.
    if wanted("fuzz targets (check)") {
        crate::step("fuzz targets (check)");
        let started = std::time::Instant::now();
        let status = match crate::fuzz::check_targets(root) {
            Ok(()) => Status::Ok,
            Err(e) => Status::Failed(format!("{e:#}")),
        };
        outcomes.push(Outcome {
            label: "fuzz targets (check)".into(),
            passed: u64::from(status == Status::Ok),
            failed: u64::from(status != Status::Ok),
            status,
            took: started.elapsed(),
            ..Outcome::default()
        });
    }

    let summary = Summary::new(&outcomes);
    print!("{}", summary.render());
    if summary.ok() {
        Ok(())
    } else {
        bail!("tests failed (see the summary above)")
    }
}

/// Environment variable naming the release tarball tests/image.rs builds the image from.
const DIST_TARBALL_VAR: &str = "DETECTOR_DIST_TARBALL";

/// The release tarball (`cargo xtask dist`: a release build, about 2 minutes the first
/// time) when the container-image test is among the `selected` binaries and runs as root
/// (it builds and runs the image). A tarball given in the environment is used as is. When
/// it cannot be built, the test reports the missing prerequisite itself (and fails under
/// CI=true), so this only fails the run outright under CI.
fn dist_for_image_test(selected: &[&TestBinary]) -> Result<Option<PathBuf>> {
    if let Some(given) = std::env::var_os(DIST_TARBALL_VAR) {
        return Ok(Some(PathBuf::from(given)));
    }
    if !crate::is_root() || !selected.iter().any(|b| b.label.contains("test image")) {
        return Ok(None);
    }
    crate::step("building the release tarball for tests/image.rs (cargo xtask dist)");
    let args = crate::dist::DistArgs {
        binary: None,
        out_dir: None,
    };
    match crate::dist::build(&args) {
        Ok(tarball) => Ok(Some(tarball)),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            Err(e.context("building the tarball tests/image.rs needs"))
        }
        Err(e) => {
            println!("    warning: no release tarball ({e:#}); tests/image.rs will skip");
            Ok(None)
        }
    }
}

/// `exe` as a command, run through `wrap` when given.
fn wrapped(wrap: Option<&str>, exe: &Path) -> Command {
    let mut words = wrap.unwrap_or("").split_whitespace();
    match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

/// A new, empty directory for this run's records (its own, so runs never mix).
fn fresh_report_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "detector-test-report-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `cargo test` over the workspace. The eBPF crate only builds for bpfel-unknown-none
/// (through detector/build.rs), so it is left out.
fn cargo_test(root: &Path) -> Command {
    let mut cmd = crate::cargo(root);
    cmd.args(["test", "--workspace", "--exclude", "detector-ebpf"]);
    cmd
}

/// `cargo test --no-run`: builds every test binary and returns them from cargo's JSON
/// messages (compiler diagnostics are rendered to stderr as usual).
fn build(root: &Path) -> Result<Vec<TestBinary>> {
    let mut cmd = cargo_test(root);
    cmd.args(["--no-run", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped());
    println!("    $ {}", crate::show(&cmd));
    let mut child = cmd.spawn().context("running cargo test --no-run")?;
    let stdout = child.stdout.take().expect("piped");
    let mut binaries = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's messages")?;
        if let Some(b) = parse_artifact(&line) {
            binaries.push(b);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building the tests failed: {status}");
    }
    binaries.sort_by(|a, b| a.label.cmp(&b.label));
    binaries.dedup_by(|a, b| a.exe == b.exe);
    Ok(binaries)
}

/// A test executable from one line of cargo's JSON output, if the line announces one.
fn parse_artifact(line: &str) -> Option<TestBinary> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
        return None;
    }
    let exe = PathBuf::from(v["executable"].as_str()?);
    let manifest = PathBuf::from(v["manifest_path"].as_str()?);
    let package = package_name(v["package_id"].as_str()?, &manifest);
    let target = &v["target"];
    let name = target["name"].as_str().unwrap_or("?");
    let kind = target["kind"][0].as_str().unwrap_or("?");
    let label = match kind {
        "lib" | "proc-macro" => format!("{package} (lib)"),
        _ => format!("{package} ({kind} {name})"),
    };
    Some(TestBinary {
        label,
        exe,
        package_dir: manifest.parent()?.to_path_buf(),
        package,
    })
}

/// The package name in a cargo package id: `path+file:///…/detector#0.1.0` (named after its
/// directory), `path+file:///…/x#name@0.1.0`, or the older `name 0.1.0 (path+file://…)`.
fn package_name(id: &str, manifest: &Path) -> String {
    if let Some((path, frag)) = id.split_once('#') {
        if let Some((name, _version)) = frag.split_once('@') {
            return name.to_string();
        }
        if let Some(last) = path.rsplit('/').next().filter(|s| !s.is_empty()) {
            return last.to_string();
        }
    } else if let Some(name) = id.split_whitespace().next() {
        return name.to_string();
    }
    manifest
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "?".into())
}

/// The names of the tests `bin` will run with `test_args` (`--list`), to tell which had
/// not finished when a binary hangs. Empty when listing fails (then only what the output
/// showed is reported).
fn list_tests(bin: &TestBinary, wrap: Option<&str>, test_args: &[String]) -> HashSet<String> {
    // Only the name filters and the selection flags matter to `--list`.
    let keep: Vec<&String> = test_args
        .iter()
        .filter(|a| {
            !a.starts_with("--test-threads")
                && !matches!(
                    a.as_str(),
                    "--nocapture" | "--no-capture" | "--show-output" | "-q" | "--quiet"
                )
        })
        .collect();
    let out = wrapped(wrap, &bin.exe)
        .arg("--list")
        .args(keep)
        .current_dir(&bin.package_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect(),
        _ => HashSet::new(),
    }
}

/// What the runner learns from a binary's output while it runs.
#[derive(Debug, Default)]
struct Progress {
    /// The last lines of stdout and stderr, interleaved as they arrived.
    tail: VecDeque<String>,
    /// The unfinished last line of stdout: with `--test-threads=1`, libtest prints
    /// `test NAME ... ` when NAME starts and the verdict only when it ends.
    partial: String,
    /// Tests libtest reported a verdict for.
    finished: HashSet<String>,
    failed_tests: Vec<String>,
    /// Tests libtest said have been running for over 60 seconds.
    slow: Vec<String>,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Progress {
    /// Takes what it needs from one whole line of stdout.
    fn observe(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.passed += count_before(rest, " passed");
            self.failed += count_before(rest, " failed");
            self.ignored += count_before(rest, " ignored");
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" has been running for over 60 seconds") {
                self.slow.push(name.to_string());
            } else if let Some((name, verdict)) = rest.split_once(" ... ") {
                let verdict = verdict.trim();
                if !verdict.is_empty() {
                    self.finished.insert(name.to_string());
                }
                if verdict.starts_with("FAILED") {
                    self.failed_tests.push(name.to_string());
                }
            }
        }
    }

    fn push_tail(&mut self, line: String) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The tests that started and did not finish, as far as the output and the list tell.
    fn unfinished(&self, listed: &HashSet<String>) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(name) = self
            .partial
            .strip_prefix("test ")
            .and_then(|r| r.split(" ... ").next())
        {
            names.push(format!("{name} (started, no verdict)"));
        }
        for s in &self.slow {
            if !self.finished.contains(s) {
                names.push(format!("{s} (running for over 60 s)"));
            }
        }
        let mut rest: Vec<&String> = listed
            .iter()
            .filter(|t| !self.finished.contains(*t))
            .collect();
        rest.sort();
        if !rest.is_empty() {
            // With several test threads any of these may be the one; serially, the first
            // line above names it and these had not started.
            const SHOWN: usize = 10;
            let more = rest.len().saturating_sub(SHOWN);
            names.push(format!(
                "{} listed test(s) without a verdict: {}{}",
                rest.len(),
                rest.iter()
                    .take(SHOWN)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(", … and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        names
    }
}

/// The number written just before `word` in libtest's summary (`3 passed; 0 failed; …`).
fn count_before(text: &str, word: &str) -> u64 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word.trim_start())
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Copies `src` to `dst` as it arrives (so a watcher sees progress live) and feeds whole
/// lines to `progress`; stdout's unfinished last line is kept too.
fn pump(mut src: impl Read, mut dst: impl Write, progress: Arc<Mutex<Progress>>, stdout: bool) {
    let mut buf = [0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = dst.write_all(&buf[..n]);
        let _ = dst.flush();
        pending.extend_from_slice(&buf[..n]);
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if stdout {
                p.observe(&line);
            }
            p.push_tail(line);
        }
        if stdout {
            p.partial = String::from_utf8_lossy(&pending).into_owned();
        }
    }
}

/// Runs `cmd` in its own process group with its output shown live; past `timeout` the
/// whole group is killed and what it was waiting for is printed.
fn run_bounded(
    label: &str,
    mut cmd: Command,
    timeout: Duration,
    listed: &HashSet<String>,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        label: label.to_string(),
        ..Outcome::default()
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.status = Status::Failed(format!("cannot start: {e}"));
            return outcome;
        }
    };
    let progress = Arc::new(Mutex::new(Progress::default()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    for (reader, is_stdout) in [
        (Box::new(out) as Box<dyn Read + Send>, true),
        (Box::new(err) as Box<dyn Read + Send>, false),
    ] {
        let p = progress.clone();
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            if is_stdout {
                pump(reader, std::io::stdout(), p, true);
            } else {
                pump(reader, std::io::stderr(), p, false);
            }
            let _ = tx.send(());
        });
    }
    drop(done_tx);

    let pgid = child.id() as i32;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= timeout => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                outcome.status = Status::Failed(format!("cannot wait: {e}"));
                break None;
            }
        }
    };
    let timed_out = status.is_none() && outcome.status == Status::Ok;
    if status.is_none() {
        // SAFETY: kill(2) on the process group this runner created for the binary (its pid
        // is the group id, and it is not reaped yet, so the id is still ours).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = child.wait();
    }
    // Bounded: a grandchild outside the group may hold the pipes open.
    for _ in 0..2 {
        if done_rx.recv_timeout(DRAIN_BOUND).is_err() {
            break;
        }
    }
    outcome.took = started.elapsed();
    let p = progress.lock().unwrap_or_else(|e| e.into_inner());
    outcome.passed = p.passed;
    outcome.failed = p.failed;
    outcome.ignored = p.ignored;
    outcome.failed_tests = p.failed_tests.clone();
    if timed_out {
        outcome.status = Status::TimedOut;
        println!(
            "\n==> TIMEOUT: {label} still running after {}s; killed its process group",
            timeout.as_secs()
        );
        println!("    its last {} lines of output:", p.tail.len());
        for l in &p.tail {
            println!("    | {l}");
        }
        if !p.partial.is_empty() {
            println!("    | {}", p.partial);
        }
        let unfinished = p.unfinished(listed);
        if unfinished.is_empty() {
            println!("    no test had started (or its name is unknown)");
        }
        for u in unfinished {
            println!("    waiting on: {u}");
        }
    } else if let Some(st) = status
        && !st.success()
    {
        outcome.status = Status::Failed(st.to_string());
    }
    outcome
}

/// The records the gate wrote in `dir` (files that are not whole records are ignored).
fn read_records(dir: &Path) -> Vec<Record> {
    let mut records: Vec<Record> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(t.trim()).ok())
        .collect();
    records.sort_by(|a, b| a.test.cmp(&b.test));
    records
}

/// The totals and lists printed at the end.
struct Summary<'a> {
    outcomes: &'a [Outcome],
}

impl<'a> Summary<'a> {
    fn new(outcomes: &'a [Outcome]) -> Self {
        Summary { outcomes }
    }

    fn count(&self, outcome: &Outcome, what: &str) -> usize {
        outcome.records.iter().filter(|r| r.outcome == what).count()
    }

    fn ok(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| o.status == Status::Ok && o.failed == 0)
    }

    fn render(&self) -> String {
        let mut s = String::from("\n==> summary\n");
        let width = self
            .outcomes
            .iter()
            .map(|o| o.label.len())
            .max()
            .unwrap_or(0)
            .max(6);
        s += &format!(
            "    {:width$}  {:>6} {:>6} {:>7} {:>7} {:>7}  status\n",
            "binary", "passed", "failed", "ignored", "skipped", "time"
        );
        let (mut passed, mut failed, mut ignored, mut skipped, mut ran) = (0, 0, 0, 0, 0);
        for o in self.outcomes {
            let sk = self.count(o, "skipped");
            let status = match &o.status {
                Status::Ok if o.failed == 0 => "ok".to_string(),
                Status::Ok => "FAILED".to_string(),
                Status::Failed(why) => format!("FAILED ({why})"),
                Status::TimedOut => "TIMED OUT (killed)".to_string(),
            };
            s += &format!(
                "    {:width$}  {:>6} {:>6} {:>7} {:>7} {:>6}s  {status}\n",
                o.label,
                o.passed,
                o.failed,
                o.ignored,
                sk,
                o.took.as_secs()
            );
            passed += o.passed;
            failed += o.failed;
            ignored += o.ignored;
            skipped += sk;
            ran += self.count(o, "ran");
        }
        s += &format!(
            "    total: {passed} passed, {failed} failed, {ignored} ignored; {skipped} tests or \
             parts of tests not run for a missing prerequisite (libtest counts them as passed)\n"
        );
        s += &format!("    privileged tests that ran: {ran}\n");

        let mut skips: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for o in self.outcomes {
            for r in o.records.iter().filter(|r| r.outcome != "ran") {
                skips.entry(&o.label).or_default().push(r);
            }
        }
        if skips.is_empty() {
            s += "    skipped: none\n";
        } else {
            let listed: usize = skips.values().map(Vec::len).sum();
            s += &format!(
                "    not run, prerequisite missing ({listed}; under CI=true or \
                 DETECTOR_REQUIRE_ALL=1 they fail):\n"
            );
            for (label, records) in skips {
                for r in records {
                    let mark = if r.outcome == "failed" {
                        " [FAILED: strict]"
                    } else {
                        ""
                    };
                    s += &format!("      {label}: {}{mark}: {}\n", r.test, r.why);
                }
            }
        }
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .flat_map(|o| {
                let named = o
                    .failed_tests
                    .iter()
                    .map(move |t| format!("{}: {t}", o.label));
                let whole = match &o.status {
                    Status::TimedOut => Some(format!("{}: timed out", o.label)),
                    Status::Failed(why) if o.failed_tests.is_empty() => {
                        Some(format!("{}: {why}", o.label))
                    }
                    _ => None,
                };
                named.chain(whole)
            })
            .collect();
        if !failures.is_empty() {
            s += "    FAILED:\n";
            for f in failures {
                s += &format!("      {f}\n");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_libtest_verdicts_and_totals() {
        let mut p = Progress::default();
        for l in [
            "running 3 tests",
            "test a::one ... ok",
            "test a::two ... FAILED",
            "test a::three ... ignored, needs a disk",
            "test a::four has been running for over 60 seconds",
            "test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 2 filtered out; \
             finished in 0.01s",
            "test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s",
        ] {
            p.observe(l);
        }
        assert_eq!((p.passed, p.failed, p.ignored), (5, 1, 1));
        assert_eq!(p.failed_tests, ["a::two"]);
        assert!(p.finished.contains("a::three"));
        p.partial = "test a::five ... ".into();
        let listed: HashSet<String> = ["a::one", "a::six"].map(String::from).into();
        let u = p.unfinished(&listed);
        assert_eq!(u[0], "a::five (started, no verdict)");
        assert_eq!(u[1], "a::four (running for over 60 s)");
        assert_eq!(u[2], "1 listed test(s) without a verdict: a::six");
    }

    #[test]
    fn artifacts_become_labelled_test_binaries() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/detector#0.1.0","manifest_path":"/w/detector/Cargo.toml","target":{"kind":["test"],"name":"sensor"},"profile":{"test":true},"executable":"/w/target/debug/deps/sensor-1"}"#;
        let b = parse_artifact(line).unwrap();
        assert_eq!(b.label, "detector (test sensor)");
        assert_eq!(b.package_dir, Path::new("/w/detector"));
        let lib = line.replace(r#"["test"]"#, r#"["lib"]"#).replace(
            "path+file:///w/detector#0.1.0",
            "path+file:///w/d#detector@0.1.0",
        );
        assert_eq!(parse_artifact(&lib).unwrap().label, "detector (lib)");
        // The binary itself (not a test harness) is not a test binary.
        let bin = line.replace(r#""test":true"#, r#""test":false"#);
        assert!(parse_artifact(&bin).is_none());
        assert_eq!(
            package_name("detector 0.1.0 (path+file:///w/detector)", Path::new("/x")),
            "detector"
        );
    }

    #[test]
    fn arguments_split_runner_flags_from_test_arguments() {
        let a = TestArgs::try_parse_from([
            "t",
            "--bin-filter",
            "sensor",
            "--timeout-secs",
            "5",
            "--",
            "--test-threads=1",
            "exec",
        ])
        .unwrap();
        assert_eq!(a.bin_filter, ["sensor"]);
        assert_eq!(a.timeout_secs, 5);
        assert_eq!(a.test_args, ["--test-threads=1", "exec"]);
        let a = TestArgs::try_parse_from(["t", "--test-threads=1"]).unwrap();
        assert_eq!(a.test_args, ["--test-threads=1"]);
    }

    #[test]
    fn a_binary_past_its_ceiling_is_killed_with_its_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30; echo never"]);
        let t = Instant::now();
        let o = run_bounded("sh", cmd, Duration::from_millis(500), &HashSet::new());
        assert_eq!(o.status, Status::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let o = run_bounded("sh", cmd, Duration::from_secs(10), &HashSet::new());
        assert!(matches!(o.status, Status::Failed(_)), "{:?}", o.status);
    }

    #[test]
    fn the_summary_lists_skips_and_counts_privileged_runs() {
        let rec = |test: &str, outcome: &str, why: &str| Record {
            test: test.into(),
            outcome: outcome.into(),
            why: why.into(),
        };
        let outcomes = [Outcome {
            label: "detector (test sensor)".into(),
            passed: 3,
            records: vec![
                rec("a", "ran", ""),
                rec("b", "ran", ""),
                rec("c", "skipped", "needs root (running as uid 1000)"),
            ],
            ..Outcome::default()
        }];
        let s = Summary::new(&outcomes);
        assert!(s.ok());
        let text = s.render();
        assert!(text.contains("privileged tests that ran: 2"), "{text}");
        assert!(
            text.contains("detector (test sensor): c: needs root (running as uid 1000)"),
            "{text}"
        );
        assert!(
            text.contains("3 passed, 0 failed, 0 ignored; 1 tests"),
            "{text}"
        );
    }
}
