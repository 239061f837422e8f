use std::collections::BTreeMap;

use super::*;
use crate::ecs::field::{Document, FieldValue, Schema};
use crate::ecs::{ECS_VERSION, EcsDocument, schema};
use crate::testsupport::{Corpus, Need, corpus, require};

/// Every `name type` line of the generated table.
fn lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    ecs94::FIELDS
        .lines()
        .map(|l| l.split_once(' ').expect("`name type` line"))
}

#[test]
fn table_is_sorted_unique_and_every_type_is_handled() {
    let mut prev = "";
    let mut n = 0;
    for (name, ty) in lines() {
        assert!(prev < name, "{prev} then {name}: not sorted or repeated");
        assert!(
            field_type(ty).is_some() || matches!(ty, "object" | "nested"),
            "{name}: ECS type {ty} is not mapped"
        );
        prev = name;
        n += 1;
    }
    assert!(n > 2000, "only {n} fields");
    assert_eq!(ecs_table_version(), ECS_VERSION);
}

#[test]
fn binary_search_finds_every_line_and_nothing_else() {
    for (name, ty) in lines() {
        assert_eq!(ecs_type(name), Some(ty), "{name}");
        // Neighbours of a real name are not names.
        for miss in [format!("{name}x"), format!("{name}.")] {
            if lines().all(|(n, _)| n != miss) {
                assert_eq!(ecs_type(&miss), None, "{miss}");
            }
        }
    }
    for miss in [
        "",
        "@",
        "a",
        "process",
        "process.nme",
        "zzzz",
        "~",
        "process.name ",
    ] {
        assert_eq!(ecs_type(miss), None, "{miss:?}");
    }
    assert_eq!(ecs_type("@timestamp"), Some("date"));
    assert_eq!(ecs_type("process.env_vars"), Some("keyword"));
    assert_eq!(
        ecs_type("process.parent.code_signature.trusted"),
        Some("boolean")
    );
}

/// The committed table is exactly the names and types of `ecs_flat.yml` (regenerate with
/// `cargo xtask ecs-fields` when this fails after an ECS update).
#[test]
fn committed_table_matches_ecs_flat() {
    if !require(
        "ecs::schema::known::tests::committed_table_matches_ecs_flat",
        &[Need::EcsSchema],
    ) {
        return;
    }
    #[derive(serde::Deserialize)]
    struct Flat {
        #[serde(rename = "type")]
        ty: String,
    }
    let path = crate::testsupport::ecs_flat();
    let text = std::fs::read_to_string(&path).unwrap();
    let want: BTreeMap<String, Flat> = serde_yaml_ng::from_str(&text).unwrap();
    let want: Vec<(&str, &str)> = want
        .iter()
        .map(|(k, v)| (k.as_str(), v.ty.as_str()))
        .collect();
    let got: Vec<(&str, &str)> = lines().collect();
    assert_eq!(
        got.len(),
        want.len(),
        "field count differs from {}",
        path.display()
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "stale table: run `cargo xtask ecs-fields`");
    }
}

#[test]
fn integration_fields_are_sorted_and_not_ecs() {
    let all = crate::ecs::INTEGRATION_FIELDS;
    assert!(all.windows(2).all(|w| w[0].path < w[1].path), "not sorted");
    for f in all {
        assert_eq!(ecs_type(f.path), None, "{} is ECS", f.path);
        assert!(!f.source.is_empty());
        assert_eq!(
            integration::integration_field(f.path).map(|e| e.path),
            Some(f.path)
        );
    }
    assert!(integration::integration_field("auditd.data").is_none());
}

#[test]
fn never_filled_fields_resolve_and_read_missing() {
    let sc = schema();
    for (p, ty) in [
        ("file.hash.sha256", FieldType::Keyword),
        ("dns.question.name", FieldType::Keyword),
        ("destination.port", FieldType::Long),
        ("process.parent.code_signature.trusted", FieldType::Boolean),
        ("file.created", FieldType::Date),
        ("auditd.data.syscall", FieldType::Keyword),
        ("process.Ext.load_module.taint_flags", FieldType::Keyword),
    ] {
        let def = sc
            .resolve(p)
            .unwrap_or_else(|| panic!("{p} should resolve"));
        assert_eq!((def.id, def.ty), (NEVER_FILLED, ty), "{p}");
        assert!(sc.is_never_filled(def.id));
        assert!(
            matches!(sc.status(p), FieldStatus::NeverFilled(t, _) if t == ty),
            "{p}"
        );
        let doc = EcsDocument::process_event("exec", "start");
        assert_eq!(doc.field(def.id), FieldValue::Missing);
    }
    // Not leaves, and not fields at all.
    for p in [
        "container.labels",
        "threat.enrichments",
        "process.nme",
        "auditd.data",
        "file",
    ] {
        assert!(sc.resolve(p).is_none(), "{p} should not resolve");
        assert_eq!(sc.status(p), FieldStatus::Unknown, "{p}");
    }
    // A filled field keeps its own row; an UNPOPULATED row is never filled.
    let name = sc.resolve("process.name").unwrap();
    assert_ne!(name.id, NEVER_FILLED);
    assert!(!sc.is_never_filled(name.id));
    assert_eq!(
        sc.status("process.name"),
        FieldStatus::Filled(FieldType::Keyword)
    );
    assert!(matches!(
        sc.status("file.path"),
        FieldStatus::NeverFilled(FieldType::Keyword, FieldSource::Ecs)
    ));
    assert!(sc.is_never_filled(sc.resolve("file.path").unwrap().id));
    assert!(matches!(
        sc.status("auditd.data.a0"),
        FieldStatus::NeverFilled(_, FieldSource::Integration(f)) if f.source.contains("Auditd")
    ));
}

