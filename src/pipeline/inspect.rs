//! `churn inspect`: a data-quality profile of the input, to read before
//! trusting any number computed from it.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::base::progress::Progress;
use crate::base::transactions::Transactions;
use crate::io::input::{self, LoadOptions, LoadReport};

/// The profile, as printed with --json.
#[derive(Serialize, Debug)]
pub struct Profile {
    pub files: Vec<FileRows>,
    pub rows: u64,
    pub columns: String,
    pub date_layout: String,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub as_of: String,
    pub as_of_from_data: bool,
    pub rows_after_as_of: u64,
    pub rows_used: u64,
    pub customers: u64,
    pub customers_with_purchase: u64,
    pub purchases: u64,
    pub returns: u64,
    pub returns_dropped: u64,
    pub zero_amount_rows: u64,
    pub skipped: BTreeMap<String, u64>,
    pub duplicate_rows: u64,
    pub amount_min: f64,
    pub amount_median: f64,
    pub amount_max: f64,
    pub revenue_net: f64,
}

#[derive(Serialize, Debug)]
pub struct FileRows {
    pub file: String,
    pub rows: u64,
}

/// Reads every row (counting exact duplicates) and profiles them.
pub fn run(load: &LoadOptions, progress: &Progress) -> Result<Profile> {
    let opts = LoadOptions { count_duplicates: true, ..load.clone() };
    let (tx, report) = input::load(&opts, progress)?;
    Ok(profile(&tx, &report))
}

pub fn profile(tx: &Transactions, report: &LoadReport) -> Profile {
    let agg = crate::base::aggregate::aggregate(tx);
    let mut amounts = tx.amount.clone();
    amounts.sort_unstable_by(f64::total_cmp);
    let median = if amounts.is_empty() {
        0.0
    } else if amounts.len() % 2 == 1 {
        amounts[amounts.len() / 2]
    } else {
        (amounts[amounts.len() / 2 - 1] + amounts[amounts.len() / 2]) / 2.0
    };
    let mut seen = vec![false; tx.ids.len()];
    for &c in &tx.customer {
        seen[c as usize] = true;
    }
    Profile {
        files: report.files.iter().map(|(f, r)| FileRows { file: f.clone(), rows: *r }).collect(),
        rows: report.rows,
        columns: report.mapping.clone(),
        date_layout: report.date_layout.clone(),
        first_date: report.first_day.map(crate::base::text::day_string),
        last_date: report.last_day.map(crate::base::text::day_string),
        as_of: crate::base::text::day_string(tx.as_of),
        as_of_from_data: report.as_of_from_data,
        rows_after_as_of: report.after_as_of,
        rows_used: tx.len() as u64,
        customers: seen.iter().filter(|&&s| s).count() as u64,
        customers_with_purchase: agg.purchases.iter().filter(|&&p| p > 0).count() as u64,
        purchases: agg.purchases.iter().map(|&p| p as u64).sum(),
        returns: tx.amount.iter().filter(|&&a| a < 0.0).count() as u64 + report.returns_dropped,
        returns_dropped: report.returns_dropped,
        zero_amount_rows: tx.amount.iter().filter(|&&a| a == 0.0).count() as u64,
        skipped: report.skipped.by_reason().into_iter().map(|(r, n)| (r.to_string(), n)).collect(),
        duplicate_rows: report.duplicates.unwrap_or(0),
        amount_min: amounts.first().copied().unwrap_or(0.0),
        amount_median: median,
        amount_max: amounts.last().copied().unwrap_or(0.0),
        revenue_net: crate::base::aggregate::total_amount(&tx.amount),
    }
}
