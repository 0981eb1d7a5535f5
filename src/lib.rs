//! churn: customer-retention analytics from transaction exports.
//!
//! The layers depend one way, each only on those before it, so a feature
//! lands in one place and the definitions it shares exist once: `base`
//! (shared types and helpers) <- `io` (reading and writing: the only home of
//! polars) and `domain` (pure computation: no flags, no printing, no files)
//! <- `render` (charts, SQL, report pages) <- `pipeline` (what a command does,
//! without the command line) <- `app` (the command line: clap, the config
//! file, one file per command). `tests/cli/layers.rs` keeps the direction.

pub mod app;
pub mod base;
pub mod domain;
pub mod io;
pub mod pipeline;
pub mod render;
