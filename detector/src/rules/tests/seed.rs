//! The seed rule (SSH in a container), loaded unmodified as Elastic publishes it (see
//! [`crate::testsupport::corpus`] for where it is found).

use serde_json::json;

use crate::rules::testkit::{TestDoc, TestSchema};
use crate::rules::{Rule, load_file};
use crate::testsupport::{Corpus, Need, require};

/// The seed's gate: the tests below need the published rule.
const NEEDS: &[Need] = &[Need::Corpus(Corpus::Seed)];

fn seed() -> Rule {
    let path = crate::testsupport::corpus(Corpus::Seed);
    let (files, errors) = crate::rules::collect_rule_files(std::slice::from_ref(&path));
    assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    let file = files
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "toml"))
        .expect("a seed rule file");
    load_file(&file, &TestSchema).unwrap_or_else(|e| panic!("{e}"))
}

fn ev(name: &str, action: &str, ty: &str, container: Option<&str>) -> TestDoc {
    let mut d = json!({
        "event.category": ["process"],
        "event.type": [ty],
        "event.action": action,
        "process.name": name,
    });
    if let Some(c) = container {
        d["container.id"] = json!(c);
    }
    TestDoc::from_json(&d)
}

const CID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

#[test]
fn seed_metadata() {
    if !require("rules::tests::seed::seed_metadata", NEEDS) {
        return;
    }
    let r = seed();
    assert_eq!(r.meta.rule_id, "03a514d9-500e-443e-b6a9-72718c548f6c");
    assert_eq!(r.meta.severity.score(), 73);
    assert_eq!(r.meta.threat.len(), 2);
}

#[test]
fn seed_rule_semantics() {
    if !require("rules::tests::seed::seed_rule_semantics", NEEDS) {
        return;
    }
    let r = seed();
    // (name, action, type, container, expected)
    let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
        ("sshd", "exec", "start", Some(CID), true),
        ("ssh", "exec", "start", Some(CID), true),
        ("autossh", "exec", "start", Some(CID), true),
        ("sshd", "fork", "start", Some(CID), true),
        ("ssh", "fork", "start", Some(CID), true),
        // host: no container.id
        ("ssh", "exec", "start", None, false),
        ("sshd", "fork", "start", None, false),
        // end events
        ("ssh", "end", "end", Some(CID), false),
        ("ssh", "exec", "end", Some(CID), false),
        // other programs
        ("ssh-keygen", "exec", "start", Some(CID), false),
        ("sshd-session", "exec", "start", Some(CID), false),
        ("bash", "exec", "start", Some(CID), false),
        // `process.name :` is case-insensitive in Elasticsearch EQL: these match …
        ("SSH", "exec", "start", Some(CID), true),
        ("AutoSSH", "fork", "start", Some(CID), true),
        // … while `event.action in` and `event.type ==` are case-sensitive.
        ("ssh", "EXEC", "start", Some(CID), false),
        ("ssh", "exec", "START", Some(CID), false),
        // `container.id: "*"` matches any present value, even empty.
        ("ssh", "exec", "start", Some(""), true),
    ];
    for &(name, action, ty, c, want) in cases {
        assert_eq!(
            r.matches(&ev(name, action, ty, c)),
            want,
            "{name} {action} {ty} {c:?}"
        );
    }
    // Not a process event.
    let mut d = json!({"event.category": ["file"], "event.type": ["start"], "event.action": "exec",
        "process.name": "ssh", "container.id": CID});
    assert!(!r.matches(&TestDoc::from_json(&d)));
    d["event.category"] = json!(["process", "file"]);
    assert!(r.matches(&TestDoc::from_json(&d)));
}
