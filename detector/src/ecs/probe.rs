//! What the document of an event will hold, before it is built: the [`Probe`] the rules ask
//! whether they could match, so the daemon skips building the document (its most expensive
//! per-event step) for every event no rule can match.
//!
//! A probe renders nothing of its own: it must never say of a field something the document
//! will not hold, or alerts would vanish silently. Which fields it knows, and how, is the
//! second accessor of each row of the field table (`schema.rs`):
//! - fields every document of one builder and event kind shares (`event.*`, `host.*`,
//!   `agent.*`, `ecs.version`, and the fields no document carries) are read with the
//!   document accessor itself, from the template every document starts from
//!   ([`super::DocBuilder::template`]);
//! - `*.name`, `*.executable`, `*.args` and `*.working_directory` of the process and its
//!   parent, `process.env_vars`, the credentials (`*.user.*`, `*.group.*`,
//!   `*.real_user.*`, `*.real_group.*` of both, and the subject's `user.*`, `group.*`
//!   with their `Ext.real`), `container.id` and `process.entry_leader.entry_meta.type` are
//!   rendered from the process model by the functions the builder renders them with
//!   ([`super::keyword`], [`super::keywords`], `container_id`,
//!   [`crate::process::EntryType::as_str`], the ids' decimal form), and read through the
//!   same value helpers as the document's;
//! - everything else is unknown (`None`).
//!
//! Two kinds of probe: of a whole [`Snapshot`], and the *image probe*, taken before the
//! process model builds the snapshot, which knows only the subject's image (name,
//! executable, args, working directory, environment, and the command line and argument
//! count rendered from them), the event kind and, when the model gives them, the parent's
//! image and the subject's credential ids (the *lineage* probe; user and group names are
//! resolved for the snapshot only, so only a snapshot probe knows them, and the parent's
//! credentials).
//! Rules certainly false on that spare the snapshot too (leaders, container, the reads of
//! `/proc` a snapshot costs); and since an image probe depends on nothing else, the rule
//! set remembers its verdicts by [`Probe::key`] (`rules::VerdictCache`). Every probe also
//! has a *coarse* view, the same with the args-derived fields unknown, keyed without the
//! arguments ([`Probe::coarse_key`], [`Probe::with_coarse`]): the cache remembers which
//! rules that view leaves possible, so one command run with fresh arguments each time, and
//! its exits, are decided by one lookup.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};

use super::field::Probe;
use super::{EcsDocument, keyword, keywords};
use crate::event::EventKind;
use crate::process::{CredIds, ExecImage, Lineage, Snapshot};

/// Which process of the document a model field is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Who {
    /// `process.*`.
    Subject = 0,
    /// `process.parent.*`.
    Parent = 1,
}

/// The fields a probe's coarse view ([`Probe::with_coarse`]) leaves unknown: those rendered
/// from the arguments of the process and its parent. The rules' coarse verdicts
/// (`rules::index::watch`) treat a rule that reads none of them as settled by the coarse
/// view, so this list and the view must agree (a test checks it over every schema field).
pub const ARGS_FIELDS: &[&str] = &[
    "process.args",
    "process.args_count",
    "process.command_line",
    "process.parent.args",
    "process.parent.args_count",
    "process.parent.command_line",
];

/// One event's document before it is built, seen through what the process model already
/// knows (made by [`super::DocBuilder::probe`] and [`super::DocBuilder::image_probe`]).
///
/// Values are rendered lazily, once per probe, and only those the rules ask for; strings
/// that are UTF-8 are borrowed from the model. A probe whose verdict is remembered
/// ([`Probe::key`]) renders nothing, and costs next to nothing to make and drop.
pub struct ModelProbe<'a> {
    /// The builder's template for this event kind.
    pub(super) template: &'a EcsDocument,
    /// The subject's image (the snapshot's, when there is one).
    subject: &'a ExecImage,
    /// `None` for an image probe: what only the snapshot knows is unknown.
    snap: Option<&'a Snapshot>,
    /// For an image probe, what the model told of the parent, previous image and container
    /// (a *lineage* probe); `None`: those are unknown.
    lineage: Option<Lineage<'a>>,
    kind: EventKind,
    /// The coarse view ([`Probe::with_coarse`]): the args-derived fields are unknown.
    args_unknown: bool,
    /// What was rendered, made on the first field read.
    rendered: OnceCell<Rendered<'a>>,
    /// The builder's spare args buffers: taken on first use, given back on drop.
    buffers: &'a RefCell<Vec<Vec<String>>>,
    /// [`Probe::coarse_key_hashed`], made on the first ask.
    coarse: OnceCell<KeptKey>,
    /// The builder's spare key buffers: taken for `coarse`, given back on drop.
    key_buffers: &'a RefCell<Vec<Vec<u8>>>,
}

