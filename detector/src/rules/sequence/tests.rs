//! Unit tests of the sequence engine (semantics, bounds).
