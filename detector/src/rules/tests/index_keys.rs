//! The index's keys and prefilters, table by table: which keys a query gets (negations
//! never), and for every kind of key (exact, prefix, suffix, substring, regex literal,
//! case-insensitive, gates) that indexed matching, brute force and the probe agree on
//! documents chosen to sit on each edge: case, non-ASCII and replacement characters,
//! `?`, a backslash before `*`, arrays where another element matches, missing fields.

use serde_json::json;

use crate::ecs::field::{FieldId, FieldValue};
use crate::rules::index::keys::{Anchor, requirements};
use crate::rules::testkit::{TestDoc, TestSchema};
use crate::rules::{Probe, RuleIdx, RuleSet};

use crate::rules::testkit::rule;

/// The groups of keys of `any where <cond>`, as `field:anchor:ci:text` strings.
fn keys_of(cond: &str) -> Vec<Vec<String>> {
    let q = format!("any where {cond}");
    let r = rule(&q);
    let common: Vec<FieldId> = ["event.action", "event.type", "event.category"]
        .iter()
        .map(|f| {
            crate::ecs::field::Schema::resolve(&TestSchema, f)
                .unwrap()
                .id
        })
        .collect();
    requirements(&r.compiled.root, &common, 4)
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|k| {
                    let field = match k.field.0 {
                        8 => "name",
                        9 => "exe",
                        10 => "args",
                        2 => "action",
                        _ => "other",
                    };
                    let anchor = match k.anchor {
                        Anchor::Whole => "=",
                        Anchor::Prefix => "^",
                        Anchor::Suffix => "$",
                        Anchor::Within => "~",
                    };
                    format!("{field}{anchor}{}{}", if k.ci { "i:" } else { ":" }, k.text)
                })
                .collect()
        })
        .collect()
}

