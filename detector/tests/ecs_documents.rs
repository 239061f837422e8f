//! ECS documents and alerts against ECS 9.4 (`ecs_flat.yml`): every field we can emit exists
//! there with a compatible type; the field table agrees with serialization; round trips.
//! The tests about ECS itself gate on the schema (`DETECTOR_ECS_FLAT`, see
//! [`detector::testsupport`]).

#[path = "common/ecs_fixture.rs"]
mod ecs_fixture;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;

use detector::ecs::field::{Document, FieldType, FieldValue, Schema};
use detector::ecs::{EcsDocument, schema, text};
use detector::testsupport::{Corpus, Need, require};
use ecs_fixture::{full_alert, full_event};
use ecs_validate::{ecs_field, validate_ecs};
use serde_json::{Value, json};

/// What the tests about ECS itself need.
const ECS: &[Need] = &[Need::EcsSchema];

/// Every leaf path of a JSON object (arrays are leaves).
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            leaves(x, &p, out);
        }
    } else {
        out.push((prefix.to_owned(), v.clone()));
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    // `@timestamp` and other single keys; otherwise walk objects.
    if let Some(x) = v.get(path) {
        return Some(x);
    }
    path.split('.').try_fold(v, |cur, k| cur.get(k))
}

#[test]
fn full_event_and_alert_validate_against_ecs() {
    if !require("full_event_and_alert_validate_against_ecs", ECS) {
        return;
    }
    for (what, doc) in [("event", full_event()), ("alert", full_alert())] {
        let v = serde_json::to_value(&doc).unwrap();
        let errors = validate_ecs(&v);
        assert!(errors.is_empty(), "{what}: {errors:#?}");
    }
    let skeleton = serde_json::to_value(EcsDocument::process_event("fork", "start")).unwrap();
    assert!(validate_ecs(&skeleton).is_empty());
}

#[test]
fn fixture_populates_every_field_and_table_matches_json() {
    let doc = full_alert();
    let v = serde_json::to_value(&doc).unwrap();
    let sc = schema();
    // Every table field reads the value found at its path in the JSON (or is one of the
    // never-populated fields, which read Missing).
    for (path, _) in sc.fields() {
        let got = doc.field(sc.resolve(path).unwrap().id);
        if sc.is_unpopulated(path) {
            assert_eq!(got, FieldValue::Missing, "{path}");
            continue;
        }
        let json = get(&v, path).unwrap_or_else(|| panic!("{path}: not populated by fixture"));
        let as_json = match got {
            FieldValue::Missing => panic!("{path}: reads Missing"),
            FieldValue::Str(s) => json!(s),
            FieldValue::Strs(a) => json!(a),
            FieldValue::StaticStrs(a) => json!(a),
            FieldValue::Long(n) => json!(n),
            FieldValue::Bool(b) => json!(b),
        };
        let json = if path == "event.risk_score" {
            json!(json.as_f64().unwrap() as i64)
        } else {
            json.clone()
        };
        assert_eq!(as_json, json, "{path}");
    }
    // And every JSON leaf is a field of the table: no serialized field escapes the rules.
    let mut all = Vec::new();
    leaves(&v, "", &mut all);
    for (path, _) in &all {
        assert!(
            sc.resolve(path).is_some(),
            "{path}: serialized but not in the field table"
        );
    }
    assert!(all.len() > 150, "only {} leaves", all.len());
}

#[test]
fn table_types_agree_with_ecs() {
    if !require("table_types_agree_with_ecs", ECS) {
        return;
    }
    for (path, ty) in schema().fields() {
        // Our own fields, and Auditbeat's auditd module fields (not ECS) that sequence
        // rules of the Linux corpus read.
        if path.starts_with("detector.") || path.starts_with("auditd.") {
            continue;
        }
        let f = ecs_field(path).unwrap_or_else(|| panic!("{path}: not in ECS"));
        let want = match f.ty.as_str() {
            "keyword" | "wildcard" | "constant_keyword" | "match_only_text" | "ip" => {
                FieldType::Keyword
            }
            "long" | "integer" => FieldType::Long,
            "boolean" => FieldType::Boolean,
            "date" => FieldType::Date,
            // event.risk_score: ECS float, read as a whole number (documented).
            "float" => FieldType::Long,
            other => panic!("{path}: unexpected ECS type {other}"),
        };
        assert_eq!(ty, want, "{path}");
    }
}

#[test]
fn validator_catches_wrong_documents() {
    if !require("validator_catches_wrong_documents", ECS) {
        return;
    }
    let base = serde_json::to_value(full_event()).unwrap();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "not an ECS",
            Box::new(|v| v["process"]["nmae"] = json!("x")),
        ),
        (
            "not an ECS",
            Box::new(|v| v["proces"] = json!({"name": "x"})),
        ),
        (
            "incompatible",
            Box::new(|v| v["process"]["pid"] = json!("42")),
        ),
        (
            "incompatible",
            Box::new(|v| v["process"]["name"] = json!(42)),
        ),
        (
            "incompatible",
            Box::new(|v| v["process"]["interactive"] = json!("true")),
        ),
        (
            "incompatible",
            Box::new(|v| v["process"]["start"] = json!("yesterday")),
        ),
        (
            "incompatible",
            Box::new(|v| v["host"]["pid_ns_ino"] = json!(4026531836u64)),
        ),
        (
            "incompatible",
            Box::new(|v| {
                v["process"]["entry_leader"]["entry_meta"]["source"]["ip"] = json!("nope")
            }),
        ),
        (
            "array given",
            Box::new(|v| v["process"]["name"] = json!(["a", "b"])),
        ),
        (
            "not an allowed",
            Box::new(|v| v["event"]["kind"] = json!("signal-ish")),
        ),
        (
            "not an allowed",
            Box::new(|v| v["event"]["type"] = json!(["begin"])),
        ),
        (
            "null value",
            Box::new(|v| v["process"]["executable"] = Value::Null),
        ),
        (
            "empty object",
            Box::new(|v| v["process"]["tty"] = json!({})),
        ),
        ("empty array", Box::new(|v| v["tags"] = json!([]))),
        (
            "not an ECS",
            Box::new(|v| v["process"]["parent"]["same_as_process"] = json!(true)),
        ),
        (
            "custom detector",
            Box::new(|v| v["detector"]["cgroup"]["inode"] = json!(1)),
        ),
        (
            "incompatible",
            Box::new(|v| v["detector"]["cgroup"]["id"] = json!("1")),
        ),
        (
            "needs an object",
            Box::new(|v| v["process"]["tty"] = json!("pts/1")),
        ),
    ];
    for (i, (want, mutate)) in cases.iter().enumerate() {
        let mut v = base.clone();
        mutate(&mut v);
        let errors = validate_ecs(&v);
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "case {i}: expected an error containing {want:?}, got {errors:#?}"
        );
    }
    assert!(!validate_ecs(&json!([1])).is_empty());
}

