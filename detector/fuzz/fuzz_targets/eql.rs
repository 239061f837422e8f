//! EQL parser and compiler (`compile_query` against the ECS schema), then the compiled
//! matcher against a document whose values come from the input too.
//!
//! Input: `<query>` or `<query>\0<value>`. A compiled query is evaluated against a
//! document that answers every field with a value derived from `<value>` (a string, a
//! list, a number, a bool or missing, chosen per field id), so the wildcard, regex, `in`
//! and comparison paths all run. A compile error must point inside the query: it is
//! rendered with the same locator the rule loader uses.
#![no_main]

use detector::ecs::field::{Document, FieldId, FieldValue};
use detector::rules::{compile_query, error::locate};
use libfuzzer_sys::fuzz_target;

/// Answers every field from one fuzzed value.
struct FuzzDoc {
    value: String,
    list: Vec<String>,
    long: i64,
}

impl Document for FuzzDoc {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        match id.0 % 6 {
            0 => FieldValue::Str(&self.value),
            1 => FieldValue::Strs(&self.list),
            2 => FieldValue::Long(self.long),
            3 => FieldValue::Bool(self.value.len() % 2 == 0),
            4 => FieldValue::StaticStrs(&["start", "exec"]),
            _ => FieldValue::Missing,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, value) = text.split_once('\0').unwrap_or((text, "bash"));
    match compile_query(query, detector::ecs::schema()) {
        Ok(q) => {
            let doc = FuzzDoc {
                value: value.to_string(),
                list: value.split(',').map(str::to_string).collect(),
                long: value.parse().unwrap_or(value.len() as i64),
            };
            let _ = q.matches(&doc);
        }
        Err(e) => {
            assert!(
                e.span.start <= e.span.end && e.span.end <= query.len(),
                "span {:?} outside a query of {} bytes",
                e.span,
                query.len()
            );
            let _ = locate(query, e.span.start, e.span.end);
        }
    }
});
