//! Typed ECS (Elastic Common Schema 9.x) documents.

pub mod field;
