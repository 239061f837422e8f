//! The report as a plain-text table (what `cargo xtask bench` prints and the README quotes).

use std::fmt::Write;

use super::report::{Outcome, Report};

fn cell<T>(o: &Outcome<T>, f: impl FnOnce(&T) -> String) -> String {
    match o {
        Outcome::Measured(t) => f(t),
        Outcome::Unavailable { reason } => format!("unavailable ({})", one_line(reason)),
        Outcome::Skipped => "skipped".to_owned(),
    }
}

/// A reason on one line, at most 100 characters.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 100 {
        flat.chars().take(99).collect::<String>() + "…"
    } else {
        flat
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
}

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let p = &r.params;
    let _ = writeln!(
        s,
        "detector bench {} — kernel {}, {} × {}, load {:.2}",
        r.started_utc, m.kernel, m.cpus, m.cpu_model, m.load_1m
    );
    let _ = match &p.corpus {
        None => writeln!(s, "rules: the shipped config's"),
        Some(c) => writeln!(
            s,
            "rules: the shipped config's + {} of {} single-event rules of {} ({} skipped: \
             they do not compile)",
            c.loaded,
            c.considered,
            c.dir.display(),
            c.skipped.len()
        ),
    };
    let _ = writeln!(
        s,
        "\n1. exec storm: {} fork+exec of a private /bin/true per worker, median of {} alternating \
         runs (ratio: median of per-run rate / same-run baseline)",
        p.execs_per_worker, p.runs
    );
    let _ = writeln!(
        s,
        "{:<10} {:>3}  {:>9}  {:>7}  {:<26} detector events exp/recv/lost",
        "arm", "w", "execs/s", "ratio", "storm execs seen (peer)"
    );
    for row in &r.storm {
        let body = cell(&row.result, |m| {
            let seen = m.peer_seen.map_or("-".to_owned(), |ps| {
                format!("{}/{}", ps.captured.exec, ps.expected_execs)
            });
            let det = m.detector_events.as_ref().map_or("-".to_owned(), |d| {
                format!("{}/{}/{}", d.expected, opt(d.received), opt(d.lost))
            });
            format!(
                "{:>9.0}  {:>7}  {:<26} {}",
                m.median_rate,
                m.paired_ratio.map_or("n/a".into(), |x| format!("{x:.3}")),
                seen,
                det
            )
        });
        let _ = writeln!(s, "{:<10} {:>3}  {}", row.arm.name(), row.workers, body);
    }
    let _ = writeln!(
        s,
        "\n2. cost of the attached tool (churn: {} fork+exit processes; total = whole life \
         incl. start-up, load = ready → stop, used per event)",
        p.churn
    );
    let _ = writeln!(
        s,
        "{:<10} {:<9} {:>11} {:>10} {:>10} {:>14} {:>9}",
        "arm", "workload", "cpu s total", "cpu s load", "events", "cpu s/100k ev", "peak MiB"
    );
    for row in &r.cost {
        let body = cell(&row.result, |c| {
            format!(
                "{:>11.2} {:>10} {:>10} {:>14} {:>9.1}",
                c.usage_sum.cpu_s(),
                c.workload_cpu_s.map_or("n/a".into(), |x| format!("{x:.2}")),
                c.events,
                c.cpu_s_per_100k_events
                    .map_or("n/a".into(), |x| format!("{x:.3}")),
                c.peak_rss_kib as f64 / 1024.0
            )
        });
        let _ = writeln!(s, "{:<10} {:<9} {}", row.arm.name(), row.workload, body);
    }
    let _ = writeln!(
        s,
        "\n3. detection latency ({} ssh -V in a runc container): {}",
        p.latency_execs,
        cell(&r.latency, |l| format!(
            "{} alerts, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.alerts, l.p50_ms, l.p99_ms, l.max_ms
        ))
    );
    let _ = writeln!(
        s,
        "4. start-up (detector trace, launch → first event): {}",
        cell(&r.startup, |st| format!(
            "{:.1} ms median of {} (ready line {})",
            st.first_event_ms,
            st.runs,
            st.ready_ms.map_or("n/a".into(), |x| format!("{x:.1} ms"))
        ))
    );
    let _ = writeln!(
        s,
        "5. rule scaling (criterion): {}",
        cell(&r.rules, |ru| {
            let list: Vec<String> = ru
                .benches
                .iter()
                .map(|(id, ns)| format!("{id} {:.0} ns", ns))
                .collect();
            format!(
                "{}; all/seed {}",
                list.join(", "),
                ru.ratio_all_to_seed
                    .map_or("n/a".into(), |x| format!("{x:.2}×"))
            )
        })
    );
    let _ = writeln!(
        s,
        "6. EQL sequences (criterion + memory): {}",
        cell(&r.sequences, super::sequences::render)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::peers::Arm;
    use super::super::report::*;
    use super::*;

    fn report() -> Report {
        Report {
            started_utc: "2026-11-27T21:00:00Z".into(),
            machine: Machine {
                kernel: "6.18.0".into(),
                cpu_model: "Test CPU".into(),
                cpus: 2,
                load_1m: 1.5,
            },
            params: Params {
                runs: 5,
                execs_per_worker: 1000,
                workers: vec![1],
                churn: 100,
                latency_execs: 1000,
                corpus: None,
            },
            storm: vec![
                StormRow {
                    arm: Arm::Nothing,
                    workers: 1,
                    result: Outcome::Measured(StormMeasured {
                        rates: vec![2000.0, 2500.0, 2400.0],
                        median_rate: 2400.0,
                        ratio_to_nothing: Some(1.0),
                        paired_ratio: Some(1.0),
                        paired_ratios: vec![1.0, 1.0, 1.0],
                        peer_seen: None,
                        detector_events: None,
                    }),
                },
                StormRow {
                    arm: Arm::Detector,
                    workers: 1,
                    result: Outcome::Unavailable {
                        reason: "no binary at target/release/detector\nsecond line".into(),
                    },
                },
            ],
            cost: vec![CostRow {
                arm: Arm::Bpftrace,
                workload: "churn".into(),
                result: Outcome::Measured(CostMeasured {
                    usage_sum: super::super::child::Usage {
                        user_s: 1.0,
                        sys_s: 0.5,
                        max_rss_kib: 2048,
                    },
                    workload_cpu_s: Some(1.2),
                    events: 200_000,
                    events_source: "output lines".into(),
                    cpu_s_per_100k_events: Some(0.6),
                    peak_rss_kib: 3072,
                }),
            }],
            latency: Outcome::Skipped,
            startup: Outcome::Measured(Startup {
                runs: 3,
                ready_ms: None,
                first_event_ms: 123.45,
            }),
            rules: Outcome::Unavailable {
                reason: "no bench".into(),
            },
            sequences: Outcome::Skipped,
        }
    }

    #[test]
    fn renders_measured_unavailable_and_skipped() {
        let t = render(&report());
        assert!(t.contains("nothing      1       2400    1.000"), "{t}");
        assert!(
            t.contains(
                "detector     1  unavailable (no binary at target/release/detector second line)"
            ),
            "{t}"
        );
        assert!(
            t.contains("latency (1000 ssh -V in a runc container): skipped"),
            "{t}"
        );
        assert!(t.contains("123.5 ms median of 3 (ready line n/a)"), "{t}");
        assert!(
            t.contains(
                "bpftrace   churn            1.50       1.20     200000          0.600       3.0"
            ),
            "{t}"
        );
        assert!(
            t.contains("rule scaling (criterion): unavailable (no bench)"),
            "{t}"
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        let r = "x".repeat(500);
        assert_eq!(one_line(&r).chars().count(), 100);
    }
}
