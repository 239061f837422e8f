//! The resolver's entry points for container metadata, kept under their old names: the
//! readers themselves live in [`super::state`], one module per runtime.

pub use super::state::{ContainerInfo, EnrichOutcome, EnrichRoots, enrich, split_image};
