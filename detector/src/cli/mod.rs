//! Subcommands of the `detector` binary, one module each.

pub mod trace;
