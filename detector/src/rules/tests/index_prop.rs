//! The index never changes results: indexed and brute-force matching agree on many
//! generated documents.

use serde_json::json;

use crate::rules::testkit::{TestDoc, TestSchema};
use crate::rules::{Rule, RuleIdx, RuleMeta, RuleSet, compile_query};

const QUERIES: &[&str] = &[
    r#"process where process.name == "ssh""#,
    r#"process where process.name in ("ssh", "sshd", "bash") and event.action == "exec""#,
    r#"process where process.name : ("SSH", "Curl")"#,
    r#"process where process.name : "ssh*""#,
    r#"process where process.name like~ "BASH""#,
    r#"process where process.name like "bash""#,
    r#"process where process.name in~ ("CAFÉ", "k", "Sh")"#,
    r#"process where event.action == "fork""#,
    r#"process where event.action in~ ("EXEC") and process.args == "-c""#,
    r#"process where process.name != "ssh""#,
    r#"process where not process.name in ("ssh")"#,
    r#"process where process.name == "ssh" or event.action == "exec""#,
    r#"any where process.args : "*curl*""#,
    r#"any where true"#,
    r#"process where process.name in ("a1", "a2", "a3", "a4", "a5", "a6", "curl")"#,
    r#"process where event.action : "ex*" and process.name : ("sh", "ssh")"#,
    r#"process where process.name regex~ "ssh.?""#,
    r#"process where ?process.nope == "x" or process.name == "sh""#,
    r#"process where (process.name == "ssh" or process.name : "CURL" and event.action == "exec")"#,
    r#"process where (process.name in ("bash") or (process.name in~ ("K", "Café") and process.args == "-c"))"#,
    r#"process where (process.name == "ssh" or process.args == "-c") and event.action : "fork""#,
    r#"process where (process.name == "ssh" or false) and event.action like "exec""#,
    // Keyed on several fields at once (an `or` mixing process.args and process.name).
    r#"process where event.action == "exec" and (process.args in ("-L", "x") or process.name == "bash" or process.args == "-c")"#,
    r#"process where event.action in~ ("exec") and (process.args : "-l" or process.name in~ ("CURL", "Café"))"#,
    r#"process where process.args in~ ("c", "-q") and process.name : "s*""#,
    r#"process where event.action == "fork" and process.args == "-c" and process.name in ("sh", "bash", "ssh")"#,
    // Keyed on literals of patterns and regexes (prefix, suffix, substring, folded).
    r#"process where process.args like~ "*curl*""#,
    r#"process where process.args : "-*" and event.action == "exec""#,
    r#"process where process.args like "*tmp/*" and process.name : "s*""#,
    r#"process where process.args regex ".*url.*" or process.name like "*sh""#,
    r#"process where not process.args like "*c*" and process.name == "sh""#,
    r#"process where process.name like "?sh" and process.args like~ ("*URL*", "-?")"#,
];

const NAMES: &[&str] = &[
    "ssh",
    "SSH",
    "sshd",
    "bash",
    "BASH",
    "sh",
    "Sh",
    "curl",
    "CURL",
    "café",
    "CAFÉ",
    "\u{212A}",
    "k",
    "a6",
    "",
    "ssh-keygen",
    "xyz",
];
const ACTIONS: &[&str] = &["exec", "EXEC", "fork", "end", "Exec"];
const ARGS: &[&str] = &[
    "-c",
    "curl http://x",
    "-L",
    "C",
    "\u{212A}url",
    "xCURLy",
    "/tmp/x",
    "ab\u{FFFD}",
];

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn rules() -> Vec<Rule> {
    QUERIES
        .iter()
        .map(|q| crate::rules::testkit::rule(q))
        .collect()
}

