//! The benchmark report: one serde structure that is both printed as a table and written
//! as JSON to `target/bench/<timestamp>.json` and `target/bench/latest.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::child::Usage;
use super::detector::FinalStats;
use super::peers::{Arm, Captured};

/// A measurement that either happened or says why not. Never a made-up number.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome<T> {
    /// Measured on this run.
    Measured(T),
    /// Could not be measured here (tool missing, failed to start…).
    Unavailable {
        /// Why.
        reason: String,
    },
    /// Not requested on this invocation.
    Skipped,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Start of the invocation, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_utc: String,
    /// What it ran on (ratios travel; absolute rates do not).
    pub machine: Machine,
    /// The knobs of this invocation.
    pub params: Params,
    /// Exec storm: one row per arm and worker count.
    pub storm: Vec<StormRow>,
    /// CPU and memory of each attached tool.
    pub cost: Vec<CostRow>,
    /// Detection latency in a container.
    pub latency: Outcome<Latency>,
    /// Detector start-up time.
    pub startup: Outcome<Startup>,
    /// Rule-scaling criterion results.
    pub rules: Outcome<Rules>,
    /// EQL sequences: per-event cost ratio and memory at 100,000 pending.
    pub sequences: Outcome<super::sequences::Sequences>,
}

/// Host facts.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// 1-minute load average at start (other users of a shared machine show here).
    pub load_1m: f64,
}

/// Parameters.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// Alternating runs per arm.
    pub runs: u32,
    /// Processes per storm worker.
    pub execs_per_worker: u64,
    /// Worker counts.
    pub workers: Vec<u32>,
    /// Processes in the churn.
    pub churn: u64,
    /// `ssh -V` execs in the latency container.
    pub latency_execs: u64,
    /// The corpus rules the detector arms loaded (`--rules corpus`); `None`: the shipped
    /// rules only.
    pub corpus: Option<super::corpus::CorpusLoaded>,
}

/// One (arm, workers) cell of the storm.
#[derive(Clone, Debug, Serialize)]
pub struct StormRow {
    /// The arm.
    pub arm: Arm,
    /// Parallel workers.
    pub workers: u32,
    /// The result.
    pub result: Outcome<StormMeasured>,
}

/// Rates of one (arm, workers) cell over all runs.
#[derive(Clone, Debug, Serialize)]
pub struct StormMeasured {
    /// execs/s of each run, in run order.
    pub rates: Vec<f64>,
    /// Median execs/s.
    pub median_rate: f64,
    /// Median rate / the baseline's median rate (same worker count); `None` if the
    /// baseline was not measured.
    pub ratio_to_nothing: Option<f64>,
    /// Median over runs of (rate / baseline rate of the same run): the figure the table
    /// shows, robust to load drifting between runs.
    pub paired_ratio: Option<f64>,
    /// The per-run paired ratios.
    pub paired_ratios: Vec<f64>,
    /// Storm execs (and exits) the peer wrote to its file, summed over runs, with the
    /// number expected.
    pub peer_seen: Option<PeerSeen>,
    /// The detector's own counts, summed over runs.
    pub detector_events: Option<DetectorEvents>,
}

/// What a peer wrote about the storm binary.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PeerSeen {
    /// Storm execs performed.
    pub expected_execs: u64,
    /// Storm events found in the peer's output.
    pub captured: Captured,
}

/// Detector event accounting for the storm.
#[derive(Clone, Debug, Serialize)]
pub struct DetectorEvents {
    /// fork+exec+exit events the storm generated (3 per process, plus the workers').
    pub expected: u64,
    /// Events received, host-wide, while attached (from the final stats line): at least
    /// `expected` when nothing was lost, since the rest of the host keeps running.
    pub received: Option<u64>,
    /// Events the detector counted as lost.
    pub lost: Option<u64>,
    /// The raw stats, per run (absent where the line was missing).
    pub per_run: Vec<Option<FinalStats>>,
}

/// Cost of one tool over one workload.
#[derive(Clone, Debug, Serialize)]
pub struct CostRow {
    /// The tool.
    pub arm: Arm,
    /// `storm-1w`, `storm-4w` or `churn`.
    pub workload: String,
    /// The result.
    pub result: Outcome<CostMeasured>,
}

/// CPU and memory of a tool over a workload.
#[derive(Clone, Debug, Serialize)]
pub struct CostMeasured {
    /// CPU used over whole lifetimes (start-up, workload, shutdown), summed over the
    /// attachments, from `wait4`.
    pub usage_sum: Usage,
    /// CPU seconds between ready and stop, summed: what the workload cost.
    pub workload_cpu_s: Option<f64>,
    /// Events the tool handled (detector: its stats; peers: lines of output).
    pub events: u64,
    /// Where `events` came from.
    pub events_source: String,
    /// Workload CPU seconds per 100,000 events.
    pub cpu_s_per_100k_events: Option<f64>,
    /// Highest peak RSS over the attachments, KiB (`VmHWM`, see `arms::peak_kib`).
    pub peak_rss_kib: u64,
}

/// Detection latency.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// `ssh -V` execs in the container.
    pub execs: u64,
    /// Alerts with a kernel timestamp found in the file.
    pub alerts: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

/// Start-up of `detector trace`.
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// Launches measured.
    pub runs: u32,
    /// Median launch → ready line on stderr, ms (if it prints one).
    pub ready_ms: Option<f64>,
    /// Median launch → first event line on stdout, ms.
    pub first_event_ms: f64,
}

/// Rule-scaling criterion results.
#[derive(Clone, Debug, Serialize)]
pub struct Rules {
    /// Every criterion benchmark found: id and mean ns per iteration.
    pub benches: Vec<(String, f64)>,
    /// mean(all rules) / mean(seed rule) when both were found.
    pub ratio_all_to_seed: Option<f64>,
}

/// Writes `report` as pretty JSON to `<dir>/<stamp>.json` and `<dir>/latest.json`.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)? + "\n";
    let stamp = report.started_utc.replace([':', '-'], "");
    let path = dir.join(format!("{stamp}.json"));
    std::fs::write(&path, &json).with_context(|| format!("write {}", path.display()))?;
    let latest = dir.join("latest.json");
    std::fs::write(&latest, &json).with_context(|| format!("write {}", latest.display()))?;
    Ok(path)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (civil-from-days, proleptic
/// Gregorian), so the report needs no date crate.
pub fn utc_stamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Reads the host facts.
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        load_1m: read("/proc/loadavg")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_795_813_445, "2026-11-27T21:04:05Z"),
        ];
        for (s, want) in cases {
            assert_eq!(utc_stamp(s), want);
        }
    }

    #[test]
    fn outcome_json_shape() {
        let m: Outcome<Latency> = Outcome::Unavailable {
            reason: "no detector".into(),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"status":"unavailable","reason":"no detector"}"#
        );
        let s = Outcome::Measured(Startup {
            runs: 1,
            ready_ms: None,
            first_event_ms: 2.5,
        });
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "measured");
        assert_eq!(v["first_event_ms"], 2.5);
    }
}
