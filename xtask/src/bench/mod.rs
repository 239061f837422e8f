//! `cargo xtask bench`: the detector against peers under an exec storm, its CPU and memory
//! cost, detection latency in a container, start-up time and rule scaling.
//!
//! Root is required (every arm loads BPF programs; the latency part runs a container).
//! Figures are medians of runs that alternate arms inside one invocation: the build
//! machines are shared and noisy, so only ratios within one report mean anything.
//! Anything that cannot be measured is reported as "unavailable (reason)", never guessed.

mod arms;
mod capture;
mod child;
mod container;
mod corpus;
pub mod cred;
mod detector;
mod interrupt;
mod latency;
mod peers;
mod report;
mod rules;
mod seqstorm;
mod sequences;
mod startup;
mod stats;
mod storm;
mod table;
mod tracefs;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use peers::{Arm, ArmEnv};
use report::{Outcome, Params, Report};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Alternating runs per arm (each figure is the median).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// fork+exec iterations per storm worker.
    #[arg(long, default_value_t = 5000)]
    execs: u64,
    /// Parallel storm workers, one storm per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 4])]
    workers: Vec<u32>,
    /// Processes in the churn (cost section); 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    churn: u64,
    /// `ssh -V` execs in the latency container.
    #[arg(long, default_value_t = 1000)]
    latency_execs: u64,
    /// Launches of `detector trace` for the start-up figure.
    #[arg(long, default_value_t = 5)]
    startup_runs: u32,
    /// Arms of the storm, in alternation order (also: `trace`, detector trace to a file;
    /// `compare`, a second binary; `nocapture`, `cwd`, `env`, `caps`: the detector with
    /// the Defend captures all off, or only one on, to price each capture; `sequences`:
    /// the detector with the corpus's `sequence-process` rules added, its rate over the
    /// `detector` arm's printed after the table).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [Arm::Nothing, Arm::Detector, Arm::Bpftrace, Arm::Execsnoop]
    )]
    arms: Vec<Arm>,
    /// Sections to skip.
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Section>,
    /// The detector binary.
    #[arg(long, default_value = "target/release/detector")]
    detector_bin: PathBuf,
    /// A second detector binary for the `compare` arm (same config and arguments), to
    /// measure a change against its parent side by side, e.g. `--compare-bin /tmp/old
    /// --arms nothing,detector,compare`.
    #[arg(long)]
    compare_bin: Option<PathBuf>,
    /// The config `detector run` is started with (used in place).
    #[arg(long, default_value = "config/detector.toml")]
    detector_config: PathBuf,
    /// The rules the detector arms (detector, compare; also latency and start-up) load:
    /// `seed`, the shipped config's; `corpus`, those plus every single-event rule of
    /// Elastic's Linux corpus that compiles (found like the tests find it:
    /// DETECTOR_RULES_DIR, DETECTOR_SHARED_DIR, else shared/ beside the workspace).
    #[arg(long, value_enum, default_value_t = corpus::RuleChoice::Seed)]
    rules: corpus::RuleChoice,
    /// Extra environment for the detector, KEY=VALUE (repeatable).
    #[arg(long = "detector-env", value_name = "KEY=VALUE")]
    detector_env: Vec<String>,
    /// Extra argument appended to `detector run` (repeatable), e.g. `--detector-arg=--ring-bytes=262144`.
    #[arg(long = "detector-arg", value_name = "ARG", allow_hyphen_values = true)]
    detector_args: Vec<String>,
    /// Where reports go (default: <target dir>/bench).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Internal: act as a storm worker doing N iterations on PATH.
    #[arg(long, num_args = 2, value_names = ["N", "PATH"], hide = true)]
    storm_worker: Option<Vec<std::ffi::OsString>>,
    /// Internal: the storm worker's mode.
    #[arg(long, value_enum, default_value_t = storm::Mode::Exec, hide = true)]
    storm_mode: storm::Mode,
}

/// The report's sections, which `--skip` leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// The exec storm and churn against the arms (throughput and cost).
    Storm,
    /// Detection latency in a container.
    Latency,
    /// Start-up time of `detector trace`.
    Startup,
    /// Rule scaling.
    Rules,
    /// EQL sequences: per-event cost with them loaded, memory at 100,000 pending.
    Sequences,
}

