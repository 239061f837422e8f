//! Runs the storm and the churn under each arm, alternating arms within every run, and
//! folds the measurements into storm and cost rows.

use std::collections::HashMap;

use super::child::Usage;
use super::detector::{FinalStats, parse_final_stats};
use super::interrupt;
use super::peers::{self, Arm, ArmEnv, Captured, Detached, Runs};
use super::report::{
    CostMeasured, CostRow, DetectorEvents, Outcome, PeerSeen, StormMeasured, StormRow,
};
use super::stats::median;
use super::storm::{self, Mode, PrivateTrue};

/// What to run.
pub struct Plan {
    /// Arms in alternation order (baseline first is best).
    pub arms: Vec<Arm>,
    /// Worker counts.
    pub workers: Vec<u32>,
    /// Runs per cell.
    pub runs: u32,
    /// Processes per worker.
    pub per_worker: u64,
    /// Churn size (0: no churn).
    pub churn: u64,
}

/// One attachment's accounting.
#[derive(Debug)]
struct Sample {
    usage: Usage,
    workload_cpu_s: Option<f64>,
    peak_kib: u64,
    events: Option<u64>,
    events_source: &'static str,
    stats: Option<FinalStats>,
    captured: Option<Captured>,
}

#[derive(Default, Debug)]
struct Cell {
    rates: Vec<f64>,
    /// The run each rate came from (to pair with the baseline of the same run).
    runs: Vec<u32>,
    samples: Vec<Sample>,
    expected_execs: u64,
}

/// Runs the plan; returns the storm rows and cost rows.
pub fn run(plan: &Plan, env: &ArmEnv<'_>, target: &PrivateTrue) -> (Vec<StormRow>, Vec<CostRow>) {
    let mut unavailable: HashMap<Arm, String> = HashMap::new();
    for &arm in &plan.arms {
        let available = match env.detector_for(arm) {
            Some(cmd) => peers::availability(arm, cmd),
            None if arm == Arm::Sequences => Err("no sequence rules prepared".to_owned()),
            None => Err("no --compare-bin given".to_owned()),
        };
        if let Err(r) = available {
            eprintln!("bench: {} unavailable: {r}", arm.name());
            unavailable.insert(arm, r);
        }
    }
    let mut cells: HashMap<(Arm, u32), Cell> = HashMap::new();
    for run in 0..plan.runs {
        // Rotate the order each run so no arm always follows the same one (page cache,
        // CPU frequency and neighbours' load drift over an invocation).
        let n = plan.arms.len();
        let order = (0..n).map(|i| plan.arms[(i + run as usize) % n]);
        for arm in order {
            for &w in &plan.workers {
                if unavailable.contains_key(&arm) || interrupt::requested() {
                    continue;
                }
                let cell = cells.entry((arm, w)).or_default();
                match one(
                    arm,
                    w,
                    plan.per_worker,
                    Mode::Exec,
                    env,
                    target,
                    &format!("r{run}w{w}"),
                ) {
                    Ok((rate, sample)) => {
                        eprintln!("bench: run {run} {:<9} {w}w {rate:8.0} execs/s", arm.name());
                        cell.rates.push(rate);
                        cell.runs.push(run);
                        cell.expected_execs += u64::from(w) * plan.per_worker;
                        if let Some(s) = sample {
                            cell.samples.push(s);
                        }
                    }
                    Err(e) => {
                        let reason = format!("{e:#}");
                        eprintln!("bench: {} failed: {reason}", arm.name());
                        unavailable.insert(arm, reason);
                    }
                }
            }
        }
    }
    let storm_rows = storm_rows(plan, &cells, &unavailable);
    let mut cost_rows = Vec::new();
    for &arm in plan.arms.iter().filter(|a| **a != Arm::Nothing) {
        for &w in &plan.workers {
            let result = match (unavailable.get(&arm), cells.get(&(arm, w))) {
                (Some(r), _) => Outcome::Unavailable { reason: r.clone() },
                (None, Some(c)) => cost(&c.samples),
                (None, None) => Outcome::Skipped,
            };
            cost_rows.push(CostRow {
                arm,
                workload: format!("storm-{w}w"),
                result,
            });
        }
        if plan.churn > 0 && !interrupt::requested() {
            let result = if let Some(r) = unavailable.get(&arm) {
                Outcome::Unavailable { reason: r.clone() }
            } else {
                match one(arm, 1, plan.churn, Mode::Churn, env, target, "churn") {
                    Ok((rate, Some(s))) => {
                        eprintln!("bench: churn {:<9} {rate:8.0} procs/s", arm.name());
                        cost(&[s])
                    }
                    Ok((_, None)) => Outcome::Skipped,
                    Err(e) => Outcome::Unavailable {
                        reason: format!("{e:#}"),
                    },
                }
            };
            cost_rows.push(CostRow {
                arm,
                workload: "churn".into(),
                result,
            });
        }
    }
    (storm_rows, cost_rows)
}

