//! End-to-end tests: the real `churn` binary on the fixtures in testdata/, one
//! binary of topic modules over the harness in util.rs.
//!
//! `cargo test --release` runs everything that needs nothing but this
//! repository; the engine suite in engines.rs is ignored unless asked for
//! with `cargo test --release -- --ignored`.

mod bad_input;
mod cohorts;
mod crm;
mod engines;
mod input;
mod inspect;
mod layers;
mod models;
mod output;
mod report;
mod rfm;
mod robustness;
mod scale;
mod sql;
mod streaming;
mod util;
