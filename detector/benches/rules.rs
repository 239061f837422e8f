//! Rule evaluation per event (criterion): the seed rule alone and every compilable rule of
//! the Elastic cloud_defend corpus, on a matching event (ssh exec in a container) and on
//! non-matching ones (`/usr/bin/ls` exec in a container, ssh exec on the host), through the
//! index (`RuleSet::matches`) and without it (`matches_unindexed`); plus the whole per-event
//! pipeline for a matching event (evaluate + build alert + encode).
//!
//! Group `pipeline` (`pipeline/seed`, `pipeline/all`, read by `cargo xtask bench`): the
//! daemon's real per-event path ([`EventPipeline::handle`]: process table, index probe,
//! document, rules, alerts to an in-memory sink) over a stream of synthetic kernel events
//! (fork, exec, exit of shells and tools on the host and in containers, now and then an ssh
//! in a container), with the shipped rule only (`seed`), with every compilable rule of
//! Elastic's Linux corpus (`elastic-linux`) plus the shipped one (`all`), and with the
//! cloud_defend corpus plus the shipped one (`cloud_defend`). One iteration is one event.
//!
//! `cargo bench -p detector --bench rules -- --warm-up-time 1 --measurement-time 3`.
//! The documents are the fully populated test fixture (every field we emit), so field
//! lookups see realistic documents. Elastic's rules are found by
//! [`detector::testsupport::corpus`] (`DETECTOR_RULES_DIR`, `DETECTOR_SHARED_DIR`, else
//! `shared/` beside the workspace); without them the benches that need them say SKIPPED
//! (under `CI=true` they fail).

#[path = "../tests/common/ecs_fixture.rs"]
mod ecs_fixture;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::alert::{AlertPolicy, AlertStage};
use detector::daemon::{Detection, EventPipeline};
use detector::ecs::{EcsDocument, command_line};
use detector::event::{EventKind, ProcessEvent};
use detector::host::{AgentInfo, HostInfo};
use detector::process::ProcessTable;
use detector::rules::{RuleIdx, RuleSet};
use detector::sink::{Delivery, Sink, SinkCounters};
use detector::testsupport::{Corpus, Need, require};

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
    let keyed: Vec<_> = set
        .keyed_fields()
        .into_iter()
        .map(|(id, n)| format!("{}: {n}", detector::ecs::schema().path(id).unwrap_or("?")))
        .collect();
    eprintln!("  keyed on {}", keyed.join(", "));
    set
}

