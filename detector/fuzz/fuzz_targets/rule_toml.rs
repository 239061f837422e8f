//! The rule loader: TOML parsing, rule-type checks, metadata, EQL compilation, and the
//! mapping of query errors back to a line and column of the file. Every outcome must be a
//! rule or an error that displays without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match detector::rules::parse_rule(Path::new("fuzz.toml"), text, detector::ecs::schema()) {
        // What the loader accepted compiles on its own too.
        Ok(rule) => {
            assert!(detector::rules::compile_query(&rule.query, detector::ecs::schema()).is_ok())
        }
        Err(e) => {
            if e.line > 0 {
                assert!(
                    e.line <= text.lines().count().max(1) + 1,
                    "line {} beyond the file",
                    e.line
                );
            }
            let _ = e.to_string();
        }
    }
});