/// A kept coarse key: the bound it was made for, and the hash and the key (`None`: longer
/// than that).
type KeptKey = (usize, Option<(u64, Vec<u8>)>);

/// One credential field of a process (`*.user.id`, `*.real_group.name`, …): the index
/// into [`Rendered::creds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cred {
    UserId = 0,
    UserName,
    GroupId,
    GroupName,
    RealUserId,
    RealUserName,
    RealGroupId,
    RealGroupName,
}

/// The model fields of a probe, by [`Who`], each rendered on first use.
#[derive(Default)]
struct Rendered<'a> {
    names: [OnceCell<Option<Cow<'a, str>>>; 2],
    executables: [OnceCell<Option<Cow<'a, str>>>; 2],
    working_directories: [OnceCell<Option<Cow<'a, str>>>; 2],
    /// By [`Cred`].
    creds: [[OnceCell<Option<Cow<'a, str>>>; 8]; 2],
    /// `process.env_vars`, rendered into a buffer of [`ModelProbe::buffers`].
    env_vars: OnceCell<Vec<String>>,
    /// Rendered into buffers of [`ModelProbe::buffers`].
    args: [OnceCell<Vec<String>>; 2],
    /// `*.command_line`, joined from the rendered args as the builder joins them.
    command_lines: [OnceCell<Option<String>>; 2],
    args_counts: [OnceCell<Option<u64>>; 2],
    previous_executable: OnceCell<Option<Cow<'a, str>>>,
    /// The subject's `process.thread.capabilities.{effective,permitted}`, by [`CapSet`].
    caps: [OnceCell<Vec<String>>; 2],
}

/// One of the subject's capability sets (`process.thread.capabilities.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CapSet {
    Effective = 0,
    Permitted = 1,
}

impl Drop for ModelProbe<'_> {
    fn drop(&mut self) {
        if let Some((_, Some((_, key)))) = self.coarse.take() {
            self.key_buffers.borrow_mut().push(key);
        }
        let Some(r) = self.rendered.get_mut() else {
            return;
        };
        let mut spare = self.buffers.borrow_mut();
        for a in r.args.iter_mut().chain([&mut r.env_vars]) {
            if let Some(v) = a.take() {
                spare.push(v);
            }
        }
    }
}

impl<'a> ModelProbe<'a> {
    pub(super) fn new(
        template: &'a EcsDocument,
        subject: &'a ExecImage,
        snap: Option<&'a Snapshot>,
        lineage: Option<Lineage<'a>>,
        kind: EventKind,
        buffers: &'a RefCell<Vec<Vec<String>>>,
        key_buffers: &'a RefCell<Vec<Vec<u8>>>,
    ) -> Self {
        ModelProbe {
            template,
            subject,
            snap,
            lineage,
            kind,
            args_unknown: false,
            rendered: OnceCell::new(),
            buffers,
            coarse: OnceCell::new(),
            key_buffers,
        }
    }

    /// The image of `who`: `None` when the probe cannot tell (the parent, for an image
    /// probe not given it), `Some(None)` when the document has no such process (or, for a
    /// parent never seen, only its pid).
    fn image(&self, who: Who) -> Option<Option<&'a ExecImage>> {
        match who {
            Who::Subject => Some(Some(self.subject)),
            Who::Parent => match self.snap {
                Some(s) => Some(s.parent.as_ref().map(|p| &*p.image)),
                None => self.lineage.map(|l| l.parent),
            },
        }
    }

    fn rendered(&self) -> &Rendered<'a> {
        self.rendered.get_or_init(Rendered::default)
    }

    /// `*.name` of `who` as the builder renders it (`None`: unknown).
    pub(super) fn name(&self, who: Who) -> Option<&Option<Cow<'a, str>>> {
        let image = self.image(who)?;
        Some(
            self.rendered().names[who as usize]
                .get_or_init(|| image.and_then(|i| keyword(&i.name))),
        )
    }

    /// `*.executable` of `who` as the builder renders it (`None`: unknown).
    pub(super) fn executable(&self, who: Who) -> Option<&Option<Cow<'a, str>>> {
        let image = self.image(who)?;
        Some(
            self.rendered().executables[who as usize]
                .get_or_init(|| image.and_then(|i| keyword(&i.executable))),
        )
    }

    /// `*.working_directory` of `who` as the builder renders it (`None`: unknown).
    pub(super) fn working_directory(&self, who: Who) -> Option<&Option<Cow<'a, str>>> {
        let image = self.image(who)?;
        Some(
            self.rendered().working_directories[who as usize]
                .get_or_init(|| image.and_then(|i| keyword(&i.working_directory))),
        )
    }

    /// `process.env_vars` as the builder renders them (`None`: unknown; empty when none
    /// was captured).
    pub(super) fn env_vars(&self) -> Option<&[String]> {
        let vars = self.rendered().env_vars.get_or_init(|| {
            let mut buf = self.buffers.borrow_mut().pop().unwrap_or_default();
            keywords(&self.subject.env_vars, &mut buf);
            buf
        });
        Some(vars)
    }

    /// The subject's capability set `set` as the builder names it (`None`: unknown; empty
    /// when the document has none).
    pub(super) fn caps(&self, set: CapSet) -> Option<&[String]> {
        let caps = match (self.snap, self.lineage) {
            (Some(s), _) => s.subject.creds.caps,
            (None, Some(l)) => l.ids?.caps,
            (None, None) => return None,
        };
        let names = self.rendered().caps[set as usize].get_or_init(|| {
            caps.map_or_else(Vec::new, |c| {
                super::caps::cap_names(match set {
                    CapSet::Effective => c.effective,
                    CapSet::Permitted => c.permitted,
                })
            })
        });
        Some(names)
    }

    /// Whether the subject has a controlling terminal (`process.interactive`; `None`:
    /// unknown).
    pub(super) fn interactive(&self) -> Option<bool> {
        match (self.snap, self.lineage) {
            (Some(s), _) => Some(s.subject.interactive),
            (None, Some(l)) => l.interactive,
            (None, None) => None,
        }
    }

    /// A credential field of `who` as the builder renders it (`*.user.id` …; for the
    /// subject also `user.*`, `group.*` and their `Ext.real`): `None` when unknown. The
    /// ids are known from a snapshot or a lineage that tells them, the names (resolved
    /// for the snapshot) only from a snapshot; of the parent, only from a snapshot.
    pub(super) fn cred(&self, who: Who, c: Cred) -> Option<&Option<Cow<'a, str>>> {
        let named = |creds: &'a crate::process::Creds| -> Option<Cow<'a, str>> {
            let id = match c {
                Cred::UserId | Cred::UserName => &creds.user,
                Cred::GroupId | Cred::GroupName => &creds.group,
                Cred::RealUserId | Cred::RealUserName => &creds.real_user,
                Cred::RealGroupId | Cred::RealGroupName => &creds.real_group,
            };
            match c {
                Cred::UserId | Cred::GroupId | Cred::RealUserId | Cred::RealGroupId => {
                    Some(Cow::Owned(id.id.to_string()))
                }
                _ => id.name.as_deref().map(Cow::Borrowed),
            }
        };
        let cell = &self.rendered().creds[who as usize][c as usize];
        if let Some(v) = cell.get() {
            return Some(v);
        }
        let v = match (self.snap, who) {
            (Some(s), Who::Subject) => named(&s.subject.creds),
            (Some(s), Who::Parent) => s.parent.as_ref().and_then(|p| named(&p.creds)),
            (None, Who::Subject) => {
                let ids = self.lineage?.ids?;
                let id = match c {
                    Cred::UserId => ids.user,
                    Cred::GroupId => ids.group,
                    Cred::RealUserId => ids.real_user,
                    Cred::RealGroupId => ids.real_group,
                    _ => return None,
                };
                Some(Cow::Owned(id.to_string()))
            }
            (None, Who::Parent) => return None,
        };
        Some(cell.get_or_init(|| v))
    }

    /// `*.args` of `who` as the builder renders them (`None`: unknown; empty when the
    /// document has no such process).
    pub(super) fn args(&self, who: Who) -> Option<&[String]> {
        if self.args_unknown {
            return None;
        }
        let image = self.image(who)?;
        let args = self.rendered().args[who as usize].get_or_init(|| {
            let mut buf = self.buffers.borrow_mut().pop().unwrap_or_default();
            match image {
                Some(i) => keywords(&i.args, &mut buf),
                None => buf.clear(),
            }
            buf
        });
        Some(args)
    }

    /// `*.command_line` of `who` as the builder renders it: the rendered args joined, none
    /// when there are no args (`None`: unknown).
    pub(super) fn command_line(&self, who: Who) -> Option<&Option<String>> {
        let args = self.args(who)?;
        Some(
            self.rendered().command_lines[who as usize]
                .get_or_init(|| (!args.is_empty()).then(|| super::command_line(args))),
        )
    }

    /// `*.args_count` of `who` as the builder renders it (`None`: unknown).
    pub(super) fn args_count(&self, who: Who) -> Option<&Option<u64>> {
        if self.args_unknown {
            return None;
        }
        let image = self.image(who)?;
        Some(self.rendered().args_counts[who as usize].get_or_init(|| {
            image.and_then(|i| (!i.args.is_empty()).then_some(i.args.len() as u64))
        }))
    }

    /// `process.previous.executable` as the builder renders it (`None`: unknown).
    pub(super) fn previous_executable(&self) -> Option<&Option<Cow<'a, str>>> {
        let previous = match self.snap {
            Some(s) => s.previous.as_deref(),
            None => self.lineage?.previous,
        };
        Some(
            self.rendered()
                .previous_executable
                .get_or_init(|| previous.and_then(|i| keyword(&i.executable))),
        )
    }

    /// `container.id` (`None`: unknown).
    pub(super) fn container_id(&self) -> Option<Option<&'a str>> {
        let container = match self.snap {
            Some(s) => s.container.as_deref(),
            None => self.lineage?.container,
        };
        Some(container.map(super::build::container_id))
    }

    /// `process.entry_leader.entry_meta.type` (`None`: unknown).
    pub(super) fn entry_type(&self) -> Option<Option<&'static str>> {
        Some(
            self.snap?
                .entry_leader
                .as_ref()
                .map(|e| e.entry_type.as_str()),
        )
    }

    /// Bytes [`Probe::key`] writes for an image: each part length-prefixed (so different
    /// images give different keys); `full`: also its working directory and environment
    /// (the subject's and parent's, which the probe renders; not a previous image's).
    fn image_key_len(image: &ExecImage, full: bool) -> usize {
        let parts = |v: &[Vec<u8>]| 8 * (1 + v.len()) + v.iter().map(Vec::len).sum::<usize>();
        16 + image.name.len()
            + image.executable.len()
            + parts(&image.args)
            + if full {
                8 + image.working_directory.len() + parts(&image.env_vars)
            } else {
                0
            }
    }

    /// Bytes [`Probe::key`] writes for this image probe: the kind, the subject's image and,
    /// for a lineage probe, a tag byte and the parent's and previous images and container
    /// id, each behind a byte saying whether there is one.
    fn key_len(&self) -> usize {
        let lineage = self.lineage.map_or(0, |l| {
            let image =
                |i: Option<&ExecImage>, full| 1 + i.map_or(0, |i| Self::image_key_len(i, full));
            image(l.parent, true)
                + image(l.previous, false)
                + 1
                + l.container
                    .map_or(0, |c| 8 + super::build::container_id(c).len())
                + 1
                + l.ids.map_or(0, |_| 16 + 17)
                + 1
        });
        2 + Self::image_key_len(self.subject, true) + lineage
    }
}

