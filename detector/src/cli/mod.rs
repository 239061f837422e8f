//! Subcommands of the `detector` binary, one module each (the binary only dispatches).

pub mod check_rules;
pub mod health;
pub mod replay;
pub mod run;
pub mod trace;
