//! The probe says of every field only what the built document holds: field by field, over
//! many synthetic snapshots (odd bytes, empty values, missing parents, containers or not).
//! [`snapshots`] also feeds the rule-level tests of the daemon stage.

use std::sync::Arc;

use super::*;
use crate::container::{ContainerInfo, ContainerRef, Runtime};
use crate::ecs::DocBuilder;
use crate::ecs::field::{Document, FieldId, Schema};
use crate::host::{AgentInfo, HostInfo};
use crate::process::{Creds, EntryLeader, EntryType, ProcInfo, ProcRef};

/// A small deterministic generator (xorshift64*): the tests need variety, not quality.
/// The second part: values [`snapshots_from`] mixes in besides [`ODD`] (e.g. a rule's
/// literals).
pub(crate) struct Gen(u64, Vec<Vec<u8>>);

impl Gen {
    pub(crate) fn new(seed: u64) -> Self {
        Gen(seed.max(1), Vec::new())
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn pick<'t, T>(&mut self, from: &'t [T]) -> &'t T {
        &from[self.below(from.len())]
    }
}

/// Names and arguments as the kernel may hand them over: empty, not UTF-8, NUL, case and
/// Unicode folding traps, wildcard characters, long.
pub(crate) const ODD: &[&[u8]] = &[
    b"",
    b"ssh",
    b"SSH",
    b"sshd",
    b"bash",
    b"ls",
    b"-V",
    b"-i",
    b"-c",
    b"\xff",
    b"ss\xffh",
    b"\xc3",
    b"caf\xc3\xa9",
    b"CAF\xc3\x89",
    b"\xe2\x84\xaa",
    b"a b",
    b"\0",
    b"x\0y",
    b"*",
    b"?",
    b"\\",
    b"/usr/bin/ssh",
    b"/bin/sh",
    b"/tmp/.x/xmrig",
    b"nc -e /bin/sh",
    b"http://169.254.169.254/latest/meta-data/",
    b"\xef\xbf\xbd",
];

/// Names of captured environment variables.
const ENV_NAMES: &[&[u8]] = &[
    b"HISTFILE",
    b"LD_PRELOAD",
    b"http_proxy",
    b"PATH",
    b"HISTSIZE",
];

/// Credentials: root, a user, set-id mixes, names resolved or not.
fn creds(g: &mut Gen) -> Creds {
    let id = |g: &mut Gen| {
        let id = *g.pick(&[0u32, 0, 7, 1000, 65534]);
        let name = match (g.below(3), id) {
            (0, _) => None,
            (_, 0) => Some("root".into()),
            (_, 7) => Some("lp".into()),
            (_, n) => Some(format!("u{n}").into()),
        };
        crate::process::Id { id, name }
    };
    let caps = match g.below(4) {
        0 => None,
        1 => Some(0),
        2 => Some((1 << 6) | (1 << 7)),
        _ => Some((1 << 41) - 1),
    };
    Creds {
        caps: caps.map(|c| crate::event::Caps {
            effective: c,
            permitted: c | (1 << 19),
        }),
        user: id(g),
        real_user: id(g),
        group: id(g),
        real_group: id(g),
    }
}

fn bytes(g: &mut Gen) -> Vec<u8> {
    if !g.1.is_empty() && g.below(4) != 0 {
        let i = g.below(g.1.len());
        return g.1[i].clone();
    }
    match g.below(8) {
        // A long value (beyond the index's fold buffers).
        0 => g.pick(ODD).repeat(1 + g.below(300)),
        // Two odd pieces glued.
        1 => [*g.pick(ODD), *g.pick(ODD)].concat(),
        _ => g.pick(ODD).to_vec(),
    }
}

fn image(g: &mut Gen) -> Arc<ExecImage> {
    let executable = match g.below(3) {
        0 => bytes(g),
        _ => [b"/usr/bin/".as_slice(), &bytes(g)].concat(),
    };
    let args = (0..g.below(5)).map(|_| bytes(g)).collect();
    let working_directory = match g.below(3) {
        0 => Vec::new(),
        1 => bytes(g),
        _ => [b"/home/".as_slice(), &bytes(g)].concat(),
    };
    let env_vars = (0..g.below(3))
        .map(|_| [g.pick(ENV_NAMES), b"=".as_slice(), &bytes(g)].concat())
        .collect();
    Arc::new(ExecImage {
        name: bytes(g),
        executable,
        args,
        args_truncated: g.below(4) == 0,
        working_directory,
        env_vars,
        ..Default::default()
    })
}