/// Entry point of `cargo xtask bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(w) = &args.storm_worker {
        let n: u64 = w[0]
            .to_str()
            .and_then(|s| s.parse().ok())
            .context("--storm-worker N: not a number")?;
        return storm::worker(n, Path::new(&w[1]), args.storm_mode);
    }
    if !crate::is_root() {
        bail!(
            "cargo xtask bench must run as root: every arm loads BPF programs and the \
             latency part starts a container (try: sudo -E cargo xtask bench)"
        );
    }
    if args.runs == 0 || args.execs == 0 || args.workers.contains(&0) {
        bail!("--runs, --execs and --workers must be positive");
    }
    let arms = args.arms.clone();
    let skip = |s: Section| args.skip.contains(&s);
    let root = crate::workspace_root();
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        }
    };
    let det = detector::DetectorCmd {
        bin: abs(&args.detector_bin),
        config: abs(&args.detector_config),
        extra_args: args.detector_args.clone(),
        env: args
            .detector_env
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .with_context(|| format!("--detector-env {kv:?}: want KEY=VALUE"))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let mut det = det;
    let mut compare = args.compare_bin.as_ref().map(|bin| detector::DetectorCmd {
        bin: abs(bin),
        ..det.clone()
    });
    let target_dir = crate::target_dir(&root);
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("bench"));

    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    interrupt::install();
    let _tracefs = tracefs::ensure_mounted()?;
    let target = storm::PrivateTrue::create()?;
    let sentinel = target.dir().join(format!("rdy{}", std::process::id()));
    std::fs::copy("/bin/true", &sentinel).context("copy the sentinel")?;
    let corpus = match args.rules {
        corpus::RuleChoice::Seed => None,
        corpus::RuleChoice::Corpus => {
            let mut bins = vec![det.bin.as_path()];
            bins.extend(compare.as_ref().map(|c| c.bin.as_path()));
            let (dir, loaded) = corpus::prepare(&root, &bins, target.dir())?;
            for cmd in std::iter::once(&mut det).chain(compare.as_mut()) {
                cmd.extra_args.push("--rules".into());
                cmd.extra_args.push(dir.to_string_lossy().into_owned());
            }
            Some(loaded)
        }
    };
    let sequences_cmd = if arms.contains(&Arm::Sequences) {
        match seqstorm::prepare(&root, &det, target.dir()) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("bench: sequences arm unavailable: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let env = ArmEnv {
        scratch: target.dir(),
        sentinel: &sentinel,
        detector: &det,
        compare: compare.as_ref(),
        sequences: sequences_cmd.as_ref(),
    };

    let (storm, cost) = if skip(Section::Storm) {
        (Vec::new(), Vec::new())
    } else {
        arms::run(
            &arms::Plan {
                arms,
                workers: args.workers.clone(),
                runs: args.runs,
                per_worker: args.execs,
                churn: args.churn,
            },
            &env,
            &target,
        )
    };
    interrupt::check()?;
    let latency = if skip(Section::Latency) {
        Outcome::Skipped
    } else {
        latency::run(&det, target.dir(), args.latency_execs)
    };
    interrupt::check()?;
    let startup = if skip(Section::Startup) {
        Outcome::Skipped
    } else {
        startup::run(&det, args.startup_runs)
    };
    interrupt::check()?;
    let rules = if skip(Section::Rules) {
        Outcome::Skipped
    } else {
        rules::run(&root, &target_dir)
    };
    interrupt::check()?;
    let sequences = if skip(Section::Sequences) {
        Outcome::Skipped
    } else {
        sequences::run(&root, &target_dir)
    };
    interrupt::check()?;
    let report = Report {
        started_utc: report::utc_stamp(started),
        machine: report::machine(),
        params: Params {
            runs: args.runs,
            execs_per_worker: args.execs,
            workers: args.workers.clone(),
            churn: args.churn,
            latency_execs: args.latency_execs,
            corpus,
        },
        storm,
        cost,
        latency,
        startup,
        rules,
        sequences,
    };
    print!("{}", table::render(&report));
    print!("{}", seqstorm::render(&report.storm));
    let path = report::write(&report, &out_dir)?;
    println!("\nreport: {} (and latest.json)", path.display());
    Ok(())
}
