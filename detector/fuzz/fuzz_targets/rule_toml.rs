//! The rule loader: TOML parsing, rule-type checks, metadata, EQL compilation, and the
//! mapping of query errors back to a line and column of the file. Every outcome must be a
//! rule or an error that displays without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body and its checks live in the library, shared with the seed replay
// (`detector/tests/fuzz_seeds.rs`).
fuzz_target!(|data: &[u8]| {
    let _ = detector::testsupport::fuzz::rule_toml(data);
});
