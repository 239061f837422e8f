//! The arms of the storm: nothing attached, the detector, bpftrace, libbpf-tools execsnoop.
//!
//! Each attached tool is started, proven ready, kept running through the storm, then
//! stopped; the harness measures the storm's rate with it attached. Peers write to a file
//! (as a real deployment would) and are proven ready by a sentinel: a second private copy of
//! `true` is exec'd every 50 ms until its name shows up in the tool's output, so no storm
//! starts while a probe is still being attached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::child::{Measured, Stopped};
use super::detector::{DetectorCmd, READY_MARKER, READY_TIMEOUT};

/// The bpftrace program: the same three scheduler tracepoints the detector uses, one line
/// per event (`E <filename>`, `F <parent> <child>`, `X <pid> <comm>`).
/// bpftrace 0.17 (Debian 12) spells tracepoint arguments `args->field`.
pub const BPFTRACE_PROGRAM: &str = concat!(
    r#"tracepoint:sched:sched_process_exec { printf("E %s\n", str(args->filename)); } "#,
    r#"tracepoint:sched:sched_process_fork { printf("F %d %d\n", args->parent_pid, args->child_pid); } "#,
    r#"tracepoint:sched:sched_process_exit { printf("X %d %s\n", pid, comm); }"#,
);

/// How long a peer may take to show the sentinel in its output.
const PEER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One configuration under test; `--arms` takes the lowercase names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Arm {
    /// Baseline: no tracer attached.
    Nothing,
    /// `detector run` with the shipped config.
    Detector,
    /// bpftrace on the sched tracepoints, output to a file.
    Bpftrace,
    /// libbpf-tools execsnoop, output to a file.
    Execsnoop,
    /// `detector trace` (sensor + decode + one JSON line per event) writing to a file:
    /// the detector's kernel side measured like the peers. Opt-in (`--arms …,trace`).
    Trace,
    /// `detector run` of a second binary (`--compare-bin`), like `detector`: an A/B of a
    /// change measured side by side in one invocation. Opt-in (`--arms …,compare`).
    Compare,
    /// `detector run` with the working-directory, environment and capability captures
    /// all off (see `capture`). Opt-in, like the three below.
    #[value(name = "nocapture")]
    NoCapture,
    /// Only the working-directory walk on.
    Cwd,
    /// Only the environment copy on.
    Env,
    /// Only the capability sets on.
    Caps,
    /// `detector run` like `detector`, plus the corpus's `sequence-process` sequence rules
    /// (see `seqstorm`): the storm's cost of sequences. Opt-in (`--arms …,sequences`).
    Sequences,
}

/// What an arm runs; the arms of one kind differ only in their binary or config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Nothing attached (the baseline).
    Nothing,
    /// `detector run`.
    DetectorRun,
    /// `detector trace`.
    DetectorTrace,
    Bpftrace,
    Execsnoop,
}

impl Arm {
    /// What the arm runs: the one place that sorts the arms, so a new arm is handled
    /// wherever its kind is.
    pub fn runs(self) -> Runs {
        match self {
            Arm::Nothing => Runs::Nothing,
            Arm::Detector
            | Arm::Compare
            | Arm::NoCapture
            | Arm::Cwd
            | Arm::Env
            | Arm::Caps
            | Arm::Sequences => Runs::DetectorRun,
            Arm::Trace => Runs::DetectorTrace,
            Arm::Bpftrace => Runs::Bpftrace,
            Arm::Execsnoop => Runs::Execsnoop,
        }
    }

    /// Whether the arm is the detector's own binary (stats line, SIGTERM to stop).
    pub fn is_detector(self) -> bool {
        matches!(self.runs(), Runs::DetectorRun | Runs::DetectorTrace)
    }

    /// Name used on the command line, in the table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Nothing => "nothing",
            Arm::Detector => "detector",
            Arm::Bpftrace => "bpftrace",
            Arm::Execsnoop => "execsnoop",
            Arm::Trace => "trace",
            Arm::Compare => "compare",
            Arm::NoCapture => "nocapture",
            Arm::Cwd => "cwd",
            Arm::Env => "env",
            Arm::Caps => "caps",
            Arm::Sequences => "sequences",
        }
    }
}

/// Everything an arm needs to start.
pub struct ArmEnv<'a> {
    /// Scratch directory for outputs and configs.
    pub scratch: &'a Path,
    /// The sentinel binary (a private `true` with its own name).
    pub sentinel: &'a Path,
    /// How to start the detector.
    pub detector: &'a DetectorCmd,
    /// How to start the `compare` arm's detector, when `--compare-bin` was given.
    pub compare: Option<&'a DetectorCmd>,
    /// How to start the `sequences` arm's detector, when that arm runs.
    pub sequences: Option<&'a DetectorCmd>,
}

