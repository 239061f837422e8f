use serde_json::json;

use crate::ecs::field::{FieldId, Schema};
use crate::rules::testkit::{Rng, TestDoc, TestSchema};
use crate::rules::{Rule, compile_query};
use crate::testsupport::{Corpus, Need, require};

/// The argument fields of the test schema.
fn args_fields(schema: &dyn Schema) -> Vec<FieldId> {
    crate::ecs::ARGS_FIELDS
        .iter()
        .filter_map(|p| schema.resolve(p).map(|d| d.id))
        .collect()
}

/// Which queries are digit-blind in the argument fields.
#[test]
fn blind_queries_are_those_comparing_no_digit() {
    let rows: &[(&str, bool)] = &[
        (r#"process where process.args : "*hostfwd*""#, true),
        (r#"process where process.args : "-p?""#, true),
        (r#"process where process.args in ("-c", "--exec")"#, true),
        (r#"process where process.args == "-9""#, false),
        (r#"process where process.command_line : "*:4444*""#, false),
        (
            r#"process where process.command_line like~ "*/dev/tcp/*""#,
            true,
        ),
        (r#"process where process.args_count >= 3"#, true),
        (r#"process where process.args == null"#, true),
        (r#"process where not process.args : "*exec*""#, true),
        (r#"process where not process.args : "*base64*""#, false),
        (
            r#"process where process.command_line regex ".*\\d+\\.sh""#,
            true,
        ),
        (
            r#"process where process.command_line regex ".*[0-9]+""#,
            true,
        ),
        (r#"process where process.command_line regex "a{2}.*""#, true),
        (
            r#"process where process.command_line regex ".*[1-9]+""#,
            false,
        ),
        (r#"process where process.command_line regex ".*1.*""#, false),
        (r#"process where process.command_line > "b""#, false),
        (r#"process where length(process.command_line) > 5"#, false),
        (r#"process where length(process.name) > 5"#, true),
        (
            r#"process where process.name == "python3" and process.args : "*-c*""#,
            true,
        ),
        // Digits outside the argument fields do not matter.
        (
            r#"process where process.name == "python3" and process.pid == 1"#,
            true,
        ),
        (
            r#"process where process.name : "python3*" or process.args : "1""#,
            false,
        ),
        (r#"process where process.parent.args : "*123*""#, false),
    ];
    let fields = args_fields(&TestSchema);
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|&(q, want)| {
            let c = compile_query(q, &TestSchema).unwrap_or_else(|e| panic!("{q}: {e}"));
            let got = c.root.digit_blind(&fields);
            (got != want).then(|| format!("{q}: blind {got}, want {want}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// An argument list of tokens from `words`, digits and separators.
fn args(rng: &mut Rng, words: &[String]) -> Vec<String> {
    (0..1 + rng.below(4))
        .map(|_| {
            let mut a = String::new();
            for _ in 0..1 + rng.below(3) {
                match rng.below(4) {
                    0 if !words.is_empty() => a.push_str(&words[rng.below(words.len())]),
                    1 => a.push_str(&rng.below(10_000).to_string()),
                    2 => a.push_str(["-", ":", "/", ".", " ", "x"][rng.below(6)]),
                    _ => a.push((b'0' + rng.below(10) as u8) as char),
                }
            }
            a
        })
        .collect()
}

/// `args` with every ASCII digit drawn again.
fn redraw_digits(rng: &mut Rng, args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        (b'0' + rng.below(10) as u8) as char
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect()
}

/// The document of one exec with these arguments (and the parent's), in `schema`.
fn doc(schema: &dyn Schema, name: &str, args: &[String], parent: &[String]) -> TestDoc {
    let mut v = json!({
        "event.category": "process", "event.type": "start", "event.action": "exec",
        "process.name": name, "process.parent.name": name,
        "process.args": args, "process.args_count": args.len(),
        "process.command_line": args.join(" "), "process.parent.args": parent,
    });
    if schema.resolve("process.parent.command_line").is_some() {
        v["process.parent.command_line"] = json!(parent.join(" "));
        v["process.parent.args_count"] = json!(parent.len());
    }
    TestDoc::from_json_with(schema, &v)
}

/// A document seen as a probe that knows every field.
struct Known<'a>(&'a TestDoc);

impl crate::rules::Probe for Known<'_> {
    fn field(&self, id: FieldId) -> Option<crate::ecs::field::FieldValue<'_>> {
        use crate::ecs::field::Document;
        Some(self.0.field(id))
    }
}

/// What the shape evaluation of a set of rules gave over random arguments.
#[derive(Debug, Default)]
struct Seen {
    /// Rules whose verdict changed with the digits alone.
    differ: Vec<bool>,
    /// Answers of [`Node::eval3_shape`] that were known, of rules that tell digits apart.
    known_of_telling: usize,
}

/// For each rule, random argument lists and the same with other digits: the shape
/// evaluation gives both the same answer, and when it knows one it is the verdict of both;
/// a blind rule gives both the same verdict.
///
/// [`Node::eval3_shape`]: super::super::matcher::Node::eval3_shape
fn check_shapes(rules: &[Rule], schema: &dyn Schema, rounds: usize) -> Seen {
    let fields = args_fields(schema);
    let quoted = regex::Regex::new(r#""((?:[^"\\]|\\.)*)""#).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seen = Seen::default();
    for r in rules {
        // Words from the rule's own strings, so that its tests are reached and hit.
        let words: Vec<String> = quoted
            .captures_iter(&r.query)
            .map(|c| c[1].replace(['*', '?'], ""))
            .filter(|w| !w.is_empty())
            .collect();
        let root = &r.compiled.root;
        let blind = root.digit_blind(&fields);
        let mut differs = false;
        for _ in 0..rounds {
            let name = words.get(rng.below(words.len() + 1)).cloned();
            let name = name.unwrap_or_else(|| "sh".into());
            let (a, p) = (args(&mut rng, &words), args(&mut rng, &words));
            let (a2, p2) = (redraw_digits(&mut rng, &a), redraw_digits(&mut rng, &p));
            let (d1, d2) = (doc(schema, &name, &a, &p), doc(schema, &name, &a2, &p2));
            let (want, got) = (r.compiled.matches(&d1), r.compiled.matches(&d2));
            let (s1, s2) = (
                root.eval3_shape(&Known(&d1), &fields),
                root.eval3_shape(&Known(&d2), &fields),
            );
            let what = || {
                format!(
                    "{}: {a:?} {p:?} → {want} {s1:?}, {a2:?} {p2:?} → {got} {s2:?}",
                    r.query
                )
            };
            assert_eq!(s1, s2, "{}", what());
            if let Some(b) = s1 {
                assert!(want == b && got == b, "{}", what());
                seen.known_of_telling += !blind as usize;
            }
            if got != want {
                assert!(!blind, "{}", what());
                differs = true;
            }
        }
        seen.differ.push(differs);
    }
    seen
}

/// The shape evaluation holds for every run with other digits, and knows most answers of
/// rules that tell digits apart; those rules are caught answering otherwise for other
/// digits (the inputs can tell).
#[test]
fn shape_answers_hold_whatever_the_digits() {
    let rules: Vec<Rule> = [
        r#"process where process.args : ("*hostfwd*", "-p?", "*:*")"#,
        r#"process where process.command_line regex~ ".*\\d+x.*""#,
        r#"process where process.args == "-9" or process.args : "*:4*""#,
        r#"process where process.command_line : "*1*""#,
        r#"process where process.args_count == 2 and process.parent.args : "x*""#,
        r#"process where process.args in ("pid2pod", "-x") and not process.args : "*:1025*""#,
        r#"process where process.command_line regex ".*[1-5]{2}.*""#,
    ]
    .iter()
    .map(|q| crate::rules::testkit::rule(q))
    .collect();
    let seen = check_shapes(&rules, &TestSchema, 3000);
    assert_eq!(seen.differ, [false, false, true, true, false, true, true]);
    assert!(seen.known_of_telling > 3000, "{seen:?}");
}

/// The same over every single-event rule of Elastic's Linux corpus that compiles, with
/// the real ECS schema.
#[test]
fn corpus_shape_answers_hold_whatever_the_digits() {
    if !require(
        "rules::eql::digits: corpus",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let schema = crate::ecs::schema();
    let dir = crate::testsupport::corpus(Corpus::ElasticLinux);
    let (set, _) = crate::rules::RuleSet::load(&[dir], schema);
    let fields = args_fields(schema);
    let blind = set
        .rules()
        .iter()
        .filter(|r| r.compiled.root.digit_blind(&fields))
        .count();
    eprintln!("{blind} of {} corpus rules are blind to digits", set.len());
    assert!(blind * 2 > set.len(), "most corpus rules compare no digit");
    let seen = check_shapes(set.rules(), schema, 400);
    assert!(
        seen.differ.iter().any(|&d| d),
        "some rule tells digits apart"
    );
    assert!(seen.known_of_telling > 0, "{seen:?}");
}
