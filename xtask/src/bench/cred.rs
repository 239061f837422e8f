//! `cargo xtask bench-cred`: what the credential-change programs (`[sensor]
//! credential_events`) cost, measured side by side in one invocation (root).
//!
//! Three arms, rotated every round: nothing attached, `detector run` with
//! `credential_events = false`, and with `true` (the shipped config otherwise, the shipped
//! rules). Each arm runs, in this process:
//!
//! * `getpid` in a loop: a syscall the programs do not watch. Any syscall tracepoint
//!   attached puts every task's syscalls on the kernel's traced slow path, so this is the
//!   tax the hooks put on all other syscalls;
//! * `setuid(0)` as root in a loop: watched, changes nothing (both programs run, no
//!   record: `cred_unchanged`);
//! * `setresuid(-1, 65534|0, -1)` toggling the effective uid: watched, a real change each
//!   call (a record, a `uid_change` document, rule evaluation);
//! * first, an exec storm: `workers` threads fork+exec `/bin/true` for `storm_secs` (the
//!   hooks do not watch fork or exec: this measures their tax on the storm's other
//!   syscalls).
//!
//! and reports ns per call, storm execs per second with the ratio to the bare arm, and the
//! daemon's CPU time for the arm. Medians over rounds.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Options of `cargo xtask bench-cred`.
#[derive(clap::Args, Debug)]
pub struct CredBenchArgs {
    /// The daemon binary (build it with `cargo build --release -p detector`).
    #[arg(long, default_value = "target/release/detector")]
    pub bin: PathBuf,
    /// Rounds (each runs every arm once, in rotated order).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Calls per syscall loop.
    #[arg(long, default_value_t = 1_000_000)]
    pub calls: u64,
    /// Exec-storm workers and duration.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    #[arg(long, default_value_t = 5)]
    pub storm_secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arm {
    Nothing,
    CredOff,
    CredOn,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Nothing => "nothing",
            Arm::CredOff => "detector, credential_events=false",
            Arm::CredOn => "detector, credential_events=true",
        }
    }
}

#[derive(Default, Debug)]
struct Row {
    getpid_ns: Vec<f64>,
    setuid_same_ns: Vec<f64>,
    seteuid_toggle_ns: Vec<f64>,
    storm_rate: Vec<f64>,
    daemon_cpu_s: Vec<f64>,
}