/// Appends `image` to a probe key, each part length-prefixed; `full`: also its working
/// directory and environment ([`ModelProbe::image_key_len`]); `args`: its arguments
/// (left out of coarse keys, whose view does not read them).
fn push_image(key: &mut Vec<u8>, image: &ExecImage, full: bool, args: bool) {
    part(key, &image.name);
    part(key, &image.executable);
    if args {
        parts(key, &image.args);
    }
    if full {
        part(key, &image.working_directory);
        parts(key, &image.env_vars);
    }
}

/// Appends `b` to a probe key, length-prefixed.
fn part(key: &mut Vec<u8>, b: &[u8]) {
    key.extend_from_slice(&(b.len() as u64).to_le_bytes());
    key.extend_from_slice(b);
}

/// Writes every ASCII digit of the arguments `parts` appended to `written` as `0`,
/// leaving the count and lengths as they are.
fn shape_digits(written: &mut [u8], args: &[Vec<u8>]) {
    let mut at = 8;
    for a in args {
        at += 8;
        for b in &mut written[at..at + a.len()] {
            if b.is_ascii_digit() {
                *b = b'0';
            }
        }
        at += a.len();
    }
}

/// Appends a list of byte strings to a probe key: their number, then each length-prefixed.
fn parts(key: &mut Vec<u8>, v: &[Vec<u8>]) {
    key.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for a in v {
        part(key, a);
    }
}