impl ArmEnv<'_> {
    /// The detector command `arm` runs: the compared binary for `compare`, else the one
    /// under test. `None`: no binary was given for `compare`.
    pub fn detector_for(&self, arm: Arm) -> Option<&DetectorCmd> {
        match arm {
            Arm::Compare => self.compare,
            Arm::Sequences => self.sequences,
            _ => Some(self.detector),
        }
    }
}

/// A running tool.
pub struct Attached {
    /// Which arm.
    pub arm: Arm,
    /// The process (killed on drop).
    pub proc: Measured,
    /// Where its output (events or alerts) goes.
    pub output: PathBuf,
    /// CPU seconds it had used when it became ready (start-up cost, excluded per event).
    pub cpu_at_ready: Option<f64>,
}

/// What a stopped tool left.
pub struct Detached {
    /// Process accounting and stderr.
    pub stopped: Stopped,
    /// Its output file.
    pub output: PathBuf,
    /// Peak RSS read from `/proc` just before stopping, KiB.
    pub vm_hwm_kib: Option<u64>,
    /// CPU seconds used between ready and the stop signal (the workload's share, without
    /// start-up and shutdown), from `/proc/<pid>/stat`.
    pub cpu_workload_s: Option<f64>,
}

/// Reason an arm cannot run on this machine (shown as "unavailable (reason)").
pub fn availability(arm: Arm, detector: &DetectorCmd) -> Result<(), String> {
    let need = |p: &str| {
        if Path::new(p).is_file() {
            Ok(())
        } else {
            Err(format!("{p} not installed"))
        }
    };
    match arm.runs() {
        Runs::Nothing => Ok(()),
        Runs::DetectorRun => detector.check(),
        Runs::DetectorTrace => detector.check_trace(),
        Runs::Bpftrace => need("/usr/bin/bpftrace"),
        Runs::Execsnoop => need("/usr/sbin/execsnoop").and_then(|()| need("/usr/bin/stdbuf")),
    }
}

/// Starts `arm` and waits until it is ready; `None` for the baseline.
/// `tag` makes the output file name unique per run.
pub fn attach(arm: Arm, env: &ArmEnv<'_>, tag: &str) -> anyhow::Result<Option<Attached>> {
    let output = env.scratch.join(format!("{}-{tag}.out", arm.name()));
    let proc = match arm.runs() {
        Runs::Nothing => return Ok(None),
        Runs::DetectorRun => {
            let base = env
                .detector_for(arm)
                .context("the compare arm needs --compare-bin")?;
            let cmd = super::capture::variant(base, arm, env.scratch)?.run_command(&output);
            let mut p = Measured::spawn(with_null_stdout(cmd))?;
            p.wait_ready(READY_TIMEOUT, |m| {
                m.stderr_lines().iter().any(|l| l.contains(READY_MARKER))
            })
            .context("detector")?;
            p
        }
        Runs::DetectorTrace => {
            let file = std::fs::File::create(&output)
                .with_context(|| format!("create {}", output.display()))?;
            let mut cmd = env.detector.trace_command();
            cmd.stdout(file);
            let mut p = Measured::spawn(cmd)?;
            p.wait_ready(READY_TIMEOUT, |m| {
                m.stderr_lines().iter().any(|l| l.contains(READY_MARKER))
            })
            .context("detector trace")?;
            p
        }
        Runs::Bpftrace => {
            let mut cmd = Command::new("/usr/bin/bpftrace");
            cmd.arg("-o").arg(&output).arg("-e").arg(BPFTRACE_PROGRAM);
            let mut p = Measured::spawn(with_null_stdout(cmd))?;
            wait_sentinel(&mut p, &output, env.sentinel).context("bpftrace")?;
            p
        }
        Runs::Execsnoop => {
            // Line-buffered so the sentinel (and every event) reaches the file promptly,
            // as bpftrace's file output does.
            let file = std::fs::File::create(&output)
                .with_context(|| format!("create {}", output.display()))?;
            let mut cmd = Command::new("/usr/bin/stdbuf");
            cmd.args(["-oL", "/usr/sbin/execsnoop"]).stdout(file);
            let mut p = Measured::spawn(cmd)?;
            wait_sentinel(&mut p, &output, env.sentinel).context("execsnoop")?;
            p
        }
    };
    let cpu_at_ready = proc.cpu_s_now();
    Ok(Some(Attached {
        arm,
        proc,
        output,
        cpu_at_ready,
    }))
}

