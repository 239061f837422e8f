//! Test-only schema and document: a table of field paths and types, documents built from
//! JSON. The real ECS schema replaces this in production.

use serde_json::Value;

use crate::ecs::field::{Document, FieldDef, FieldId, FieldType, FieldValue, Schema};

/// The fields the tests use, with ECS types.
const FIELDS: &[(&str, FieldType)] = &[
    ("event.category", FieldType::Keyword),
    ("event.type", FieldType::Keyword),
    ("event.action", FieldType::Keyword),
    ("event.kind", FieldType::Keyword),
    ("@timestamp", FieldType::Date),
    ("host.os.type", FieldType::Keyword),
    ("container.id", FieldType::Keyword),
    ("container.security_context.privileged", FieldType::Boolean),
    ("process.name", FieldType::Keyword),
    ("process.executable", FieldType::Keyword),
    ("process.args", FieldType::Keyword),
    ("process.command_line", FieldType::Keyword),
    ("process.pid", FieldType::Long),
    ("process.args_count", FieldType::Long),
    ("process.interactive", FieldType::Boolean),
    ("process.working_directory", FieldType::Keyword),
    ("process.parent.name", FieldType::Keyword),
    ("process.parent.args", FieldType::Keyword),
    ("process.parent.executable", FieldType::Keyword),
    ("process.parent.interactive", FieldType::Boolean),
    ("process.entry_leader.entry_meta.type", FieldType::Keyword),
    ("process.entry_leader.same_as_process", FieldType::Boolean),
    ("process.session_leader.same_as_process", FieldType::Boolean),
    ("process.parent.entity_id", FieldType::Keyword),
    ("user.id", FieldType::Keyword),
    ("file.path", FieldType::Keyword),
    ("file.name", FieldType::Keyword),
    ("file.extension", FieldType::Keyword),
];

/// A fixed table schema.
pub struct TestSchema;

impl Schema for TestSchema {
    fn resolve(&self, path: &str) -> Option<FieldDef> {
        FIELDS
            .iter()
            .position(|(p, _)| *p == path)
            .map(|i| FieldDef {
                id: FieldId(i as u16),
                ty: FIELDS[i].1,
            })
    }
}

/// A document with values by field id, built from a flat JSON object (`{"process.name": …}`).
pub struct TestDoc {
    /// Indexed by field id, so field access costs about what a typed struct's does.
    values: Vec<Option<Stored>>,
}

enum Stored {
    Str(String),
    Strs(Vec<String>),
    Long(i64),
    Bool(bool),
}

impl TestDoc {
    /// Panics on unknown fields or unsupported JSON (tests only).
    pub fn from_json(v: &Value) -> Self {
        Self::from_json_with(&TestSchema, v)
    }

    /// Same, resolving field paths through another schema.
    pub fn from_json_with(schema: &dyn Schema, v: &Value) -> Self {
        let mut values: Vec<Option<Stored>> = Vec::new();
        for (k, v) in v.as_object().expect("object") {
            let def = schema
                .resolve(k)
                .unwrap_or_else(|| panic!("unknown test field {k}"));
            let s = match v {
                Value::Null => continue,
                Value::String(s) => Stored::Str(s.clone()),
                Value::Array(a) => Stored::Strs(
                    a.iter()
                        .map(|x| x.as_str().expect("string array").to_string())
                        .collect(),
                ),
                Value::Number(n) => Stored::Long(n.as_i64().expect("i64")),
                Value::Bool(b) => Stored::Bool(*b),
                Value::Object(_) => panic!("flat documents only"),
            };
            let i = def.id.0 as usize;
            if values.len() <= i {
                values.resize_with(i + 1, || None);
            }
            values[i] = Some(s);
        }
        TestDoc { values }
    }
}

impl Document for TestDoc {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        match self.values.get(id.0 as usize).and_then(Option::as_ref) {
            None => FieldValue::Missing,
            Some(Stored::Str(s)) => FieldValue::Str(s),
            Some(Stored::Strs(a)) => FieldValue::Strs(a),
            Some(Stored::Long(n)) => FieldValue::Long(*n),
            Some(Stored::Bool(b)) => FieldValue::Bool(*b),
        }
    }
}

/// A rule named after its query, compiled against [`TestSchema`]; panics on a compile error.
pub fn rule(q: &str) -> crate::rules::Rule {
    crate::rules::Rule {
        meta: crate::rules::RuleMeta {
            name: q.to_string(),
            ..Default::default()
        },
        query: q.to_string(),
        path: "test".into(),
        compiled: crate::rules::compile_query(q, &TestSchema)
            .unwrap_or_else(|e| panic!("{q}: {e}")),
    }
}

/// Runs a table of `(condition, document, expected)` rows through `eval` and fails once,
/// listing every row that disagreed (a table stops at no single failure).
pub fn check_table(rows: &[(&str, Value, bool)], eval: impl Fn(&str, &Value) -> bool) {
    let mut failures = Vec::new();
    for (cond, doc, want) in rows {
        let got = eval(cond, doc);
        if got != *want {
            failures.push(format!("{cond}  on {doc}: got {got}, want {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A small xorshift generator: the same random sequences on every run, so failures
/// reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
