//! Pure computation on integer-coded transactions and per-customer figures:
//! no flags, no printing, no files, so every statistic can be checked on a
//! hand-made input.

pub mod actions;
pub mod backtest;
pub mod changes;
pub mod cohorts;
pub mod models;
pub mod rfm;
pub mod risk;
pub mod segments;