/// Appends credentials (ids and resolved names) to a probe key.
fn push_creds(key: &mut Vec<u8>, creds: &crate::process::Creds) {
    for id in [
        &creds.user,
        &creds.real_user,
        &creds.group,
        &creds.real_group,
    ] {
        key.extend_from_slice(&id.id.to_le_bytes());
        key.push(id.name.is_some() as u8);
        if let Some(n) = &id.name {
            key.extend_from_slice(&(n.len() as u64).to_le_bytes());
            key.extend_from_slice(n.as_bytes());
        }
    }
}

/// The key of a snapshot probe: everything of `snap` it reads ([`ModelProbe::image`] and
/// the accessors after it): the subject's and parent's images and credentials, the
/// previous image, the container id and the entry leader's type, after the kind and a tag
/// byte (2) no image or lineage probe key has at that place.
fn snapshot_key(kind: EventKind, snap: &Snapshot, key: &mut Vec<u8>, args: bool) {
    key.push(kind as u8);
    push_image(key, &snap.subject.image, true, args);
    key.push(2);
    push_creds(key, &snap.subject.creds);
    push_caps(key, snap.subject.creds.caps);
    key.push(snap.subject.interactive as u8);
    key.push(snap.parent.is_some() as u8);
    if let Some(p) = &snap.parent {
        push_image(key, &p.image, true, args);
        push_creds(key, &p.creds);
    }
    key.push(snap.previous.is_some() as u8);
    if let Some(i) = &snap.previous {
        push_image(key, i, false, args);
    }
    key.push(snap.container.is_some() as u8);
    if let Some(c) = &snap.container {
        let id = super::build::container_id(c).as_bytes();
        key.extend_from_slice(&(id.len() as u64).to_le_bytes());
        key.extend_from_slice(id);
    }
    let entry = snap.entry_leader.as_ref().map(|e| e.entry_type.as_str());
    key.push(entry.is_some() as u8);
    if let Some(t) = entry {
        key.extend_from_slice(&(t.len() as u64).to_le_bytes());
        key.extend_from_slice(t.as_bytes());
    }
}

