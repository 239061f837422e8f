//! What a compiled rule can see on this daemon's documents: which fields it reads that we
//! never fill, and whether it can never match because of them (with the fields to blame
//! and the kind of data they are).
//!
//! "Never matches" is decided with the rules' probe machinery ([`Node::eval3`], what
//! `RuleSet::may_match_probe` evaluates): the rule is recompiled against a view of the
//! schema that gives each never-filled field an id of its own, and evaluated over a probe
//! that answers `Missing` for those and "unknown" for every field we fill. `Some(false)`
//! means false whatever our documents hold. The fields to blame are those whose value,
//! made unknown alone, lets the rule match again; when no single field does (several
//! conditions on missing data, all needed), every never-filled field it reads is named.
//!
//! The verdict is about fields only: a rule that wants an `event.action` we never write
//! is not caught here (its fields are filled, the values are not).

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::ecs::field::{FieldDef, FieldId, FieldValue, Probe, Schema};
use crate::ecs::{EcsSchema, FieldStatus};
use crate::rules::Rule;
use crate::rules::eql::ast::{Expr, Statement, Value};
use crate::rules::eql::parser;

/// The kind of data a never-filled field belongs to (what a rule needing it lacks here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// File events (`file.*`).
    File,
    /// Network events and connection data (`destination.*`, `source.*`, `network.*`,
    /// `dns.*`, `url.*`, …).
    Network,
    /// Audit records of the Auditd Manager integration (`auditd.*`).
    Audit,
    /// Kernel-module or library load events (`process.Ext.load_module.*`, `dll.*`, …).
    ModuleLoad,
    /// Windows registry events (`registry.*`).
    Registry,
    /// Kubernetes API audit logs (`kubernetes.*`).
    KubernetesAudit,
    /// Which integration or data stream wrote the event, and its outcome
    /// (`data_stream.*`, `event.outcome`, `event.code`, …): events of another source.
    EventSource,
    /// A process attribute we do not capture (`process.*`, `user.*`, `group.*` …).
    Process,
    /// Container or orchestrator metadata we do not capture (`container.*`,
    /// `orchestrator.*`).
    Container,
    /// Anything else.
    Other,
}

impl DataClass {
    /// The class of a never-filled field.
    pub fn of(path: &str) -> DataClass {
        let top = |p: &str| path == p || path.starts_with(&format!("{p}."));
        if top("file") {
            DataClass::File
        } else if [
            "destination",
            "source",
            "network",
            "dns",
            "url",
            "http",
            "tls",
            "server",
            "client",
        ]
        .into_iter()
        .any(top)
        {
            DataClass::Network
        } else if top("auditd") {
            DataClass::Audit
        } else if top("process.Ext.load_module") || top("dll") || top("library") {
            DataClass::ModuleLoad
        } else if top("registry") {
            DataClass::Registry
        } else if top("kubernetes") {
            DataClass::KubernetesAudit
        } else if top("data_stream")
            || [
                "event.outcome",
                "event.code",
                "event.provider",
                "event.reason",
            ]
            .contains(&path)
        {
            DataClass::EventSource
        } else if ["process", "user", "group"].into_iter().any(top) {
            DataClass::Process
        } else if top("container") || top("orchestrator") {
            DataClass::Container
        } else {
            DataClass::Other
        }
    }

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            DataClass::File => "file",
            DataClass::Network => "network",
            DataClass::Audit => "audit",
            DataClass::ModuleLoad => "module_load",
            DataClass::Registry => "registry",
            DataClass::KubernetesAudit => "kubernetes_audit",
            DataClass::EventSource => "event_source",
            DataClass::Process => "process",
            DataClass::Container => "container",
            DataClass::Other => "other",
        }
    }
}

/// What one compiled rule can see here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reach {
    /// Fields the rule reads that no document of ours carries (sorted).
    pub never_filled: Vec<String>,
    /// `Some` when the rule can never match our documents: the fields to blame.
    pub never_matches: Option<Vec<String>>,
}