/// Attach, storm, detach: the rate and (for tools) the accounting.
fn one(
    arm: Arm,
    workers: u32,
    per_worker: u64,
    mode: Mode,
    env: &ArmEnv<'_>,
    target: &PrivateTrue,
    tag: &str,
) -> anyhow::Result<(f64, Option<Sample>)> {
    let attached = peers::attach(arm, env, tag)?;
    let result = storm::run(workers, per_worker, &target.path, mode)?;
    let Some(a) = attached else {
        return Ok((result.rate(), None));
    };
    let d = a.detach()?;
    let sample = sample(arm, &d, target);
    // The output can be large (one line per host event): keep the disk clean.
    let _ = std::fs::remove_file(&d.output);
    Ok((result.rate(), Some(sample)))
}

fn sample(arm: Arm, d: &Detached, target: &PrivateTrue) -> Sample {
    let out = std::fs::read(&d.output).unwrap_or_default();
    let path = target.path.to_string_lossy();
    let lines = |skip: &dyn Fn(&[u8]) -> bool| {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && !skip(l))
            .count() as u64
    };
    let (events, events_source, stats, captured) = match arm.runs() {
        Runs::DetectorRun => {
            let stats = parse_final_stats(&d.stopped.stderr);
            (stats.map(|s| s.received()), "final_stats", stats, None)
        }
        Runs::DetectorTrace => {
            let stats = parse_final_stats(&d.stopped.stderr);
            let captured = peers::count_trace(&out, &path);
            (
                stats.map(|s| s.received()),
                "exit stats",
                stats,
                Some(captured),
            )
        }
        Runs::Bpftrace => (
            Some(lines(&|l| l.starts_with(b"Attaching"))),
            "output lines",
            None,
            Some(peers::count_bpftrace(&out, &path, &target.name)),
        ),
        Runs::Execsnoop => (
            Some(lines(&|l| l.starts_with(b"PCOMM"))),
            "output lines",
            None,
            Some(peers::count_execsnoop(&out, &target.name)),
        ),
        Runs::Nothing => (None, "", None, None),
    };
    Sample {
        usage: d.stopped.usage,
        workload_cpu_s: d.cpu_workload_s,
        peak_kib: peak_kib(d, stats),
        events,
        events_source,
        stats,
        captured,
    }
}