#[test]
fn rule_version_must_be_a_string() {
    if !require("rule_version_must_be_a_string", ECS) {
        return;
    }
    let mut v = serde_json::to_value(full_alert()).unwrap();
    assert!(v["rule"]["version"].is_string());
    v["rule"]["version"] = json!(2);
    assert!(!validate_ecs(&v).is_empty());
}

#[test]
fn documents_round_trip_through_ndjson() {
    for doc in [full_event(), full_alert(), EcsDocument::default()] {
        let line = serde_json::to_string(&doc).unwrap();
        assert!(!line.contains('\n'));
        let back: EcsDocument = serde_json::from_str(&line).unwrap();
        assert_eq!(back, doc);
    }
}

#[test]
fn hostile_bytes_stay_one_valid_json_line() {
    let mut doc = full_event();
    let p = &mut doc.process.as_mut().unwrap().core;
    p.args = vec![
        text(b"\xff\xfe invalid utf8"),
        text(b"new\nline\r\0nul\x1b[31m"),
        text(b"\"quoted\\\""),
        text(&vec![b'A'; 2 << 20]),
    ];
    p.executable = Some(text(b"/tmp/\xc3(\n"));
    let line = serde_json::to_vec(&doc).unwrap();
    assert!(!line.contains(&b'\n'), "raw newline inside the line");
    assert!(
        line.iter().all(|&b| b >= 0x20),
        "raw control byte inside the line"
    );
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["process"]["args"][1], "new\nline\r\0nul\x1b[31m");
    assert_eq!(v["process"]["args"][3].as_str().unwrap().len(), 2 << 20);
    assert!(validate_ecs(&v).is_empty());
}

#[test]
fn deserializes_a_foreign_document_keeping_what_it_models() {
    let line = r#"{"@timestamp":"2026-01-01T00:00:00Z","event":{"kind":"event","type":["start"],
        "action":"exec","ingested":"2026-01-01T00:00:01Z"},"process":{"name":"sshd","pid":7,
        "args":["sshd","-D"],"parent":{"name":"containerd-shim"},"hash":{"md5":"x"}},
        "container":{"id":"abc"},"cloud":{"provider":"aws"}}"#;
    let doc: EcsDocument = serde_json::from_str(line).unwrap();
    let sc = schema();
    let get = |p: &str| doc.field(sc.resolve(p).unwrap().id);
    assert_eq!(get("process.name"), FieldValue::Str("sshd"));
    assert_eq!(get("process.pid"), FieldValue::Long(7));
    assert_eq!(
        get("process.parent.name"),
        FieldValue::Str("containerd-shim")
    );
    assert_eq!(get("container.id"), FieldValue::Str("abc"));
    assert!(matches!(get("event.type"), FieldValue::Strs(t) if t == ["start"]));
    // A type mismatch is an error, not a silent default.
    assert!(serde_json::from_str::<EcsDocument>(r#"{"process":{"pid":"seven"}}"#).is_err());
}

/// Every ECS field that a query of the container-rule corpora names resolves in our schema
/// (populated or in `UNPOPULATED_FIELDS`), so those rules can compile. (Elastic's Linux
/// rules are not among them: they name network and file fields this engine does not have.)
#[test]
fn corpus_ecs_fields_resolve() {
    let corpora = [
        Corpus::Seed,
        Corpus::CloudDefend,
        Corpus::CloudDefendRelated,
    ];
    let mut needs = vec![Need::EcsSchema];
    needs.extend(corpora.map(Need::Corpus));
    if !require("corpus_ecs_fields_resolve", &needs) {
        return;
    }
    let dirs = corpora.map(detector::testsupport::corpus);
    let ident = regex::Regex::new(r"[A-Za-z_@][A-Za-z0-9_@]*(\.[A-Za-z0-9_@]+)+").unwrap();
    let strings =
        regex::Regex::new(r#"(?s)"""(.*?)"""|"(\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*"#).unwrap();
    let mut checked = 0;
    let (files, errors) = detector::rules::collect_rule_files(&dirs);
    assert!(errors.is_empty(), "{errors:?}");
    for f in files {
        if f.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let t: toml::Value = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let Some(q) = t["rule"].get("query").and_then(|q| q.as_str()) else {
            continue;
        };
        let q = strings.replace_all(q, "\"\"");
        for m in ident.find_iter(&q) {
            let path = m.as_str();
            if ecs_field(path).is_some() && !path.starts_with("kubernetes.") {
                assert!(schema().resolve(path).is_some(), "{}: {path}", f.display());
                checked += 1;
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} field references found under {dirs:?}"
    );
}