/// Operands reordered by cost ([`crate::rules::eql::compile_query`]) give the same result
/// as the written order on every generated document, and the reordering happens.
#[test]
fn cost_order_never_changes_results() {
    let extra = [
        r#"process where process.args : "*curl*" and process.name == "ssh""#,
        r#"process where process.args regex~ ".*-c.*" or process.name in ("bash", "sh") or event.action == "fork""#,
        r#"process where not (process.args like~ ("*a*", "*b*", "-?") and event.action == "exec") and process.name != "sh""#,
    ];
    let queries: Vec<&str> = QUERIES.iter().copied().chain(extra).collect();
    let pairs: Vec<_> = queries
        .iter()
        .map(|q| {
            (
                compile_query(q, &TestSchema).unwrap(),
                crate::rules::eql::compile_query_as_written(q, &TestSchema).unwrap(),
            )
        })
        .collect();
    let moved = pairs
        .iter()
        .filter(|(a, b)| format!("{:?}", a.root) != format!("{:?}", b.root))
        .count();
    assert!(moved >= 3, "reordered trees: {moved}");
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let mut matched = 0;
    for _ in 0..20_000 {
        let mut d = serde_json::Map::new();
        d.insert("process.name".into(), json!(rng.pick(NAMES)));
        if rng.chance(90) {
            d.insert("event.action".into(), json!(rng.pick(ACTIONS)));
        }
        if rng.chance(70) {
            d.insert(
                "process.args".into(),
                json!([rng.pick(ARGS), rng.pick(ARGS)]),
            );
        }
        let doc = TestDoc::from_json(&serde_json::Value::Object(d.clone()));
        for (q, (ordered, written)) in queries.iter().zip(&pairs) {
            let r = ordered.matches(&doc);
            assert_eq!(r, written.matches(&doc), "{q} on {d:?}");
            matched += r as usize;
        }
    }
    assert!(matched > 10_000, "matches: {matched}");
}

#[test]
fn indexed_matches_equal_brute_force() {
    let set = RuleSet::new(rules(), &TestSchema);
    assert!(
        set.unindexed_count() < set.len() / 2,
        "most test rules are indexable: {}",
        set.unindexed_count()
    );
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut total_matches = 0;
    for _ in 0..20_000 {
        let mut d = serde_json::Map::new();
        if rng.chance(90) {
            d.insert("event.category".into(), json!(["process"]));
        }
        if rng.chance(90) {
            if rng.chance(15) {
                d.insert(
                    "process.name".into(),
                    json!([rng.pick(NAMES), rng.pick(NAMES)]),
                );
            } else {
                d.insert("process.name".into(), json!(rng.pick(NAMES)));
            }
        }
        if rng.chance(90) {
            d.insert("event.action".into(), json!(rng.pick(ACTIONS)));
        }
        if rng.chance(60) {
            d.insert(
                "process.args".into(),
                json!([rng.pick(ARGS), rng.pick(ARGS)]),
            );
        }
        let doc = TestDoc::from_json(&serde_json::Value::Object(d.clone()));
        set.matches(&doc, &mut a);
        set.matches_unindexed(&doc, &mut b);
        assert!(set.candidate_count(&doc) >= a.len());
        // The pre-filter on name and action alone never drops a rule that matches.
        if let (Some(name), Some(action)) = (
            d.get("process.name").and_then(|v| v.as_str()),
            d.get("event.action").and_then(|v| v.as_str()),
        ) {
            assert!(set.may_match(name, action) || a.is_empty(), "doc {d:?}");
        }
        let queries = |v: &[RuleIdx]| v.iter().map(|&i| &set.rule(i).query).collect::<Vec<_>>();
        assert_eq!(a, b, "doc {d:?}: {:?} / {:?}", queries(&a), queries(&b));
        total_matches += a.len();
    }
    assert!(
        total_matches > 20_000,
        "the generator produces matches: {total_matches}"
    );
}

#[test]
fn may_match_skips_events_no_rule_can_match() {
    let set = RuleSet::new(
        [r#"process where process.name : ("sshd", "ssh") and event.action in ("fork", "exec")"#]
            .iter()
            .map(|q| Rule {
                meta: RuleMeta::default(),
                query: q.to_string(),
                path: "test".into(),
                compiled: compile_query(q, &TestSchema).unwrap(),
            })
            .collect(),
        &TestSchema,
    );
    assert!(set.may_match("ssh", "exec"));
    assert!(set.may_match("SSHD", "fork"));
    assert!(!set.may_match("bash", "exec"));
    assert!(!set.may_match("ssh-keygen", "exec"));
}

#[test]
fn rule_sets_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
}
