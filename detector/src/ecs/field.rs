//! Field access the rule engine compiles against.
//!
//! Rules name fields by dotted path (`process.parent.name`). At compile time a [`Schema`]
//! turns each path into a [`FieldDef`] (a small id and the field's ECS type) or rejects it as
//! unknown; at match time a [`Document`] answers by id, without string lookups or allocation.
//! Before a document is built, a [`Probe`] answers for the fields it already knows, so the
//! rules can tell that they cannot match and the document need not be built.

/// Index of a field within one [`Schema`]. Only meaningful for that schema's documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u16);

/// The ECS data type of a field, as far as EQL semantics care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `keyword`, `wildcard`, `constant_keyword`, `match_only_text`, `text`, `ip`, `date`
    /// rendered as a string.
    Keyword,
    /// `long`, `integer`, `short`, `byte`, `unsigned_long`.
    Long,
    Boolean,
    /// A `date`, stored as an RFC 3339 string.
    Date,
}

/// A resolved field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    pub id: FieldId,
    pub ty: FieldType,
}

/// A field's value in one document, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// Absent (or JSON `null`): positive tests are false, negations true.
    Missing,
    Str(&'a str),
    /// A multi-valued keyword (`process.args`, `event.type`): a test matches if any element
    /// does.
    Strs(&'a [String]),
    StaticStrs(&'a [&'static str]),
    Long(i64),
    Bool(bool),
}

/// The set of fields a document type can carry: the "mapping" rules are checked against.
pub trait Schema {
    /// `None` when the path names no field of this schema (a rule compile error unless the
    /// rule wrote `?path`).
    fn resolve(&self, path: &str) -> Option<FieldDef>;
}

/// A document the compiled rules evaluate.
pub trait Document {
    fn field(&self, id: FieldId) -> FieldValue<'_>;
}

/// A document not built yet, seen through what is already known of it: some fields exactly
/// as the document will hold them, the rest unknown. Enough for the rules to tell that they
/// cannot match (`RuleSet::may_match_probe`), so the document need not be built.
pub trait Probe {
    /// The value of `field` as the document will hold it (`Missing` for a field it will
    /// not carry), or `None` when the probe cannot tell.
    fn field(&self, field: FieldId) -> Option<FieldValue<'_>>;

    /// Writes into `key` (cleared first) bytes that determine every answer of this probe,
    /// when there are at most `max` of them: verdicts about the probe can then be
    /// remembered by them. `false` (the default) when the probe depends on more, or its key
    /// would be longer than `max`.
    fn key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        let _ = (max, key);
        false
    }

    /// Like [`Probe::key`], for the *coarse* view of this probe ([`Probe::with_coarse`]):
    /// bytes that determine every answer of that view. `false` (the default): no coarse
    /// view.
    fn coarse_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        let _ = (max, key);
        false
    }

    /// [`Probe::coarse_key`] (at most `max` bytes) and its hash
    /// ([`crate::rules::generations::hash_key`]), made once per probe: the rules' verdict
    /// cache and the sequences' term memory both look the coarse view up, and the key
    /// (a few hundred bytes: images, environment) is then written and hashed once. `None`
    /// (the default) when the probe does not keep it: the caller writes
    /// [`Probe::coarse_key`] itself.
    fn coarse_key_hashed(&self, max: usize) -> Option<(u64, &[u8])> {
        let _ = max;
        None
    }

    /// Appends to `key` bytes that, with this probe's [`Probe::coarse_key`], determine every
    /// answer of this probe (its arguments): verdicts about probes of one coarse view can
    /// then be remembered by these few bytes instead of the whole [`Probe::key`]. `false`
    /// (the default) when there are more than `max` of them or the probe has no coarse view
    /// (then `key` holds unspecified bytes).
    fn args_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        let _ = (max, key);
        false
    }

    /// [`Probe::args_key`] with every ASCII digit of the arguments written as `0`: the key
    /// of every probe whose arguments differ from this one's only in their digits (each in
    /// the same place), so a verdict of rules that cannot tell digits apart
    /// ([`crate::rules::eql::digits`]) is remembered once for `sleep 1` … `sleep 99`.
    /// `false` (the default) as for [`Probe::args_key`].
    fn args_shape_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        let _ = (max, key);
        false
    }

    /// Calls `f` with the coarse view of this probe and returns true: the same answers,
    /// except that the fields rendered from the processes' arguments (`*.args`,
    /// `*.args_count`, `*.command_line`) are unknown. A rule certainly false for the view
    /// is certainly false for the probe, so what the view leaves possible (few rules, the
    /// same for every run of one command with other arguments) is all that remains to
    /// check. `false` (the default, `f` not called): no coarse view.
    fn with_coarse(&self, f: &mut dyn FnMut(&dyn Probe)) -> bool {
        let _ = f;
        false
    }
}