fn with_null_stdout(mut cmd: Command) -> Command {
    cmd.stdout(Stdio::null());
    cmd
}

/// Execs the sentinel until its name appears in `output`.
fn wait_sentinel(p: &mut Measured, output: &Path, sentinel: &Path) -> anyhow::Result<()> {
    let name = sentinel
        .file_name()
        .and_then(|n| n.to_str())
        .context("sentinel name")?
        .to_owned();
    let mut last = Instant::now() - Duration::from_secs(1);
    p.wait_ready(PEER_READY_TIMEOUT, |_| {
        if last.elapsed() >= Duration::from_millis(50) {
            last = Instant::now();
            let _ = Command::new(sentinel).status();
        }
        std::fs::read(output)
            .map(|b| memfind(&b, name.as_bytes()))
            .unwrap_or(false)
    })
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

impl Attached {
    /// Stops the tool (SIGINT for peers so they flush; SIGTERM for the detector so it
    /// drains and prints its final stats) and reaps it.
    pub fn detach(self) -> anyhow::Result<Detached> {
        let vm_hwm_kib = self.proc.vm_hwm_kib();
        let cpu_workload_s = match (self.cpu_at_ready, self.proc.cpu_s_now()) {
            (Some(a), Some(b)) if b >= a => Some(b - a),
            _ => None,
        };
        let sig = if self.arm.is_detector() {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let stopped = self.proc.stop(sig, Duration::from_secs(30))?;
        if stopped.status.starts_with("signal 9") {
            bail!(
                "{} did not stop within 30 s and was killed",
                self.arm.name()
            );
        }
        // Every tool exits 0 on its stop signal; anything else means it died during the
        // storm, and the storm was then not measured with it attached.
        if stopped.status != "exit status 0" {
            bail!(
                "{} ended with {}: {}",
                self.arm.name(),
                stopped.status,
                super::child::tail(&stopped.stderr)
            );
        }
        Ok(Detached {
            stopped,
            output: self.output,
            vm_hwm_kib,
            cpu_workload_s,
        })
    }
}

/// Events of the storm binary seen in a peer's output (`None` for arms without one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Captured {
    /// Exec events of the storm binary.
    pub exec: u64,
    /// Exit events of the storm binary (bpftrace only; execsnoop reports no exits).
    pub exit: Option<u64>,
}

/// Counts the storm binary's events in bpftrace output: `E <path>` and `X <pid> <name>`.
pub fn count_bpftrace(output: &[u8], path: &str, name: &str) -> Captured {
    let mut c = Captured {
        exec: 0,
        exit: Some(0),
    };
    for line in output.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"E ") {
            if rest == path.as_bytes() {
                c.exec += 1;
            }
        } else if let Some(rest) = line.strip_prefix(b"X ") {
            let mut f = rest.splitn(2, |&b| b == b' ');
            let pid_ok = f
                .next()
                .is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
            if pid_ok
                && f.next() == Some(name.as_bytes())
                && let Some(x) = c.exit.as_mut()
            {
                *x += 1;
            }
        }
    }
    c
}

/// Counts the storm binary's execs in execsnoop output (first column is the comm).
pub fn count_execsnoop(output: &[u8], name: &str) -> Captured {
    let exec = output
        .split(|&b| b == b'\n')
        .filter(|l| l.split(|&b| b == b' ').next() == Some(name.as_bytes()))
        .count() as u64;
    Captured { exec, exit: None }
}

