//! The field table of [`EcsDocument`]: how rules resolve dotted paths at compile time and
//! read values at match time.
//!
//! One static table lists every field a document can carry as (dotted path, type, accessor).
//! A [`FieldId`] is an index into it, so reading a field while matching is one indirect call
//! through plain struct fields: no string lookup, no allocation. The table also lists ECS
//! fields that published container rules reference but our sensor never fills
//! ([`UNPOPULATED_FIELDS`]): they resolve (so those rules compile, as they do against an
//! Elasticsearch index with the ECS mapping) and always read [`FieldValue::Missing`].
//! So do every other ECS 9.4 field and the Elastic Defend / integration fields the rules
//! read, without rows of their own: one shared id, found by [`known`] after the table.
//!
//! Each row has a second accessor, for the [`ModelProbe`] (the document before it is
//! built): what the probe knows of the field, and how it reads it ([`ProbeRead`]). Keeping
//! both in one row keeps one definition of each field for the rules, whether they read a
//! document or a probe.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use super::field::{Document, FieldDef, FieldId, FieldType, FieldValue, Schema};
use super::probe::{CapSet, Cred, Who};
use super::{EcsDocument, ModelProbe, ProcessCore};

/// Reads one field of a document; `None` when absent.
type Accessor = for<'a> fn(&'a EcsDocument) -> Option<FieldValue<'a>>;

/// Reads one field of a probe: `None` when the probe cannot tell, else what [`Accessor`]
/// will read from the document.
type ProbeAccessor = for<'p, 'a> fn(&'p ModelProbe<'a>) -> Option<Option<FieldValue<'p>>>;

/// What a [`ModelProbe`] knows of a field before the document is built.
#[derive(Clone, Copy)]
enum ProbeRead {
    /// Nothing: known once the document is built.
    Unknown,
    /// The same in every document of one builder and event kind: read with the row's
    /// document accessor from the builder's template, which every document starts from.
    Template,
    /// Rendered from the process model by the function the builder renders it with.
    Model(ProbeAccessor),
}

/// One row of the table.
struct Entry {
    path: &'static str,
    ty: FieldType,
    get: Accessor,
    probe: ProbeRead,
}

/// The schema of [`EcsDocument`] (obtain it with [`schema()`]).
pub struct EcsSchema {
    table: Vec<Entry>,
    index: FxHashMap<&'static str, FieldId>,
}

/// ECS fields that rules may reference but our documents never carry. They resolve and
/// always read `Missing`.
pub const UNPOPULATED_FIELDS: &[(&str, FieldType)] = &[
    ("file.path", FieldType::Keyword),
    ("file.name", FieldType::Keyword),
    ("file.extension", FieldType::Keyword),
    ("file.directory", FieldType::Keyword),
    ("file.type", FieldType::Keyword),
    ("data_stream.dataset", FieldType::Keyword),
    ("data_stream.namespace", FieldType::Keyword),
    ("data_stream.type", FieldType::Keyword),
    ("event.outcome", FieldType::Keyword),
    ("event.ingested", FieldType::Date),
    ("event.code", FieldType::Keyword),
    ("event.provider", FieldType::Keyword),
    ("event.reason", FieldType::Keyword),
    ("process.title", FieldType::Keyword),
    ("process.parent.title", FieldType::Keyword),
    ("process.uptime", FieldType::Long),
    ("process.parent.uptime", FieldType::Long),
    ("user.effective.id", FieldType::Keyword),
    ("user.effective.name", FieldType::Keyword),
    ("orchestrator.cluster.id", FieldType::Keyword),
    ("orchestrator.resource.parent.type", FieldType::Keyword),
    // A sequence's alert lines carry these (alert/sequence/shape.rs); no event does.
    ("detector.sequence.group_id", FieldType::Keyword),
    ("detector.sequence.index", FieldType::Long),
    ("detector.sequence.events", FieldType::Long),
    ("detector.sequence.join_key", FieldType::Keyword),
];

