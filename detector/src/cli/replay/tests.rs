use std::path::Path;

use serde_json::json;

use super::*;
use crate::alert::LineEncoder;
use crate::config::Exception;
use crate::rules::{RuleSet, parse_rule};

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
    let mut stage = AlertStage::new(set, AlertPolicy::off());
    let s = replay(&mut stage, &input[..], "ev.ndjson", &mut out, &mut err).unwrap();
    assert_eq!(
        s,
        Stats {
            lines: 5,
            events: 3,
            blank: 1,
            malformed: 1,
            alerts: 3,
            by_rule: vec![1, 2],
            excepted: 0,
            suppressed: 0,
            building_blocks: 0,
            sequence_events_lost: 0,
            sequences_evicted: 0,
            sequences_pending: 0,
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
    write_summary(&stage, &PolicySource::Off, &s, &mut summary).unwrap();
    assert_eq!(
        String::from_utf8(summary).unwrap(),
        "replay: 5 lines read, 3 events, 1 blank, 1 malformed, 3 alerts\n\
         policy: off (--no-policy)\n  1 A (id-A)\n  2 B (id-B)\n"
    );
}

/// The recorded stream of the policy tests: 25 identical `ssh` execs in container `c1`, one
/// a second, and among them an `ssh` in `c2`, an `sshd` in `c1`, an `ssh` in the excepted
/// container and a document no rule matches. As `(seconds after the start, document)`.
fn recorded_stream() -> Vec<(f64, EcsDocument)> {
    let doc = |secs: f64, pid: u32, name: &str, exe: &str, container: &str| {
        let ns = 1_767_225_600_000_000_000i128 + (secs * 1e9) as i128;
        let v = json!({
            "@timestamp": crate::ecs::format_rfc3339_nanos(ns),
            "event": {"kind": "event", "category": ["process"], "type": ["start"],
                      "action": "exec"},
            "process": {"pid": pid, "name": name, "executable": exe},
            "container": {"id": container},
        });
        (secs, parse_document(v.to_string().as_bytes()).unwrap())
    };
    let mut out: Vec<(f64, EcsDocument)> = (0..25)
        .map(|k| doc(f64::from(k), 1000 + k, "ssh", "/usr/bin/ssh", "c1"))
        .collect();
    out.push(doc(5.5, 2000, "ssh", "/usr/bin/ssh", "c2"));
    out.push(doc(6.5, 2001, "sshd", "/usr/sbin/sshd", "c1"));
    out.push(doc(7.5, 2002, "ssh", "/usr/bin/ssh", "c-excepted"));
    out.push(doc(12.5, 2003, "ls", "/usr/bin/ls", "c1"));
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn stream_rules() -> RuleSet {
    rules(&[
        ("A", "process where process.name == \"ssh\""),
        ("B", "process where process.name : \"SSHD\""),
    ])
}

/// The config of the policy tests: a 10 s suppression window, rule A excepted in container
/// `c-excepted`.
fn stream_config() -> Config {
    let mut config = Config::default();
    config.alerts.suppression_window_secs = 10;
    config.exceptions = vec![Exception {
        rule_id: Some("id-A".into()),
        container_id: Some("c-excepted".into()),
        ..Exception::default()
    }];
    config
}

fn replay_docs(policy: AlertPolicy, docs: &[(f64, EcsDocument)]) -> (Stats, Vec<u8>) {
    let mut input = Vec::new();
    let mut enc = LineEncoder::new();
    for (_, d) in docs {
        input.extend_from_slice(enc.encode(d).unwrap());
    }
    let mut stage = AlertStage::new(stream_rules(), policy);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = replay(&mut stage, &input[..], "rec", &mut out, &mut err).unwrap();
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    (s, out)
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// `(rule name, pid, suppressed_count)` of each alert.
fn summary_of(alerts: &[Value]) -> Vec<(String, u64, Option<u64>)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["rule"]["name"].as_str().unwrap().to_owned(),
                a["process"]["pid"].as_u64().unwrap(),
                a["detector"]["alert"]["suppressed_count"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn a_rule_excepted_in_the_config_alerts_only_without_the_policy() {
    let docs = recorded_stream();
    let excepted = 2002;
    // Without suppression, so that only the exception differs.
    let mut config = stream_config();
    config.alerts.suppression_window_secs = 0;
    let (on, out) = replay_docs(AlertPolicy::from_config(&config), &docs);
    let pids: Vec<u64> = summary_of(&json_lines(&out)).iter().map(|a| a.1).collect();
    assert!(!pids.contains(&excepted), "{pids:?}");
    assert_eq!(on.excepted, 1);
    assert_eq!((on.alerts, on.suppressed), (27, 0));
    let (off, out) = replay_docs(AlertPolicy::off(), &docs);
    let pids: Vec<u64> = summary_of(&json_lines(&out)).iter().map(|a| a.1).collect();
    assert!(pids.contains(&excepted), "{pids:?}");
    assert_eq!((off.alerts, off.excepted, off.suppressed), (28, 0, 0));
    assert_eq!(off.by_rule, vec![27, 1]);
}

#[test]
fn suppression_folds_on_the_documents_time() {
    let (s, out) = replay_docs(
        AlertPolicy::from_config(&stream_config()),
        &recorded_stream(),
    );
    // Windows of 10 s of event time, however fast the replay: [0, 10) folds 1..=9, which
    // the document at 10 s closes; [10, 20) folds 11..=19; [20, 30) folds 21..=24 and is
    // closed by the end of the input. The window of c2 and that of sshd folded nothing.
    let a = |rule: &str, pid, n| (rule.to_owned(), pid, n);
    assert_eq!(
        summary_of(&json_lines(&out)),
        vec![
            a("A", 1000, None),
            a("A", 2000, None),
            a("B", 2001, None),
            a("A", 1009, Some(9)),
            a("A", 1010, None),
            a("A", 1019, Some(9)),
            a("A", 1020, None),
            a("A", 1024, Some(4)),
        ]
    );
    assert_eq!((s.alerts, s.excepted, s.suppressed), (8, 1, 22));
    assert_eq!(s.by_rule, vec![7, 1]);
}

/// A sink that keeps every line in memory, as the daemon's sinks receive them.
struct Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl crate::sink::LineTarget for Memory {
    fn write_line(&mut self, line: &[u8]) -> Result<(), crate::sink::WriteFailure> {
        self.0.lock().unwrap().extend_from_slice(line);
        Ok(())
    }
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn name(&self) -> &str {
        "memory"
    }
}

/// The line with the values of `event.id` and `event.created` (by nature different from
/// one alert to the next) replaced by `-`, after checking that they are there.
fn without_fresh_fields(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    let id = v["event"]["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let created = v["event"]["created"].as_str().unwrap();
    assert!(
        crate::alert::EventTime::parse(created).is_some(),
        "{created}"
    );
    let out = line
        .replacen(&format!("\"id\":\"{id}\""), "\"id\":\"-\"", 1)
        .replacen(
            &format!("\"created\":\"{created}\""),
            "\"created\":\"-\"",
            1,
        );
    assert_eq!(
        out.len() + id.len() + created.len(),
        line.len() + 2,
        "{line}"
    );
    out
}

#[test]
fn replay_writes_the_alert_lines_the_live_daemon_writes() {
    use std::time::{Duration, Instant};
    let docs = recorded_stream();
    // The stream's own config (exceptions), no policy at all (suppression off), and the
    // shipped defaults (the 60 s suppression window).
    let mut unsuppressed = Config::default();
    unsuppressed.alerts.suppression_window_secs = 0;
    for (config, want) in [
        (stream_config(), Some(8)),
        (unsuppressed, Some(28)),
        (Config::default(), None),
    ] {
        // The daemon's detection stage, fed as `run` feeds it: each document when the
        // reader delivers it (3 ms after the event), housekeeping every 500 ms, and the
        // shutdown drain at the end. Simulated instants, so the test does not sleep.
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink =
            crate::sink::LineSink::new(Memory(lines.clone()), crate::sink::QueueLimits::default());
        let mut live = crate::daemon::Detection::new(
            stream_rules(),
            AlertPolicy::from_config(&config),
            vec![Box::new(sink)],
        );
        let base = Instant::now();
        let latency = Duration::from_millis(3);
        let mut docs_left = docs.iter().peekable();
        for tick in 1..=64u32 {
            let tick_at = base + Duration::from_millis(500) * tick;
            while let Some((secs, doc)) =
                docs_left.next_if(|(s, _)| base + Duration::from_secs_f64(*s) + latency < tick_at)
            {
                live.evaluate_at(doc, base + Duration::from_secs_f64(*secs) + latency);
            }
            live.tick_at(tick_at);
        }
        assert!(docs_left.next().is_none());
        assert_eq!(live.finish(), 0);
        let live_out = lines.lock().unwrap().clone();

        let (s, replayed) = replay_docs(AlertPolicy::from_config(&config), &docs);
        let live_out = String::from_utf8(live_out).unwrap();
        let replayed = String::from_utf8(replayed).unwrap();
        let want = want.unwrap_or_else(|| {
            // Folding: fewer lines than matches, and every match accounted for.
            assert!(s.suppressed > 0, "the default window folds this stream");
            replayed.lines().count()
        });
        assert_eq!(replayed.lines().count(), want);
        assert!(want <= 28);
        assert_eq!(live.stats().alerts, s.alerts);
        assert_eq!(live.policy().excepted, s.excepted);
        assert_eq!(live.policy().suppressed, s.suppressed);
        assert_eq!(live_out.lines().count(), want);
        for (l, r) in live_out.lines().zip(replayed.lines()) {
            assert_eq!(without_fresh_fields(l), without_fresh_fields(r));
        }
    }
}
