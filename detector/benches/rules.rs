//! Rule evaluation per event (criterion): the seed rule alone and every compilable rule of
//! the Elastic cloud_defend corpus, on a matching event (ssh exec in a container) and on
//! non-matching ones (`/usr/bin/ls` exec in a container, ssh exec on the host), through the
//! index (`RuleSet::matches`) and without it (`matches_unindexed`); plus the whole per-event
//! pipeline for a matching event (evaluate + build alert + encode).
//!
//! `cargo bench -p detector --bench rules -- --warm-up-time 1 --measurement-time 3`.
//! The documents are the fully populated test fixture (every field we emit), so field
//! lookups see realistic documents. Rules are read from the shared directory
//! (`DETECTOR_SHARED`, else `<repo>/../shared`, else `/work/shared`).

#[path = "../tests/common/ecs_fixture.rs"]
mod ecs_fixture;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::alert::{AlertTemplate, LineEncoder};
use detector::ecs::{EcsDocument, command_line};
use detector::rules::{Rule, RuleSet};

fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DETECTOR_SHARED") {
        return PathBuf::from(d);
    }
    let beside_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if beside_repo.join("rules").is_dir() {
        return beside_repo;
    }
    PathBuf::from("/work/shared")
}

/// The fixture event turned into an exec of `name` (`/usr/bin/<name>`), in a container or
/// on the host.
fn exec_event(name: &str, in_container: bool) -> EcsDocument {
    let mut doc = ecs_fixture::full_event();
    let p = &mut doc.process.as_mut().unwrap().core;
    let args: Vec<String> = vec![name.into(), "-l".into(), "/tmp".into()];
    p.name = Some(name.into());
    p.executable = Some(format!("/usr/bin/{name}"));
    p.args_count = Some(args.len() as u64);
    p.command_line = Some(command_line(&args));
    p.args = args;
    if !in_container {
        doc.container = None;
        doc.orchestrator = None;
    }
    doc
}

fn load(paths: &[PathBuf]) -> RuleSet {
    let (set, rejected) = RuleSet::load(paths, detector::ecs::schema());
    eprintln!(
        "{paths:?}: {} rules compiled, {} rejected (skipped), {} unindexed",
        set.len(),
        rejected.len(),
        set.unindexed_count()
    );
    assert!(!set.is_empty());
    set
}

fn rules(c: &mut Criterion) {
    let shared = shared_dir();
    let seed = shared.join("rules/seed");
    let corpus = shared.join("rules/elastic-cloud_defend");
    // The corpus directory does not hold the seed rule: "corpus+seed" is the seed among all
    // corpus rules, so the matching event matches in both sets compared.
    let sets = [
        ("seed", load(std::slice::from_ref(&seed)), true),
        ("corpus", load(std::slice::from_ref(&corpus)), false),
        ("corpus+seed", load(&[corpus.clone(), seed.clone()]), true),
    ];
    let events = [
        (
            "ssh exec in container (match)",
            exec_event("ssh", true),
            true,
        ),
        (
            "ls exec in container (no match)",
            exec_event("ls", true),
            false,
        ),
        (
            "ssh exec on host (no match)",
            exec_event("ssh", false),
            false,
        ),
    ];
    let seed_id = "03a514d9-500e-443e-b6a9-72718c548f6c";

    per_rule_costs(&sets[1].1, &events[1].1);

    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    for (set_name, set, has_seed) in &sets {
        for (ev_name, ev, seed_matches) in &events {
            let mut out: Vec<&Rule> = Vec::new();
            set.matches(ev, &mut out);
            let mut unindexed: Vec<&Rule> = Vec::new();
            set.matches_unindexed(ev, &mut unindexed);
            assert_eq!(
                out.iter().map(|r| &r.path).collect::<Vec<_>>(),
                unindexed.iter().map(|r| &r.path).collect::<Vec<_>>()
            );
            // The benchmark is only meaningful if the events do what their names say.
            assert_eq!(
                out.iter().any(|r| r.meta.rule_id == seed_id),
                *seed_matches && *has_seed,
                "{set_name} / {ev_name}"
            );
            eprintln!(
                "{set_name} / {ev_name}: {} candidates of {}, matches: {:?}",
                set.candidate_count(ev),
                set.len(),
                out.iter().map(|r| &r.meta.name).collect::<Vec<_>>()
            );
            g.bench_function(format!("{set_name} / {ev_name} / indexed"), |b| {
                b.iter(|| {
                    set.matches(black_box(ev), &mut out);
                    black_box(out.len())
                })
            });
            g.bench_function(format!("{set_name} / {ev_name} / unindexed"), |b| {
                b.iter(|| {
                    set.matches_unindexed(black_box(ev), &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();

    // The per-event pipeline of `replay` and the daemon for a matching event.
    let mut g = c.benchmark_group("pipeline per event");
    g.throughput(Throughput::Elements(1));
    for (set_name, set, _) in &sets {
        let templates: Vec<AlertTemplate> = set
            .rules()
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        let ev = &events[0].1;
        let mut out: Vec<&Rule> = Vec::new();
        let mut enc = LineEncoder::new();
        g.bench_function(
            format!("{set_name} / ssh exec in container: evaluate + alert + encode"),
            |b| {
                b.iter(|| {
                    set.matches(black_box(ev), &mut out);
                    let mut bytes = 0;
                    for r in &out {
                        let i = set
                            .rules()
                            .iter()
                            .position(|x| std::ptr::eq(x, *r))
                            .unwrap();
                        let alert = templates[i].alert(ev);
                        bytes += enc.encode(&alert).unwrap().len();
                    }
                    black_box(bytes)
                })
            },
        );
    }
    g.finish();
}

/// Prints the most expensive rules for `ev` (each evaluated alone): where the time of the
/// corpus goes.
fn per_rule_costs(set: &RuleSet, ev: &EcsDocument) {
    let mut costs: Vec<(f64, bool, &str)> = set
        .rules()
        .iter()
        .map(|r| {
            let n = 20_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                black_box(r.matches(black_box(ev)));
            }
            // Whether the index evaluates this rule for `ev` (the rule indexed alone).
            let (alone, _) = RuleSet::load(std::slice::from_ref(&r.path), detector::ecs::schema());
            let candidate = alone.candidate_count(ev) > 0;
            (
                t.elapsed().as_nanos() as f64 / n as f64,
                candidate,
                r.meta.name.as_str(),
            )
        })
        .collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = costs.iter().map(|c| c.0).sum();
    let candidates: f64 = costs.iter().filter(|c| c.1).map(|c| c.0).sum();
    eprintln!(
        "per-rule cost on the non-matching container exec: {total:.0} ns for all rules, \
         {candidates:.0} ns for the index's candidates:"
    );
    for (ns, _, name) in costs.iter().filter(|c| c.1) {
        eprintln!("  {ns:8.0} ns  {name}");
    }
}

criterion_group!(benches, rules);
criterion_main!(benches);
