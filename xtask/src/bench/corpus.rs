//! `--rules corpus`: the detector arms run with every single-event rule of Elastic's Linux
//! corpus that compiles, on top of the shipped rule, so the cost of a realistic rule set is
//! measured and not only the seed's.
//!
//! The daemon refuses a rule set with a rule it cannot compile, so the harness asks the
//! binaries themselves (`detector check-rules FILE…`) which rules compile and hands the
//! daemon a scratch directory of symlinks to those only (`--rules DIR`). With
//! `--compare-bin` both binaries must compile a rule for it to be loaded: both arms run
//! the same rules. Rules that do not compile are skipped with their reason, and counted.
//!
//! The corpus is found as the tests find it (`detector::testsupport`): `DETECTOR_RULES_DIR`
//! (a detection-rules checkout: `rules/linux`), `DETECTOR_SHARED_DIR`
//! (`rules/elastic-linux`), else `shared/rules/elastic-linux` beside the workspace or one of
//! its ancestors. When the directory has Elastic's `INDEX.tsv`, only the rules it classifies
//! as single-event (`process-single`, `any-single`) are taken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Serialize;

/// The rules the detector arms load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "lowercase")]
pub enum RuleChoice {
    /// The shipped config's rules only (the seed rule).
    #[default]
    Seed,
    /// The shipped rules plus every compilable single-event rule of Elastic's Linux corpus.
    Corpus,
}

/// What `--rules corpus` loaded (the report's record of it).
#[derive(Clone, Debug, Serialize)]
pub struct CorpusLoaded {
    /// The corpus directory.
    pub dir: PathBuf,
    /// Single-event rule files considered.
    pub considered: usize,
    /// Rule files loaded (compiled by every binary).
    pub loaded: usize,
    /// Skipped files with why (`file: reason`).
    pub skipped: Vec<String>,
}

/// The corpus directory, or why there is none.
pub fn corpus_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|v| !v.is_empty());
    let dir = if let Some(c) = nonempty("DETECTOR_RULES_DIR") {
        PathBuf::from(c).join("rules/linux")
    } else if let Some(s) = nonempty("DETECTOR_SHARED_DIR") {
        PathBuf::from(s).join("rules/elastic-linux")
    } else {
        root.ancestors()
            .skip(1)
            .map(|a| a.join("shared/rules/elastic-linux"))
            .find(|d| d.is_dir())
            .context(
                "no shared/rules/elastic-linux above the workspace; set DETECTOR_SHARED_DIR \
                 or DETECTOR_RULES_DIR",
            )?
    };
    if !dir.is_dir() {
        bail!("corpus directory {} does not exist", dir.display());
    }
    Ok(dir)
}

/// The single-event rule files of `dir` (per `INDEX.tsv` when present, else every `.toml`).
fn single_event_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).ok();
    let singles: Option<BTreeSet<String>> = index.map(|t| {
        t.lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                let kind = cols.get(4)?;
                kind.ends_with("-single").then(|| cols[0].to_owned())
            })
            .collect()
    });
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| {
            singles.as_ref().is_none_or(|s| {
                p.file_name()
                    .is_some_and(|n| s.contains(n.to_string_lossy().as_ref()))
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `bin check-rules files…`: the files that compiled, and the reasons of the rest (by
/// file path as printed).
fn check(
    bin: &Path,
    files: &[PathBuf],
) -> anyhow::Result<(BTreeSet<PathBuf>, BTreeMap<PathBuf, String>)> {
    let out = Command::new(bin)
        .arg("check-rules")
        .args(files)
        .output()
        .with_context(|| format!("run {} check-rules", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut ok = BTreeSet::new();
    let mut bad = BTreeMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("ok ") {
            if let Some(f) = files
                .iter()
                .find(|f| rest.starts_with(&*f.to_string_lossy()))
            {
                ok.insert(f.clone());
            }
        } else if let Some(rest) = l.strip_prefix("rejected ")
            && let Some(f) = files
                .iter()
                .find(|f| rest.starts_with(&*f.to_string_lossy()))
        {
            let reason = rest[f.to_string_lossy().len()..]
                .trim_start_matches(':')
                .trim();
            bad.entry(f.clone()).or_insert_with(|| reason.to_owned());
        }
    }
    if ok.is_empty() {
        bail!(
            "{} check-rules compiled none of {} rules: {}",
            bin.display(),
            files.len(),
            text.lines().last().unwrap_or("")
        );
    }
    Ok((ok, bad))
}

/// Makes `scratch/corpus-rules/` hold symlinks to every single-event corpus rule that each
/// of `bins` compiles; returns the directory and the record. Prints the counts.
pub fn prepare(
    root: &Path,
    bins: &[&Path],
    scratch: &Path,
) -> anyhow::Result<(PathBuf, CorpusLoaded)> {
    let dir = corpus_dir(root)?;
    let files = single_event_files(&dir)?;
    if files.is_empty() {
        bail!("no single-event rules in {}", dir.display());
    }
    let mut loaded: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut skipped: BTreeMap<PathBuf, String> = BTreeMap::new();
    for bin in bins {
        let (ok, bad) = check(bin, &files)?;
        let name = bin
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for f in &files {
            if !ok.contains(f) && loaded.remove(f) {
                let why = bad.get(f).map_or("not compiled", String::as_str);
                skipped.insert(f.clone(), format!("{name}: {why}"));
            }
        }
    }
    let out = scratch.join("corpus-rules");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    for f in &loaded {
        let link = out.join(f.file_name().context("rule file name")?);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(f, &link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    let skipped: Vec<String> = skipped
        .into_iter()
        .map(|(f, why)| {
            let n = f
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            format!("{n}: {why}")
        })
        .collect();
    eprintln!(
        "bench: --rules corpus: {} of {} single-event rules of {} load ({} skipped), plus the \
         shipped rules",
        loaded.len(),
        files.len(),
        dir.display(),
        skipped.len()
    );
    for s in &skipped {
        eprintln!("bench:   skipped {s}");
    }
    Ok((
        out,
        CorpusLoaded {
            dir,
            considered: files.len(),
            loaded: loaded.len(),
            skipped,
        },
    ))
}