impl Reach {
    /// The classes of the fields to blame (empty when the rule may match).
    pub fn classes(&self) -> BTreeSet<DataClass> {
        self.never_matches
            .iter()
            .flatten()
            .map(|f| DataClass::of(f))
            .collect()
    }
}

/// First id given to a never-filled field by [`Distinct`]: above every table row.
const DISTINCT_BASE: u16 = 0x8000;

/// The schema, with an id of its own for each never-filled field (in order of first use).
struct Distinct<'s> {
    inner: &'s EcsSchema,
    never: RefCell<Vec<String>>,
}

impl Schema for Distinct<'_> {
    fn resolve(&self, path: &str) -> Option<FieldDef> {
        match self.inner.status(path) {
            FieldStatus::NeverFilled(ty, _) => {
                let mut never = self.never.borrow_mut();
                let i = match never.iter().position(|p| p == path) {
                    Some(i) => i,
                    None => {
                        never.push(path.to_owned());
                        never.len() - 1
                    }
                };
                let i = u16::try_from(i).ok()?;
                Some(FieldDef {
                    id: FieldId(DISTINCT_BASE.checked_add(i)?),
                    ty,
                })
            }
            FieldStatus::Filled(_) | FieldStatus::Unknown => self.inner.resolve(path),
        }
    }
}

/// Answers `Missing` for the never-filled ids of [`Distinct`] but `unknown`, and nothing
/// for the rest.
struct MissingProbe {
    unknown: Option<FieldId>,
}

impl Probe for MissingProbe {
    fn field(&self, id: FieldId) -> Option<FieldValue<'_>> {
        (id.0 >= DISTINCT_BASE && Some(id) != self.unknown).then_some(FieldValue::Missing)
    }
}

/// What `rule` (compiled against `schema`) can see of our documents.
pub fn reach(rule: &Rule, schema: &EcsSchema) -> Reach {
    let mut read = BTreeSet::new();
    if let Ok(Statement::Event(q)) = parser::parse(&rule.query) {
        expr_fields(&q.expr, &mut read);
    }
    let never_filled: Vec<String> = read
        .into_iter()
        .filter(|(path, optional)| match schema.status(path) {
            FieldStatus::NeverFilled(..) => true,
            // `?unknown`: compiled as always missing.
            FieldStatus::Unknown => *optional,
            FieldStatus::Filled(_) => false,
        })
        .map(|(path, _)| path)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut r = Reach {
        never_filled,
        never_matches: None,
    };
    if r.never_filled.is_empty() {
        return r;
    }
    let distinct = Distinct {
        inner: schema,
        never: RefCell::new(Vec::new()),
    };
    let Ok(q) = crate::rules::compile_query(&rule.query, &distinct) else {
        return r;
    };
    if q.root.eval3(&MissingProbe { unknown: None }) != Some(false) {
        return r;
    }
    let never = distinct.never.into_inner();
    let mut blame: Vec<String> = never
        .iter()
        .enumerate()
        .filter(|&(i, _)| {
            let unknown = Some(FieldId(DISTINCT_BASE + i as u16));
            q.root.eval3(&MissingProbe { unknown }) != Some(false)
        })
        .map(|(_, p)| p.clone())
        .collect();
    if blame.is_empty() {
        blame = r.never_filled.clone();
    }
    blame.sort();
    r.never_matches = Some(blame);
    r
}

/// Every field reference (path, written `?path`) of an expression.
fn expr_fields(e: &Expr, out: &mut BTreeSet<(String, bool)>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| expr_fields(e, out)),
        Expr::Not(e) => expr_fields(e, out),
        Expr::Bool(_) => {}
        Expr::Compare { left, right, .. } => {
            value_fields(left, out);
            value_fields(right, out);
        }
        Expr::In { left, .. } | Expr::Match { left, .. } => value_fields(left, out),
        Expr::Call(c) => c.args.iter().for_each(|a| value_fields(a, out)),
    }
}

