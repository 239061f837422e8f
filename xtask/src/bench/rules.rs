//! Rule scaling: the criterion bench `rules` of the detector crate (written with the rules
//! engine), read back from `target/criterion/**/new/estimates.json`.
//!
//! Naming the integrator must follow: the bench target is `detector/benches/rules.rs`
//! (`cargo bench -p detector --bench rules`), and its benchmark ids contain a path segment
//! [`SEED_SEGMENT`] for the seed rule only and [`ALL_SEGMENT`] for every compilable rule,
//! e.g. `pipeline/seed` and `pipeline/all`. The ratio is mean(all) / mean(seed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use super::report::{Outcome, Rules};

/// Id segment of the seed-rule-only benchmark.
pub const SEED_SEGMENT: &str = "seed";
/// Id segment of the all-rules benchmark.
pub const ALL_SEGMENT: &str = "all";

/// Runs `cargo bench -p detector --bench NAME` in `root`; the time it started (estimates
/// written since are this run's), or why it could not run (the last line cargo printed).
pub fn run_criterion(root: &Path, name: &str) -> Result<SystemTime, String> {
    let started = SystemTime::now();
    eprintln!("bench: cargo bench -p detector --bench {name}");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["bench", "-p", "detector", "--bench", name])
        .current_dir(root)
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(started),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!("cargo bench failed ({}): {last}", o.status))
        }
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// Runs the bench and reads its estimates.
pub fn run(root: &Path, target_dir: &Path) -> Outcome<Rules> {
    let bench = root.join("detector/benches/rules.rs");
    if !bench.is_file() {
        return Outcome::Unavailable {
            reason: format!("no criterion bench at {}", bench.display()),
        };
    }
    let started = match run_criterion(root, "rules") {
        Ok(t) => t,
        Err(reason) => return Outcome::Unavailable { reason },
    };
    let benches = read_estimates(&target_dir.join("criterion"), Some(started));
    if benches.is_empty() {
        return Outcome::Unavailable {
            reason: "cargo bench ran but wrote no new criterion estimates".into(),
        };
    }
    Outcome::Measured(summarise(benches))
}

/// Ids and mean ns of every `<id>/new/estimates.json` under `dir` (written after `since`).
pub fn read_estimates(dir: &Path, since: Option<SystemTime>) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "estimates.json")
                && p.parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "new")
            {
                let fresh = since.is_none_or(|s| {
                    e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|m| m >= s)
                });
                let mean = std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["mean"]["point_estimate"].as_f64());
                let id = p
                    .parent()
                    .and_then(Path::parent)
                    .and_then(|i| i.strip_prefix(dir).ok())
                    .map(|i| i.to_string_lossy().into_owned());
                if let (true, Some(mean), Some(id)) = (fresh, mean, id) {
                    out.push((id, mean));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The ratio all/seed from the ids' path segments.
pub fn summarise(benches: Vec<(String, f64)>) -> Rules {
    let find = |seg: &str| {
        benches
            .iter()
            .find(|(id, _)| id.split('/').any(|s| s == seg))
            .map(|(_, m)| *m)
    };
    let ratio = match (find(SEED_SEGMENT), find(ALL_SEGMENT)) {
        (Some(s), Some(a)) if s > 0.0 => Some(a / s),
        _ => None,
    };
    Rules {
        benches,
        ratio_all_to_seed: ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_layout() {
        // Removed on drop, also when an assertion fails.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let put = |id: &str, kind: &str, body: &str| {
            let d = dir.join(id).join(kind);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("estimates.json"), body).unwrap();
        };
        put(
            "pipeline/seed",
            "new",
            r#"{"mean":{"point_estimate":100.0}}"#,
        );
        put(
            "pipeline/all",
            "new",
            r#"{"mean":{"point_estimate":130.0}}"#,
        );
        put(
            "pipeline/all",
            "base",
            r#"{"mean":{"point_estimate":999.0}}"#,
        );
        put("broken", "new", "{not json");
        let got = read_estimates(&dir, None);
        assert_eq!(
            got,
            vec![
                ("pipeline/all".to_owned(), 130.0),
                ("pipeline/seed".to_owned(), 100.0)
            ]
        );
        let r = summarise(got);
        assert!((r.ratio_all_to_seed.unwrap() - 1.3).abs() < 1e-9);
        assert_eq!(
            summarise(vec![("x/small".into(), 1.0)]).ratio_all_to_seed,
            None
        );
    }
}