/// Appends the ids of a lineage (or a 0 byte when it has none) to a probe key.
fn push_ids(key: &mut Vec<u8>, ids: Option<CredIds>) {
    key.push(ids.is_some() as u8);
    if let Some(i) = ids {
        for id in [i.user, i.real_user, i.group, i.real_group] {
            key.extend_from_slice(&id.to_le_bytes());
        }
        push_caps(key, i.caps);
    }
}

/// Appends capability sets (or a 0 byte when unknown) to a probe key.
fn push_caps(key: &mut Vec<u8>, caps: Option<crate::event::Caps>) {
    key.push(caps.is_some() as u8);
    if let Some(c) = caps {
        key.extend_from_slice(&c.effective.to_le_bytes());
        key.extend_from_slice(&c.permitted.to_le_bytes());
    }
}

/// The answers of an image probe depend on the event kind, the subject's image and what it
/// was told of the parent alone (the template is the builder's, the same for every probe it
/// makes): that is its key. A snapshot probe's key holds every part of the snapshot it
/// reads ([`snapshot_key`]); the keys of the three kinds of probe never collide (a tag byte
/// after the subject's image), so one cache can hold them all.
impl Probe for ModelProbe<'_> {
    fn field(&self, field: super::field::FieldId) -> Option<super::field::FieldValue<'_>> {
        super::schema::probe_field(self, field)
    }

    fn key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        if self.snap.is_none() && self.key_len() > max {
            key.clear();
            return false;
        }
        self.write_key(max, key, true)
    }

    fn coarse_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        self.write_key(max, key, false)
    }

    fn coarse_key_hashed(&self, max: usize) -> Option<(u64, &[u8])> {
        let (made_for, memo) = self.coarse.get_or_init(|| {
            let mut key = self.key_buffers.borrow_mut().pop().unwrap_or_default();
            let memo = match self.write_key(max, &mut key, false) {
                true => Some((crate::rules::generations::hash_key(&key), key)),
                false => {
                    self.key_buffers.borrow_mut().push(key);
                    None
                }
            };
            (max, memo)
        });
        match memo {
            Some((hash, key)) if *made_for == max => Some((*hash, key)),
            _ => None,
        }
    }

    fn args_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        self.write_args_key(max, key, false)
    }

    fn args_shape_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        self.write_args_key(max, key, true)
    }

    fn with_coarse(&self, f: &mut dyn FnMut(&dyn Probe)) -> bool {
        let view = ModelProbe {
            args_unknown: true,
            rendered: OnceCell::new(),
            coarse: OnceCell::new(),
            ..*self
        };
        f(&view);
        true
    }
}

