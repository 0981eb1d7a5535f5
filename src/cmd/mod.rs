//! One module per subcommand: its options and the glue that runs it.

pub mod cohorts;
pub mod inspect;
pub mod rfm;
