//! `cargo xtask fuzz [TARGET] [--secs N]`: runs the cargo-fuzz targets of `detector/fuzz/`
//! (EQL compiler, rule TOML loader, kernel-record decoder) for N seconds each.
//! `cargo xtask fuzz --check` only checks that they build ([`check_targets`], meant for the
//! test run; `detector/tests/fuzz_seeds.rs` replays the seeds as an ordinary test).
//!
//! Not part of `cargo xtask test` or CI's default run: fuzzing needs nightly, libFuzzer and
//! minutes of CPU. Each target grows its working corpus in `detector/fuzz/corpus/<target>`
//! (git-ignored) from the committed seeds in `detector/fuzz/seeds/<target>`; a crash or
//! hang leaves its input in `detector/fuzz/artifacts/<target>/` and fails the task.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The fuzz targets, with the libFuzzer dictionary each uses (relative to `detector/fuzz`).
pub const TARGETS: &[(&str, Option<&str>)] = &[
    ("eql", Some("eql.dict")),
    ("rule_toml", Some("eql.dict")),
    ("decode", None),
];

/// An input slower than this is reported as a hang (libFuzzer's default is 20 minutes).
const HANG_SECS: u32 = 5;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// One target (eql, rule_toml, decode); all of them, one after the other, when omitted.
    pub target: Option<String>,
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 60)]
    pub secs: u32,
    /// Only check that every target builds (stable; no fuzzing).
    #[arg(long, conflicts_with_all = ["target", "secs"])]
    pub check: bool,
}

/// What one run reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inputs executed (libFuzzer's `Done N runs` or its last `#N` status line).
    pub runs: Option<u64>,
    /// Where libFuzzer wrote a crashing or hanging input.
    pub artifact: Option<String>,
}

impl Summary {
    /// Takes what it needs from one line of libFuzzer's output.
    pub fn observe(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("Done ") {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                self.runs = Some(n);
            }
        } else if let Some(rest) = line.strip_prefix('#') {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                self.runs = Some(n);
            }
        } else if let Some(i) = line.find("Test unit written to ") {
            self.artifact = Some(line[i + "Test unit written to ".len()..].trim().to_string());
        }
    }
}

