//! The `detector` command line.
fn main() {}
