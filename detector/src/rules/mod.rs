//! Elastic detection rules: TOML files as published, EQL compiled into matchers.

pub mod meta;
