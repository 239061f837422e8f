//! ECS 9.4 validator for tests: checks that every field of a JSON document exists in
//! `ecs_flat.yml` with a compatible type, or is a known field of our custom `detector.*`
//! namespace.
//!
//! Use from an integration test (no `mod common` needed, so it merges with other helpers):
//! ```ignore
//! #[path = "common/ecs_validate.rs"]
//! mod ecs_validate;
//! let errors = ecs_validate::validate_ecs(&serde_json::to_value(&doc).unwrap());
//! assert!(errors.is_empty(), "{errors:#?}");
//! ```
//! The schema is found by [`detector::testsupport::ecs_flat`] (`DETECTOR_ECS_FLAT`, else the
//! shared directory). Without it, [`validate_ecs`] checks nothing and the calling test is
//! listed as not having run its ECS validation (under `CI=true` it fails instead); tests
//! about ECS itself gate on [`Need::EcsSchema`] first.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::OnceLock;

use detector::ecs::field::{FieldType, Schema};
use detector::testsupport::{Need, current_test, require};
use serde_json::Value;

/// One ECS field definition, as far as validation needs it.
#[derive(Debug, serde::Deserialize)]
pub struct EcsField {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub normalize: Vec<String>,
    #[serde(default)]
    pub allowed_values: Vec<AllowedValue>,
}

#[derive(Debug, serde::Deserialize)]
pub struct AllowedValue {
    pub name: String,
}

impl EcsField {
    pub fn is_array(&self) -> bool {
        self.normalize.iter().any(|n| n == "array")
    }
}

/// The schema's gate for a test that validates documents as one check among others:
/// false (the test's ECS validation is listed as not run) when the schema is missing.
pub fn schema_available() -> bool {
    require(
        &format!("{} (its ECS 9.4 validation)", current_test()),
        &[Need::EcsSchema],
    )
}

struct Ecs {
    fields: HashMap<String, EcsField>,
    /// Every proper prefix of a field path (`process`, `process.parent`, …).
    prefixes: HashSet<String>,
}

fn ecs() -> &'static Ecs {
    static ECS: OnceLock<Ecs> = OnceLock::new();
    ECS.get_or_init(|| {
        let path = detector::testsupport::ecs_flat();
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let fields: HashMap<String, EcsField> = serde_yaml_ng::from_reader(file)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let mut prefixes = HashSet::new();
        for k in fields.keys() {
            let mut end = 0;
            while let Some(i) = k[end..].find('.') {
                end += i;
                prefixes.insert(k[..end].to_owned());
                end += 1;
            }
        }
        Ecs { fields, prefixes }
    })
}

/// The ECS definition of a dotted path, if ECS has it.
pub fn ecs_field(path: &str) -> Option<&'static EcsField> {
    ecs().fields.get(path)
}

/// All errors of a document: unknown fields, wrong types, arrays where ECS has a single
/// value, values outside `allowed_values`, `null`s, empty objects or arrays.
/// Without the schema: none (see the module docs).
pub fn validate_ecs(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if !schema_available() {
        return errors;
    }
    match doc {
        Value::Object(_) => walk(doc, "", &mut errors),
        _ => errors.push("document is not a JSON object".into()),
    }
    errors
}

fn walk(v: &Value, prefix: &str, errors: &mut Vec<String>) {
    let Value::Object(map) = v else {
        unreachable!()
    };
    if map.is_empty() && !prefix.is_empty() {
        errors.push(format!("{prefix}: empty object"));
    }
    let ecs = ecs();
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if path == "detector" || path.starts_with("detector.") {
            custom(v, &path, errors);
            continue;
        }
        if k == "Ext" {
            defend(v, &path, errors);
            continue;
        }
        if path == "kibana" {
            kibana(v, &path, errors);
            continue;
        }
        match ecs.fields.get(&path) {
            Some(f) if matches!(f.ty.as_str(), "object" | "flattened" | "nested") => {
                let objects = match v {
                    Value::Array(a) if f.ty == "nested" => a.iter().all(Value::is_object),
                    other => other.is_object(),
                };
                if !objects {
                    errors.push(format!(
                        "{path}: ECS type {} needs an object, got {v}",
                        f.ty
                    ));
                } else if f.ty == "object" && ecs.prefixes.contains(&path) {
                    // ECS defines this object's children (process.tty.char_device.*).
                    walk(v, &path, errors);
                }
            }
            Some(f) => leaf(v, &path, f, errors),
            None if v.is_object() && ecs.prefixes.contains(&path) => walk(v, &path, errors),
            None => errors.push(format!("{path}: not an ECS 9.4 field")),
        }
    }
}

