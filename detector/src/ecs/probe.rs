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
//! - `*.name`, `*.executable` and `*.args` of the process and its parent, `container.id`
//!   and `process.entry_leader.entry_meta.type` are rendered from the process model by the
//!   functions the builder renders them with ([`super::keyword`], [`super::keywords`],
//!   `container_id`, [`crate::process::EntryType::as_str`]), and read through the same
//!   value helpers as the document's;
//! - everything else is unknown (`None`).
//!
//! Two kinds of probe: of a whole [`Snapshot`], and the *image probe*, taken before the
//! process model builds the snapshot, which knows only the subject's image (name,
//! executable, args, and the command line and argument count rendered from them), the
//! event kind and, when the model gives it, the parent's image (the *lineage* probe).
//! Rules certainly false on that spare the snapshot too (leaders, container, the reads of
//! `/proc` a snapshot costs); and since an image probe depends on nothing else, the rule
//! set remembers its verdicts by [`Probe::key`] (`rules::VerdictCache`).

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};

use super::field::Probe;
use super::{EcsDocument, keyword, keywords};
use crate::event::EventKind;
use crate::process::{ExecImage, Lineage, Snapshot};

/// Which process of the document a model field is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Who {
    /// `process.*`.
    Subject = 0,
    /// `process.parent.*`.
    Parent = 1,
}

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
    /// What was rendered, made on the first field read.
    rendered: OnceCell<Rendered<'a>>,
    /// The builder's spare args buffers: taken on first use, given back on drop.
    buffers: &'a RefCell<Vec<Vec<String>>>,
}

/// The model fields of a probe, by [`Who`], each rendered on first use.
#[derive(Default)]
struct Rendered<'a> {
    names: [OnceCell<Option<Cow<'a, str>>>; 2],
    executables: [OnceCell<Option<Cow<'a, str>>>; 2],
    /// Rendered into buffers of [`ModelProbe::buffers`].
    args: [OnceCell<Vec<String>>; 2],
    /// `*.command_line`, joined from the rendered args as the builder joins them.
    command_lines: [OnceCell<Option<String>>; 2],
    args_counts: [OnceCell<Option<u64>>; 2],
    previous_executable: OnceCell<Option<Cow<'a, str>>>,
}

impl Drop for ModelProbe<'_> {
    fn drop(&mut self) {
        let Some(r) = self.rendered.get_mut() else {
            return;
        };
        let mut spare = self.buffers.borrow_mut();
        for a in &mut r.args {
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
    ) -> Self {
        ModelProbe {
            template,
            subject,
            snap,
            lineage,
            kind,
            rendered: OnceCell::new(),
            buffers,
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

    /// `*.args` of `who` as the builder renders them (`None`: unknown; empty when the
    /// document has no such process).
    pub(super) fn args(&self, who: Who) -> Option<&[String]> {
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
    /// images give different keys).
    fn image_key_len(image: &ExecImage) -> usize {
        8 * (3 + image.args.len())
            + image.name.len()
            + image.executable.len()
            + image.args.iter().map(Vec::len).sum::<usize>()
    }

    /// Bytes [`Probe::key`] writes for this image probe: the kind, the subject's image and,
    /// for a lineage probe, a tag byte and the parent's and previous images and container
    /// id, each behind a byte saying whether there is one.
    fn key_len(&self) -> usize {
        let lineage = self.lineage.map_or(0, |l| {
            let image = |i: Option<&ExecImage>| 1 + i.map_or(0, Self::image_key_len);
            image(l.parent)
                + image(l.previous)
                + 1
                + l.container
                    .map_or(0, |c| 8 + super::build::container_id(c).len())
        });
        2 + Self::image_key_len(self.subject) + lineage
    }
}

/// Appends `image` to a probe key, each part length-prefixed.
fn push_image(key: &mut Vec<u8>, image: &ExecImage) {
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

/// The answers of an image probe depend on the event kind, the subject's image and what it
/// was told of the parent alone (the template is the builder's, the same for every probe it
/// makes): that is its key. A snapshot probe depends on the whole snapshot and has none.
impl Probe for ModelProbe<'_> {
    fn field(&self, field: super::field::FieldId) -> Option<super::field::FieldValue<'_>> {
        super::schema::probe_field(self, field)
    }

    fn key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        key.clear();
        if self.snap.is_some() || self.key_len() > max {
            return false;
        }
        key.push(self.kind as u8);
        push_image(key, self.subject);
        let Some(l) = self.lineage else {
            key.push(0);
            return true;
        };
        key.push(1);
        for i in [l.parent, l.previous] {
            key.push(i.is_some() as u8);
            if let Some(i) = i {
                push_image(key, i);
            }
        }
        key.push(l.container.is_some() as u8);
        if let Some(c) = l.container {
            let id = super::build::container_id(c).as_bytes();
            key.extend_from_slice(&(id.len() as u64).to_le_bytes());
            key.extend_from_slice(id);
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;
