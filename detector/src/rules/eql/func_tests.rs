//! Tables of function semantics: the examples of Elasticsearch's EQL function reference,
//! null and missing values, multi-valued fields, case-insensitive forms, the pushed-down
//! shapes, and the compile-time errors.

use serde_json::json;

use super::matcher::Node;
use super::{QueryError, compile_query, compile_query_as_written};
use crate::ecs::field::{FieldDef, FieldId, FieldType, Schema};
use crate::rules::testkit::{TestDoc, TestSchema};

/// [`TestSchema`] plus two IP fields (typed keyword, as this engine's schema types `ip`).
struct IpSchema;

const IP_FIELDS: &[&str] = &["source.ip", "host.ip"];

impl Schema for IpSchema {
    fn resolve(&self, path: &str) -> Option<FieldDef> {
        if let Some(i) = IP_FIELDS.iter().position(|p| *p == path) {
            return Some(FieldDef {
                id: FieldId(200 + i as u16),
                ty: FieldType::Keyword,
            });
        }
        TestSchema.resolve(path)
    }
}

fn compile(cond: &str) -> Result<super::CompiledQuery, QueryError> {
    compile_query(&format!("any where {cond}"), &IpSchema)
}

fn eval(cond: &str, doc: &serde_json::Value) -> bool {
    let c = compile(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
    c.matches(&TestDoc::from_json_with(&IpSchema, doc))
}

fn run_table(rows: &[(&str, serde_json::Value, bool)]) {
    crate::rules::testkit::check_table(rows, eval);
}

/// Constant expressions, folded at compile time: each row must hold (and its negation
/// must not). The examples of the function reference, with Java's number semantics.
#[test]
fn reference_examples_fold_to_their_documented_values() {
    let holds = [
        "add(4, 5) == 9",
        "add(4, 0.5) == 4.5",
        "add(0.5, 0.25) == 0.75",
        "add(4, -2) == 2",
        "add(-2, -2) == -4",
        "add(null, 4) == null",
        "add(4, null) == null",
        r#"between("C:\\Windows\\System32\\cmd.exe", "System32\\", ".exe") == "cmd""#,
        r#"between("C:\\Windows\\System32\\cmd.exe", "system32\\", ".exe") == """#,
        r#"between~("C:\\Windows\\System32\\cmd.exe", "system32\\", ".exe") == "cmd""#,
        r#"between("C:\\Windows\\System32\\cmd.exe", "workspace\\", ".exe") == """#,
        r#"between("C:\\Windows\\System32\\cmd.exe", "\\", "\\", false) == "Windows""#,
        r#"between("C:\\Windows\\System32\\cmd.exe", "\\", "\\", true) == "Windows\\System32""#,
        r#"between("", "System32\\", ".exe") == """#,
        r#"between("", "", "") == """#,
        r#"between("abc", "", "c") == "abc""#,
        r#"between(null, "System32\\", ".exe") == null"#,
        r#"cidrMatch("192.168.152.12", "192.168.0.0/16")"#,
        r#"cidrMatch("192.168.152.12", "192.168.0.0/16", "10.0.0.0/8")"#,
        r#"not cidrMatch("192.168.152.12", "10.0.0.0/8")"#,
        r#"not cidrMatch("192.168.152.12", "10.0.0.0/8", "10.128.0.0/9")"#,
        r#"concat("process is ", "regsvr32.exe") == "process is regsvr32.exe""#,
        r#"concat("regsvr32.exe", " ", 42) == "regsvr32.exe 42""#,
        r#"concat("regsvr32.exe", " ", 42.5) == "regsvr32.exe 42.5""#,
        r#"concat("regsvr32.exe", " ", true) == "regsvr32.exe true""#,
        r#"concat("regsvr32.exe") == "regsvr32.exe""#,
        r#"concat(null, "regsvr32.exe") == null"#,
        r#"concat(null) == null"#,
        r#"concat(1.0, 1e7, 0.0001) == "1.01.0E71.0E-4""#,
        "divide(4, 2) == 2",
        "divide(4, 3) == 1",
        "divide(4, 3.0) > 1.33 and divide(4, 3.0) < 1.34",
        "divide(4, 0.5) == 8",
        "divide(0.5, 4) == 0.125",
        "divide(0.5, 0.25) == 2.0",
        "divide(4, -2) == -2",
        "divide(-4, -2) == 2",
        "divide(-7, 2) == -3",
        "divide(null, 4) == null",
        "divide(4, 0) == null",
        "divide(4.0, 0) > 1e308",
        r#"endsWith("regsvr32.exe", ".exe")"#,
        r#"not endsWith("regsvr32.exe", ".EXE")"#,
        r#"not endsWith("regsvr32.exe", ".dll")"#,
        r#"endsWith("", "")"#,
        r#"endsWith~("regsvr32.exe", ".EXE")"#,
        r#"indexOf("subdomain.example.com", "d") == 3"#,
        r#"indexOf("subdomain.example.com", "D") == null"#,
        r#"indexOf("subdomain.example.com", ".") == 9"#,
        r#"indexOf("subdomain.example.com", ".", 9) == 9"#,
        r#"indexOf("subdomain.example.com", ".", 10) == 17"#,
        r#"indexOf("subdomain.example.com", ".", -6) == 9"#,
        r#"indexOf~("subdomain.example.com", "D") == 3"#,
        r#"indexOf("", "") == 0"#,
        r#"indexOf("subdomain.example.com", "") == 0"#,
        r#"indexOf("subdomain.example.com", "", 9) == 9"#,
        r#"indexOf("subdomain.example.com", "", 10) == 10"#,
        r#"indexOf("subdomain.example.com", "", -6) == 0"#,
        r#"indexOf("subdomain.example.com", "z") == null"#,
        r#"indexOf("subdomain.example.com", "z", 9) == null"#,
        r#"indexOf("subdomain.example.com", ".", 30) == null"#,
        r#"indexOf(null, ".", 9) == null"#,
        r#"indexOf("subdomain.example.com", null, 9) == null"#,
        r#"indexOf("subdomain.example.com", ".", null) == null"#,
        r#"indexOf("é😀x", "x") == 3"#,
        r#"length("explorer.exe") == 12"#,
        r#"length("start explorer.exe") == 18"#,
        r#"length("") == 0"#,
        "length(null) == null",
        r#"length("é😀") == 3"#,
        "modulo(10, 6) == 4",
        "modulo(10, 5) == 0",
        "modulo(10, 0.5) == 0",
        "modulo(10, -6) == 4",
        "modulo(-10, -6) == -4",
        "modulo(null, 5) == null",
        "modulo(7, 0) == null",
        "multiply(2, 2) == 4",
        "multiply(0.5, 2) == 1",
        "multiply(0.25, 2) == 0.5",
        "multiply(-2, 2) == -4",
        "multiply(-2, -2) == 4",
        "multiply(2, null) == null",
        "multiply(65536, 65536) == null",
        "multiply(65536, 4294967296) == 281474976710656",
        "add(2147483647, 1) == null",
        "add(2147483648, 1) == 2147483649",
        r#"number("1337") == 1337"#,
        r#"number("42.5") == 42.5"#,
        r#"number("deadbeef", 16) == 3735928559"#,
        r#"number("0xdeadbeef") == 3735928559"#,
        r#"number("0xdeadbeef", 16) == 3735928559"#,
        r#"number("+1337") == 1337"#,
        r#"number("-1337") == -1337"#,
        r#"number("  1337  ") == 1337"#,
        "number(null) == null",
        "number(null, 16) == null",
        r#"number("0xdeadbeef", null) == 3735928559"#,
        r#"number("1337", null) == 1337"#,
        r#"number("x") == null"#,
        r#"startsWith("regsvr32.exe", "regsvr32")"#,
        r#"not startsWith("regsvr32.exe", "Regsvr32")"#,
        r#"not startsWith("regsvr32.exe", "explorer")"#,
        r#"startsWith("", "")"#,
        r#"startsWith~("regsvr32.exe", "Regsvr32")"#,
        r#"string(42) == "42""#,
        r#"string(42.5) == "42.5""#,
        r#"string("regsvr32.exe") == "regsvr32.exe""#,
        r#"string(true) == "true""#,
        "string(null) == null",
        r#"stringContains("start regsvr32.exe", "regsvr32")"#,
        r#"not stringContains("start regsvr32.exe", "Regsvr32")"#,
        r#"stringContains~("start regsvr32.exe", "Regsvr32")"#,
        r#"not stringContains("", "")"#,
        r#"not stringContains("start", "")"#,
        r#"substring("start regsvr32.exe", 6) == "regsvr32.exe""#,
        r#"substring("start regsvr32.exe", 0, 5) == "start""#,
        r#"substring("start regsvr32.exe", 6, 14) == "regsvr32""#,
        r#"substring("start regsvr32.exe", -4) == ".exe""#,
        r#"substring("start regsvr32.exe", -4, -1) == ".ex""#,
        r#"substring("start", 4, 2) == """#,
        r#"substring("start", 10) == """#,
        r#"substring("start", -10, 2) == "st""#,
        r#"substring("", 1) == """#,
        "subtract(10, 2) == 8",
        "subtract(10.5, 0.5) == 10",
        "subtract(1, 0.2) == 0.8",
        "subtract(-2, 4) == -6",
        "subtract(-2, -4) == 2",
        "subtract(null, 2) == null",
        // Nested calls and predicates on results.
        r#"length(concat("ab", string(12))) == 4"#,
        r#"substring("python3", 0, 2) : "PY""#,
        r#"substring("python3", 0, 2) in ("py", "pe")"#,
        r#"length("abc") in (1, 2, 3)"#,
        r#"string(length("abc")) like "3""#,
        r#"between("a[b]c", "[", "]") regex "b""#,
        r#"length("abc") >= 3 and length("abc") <= 3 and length("abc") != 4"#,
    ];
    let doc = json!({});
    let mut failures = Vec::new();
    for q in holds {
        let c = compile(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        // Constant conditions fold to a constant at compile time.
        let folded = match &c.root {
            Node::Const(_) => true,
            Node::And(v) => v.iter().all(|n| matches!(n, Node::Const(_))),
            _ => false,
        };
        if !folded {
            failures.push(format!("{q}: not folded: {:?}", c.root));
        }
        if !eval(q, &doc) {
            failures.push(format!("{q}: false"));
        }
        if eval(&format!("not ({q})"), &doc) {
            failures.push(format!("not ({q}): true"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same functions over document fields (evaluated per event, not folded).
#[test]
fn functions_of_fields() {
    let d = json!({
        "process.name": "regsvr32.exe",
        "process.command_line": "start regsvr32.exe",
        "process.args_count": 4,
        "process.pid": 1337,
        "file.path": "C:\\Windows\\System32\\cmd.exe",
        "process.executable": "/usr/bin/python3",
    });
    run_table(&[
        ("add(process.args_count, 5) == 9", d.clone(), true),
        ("add(process.args_count, 0.5) == 4.5", d.clone(), true),
        (
            "add(process.args_count, process.pid) == 1341",
            d.clone(),
            true,
        ),
        ("divide(process.args_count, 3) == 1", d.clone(), true),
        ("divide(4, process.args_count) == 1", d.clone(), true),
        ("divide(process.args_count, 3.0) == 1", d.clone(), false),
        ("divide(process.args_count, 0) == null", d.clone(), true),
        ("modulo(106, process.args_count) == 2", d.clone(), true),
        ("multiply(0.25, process.args_count) == 1", d.clone(), true),
        ("subtract(15, process.args_count) == 11", d.clone(), true),
        (r#"length(process.name) == 12"#, d.clone(), true),
        (r#"length(process.command_line) > 50"#, d.clone(), false),
        (r#"length(process.command_line) > 10"#, d.clone(), true),
        (
            r#"concat(process.name, " ", process.pid) == "regsvr32.exe 1337""#,
            d.clone(),
            true,
        ),
        (r#"string(process.pid) == "1337""#, d.clone(), true),
        (r#"string(process.pid) : "13*""#, d.clone(), true),
        (r#"number(string(process.pid)) == 1337"#, d.clone(), true),
        (
            r#"between(file.path, "System32\\", ".exe") == "cmd""#,
            d.clone(),
            true,
        ),
        (
            r#"between~(file.path, "system32\\", ".EXE") == "cmd""#,
            d.clone(),
            true,
        ),
        (
            r#"indexOf(process.command_line, "regsvr32") == 6"#,
            d.clone(),
            true,
        ),
        (
            r#"substring(process.executable, -7) == "python3""#,
            d.clone(),
            true,
        ),
        (
            r#"substring(process.executable, 0, 4) in ("/usr", "/opt")"#,
            d.clone(),
            true,
        ),
        (
            r#"substring(process.executable, 0, 4) in~ ("/USR")"#,
            d.clone(),
            true,
        ),
        (
            r#"substring(process.executable, 0, 4) not in ("/usr")"#,
            d.clone(),
            false,
        ),
        (
            r#"substring(process.name, 0, 2) like~ "RE""#,
            d.clone(),
            true,
        ),
        (
            r#"substring(process.name, 0, 2) regex "r[a-f]""#,
            d.clone(),
            true,
        ),
        (
            r#"startsWith(process.command_line, "start ")"#,
            d.clone(),
            true,
        ),
        (
            r#"startsWith("start regsvr32.exe extra", process.command_line)"#,
            d.clone(),
            true,
        ),
        (
            r#"stringContains(process.command_line, process.name)"#,
            d.clone(),
            true,
        ),
        (
            r#"endsWith(process.command_line, process.name)"#,
            d.clone(),
            true,
        ),
        (
            r#"startsWith(process.name, process.command_line)"#,
            d.clone(),
            false,
        ),
        (
            r#"process.name == concat("regsvr", "32.exe")"#,
            d.clone(),
            true,
        ),
        (r#"process.args_count == add(2, 2)"#, d.clone(), true),
        (r#"process.args_count < length("abcde")"#, d.clone(), true),
        (
            r#"startsWith(process.name, "reg") == true"#,
            d.clone(),
            true,
        ),
        (
            r#"startsWith(process.name, "reg") != true"#,
            d.clone(),
            false,
        ),
    ]);
}

/// Missing values: a missing field is null; the positive test is false and its negation
/// (`not`, `!=`, `not in`) true, as for plain field tests and Elasticsearch's multi-value
/// aware scripts. `== null` / `!= null` on a function test whether it has a value.
#[test]
fn missing_fields_and_null() {
    let none = json!({});
    let name = json!({"process.name": "bash"});
    run_table(&[
        (r#"startsWith(process.name, "b")"#, none.clone(), false),
        (r#"not startsWith(process.name, "b")"#, none.clone(), true),
        (r#"length(process.name) > 1"#, none.clone(), false),
        (r#"not length(process.name) > 1"#, none.clone(), true),
        (r#"length(process.name) != 4"#, none.clone(), true),
        (r#"length(process.name) != 4"#, name.clone(), false),
        (r#"length(process.name) == null"#, none.clone(), true),
        (r#"length(process.name) == null"#, name.clone(), false),
        (r#"length(process.name) != null"#, none.clone(), false),
        (r#"length(process.name) != null"#, name.clone(), true),
        (r#"length(process.name) not in (4)"#, none.clone(), true),
        (
            r#"substring(process.name, 0, 1) : "b""#,
            none.clone(),
            false,
        ),
        (
            r#"concat(process.name, "x") == "bashx""#,
            name.clone(),
            true,
        ),
        (
            r#"concat(process.name, process.executable) != null"#,
            name.clone(),
            false,
        ),
        (r#"indexOf(process.name, "z") == null"#, name.clone(), true),
        (
            r#"indexOf(process.name, "a", process.args_count) == 1"#,
            name.clone(),
            true,
        ),
        // An unknown `?field` is null; a literal null argument makes the call null, and a
        // null condition is false under `not` too (Elasticsearch drops a null filter).
        (r#"length(?no.such.field) == null"#, none.clone(), true),
        (r#"startsWith(?no.such.field, "b")"#, name.clone(), false),
        (r#"startsWith(process.name, null)"#, name.clone(), false),
        (r#"not startsWith(process.name, null)"#, name.clone(), false),
        (r#"length(null) > 1"#, name.clone(), false),
        (r#"not length(null) > 1"#, name.clone(), false),
        (
            r#"cidrMatch(source.ip, null)"#,
            json!({"source.ip": "10.0.0.1"}),
            false,
        ),
        (
            r#"not cidrMatch(source.ip, null)"#,
            json!({"source.ip": "10.0.0.1"}),
            false,
        ),
        (
            r#"true and startsWith(process.name, null)"#,
            name.clone(),
            false,
        ),
        (
            r#"false or not startsWith(process.name, null)"#,
            name.clone(),
            false,
        ),
    ]);
}

/// Multi-valued fields: each reference ranges over the elements; the condition holds when
/// some choice makes it true (Elasticsearch's `multiValueDocValues` rewrite), and its
/// negation when none does.
#[test]
fn multi_valued_fields_match_on_any_element() {
    let args = json!({"process.args": ["ls", "-la", "/very/long/path"], "process.name": "ls"});
    let empty = json!({"process.args": []});
    run_table(&[
        ("length(process.args) > 10", args.clone(), true),
        ("length(process.args) == 2", args.clone(), true),
        ("not length(process.args) == 2", args.clone(), false),
        ("length(process.args) != 2", args.clone(), false),
        ("length(process.args) != 7", args.clone(), true),
        ("length(process.args) > 100", args.clone(), false),
        ("not length(process.args) > 100", args.clone(), true),
        (r#"startsWith(process.args, "-")"#, args.clone(), true),
        (r#"startsWith~(process.args, "/VERY")"#, args.clone(), true),
        (r#"endsWith(process.args, "path")"#, args.clone(), true),
        (
            r#"stringContains(process.args, "long")"#,
            args.clone(),
            true,
        ),
        (
            r#"not stringContains(process.args, "long")"#,
            args.clone(),
            false,
        ),
        (
            r#"substring(process.args, 0, 1) == "/""#,
            args.clone(),
            true,
        ),
        (
            r#"startsWith(process.args, process.name)"#,
            args.clone(),
            true,
        ),
        (
            r#"stringContains(process.args, process.args)"#,
            args.clone(),
            true,
        ),
        (r#"concat(process.args, "") == "-la""#, args.clone(), true),
        ("length(process.args) > 0", empty.clone(), false),
        ("length(process.args) == null", empty.clone(), true),
        ("not length(process.args) > 0", empty.clone(), true),
        (
            r#"cidrMatch(host.ip, "10.0.0.0/8")"#,
            json!({"host.ip": ["fe80::1", "10.1.2.3"]}),
            true,
        ),
        (
            r#"cidrMatch(host.ip, "10.0.0.0/8")"#,
            json!({"host.ip": ["fe80::1", "192.168.0.1"]}),
            false,
        ),
        (
            r#"cidrMatch(host.ip, "fe80::/10", "10.0.0.0/8")"#,
            json!({"host.ip": ["fe80::1"]}),
            true,
        ),
        (
            r#"cidrMatch(host.ip, "10.0.0.0/8")"#,
            json!({"host.ip": "not an ip"}),
            false,
        ),
        (
            r#"not cidrMatch(host.ip, "10.0.0.0/8")"#,
            json!({"host.ip": "not an ip"}),
            true,
        ),
        (r#"not cidrMatch(host.ip, "10.0.0.0/8")"#, json!({}), true),
    ]);
}

/// `startsWith`, `endsWith`, `stringContains` of a field and a literal run as the prefix
/// and wildcard queries Elasticsearch pushes them down to: `*` and `?` in an `endsWith` or
/// `stringContains` literal are wildcards, an empty `stringContains` literal matches any
/// value; they compile to plain string tests the rule index can key on.
#[test]
fn pushed_down_shapes() {
    let n = |s: &str| json!({"process.name": s});
    run_table(&[
        (r#"startsWith(process.name, "py")"#, n("python3"), true),
        (r#"startsWith(process.name, "py")"#, n("Python3"), false),
        (r#"startsWith~(process.name, "PY")"#, n("python3"), true),
        (r#"startswith~(process.name, "PY")"#, n("python3"), true),
        (r#"startsWith(process.name, "p*")"#, n("python3"), false),
        (r#"startsWith(process.name, "p*")"#, n("p*thon"), true),
        (r#"endsWith(process.name, "3")"#, n("python3"), true),
        (r#"endsWith(process.name, "?3")"#, n("python3"), true),
        (r#"endsWith~(process.name, "ON3")"#, n("python3"), true),
        (r#"stringContains(process.name, "tho")"#, n("python3"), true),
        (r#"stringContains(process.name, "t*3")"#, n("python3"), true),
        (
            r#"stringContains(process.name, "THO")"#,
            n("python3"),
            false,
        ),
        (
            r#"stringContains~(process.name, "THO")"#,
            n("python3"),
            true,
        ),
        (r#"stringContains(process.name, "")"#, n("python3"), true),
        (r#"stringContains(process.name, "")"#, n(""), true),
        (r#"stringContains(process.name, "")"#, json!({}), false),
        (r#"not stringContains(process.name, "x")"#, json!({}), true),
        (r#"endsWith(process.name, "\\3")"#, n("python\\3"), true),
    ]);
    for (q, pushed) in [
        (r#"startsWith(process.name, "py")"#, true),
        (r#"endsWith~(process.name, ".exe")"#, true),
        (r#"stringContains(process.name, "x")"#, true),
        (r#"startsWith(process.name, "p*")"#, false),
        (r#"endsWith(process.name, "\\x")"#, false),
        (r#"startsWith(process.name, process.executable)"#, false),
        (r#"startsWith(process.pid, "1")"#, false),
    ] {
        let root = match compile(q) {
            Ok(c) => c.root,
            Err(_) => continue, // the long field is a type error (checked below)
        };
        let is_test = matches!(root, Node::Test(..));
        assert_eq!(is_test, pushed, "{q}: {root:?}");
    }
}

/// The rule index still finds rules with function conditions: keyed on a pushed-down
/// literal, or evaluated for every event when nothing is keyable.
#[test]
fn index_agrees_with_full_evaluation() {
    use crate::rules::{RuleSet, testkit::rule};
    let queries = [
        r#"process where startsWith(process.name, "py")"#,
        r#"process where length(process.command_line) > 20"#,
        r#"process where startsWith(process.executable, process.command_line)"#,
        r#"process where process.name == "bash" and not stringContains~(process.command_line, "-c")"#,
        r#"process where substring(process.name, 0, 2) in ("py", "pe")"#,
    ];
    let set = RuleSet::new(queries.iter().map(|q| rule(q)).collect(), &TestSchema);
    let docs = [
        json!({"event.category": "process", "process.name": "python3", "process.command_line": "python3 -c 'x'"}),
        json!({"event.category": "process", "process.name": "perl", "process.executable": "/usr/bin/perl", "process.command_line": "/usr/bin/perl"}),
        json!({"event.category": "process", "process.name": "bash", "process.command_line": "bash -C"}),
        json!({"event.category": "process", "process.name": "bash", "process.command_line": "bash"}),
        json!({"event.category": "process", "process.name": "sh", "process.command_line": "a command line long enough"}),
    ];
    let mut total = 0;
    for d in &docs {
        let doc = TestDoc::from_json(d);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        set.matches(&doc, &mut a);
        set.matches_unindexed(&doc, &mut b);
        let names = |v: &Vec<crate::rules::RuleIdx>| {
            v.iter()
                .map(|&i| set.rule(i).meta.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b), "{d}");
        total += a.len();
    }
    assert_eq!(total, 6, "matches across the documents");
}

/// Compile-time checks name the function and point at the offending part.
#[test]
fn compile_errors_name_the_function() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "nosuch(process.name)",
            "nosuch",
            "unknown function `nosuch`",
        ),
        (
            "wildcard(process.name, \"a*\")",
            "wildcard",
            "unknown function `wildcard`",
        ),
        (
            "length(process.name, 1) > 1",
            "length(process.name, 1)",
            "`length` takes 1 argument, found 2",
        ),
        (
            "startsWith(process.name)",
            "startsWith(process.name)",
            "`startsWith` takes 2 arguments, found 1",
        ),
        (
            "between(process.name, \"a\")",
            "between(process.name, \"a\")",
            "`between` takes 3 to 4 arguments",
        ),
        (
            "cidrMatch(source.ip)",
            "cidrMatch(source.ip)",
            "`cidrMatch` takes at least 2 arguments",
        ),
        (
            "concat() == \"\"",
            "concat()",
            "`concat` takes at least 1 argument",
        ),
        (
            "length~(process.name) > 1",
            "length~",
            "no case-insensitive form `length~`",
        ),
        (
            "cidrMatch~(source.ip, \"10.0.0.0/8\")",
            "cidrMatch~",
            "no case-insensitive form",
        ),
        (
            "length(process.pid) > 1",
            "process.pid",
            "argument 1 of `length` must be a string, found a number",
        ),
        (
            "length(@timestamp) > 1",
            "@timestamp",
            "must be a string, found a date",
        ),
        (
            "add(process.name, 1) > 1",
            "process.name",
            "argument 1 of `add` must be a number",
        ),
        (
            "substring(process.name, 1.5) == \"\"",
            "1.5",
            "argument 2 of `substring` must be an integer",
        ),
        (
            "between(process.name, \"a\", \"b\", 1) == \"\"",
            "1",
            "argument 4 of `between` must be a boolean",
        ),
        (
            "startsWith(process.name, 1)",
            "1",
            "argument 2 of `startsWith` must be a string",
        ),
        (
            "cidrMatch(source.ip, \"10.0.0.0/33\")",
            "\"10.0.0.0/33\"",
            "not an IP address or CIDR block",
        ),
        (
            "cidrMatch(source.ip, host.ip)",
            "host.ip",
            "argument 2 of `cidrMatch` must be a literal",
        ),
        (
            "number(process.name, process.pid) == 1",
            "process.pid",
            "base of `number` must be an integer literal",
        ),
        (
            "length(process.name)",
            "length(process.name)",
            "returns a number, not a condition",
        ),
        (
            "substring(process.name, 1)",
            "substring(process.name, 1)",
            "returns a string, not a condition",
        ),
        (
            "length(process.name) == \"3\"",
            "\"3\"",
            "cannot compare `length(…)` (a number) with a string",
        ),
        ("length(process.name) in (\"3\")", "\"3\"", "cannot compare"),
        ("string(process.pid) in~ (3)", "3", "cannot compare"),
        (
            "length(process.name) in~ (3)",
            "in~",
            "`in~` needs a string",
        ),
        ("length(process.name) : \"3\"", ":", "`:` needs a string"),
        (
            "length(process.name) > length(process.executable)",
            "length(process.executable)",
            "comparisons against fields are not supported",
        ),
        (
            "process.name == string(process.pid)",
            "string(process.pid)",
            "comparisons against fields are not supported",
        ),
        (
            "startsWith(process.name, \"a\") > true",
            "true",
            "booleans can only be compared",
        ),
        (
            "length(process.name) > null",
            "null",
            "null can only be compared",
        ),
        (
            "length(no.such.field) > 1",
            "no.such.field",
            "unknown field",
        ),
        (
            "length(process.name) in (1, null)",
            "null",
            "null is not allowed in a list",
        ),
        (
            "concat(process.name, process.name, process.name, process.name, process.name, process.name, process.name, process.name, process.name) == \"\"",
            "process.name) ==",
            "too many field references",
        ),
    ];
    let mut failures = Vec::new();
    for (cond, at, msg) in cases {
        let q = format!("any where {cond}");
        match compile_query_as_written(&q, &IpSchema) {
            Ok(c) => failures.push(format!("{cond}: compiled to {:?}", c.root)),
            Err(e) => {
                let want = q.find(at).expect("marker in query");
                if e.span.start != want || !e.message.contains(msg) {
                    failures.push(format!(
                        "{cond}: got {:?} at {}, want {msg:?} at {want}",
                        e.message, e.span.start
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A probe that knows only some fields: function conditions on unknown fields are unknown.
#[test]
fn three_valued_evaluation_over_a_probe() {
    use crate::ecs::field::FieldValue;
    struct NameOnly<'a>(FieldId, &'a str);
    impl crate::rules::Probe for NameOnly<'_> {
        fn field(&self, id: FieldId) -> Option<FieldValue<'_>> {
            (id == self.0).then_some(FieldValue::Str(self.1))
        }
    }
    let name = TestSchema.resolve("process.name").expect("field").id;
    let probe = NameOnly(name, "python3");
    let e3 = |q: &str| compile(q).expect(q).root.eval3(&probe);
    assert_eq!(e3("length(process.name) == 7"), Some(true));
    assert_eq!(e3("length(process.name) == 8"), Some(false));
    assert_eq!(e3("not length(process.name) == 8"), Some(true));
    assert_eq!(e3("startsWith(process.executable, process.name)"), None);
    assert_eq!(e3("length(process.command_line) > 1"), None);
    assert_eq!(
        e3("length(process.command_line) > 1 and length(process.name) == 1"),
        Some(false)
    );
}

/// Elastic's Linux rules: none is refused for a function any more, and the single-event
/// rule that uses `length` fires on what it describes and not on a near miss.
#[test]
fn elastic_linux_rules_with_functions() {
    use crate::rules::RuleSet;
    let schema = crate::ecs::schema();
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "rules::eql::func_tests::elastic_linux_rules_with_functions",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let (set, errors) = RuleSet::load(&[dir], schema);
    let about_functions: Vec<String> = errors
        .iter()
        .map(|e| e.to_string())
        .filter(|m| m.contains("function") || m.contains("argument"))
        .collect();
    assert!(about_functions.is_empty(), "{about_functions:#?}");
    let ids = [
        "1d0027d4-6717-4a37-bad8-531d8e9fe53f", // hex payload: length(process.command_line) > 50
        "769a2e72-11bd-437b-9503-e51e7790d273", // SUID: startsWith(process.executable, process.command_line)
    ];
    for id in ids {
        assert!(
            set.rules().iter().any(|r| r.meta.rule_id == id),
            "{id} compiles"
        );
    }
    let hex = |cmd: &str| {
        let doc = TestDoc::from_json_with(
            schema,
            &json!({"event.category": ["process"], "event.type": ["start"], "event.action": "exec",
                "host.os.type": "linux", "process.name": "sh", "process.command_line": cmd,
                "process.parent.executable": "/usr/bin/bash"}),
        );
        let mut out = Vec::new();
        set.matches(&doc, &mut out);
        out.iter().any(|&i| set.rule(i).meta.rule_id == ids[0])
    };
    assert!(
        hex(&format!("sh -c {}", "\\x41".repeat(14))),
        "62 characters"
    );
    assert!(
        !hex(&format!("sh -c {}", "\\x1".repeat(14))),
        "48 characters: too short"
    );
    assert!(!hex(&format!("sh -c {}", "\\x41".repeat(13))), "13 escapes");
}
