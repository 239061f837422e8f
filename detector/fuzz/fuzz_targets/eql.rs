//! EQL parser and compiler (`compile_query` against the ECS schema), then the compiled
//! matcher against a document whose values come from the input too.
//!
//! Input: `<query>` or `<query>\0<value>`. A compiled query is evaluated against a
//! document that answers every field with a value derived from `<value>` (a string, a
//! list, a number, a bool or missing, chosen per field id), so the wildcard, regex, `in`
//! and comparison paths all run. A compile error must point inside the query: it is
//! rendered with the same locator the rule loader uses.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body and its checks live in the library, shared with the seed replay
// (`detector/tests/fuzz_seeds.rs`).
fuzz_target!(|data: &[u8]| {
    let _ = detector::testsupport::fuzz::eql(data);
});