fn proc_info(g: &mut Gen, pid: u32) -> ProcInfo {
    ProcInfo {
        entity_id: format!("e{pid}").into(),
        pid,
        vpid: g.below(3) as u32 * pid,
        ppid: g.below(2) as u32 * (pid + 1),
        pgid: pid,
        sid: pid,
        image: image(g),
        start_boot_ns: g.below(2) as u64 * 1_000_000,
        end_boot_ns: None,
        exit_code: None,
        interactive: g.below(2) == 0,
        tty: (g.below(2) == 0).then_some((136, 1)),
        creds: creds(g),
        pid_ns_ino: 4026531836,
        mnt_ns_ino: 4026531841,
        cgroup_id: g.below(100) as u64,
        parent: (g.below(2) == 0).then(|| ProcRef {
            entity_id: "p".into(),
            pid: 1,
            vpid: 1,
            start_boot_ns: 0,
        }),
    }
}

/// `n` synthetic snapshots: every event kind, odd names, executables and args, a parent
/// or none, a container (with an empty or a 64-hex id) or none, leaders or none.
pub(crate) fn snapshots(seed: u64, n: usize) -> Vec<Snapshot> {
    snapshots_from(seed, n, vec![Vec::new()])
}

/// [`snapshots`] whose names, executables, args, working directories and environment
/// values are mostly taken from `pools` (snapshot `i` from pool `i % pools.len()`).
pub(crate) fn snapshots_from(seed: u64, n: usize, pools: Vec<Vec<Vec<u8>>>) -> Vec<Snapshot> {
    let mut g = Gen::new(seed);
    let kinds = [EventKind::Fork, EventKind::Exec, EventKind::Exit];
    let entry_types = [
        EntryType::Unknown,
        EntryType::Sshd,
        EntryType::Container,
        EntryType::Terminal,
    ];
    (0..n)
        .map(|i| {
            g.1 = pools[i % pools.len()].clone();
            let pid = 1000 + i as u32;
            let subject = Arc::new(proc_info(&mut g, pid));
            let container = match g.below(3) {
                0 => None,
                c => {
                    let id = if c == 1 {
                        String::new()
                    } else {
                        format!("{:064x}", g.next())
                    };
                    Some(Arc::new(ContainerInfo::bare(ContainerRef {
                        id,
                        runtime: Runtime::Docker,
                        pod_uid: None,
                    })))
                }
            };
            let leader = |g: &mut Gen| (g.below(2) == 0).then(|| Arc::new(proc_info(g, pid + 2)));
            Snapshot {
                // With a pool (rules to make true): mostly execs, as most rules want.
                kind: if g.1.is_empty() || g.below(3) == 0 {
                    *g.pick(&kinds)
                } else {
                    EventKind::Exec
                },
                event_boot_ns: 2_000_000,
                parent: (g.below(3) != 0).then(|| Arc::new(proc_info(&mut g, pid + 1))),
                group_leader: leader(&mut g),
                session_leader: leader(&mut g),
                entry_leader: leader(&mut g).map(|info| EntryLeader {
                    info,
                    entry_type: *g.pick(&entry_types),
                }),
                parent_group_leader: None,
                session_leader_parent_session_leader: None,
                entry_leader_parent_session_leader: None,
                previous: (g.below(2) == 0).then(|| image(&mut g)),
                container,
                subject,
            }
        })
        .collect()
}

pub(crate) fn builder() -> DocBuilder {
    let host = HostInfo::collect(std::path::Path::new("/"));
    DocBuilder::new(&host, &AgentInfo::new(&host, None))
}