fn value_fields(v: &Value, out: &mut BTreeSet<(String, bool)>) {
    match v {
        Value::Field(f) => {
            out.insert((f.path.clone(), f.optional));
        }
        Value::Lit(_) => {}
        Value::Call(c) => c.args.iter().for_each(|a| value_fields(a, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::schema;

    fn rule(query: &str) -> Rule {
        let text = format!(
            "[rule]\nname = \"t\"\ndescription = \"d\"\nrisk_score = 21\nrule_id = \"x\"\nseverity = \"low\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
        );
        crate::rules::parse_rule(std::path::Path::new("t.toml"), &text, schema()).unwrap()
    }

    fn blame(q: &str) -> Option<Vec<String>> {
        reach(&rule(q), schema()).never_matches
    }

    #[test]
    fn never_filled_fields_and_the_ones_to_blame() {
        let sc = schema();
        let r = reach(&rule(r#"process where process.name == "a""#), sc);
        assert_eq!(r, Reach::default());
        // Reads a never-filled field but may match (negated).
        let r = reach(
            &rule(r#"process where process.name == "a" and not file.path : "/tmp/*""#),
            sc,
        );
        assert_eq!(r.never_filled, ["file.path"]);
        assert_eq!(r.never_matches, None);
        assert_eq!(
            blame(
                r#"process where process.name == "a" and file.path : "/tmp/*" and not dns.question.name == "x""#
            ),
            Some(vec!["file.path".into()])
        );
        // Either branch needs missing data: both are to blame, alone each would do.
        assert_eq!(
            blame(r#"process where auditd.data.syscall == "kill" or destination.port == 22"#),
            Some(vec![
                "auditd.data.syscall".into(),
                "destination.port".into()
            ])
        );
        // Both needed: neither alone lets it match, so every never-filled field is named.
        assert_eq!(
            blame(r#"process where file.name == "a" and source.ip == "1.2.3.4""#),
            Some(vec!["file.name".into(), "source.ip".into()])
        );
        // Functions over missing values, `?unknown` fields, UNPOPULATED rows.
        assert_eq!(
            blame(r#"process where startsWith(file.path, "/etc")"#),
            Some(vec!["file.path".into()])
        );
        let r = reach(
            &rule(r#"process where ?foo.bar == "x" and process.name == "a""#),
            sc,
        );
        assert_eq!(r.never_filled, ["foo.bar"]);
        assert_eq!(r.never_matches, Some(vec!["foo.bar".into()]));
        assert_eq!(
            blame(r#"process where data_stream.dataset == "auditd_manager.auditd""#),
            Some(vec!["data_stream.dataset".into()])
        );
        // `!= null` on a missing field is false; `== null` is true.
        assert!(blame("process where process.Ext.load_module.taint_flags != null").is_some());
        assert!(blame("process where process.title == null").is_none());
    }

    #[test]
    fn classes_by_field() {
        for (p, c) in [
            ("file.path", DataClass::File),
            ("file.Ext.original.name", DataClass::File),
            ("destination.ip", DataClass::Network),
            ("dns.question.name", DataClass::Network),
            ("auditd.data.a0", DataClass::Audit),
            ("process.Ext.load_module.taint_flags", DataClass::ModuleLoad),
            ("registry.path", DataClass::Registry),
            ("kubernetes.audit.verb", DataClass::KubernetesAudit),
            ("data_stream.dataset", DataClass::EventSource),
            ("event.outcome", DataClass::EventSource),
            ("process.env_vars", DataClass::Process),
            ("user.Ext.real.id", DataClass::Process),
            (
                "container.security_context.privileged",
                DataClass::Container,
            ),
            ("filesystem.x", DataClass::Other),
        ] {
            assert_eq!(DataClass::of(p), c, "{p}");
        }
    }
}