impl ModelProbe<'_> {
    /// Appends the arguments of every image the full key holds, in its order (which images
    /// there are is in the coarse key, so each list's count delimits it); `shape`: with
    /// every ASCII digit written as `0` ([`Probe::args_shape_key`]).
    fn write_args_key(&self, max: usize, key: &mut Vec<u8>, shape: bool) -> bool {
        let start = key.len();
        let mut images = [None; 3];
        match self.snap {
            Some(snap) => {
                images = [
                    Some(&*snap.subject.image),
                    snap.parent.as_ref().map(|p| &*p.image),
                    snap.previous.as_deref(),
                ];
            }
            None => {
                images[0] = Some(self.subject);
                if let Some(l) = &self.lineage {
                    [images[1], images[2]] = [l.parent, l.previous];
                }
            }
        }
        for image in images.into_iter().flatten() {
            let from = key.len();
            parts(key, &image.args);
            if shape {
                shape_digits(&mut key[from..], &image.args);
            }
        }
        key.len() - start <= max
    }

    /// Writes the key of this probe (`args`) or of its coarse view (arguments left out);
    /// false, and `key` empty, when it is longer than `max`.
    fn write_key(&self, max: usize, key: &mut Vec<u8>, args: bool) -> bool {
        key.clear();
        if let Some(snap) = self.snap {
            snapshot_key(self.kind, snap, key, args);
        } else {
            key.push(self.kind as u8);
            push_image(key, self.subject, true, args);
            match self.lineage {
                None => key.push(0),
                Some(l) => {
                    key.push(1);
                    for (i, full) in [(l.parent, true), (l.previous, false)] {
                        key.push(i.is_some() as u8);
                        if let Some(i) = i {
                            push_image(key, i, full, args);
                        }
                    }
                    key.push(l.container.is_some() as u8);
                    if let Some(c) = l.container {
                        let id = super::build::container_id(c).as_bytes();
                        key.extend_from_slice(&(id.len() as u64).to_le_bytes());
                        key.extend_from_slice(id);
                    }
                    push_ids(key, l.ids);
                    key.push(match l.interactive {
                        None => 0,
                        Some(false) => 1,
                        Some(true) => 2,
                    });
                }
            }
        }
        if key.len() > max {
            key.clear();
            return false;
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod corpus;