/// Every field a probe knows holds that value in the built document; the snapshot probe
/// knows at least what the lineage probe knows, and that at least what the image probe
/// knows. Checked over every field of the schema.
#[test]
fn probe_fields_are_the_documents() {
    let mut docs = builder();
    let schema = crate::ecs::schema();
    let ids: Vec<FieldId> = schema
        .fields()
        .map(|(p, _)| schema.resolve(p).unwrap().id)
        .collect();
    let mut known = std::collections::BTreeMap::<&str, (usize, usize, usize)>::new();
    let snaps = snapshots(0x5eed, 3000);
    for snap in &snaps {
        let doc = docs.build(snap, None);
        let probe = docs.probe(snap);
        let image = docs.image_probe(&snap.subject.image, snap.kind);
        let lineage = docs.lineage_probe(crate::process::Lineage::of(snap));
        for &id in &ids {
            let path = schema.path(id).unwrap();
            let want = doc.field(id);
            let late = probe.field(id);
            let mid = lineage.field(id);
            let early = image.field(id);
            if let Some(v) = late {
                assert_eq!(v, want, "{path} (snapshot probe) of {snap:?}");
            }
            if let Some(v) = mid {
                assert_eq!(v, want, "{path} (lineage probe) of {snap:?}");
                assert!(late.is_some(), "{path}: the lineage probe knows more");
            }
            if let Some(v) = early {
                assert_eq!(v, want, "{path} (image probe) of {snap:?}");
                assert!(mid.is_some(), "{path}: the image probe knows more");
            }
            let k = known.entry(path).or_default();
            k.0 += late.is_some() as usize;
            k.1 += mid.is_some() as usize;
            k.2 += early.is_some() as usize;
        }
    }
    // The test means something: the probes know what the index keys rules on.
    let n = snaps.len();
    for (path, late, mid, early) in [
        ("process.name", true, true, true),
        ("process.executable", true, true, true),
        ("process.args", true, true, true),
        ("process.args_count", true, true, true),
        ("process.command_line", true, true, true),
        ("event.action", true, true, true),
        ("event.type", true, true, true),
        ("event.category", true, true, true),
        ("event.kind", true, true, true),
        ("event.module", true, true, true),
        ("host.os.type", true, true, true),
        ("host.architecture", true, true, true),
        ("file.path", true, true, true),
        ("process.parent.name", true, true, false),
        ("process.parent.executable", true, true, false),
        ("process.parent.args", true, true, false),
        ("process.parent.args_count", true, true, false),
        ("process.parent.command_line", true, true, false),
        ("process.previous.executable", true, true, false),
        ("container.id", true, true, false),
        ("process.entry_leader.entry_meta.type", true, false, false),
        ("process.working_directory", true, true, true),
        ("process.parent.working_directory", true, true, false),
        ("process.env_vars", true, true, true),
        ("process.user.id", true, true, false),
        ("process.real_group.id", true, true, false),
        ("user.id", true, true, false),
        ("group.Ext.real.id", true, true, false),
        ("process.user.name", true, false, false),
        ("user.name", true, false, false),
        ("user.Ext.real.name", true, false, false),
        ("process.parent.user.id", true, false, false),
        ("process.parent.real_group.name", true, false, false),
        ("process.group_leader.user.id", false, false, false),
        ("process.previous.args", false, false, false),
        ("process.pid", false, false, false),
        ("process.group_leader.name", false, false, false),
        ("process.group_leader.command_line", false, false, false),
    ] {
        let k = known[path];
        let want = (late as usize * n, mid as usize * n, early as usize * n);
        assert_eq!(k, want, "{path}");
    }
    // And the values vary: empty, missing, lossy.
    let name = schema.resolve("process.name").unwrap().id;
    let names: std::collections::BTreeSet<String> = snaps
        .iter()
        .map(|s| format!("{:?}", docs.probe(s).field(name)))
        .collect();
    assert!(names.contains("Some(Missing)"), "{names:?}");
    assert!(names.iter().any(|n| n.contains('\u{fffd}')), "{names:?}");
}