/// The targets to run for `target` (all when `None`).
pub fn select(target: Option<&str>) -> Result<Vec<(&'static str, Option<&'static str>)>> {
    match target {
        None => Ok(TARGETS.to_vec()),
        Some(t) => match TARGETS.iter().find(|(name, _)| *name == t) {
            Some(x) => Ok(vec![*x]),
            None => bail!(
                "unknown fuzz target `{t}`; targets: {}",
                TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

/// `cargo +nightly …` through rustup's proxy, without the toolchain choice and tool paths
/// that the outer (stable) `cargo xtask` left in the environment.
fn nightly_cargo(dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly").current_dir(dir);
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
    ] {
        c.env_remove(var);
    }
    c
}

fn ensure_cargo_fuzz(dir: &Path) -> Result<()> {
    super::step("checking cargo-fuzz and the nightly toolchain");
    let toolchains = super::output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup not found: install it from https://rustup.rs")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        super::sh(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))
        .context("installing the nightly toolchain (cargo fuzz needs it)")?;
    }
    if let Some(v) = super::output(nightly_cargo(dir).args(["fuzz", "--version"])) {
        println!("    {}", v.trim());
        return Ok(());
    }
    super::sh(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
        .context("installing cargo-fuzz")
}

/// Runs one target for `secs` seconds, echoing libFuzzer's output.
fn run_one(dir: &Path, target: &str, dict: Option<&str>, secs: u32) -> Result<Summary> {
    let corpus = Path::new("corpus").join(target);
    std::fs::create_dir_all(dir.join(&corpus))
        .with_context(|| format!("creating {}", dir.join(&corpus).display()))?;
    let seeds = Path::new("seeds").join(target);
    let mut cmd = nightly_cargo(dir);
    cmd.env("AYA_BUILD_SKIP", "1")
        // No AddressSanitizer: the code under test is safe Rust (one bounds-checked
        // unaligned header read), and without ASan builds and runs cost about half.
        .args(["fuzz", "run", "--sanitizer", "none", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-timeout={HANG_SECS}"))
        .arg("-print_final_stats=1");
    if let Some(d) = dict {
        cmd.arg(format!("-dict={d}"));
    }
    println!("    $ {}", super::show(&cmd));
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo fuzz")?;
    let mut summary = Summary::default();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines() {
            let line = line.unwrap_or_default();
            eprintln!("{line}");
            summary.observe(&line);
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    if !status.success() {
        bail!(
            "fuzz target `{target}` failed ({status}){}",
            summary
                .artifact
                .as_deref()
                .map(|a| format!(
                    "; input: {a}; reproduce in detector/fuzz: AYA_BUILD_SKIP=1 cargo +nightly fuzz run -s none {target} {a}"
                ))
                .unwrap_or_default()
        );
    }
    Ok(summary)
}

/// Builds every fuzz target of `<root>/detector/fuzz` as a check (`cargo check --bins`),
/// so a library change that breaks a target fails the test run instead of the next fuzzing
/// session. Stable is enough (no sanitizer flags, nothing linked or run), with
/// `AYA_BUILD_SKIP=1` as for fuzzing (the targets never load the eBPF object), `--locked`
/// (the fuzz crate's own lock file must be current) and its own target directory
/// (`detector/fuzz/target`, git-ignored). libfuzzer-sys's build script compiles libFuzzer,
/// so a C++ compiler must exist (`g++`, installed by `cargo xtask setup`).
pub fn check_targets(root: &Path) -> Result<()> {
    let dir = root.join("detector/fuzz");
    let manifest = dir.join("Cargo.toml");
    let sources = std::fs::read_dir(dir.join("fuzz_targets"))
        .with_context(|| format!("listing {}", dir.join("fuzz_targets").display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .count();
    if sources != TARGETS.len() {
        bail!(
            "{} holds {sources} fuzz targets, xtask knows {}: update fuzz::TARGETS",
            dir.join("fuzz_targets").display(),
            TARGETS.len()
        );
    }
    if super::output(Command::new("c++").arg("--version")).is_none() {
        bail!("no C++ compiler (`c++`): libfuzzer-sys builds libFuzzer; apt-get install -y g++");
    }
    super::step("checking that the fuzz targets build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    super::sh(
        Command::new(cargo)
            .current_dir(root)
            .env("AYA_BUILD_SKIP", "1")
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .args(["check", "--locked", "--bins", "--manifest-path"])
            .arg(&manifest),
    )
    .context(
        "the fuzz targets do not build (detector/fuzz); if cargo says the lock file needs \
         updating (a dependency of detector changed), run \
         `cargo check --bins --manifest-path detector/fuzz/Cargo.toml` and commit \
         detector/fuzz/Cargo.lock",
    )
}

/// Entry point of `cargo xtask fuzz`.
pub fn run(args: &FuzzArgs) -> Result<()> {
    if args.check {
        return check_targets(&crate::workspace_root());
    }
    if args.secs == 0 {
        bail!("--secs must be positive");
    }
    let targets = select(args.target.as_deref())?;
    let dir = crate::workspace_root().join("detector/fuzz");
    ensure_cargo_fuzz(&dir)?;
    let mut results = Vec::new();
    for (target, dict) in targets {
        super::step(&format!("fuzzing {target} for {} s", args.secs));
        let r = run_one(&dir, target, dict, args.secs);
        results.push((target, r));
    }
    super::step("fuzzing summary");
    let mut failed = Vec::new();
    for (target, r) in &results {
        match r {
            Ok(s) => println!(
                "    {target:<10} ok      {} runs in {} s",
                s.runs.map_or("?".into(), |n| n.to_string()),
                args.secs
            ),
            Err(e) => {
                println!("    {target:<10} FAILED  {e:#}");
                failed.push(*target);
            }
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_runs_and_artifacts() {
        let mut s = Summary::default();
        for line in [
            "INFO: Seed: 123",
            "#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#4096\tpulse  cov: 99 ft: 120 corp: 9/99b exec/s: 2048 rss: 40Mb",
        ] {
            s.observe(line);
        }
        assert_eq!(s.runs, Some(4096));
        s.observe("Done 51234 runs in 61 second(s)");
        assert_eq!(s.runs, Some(51234));
        assert_eq!(s.artifact, None);
        s.observe(
            "artifact_prefix='artifacts/eql/'; Test unit written to artifacts/eql/crash-ab12",
        );
        assert_eq!(s.artifact.as_deref(), Some("artifacts/eql/crash-ab12"));
    }

    #[test]
    fn targets_are_selected_by_exact_name() {
        assert_eq!(select(None).unwrap().len(), TARGETS.len());
        assert_eq!(select(Some("decode")).unwrap(), vec![("decode", None)]);
        let e = select(Some("dec")).unwrap_err().to_string();
        assert!(
            e.contains("unknown fuzz target `dec`") && e.contains("rule_toml"),
            "{e}"
        );
    }

    #[test]
    fn every_target_has_a_source_seeds_and_its_dictionary() {
        let dir = crate::workspace_root().join("detector/fuzz");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        for (t, dict) in TARGETS {
            assert!(dir.join(format!("fuzz_targets/{t}.rs")).is_file(), "{t}");
            assert!(manifest.contains(&format!("name = \"{t}\"")), "{t}");
            let seeds = std::fs::read_dir(dir.join("seeds").join(t))
                .unwrap()
                .count();
            assert!((1..=20).contains(&seeds), "{t}: {seeds} seeds");
            if let Some(d) = dict {
                assert!(dir.join(d).is_file(), "{d}");
            }
        }
    }
}
