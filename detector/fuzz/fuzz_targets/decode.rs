//! The kernel-record decoder: any bytes are either a [`ProcessEvent`] whose strings fit in
//! the sections the header declares, or a counted error — never a panic or an allocation
//! beyond the record's own size.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body and its checks live in the library, shared with the seed replay
// (`detector/tests/fuzz_seeds.rs`).
fuzz_target!(|data: &[u8]| {
    let _ = detector::testsupport::fuzz::decode(data);
});