/// The image probe's key is its kind and image, sized before it is written; a snapshot
/// probe and an image over the bound have none.
#[test]
fn image_probe_keys() {
    let docs = builder();
    let img = |name: &[u8], exe: &[u8], args: &[&[u8]]| ExecImage {
        name: name.to_vec(),
        executable: exe.to_vec(),
        args: args.iter().map(|a| a.to_vec()).collect(),
        args_truncated: false,
        ..Default::default()
    };
    let key_of = |p: ModelProbe<'_>| {
        let mut k = Vec::new();
        p.key(4096, &mut k)
            .then(|| {
                assert_eq!(k.len(), p.key_len());
                k
            })
            .unwrap()
    };
    let key = |i: &ExecImage, kind| key_of(docs.image_probe(i, kind));
    let ssh = img(b"ssh", b"/usr/bin/ssh", &[b"ssh", b"-V"]);
    assert_eq!(key(&ssh, EventKind::Exec), key(&ssh, EventKind::Exec));
    assert_ne!(key(&ssh, EventKind::Exec), key(&ssh, EventKind::Fork));
    // Parts are kept apart.
    assert_ne!(
        key(&img(b"ssh", b"/usr/bin/ssh", &[]), EventKind::Exec),
        key(&img(b"ssh/usr/bin", b"/ssh", &[]), EventKind::Exec)
    );
    assert_ne!(
        key(&img(b"a", b"", &[b"bc"]), EventKind::Exec),
        key(&img(b"a", b"", &[b"b", b"c"]), EventKind::Exec)
    );
    // A lineage probe's key holds what it knows of the parent, previous image and
    // container, each apart from the others and from an image probe's.
    let bash = img(b"bash", b"/usr/bin/bash", &[b"bash"]);
    let container = ContainerInfo::bare(ContainerRef {
        id: "c".repeat(64),
        runtime: Runtime::Docker,
        pod_uid: None,
    });
    let lineage = |parent, previous, container| {
        key_of(docs.lineage_probe(crate::process::Lineage {
            image: &ssh,
            parent,
            previous,
            container,
            kind: EventKind::Exec,
            ids: None,
            interactive: None,
        }))
    };
    let keys = [
        key(&ssh, EventKind::Exec),
        lineage(None, None, None),
        lineage(Some(&bash), None, None),
        lineage(None, Some(&bash), None),
        lineage(Some(&bash), Some(&bash), None),
        lineage(Some(&ssh), Some(&bash), None),
        lineage(Some(&bash), Some(&bash), Some(&container)),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(keys[6], lineage(Some(&bash), Some(&bash), Some(&container)));
    let mut k = vec![1, 2, 3];
    let bound = docs.image_probe(&ssh, EventKind::Exec).key_len();
    assert!(docs.image_probe(&ssh, EventKind::Exec).key(bound, &mut k));
    assert!(
        !docs
            .image_probe(&ssh, EventKind::Exec)
            .key(bound - 1, &mut k)
    );
    // A snapshot probe's key differs from its lineage probe's and from that of a snapshot
    // differing only in what the snapshot probe alone reads (names, entry leader).
    let snaps = snapshots(7, 200);
    let mut keys = std::collections::HashMap::new();
    for snap in &snaps {
        assert!(docs.probe(snap).key(usize::MAX, &mut k), "a snapshot probe");
        assert!(!docs.probe(snap).key(k.len() - 1, &mut Vec::new()));
        let mut lineage = Vec::new();
        assert!(
            docs.lineage_probe(crate::process::Lineage::of(snap))
                .key(usize::MAX, &mut lineage)
        );
        assert_ne!(k, lineage);
        let mut other = snap.clone();
        Arc::make_mut(&mut other.subject).creds.user.name = Some("someone-else".into());
        let mut k2 = Vec::new();
        assert!(docs.probe(&other).key(usize::MAX, &mut k2));
        assert_ne!(k, k2);
        other.entry_leader = None;
        let mut k3 = Vec::new();
        assert!(docs.probe(&other).key(usize::MAX, &mut k3));
        assert_eq!(k3 == k2, snap.entry_leader.is_none());
        keys.insert(k.clone(), snap);
    }
    // Equal keys, equal answers on every field.
    let schema = crate::ecs::schema();
    for snap in &snaps {
        let mut copy = snap.clone();
        let subject = Arc::make_mut(&mut copy.subject);
        subject.entity_id = "other".into();
        subject.pid += 1;
        let (a, b) = (docs.probe(snap), docs.probe(&copy));
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        assert!(a.key(usize::MAX, &mut ka) && b.key(usize::MAX, &mut kb));
        assert_eq!(ka, kb);
        for (p, _) in schema.fields() {
            let id = schema.resolve(p).unwrap().id;
            assert_eq!(a.field(id), b.field(id), "{p}");
        }
    }
}