/// Runs the benchmark and prints its table.
pub fn run(root: &Path, args: &CredBenchArgs) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench-cred needs root (eBPF, setuid)");
    }
    let bin = root.join(&args.bin);
    if !bin.is_file() {
        bail!(
            "no daemon at {} (cargo build --release -p detector)",
            bin.display()
        );
    }
    let scratch = tempdir(root)?;
    let off = write_config(root, &scratch, false)?;
    let on = write_config(root, &scratch, true)?;
    let arms = [Arm::Nothing, Arm::CredOff, Arm::CredOn];
    let mut rows: Vec<Row> = arms.iter().map(|_| Row::default()).collect();
    for round in 0..args.rounds {
        for i in 0..arms.len() {
            let k = (i + round as usize) % arms.len();
            let arm = arms[k];
            let daemon = match arm {
                Arm::Nothing => None,
                Arm::CredOff => Some(Daemon::start(&bin, &off, &scratch)?),
                Arm::CredOn => Some(Daemon::start(&bin, &on, &scratch)?),
            };
            let cpu0 = daemon.as_ref().map(|d| d.cpu_s()).unwrap_or(0.0);
            let row = &mut rows[k];
            // The storm first: the toggle loop's backlog of uid_change events must not
            // be processed during it.
            row.storm_rate
                .push(storm(args.workers, Duration::from_secs(args.storm_secs))?);
            row.getpid_ns.push(loop_ns(args.calls, || {
                // SAFETY: getpid has no preconditions.
                unsafe { libc::syscall(libc::SYS_getpid) };
            }));
            row.setuid_same_ns.push(loop_ns(args.calls / 4, || {
                // SAFETY: setuid to the uid we have (root) changes nothing.
                unsafe { libc::syscall(libc::SYS_setuid, 0) };
            }));
            let mut i = 0u64;
            row.seteuid_toggle_ns.push(loop_ns(args.calls / 10, || {
                i += 1;
                let euid: libc::c_long = if i & 1 == 1 { 65534 } else { 0 };
                // SAFETY: only the effective uid moves; real and saved stay 0, so the
                // process can always return to 0 (the last call of an even count does).
                unsafe {
                    libc::syscall(
                        libc::SYS_setresuid,
                        -1 as libc::c_long,
                        euid,
                        -1 as libc::c_long,
                    )
                };
            }));
            // SAFETY: back to euid 0 whatever the count was.
            unsafe {
                libc::syscall(
                    libc::SYS_setresuid,
                    -1 as libc::c_long,
                    0 as libc::c_long,
                    -1 as libc::c_long,
                )
            };
            if let Some(d) = daemon {
                row.daemon_cpu_s.push(d.cpu_s() - cpu0);
                d.stop();
            }
        }
    }
    print_table(&arms, &rows, args);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn tempdir(root: &Path) -> Result<PathBuf> {
    let dir = root
        .join("target/bench")
        .join(format!("cred-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The shipped config with absolute rule paths, no stdout sink, and the toggle set.
fn write_config(root: &Path, dir: &Path, on: bool) -> Result<PathBuf> {
    let shipped = root.join("config/detector.toml");
    let text = std::fs::read_to_string(&shipped).context("reading the shipped config")?;
    let rules = root.join("config/rules");
    let rules_line = "paths = [\"rules\"]";
    let toggle = "credential_events = true";
    if !text.contains(rules_line) || !text.contains(toggle) || !text.contains("\nstdout = true") {
        bail!("the shipped config's rules.paths, credential_events or stdout line moved");
    }
    let text = text
        .replace(
            rules_line,
            &format!("paths = [{:?}]", rules.display().to_string()),
        )
        .replace(toggle, &format!("credential_events = {on}"))
        .replace("\nstdout = true", "\nstdout = false");
    let path = dir.join(format!("detector-cred-{on}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// ns per call of `f` over `n` calls.
fn loop_ns(n: u64, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    for _ in 0..n {
        f();
    }
    t0.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// Execs per second of `workers` loops of fork+exec `/bin/true` for `d`.
fn storm(workers: u32, d: Duration) -> Result<f64> {
    let deadline = Instant::now() + d;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if Command::new("/bin/true")
                        .status()
                        .is_ok_and(|s| s.success())
                    {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(bin: &Path, config: &Path, scratch: &Path) -> Result<Daemon> {
        let mut child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--alerts-file")
            .arg(scratch.join("alerts.ndjson"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let err = child.stderr.take().context("daemon stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("detector: ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the daemon did not become ready within 60 s");
        }
        Ok(Daemon { child })
    }

    /// User + system CPU seconds of the daemon so far (`/proc/<pid>/stat`).
    fn cpu_s(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the `)`.
        (ticks(11) + ticks(12)) / hz
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

fn print_table(arms: &[Arm], rows: &[Row], args: &CredBenchArgs) {
    let base_storm = median(&rows[0].storm_rate);
    println!(
        "bench-cred: {} rounds, {} calls, storm {} workers × {} s (medians)",
        args.rounds, args.calls, args.workers, args.storm_secs
    );
    println!(
        "{:<36} {:>10} {:>12} {:>14} {:>12} {:>7} {:>10}",
        "arm", "getpid ns", "setuid=ns", "seteuid±ns", "storm/s", "ratio", "daemon s"
    );
    for (arm, r) in arms.iter().zip(rows) {
        let storm = median(&r.storm_rate);
        println!(
            "{:<36} {:>10.0} {:>12.0} {:>14.0} {:>12.0} {:>7.3} {:>10}",
            arm.name(),
            median(&r.getpid_ns),
            median(&r.setuid_same_ns),
            median(&r.seteuid_toggle_ns),
            storm,
            storm / base_storm,
            if r.daemon_cpu_s.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", median(&r.daemon_cpu_s))
            }
        );
    }
}
