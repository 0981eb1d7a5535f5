//! `churn rfm`: the RFM table.

use std::path::PathBuf;

use anyhow::Result;

use crate::app::cli::{EngineArgs, InputArgs, ListArgs, OutputArgs};
use crate::base::progress::Progress;
use crate::base::transactions::CustomerIds;
use crate::domain::rfm::{Monetary, RfmOptions};
use crate::domain::segments::Segments;
use crate::pipeline::rfm::{self, table};

/// Recency, frequency and monetary value per customer, with 1-N scores and segments.
///
/// One row per customer with at least one purchase up to --as-of, sorted by
/// customer_id, with the columns customer_id, first_purchase, last_purchase,
/// recency_days, frequency, monetary, r_score, f_score, m_score, rfm_score,
/// segment. Scores are quantile bins over all customers (N is best; recent is
/// good).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn rfm sales.csv                                  CSV on stdout
  churn rfm sales.csv -o rfm.parquet --as-of 2024-06-30
  churn rfm items.csv --quantity Qty --price UnitPrice --order InvoiceNo
  zcat sales.csv.gz | churn rfm - --customer email | head
  churn rfm sales.csv --segments my-segments.toml --bins 5")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub list: ListArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Number of score bins N (2-99); scores run 1..N.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..100), help_heading = "RFM")]
    pub bins: u32,

    /// Monetary value: total net amount, or mean amount per purchase.
    #[arg(long, value_enum, default_value_t = Monetary::Total, help_heading = "RFM")]
    pub monetary: Monetary,

    /// Segment rules replacing the default table (.toml with [[segment]] name/r/f/m
    /// ranges, or .csv with name,r_min,r_max,f_min,f_max,m_min,m_max); first match wins.
    #[arg(long, value_name = "FILE", help_heading = "RFM")]
    pub segments: Option<PathBuf>,

    /// Score a per-customer summary made by the query of `churn sql summary`
    /// (CSV or Parquet) instead of transactions.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs", help_heading = "Input")]
    pub summary: Option<PathBuf>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let target = args.output.checked_target(&args.input)?;
    let segments = match &args.segments {
        Some(p) => Segments::from_file(p, args.bins)?,
        None => Segments::default(),
    };
    let actions = args.list.actions(&segments.names(), &args.output)?;
    let opts = RfmOptions { bins: args.bins, monetary: args.monetary, segments };
    let empty = table(&[], &CustomerIds::default(), &[], &opts, actions.as_ref());
    let fixed: Vec<&str> = empty.columns.iter().map(|(n, _)| n.as_str()).collect();
    args.list.check_columns(&args.output, &fixed)?;
    if args.summary.is_some() {
        args.list.refuse_keep_with_summary()?;
    }
    let customers = args.input.customers(&args.engine, &args.list.keep, args.summary.as_ref());
    rfm::run(&customers, &opts, actions.as_ref(), &target, progress)
}