/// The coarse view of every probe hides exactly the fields of [`super::ARGS_FIELDS`] (that
/// the full probe knows) and answers every other field as the probe does: the rules' coarse
/// verdicts rely on that list to tell a rule the arguments cannot change.
#[test]
fn coarse_view_hides_exactly_the_args_fields() {
    let docs = builder();
    let schema = crate::ecs::schema();
    let ids: Vec<FieldId> = schema
        .fields()
        .map(|(p, _)| schema.resolve(p).unwrap().id)
        .collect();
    let mut hidden = std::collections::BTreeSet::new();
    for snap in &snapshots(0xc0a5e, 500) {
        let full = docs.probe(snap);
        let lineage = docs.lineage_probe(crate::process::Lineage::of(snap));
        let image = docs.image_probe(&snap.subject.image, snap.kind);
        for probe in [&full as &dyn Probe, &lineage, &image] {
            let has_view = probe.with_coarse(&mut |view| {
                for &id in &ids {
                    let path = schema.path(id).unwrap();
                    let (p, v) = (probe.field(id), view.field(id));
                    if super::ARGS_FIELDS.contains(&path) {
                        assert_eq!(v, None, "{path}: the coarse view knows an argument field");
                        if p.is_some() {
                            hidden.insert(path);
                        }
                    } else {
                        assert_eq!(v, p, "{path}: the coarse view differs from the probe");
                    }
                }
            });
            assert!(has_view, "every model probe has a coarse view");
        }
    }
    let all: std::collections::BTreeSet<&str> = super::ARGS_FIELDS.iter().copied().collect();
    assert_eq!(
        hidden, all,
        "some listed field is never known to a probe: stale list?"
    );
}

/// A probe's coarse key and its arguments key together determine its full key (so its
/// answers): probes equal in both have equal full keys, and changing any argument list a
/// full key holds (the subject's, the parent's, the previous image's) changes the
/// arguments key but not the coarse key.
#[test]
fn coarse_and_arguments_keys_determine_the_full_key() {
    let docs = builder();
    let mut seen: std::collections::HashMap<(Vec<u8>, Vec<u8>), Vec<u8>> = Default::default();
    let mut check = |probe: &dyn Probe| -> (Vec<u8>, Vec<u8>) {
        let (mut coarse, mut args, mut full) = (Vec::new(), vec![9u8], Vec::new());
        assert!(probe.coarse_key(usize::MAX, &mut coarse));
        assert!(probe.args_key(usize::MAX, &mut args));
        assert_eq!(args[0], 9, "the arguments key is appended");
        assert!(probe.key(usize::MAX, &mut full));
        let prev = seen.insert((coarse.clone(), args.clone()), full.clone());
        if let Some(prev) = prev {
            assert_eq!(
                prev, full,
                "equal coarse and arguments keys, other full keys"
            );
        }
        (coarse, args)
    };
    for snap in &snapshots(0xa965, 300) {
        let mut variants = vec![snap.clone()];
        let mut v = snap.clone();
        Arc::make_mut(&mut v.subject).image = std::sync::Arc::new(ExecImage {
            args: vec![b"x".to_vec(), b"y z".to_vec()],
            ..(*v.subject.image).clone()
        });
        variants.push(v.clone());
        if let Some(p) = &mut v.parent {
            let p = Arc::make_mut(p);
            p.image = std::sync::Arc::new(ExecImage {
                args: vec![b"x y".to_vec(), b"z".to_vec()],
                ..(*p.image).clone()
            });
            variants.push(v.clone());
        }
        if let Some(i) = &v.previous {
            v.previous = Some(std::sync::Arc::new(ExecImage {
                args: vec![b"p".to_vec()],
                ..(**i).clone()
            }));
            variants.push(v.clone());
        }
        let mut keys = Vec::new();
        for v in &variants {
            let snap_keys = check(&docs.probe(v));
            let lineage_keys = check(&docs.lineage_probe(crate::process::Lineage::of(v)));
            let image_keys = check(&docs.image_probe(&v.subject.image, v.kind));
            keys.push((snap_keys, lineage_keys, image_keys));
        }
        for w in keys.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert_eq!(
                (&a.0.0, &a.1.0),
                (&b.0.0, &b.1.0),
                "arguments changed the coarse key"
            );
            assert_ne!(a.0.1, b.0.1, "snapshot probe: arguments key unchanged");
            assert_ne!(a.1.1, b.1.1, "lineage probe: arguments key unchanged");
        }
    }
    // Over the bound: no arguments key.
    let snap = &snapshots(1, 1)[0];
    let mut k = Vec::new();
    assert!(docs.probe(snap).args_key(usize::MAX, &mut k));
    let n = k.len();
    assert!(!docs.probe(snap).args_key(n - 1, &mut Vec::new()));
}