/// Elastic Defend's custom fields (outside ECS, under `*.Ext.*`) our documents carry, as
/// Defend documents them: rules written for Defend read them, and the ECS validator of the
/// tests accepts exactly these beside ECS 9.4.
pub const DEFEND_FIELDS: &[&str] = &[
    "user.Ext.real.id",
    "user.Ext.real.name",
    "group.Ext.real.id",
    "group.Ext.real.name",
];

/// The schema of [`EcsDocument`], built once on first use.
pub fn schema() -> &'static EcsSchema {
    static SCHEMA: LazyLock<EcsSchema> = LazyLock::new(EcsSchema::build);
    &SCHEMA
}

mod ecs94;
pub mod integration;
pub mod known;

impl Schema for EcsSchema {
    fn resolve(&self, path: &str) -> Option<FieldDef> {
        // Every other ECS or known integration field: never filled, reads Missing.
        let Some(&id) = self.index.get(path) else {
            return known::resolve(path);
        };
        Some(FieldDef {
            id,
            ty: self.table[id.0 as usize].ty,
        })
    }
}

impl EcsSchema {
    /// Every field: (dotted path, type), in [`FieldId`] order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, FieldType)> + '_ {
        self.table.iter().map(|e| (e.path, e.ty))
    }

    /// The dotted path of a field id (`None` for an id of another schema).
    pub fn path(&self, id: FieldId) -> Option<&'static str> {
        self.table.get(id.0 as usize).map(|e| e.path)
    }

    /// Whether a path is one of [`UNPOPULATED_FIELDS`].
    pub fn is_unpopulated(&self, path: &str) -> bool {
        UNPOPULATED_FIELDS.iter().any(|(p, _)| *p == path)
    }

    fn build() -> Self {
        let mut t: Vec<Entry> = Vec::with_capacity(256);
        populated(&mut t);
        for &(path, ty) in UNPOPULATED_FIELDS {
            t.push(Entry {
                path,
                ty,
                get: |_| None,
                // Missing in every document.
                probe: ProbeRead::Template,
            });
        }
        let mut index = FxHashMap::default();
        for (i, e) in t.iter().enumerate() {
            let id = FieldId(u16::try_from(i).expect("field table fits u16"));
            let dup = index.insert(e.path, id);
            assert!(dup.is_none(), "field {} listed twice", e.path);
        }
        EcsSchema { table: t, index }
    }
}

impl Document for EcsDocument {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        match schema().table.get(id.0 as usize) {
            Some(e) => (e.get)(self).unwrap_or(FieldValue::Missing),
            None => FieldValue::Missing,
        }
    }
}

/// The field of `probe`, as [`Document::field`] will read it from the built document;
/// `None` when the probe cannot tell.
pub(super) fn probe_field<'p>(probe: &'p ModelProbe<'_>, id: FieldId) -> Option<FieldValue<'p>> {
    let Some(e) = schema().table.get(id.0 as usize) else {
        return (id == known::NEVER_FILLED).then_some(FieldValue::Missing);
    };
    let v = match e.probe {
        ProbeRead::Unknown => return None,
        ProbeRead::Template => (e.get)(probe.template),
        ProbeRead::Model(get) => get(probe)?,
    };
    Some(v.unwrap_or(FieldValue::Missing))
}

fn s<T: AsRef<str>>(v: &Option<T>) -> Option<FieldValue<'_>> {
    v.as_ref().map(|v| FieldValue::Str(v.as_ref()))
}
fn l<T: Copy + TryInto<i64>>(v: &Option<T>) -> Option<FieldValue<'static>> {
    // u64 values above i64::MAX (none in practice: cgroup ids, counts) saturate.
    v.map(|x| FieldValue::Long(x.try_into().unwrap_or(i64::MAX)))
}
fn b(v: &Option<bool>) -> Option<FieldValue<'static>> {
    v.map(FieldValue::Bool)
}
fn a(v: &[String]) -> Option<FieldValue<'_>> {
    (!v.is_empty()).then_some(FieldValue::Strs(v))
}