/// Counts the storm binary's execs in `detector trace --raw` output (JSON lines, `kind` and
/// `filename` as the sensor's trace prints them).
pub fn count_trace(output: &[u8], path: &str) -> Captured {
    let exec = output
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "exec" && v["filename"].as_str() == Some(path))
        .count() as u64;
    Captured { exec, exit: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpftrace_counting() {
        let out = b"Attaching 3 probes...\n\n\
E /tmp/x/bt1\nE /tmp/x/bt10\nF 1 2\nX 5 bt1\nX 6 bt10\nE /tmp/x/bt1\nX 7 bt1\n\
X  bt1\nE /tmp/x/bt1 \nX 8 bt1 extra\nE /tmp/x/b";
        let c = count_bpftrace(out, "/tmp/x/bt1", "bt1");
        assert_eq!(
            c,
            Captured {
                exec: 2,
                exit: Some(2)
            }
        );
        assert_eq!(
            count_bpftrace(b"", "/a", "a"),
            Captured {
                exec: 0,
                exit: Some(0)
            }
        );
    }

    #[test]
    fn execsnoop_counting() {
        let out = b"PCOMM            PID    PPID   RET ARGS\n\
bt1              10     9        0 /tmp/x/bt1\n\
bt10             11     9        0 /tmp/x/bt10\n\
sh               12     9        0 /bin/sh -c bt1\n\
bt1              13     9        0 /tmp/x/bt1\n";
        assert_eq!(
            count_execsnoop(out, "bt1"),
            Captured {
                exec: 2,
                exit: None
            }
        );
    }

    #[test]
    fn trace_counting() {
        let out = br#"{"kind":"exec","filename":"/tmp/x/bt1","comm":"bt1"}
{"kind":"fork","filename":"","comm":"xtask"}
{"kind":"exec","filename":"/tmp/x/bt10"}
{"kind":"exec","filename":"/tmp/x/bt1"}
{"kind":"exec","filename":"/tmp/x/b"#;
        assert_eq!(
            count_trace(out, "/tmp/x/bt1"),
            Captured {
                exec: 2,
                exit: None
            }
        );
    }

    /// The detector arm's plumbing against a shell script that follows the documented
    /// contract (argv, ready line, final stats on SIGTERM) — and one that dies at start.
    #[test]
    fn detector_arm_contract() {
        use std::os::unix::fs::PermissionsExt;
        // Removed on drop, also when an assertion fails.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let script = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(
                &p,
                format!("#!/bin/sh\n[ \"$2\" = --help ] && exit 0\n{body}"),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let args_file = dir.join("args");
        let good = script(
            "good",
            &format!(
                r#"echo "$@" > {}
echo "$BENCH_TEST_ENV" >> {}
trap 'echo "{{\"final_stats\":{{\"events\":{{\"fork\":1,\"exec\":2,\"exit\":3}},\"lost\":4}}}}" >&2; exit 0' TERM
echo starting >&2
echo '{{"ready":true}}' >&2
while :; do sleep 0.05; done
"#,
                args_file.display(),
                args_file.display()
            ),
        );
        let config = dir.join("detector.toml");
        std::fs::write(&config, "").unwrap();
        let det = DetectorCmd {
            bin: good,
            config: config.clone(),
            extra_args: vec!["--x".into()],
            env: vec![("BENCH_TEST_ENV".into(), "v1".into())],
        };
        assert_eq!(availability(Arm::Detector, &det), Ok(()));
        let env = ArmEnv {
            scratch: &dir,
            sentinel: Path::new("/bin/true"),
            detector: &det,
            compare: None,
            sequences: None,
        };
        let a = attach(Arm::Detector, &env, "t").unwrap().unwrap();
        let d = a.detach().unwrap();
        let stats = crate::bench::detector::parse_final_stats(&d.stopped.stderr).unwrap();
        assert_eq!((stats.received(), stats.lost), (6, 4));
        let args = std::fs::read_to_string(&args_file).unwrap();
        let alerts = dir.join("detector-t.out");
        assert_eq!(
            args,
            format!(
                "run --config {} --alerts-file {} --x\nv1\n",
                config.display(),
                alerts.display()
            )
        );

        let dies = script("dies", "echo 'error: no BTF' >&2\nexit 3\n");
        let det2 = DetectorCmd {
            bin: dies,
            ..det.clone()
        };
        let env2 = ArmEnv {
            scratch: &dir,
            sentinel: Path::new("/bin/true"),
            detector: &det2,
            compare: None,
            sequences: None,
        };
        let e = format!("{:#}", attach(Arm::Detector, &env2, "u").err().unwrap());
        assert!(
            e.contains("exited before ready") && e.contains("error: no BTF"),
            "{e}"
        );
        assert!(
            availability(
                Arm::Detector,
                &DetectorCmd {
                    bin: dir.join("missing"),
                    ..det.clone()
                }
            )
            .unwrap_err()
            .starts_with("no binary at")
        );
    }

    /// The command line, the table and the JSON report name an arm the same way.
    #[test]
    fn arm_names_round_trip() {
        use clap::ValueEnum;
        assert_eq!(Arm::value_variants().len(), 11);
        for &a in Arm::value_variants() {
            assert_eq!(Arm::from_str(a.name(), false), Ok(a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::Value::from(a.name())
            );
        }
        assert!(Arm::from_str("perf", false).is_err());
    }
}
