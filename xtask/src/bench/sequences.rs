//! EQL sequences: the criterion bench `sequences` of the detector crate
//! (`detector/benches/sequences.rs`): per-event cost of the daemon's path with every
//! sequence rule of Elastic's Linux corpus loaded (`sequences/with`) against the same
//! single-event rules alone (`sequences/without`), and the resident memory growth at
//! 100,000 pending sequences, which the bench writes to `<target>/tmp/sequences-memory.json`.
//! Targets: with/without ≤ 1.3, ≤ 64 MiB.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::report::Outcome;

/// What the section measured.
#[derive(Clone, Debug, Serialize)]
pub struct Sequences {
    /// Mean ns per event without and with the sequence rules.
    pub without_ns: Option<f64>,
    pub with_ns: Option<f64>,
    /// with / without (target ≤ 1.3).
    pub ratio: Option<f64>,
    /// The same over the quiet stream (no sequence completes: the cost of carrying them).
    pub quiet_without_ns: Option<f64>,
    pub quiet_with_ns: Option<f64>,
    pub quiet_ratio: Option<f64>,
    /// Pending sequences of the memory run, and the resident set's growth (MiB; ≤ 64).
    pub pending: Option<u64>,
    pub rss_growth_mib: Option<f64>,
    /// The engine's own estimate and the compressed event bodies, MiB.
    pub engine_mib: Option<f64>,
    pub bodies_mib: Option<f64>,
}

/// Runs the bench and reads its results.
pub fn run(root: &Path, target_dir: &Path) -> Outcome<Sequences> {
    if !root.join("detector/benches/sequences.rs").is_file() {
        return Outcome::Unavailable {
            reason: "no bench detector/benches/sequences.rs".into(),
        };
    }
    let started = match super::rules::run_criterion(root, "sequences") {
        Ok(t) => t,
        Err(reason) => return Outcome::Unavailable { reason },
    };
    let benches = super::rules::read_estimates(&target_dir.join("criterion"), Some(started));
    let find = |id: &str| benches.iter().find(|(i, _)| i == id).map(|(_, m)| *m);
    let memory = read_memory(&target_dir.join("tmp/sequences-memory.json"), started);
    let mut s = summarise(
        find("sequences/without"),
        find("sequences/with"),
        memory.as_ref(),
    );
    s.quiet_without_ns = find("sequences_quiet/without");
    s.quiet_with_ns = find("sequences_quiet/with");
    s.quiet_ratio = ratio(s.quiet_without_ns, s.quiet_with_ns);
    Outcome::Measured(s)
}

/// The memory figures the bench wrote, if written after `since`.
fn read_memory(path: &Path, since: SystemTime) -> Option<serde_json::Value> {
    let fresh = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|m| m >= since);
    if !fresh {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn summarise(
    without: Option<f64>,
    with: Option<f64>,
    memory: Option<&serde_json::Value>,
) -> Sequences {
    let mib = |key: &str| {
        memory
            .and_then(|m| m[key].as_u64())
            .map(|b| b as f64 / (1u64 << 20) as f64)
    };
    Sequences {
        without_ns: without,
        with_ns: with,
        ratio: ratio(without, with),
        quiet_without_ns: None,
        quiet_with_ns: None,
        quiet_ratio: None,
        pending: memory.and_then(|m| m["pending"].as_u64()),
        rss_growth_mib: mib("rss_growth_bytes"),
        engine_mib: mib("engine_approx_bytes"),
        bodies_mib: mib("bodies_compressed_bytes"),
    }
}

/// with / without.
fn ratio(without: Option<f64>, with: Option<f64>) -> Option<f64> {
    match (without, with) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

/// One line for the report's table.
pub fn render(s: &Sequences) -> String {
    let f = |x: Option<f64>, unit: &str| x.map_or("n/a".into(), |v| format!("{v:.1}{unit}"));
    let r = |x: Option<f64>| x.map_or("n/a".into(), |r| format!("{r:.2}×"));
    format!(
        "per event without {} / with {} (with/without {}, target ≤ 1.3×; alerts included), \
         without alerting {} / {} ({}); {} pending: RSS +{} (target ≤ 64 MiB; engine {}, \
         stored events {})",
        f(s.without_ns, " ns"),
        f(s.with_ns, " ns"),
        r(s.ratio),
        f(s.quiet_without_ns, " ns"),
        f(s.quiet_with_ns, " ns"),
        r(s.quiet_ratio),
        s.pending.map_or("n/a".into(), |p| p.to_string()),
        f(s.rss_growth_mib, " MiB"),
        f(s.engine_mib, " MiB"),
        f(s.bodies_mib, " MiB"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_ratio_and_memory() {
        let m = serde_json::json!({
            "pending": 100000, "rss_growth_bytes": 41943040u64,
            "engine_approx_bytes": 10485760u64, "bodies_compressed_bytes": 20971520u64,
        });
        let s = summarise(Some(1000.0), Some(1200.0), Some(&m));
        assert!((s.ratio.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(s.pending, Some(100_000));
        assert_eq!(s.rss_growth_mib, Some(40.0));
        let line = render(&s);
        assert!(line.contains("with/without 1.20×"), "{line}");
        assert!(line.contains("without alerting n/a / n/a (n/a)"), "{line}");
        assert!(line.contains("100000 pending: RSS +40.0 MiB"), "{line}");
        let none = summarise(None, Some(1.0), None);
        assert_eq!(none.ratio, None);
        assert!(render(&none).contains("n/a"));
    }
}
