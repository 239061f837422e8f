//! Sequences without documents: the daemon decides an event's sequence terms and join keys
//! on what the process model already knows of it, and keeps a matched event as its process
//! snapshot, building its ECS document only when an alert needs it (a sequence completes)
//! or when a kept event is compressed.
//!
//! With the sequence rules loaded, most fork and exec events match some broad first term
//! (`event.type == "start"`, "a child of a shell"): building, cloning and dropping a full
//! document for each of them was most of what carrying the sequences cost per event.
//!
//! - [`SnapshotDoc`]: the event's document as far as the snapshot [`Probe`] knows it, plus
//!   the fields the probe leaves to the document but the rules read (the identities they
//!   join on, `*.entity_id` and `*.pid` of the process, its parent and its leaders; their
//!   `*.interactive`; the process's and parent's `thread.capabilities.*`), read from the
//!   snapshot as the builder renders them. A read
//!   of a field it cannot tell is remembered ([`SnapshotDoc::undecided`]): the caller then
//!   throws the answer away and builds the document, so the terms hit are exactly those
//!   the document would hit.
//! - [`LazyEvent`]: a kept event as its snapshot (immutable: a later exec of the same
//!   process builds a new one, so this is the process *as of the event*) and the two
//!   facts of the kernel record the document carries; its document is built on demand by
//!   a builder of the same host, the same one the daemon builds documents with.

use std::cell::{Cell, OnceCell};
use std::sync::{Arc, Mutex};

use crate::ecs::field::{Document, FieldId, FieldValue, Schema};
use crate::ecs::{DocBuilder, EcsDocument};
use crate::event::ProcessEvent;
use crate::process::{ProcInfo, Snapshot};
use crate::rules::Probe;

/// Whose field a snapshot field reads.
#[derive(Clone, Copy, Debug)]
enum Whose {
    Subject,
    Parent,
    GroupLeader,
    SessionLeader,
    EntryLeader,
}

/// What a snapshot field reads.
#[derive(Clone, Copy, Debug)]
enum What {
    EntityId,
    Pid,
    Interactive,
    /// `*.thread.capabilities.effective` (of the process and its parent only).
    CapsEffective,
    CapsPermitted,
}

/// The fields [`SnapshotDoc`] reads from the snapshot itself (`*.entity_id`, `*.pid`,
/// `*.interactive`, `*.thread.capabilities.*`), resolved once in the ECS schema.
pub struct SnapshotFields {
    fields: Vec<(FieldId, Whose, What)>,
}

impl SnapshotFields {
    /// The fields of [`crate::ecs::schema`].
    pub fn new() -> Self {
        let schema = crate::ecs::schema();
        let mut fields = Vec::new();
        for (prefix, whose) in [
            ("process", Whose::Subject),
            ("process.parent", Whose::Parent),
            ("process.group_leader", Whose::GroupLeader),
            ("process.session_leader", Whose::SessionLeader),
            ("process.entry_leader", Whose::EntryLeader),
        ] {
            let thread = matches!(whose, Whose::Subject | Whose::Parent);
            for (suffix, what) in [
                ("entity_id", What::EntityId),
                ("pid", What::Pid),
                ("interactive", What::Interactive),
                ("thread.capabilities.effective", What::CapsEffective),
                ("thread.capabilities.permitted", What::CapsPermitted),
            ] {
                if matches!(what, What::CapsEffective | What::CapsPermitted) && !thread {
                    continue;
                }
                if let Some(def) = schema.resolve(&format!("{prefix}.{suffix}")) {
                    fields.push((def.id, whose, what));
                }
            }
        }
        SnapshotFields { fields }
    }

    fn find(&self, id: FieldId) -> Option<(Whose, What)> {
        self.fields
            .iter()
            .find(|(f, _, _)| *f == id)
            .map(|&(_, w, x)| (w, x))
    }
}

impl Default for SnapshotFields {
    fn default() -> Self {
        Self::new()
    }
}

/// An event's document as a snapshot probe and the snapshot know it (see the module docs).
pub struct SnapshotDoc<'a> {
    probe: &'a dyn Probe,
    snap: &'a Snapshot,
    ids: &'a SnapshotFields,
    undecided: Cell<bool>,
    /// Whether an identity (`*.entity_id`, `*.pid`) was read.
    identity_read: Cell<bool>,
    /// Capability names, rendered on first read: the subject's effective and permitted,
    /// then the parent's.
    caps: [OnceCell<Vec<String>>; 4],
}

impl<'a> SnapshotDoc<'a> {
    /// `probe` must be the snapshot probe of `snap` (`DocBuilder::probe`).
    pub fn new(probe: &'a dyn Probe, snap: &'a Snapshot, ids: &'a SnapshotFields) -> Self {
        SnapshotDoc {
            probe,
            snap,
            ids,
            undecided: Cell::new(false),
            identity_read: Cell::new(false),
            caps: Default::default(),
        }
    }

    /// Whether a field it cannot tell was read (the answers read through it are void).
    pub fn undecided(&self) -> bool {
        self.undecided.get()
    }

