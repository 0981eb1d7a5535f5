//! `churn inspect`: a data-quality profile of the input.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::app::cli::InputArgs;
use crate::base::progress::Progress;
use crate::base::text::thousands;
use crate::base::transactions::Transactions;
use crate::io::input::{self, LoadReport};

/// Profile the input before trusting any number computed from it.
///
/// Reports the files and rows read, the column mapping and date layout
/// detected, the date range, customers, purchases and returns, rows skipped
/// (by reason), exact duplicate rows, rows after the as-of date, and the
/// distribution of amounts. Human-readable by default; --json for scripts.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn inspect sales.csv
  churn inspect exports/*.csv.gz --skip-invalid
  churn inspect sales.parquet --json | jq .customers")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    /// Print the profile as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

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

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let mut opts = args.input.load_options();
    opts.count_duplicates = true;
    let (tx, report) = input::load(&opts, progress)?;
    let p = profile(&tx, &report);
    let text = if args.json { serde_json::to_string_pretty(&p)? + "\n" } else { human(&p) };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
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

fn human(p: &Profile) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<24}{v}\n"));
    for f in &p.files {
        line("file", format!("{} ({} rows)", f.file, thousands(f.rows)));
    }
    line("rows read", thousands(p.rows));
    line("columns", p.columns.clone());
    line("date layout", p.date_layout.clone());
    line(
        "date range",
        format!(
            "{} to {}",
            p.first_date.as_deref().unwrap_or("-"),
            p.last_date.as_deref().unwrap_or("-")
        ),
    );
    line(
        "as of",
        format!("{}{}", p.as_of, if p.as_of_from_data { " (latest transaction)" } else { "" }),
    );
    line("rows after as-of", thousands(p.rows_after_as_of));
    line("rows used", thousands(p.rows_used));
    line("customers", thousands(p.customers));
    line("  with a purchase", thousands(p.customers_with_purchase));
    line("purchases", thousands(p.purchases));
    line(
        "returns",
        if p.returns_dropped > 0 {
            format!("{} (dropped)", thousands(p.returns))
        } else {
            thousands(p.returns)
        },
    );
    line("zero-amount rows", thousands(p.zero_amount_rows));
    if p.skipped.is_empty() {
        line("rows skipped", "0".into());
    }
    for (reason, n) in &p.skipped {
        line("rows skipped", format!("{} ({reason})", thousands(*n)));
    }
    line("exact duplicate rows", thousands(p.duplicate_rows));
    line(
        "amount min/median/max",
        format!("{} / {} / {}", p.amount_min, p.amount_median, p.amount_max),
    );
    line("net revenue", format!("{}", p.revenue_net));
    s
}
