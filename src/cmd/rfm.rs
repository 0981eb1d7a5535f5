//! `churn rfm`: the RFM table.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{check_not_overwriting_input, InputArgs, OutputArgs};
use crate::input::{self, Transactions};
use crate::output::{self, ColumnData, Strings, Table};
use crate::progress::Progress;
use crate::rfm::{self, CustomerRfm, Monetary, RfmOptions};
use crate::segments::Segments;

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
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    check_not_overwriting_input(&args.input, &args.output)?;
    let target = args.output.target();
    target.resolved_format()?;
    let segments = match &args.segments {
        Some(p) => Segments::from_file(p, args.bins)?,
        None => Segments::default(),
    };
    let opts = RfmOptions { bins: args.bins, monetary: args.monetary, segments };
    let (tx, report) = input::load(&args.input.load_options(), progress)?;
    progress.stage("load");
    progress.note(&format!("columns: {}; dates: {}", report.mapping, report.date_layout));
    let spinner = progress.spinner("computing RFM");
    let rows = rfm::compute(&tx, &opts);
    spinner.finish_and_clear();
    progress.stage("rfm");
    progress.note(&format!(
        "{}; as of {}",
        report.summary(rows.len()),
        input::day_string(tx.as_of)
    ));
    let table = table(&rows, &tx, &opts);
    progress.stage("table");
    output::write_table(&table, &target)?;
    progress.stage("write");
    Ok(())
}

/// The RFM rows as an output table.
pub fn table(rows: &[CustomerRfm], tx: &Transactions, opts: &RfmOptions) -> Table {
    let mut ids = Strings::with_capacity(rows.len(), rows.len() * 8);
    let mut scores = Strings::with_capacity(rows.len(), rows.len() * 3);
    for r in rows {
        ids.push(&tx.ids.get(r.customer));
        scores.push(&rfm::rfm_score(r.r_score, r.f_score, r.m_score, opts.bins));
    }
    let int = |f: fn(&CustomerRfm) -> i64| ColumnData::Int(rows.iter().map(f).collect());
    let mut t = Table::new();
    t.push("customer_id", ColumnData::Str(ids));
    t.push("first_purchase", ColumnData::Date(rows.iter().map(|r| r.first_purchase).collect()));
    t.push("last_purchase", ColumnData::Date(rows.iter().map(|r| r.last_purchase).collect()));
    t.push("recency_days", int(|r| r.recency_days));
    t.push("frequency", int(|r| r.frequency as i64));
    t.push("monetary", ColumnData::Float(rows.iter().map(|r| r.monetary).collect()));
    t.push("r_score", int(|r| r.r_score as i64));
    t.push("f_score", int(|r| r.f_score as i64));
    t.push("m_score", int(|r| r.m_score as i64));
    t.push("rfm_score", ColumnData::Str(scores));
    t.push(
        "segment",
        ColumnData::Cat {
            labels: opts.segments.names(),
            codes: rows.iter().map(|r| r.segment).collect(),
        },
    );
    t
}