/// Pushes rows: `"path" => Type, |doc| expression-returning-Option<FieldValue>`, each
/// optionally followed by `, probe: ProbeRead`. `rows! { t, Template; … }` makes `Template`
/// the default probe of the block (`Unknown` otherwise).
macro_rules! rows {
    (@probe $default:ident) => { ProbeRead::$default };
    (@probe $default:ident $probe:expr) => { $probe };
    ($t:ident; $($rows:tt)*) => { rows! { $t, Unknown; $($rows)* } };
    ($t:ident, $default:ident;
     $( $path:expr => $ty:ident, |$d:ident| $body:expr $(, probe: $probe:expr)?; )*) => {
        $( $t.push(Entry {
            path: $path,
            ty: FieldType::$ty,
            get: |$d| $body,
            probe: rows!(@probe $default $($probe)?),
        }); )*
    };
}

/// The probe of a model field of a [`ProcessCore`] position: `Unknown` except for the
/// process and its parent, whose `name`, `executable` and `args` the probe renders
/// ([`ModelProbe::name`] …) and reads through the document's value helper (`$value`).
macro_rules! core_probe {
    (None, $field:ident, $value:ident $(, $arg:expr)?) => {
        ProbeRead::Unknown
    };
    ($who:ident, $field:ident, $value:ident $(, $arg:expr)?) => {
        ProbeRead::Model(|p| Some($value(p.$field(Who::$who $(, $arg)?)?)))
    };
}

/// The probe of `*.interactive`: the subject's only (what a lineage tells, or the
/// snapshot).
macro_rules! interactive_probe {
    (Subject) => {
        ProbeRead::Model(|p| Some(Some(FieldValue::Bool(p.interactive()?))))
    };
    ($who:ident) => {
        ProbeRead::Unknown
    };
}

/// Pushes the [`ProcessCore`] rows under `$prefix`, reading the core through `$get`; the
/// probe reads the model fields of `$who` (`Subject`, `Parent`, or `None`).
macro_rules! core_rows {
    ($t:ident, $prefix:literal, $who:ident, |$d:ident| $get:expr) => {
        rows! { $t;
            concat!($prefix, ".pid") => Long, |$d| l(&core($get)?.pid);
            concat!($prefix, ".vpid") => Long, |$d| l(&core($get)?.vpid);
            concat!($prefix, ".entity_id") => Keyword, |$d| s(&core($get)?.entity_id);
            concat!($prefix, ".name") => Keyword, |$d| s(&core($get)?.name),
                probe: core_probe!($who, name, s);
            concat!($prefix, ".executable") => Keyword, |$d| s(&core($get)?.executable),
                probe: core_probe!($who, executable, s);
            concat!($prefix, ".args") => Keyword, |$d| a(&core($get)?.args),
                probe: core_probe!($who, args, a);
            concat!($prefix, ".args_count") => Long, |$d| l(&core($get)?.args_count),
                probe: core_probe!($who, args_count, l);
            concat!($prefix, ".command_line") => Keyword, |$d| s(&core($get)?.command_line),
                probe: core_probe!($who, command_line, s);
            concat!($prefix, ".start") => Date, |$d| s(&core($get)?.start);
            concat!($prefix, ".working_directory") => Keyword,
                |$d| s(&core($get)?.working_directory),
                probe: core_probe!($who, working_directory, s);
            concat!($prefix, ".interactive") => Boolean, |$d| b(&core($get)?.interactive),
                probe: interactive_probe!($who);
            concat!($prefix, ".tty.char_device.major") => Long,
                |$d| l(&core($get)?.tty.as_ref()?.char_device.as_ref()?.major);
            concat!($prefix, ".tty.char_device.minor") => Long,
                |$d| l(&core($get)?.tty.as_ref()?.char_device.as_ref()?.minor);
            concat!($prefix, ".user.id") => Keyword,
                |$d| s(&core($get)?.user.as_ref()?.id),
                probe: core_probe!($who, cred, s, Cred::UserId);
            concat!($prefix, ".user.name") => Keyword,
                |$d| s(&core($get)?.user.as_ref()?.name),
                probe: core_probe!($who, cred, s, Cred::UserName);
            concat!($prefix, ".group.id") => Keyword,
                |$d| s(&core($get)?.group.as_ref()?.id),
                probe: core_probe!($who, cred, s, Cred::GroupId);
            concat!($prefix, ".group.name") => Keyword,
                |$d| s(&core($get)?.group.as_ref()?.name),
                probe: core_probe!($who, cred, s, Cred::GroupName);
            concat!($prefix, ".real_user.id") => Keyword,
                |$d| s(&core($get)?.real_user.as_ref()?.id),
                probe: core_probe!($who, cred, s, Cred::RealUserId);
            concat!($prefix, ".real_user.name") => Keyword,
                |$d| s(&core($get)?.real_user.as_ref()?.name),
                probe: core_probe!($who, cred, s, Cred::RealUserName);
            concat!($prefix, ".real_group.id") => Keyword,
                |$d| s(&core($get)?.real_group.as_ref()?.id),
                probe: core_probe!($who, cred, s, Cred::RealGroupId);
            concat!($prefix, ".real_group.name") => Keyword,
                |$d| s(&core($get)?.real_group.as_ref()?.name),
                probe: core_probe!($who, cred, s, Cred::RealGroupName);
            concat!($prefix, ".saved_user.id") => Keyword,
                |$d| s(&core($get)?.saved_user.as_ref()?.id);
            concat!($prefix, ".saved_user.name") => Keyword,
                |$d| s(&core($get)?.saved_user.as_ref()?.name);
            concat!($prefix, ".saved_group.id") => Keyword,
                |$d| s(&core($get)?.saved_group.as_ref()?.id);
            concat!($prefix, ".saved_group.name") => Keyword,
                |$d| s(&core($get)?.saved_group.as_ref()?.name);
        }
    };
}