#[test]
fn probes_know_never_filled_fields_are_missing() {
    use crate::ecs::field::Probe;
    let docs = crate::ecs::probe_testkit::builder();
    let snaps = crate::ecs::probe_testkit::snapshots(7, 5);
    let id = schema().resolve("dns.question.name").unwrap().id;
    for snap in &snaps {
        assert_eq!(docs.probe(snap).field(id), Some(FieldValue::Missing));
        let image = docs.image_probe(&snap.subject.image, snap.kind);
        assert_eq!(image.field(id), Some(FieldValue::Missing));
    }
}

/// Rules reading never-filled fields compile, read them as missing (`!=` and `not` true,
/// positive tests false), and unknown fields still fail.
#[test]
fn rules_compile_against_never_filled_fields() {
    use crate::rules::compile_query;
    let sc = schema();
    let doc = {
        let mut d = EcsDocument::process_event("exec", "start");
        d.process = Some(crate::ecs::Process {
            core: crate::ecs::ProcessCore {
                name: Some("curl".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        d
    };
    let m = |q: &str| compile_query(q, sc).unwrap().matches(&doc);
    assert!(!m(
        r#"process where process.name == "curl" and file.path == "/x""#
    ));
    assert!(m(
        r#"process where process.name == "curl" and file.path != "/x""#
    ));
    assert!(m(
        r#"process where process.name == "curl" and not auditd.data.syscall : "kill""#
    ));
    assert!(m(
        r#"process where process.name == "curl" and destination.port == null"#
    ));
    assert!(!m(
        r#"process where process.Ext.load_module.taint_flags != null"#
    ));
    assert!(!m(
        r#"process where dns.question.name : "*" or file.name == "a""#
    ));
    let e = compile_query(r#"process where process.nme == "curl""#, sc).unwrap_err();
    assert!(e.message.contains("unknown field `process.nme`"), "{e:?}");
    // Types come from ECS: a number against a keyword field is refused.
    let e = compile_query("process where file.path == 1", sc).unwrap_err();
    assert!(e.message.contains("keyword field `file.path`"), "{e:?}");
    assert!(compile_query("process where destination.port > 1024", sc).is_ok());
}

/// Every field any rule of the corpora reads is known (filled, ECS, or an integration
/// field of our list): the list in `integration.rs` is complete for them.
#[test]
fn every_field_the_corpora_read_is_known() {
    let corpora = [
        Corpus::ElasticLinux,
        Corpus::CloudDefend,
        Corpus::CloudDefendRelated,
        Corpus::Seed,
    ];
    if !require(
        "ecs::schema::known::tests::every_field_the_corpora_read_is_known",
        &corpora.map(Need::Corpus),
    ) {
        return;
    }
    let dirs = corpora.map(corpus);
    let (files, errors) = crate::rules::collect_rule_files(&dirs);
    assert!(errors.is_empty(), "{errors:?}");
    let sc = schema();
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        let Some(q) = t["rule"].get("query").and_then(|q| q.as_str()) else {
            continue;
        };
        for path in field_refs(q) {
            assert_ne!(
                sc.status(&path),
                FieldStatus::Unknown,
                "{}: reads `{path}`, which no schema we know has",
                f.display()
            );
            seen.insert(path);
        }
    }
    assert!(seen.len() > 80, "only {} distinct fields read", seen.len());
    // Every integration field of our list is read by some rule (the list is the corpora's).
    for f in crate::ecs::INTEGRATION_FIELDS {
        assert!(
            seen.contains(f.path),
            "{} is read by no corpus rule",
            f.path
        );
    }
}

/// Dotted field references of a query (EQL or KQL), with strings and comments removed;
/// backquoted names are taken whole.
fn field_refs(query: &str) -> Vec<String> {
    let strip = regex::Regex::new(r#"(?s)"""(.*?)"""|"(\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*"#).unwrap();
    let ident =
        regex::Regex::new(r"`([^`]+)`|\??([A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z0-9_@]+)+)").unwrap();
    let q = strip.replace_all(query, "\"\"");
    ident
        .captures_iter(&q)
        .map(|c| c.get(1).or(c.get(2)).unwrap().as_str().to_owned())
        .collect()
}
