use super::*;

fn expr(q: &str) -> Expr {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e:?}")) {
        Statement::Event(e) => e.expr,
        s => panic!("{s:?}"),
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Field(f) => f.path.clone(),
        Value::Lit(l) => format!("{:?}", l.value),
        Value::Call(c) => format!(
            "{}{}({})",
            c.name,
            if c.ci { "~" } else { "" },
            c.args.iter().map(show_value).collect::<Vec<_>>().join(",")
        ),
    }
}

/// Renders an expression compactly so precedence is visible.
fn show(e: &Expr) -> String {
    match e {
        Expr::And(v) => format!("(and {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
        Expr::Or(v) => format!("(or {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
        Expr::Not(e) => format!("(not {})", show(e)),
        Expr::Bool(b) => b.to_string(),
        Expr::Compare { left, op, .. } => format!("{}{:?}", show_value(left), op),
        Expr::Call(c) => show_value(&Value::Call(c.clone())),
        Expr::In {
            left,
            ci,
            negated,
            values,
            ..
        } => {
            format!(
                "{}{}in{}{}",
                show_value(left),
                if *negated { "!" } else { "" },
                if *ci { "~" } else { "" },
                values.len()
            )
        }
        Expr::Match {
            left, op, values, ..
        } => format!("{}{}{}", show_value(left), op.text(), values.len()),
    }
}

#[test]
fn precedence_not_and_or() {
    let cases = [
        (
            "any where a == 1 or b == 1 and c == 1",
            "(or aEq (and bEq cEq))",
        ),
        (
            "any where a == 1 and b == 1 or c == 1",
            "(or (and aEq bEq) cEq)",
        ),
        ("any where not a == 1 and b == 1", "(and (not aEq) bEq)"),
        ("any where not (a == 1 and b == 1)", "(not (and aEq bEq))"),
        ("any where not not a == 1", "(not (not aEq))"),
        (
            "any where (a == 1 or b == 1) and c == 1",
            "(and (or aEq bEq) cEq)",
        ),
        ("any where a not in (1, 2)", "a!in2"),
        ("any where not a in~ (\"x\")", "(not ain~1)"),
        (
            "any where a : (\"x\", \"y\") or a like~ \"z\"",
            "(or a:2 alike~1)",
        ),
        ("any where true", "true"),
        ("any where x.sequence == 1", "x.sequenceEq"),
        (
            "any where `a.b/c` == 1 and ?d.e != null",
            "(and a.b/cEq d.eNeq)",
        ),
        (
            "any where a regex~ \"x\" and a < 3 and a >= -2",
            "(and aregex~1 aLt aGe)",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(show(&expr(q)), want, "{q}");
    }
}

#[test]
fn optional_field_is_marked() {
    match expr("any where ?a.b == 1") {
        Expr::Compare {
            left: Value::Field(field),
            ..
        } => {
            assert!(field.optional);
            assert_eq!(field.path, "a.b");
            assert_eq!(field.span, Span::new(10, 14));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn category_and_sequence() {
    match parse("process where true").unwrap() {
        Statement::Event(e) => assert_eq!(e.category.as_deref(), Some("process")),
        s => panic!("{s:?}"),
    }
    match parse("sequence by a.b, ?c with maxspan=3s [process where true] [file where true] by d with runs=2 ![any where true] until [any where true]")
        .unwrap()
    {
        Statement::Sequence(q) => {
            let m = q.maxspan.as_ref().unwrap();
            assert_eq!((m.value, m.unit.as_str()), (3.0, "s"));
            assert_eq!(q.by.len(), 2);
            assert!(q.by[1].optional && !q.by[0].optional);
            assert_eq!(q.span.start, 0);
            assert_eq!(q.terms.len(), 3);
            assert_eq!(q.terms[1].runs, 2);
            assert_eq!(q.terms[1].by[0].path, "d");
            assert_eq!(q.terms[1].filter.category.as_deref(), Some("file"));
            assert!(q.terms[2].missing && !q.terms[0].missing);
            assert!(q.until.is_some());
        }
        s => panic!("{s:?}"),
    }
    // `with runs` before `by` is accepted too.
    match parse("sequence [any where true] with runs=3 by x").unwrap() {
        Statement::Sequence(q) => assert_eq!((q.terms[0].runs, q.terms[0].by.len()), (3, 1)),
        s => panic!("{s:?}"),
    }
}

#[test]
fn errors_point_at_the_offending_token() {
    let cases: &[(&str, usize, &str)] = &[
        ("process where", 13, "expected a field"),
        ("process a == 1", 8, "expected `where`"),
        ("process where a == 1 b == 2", 21, "expected `and`, `or`"),
        ("process where (a == 1", 21, "expected `)`"),
        ("process where a", 14, "a field alone"),
        ("process where a = 1", 16, "use `==`"),
        ("process where a == b", 19, "comparing two fields"),
        ("process where 1 == a", 14, "left side"),
        ("process where a + 1 == 2", 16, "arithmetic"),
        (
            "process where length(a + 1) > 2",
            23,
            "arithmetic operators",
        ),
        ("process where length(a > 2", 23, "expected `,` or `)`"),
        ("process where length(a", 20, "unclosed `(`"),
        ("process where f(a,) == 1", 18, "a field, a literal"),
        ("process where length(a) == b", 27, "comparing two fields"),
        ("process where f~ == 1", 14, "unexpected `f~`"),
        ("process where a in ()", 20, "expected a literal"),
        ("process where a in (\"x\",)", 24, "expected a literal"),
        ("process where a == 1 | head 1", 21, "pipes"),
        ("process where a[0] == 1", 15, "array indexes"),
        ("process where a == 1 == 2", 21, "chained"),
        ("join [a where true] [b where true]", 0, "joins"),
        ("sequence [a where true]", 0, "at least two"),
        (
            "sequence with maxspan=1s by a [a where true] [b where true]",
            25,
            "before",
        ),
        (
            "sequence [a where true] with runs=0 [b where true]",
            34,
            "from 1 to 100",
        ),
        ("sequence [a where true] with runs=101", 34, "from 1 to 100"),
        (
            "sequence [a where true] [b where true] until ![c where true]",
            45,
            "until",
        ),
        ("sequence by a", 13, "sequence term"),
        ("process where a : b", 18, "comparing two fields"),
        ("process where \"x\"", 14, "not a condition"),
    ];
    for (q, at, msg) in cases {
        let e = parse(q).unwrap_err();
        assert_eq!(e.span.start, *at, "{q}: {e:?}");
        assert!(e.message.contains(msg), "{q}: {}", e.message);
    }
}

#[test]
fn function_calls_parse_anywhere_a_value_goes() {
    let cases = [
        (
            "any where startsWith~(process.name, \"py\")",
            "startsWith~(process.name,Str(\"py\"))",
        ),
        (
            "any where length(a) > 50 and not endswith(b, c)",
            "(and length(a)Gt (not endswith(b,c)))",
        ),
        (
            "any where substring(a, 0, -2) : \"py*\"",
            "substring(a,Int(0),Int(-2)):1",
        ),
        ("any where a == string(1)", "aEq"),
        (
            "any where f(g(h(?x)), true, null, 1.5) not in (1)",
            "f(g(h(x)),Bool(true),Null,Float(1.5))!in1",
        ),
        ("any where f() == 1", "f()Eq"),
    ];
    for (q, want) in cases {
        assert_eq!(show(&expr(q)), want, "{q}");
    }
    match expr("any where  between~( a , \"x\",\"y\")") {
        Expr::Call(c) => {
            assert!(c.ci);
            assert_eq!(c.name_span, Span::new(11, 19));
            assert_eq!(c.span, Span::new(11, 33));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let q = format!("any where {}a == 1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse(&q).unwrap_err().message.contains("too deeply"));
    let q = format!("any where {}a == 1", "not ".repeat(5000));
    assert!(parse(&q).unwrap_err().message.contains("too deeply"));
    let q = format!("any where {}a{}", "f(".repeat(5000), ")".repeat(5000));
    assert!(parse(&q).unwrap_err().message.contains("too deeply"));
}