#[test]
fn keys_table() {
    // (condition, groups of keys; most selective group first)
    let rows: &[(&str, &[&[&str]])] = &[
        (r#"process.name == "ssh""#, &[&["name=:ssh"]]),
        (r#"process.name : "SSH""#, &[&["name=i:ssh"]]),
        (
            r#"process.name in~ ("SSH", "Café")"#,
            &[&["name=i:ssh", "name=i:café"]],
        ),
        (r#"process.executable like "/tmp/*""#, &[&["exe^:/tmp/"]]),
        (r#"process.name like~ "PYTHON*""#, &[&["name^i:python"]]),
        (r#"process.name like "*.cgi""#, &[&["name$:.cgi"]]),
        (
            r#"process.args like "*kubeletctl*""#,
            &[&["args~:kubeletctl"]],
        ),
        // The longest run; an anchored run counts one more.
        (r#"process.args like "http*:10250*""#, &[&["args~::10250"]]),
        (r#"process.args like "-*O*""#, &[&["args^:-"]]),
        // `?` splits runs like `*` does.
        (r#"process.args like "ab?cdef*""#, &[&["args~:cdef"]]),
        // A backslash is an ordinary character, even before `*`.
        (r#"process.args like "a\\*b""#, &[&["args^:a\\"]]),
        // No literal at all: no key.
        (r#"process.args like "?*""#, &[]),
        (r#"process.args : ("*", "x")"#, &[]),
        // Negations are never keys.
        (r#"not process.args like "*x*""#, &[]),
        (r#"process.name != "ssh""#, &[]),
        (r#"not process.name in ("a", "b")"#, &[]),
        (
            r#"process.name == "curl" and not process.args like "*kubeletctl*""#,
            &[&["name=:curl"]],
        ),
        // Regex: required literals; none under (?i) letters.
        (
            r#"process.args regex ".*foo[0-9]+bar.*""#,
            &[&["args~:foo"]],
        ),
        (r#"process.args regex~ "ssh.*""#, &[]),
        (
            r#"process.args regex "(abc|de)x""#,
            &[&["args~:abc", "args~:de"]],
        ),
        // An or unions its branches; one branch without keys drops the whole.
        (
            r#"process.name == "a" or process.args like "*bbbb*""#,
            &[&["name=:a", "args~:bbbb"]],
        ),
        (r#"process.name == "a" or process.pid == 1"#, &[]),
        // An or of ands: one group per position, each a union over the branches.
        (
            r#"(process.name == "a" and process.args == "x") or (process.name == "b" and process.args == "y")"#,
            &[&["name=:a", "name=:b"], &["args=:x", "args=:y"]],
        ),
        (
            r#"process.name == "c" or (process.name == "b" and process.args like "*yyyy*")"#,
            &[&["name=:c", "name=:b"], &["name=:c", "args~:yyyy"]],
        ),
        // Every requiring conjunct is a group, the most selective first; common fields
        // only when nothing else.
        (
            r#"event.action == "exec" and process.args like "*xy*" and process.name in ("a", "b")"#,
            &[&["name=:a", "name=:b"], &["args~:xy"]],
        ),
        (r#"event.action == "exec""#, &[&["action=:exec"]]),
        // Long literals rank with exact values.
        (
            r#"process.name in ("cat", "sed") and process.args like "*/var/lib/kubelet/*""#,
            &[&["args~:/var/lib/kubelet/"], &["name=:cat", "name=:sed"]],
        ),
        (r#"false"#, &[&[]]),
    ];
    let mut failures = Vec::new();
    for (cond, want) in rows {
        let got = keys_of(cond);
        let want: Vec<Vec<String>> = want
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect();
        if got != want {
            failures.push(format!("{cond}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A probe that knows the fields of a JSON object and nothing else (`null`: unknown).
struct JsonProbe(TestDoc, Vec<FieldId>);

impl Probe for JsonProbe {
    fn field(&self, id: FieldId) -> Option<FieldValue<'_>> {
        if self.1.contains(&id) {
            return None;
        }
        Some(crate::ecs::field::Document::field(&self.0, id))
    }
}

/// Indexed, brute-force and probe verdicts agree, and each row's expectation holds.
#[test]
fn prefilters_agree_with_brute_force() {
    let a = |xs: &[&str]| json!(xs);
    // (condition, document, expected match)
    let rows: Vec<(&str, serde_json::Value, bool)> = vec![
        // Prefix / suffix / substring, case-sensitive.
        (
            r#"process.executable like "/tmp/*""#,
            json!({"process.executable": "/tmp/x"}),
            true,
        ),
        (
            r#"process.executable like "/tmp/*""#,
            json!({"process.executable": "/TMP/x"}),
            false,
        ),
        (
            r#"process.executable like "/tmp/*""#,
            json!({"process.executable": "/var/tmp/x"}),
            false,
        ),
        (r#"process.executable like "/tmp/*""#, json!({}), false),
        (
            r#"process.name like "*.cgi""#,
            json!({"process.name": "a.cgi"}),
            true,
        ),
        (
            r#"process.name like "*.cgi""#,
            json!({"process.name": "a.cgi.bak"}),
            false,
        ),
        (
            r#"process.args like "*kubeletctl*""#,
            json!({"process.args": a(&["x", "/bin/kubeletctl"])}),
            true,
        ),
        (
            r#"process.args like "*kubeletctl*""#,
            json!({"process.args": a(&["KUBELETCTL"])}),
            false,
        ),
        // Case-insensitive: `:`, `like~`, `in~`; non-ASCII folding (KELVIN SIGN is `k`).
        (
            r#"process.args : "*KUBELET*""#,
            json!({"process.args": a(&["a", "xkubeletx"])}),
            true,
        ),
        (
            r#"process.args like~ "*kubelet*""#,
            json!({"process.args": a(&["\u{212A}UBELET"])}),
            true,
        ),
        (
            r#"process.args like~ "*café*""#,
            json!({"process.args": a(&["CAFÉ au lait"])}),
            true,
        ),
        (
            r#"process.args like~ "*café*""#,
            json!({"process.args": a(&["CAFE"])}),
            false,
        ),
        (
            r#"process.name in~ ("K", "Sh")"#,
            json!({"process.name": "\u{212A}"}),
            true,
        ),
        (
            r#"process.name in~ ("K", "Sh")"#,
            json!({"process.name": "SH"}),
            true,
        ),
        (
            r#"process.name in~ ("K", "Sh")"#,
            json!({"process.name": "s"}),
            false,
        ),
        // `?` is one character (not byte).
        (
            r#"process.args like "ab?cdef*""#,
            json!({"process.args": a(&["abécdefg"])}),
            true,
        ),
        (
            r#"process.args like "ab?cdef*""#,
            json!({"process.args": a(&["abcdef"])}),
            false,
        ),
        // A backslash before `*` does not escape it.
        (
            r#"process.args like "a\\*b""#,
            json!({"process.args": a(&["a\\xxb"])}),
            true,
        ),
        (
            r#"process.args like "a\\*b""#,
            json!({"process.args": a(&["a*b"])}),
            false,
        ),
        // The replacement character of an argument that was not UTF-8.
        (
            r#"process.args like "*\u{FFFD}*""#,
            json!({"process.args": a(&["ss\u{FFFD}h"])}),
            true,
        ),
        (
            r#"process.args like "*ssh*""#,
            json!({"process.args": a(&["ss\u{FFFD}h"])}),
            false,
        ),
        // Arrays: another element holds the literal; both conjuncts on different elements.
        (
            r#"process.args == "-o" and process.args like~ "*proxycommand*""#,
            json!({"process.args": a(&["ssh", "-o", "ProxyCommand=nc"])}),
            true,
        ),
        (
            r#"process.args == "-o" and process.args like~ "*proxycommand*""#,
            json!({"process.args": a(&["ssh", "-O", "ProxyCommand=nc"])}),
            false,
        ),
        // Negations: true when nothing matches, or the field is missing.
        (
            r#"not process.args like "*x*""#,
            json!({"process.args": a(&["a", "b"])}),
            true,
        ),
        (
            r#"not process.args like "*x*""#,
            json!({"process.args": a(&["a", "xb"])}),
            false,
        ),
        (r#"not process.args like "*x*""#, json!({}), true),
        (
            r#"process.name == "curl" and not process.args like "*x*""#,
            json!({"process.name": "curl"}),
            true,
        ),
        // Regex literals.
        (
            r#"process.args regex ".*foo[0-9]+bar.*""#,
            json!({"process.args": a(&["xfoo12bar"])}),
            true,
        ),
        (
            r#"process.args regex ".*foo[0-9]+bar.*""#,
            json!({"process.args": a(&["xfoobar"])}),
            false,
        ),
        (
            r#"process.args regex~ "SSH.*""#,
            json!({"process.args": a(&["ssh -V"])}),
            true,
        ),
        // Or across fields; one group per conjunct.
        (
            r#"(process.name == "a" or process.args like "*bbbb*") and process.executable like "/x/*""#,
            json!({"process.name": "z", "process.args": a(&["abbbbc"]), "process.executable": "/x/y"}),
            true,
        ),
        (
            r#"(process.name == "a" or process.args like "*bbbb*") and process.executable like "/x/*""#,
            json!({"process.name": "a", "process.executable": "/y/x/"}),
            false,
        ),
        // An or of ands: each position's group is a union over the branches.
        (
            r#"(process.name == "a" and process.args == "x") or (process.name == "b" and process.args == "y")"#,
            json!({"process.name": "a", "process.args": a(&["y"])}),
            false,
        ),
        (
            r#"(process.name == "a" and process.args == "x") or (process.name == "b" and process.args == "y")"#,
            json!({"process.name": "b", "process.args": a(&["x", "y"])}),
            true,
        ),
        (
            r#"process.name == "c" or (process.name == "b" and process.args like "*yyyy*")"#,
            json!({"process.name": "c"}),
            true,
        ),
        // Gates: nested and case-insensitive; a missing gated field fails the gate.
        (
            r#"(event.action == "open" and process.name == "a") or (event.action : "EXEC" and process.name == "b")"#,
            json!({"event.action": "exec", "process.name": "b"}),
            true,
        ),
        (
            r#"(event.action == "open" and process.name == "a") or (event.action : "EXEC" and process.name == "b")"#,
            json!({"event.action": "open", "process.name": "b"}),
            false,
        ),
        (
            r#"event.action in ("fork", "exec") and process.name == "b""#,
            json!({"event.action": ["end", "exec"], "process.name": "b"}),
            true,
        ),
        (
            r#"event.action == "exec" and process.name == "b""#,
            json!({"process.name": "b"}),
            false,
        ),
        (
            r#"event.action != "exec" and process.name == "b""#,
            json!({"process.name": "b"}),
            true,
        ),
    ];
    let set = RuleSet::new(
        rows.iter()
            .map(|(c, _, _)| rule(&format!("any where {c}")))
            .collect(),
        &TestSchema,
    );
    let fields: Vec<FieldId> = [
        "process.name",
        "process.args",
        "process.executable",
        "event.action",
    ]
    .iter()
    .map(|f| {
        crate::ecs::field::Schema::resolve(&TestSchema, f)
            .unwrap()
            .id
    })
    .collect();
    let (mut indexed, mut brute) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for (i, (cond, doc, want)) in rows.iter().enumerate() {
        let d = TestDoc::from_json(doc);
        set.matches(&d, &mut indexed);
        set.matches_unindexed(&d, &mut brute);
        let ids = |v: &Vec<RuleIdx>| {
            v.iter()
                .map(|&i| set.rule(i).query.clone())
                .collect::<Vec<_>>()
        };
        if indexed != brute {
            failures.push(format!(
                "{cond} on {doc}: indexed {:?} brute {:?}",
                ids(&indexed),
                ids(&brute)
            ));
        }
        let got = set.rules()[i].matches(&d);
        if got != *want {
            failures.push(format!("{cond} on {doc}: got {got}, want {want}"));
        }
        // The probe, knowing everything or with each field unknown, never rules out a match.
        for unknown in std::iter::once(None).chain(fields.iter().map(Some)) {
            let probe = JsonProbe(
                TestDoc::from_json(doc),
                unknown.into_iter().copied().collect(),
            );
            if !brute.is_empty() && !set.may_match_probe(&probe) {
                failures.push(format!(
                    "{cond} on {doc}: probe (unknown {unknown:?}) skipped a match"
                ));
            }
        }
        if !brute.is_empty()
            && let (Some(n), Some(act)) = (
                doc.get("process.name").and_then(|v| v.as_str()),
                doc.get("event.action").and_then(|v| v.as_str()),
            )
            && !set.may_match(n, act)
        {
            failures.push(format!(
                "{cond} on {doc}: may_match(name, action) skipped a match"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
