use std::path::Path;

use serde_json::json;

use super::*;
use crate::rules::parse_rule;

fn rule_text(name: &str, query: &str) -> String {
    format!(
        "[rule]\nname = \"{name}\"\ndescription = \"d\"\nrisk_score = 47\nrule_id = \"id-{name}\"\nseverity = \"medium\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
    )
}

fn rules(queries: &[(&str, &str)]) -> RuleSet {
    let schema = crate::ecs::schema();
    let rules = queries
        .iter()
        .map(|(n, q)| parse_rule(Path::new("t.toml"), &rule_text(n, q), schema).unwrap())
        .collect();
    RuleSet::new(rules, schema)
}

fn lines(input: &[u8], cap: usize) -> Vec<(Line, Vec<u8>)> {
    // A tiny buffer so lines span many fill_buf calls.
    let mut r = BufReader::with_capacity(3, input);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(l) = next_line(&mut r, &mut buf, cap).unwrap() {
        out.push((l, buf.clone()));
    }
    out
}

#[test]
fn lines_are_split_capped_and_the_last_may_lack_a_newline() {
    use Line::*;
    assert_eq!(lines(b"", 10), vec![]);
    assert_eq!(lines(b"\n", 10), vec![(Complete, vec![])]);
    assert_eq!(
        lines(b"ab\r\ncd", 10),
        vec![(Complete, b"ab\r".to_vec()), (Complete, b"cd".to_vec())]
    );
    assert_eq!(
        lines(b"0123456789\n01234567890\nxy\n0123456789012", 10),
        vec![
            (Complete, b"0123456789".to_vec()),
            (TooLong(11), vec![]),
            (Complete, b"xy".to_vec()),
            (TooLong(13), vec![]),
        ]
    );
}

#[test]
fn dotted_keys_expand_like_elasticsearch() {
    let ok = [
        (json!({"a.b": 1}), json!({"a": {"b": 1}})),
        (
            json!({"a.b": 1, "a": {"c": 2}}),
            json!({"a": {"b": 1, "c": 2}}),
        ),
        (
            json!({"a": {"c.d": 2}, "a.c.e": 3}),
            json!({"a": {"c": {"d": 2, "e": 3}}}),
        ),
        (json!({"x": [{"y.z": 1}]}), json!({"x": [{"y": {"z": 1}}]})),
        (json!({"@timestamp": "t"}), json!({"@timestamp": "t"})),
    ];
    for (input, want) in ok {
        assert_eq!(expand_dotted(input.clone()).unwrap(), want, "{input}");
    }
    let bad = [
        (json!({"a": 1, "a.b": 2}), "conflicts"),
        (json!({"a.b": 2, "a": 1}), "conflicts"),
        (json!({"a.b": 1, "a": {"b": 2}}), "conflicts"),
        (json!({"a..b": 1}), "empty part"),
        (json!({".a": 1}), "empty part"),
    ];
    for (input, why) in bad {
        let e = expand_dotted(input.clone()).unwrap_err();
        assert!(e.contains(why), "{input}: {e}");
    }
    let deep = format!("{{\"{}\": 1}}", vec!["a"; 100_000].join("."));
    let e = parse_document(deep.as_bytes()).unwrap_err();
    assert!(e.contains("deeper"), "{e}");
}

#[test]
fn malformed_documents_say_why() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"{\"process\": {\"name\": \"a\xff\"}}",
            "invalid UTF-8 at byte 23",
        ),
        (b"{\"process\": ", "invalid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{\"process\": {\"pid\": \"x\"}}", "not an ECS document"),
        (b"{\"process\": \"ssh\"}", "not an ECS document"),
        (b"{\"process.name\": [1]}", "not an ECS document"),
    ];
    for (line, why) in cases {
        let e = parse_document(line).unwrap_err();
        assert!(e.contains(why), "{}: {e}", String::from_utf8_lossy(line));
    }
    let d = parse_document(br#"{"process.name": "ssh", "process": {"pid": 7}}"#).unwrap();
    let p = d.process.unwrap();
    assert_eq!(p.core.name.as_deref(), Some("ssh"));
    assert_eq!(p.core.pid, Some(7));
}

#[test]
fn replay_writes_alerts_and_reports_malformed_lines_by_number() {
    let set = rules(&[
        ("A", "process where process.name == \"ssh\""),
        ("B", "process where process.pid == 7"),
    ]);
    // `process where` requires `event.category: process`.
    let input = b"{\"event\": {\"category\": [\"process\"]}, \"process\": {\"name\": \"ssh\", \"pid\": 7}}\n\
        \n\
        not json\n\
        {\"event.category\": [\"process\"], \"process.name\": \"ls\", \"process.pid\": 7, \"@timestamp\": \"2020-01-01T00:00:00Z\"}\n\
        {\"event.category\": [\"process\"], \"process.name\": \"ls\"}";
    let mut out = Vec::new();
    let mut err = Vec::new();
    let s = replay(&set, &input[..], "ev.ndjson", &mut out, &mut err).unwrap();
    assert_eq!(
        s,
        Stats {
            lines: 5,
            events: 3,
            blank: 1,
            malformed: 1,
            alerts: 3,
            by_rule: vec![1, 2],
        }
    );
    let err = String::from_utf8(err).unwrap();
    assert!(err.starts_with("ev.ndjson:3: invalid JSON: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let alerts: Vec<Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "B"]);
    assert_eq!(alerts[2]["@timestamp"], "2020-01-01T00:00:00Z");
    assert_eq!(alerts[2]["process"]["name"], "ls");
    let mut summary = Vec::new();
    write_summary(&set, &s, &mut summary).unwrap();
    assert_eq!(
        String::from_utf8(summary).unwrap(),
        "replay: 5 lines read, 3 events, 1 blank, 1 malformed, 3 alerts\n  1 A (id-A)\n  2 B (id-B)\n"
    );
}