fn rules(c: &mut Criterion) {
    let corpora = [Corpus::Seed, Corpus::CloudDefend];
    if !require("benches/rules: rules", &corpora.map(Need::Corpus)) {
        return;
    }
    let seed = detector::testsupport::corpus(Corpus::Seed);
    let corpus = detector::testsupport::corpus(Corpus::CloudDefend);
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
            let mut out: Vec<RuleIdx> = Vec::new();
            set.matches(ev, &mut out);
            let mut unindexed: Vec<RuleIdx> = Vec::new();
            set.matches_unindexed(ev, &mut unindexed);
            assert_eq!(out, unindexed);
            // The benchmark is only meaningful if the events do what their names say.
            assert_eq!(
                out.iter().any(|&i| set.rule(i).meta.rule_id == seed_id),
                *seed_matches && *has_seed,
                "{set_name} / {ev_name}"
            );
            eprintln!(
                "{set_name} / {ev_name}: {} candidates of {}, matches: {:?}",
                set.candidate_count(ev),
                set.len(),
                out.iter()
                    .map(|&i| &set.rule(i).meta.name)
                    .collect::<Vec<_>>()
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

    // The per-event path of `replay` and the daemon for a matching event: their shared
    // alert stage (rules, policy off as in the `pipeline` group, alert, encode).
    let mut g = c.benchmark_group("pipeline per event");
    g.throughput(Throughput::Elements(1));
    let ev = &events[0].1;
    for (set_name, set, _) in sets {
        let mut stage = AlertStage::new(set, AlertPolicy::off());
        g.bench_function(
            format!("{set_name} / ssh exec in container: evaluate + alert + encode"),
            |b| {
                b.iter(|| {
                    let mut bytes = 0;
                    stage.evaluate(black_box(ev), &mut |a| bytes += a.line.len());
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

/// Counts the alert lines and throws them away (no I/O in the measurement).
struct NullSink(std::sync::Arc<SinkCounters>);

impl Sink for NullSink {
    fn write_line(&mut self, line: &[u8]) -> Delivery {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.written.fetch_add(1, Relaxed);
        self.0.bytes.fetch_add(line.len() as u64, Relaxed);
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

/// One synthetic process life: where it runs, what it execs and from where.
struct Life {
    container: Option<usize>,
    exe: &'static str,
    argv: Vec<String>,
    cwd: &'static str,
}

/// What shells and tools on a container host typically run. `{n}` in an argument is
/// replaced by the life's number: a third of the commands differ in an argument from one
/// run to the next (log files, job ids, durations), as real commands do, so their images
/// are not all seen before.
const PROGRAMS: &[(&str, &[&str])] = &[
    (
        "/usr/bin/bash",
        &["bash", "-c", "ls -la /var/log && cat /etc/os-release"],
    ),
    ("/usr/bin/ls", &["ls", "-la", "--color=auto", "/var/log"]),
    ("/usr/bin/cat", &["cat", "/var/log/app/worker-{n}.log"]),
    (
        "/usr/bin/python3.11",
        &["python3", "/app/worker.py", "--queue", "default", "-v"],
    ),
    ("/usr/bin/sleep", &["sleep", "1"]),
    (
        "/usr/bin/grep",
        &["grep", "-E", "error|warn", "/var/log/app.log"],
    ),
    ("/usr/bin/sed", &["sed", "-n", "1,20p", "/etc/passwd"]),
    (
        "/usr/bin/curl",
        &["curl", "-fsS", "http://127.0.0.1:8080/jobs/{n}/status"],
    ),
    ("/usr/bin/cat", &["cat", "/proc/self/status"]),
    ("/usr/bin/sleep", &["sleep", "{n}"]),
];

/// The environment blocks execs carry (NUL-separated, as the kernel reads them): a login
/// shell's on the host (half of them behind a proxy, a variable the sensor captures), a
/// container's.
fn env_block(container: Option<usize>, n: usize) -> Vec<u8> {
    match container {
        None => {
            let mut e = b"PATH=/usr/local/bin:/usr/bin:/bin\0HOME=/home/alice\0USER=alice\0\
                          SHELL=/bin/bash\0LANG=C.UTF-8\0TERM=xterm-256color\0"
                .to_vec();
            if n.is_multiple_of(2) {
                e.extend_from_slice(b"http_proxy=http://proxy.internal:3128\0");
            }
            e
        }
        Some(i) => format!(
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0\
             HOSTNAME={:012x}\0HOME=/root\0",
            0xc0ffee_u64 + i as u64
        )
        .into_bytes(),
    }
}

/// A stream of fork/exec/exit events: `lives` processes, each forked from its container's
/// (or the host's) shell, exec'ing one of [`PROGRAMS`] (every 97th life an
/// `ssh -V` in a container) in a working directory of its container or of a user's home,
/// with its environment, then exiting. Parents are forked and exec'd first.
fn event_stream(lives: usize) -> (Vec<ProcessEvent>, Vec<ProcessEvent>) {
    const CONTAINERS: usize = 4;
    let cgroup = |c: Option<usize>| -> (Vec<u8>, u64, u32, u32) {
        match c {
            Some(i) => (
                format!(
                    "/system.slice/docker-{:064x}.scope",
                    0xc0ffee_u64 + i as u64
                )
                .into_bytes(),
                9000 + i as u64,
                4026532000 + 2 * i as u32,
                4026532001 + 2 * i as u32,
            ),
            None => (
                b"/user.slice/user-1000.slice/session-3.scope".to_vec(),
                1234,
                4026531836,
                4026531841,
            ),
        }
    };
    let mut clock = 10_000_000_000u64;
    let mut tick = || {
        clock += 20_000;
        clock
    };
    let base = |kind, tgid: u32, ppid: u32, c: Option<usize>, start: u64, now: u64| {
        let (path, cg, mnt, pidns) = cgroup(c);
        ProcessEvent {
            kind: Some(kind),
            boot_ns: now,
            pid: tgid,
            tgid,
            ppid,
            actor_pid: ppid,
            uid: if c.is_some() { 0 } else { 1000 },
            gid: if c.is_some() { 0 } else { 1000 },
            euid: if c.is_some() { 0 } else { 1000 },
            egid: if c.is_some() { 0 } else { 1000 },
            cgroup_id: cg,
            cgroup_path: path,
            mnt_ns_ino: mnt,
            pid_ns_ino: pidns,
            ns_pid: if c.is_some() { tgid % 1000 + 2 } else { tgid },
            sid: ppid,
            start_boot_ns: start,
            ..Default::default()
        }
    };
    let exec = |mut ev: ProcessEvent, exe: &str, argv: &[String], cwd: &str, env: Vec<u8>| {
        ev.kind = Some(EventKind::Exec);
        ev.filename = exe.as_bytes().to_vec();
        ev.exe_path = exe.as_bytes().to_vec();
        ev.comm = argv[0].as_bytes().iter().take(15).copied().collect();
        ev.argv = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
        ev.cwd = cwd.as_bytes().to_vec();
        ev.env = env;
        ev
    };
    // One shell per container and one on the host: the parents of every life.
    let mut setup = Vec::new();
    let shells: Vec<u32> = (0..=CONTAINERS as u32).map(|i| 500 + i).collect();
    for (i, &pid) in shells.iter().enumerate() {
        let c = (i < CONTAINERS).then_some(i);
        let start = tick();
        setup.push(base(EventKind::Fork, pid, 1, c, start, start));
        let ev = base(EventKind::Exec, pid, 1, c, start, tick());
        let cwd = if c.is_some() { "/" } else { "/home/alice" };
        setup.push(exec(
            ev,
            "/usr/bin/bash",
            &["bash".into()],
            cwd,
            env_block(c, 0),
        ));
    }
    let mut stream = Vec::with_capacity(lives * 3);
    for n in 0..lives {
        let life = if n % 97 == 96 {
            Life {
                container: Some(n % CONTAINERS),
                exe: "/usr/bin/ssh",
                argv: vec!["ssh".into(), "-V".into()],
                cwd: "/",
            }
        } else {
            let (exe, argv) = PROGRAMS[n % PROGRAMS.len()];
            let container = (n % 3 != 0).then_some(n % CONTAINERS);
            Life {
                container,
                exe,
                argv: argv
                    .iter()
                    .map(|a| a.replace("{n}", &n.to_string()))
                    .collect(),
                cwd: match (container, n % 5) {
                    (None, 0 | 1) => "/home/alice/src/project",
                    (None, _) => "/home/alice",
                    (Some(c), _) if c % 2 == 0 => "/app",
                    (Some(_), _) => "/",
                },
            }
        };
        let parent = shells[life.container.unwrap_or(CONTAINERS)];
        let tgid = 10_000 + n as u32;
        let start = tick();
        let mut fork = base(EventKind::Fork, tgid, parent, life.container, start, start);
        fork.comm = b"bash".to_vec();
        fork.exe_path = b"/usr/bin/bash".to_vec();
        stream.push(fork);
        let ev = base(EventKind::Exec, tgid, parent, life.container, start, tick());
        let env = env_block(life.container, n);
        stream.push(exec(ev, life.exe, &life.argv, life.cwd, env));
        let mut exit = base(EventKind::Exit, tgid, parent, life.container, start, tick());
        exit.comm = life.argv[0].as_bytes().to_vec();
        exit.exe_path = life.exe.as_bytes().to_vec();
        exit.exit_code = Some(0);
        stream.push(exit);
    }
    (setup, stream)
}

/// The daemon's per-event stages over `rules`, with alerts going to a [`NullSink`].
fn event_pipeline(
    rules: RuleSet,
    host: &HostInfo,
) -> (EventPipeline, std::sync::Arc<SinkCounters>) {
    let agent = AgentInfo::new(host, None);
    let docs = detector::ecs::DocBuilder::new(host, &agent);
    let table = ProcessTable::events_only("6f1e5c1e-0000-4000-8000-000000000000");
    let counters = std::sync::Arc::new(SinkCounters::default());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(NullSink(counters.clone()))];
    let policy = AlertPolicy::off();
    let detection = Detection::new(rules, policy, sinks);
    (EventPipeline::new(table, docs, detection), counters)
}

fn pipeline(c: &mut Criterion) {
    if !require(
        "benches/rules: pipeline",
        &[
            Need::Corpus(Corpus::CloudDefend),
            Need::Corpus(Corpus::ElasticLinux),
        ],
    ) {
        return;
    }
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
    let cloud = detector::testsupport::corpus(Corpus::CloudDefend);
    let linux = detector::testsupport::corpus(Corpus::ElasticLinux);
    let host = HostInfo::collect(std::path::Path::new("/"));
    const LIVES: usize = 30_000;
    let (setup, stream) = event_stream(LIVES);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    for (name, paths) in [
        ("seed", vec![shipped.clone()]),
        ("all", vec![linux.clone(), shipped.clone()]),
        ("cloud_defend", vec![cloud.clone(), shipped.clone()]),
    ] {
        let set = load(&paths);
        if name == "all" {
            fast_path_report(&set, &host, &setup, &stream);
        }
        let (mut p, alerts) = event_pipeline(set, &host);
        for ev in &setup {
            p.handle(ev);
        }
        // One pass first: the stream must alert on its ssh execs, and only on them.
        for ev in &stream {
            p.handle(ev);
        }
        let written = alerts.written.load(std::sync::atomic::Ordering::Relaxed);
        let ssh = LIVES as u64 / 97;
        eprintln!("  alerts by rule: {:?}", p.detection.stats().by_rule);
        eprintln!(
            "pipeline/{name}: {} events, {written} alert lines, {} skipped before the document, \
             {} evaluated",
            stream.len(),
            p.stats.skipped,
            p.detection.stats().evaluated
        );
        assert!(
            written >= ssh,
            "{name}: {written} alerts for {ssh} ssh execs"
        );
        if name == "seed" {
            assert_eq!(written, ssh, "seed: only the ssh execs alert");
        }
        // Replays wrap around: shift the clock so every lap is later than the last.
        let mut events = stream.clone();
        let lap = events.last().map_or(0, |e| e.boot_ns) + 1_000_000;
        // Start with a shifted lap: the first pass's processes have all exited.
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
    }
    g.finish();
}

/// Which rules make events of the stream fall off the fast path: for each rule, how many
/// events it alone keeps from being decided by the lineage probe (before any snapshot) and
/// by the snapshot probe (before the document), that is, how many events need a document
/// and a full evaluation because of it.
fn fast_path_report(
    set: &RuleSet,
    host: &HostInfo,
    setup: &[ProcessEvent],
    stream: &[ProcessEvent],
) {
    let agent = AgentInfo::new(host, None);
    let docs = detector::ecs::DocBuilder::new(host, &agent);
    let mut table = ProcessTable::events_only("6f1e5c1e-0000-4000-8000-000000000000");
    let mut lineage = vec![0usize; set.len()];
    // Per rule: cache misses whose coarse view (without arguments) it was left possible by.
    let mut coarse_left = vec![0usize; set.len()];
    let mut full = vec![0usize; set.len()];
    let (mut off_lineage, mut off_snap) = (0usize, 0usize);
    let mut cache = detector::rules::VerdictCache::default();
    let mut decide_ns = 0u128;
    // By event kind: (events, cache misses, ns deciding the misses, their candidates).
    let mut kinds = std::collections::BTreeMap::<String, (usize, usize, u128, usize)>::new();
    for (n, ev) in setup.iter().chain(stream).enumerate() {
        let snap = table.apply_if_lineage(ev, |l| {
            let probe = docs.lineage_probe(*l);
            let hits = cache.hits();
            let t = std::time::Instant::now();
            set.may_match_cached(&probe, &mut cache);
            let ns = t.elapsed().as_nanos();
            decide_ns += ns;
            let k = kinds.entry(format!("{:?}", l.kind)).or_default();
            k.0 += 1;
            if cache.hits() == hits {
                k.1 += 1;
                k.2 += ns;
                k.3 += set.probe_candidate_count(&probe);
                detector::rules::Probe::with_coarse(&probe, &mut |view| {
                    for i in set.undecided(view) {
                        coarse_left[i.get()] += 1;
                    }
                });
            }
            let u = set.undecided(&probe);
            for i in &u {
                lineage[i.get()] += 1;
            }
            !u.is_empty()
        });
        let Some(snap) = snap else { continue };
        let u = set.undecided(&docs.probe(&snap));
        if n >= setup.len() {
            off_lineage += 1;
            off_snap += !u.is_empty() as usize;
        }
        for i in &u {
            full[i.get()] += 1;
        }
    }
    let events = setup.len() + stream.len();
    eprintln!(
        "fast path: of {} events, {off_lineage} pass the lineage probe, {off_snap} the snapshot \
         probe (need a document); lineage verdicts: {} of {events} from the cache, {:.0} ns \
         per event deciding; rules keeping events (lineage / snapshot probe):",
        stream.len(),
        cache.hits(),
        decide_ns as f64 / events as f64
    );
    for (kind, (n, misses, ns, cands)) in &kinds {
        eprintln!(
            "  {kind}: {n} events, {misses} cache misses, {:.0} ns and {:.1} candidates per miss",
            *ns as f64 / (*misses).max(1) as f64,
            *cands as f64 / (*misses).max(1) as f64
        );
    }
    let mut left: Vec<usize> = (0..set.len()).filter(|&i| coarse_left[i] > 0).collect();
    left.sort_by_key(|&i| std::cmp::Reverse(coarse_left[i]));
    eprintln!("  rules left possible without the arguments, on cache misses:");
    for i in left.into_iter().take(12) {
        eprintln!("  {:6}  {}", coarse_left[i], set.rules()[i].meta.name);
    }
    let mut ranked: Vec<usize> = (0..set.len()).filter(|&i| lineage[i] > 0).collect();
    ranked.sort_by_key(|&i| std::cmp::Reverse((full[i], lineage[i])));
    for i in ranked {
        eprintln!(
            "  {:6} {:6}  {}",
            lineage[i],
            full[i],
            set.rules()[i].meta.name
        );
    }
}

criterion_group!(benches, rules, pipeline);
criterion_main!(benches);
