//! Fields a rule may read that our documents never fill: every ECS 9.4 field ([`ecs94`],
//! generated from `ecs_flat.yml` by `cargo xtask ecs-fields`) and the non-ECS fields of
//! Elastic Defend and other integrations the published rules read ([`integration`]).
//!
//! They resolve as Elasticsearch resolves a field its mapping has but a document lacks: the
//! rule compiles and the field reads `Missing` in every document. A field with a row of its
//! own in the field table (one we fill) is never looked up here: the table's index answers
//! first, so the per-document fast path is unchanged. Every field found only here shares
//! one id, [`NEVER_FILLED`], that no table row has: documents read it `Missing` (ids past
//! the table do) and probes know it is `Missing`. The lookup is a binary search in place
//! over the generated text, so the ~2,600 names cost no heap, nothing at start-up, and
//! only the pages a search touches (at rule compile time) are ever read.
//!
//! Which ECS types a rule can read: the keyword family, `ip`, `flattened` and `geo_point`
//! as keywords; the integer types as longs; the float types as longs too (this engine has
//! no float type, as for `event.risk_score`); `boolean`; `date`. `object` and `nested`
//! are not leaves and stay unknown, as Elasticsearch's EQL refuses them.

use super::ecs94;
use super::integration::{self, IntegrationField};
use super::{EcsSchema, UNPOPULATED_FIELDS};
use crate::ecs::field::{FieldDef, FieldId, FieldType};

/// The id every never-filled field resolves to (not a row of the table).
pub(super) const NEVER_FILLED: FieldId = FieldId(u16::MAX);

/// What our documents do with a dotted path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldStatus {
    /// A row of the field table reads it from the document.
    Filled(FieldType),
    /// Known (ECS, or a field of Elastic Defend or another integration) but never in our
    /// documents: rules read it as missing.
    NeverFilled(FieldType, FieldSource),
    /// Not a field of any schema we know: a rule naming it fails to compile.
    Unknown,
}

/// Where a never-filled field is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// ECS (the generated table, or a row of `UNPOPULATED_FIELDS`).
    Ecs,
    /// An integration's own field.
    Integration(&'static IntegrationField),
}

/// The ECS type name of `path` in ECS 9.4, by binary search over the sorted lines of
/// [`ecs94::FIELDS`].
pub fn ecs_type(path: &str) -> Option<&'static str> {
    let text = ecs94::FIELDS;
    let bytes = text.as_bytes();
    let (mut lo, mut hi) = (0, bytes.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = bytes[lo..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(lo, |i| lo + i + 1);
        let end = bytes[start..hi]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(hi, |i| start + i);
        let (name, ty) = text[start..end].split_once(' ')?;
        match name.cmp(path) {
            std::cmp::Ordering::Equal => return Some(ty),
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    None
}

/// How the rule engine reads an ECS type (`None`: not a leaf a rule can read).
pub fn field_type(ecs_type: &str) -> Option<FieldType> {
    Some(match ecs_type {
        "keyword" | "wildcard" | "constant_keyword" | "match_only_text" | "text" | "ip"
        | "flattened" | "geo_point" => FieldType::Keyword,
        "long" | "integer" | "short" | "byte" | "unsigned_long" => FieldType::Long,
        "float" | "double" | "scaled_float" | "half_float" => FieldType::Long,
        "boolean" => FieldType::Boolean,
        "date" => FieldType::Date,
        _ => return None,
    })
}

/// A known field our table has no row for, and how the rules read it.
fn never_filled(path: &str) -> Option<(FieldType, FieldSource)> {
    if let Some(t) = ecs_type(path) {
        return Some((field_type(t)?, FieldSource::Ecs));
    }
    integration::integration_field(path).map(|f| (f.ty, FieldSource::Integration(f)))
}

/// The schema's answer for a path its table lacks (see the module docs).
pub(super) fn resolve(path: &str) -> Option<FieldDef> {
    never_filled(path).map(|(ty, _)| FieldDef {
        id: NEVER_FILLED,
        ty,
    })
}

impl EcsSchema {
    /// Whether our documents fill `path`, never fill it although rules may read it, or it
    /// is unknown (what `check-rules` reports per rule).
    pub fn status(&self, path: &str) -> FieldStatus {
        if let Some(&(_, ty)) = UNPOPULATED_FIELDS.iter().find(|(p, _)| *p == path) {
            return FieldStatus::NeverFilled(ty, FieldSource::Ecs);
        }
        if let Some(&id) = self.index.get(path) {
            return FieldStatus::Filled(self.table[id.0 as usize].ty);
        }
        match never_filled(path) {
            Some((ty, source)) => FieldStatus::NeverFilled(ty, source),
            None => FieldStatus::Unknown,
        }
    }

    /// Whether `id` (of this schema) is a field no document carries.
    pub fn is_never_filled(&self, id: FieldId) -> bool {
        id == NEVER_FILLED
            || self
                .table
                .get(id.0 as usize)
                .is_some_and(|e| self.is_unpopulated(e.path))
    }
}

/// The ECS version of the generated table.
pub fn ecs_table_version() -> &'static str {
    ecs94::VERSION
}

#[cfg(test)]
mod tests;