/// Identity helper that pins the type of a core accessor expression.
fn core(c: Option<&ProcessCore>) -> Option<&ProcessCore> {
    c
}

/// Pushes the rows of a `{entity_id, pid, vpid, start}` reference under `$prefix`.
macro_rules! ref_rows {
    ($t:ident, $prefix:literal, |$d:ident| $get:expr) => {
        rows! { $t;
            concat!($prefix, ".entity_id") => Keyword, |$d| s(&$get?.entity_id);
            concat!($prefix, ".pid") => Long, |$d| l(&$get?.pid);
            concat!($prefix, ".vpid") => Long, |$d| l(&$get?.vpid);
            concat!($prefix, ".start") => Date, |$d| s(&$get?.start);
        }
    };
}

fn populated(t: &mut Vec<Entry>) {
    rows! { t;
        "@timestamp" => Date, |d| s(&d.timestamp);
    }
    // The builder's template: the same in every document of one event kind.
    rows! { t, Template;
        "event.kind" => Keyword, |d| s(&d.event.as_ref()?.kind);
        "event.category" => Keyword, |d| a(&d.event.as_ref()?.category);
        "event.type" => Keyword, |d| a(&d.event.as_ref()?.r#type);
        "event.action" => Keyword, |d| s(&d.event.as_ref()?.action);
        "event.id" => Keyword, |d| s(&d.event.as_ref()?.id);
        "event.created" => Date, |d| s(&d.event.as_ref()?.created);
        "event.module" => Keyword, |d| s(&d.event.as_ref()?.module);
        "event.dataset" => Keyword, |d| s(&d.event.as_ref()?.dataset);
        "event.sequence" => Long, |d| l(&d.event.as_ref()?.sequence);
        "event.severity" => Long, |d| l(&d.event.as_ref()?.severity);
        // ECS `float`; the engine has no float type and Elastic's scores are integers.
        "event.risk_score" => Long,
            |d| d.event.as_ref()?.risk_score.map(|x| FieldValue::Long(x as i64));
    }
    rows! { t;
        "user.id" => Keyword, |d| s(&d.user.as_ref()?.id),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::UserId)?)));
        "user.name" => Keyword, |d| s(&d.user.as_ref()?.name),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::UserName)?)));
        "user.group.id" => Keyword, |d| s(&d.user.as_ref()?.group.as_ref()?.id);
        "user.group.name" => Keyword, |d| s(&d.user.as_ref()?.group.as_ref()?.name);
        "group.id" => Keyword, |d| s(&d.group.as_ref()?.id),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::GroupId)?)));
        "group.name" => Keyword, |d| s(&d.group.as_ref()?.name),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::GroupName)?)));
        "user.Ext.real.id" => Keyword,
            |d| s(&d.user.as_ref()?.ext.as_ref()?.real.as_ref()?.id),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::RealUserId)?)));
        "user.Ext.real.name" => Keyword,
            |d| s(&d.user.as_ref()?.ext.as_ref()?.real.as_ref()?.name),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::RealUserName)?)));
        "group.Ext.real.id" => Keyword,
            |d| s(&d.group.as_ref()?.ext.as_ref()?.real.as_ref()?.id),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::RealGroupId)?)));
        "group.Ext.real.name" => Keyword,
            |d| s(&d.group.as_ref()?.ext.as_ref()?.real.as_ref()?.name),
            probe: ProbeRead::Model(|p| Some(s(p.cred(Who::Subject, Cred::RealGroupName)?)));
        "container.id" => Keyword, |d| s(&d.container.as_ref()?.id),
            probe: ProbeRead::Model(|p| Some(p.container_id()?.map(FieldValue::Str)));
        "container.runtime" => Keyword, |d| s(&d.container.as_ref()?.runtime);
        "container.name" => Keyword, |d| s(&d.container.as_ref()?.name);
        "container.image.name" => Keyword, |d| s(&d.container.as_ref()?.image.as_ref()?.name);
        "container.image.tag" => Keyword, |d| a(&d.container.as_ref()?.image.as_ref()?.tag);
        "orchestrator.type" => Keyword, |d| s(&d.orchestrator.as_ref()?.r#type);
        "orchestrator.namespace" => Keyword, |d| s(&d.orchestrator.as_ref()?.namespace);
        "orchestrator.resource.name" => Keyword,
            |d| s(&d.orchestrator.as_ref()?.resource.as_ref()?.name);
        "orchestrator.resource.type" => Keyword,
            |d| s(&d.orchestrator.as_ref()?.resource.as_ref()?.r#type);
        "container.security_context.privileged" => Boolean,
            |d| b(&d.container.as_ref()?.security_context.as_ref()?.privileged);
        "orchestrator.cluster.name" => Keyword,
            |d| s(&d.orchestrator.as_ref()?.cluster.as_ref()?.name);
    }
    // The builder's template: the same in every document.
    rows! { t, Template;
        "host.hostname" => Keyword, |d| s(&d.host.as_ref()?.hostname);
        "host.name" => Keyword, |d| s(&d.host.as_ref()?.name);
        "host.id" => Keyword, |d| s(&d.host.as_ref()?.id);
        "host.architecture" => Keyword, |d| s(&d.host.as_ref()?.architecture);
        "host.boot.id" => Keyword, |d| s(&d.host.as_ref()?.boot.as_ref()?.id);
        "host.pid_ns_ino" => Keyword, |d| s(&d.host.as_ref()?.pid_ns_ino);
        "host.os.type" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.r#type);
        "host.os.family" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.family);
        "host.os.name" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.name);
        "host.os.version" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.version);
        "host.os.kernel" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.kernel);
        "host.os.full" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.full);
        "host.os.platform" => Keyword, |d| s(&d.host.as_ref()?.os.as_ref()?.platform);
        "agent.id" => Keyword, |d| s(&d.agent.as_ref()?.id);
        "agent.name" => Keyword, |d| s(&d.agent.as_ref()?.name);
        "agent.type" => Keyword, |d| s(&d.agent.as_ref()?.r#type);
        "agent.version" => Keyword, |d| s(&d.agent.as_ref()?.version);
        "ecs.version" => Keyword,
            |d| d.ecs.as_ref()?.version.as_deref().map(FieldValue::Str);
    }
    rows! { t;
        "message" => Keyword, |d| s(&d.message);
        "tags" => Keyword, |d| a(&d.tags);
        "rule.id" => Keyword, |d| s(&d.rule.as_ref()?.id);
        "rule.uuid" => Keyword, |d| s(&d.rule.as_ref()?.uuid);
        "rule.name" => Keyword, |d| s(&d.rule.as_ref()?.name);
        "rule.description" => Keyword, |d| s(&d.rule.as_ref()?.description);
        "rule.reference" => Keyword, |d| s(&d.rule.as_ref()?.reference);
        "rule.author" => Keyword, |d| a(&d.rule.as_ref()?.author);
        "rule.license" => Keyword, |d| s(&d.rule.as_ref()?.license);
        "rule.ruleset" => Keyword, |d| s(&d.rule.as_ref()?.ruleset);
        "rule.version" => Keyword, |d| s(&d.rule.as_ref()?.version);
        "rule.category" => Keyword, |d| s(&d.rule.as_ref()?.category);
        "threat.framework" => Keyword, |d| s(&d.threat.as_ref()?.framework);
        "threat.tactic.id" => Keyword, |d| a(&d.threat.as_ref()?.tactic.as_ref()?.id);
        "threat.tactic.name" => Keyword, |d| a(&d.threat.as_ref()?.tactic.as_ref()?.name);
        "threat.tactic.reference" => Keyword,
            |d| a(&d.threat.as_ref()?.tactic.as_ref()?.reference);
        "threat.technique.id" => Keyword, |d| a(&d.threat.as_ref()?.technique.as_ref()?.id);
        "threat.technique.name" => Keyword,
            |d| a(&d.threat.as_ref()?.technique.as_ref()?.name);
        "threat.technique.reference" => Keyword,
            |d| a(&d.threat.as_ref()?.technique.as_ref()?.reference);
        "threat.technique.subtechnique.id" => Keyword,
            |d| a(&d.threat.as_ref()?.technique.as_ref()?.subtechnique.as_ref()?.id);
        "threat.technique.subtechnique.name" => Keyword,
            |d| a(&d.threat.as_ref()?.technique.as_ref()?.subtechnique.as_ref()?.name);
        "threat.technique.subtechnique.reference" => Keyword,
            |d| a(&d.threat.as_ref()?.technique.as_ref()?.subtechnique.as_ref()?.reference);
        "detector.process.args_truncated" => Boolean,
            |d| b(&d.detector.as_ref()?.process.as_ref()?.args_truncated);
        "detector.process.exe_path_partial" => Boolean,
            |d| b(&d.detector.as_ref()?.process.as_ref()?.exe_path_partial);
        "detector.process.mnt_ns_ino" => Long,
            |d| l(&d.detector.as_ref()?.process.as_ref()?.mnt_ns_ino);
        "detector.process.working_directory_partial" => Boolean,
            |d| b(&d.detector.as_ref()?.process.as_ref()?.working_directory_partial);
        "detector.process.env_vars_truncated" => Boolean,
            |d| b(&d.detector.as_ref()?.process.as_ref()?.env_vars_truncated);
        "detector.cgroup.id" => Long, |d| l(&d.detector.as_ref()?.cgroup.as_ref()?.id);
        "detector.cgroup.path" => Keyword, |d| s(&d.detector.as_ref()?.cgroup.as_ref()?.path);
        "detector.startup_scan" => Boolean, |d| b(&d.detector.as_ref()?.startup_scan);
        "detector.event.boot_ns" => Long, |d| l(&d.detector.as_ref()?.event.as_ref()?.boot_ns);
        "detector.loss.kernel_lost" => Long,
            |d| l(&d.detector.as_ref()?.loss.as_ref()?.kernel_lost);
        "detector.loss.kernel_lost_total" => Long,
            |d| l(&d.detector.as_ref()?.loss.as_ref()?.kernel_lost_total);
        "detector.loss.malformed" => Long, |d| l(&d.detector.as_ref()?.loss.as_ref()?.malformed);
        "detector.loss.alerts_dropped" => Long,
            |d| l(&d.detector.as_ref()?.loss.as_ref()?.alerts_dropped);
        "detector.loss.sequence_events_late" => Long,
            |d| l(&d.detector.as_ref()?.loss.as_ref()?.sequence_events_late);
        "detector.loss.sequences_evicted" => Long,
            |d| l(&d.detector.as_ref()?.loss.as_ref()?.sequences_evicted);
        "detector.alert.suppressed_count" => Long,
            |d| l(&d.detector.as_ref()?.alert.as_ref()?.suppressed_count);
    }

    // process.*
    core_rows!(t, "process", Subject, |d| d
        .process
        .as_ref()
        .map(|p| &p.core));
    rows! { t;
        "process.end" => Date, |d| s(&d.process.as_ref()?.end);
        "process.exit_code" => Long, |d| l(&d.process.as_ref()?.exit_code);
        "process.previous.executable" => Keyword,
            |d| s(&d.process.as_ref()?.previous.as_ref()?.executable),
            probe: ProbeRead::Model(|p| Some(s(p.previous_executable()?)));
        "process.previous.args" => Keyword,
            |d| a(&d.process.as_ref()?.previous.as_ref()?.args);
        "process.previous.args_count" => Long,
            |d| l(&d.process.as_ref()?.previous.as_ref()?.args_count);
        "process.env_vars" => Keyword, |d| a(&d.process.as_ref()?.env_vars),
            probe: ProbeRead::Model(|p| Some(a(p.env_vars()?)));
        "process.thread.name" => Keyword,
            |d| s(&d.process.as_ref()?.thread.as_ref()?.name);
        "process.thread.capabilities.effective" => Keyword,
            |d| a(&d.process.as_ref()?.thread.as_ref()?.capabilities.as_ref()?.effective),
            probe: ProbeRead::Model(|p| Some(a(p.caps(CapSet::Effective)?)));
        "process.thread.capabilities.permitted" => Keyword,
            |d| a(&d.process.as_ref()?.thread.as_ref()?.capabilities.as_ref()?.permitted),
            probe: ProbeRead::Model(|p| Some(a(p.caps(CapSet::Permitted)?)));
    }

    // process.parent.*
    core_rows!(t, "process.parent", Parent, |d| d
        .process
        .as_ref()?
        .parent
        .as_ref()
        .map(|p| &p.core));
    rows! { t;
        "process.parent.end" => Date, |d| s(&d.process.as_ref()?.parent.as_ref()?.end);
        "process.parent.exit_code" => Long,
            |d| l(&d.process.as_ref()?.parent.as_ref()?.exit_code);
        "process.parent.thread.name" => Keyword,
            |d| s(&d.process.as_ref()?.parent.as_ref()?.thread.as_ref()?.name);
        "process.parent.thread.capabilities.effective" => Keyword,
            |d| a(&d.process.as_ref()?.parent.as_ref()?.thread.as_ref()?
                .capabilities.as_ref()?.effective);
        "process.parent.thread.capabilities.permitted" => Keyword,
            |d| a(&d.process.as_ref()?.parent.as_ref()?.thread.as_ref()?
                .capabilities.as_ref()?.permitted);
    }
    ref_rows!(t, "process.parent.group_leader", |d| d
        .process
        .as_ref()?
        .parent
        .as_ref()?
        .group_leader
        .as_ref());

    // process.group_leader.*
    core_rows!(t, "process.group_leader", None, |d| d
        .process
        .as_ref()?
        .group_leader
        .as_ref()
        .map(|p| &p.core));
    rows! { t;
        "process.group_leader.same_as_process" => Boolean,
            |d| b(&d.process.as_ref()?.group_leader.as_ref()?.same_as_process);
    }

    // process.session_leader.*
    core_rows!(t, "process.session_leader", None, |d| d
        .process
        .as_ref()?
        .session_leader
        .as_ref()
        .map(|p| &p.core));
    rows! { t;
        "process.session_leader.same_as_process" => Boolean,
            |d| b(&d.process.as_ref()?.session_leader.as_ref()?.same_as_process);
    }
    ref_rows!(t, "process.session_leader.parent", |d| d
        .process
        .as_ref()?
        .session_leader
        .as_ref()?
        .parent
        .as_ref());
    ref_rows!(t, "process.session_leader.parent.session_leader", |d| d
        .process
        .as_ref()?
        .session_leader
        .as_ref()?
        .parent
        .as_ref()?
        .session_leader
        .as_ref());

    // process.entry_leader.*
    core_rows!(t, "process.entry_leader", None, |d| d
        .process
        .as_ref()?
        .entry_leader
        .as_ref()
        .map(|p| &p.core));
    rows! { t;
        "process.entry_leader.same_as_process" => Boolean,
            |d| b(&d.process.as_ref()?.entry_leader.as_ref()?.same_as_process);
        "process.entry_leader.entry_meta.type" => Keyword,
            |d| s(&d.process.as_ref()?.entry_leader.as_ref()?.entry_meta.as_ref()?.r#type),
            probe: ProbeRead::Model(|p| Some(p.entry_type()?.map(FieldValue::Str)));
        "process.entry_leader.entry_meta.source.ip" => Keyword,
            |d| s(&d.process.as_ref()?.entry_leader.as_ref()?.entry_meta.as_ref()?
                .source.as_ref()?.ip);
    }
    ref_rows!(t, "process.entry_leader.parent", |d| d
        .process
        .as_ref()?
        .entry_leader
        .as_ref()?
        .parent
        .as_ref());
    ref_rows!(t, "process.entry_leader.parent.session_leader", |d| d
        .process
        .as_ref()?
        .entry_leader
        .as_ref()?
        .parent
        .as_ref()?
        .session_leader
        .as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::*;

    #[test]
    fn resolves_known_and_rejects_unknown() {
        let sc = schema();
        for p in [
            "process.name",
            "process.parent.args",
            "process.entry_leader.entry_meta.type",
            "process.session_leader.same_as_process",
            "container.id",
            "file.path",
            "container.security_context.privileged",
            "event.category",
            "host.os.type",
        ] {
            assert!(sc.resolve(p).is_some(), "{p} should resolve");
        }
        for p in [
            "process.nme",
            "process.parent.same_as_process",
            "proc",
            "",
            "process",
        ] {
            assert!(sc.resolve(p).is_none(), "{p} should not resolve");
        }
        assert_eq!(sc.resolve("process.pid").unwrap().ty, FieldType::Long);
        assert_eq!(
            sc.resolve("process.interactive").unwrap().ty,
            FieldType::Boolean
        );
        assert_eq!(sc.resolve("process.start").unwrap().ty, FieldType::Date);
    }

    #[test]
    fn reads_values_and_missing() {
        let mut doc = EcsDocument::process_event("exec", "start");
        doc.process = Some(Process {
            core: ProcessCore {
                pid: Some(42),
                name: Some("ssh".into()),
                args: vec!["ssh".into(), "-V".into()],
                interactive: Some(false),
                ..Default::default()
            },
            ..Default::default()
        });
        let sc = schema();
        let get = |p: &str| doc.field(sc.resolve(p).unwrap().id);
        assert_eq!(get("process.pid"), FieldValue::Long(42));
        assert_eq!(get("process.name"), FieldValue::Str("ssh"));
        assert!(matches!(get("process.args"), FieldValue::Strs(a) if a.len() == 2));
        assert_eq!(get("process.interactive"), FieldValue::Bool(false));
        assert_eq!(get("event.action"), FieldValue::Str("exec"));
        assert_eq!(get("ecs.version"), FieldValue::Str(ECS_VERSION));
        assert_eq!(get("container.id"), FieldValue::Missing);
        assert_eq!(get("process.parent.name"), FieldValue::Missing);
        assert_eq!(get("file.path"), FieldValue::Missing);
        assert_eq!(doc.field(FieldId(u16::MAX)), FieldValue::Missing);
    }
}
