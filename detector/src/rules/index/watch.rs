//! Which rules a probe's coarse view ([`Probe::with_coarse`]) leaves possible, and whether
//! one of them is possible whatever the arguments hold.
//!
//! A rule whose three-valued evaluation over the view is not false, and which asked none
//! of the fields the view leaves unknown (the args-derived ones), evaluates the same over
//! the whole probe (the evaluation follows the same path through the same answers): the
//! probe's verdict is then true without looking at its arguments.

use std::cell::Cell;

use crate::ecs::field::{FieldId, FieldValue, Probe};

/// A probe that notes whether one of `masked` was asked.
pub(crate) struct Watch<'p> {
    inner: &'p dyn Probe,
    masked: &'p [FieldId],
    asked: Cell<bool>,
}

impl<'p> Watch<'p> {
    pub(crate) fn new(inner: &'p dyn Probe, masked: &'p [FieldId]) -> Self {
        Watch {
            inner,
            masked,
            asked: Cell::new(false),
        }
    }

    /// Whether one of the masked fields was asked.
    pub(crate) fn asked(&self) -> bool {
        self.asked.get()
    }
}

impl Probe for Watch<'_> {
    fn field(&self, field: FieldId) -> Option<FieldValue<'_>> {
        if self.masked.contains(&field) {
            self.asked.set(true);
        }
        self.inner.field(field)
    }
}

/// The rules of `undecided` (not certainly false for `view`) and whether one of them
/// evaluates without asking a field of `masked` (so is not false for any probe `view` is
/// the coarse view of).
pub fn possible(
    rules: &[crate::rules::Rule],
    undecided: Vec<u32>,
    view: &dyn Probe,
    masked: &[FieldId],
) -> (bool, Vec<u32>) {
    let certain = undecided.iter().any(|&i| {
        let w = Watch::new(view, masked);
        rules[i as usize].compiled.root.eval3(&w) != Some(false) && !w.asked()
    });
    (certain, undecided)
}
