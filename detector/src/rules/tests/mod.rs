//! Semantics tables (query, document, expected), the seed rule, and the index property.

mod index_keys;
mod index_prop;
mod seed;

use serde_json::json;

use super::compile_query;
use super::testkit::{TestDoc, TestSchema};

/// Evaluates `any where <cond>` on `doc`.
fn eval(cond: &str, doc: &serde_json::Value) -> bool {
    let q = format!("any where {cond}");
    let c = compile_query(&q, &TestSchema).unwrap_or_else(|e| panic!("{q}: {e}"));
    c.matches(&TestDoc::from_json(doc))
}

fn run_table(rows: &[(&str, serde_json::Value, bool)]) {
    crate::rules::testkit::check_table(rows, eval);
}

#[test]
fn equality_is_case_sensitive_exact_and_ignores_wildcards() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"process.name == "ssh""#, n("ssh"), true),
        (r#"process.name == "ssh""#, n("SSH"), false),
        (r#"process.name == "ssh""#, n("sshd"), false),
        (r#"process.name == "ss*""#, n("ssh"), false),
        (r#"process.name == "ss*""#, n("ss*"), true),
        (r#"process.name == "ssh""#, json!({}), false),
        (r#"process.name != "ssh""#, n("ssh"), false),
        (r#"process.name != "ssh""#, n("SSH"), true),
        (r#"process.name != "ssh""#, json!({}), true),
        (r#"process.name == """#, n(""), true),
        (r#"process.name == "café""#, n("café"), true),
        (r#"process.name == "café""#, n("CAFÉ"), false),
    ]);
}

#[test]
fn colon_is_case_insensitive_wildcard() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"process.name : "ssh""#, n("ssh"), true),
        (r#"process.name : "ssh""#, n("SSH"), true),
        (r#"process.name : "SSH""#, n("ssh"), true),
        (r#"process.name : "ssh""#, n("sshd"), false),
        (r#"process.name : "ssh*""#, n("SSHD"), true),
        (r#"process.name : "*SH""#, n("autossh"), true),
        (r#"process.name : "s?h""#, n("SSH"), true),
        (r#"process.name : "s?h""#, n("sh"), false),
        (r#"process.name : ("a", "ssh")"#, n("Ssh"), true),
        (r#"process.name : ("a", "b*")"#, n("Bee"), true),
        (r#"process.name : ("a", "b*")"#, n("cab"), false),
        (r#"process.name : "*""#, n(""), true),
        (r#"process.name : "*""#, json!({}), false),
        (r#"process.name : "café""#, n("CAFÉ"), true),
        (r#"process.name : "*É""#, n("café"), true),
        (r#"process.name : "k*""#, n("\u{212A}ubectl"), true),
        (r#"not process.name : "ssh""#, n("SSH"), false),
        (r#"not process.name : "ssh""#, json!({}), true),
    ]);
}

#[test]
fn like_and_like_ci() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"process.name like "ssh""#, n("ssh"), true),
        (r#"process.name like "ssh""#, n("SSH"), false),
        (r#"process.name like "ss*""#, n("sshd"), true),
        (r#"process.name like "ss*""#, n("SSHD"), false),
        (r#"process.name like~ "ss*""#, n("SSHD"), true),
        (r#"process.name like~ "SS?D""#, n("sshd"), true),
        (r#"process.name like ("x", "*d")"#, n("sshd"), true),
        (r#"process.name like ("x", "*D")"#, n("sshd"), false),
        (r#"process.name like~ ("x", "*D")"#, n("sshd"), true),
        (r#"process.name like "?*""#, n(""), false),
        (r#"process.name like "?*""#, n("a"), true),
        (r#"process.name like "*""#, json!({}), false),
        (r#"process.name like~ "*ß*""#, n("STRASSE"), false),
    ]);
}

#[test]
fn in_lists() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"process.name in ("ssh", "sshd")"#, n("sshd"), true),
        (r#"process.name in ("ssh", "sshd")"#, n("SSHD"), false),
        (r#"process.name in ("ssh", "ss*")"#, n("sshd"), false),
        (r#"process.name in ("ssh", "ss*")"#, n("ss*"), true),
        (r#"process.name in~ ("ssh", "sshd")"#, n("SSHD"), true),
        (
            r#"process.name in~ ("a", "b", "c", "d", "e", "sshd")"#,
            n("SsHd"),
            true,
        ),
        (
            r#"process.name in~ ("a", "b", "c", "d", "e", "café")"#,
            n("CAFÉ"),
            true,
        ),
        (
            r#"process.name in ("a", "b", "c", "d", "e", "sshd")"#,
            n("sshd"),
            true,
        ),
        (
            r#"process.name in ("a", "b", "c", "d", "e", "sshd")"#,
            n("x"),
            false,
        ),
        (r#"process.name not in ("ssh", "sshd")"#, n("sshd"), false),
        (r#"process.name not in ("ssh", "sshd")"#, n("bash"), true),
        (r#"process.name not in ("ssh", "sshd")"#, json!({}), true),
        (r#"process.name not in~ ("SSH")"#, n("ssh"), false),
        (r#"not process.name in ("ssh")"#, n("ssh"), false),
        (r#"process.name in ("ssh")"#, json!({}), false),
        (
            r#"process.pid in (1, 2, 3)"#,
            json!({"process.pid": 2}),
            true,
        ),
        (
            r#"process.pid not in (1, 2, 3)"#,
            json!({"process.pid": 4}),
            true,
        ),
        (
            r#"process.pid in (1, 2.0)"#,
            json!({"process.pid": 2}),
            true,
        ),
        (
            r#"process.interactive in (true)"#,
            json!({"process.interactive": true}),
            true,
        ),
        (
            r#"process.interactive in (false)"#,
            json!({"process.interactive": true}),
            false,
        ),
    ]);
}

#[test]
fn regex_full_match() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"process.name regex "ss.""#, n("ssh"), true),
        (r#"process.name regex "ss.""#, n("sshd"), false),
        (r#"process.name regex "s""#, n("ssh"), false),
        (r#"process.name regex "SS.""#, n("ssh"), false),
        (r#"process.name regex~ "SS.""#, n("ssh"), true),
        (r#"process.name regex ("x", "ssh[a-z]?")"#, n("sshd"), true),
        (r#"process.name regex """[0-9]+\.[0-9]+""""#, n("1.2"), true),
        (
            r#"process.name regex """[0-9]+\.[0-9]+""""#,
            n("1x2"),
            false,
        ),
        (r#"process.name regex "[0-9]+\\.[0-9]+""#, n("1.2"), true),
        (r#"process.name regex ".*""#, json!({}), false),
        (r#"not process.name regex "a.*""#, json!({}), true),
    ]);
}

#[test]
fn arrays_match_if_any_element_and_negations_if_none() {
    let a = json!({"process.args": ["ssh", "-L", "8080:x:80"]});
    let e = json!({"process.args": []});
    run_table(&[
        (r#"process.args == "-L""#, a.clone(), true),
        (r#"process.args == "-R""#, a.clone(), false),
        (r#"process.args != "-L""#, a.clone(), false),
        (r#"process.args != "-R""#, a.clone(), true),
        (r#"process.args : "-l""#, a.clone(), true),
        (r#"process.args like "*:x:*""#, a.clone(), true),
        (r#"process.args like~ "*:X:*""#, a.clone(), true),
        (r#"process.args like "*:X:*""#, a.clone(), false),
        (r#"process.args in ("-D", "-L")"#, a.clone(), true),
        (r#"process.args not in ("-D", "-L")"#, a.clone(), false),
        (r#"process.args not in ("-D", "-R")"#, a.clone(), true),
        (r#"process.args regex "[0-9]+:.*""#, a.clone(), true),
        (r#"not process.args : "*8080*""#, a.clone(), false),
        (
            r#"process.args == "-L" and process.args == "ssh""#,
            a.clone(),
            true,
        ),
        (r#"process.args == null"#, e.clone(), true),
        (r#"process.args : "*""#, e.clone(), false),
        (r#"process.args != "x""#, e.clone(), true),
        (r#"process.args > "-""#, a.clone(), true),
    ]);
}

#[test]
fn null_missing_and_optional_fields() {
    let d = json!({"process.name": "ssh"});
    run_table(&[
        ("container.id == null", d.clone(), true),
        ("container.id != null", d.clone(), false),
        ("process.name != null", d.clone(), true),
        ("process.name == null", d.clone(), false),
        (r#"container.id : "*""#, d.clone(), false),
        (r#"container.id like "?*""#, d.clone(), false),
        (r#"container.id != "x""#, d.clone(), true),
        (r#"not container.id == "x""#, d.clone(), true),
        (r#"?file.Ext.original.name == "x""#, d.clone(), false),
        (r#"?file.Ext.original.name != "x""#, d.clone(), true),
        (r#"?file.Ext.original.name == null"#, d.clone(), true),
        (r#"?file.Ext.original.name : "*""#, d.clone(), false),
        (r#"?file.Ext.original.name not in ("a")"#, d.clone(), true),
        (r#"?process.name == "ssh""#, d.clone(), true),
        ("process.pid > 1", d.clone(), false),
        ("not process.pid > 1", d.clone(), true),
        ("process.interactive == false", d.clone(), false),
        ("process.interactive != false", d.clone(), true),
    ]);
}

#[test]
fn numbers_booleans_and_ordering() {
    let d = json!({"process.pid": 42, "process.interactive": false, "@timestamp": "2024-05-01T00:00:00Z", "process.name": "m"});
    run_table(&[
        ("process.pid == 42", d.clone(), true),
        ("process.pid != 42", d.clone(), false),
        ("process.pid < 43", d.clone(), true),
        ("process.pid <= 42", d.clone(), true),
        ("process.pid > 42", d.clone(), false),
        ("process.pid >= 42", d.clone(), true),
        ("process.pid > -1", d.clone(), true),
        ("process.pid < 42.5", d.clone(), true),
        ("process.pid == 42.5", d.clone(), false),
        ("process.interactive == false", d.clone(), true),
        ("process.interactive == true", d.clone(), false),
        ("process.interactive != true", d.clone(), true),
        (r#"@timestamp > "2024-01-01""#, d.clone(), true),
        (r#"@timestamp < "2024-01-01""#, d.clone(), false),
        (r#"process.name > "a""#, d.clone(), true),
        (r#"process.name >= "n""#, d.clone(), false),
        ("true", d.clone(), true),
        ("false", d.clone(), false),
        ("not false", d.clone(), true),
    ]);
}

#[test]
fn precedence_and_grouping_evaluate_correctly() {
    let d = json!({"process.name": "a", "event.action": "exec"});
    run_table(&[
        (
            r#"process.name == "a" or process.name == "b" and event.action == "fork""#,
            d.clone(),
            true,
        ),
        (
            r#"(process.name == "a" or process.name == "b") and event.action == "fork""#,
            d.clone(),
            false,
        ),
        (
            r#"not process.name == "b" and event.action == "exec""#,
            d.clone(),
            true,
        ),
        (
            r#"not (process.name == "a" and event.action == "fork")"#,
            d.clone(),
            true,
        ),
        (
            r#"not process.name == "a" or event.action == "exec""#,
            d.clone(),
            true,
        ),
        (
            "/* c */ process.name == \"a\" // tail\n and event.action == \"exec\"",
            d.clone(),
            true,
        ),
    ]);
}

#[test]
fn string_escapes_and_raw_strings_reach_the_matcher() {
    let n = |s: &str| json!({ "process.name": s });
    run_table(&[
        (r#"process.name == "a\tb""#, n("a\tb"), true),
        (r#"process.name == "a\\b""#, n("a\\b"), true),
        (r#"process.name == "say \"hi\"""#, n("say \"hi\""), true),
        (r#"process.name == "\u{e9}t\u{00E9}""#, n("été"), true),
        (r#"process.name == """a\tb""""#, n("a\\tb"), true),
        (r#"process.name == """a\tb""""#, n("a\tb"), false),
        (r#"process.name : """C:\Win*""""#, n("c:\\windows"), true),
        (r##"process.name == """q""""""##, n("q\"\""), true),
        (r##"process.name == """q"""""##, n("q\""), true),
    ]);
}

#[test]
fn process_where_checks_event_category() {
    let on = |q: &str, d: serde_json::Value| {
        compile_query(q, &TestSchema)
            .unwrap()
            .matches(&TestDoc::from_json(&d))
    };
    assert!(on(
        "process where true",
        json!({"event.category": ["process"]})
    ));
    assert!(on(
        "process where true",
        json!({"event.category": "process"})
    ));
    assert!(!on(
        "process where true",
        json!({"event.category": ["file"]})
    ));
    assert!(!on("process where true", json!({})));
    assert!(on("any where true", json!({})));
}

#[test]
fn compile_errors_have_positions_and_reasons() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "process where process.nope == 1",
            14,
            "unknown field `process.nope`",
        ),
        (
            "process where process.name == 1",
            30,
            "cannot compare keyword field `process.name` with a number",
        ),
        (
            "process where process.pid == \"1\"",
            29,
            "cannot compare long field",
        ),
        (
            "process where process.interactive : \"t*\"",
            34,
            "`:` needs a keyword field; `process.interactive` is boolean",
        ),
        (
            "process where process.pid like \"1*\"",
            26,
            "needs a keyword field",
        ),
        (
            "process where process.interactive < true",
            36,
            "only be compared with `==` or `!=`",
        ),
        (
            "process where process.name : 1",
            29,
            "needs a string pattern",
        ),
        (
            "process where process.name in (\"a\", null)",
            36,
            "null is not allowed in a list",
        ),
        (
            "process where process.name < null",
            29,
            "null can only be compared",
        ),
        (
            "process where process.pid in~ (1)",
            26,
            "`in~` needs a keyword field",
        ),
        (
            "process where process.name regex \"a@\"",
            35,
            "`@` is not supported",
        ),
        (
            r#"process where process.name regex """x\@y@""""#,
            40,
            "`@` is not supported",
        ),
        (
            r#"process where process.name regex "\t@""#,
            33,
            "(at offset 1 of the pattern)",
        ),
        (
            "process where process.name regex \"(a\"",
            36,
            "unclosed `(`",
        ),
        (
            "file where true",
            0,
            "event category `file` is not supported",
        ),
        ("network where true", 0, "event category `network`"),
        (
            "sequence by process.entity_id with maxspan=3s [process where true] [process where true]",
            0,
            "sequences are not supported",
        ),
        (
            "process where process.interactive == 1",
            37,
            "cannot compare boolean field",
        ),
    ];
    for (q, at, msg) in cases {
        let e = compile_query(q, &TestSchema).unwrap_err();
        assert_eq!(e.span.start, *at, "{q}: {e}");
        assert!(e.message.contains(msg), "{q}: {}", e.message);
    }
    let e = compile_query("sequence by a with maxspan=3s [process where true] [file where true] until [any where true]", &TestSchema).unwrap_err();
    assert_eq!(
        e.message,
        "sequences are not supported by the single-event engine: it evaluates one event at a time (a sequence of 2 events joined by a within maxspan=3s with an `until` condition); load the rule as a sequence rule"
    );
}
