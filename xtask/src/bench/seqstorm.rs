//! The `sequences` storm arm (`--arms nothing,detector,sequences`): `detector run` with the
//! same config and rules as the `detector` arm plus every sequence rule of Elastic's Linux
//! corpus that `run` accepts (`INDEX.tsv` query kind `sequence-process`: the terms read
//! only process events; file and network sequences are refused by `run`), so the exec
//! storm's cost of the sequence engine is measured side by side with the detector without
//! them, in one invocation. The ratio of the two arms' median rates is printed after the
//! table (target: no storm regression).
//!
//! Like `--rules corpus`, the daemon is handed a scratch directory of symlinks (`--rules
//! DIR`, added to the config's rules); the corpus is found as the tests find it
//! ([`super::corpus::corpus_dir`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::detector::DetectorCmd;
use super::peers::Arm;
use super::report::{Outcome, StormRow};

/// The `sequence-process` rule files of the corpus (by `INDEX.tsv`).
fn sequence_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv"))
        .with_context(|| format!("read {}/INDEX.tsv", dir.display()))?;
    let names: BTreeSet<&str> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(4) == Some(&"sequence-process")).then_some(cols[0])
        })
        .collect();
    let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if files.is_empty() {
        bail!("no sequence-process rules in {}/INDEX.tsv", dir.display());
    }
    Ok(files)
}

/// The `sequences` arm's command: `base` plus `--rules DIR` of symlinks to the corpus's
/// `sequence-process` rules (made under `scratch`). Prints how many.
pub fn prepare(root: &Path, base: &DetectorCmd, scratch: &Path) -> anyhow::Result<DetectorCmd> {
    let dir = super::corpus::corpus_dir(root)?;
    let files = sequence_files(&dir)?;
    let out = scratch.join("sequence-rules");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    for f in &files {
        let link = out.join(f.file_name().context("rule file name")?);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(f, &link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    eprintln!(
        "bench: the sequences arm loads {} sequence-process rules of {} on top of the \
         detector arm's rules",
        files.len(),
        dir.display()
    );
    let mut cmd = base.clone();
    cmd.extra_args.push("--rules".into());
    cmd.extra_args.push(out.to_string_lossy().into_owned());
    Ok(cmd)
}

/// Median rate of `arm` at `workers` and its paired ratio to the baseline, if measured.
fn median(rows: &[StormRow], arm: Arm, workers: u32) -> Option<(f64, Option<f64>)> {
    rows.iter()
        .find(|r| r.arm == arm && r.workers == workers)
        .and_then(|r| match &r.result {
            Outcome::Measured(m) => Some((m.median_rate, m.paired_ratio)),
            _ => None,
        })
}

/// One line per worker count: the `sequences` arm's median rate over the `detector`
/// arm's (1.0: no regression). Empty when the arm did not run.
pub fn render(rows: &[StormRow]) -> String {
    let mut s = String::new();
    let mut workers: Vec<u32> = rows
        .iter()
        .filter(|r| r.arm == Arm::Sequences)
        .map(|r| r.workers)
        .collect();
    workers.dedup();
    for w in workers {
        let (with, without) = (
            median(rows, Arm::Sequences, w),
            median(rows, Arm::Detector, w),
        );
        let _ = match (with, without) {
            (Some((a, pa)), Some((b, pb))) if b > 0.0 => writeln!(
                s,
                "storm with sequence rules, {w} worker(s): {a:.0} vs {b:.0} execs/s without \
                 (sequences/detector {:.3}; of the paired ratios to the baseline {}; target: \
                 no regression)",
                a / b,
                match (pa, pb) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.3}", x / y),
                    _ => "n/a".into(),
                }
            ),
            _ => writeln!(
                s,
                "storm with sequence rules, {w} worker(s): n/a (both the detector and the \
                 sequences arm must be measured)"
            ),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::StormMeasured;

    fn row(arm: Arm, workers: u32, rate: f64, paired: f64) -> StormRow {
        StormRow {
            arm,
            workers,
            result: Outcome::Measured(StormMeasured {
                rates: vec![rate],
                median_rate: rate,
                ratio_to_nothing: None,
                paired_ratio: Some(paired),
                paired_ratios: vec![paired],
                peer_seen: None,
                detector_events: None,
            }),
        }
    }

    #[test]
    fn renders_the_ratio_of_the_two_arms_per_worker_count() {
        let rows = [
            row(Arm::Detector, 1, 1000.0, 0.9),
            row(Arm::Sequences, 1, 950.0, 0.81),
            row(Arm::Sequences, 4, 3000.0, 0.9),
        ];
        let text = render(&rows);
        assert!(
            text.contains("1 worker(s): 950 vs 1000 execs/s without (sequences/detector 0.950; of the paired ratios to the baseline 0.900"),
            "{text}"
        );
        assert!(text.contains("4 worker(s): n/a"), "{text}");
        assert_eq!(render(&rows[..1]), "");
    }
}
