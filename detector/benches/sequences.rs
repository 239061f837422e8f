//! EQL sequences (criterion and a memory figure), read by `cargo xtask bench`:
//!
//! - group `sequences`: the daemon's per-event path ([`EventPipeline::handle`]: process
//!   table, probes, document, rules, alerts to an in-memory sink) over a stream of synthetic
//!   fork/exec/exit events, `sequences/without` with the single-event rules (the shipped
//!   rule and Elastic's cloud_defend corpus) and `sequences/with` with every sequence rule of
//!   Elastic's Linux corpus that `detector run` accepts loaded too. One iteration is one
//!   event; the target is with/without ≤ 1.3. Some of the stream's programs complete
//!   sequences often (`id`: a 20-event alert group every 20th), so `with` also pays for
//!   writing those alerts.
//! - group `sequences_quiet`: the same over a stream without those programs: what carrying
//!   the sequence rules costs per event when they (almost) do not fire.
//! - memory: 100,000 pending sequences (one per process, a rule whose first term every exec
//!   matches and whose second never comes) built from the fully populated fixture document,
//!   through the alert stage as the daemon runs it (reorder window, engine, stored bodies).
//!   The growth of the resident set is written to `$CARGO_TARGET_TMPDIR/sequences-memory.json`
//!   (target ≤ 64 MiB) and printed.
//!
//! `cargo bench -p detector --bench sequences -- --warm-up-time 1 --measurement-time 3`.

#[path = "../tests/common/ecs_fixture.rs"]
mod ecs_fixture;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::alert::sequence::{SequenceSettings, rules as seq_rules};
use detector::alert::{AlertPolicy, AlertStage};
use detector::daemon::{Detection, EventPipeline};
use detector::event::ProcessEvent;
use detector::host::{AgentInfo, HostInfo};
use detector::process::ProcessTable;
use detector::rules::{RuleSet, SequenceRule};
use detector::sink::{Delivery, Sink, SinkCounters};
use detector::testsupport::stream::{Shape, fork_exec_exit};
use detector::testsupport::{Corpus, Need, require};

/// Counts the alert lines and throws them away.
struct NullSink(std::sync::Arc<SinkCounters>);