/// The tool's peak RSS: its `VmHWM` read just before the stop signal, or the detector's own
/// at exit (which also covers the drain), whichever is higher. Not `wait4`'s `ru_maxrss`
/// unless neither was read: at exec the kernel carries into a child's `ru_maxrss` the RSS
/// of the process that spawned it (this harness), not only the tool's own.
fn peak_kib(d: &Detached, stats: Option<FinalStats>) -> u64 {
    match (d.vm_hwm_kib, stats.and_then(|s| s.peak_rss_kib)) {
        (None, None) => d.stopped.usage.max_rss_kib,
        (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
    }
}

fn storm_rows(
    plan: &Plan,
    cells: &HashMap<(Arm, u32), Cell>,
    unavailable: &HashMap<Arm, String>,
) -> Vec<StormRow> {
    let mut rows = Vec::new();
    for &arm in &plan.arms {
        for &w in &plan.workers {
            let cell = cells.get(&(arm, w));
            let result = match (unavailable.get(&arm), cell) {
                (Some(r), _) => Outcome::Unavailable { reason: r.clone() },
                (None, Some(c)) if !c.rates.is_empty() => {
                    let m = median(&c.rates).unwrap_or(f64::NAN);
                    let base = cells
                        .get(&(Arm::Nothing, w))
                        .filter(|_| !unavailable.contains_key(&Arm::Nothing));
                    let paired = base.map(|b| paired_ratios(c, b)).unwrap_or_default();
                    Outcome::Measured(StormMeasured {
                        rates: c.rates.clone(),
                        median_rate: m,
                        ratio_to_nothing: base.and_then(|b| median(&b.rates)).map(|b| m / b),
                        paired_ratio: median(&paired),
                        paired_ratios: paired,
                        peer_seen: peer_seen(c),
                        detector_events: arm.is_detector().then(|| detector_events(c, w)),
                    })
                }
                _ => Outcome::Skipped,
            };
            rows.push(StormRow {
                arm,
                workers: w,
                result,
            });
        }
    }
    rows
}

/// rate / baseline rate of the same run, for every run both measured: drift of the
/// machine's load between runs cancels out of these.
fn paired_ratios(c: &Cell, base: &Cell) -> Vec<f64> {
    c.runs
        .iter()
        .zip(&c.rates)
        .filter_map(|(run, rate)| {
            let i = base.runs.iter().position(|r| r == run)?;
            Some(rate / base.rates[i])
        })
        .collect()
}

fn peer_seen(c: &Cell) -> Option<PeerSeen> {
    let caps: Vec<Captured> = c.samples.iter().filter_map(|s| s.captured).collect();
    if caps.is_empty() {
        return None;
    }
    let exec = caps.iter().map(|c| c.exec).sum();
    let exit = caps.iter().map(|c| c.exit).sum::<Option<u64>>();
    Some(PeerSeen {
        expected_execs: c.expected_execs,
        captured: Captured { exec, exit },
    })
}

fn detector_events(c: &Cell, workers: u32) -> DetectorEvents {
    let per_run: Vec<Option<FinalStats>> = c.samples.iter().map(|s| s.stats).collect();
    let all: Option<Vec<FinalStats>> = per_run.iter().copied().collect();
    // Each worker is itself forked, exec'd and reaped once per run.
    let worker_events = 3 * u64::from(workers) * c.samples.len() as u64;
    DetectorEvents {
        expected: 3 * c.expected_execs + worker_events,
        received: all
            .as_ref()
            .map(|v| v.iter().map(FinalStats::received).sum()),
        lost: all.as_ref().map(|v| v.iter().map(|s| s.lost).sum()),
        per_run,
    }
}

fn cost(samples: &[Sample]) -> Outcome<CostMeasured> {
    if samples.is_empty() {
        return Outcome::Skipped;
    }
    let mut usage = Usage::default();
    for s in samples {
        usage.user_s += s.usage.user_s;
        usage.sys_s += s.usage.sys_s;
        usage.max_rss_kib = usage.max_rss_kib.max(s.usage.max_rss_kib);
    }
    let events: Option<u64> = samples.iter().map(|s| s.events).sum();
    let workload: Option<f64> = samples.iter().map(|s| s.workload_cpu_s).sum();
    Outcome::Measured(CostMeasured {
        usage_sum: usage,
        events: events.unwrap_or(0),
        events_source: if events.is_some() {
            samples[0].events_source.to_owned()
        } else {
            "missing (no final_stats line)".to_owned()
        },
        workload_cpu_s: workload,
        cpu_s_per_100k_events: events
            .filter(|&e| e > 0)
            .zip(workload)
            .map(|(e, w)| w * 100_000.0 / e as f64),
        peak_rss_kib: samples.iter().map(|s| s.peak_kib).max().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_by_run() {
        let base = Cell {
            rates: vec![1000.0, 2000.0, 500.0],
            runs: vec![0, 1, 2],
            ..Cell::default()
        };
        // Run 1 failed for the arm: only runs 0 and 2 pair.
        let arm = Cell {
            rates: vec![900.0, 450.0],
            runs: vec![0, 2],
            ..Cell::default()
        };
        assert_eq!(paired_ratios(&arm, &base), vec![0.9, 0.9]);
        assert_eq!(paired_ratios(&arm, &Cell::default()), Vec::<f64>::new());
    }
}
