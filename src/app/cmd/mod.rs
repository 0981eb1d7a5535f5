//! One module per subcommand: its options and the glue that runs it.

pub mod backtest;
pub mod cohorts;
pub mod fit;
pub mod inspect;
pub mod report;
pub mod rfm;
pub mod score;
pub mod sql;
