//! Turning results into something a person or another engine reads: the
//! cohort chart, the SQL queries, the report pages.

pub mod backtest;
pub mod chart;
pub mod fit;
pub mod report;
pub mod sql;
