//! Probabilistic customer-base models: who is still a customer, how much
//! will they buy, and what are they worth.
//!
//! The transactions are reduced to one (x, t_x, T, m) summary per customer;
//! customers with the same (x, t_x, T) share a likelihood term and every
//! conditional expectation, so fitting and scoring cost grows with the
//! number of distinct patterns, not of customers.

mod fit;
mod history;
pub mod optimize;
pub mod pareto;
pub mod purchase;
mod score;
pub mod special;
pub mod spend;
#[cfg(test)]
mod tests;

pub use fit::{
    describe, fit_data_problem, fit_purchase, fit_spend, Fit, FittedModel, ModelName, MIN_CUSTOMERS,
};
pub use history::{histories, histories_freeing_rows, histories_of, patterns, summarize, Patterns};
pub use purchase::{History, Kind};
pub use score::{Horizon, Score, Scorer};

use crate::base::summary::Summary;

crate::named_enum! {
    /// The time unit of x's rates, t_x and T.
    #[derive(Default)]
    pub enum Unit {
        Day = ("day", ""),
        #[default]
        Week = ("week", ""),
        Month = ("month", "365.25 / 12 days"),
    }
}

impl Unit {
    pub fn days(self) -> f64 {
        match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
            Unit::Month => 365.25 / 12.0,
        }
    }
}