    /// Whether an identity (`*.entity_id`, `*.pid` of the process, its parent or its
    /// leaders) was read: answers
    /// read without one are those of the probe key ([`crate::rules::Probe::key`]) and
    /// [`SnapshotDoc::key_suffix`] alone.
    pub fn identity_read(&self) -> bool {
        self.identity_read.get()
    }

    /// Appends to a probe key what else this document answers besides identities: the
    /// `*.interactive` flags and the process's and parent's capability sets, read from
    /// the snapshot (few bytes, the same for most processes of one session).
    pub fn key_suffix(&self, key: &mut Vec<u8>) {
        let s = self.snap;
        let infos = [
            Some(&s.subject),
            s.parent.as_ref(),
            s.group_leader.as_ref(),
            s.session_leader.as_ref(),
            s.entry_leader.as_ref().map(|e| &e.info),
        ];
        for (i, p) in infos.into_iter().enumerate() {
            match p {
                None => key.push(2),
                Some(p) => {
                    key.push(p.interactive as u8);
                    if i < 2 {
                        match p.creds.caps {
                            None => key.push(0),
                            Some(c) => {
                                key.push(1);
                                key.extend_from_slice(&c.effective.to_le_bytes());
                                key.extend_from_slice(&c.permitted.to_le_bytes());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The field `what` of `whose`, as `DocBuilder::build` renders it.
    fn read(&self, whose: Whose, what: What) -> FieldValue<'_> {
        let s = self.snap;
        let info: Option<&ProcInfo> = match whose {
            Whose::Subject => Some(&s.subject),
            Whose::Parent => match &s.parent {
                Some(p) => Some(&**p),
                // Never seen or evicted: the document still carries the kernel's ppid.
                None => {
                    return match what {
                        What::Pid if s.subject.ppid != 0 => {
                            FieldValue::Long(i64::from(s.subject.ppid))
                        }
                        _ => FieldValue::Missing,
                    };
                }
            },
            Whose::GroupLeader => s.group_leader.as_deref(),
            Whose::SessionLeader => s.session_leader.as_deref(),
            Whose::EntryLeader => s.entry_leader.as_ref().map(|e| &*e.info),
        };
        let Some(p) = info else {
            return FieldValue::Missing;
        };
        let caps = |i: usize, set: fn(&crate::event::Caps) -> u64| match p.creds.caps {
            None => FieldValue::Missing,
            Some(c) => {
                let names = self.caps[i].get_or_init(|| crate::ecs::cap_names(set(&c)));
                if names.is_empty() {
                    FieldValue::Missing
                } else {
                    FieldValue::Strs(names)
                }
            }
        };
        let parent = matches!(whose, Whose::Parent) as usize * 2;
        match what {
            What::EntityId => FieldValue::Str(&p.entity_id),
            What::Pid => FieldValue::Long(i64::from(p.pid)),
            What::Interactive => FieldValue::Bool(p.interactive),
            What::CapsEffective => caps(parent, |c| c.effective),
            What::CapsPermitted => caps(parent + 1, |c| c.permitted),
        }
    }
}

impl Document for SnapshotDoc<'_> {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        if let Some((whose, what)) = self.ids.find(id) {
            if matches!(what, What::EntityId | What::Pid) {
                self.identity_read.set(true);
            }
            return self.read(whose, what);
        }
        match self.probe.field(id) {
            Some(v) => v,
            None => {
                self.undecided.set(true);
                FieldValue::Missing
            }
        }
    }
}

/// Builds the documents of kept events: a builder of the daemon's host, shared by every
/// [`LazyEvent`] (documents are built one at a time, when an alert or a compression needs
/// one).
pub type LaterBuilder = Arc<Mutex<DocBuilder>>;

/// A kept event before its document is built (see the module docs).
pub struct LazyEvent {
    snap: Snapshot,
    /// What the document takes from the kernel record: `detector.process.exe_path_partial`
    /// and `detector.cgroup.path` (only these: an event waits in the reorder window as
    /// this, so it is kept small).
    exe_path_partial: bool,
    cgroup_path: Box<[u8]>,
    builder: LaterBuilder,
}

impl std::fmt::Debug for LazyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyEvent")
            .field("entity_id", &self.snap.subject.entity_id)
            .field("event_boot_ns", &self.snap.event_boot_ns)
            .finish_non_exhaustive()
    }
}

impl LazyEvent {
    /// The event of `snap`, whose kernel record is `ev`; `builder` will build its document.
    pub fn new(snap: Snapshot, ev: &ProcessEvent, builder: LaterBuilder) -> Self {
        LazyEvent {
            snap,
            exe_path_partial: ev.exe_path_partial,
            cgroup_path: ev.cgroup_path.as_slice().into(),
            builder,
        }
    }

    /// Its document: what `DocBuilder::build(snap, Some(ev))` built when it happened.
    pub fn doc(&self) -> EcsDocument {
        let raw = ProcessEvent {
            exe_path_partial: self.exe_path_partial,
            cgroup_path: self.cgroup_path.to_vec(),
            ..ProcessEvent::default()
        };
        let mut b = self.builder.lock().unwrap_or_else(|e| e.into_inner());
        b.build(&self.snap, Some(&raw))
    }
}

#[cfg(test)]
mod tests;