impl Sink for NullSink {
    fn write_line(&mut self, _line: &[u8]) -> Delivery {
        self.0
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Delivery::Written
    }
    fn retry(&mut self) -> usize {
        0
    }
    fn reopen(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> usize {
        0
    }
    fn counters(&self) -> std::sync::Arc<SinkCounters> {
        self.0.clone()
    }
    fn name(&self) -> &str {
        "null"
    }
}

/// What shells and tools on a host typically run (a few of them what sequence rules look
/// for: `id`, `base64`, `ps`).
const PROGRAMS: &[(&str, &[&str])] = &[
    ("/usr/bin/bash", &["bash", "-c", "ls -la /var/log"]),
    ("/usr/bin/ls", &["ls", "-la", "/var/log"]),
    ("/usr/bin/cat", &["cat", "/etc/os-release"]),
    ("/usr/bin/python3.11", &["python3", "/app/worker.py", "-v"]),
    ("/usr/bin/sleep", &["sleep", "1"]),
    (
        "/usr/bin/grep",
        &["grep", "-E", "error", "/var/log/app.log"],
    ),
    ("/usr/bin/id", &["id", "-u"]),
    (
        "/usr/bin/curl",
        &["curl", "-fsS", "http://127.0.0.1:8080/healthz"],
    ),
    ("/usr/bin/base64", &["base64", "/etc/hostname"]),
    ("/usr/bin/ps", &["ps", "-ef"]),
];

/// The programs of [`PROGRAMS`] no sequence rule of the corpus completes on (without `id`,
/// `base64`, `ps`, and `python3` after `bash -c`, which "Payload Execution via Shell Pipe"
/// takes): the `sequences_quiet` stream, whose cost is the sequences' own, not that of the
/// alerts they raise.
fn quiet_programs() -> Vec<(&'static str, &'static [&'static str])> {
    const LOUD: &[&str] = &[
        "/usr/bin/id",
        "/usr/bin/base64",
        "/usr/bin/ps",
        "/usr/bin/python3.11",
    ];
    PROGRAMS
        .iter()
        .copied()
        .filter(|(exe, _)| !LOUD.contains(exe))
        .collect()
}

/// `lives` processes forked from one of a few shells (host and containers), each exec'ing
/// one of `programs` and exiting; the shells first (the shared generator).
fn event_stream(
    lives: usize,
    programs: &[(&str, &[&str])],
) -> (Vec<ProcessEvent>, Vec<ProcessEvent>) {
    fork_exec_exit(lives, programs, Shape::default())
}

/// The daemon's per-event stages over `rules` and `sequences`.
fn event_pipeline(
    rules: RuleSet,
    sequences: Vec<SequenceRule>,
    host: &HostInfo,
) -> (EventPipeline, std::sync::Arc<SinkCounters>) {
    let agent = AgentInfo::new(host, None);
    let docs = detector::ecs::DocBuilder::new(host, &agent);
    let table = ProcessTable::events_only("6f1e5c1e-0000-4000-8000-000000000000");
    let counters = std::sync::Arc::new(SinkCounters::default());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(NullSink(counters.clone()))];
    let mut detection = Detection::new(rules, AlertPolicy::off(), sinks);
    detection.configure_sequences(sequences, SequenceSettings::default());
    (EventPipeline::new(table, docs, detection), counters)
}

/// The single-event rules (shipped + cloud_defend corpus) and the sequence rules of the
/// Linux corpus that `run` accepts.
fn load(with_sequences: bool) -> (RuleSet, Vec<SequenceRule>) {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
    let cloud = detector::testsupport::corpus(Corpus::CloudDefend);
    let (set, _, _) = seq_rules::load(&[shipped, cloud], detector::ecs::schema());
    if !with_sequences {
        return (set, Vec::new());
    }
    let linux = detector::testsupport::corpus(Corpus::ElasticLinux);
    let (_, seqs, _) = seq_rules::load(&[linux], detector::ecs::schema());
    let refused: Vec<String> = seq_rules::refuse_unproducible(&seqs, seq_rules::SENSOR_CATEGORIES)
        .into_iter()
        .map(|e| e.file.display().to_string())
        .collect();
    let seqs: Vec<SequenceRule> = seqs
        .into_iter()
        .filter(|r| !refused.contains(&r.path.display().to_string()))
        .collect();
    (set, seqs)
}

fn per_event(c: &mut Criterion) {
    if !require(
        "benches/sequences: per_event",
        &[
            Need::Corpus(Corpus::CloudDefend),
            Need::Corpus(Corpus::ElasticLinux),
        ],
    ) {
        return;
    }
    const LIVES: usize = 30_000;
    // `sequences`: programs some sequence rules complete on (every 20th `id` under one
    // shell completes "Unusual User Privilege Enumeration via id", whose alert carries
    // 20 building blocks): the cost includes writing those alerts.
    per_event_group(c, "sequences", &event_stream(LIVES, PROGRAMS));
    // `sequences_quiet`: the same without them: the cost of carrying the sequences.
    per_event_group(
        c,
        "sequences_quiet",
        &event_stream(LIVES, &quiet_programs()),
    );
}

/// Group `group`: `without` and `with` the sequence rules over the same stream.
fn per_event_group(
    c: &mut Criterion,
    group: &str,
    (setup, stream): &(Vec<ProcessEvent>, Vec<ProcessEvent>),
) {
    let host = HostInfo::collect(std::path::Path::new("/"));
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for (name, with) in [("without", false), ("with", true)] {
        let (rules, seqs) = load(with);
        eprintln!(
            "{group}/{name}: {} single-event rules, {} sequence rules",
            rules.len(),
            seqs.len()
        );
        let (mut p, _alerts) = event_pipeline(rules, seqs, &host);
        for ev in setup.iter().chain(stream) {
            p.handle(ev);
        }
        let s = p.detection.stats().clone();
        eprintln!(
            "  one pass: {} events, {} skipped before the document, {} evaluated ({} decided \
             on the snapshot, no document), {} alerts ({} building blocks); sequences {:?}, \
             kept events {:?}",
            stream.len(),
            p.stats.skipped,
            s.evaluated,
            s.sequences.decided,
            s.alerts,
            s.building_blocks,
            s.sequences.engine,
            s.sequences.bodies
        );
        eprintln!("  idle: {:?}", s.sequences.idle);
        eprintln!("  alerts by rule {:?}", s.by_rule);
        let mut events = stream.clone();
        let lap = events.last().map_or(0, |e| e.boot_ns) + 1_000_000;
        let mut i = events.len();
        g.bench_function(name, |b| {
            b.iter(|| {
                if i == events.len() {
                    i = 0;
                    for e in &mut events {
                        e.boot_ns += lap;
                        e.start_boot_ns += lap;
                    }
                }
                p.handle(black_box(&events[i]));
                i += 1;
            })
        });
        // What the timed laps did besides the one pass (a quiet stream must stay quiet).
        let t = p.detection.stats();
        eprintln!(
            "  after the timed laps: {} alerts ({} building blocks), {} evaluated; by rule {:?}; \
             sequences {:?}",
            t.alerts - s.alerts,
            t.building_blocks - s.building_blocks,
            t.evaluated - s.evaluated,
            t.by_rule,
            t.sequences.engine
        );
    }
    g.finish();
}

/// Resident set size of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// The pending-state memory at 100,000 pending sequences.
fn memory(_c: &mut Criterion) {
    const PENDING: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("pending.toml");
    std::fs::write(
        &rule,
        "[metadata]\ncreation_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"bench\"]\n\
         description = \"d\"\nlanguage = \"eql\"\nlicense = \"Elastic License v2\"\n\
         name = \"pending\"\nrisk_score = 47\nrule_id = \"pending\"\nseverity = \"medium\"\n\
         type = \"eql\"\nquery = '''\nsequence by process.entity_id with maxspan=1h\n  \
         [process where event.action == \"exec\"]\n  [process where event.action == \"never\"]\n'''\n",
    )
    .unwrap();
    let (set, seqs, errors) = seq_rules::load(&[rule], detector::ecs::schema());
    assert!(errors.is_empty() && seqs.len() == 1, "{errors:?}");
    let template = ecs_fixture::full_event();
    let docs: Vec<_> = (0..PENDING)
        .map(|i| {
            let mut d = template.clone();
            let p = d.process.as_mut().unwrap();
            p.core.entity_id = Some(format!("ZW50aXR5LWlkLW{i:012}"));
            p.core.pid = Some(10_000 + i as u32);
            p.core.args = vec!["sleep".into(), format!("{i}")];
            let e = d.event.as_mut().unwrap();
            e.action = Some("exec".into());
            d.timestamp = Some(format!(
                "2026-12-05T12:{:02}:{:02}.{:06}Z",
                i / 60_000 % 60,
                i / 1_000 % 60,
                i % 1_000 * 1000
            ));
            d
        })
        .collect();
    let settings = SequenceSettings::default();
    let before = rss();
    let mut stage = AlertStage::with_sequences(set, seqs, AlertPolicy::off(), settings);
    let mut alerts = 0u64;
    for d in &docs {
        stage.evaluate(d, &mut |_| alerts += 1);
    }
    let after = rss();
    let s = stage.sequence_stats();
    let grown = after.saturating_sub(before);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "sequences: {} pending: RSS +{:.1} MiB (engine estimate {:.1} MiB, stored bodies {:.1} MiB \
         compressed from {:.1} MiB of JSON, {} bodies); {alerts} alerts, {} evicted",
        s.engine.pending,
        mib(grown),
        mib(s.engine.approx_bytes),
        mib(s.bodies.compressed_bytes),
        mib(s.bodies.json_bytes),
        s.bodies.stored,
        s.engine.evicted
    );
    assert_eq!(
        s.engine.pending,
        PENDING as u64 - s.reorder.waiting,
        "{s:?}"
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sequences-memory.json");
    let json = serde_json::json!({
        "pending": s.engine.pending,
        "rss_growth_bytes": grown,
        "engine_approx_bytes": s.engine.approx_bytes,
        "bodies_compressed_bytes": s.bodies.compressed_bytes,
        "bodies_json_bytes": s.bodies.json_bytes,
        "evicted": s.engine.evicted,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    eprintln!("  written to {}", out.display());
    black_box(stage);
}

criterion_group!(benches, memory, per_event);
criterion_main!(benches);