fn leaf(v: &Value, path: &str, f: &EcsField, errors: &mut Vec<String>) {
    let values: Vec<&Value> = match v {
        Value::Array(a) => {
            if !f.is_array() {
                errors.push(format!("{path}: array given for a single-valued ECS field"));
            }
            if a.is_empty() {
                errors.push(format!("{path}: empty array"));
            }
            a.iter().collect()
        }
        other => vec![other],
    };
    for x in values {
        if let Some(why) = type_error(x, &f.ty) {
            errors.push(format!("{path}: {why} (ECS type {}), got {x}", f.ty));
        } else if !f.allowed_values.is_empty() {
            let s = x.as_str().unwrap_or_default();
            if !f.allowed_values.iter().any(|a| a.name == s) {
                errors.push(format!("{path}: {x} is not an allowed value"));
            }
        }
    }
}

/// Why a JSON value does not fit an ECS type (`None` when it fits).
fn type_error(x: &Value, ty: &str) -> Option<&'static str> {
    let ok = match (ty, x) {
        (_, Value::Null) => return Some("null value"),
        ("keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text", v) => {
            v.is_string()
        }
        ("ip", Value::String(s)) => s.parse::<IpAddr>().is_ok(),
        ("long" | "integer" | "short" | "byte", v) => v.is_i64() || v.is_u64(),
        ("unsigned_long", v) => v.is_u64(),
        ("float" | "double" | "half_float" | "scaled_float", v) => v.is_number(),
        ("boolean", v) => v.is_boolean(),
        ("date", Value::String(s)) => is_rfc3339(s),
        ("geo_point", v) => v.is_object() || v.is_string(),
        _ => false,
    };
    (!ok).then_some("incompatible value")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn is_rfc3339(s: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
            .unwrap()
    })
    .is_match(s)
}

/// Elastic Defend's `*.Ext.*`: each leaf must be one of `detector::ecs::DEFEND_FIELDS`, a
/// string (they are keywords).
fn defend(v: &Value, path: &str, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                defend(v, &format!("{path}.{k}"), errors);
            }
        }
        Value::String(_) if detector::ecs::DEFEND_FIELDS.contains(&path) => {}
        _ => errors.push(format!(
            "{path}: not an Elastic Defend field we document (DEFEND_FIELDS), or not a string"
        )),
    }
}

/// Kibana's alerts-as-data fields a sequence's lines carry to link its building blocks
/// (`kibana.alert.*`, Kibana's `technical_field_names`), with their mapped types.
const KIBANA_FIELDS: &[(&str, &str)] = &[
    ("kibana.alert.uuid", "keyword"),
    ("kibana.alert.building_block_type", "keyword"),
    ("kibana.alert.group.id", "keyword"),
    ("kibana.alert.group.index", "long"),
];

/// `kibana.*`: each leaf must be one of [`KIBANA_FIELDS`], with a fitting type.
fn kibana(v: &Value, path: &str, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                kibana(v, &format!("{path}.{k}"), errors);
            }
        }
        _ => match KIBANA_FIELDS.iter().find(|(p, _)| *p == path) {
            Some((_, ty)) => {
                if let Some(why) = type_error(v, ty) {
                    errors.push(format!("{path}: {why} (Kibana type {ty}), got {v}"));
                }
            }
            None => errors.push(format!("{path}: not a Kibana alert field we write")),
        },
    }
}

/// The custom namespace: each leaf must be a field of our schema, with a fitting type.
fn custom(v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Value::Object(map) = v {
        if map.is_empty() {
            errors.push(format!("{path}: empty object"));
        }
        for (k, v) in map {
            custom(v, &format!("{path}.{k}"), errors);
        }
        return;
    }
    let Some(def) = detector::ecs::schema().resolve(path) else {
        errors.push(format!(
            "{path}: not a field of the custom detector.* namespace"
        ));
        return;
    };
    let ty = match def.ty {
        FieldType::Keyword => "keyword",
        FieldType::Long => "long",
        FieldType::Boolean => "boolean",
        FieldType::Date => "date",
    };
    match v {
        // The join key keeps one position per key, `null` where a key was missing.
        Value::Array(a) if path == "detector.sequence.join_key" => {
            for x in a.iter().filter(|x| !x.is_null()) {
                if let Some(why) = type_error(x, ty) {
                    errors.push(format!("{path}: {why} (type {ty}), got {x}"));
                }
            }
        }
        Value::Array(_) => errors.push(format!("{path}: array in the custom namespace")),
        _ => {
            if let Some(why) = type_error(v, ty) {
                errors.push(format!("{path}: {why} (type {ty}), got {v}"));
            }
        }
    }
}