/// The arguments' shape key is the arguments key of the same arguments with every ASCII
/// digit written as `0`, for every probe kind; other digits keep it, other letters change it.
#[test]
fn shape_key_is_the_arguments_key_with_digits_as_zero() {
    let docs = builder();
    // Every argument list of the snapshot (subject, parent, previous image) mapped by `f`.
    let map = |snap: &Snapshot, f: &dyn Fn(u8) -> u8| {
        let image = |i: &ExecImage| ExecImage {
            args: i
                .args
                .iter()
                .map(|a| a.iter().map(|&b| f(b)).collect())
                .collect(),
            ..i.clone()
        };
        let mut v = snap.clone();
        Arc::make_mut(&mut v.subject).image = Arc::new(image(&v.subject.image));
        if let Some(p) = &mut v.parent {
            let p = Arc::make_mut(p);
            p.image = Arc::new(image(&p.image));
        }
        if let Some(i) = &v.previous {
            v.previous = Some(Arc::new(image(i)));
        }
        v
    };
    let keys = |snap: &Snapshot| -> Vec<(Vec<u8>, Vec<u8>)> {
        let probes: [&dyn Probe; 2] = [
            &docs.probe(snap),
            &docs.lineage_probe(crate::process::Lineage::of(snap)),
        ];
        probes
            .iter()
            .map(|p| {
                let (mut shape, mut args) = (vec![7u8], vec![7u8]);
                assert!(p.args_shape_key(usize::MAX, &mut shape));
                assert!(p.args_key(usize::MAX, &mut args));
                (shape, args)
            })
            .collect()
    };
    let mut digits = 0;
    for (n, snap) in snapshots(0x5a9e, 300).iter().enumerate() {
        // Digits in every argument, whatever the snapshot had.
        let snap = map(snap, &|b| if b == b'a' { b'1' } else { b });
        let zeroed = map(&snap, &|b| if b.is_ascii_digit() { b'0' } else { b });
        let other = map(&snap, &|b| match b {
            b'0'..=b'8' => b + 1,
            b'9' => b'0',
            b => b,
        });
        let letters = map(&snap, &|b| if b.is_ascii_digit() { b'q' } else { b });
        let (k, z, o, l) = (keys(&snap), keys(&zeroed), keys(&other), keys(&letters));
        for i in 0..k.len() {
            assert_eq!(
                k[i].0, z[i].1,
                "{n}: shape key is not the zeroed arguments key"
            );
            assert_eq!(k[i].0, o[i].0, "{n}: other digits, other shape");
            if k[i].1 != o[i].1 {
                digits += 1;
                assert_ne!(k[i].0, l[i].0, "{n}: letters for digits, same shape");
            }
        }
    }
    assert!(digits > 100, "the arguments held digits: {digits}");
}

/// The kept coarse key is the coarse key and its hash, for every probe kind, made once;
/// asked with another bound, it is not given (the caller writes its own).
#[test]
fn kept_coarse_key_is_the_coarse_key() {
    let docs = builder();
    for snap in &snapshots(0xc0a5, 200) {
        let lineage = docs.lineage_probe(crate::process::Lineage::of(snap));
        let probes: [&dyn Probe; 3] = [
            &docs.probe(snap),
            &lineage,
            &docs.image_probe(&snap.subject.image, snap.kind),
        ];
        const MAX: usize = 1 << 20;
        for p in probes {
            let mut key = Vec::new();
            assert!(p.coarse_key(MAX, &mut key));
            let want = (crate::rules::generations::hash_key(&key), key.as_slice());
            assert_eq!(p.coarse_key_hashed(MAX), Some(want));
            assert_eq!(p.coarse_key_hashed(MAX), Some(want), "asked again");
            assert_eq!(p.coarse_key_hashed(MAX - 1), None, "another bound");
        }
        // Past the bound: none.
        let p = docs.probe(snap);
        let mut key = Vec::new();
        assert!(p.coarse_key(MAX, &mut key));
        assert_eq!(p.coarse_key_hashed(key.len() - 1), None);
    }
}
