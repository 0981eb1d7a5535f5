//! `churn rfm`: the RFM table.

use std::path::PathBuf;

use anyhow::Result;

use crate::app::cli::{EngineArgs, InputArgs, ListArgs, OutputArgs};
use crate::domain::actions::Actions;
use rayon::prelude::*;

use crate::io::input::CustomerPart;

use crate::base::progress::Progress;
use crate::base::transactions::CustomerIds;
use crate::domain::rfm::{self, CustomerRfm, Monetary, RfmOptions};
use crate::domain::segments::Segments;
use crate::io::output::{self, ColumnData, Table};

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
    let (aggregates, ids, as_of, kept, what_was_read, spinner) = match &args.summary {
        Some(path) => {
            args.list.refuse_keep_with_summary()?;
            let s = crate::io::input::summary::read_summary(path)?;
            let read = s.note(path);
            let spinner = progress.spinner("computing RFM");
            (s.aggregates, s.ids, s.as_of, Vec::new(), read, spinner)
        }
        None => {
            let (parts, report) = args.input.source(&args.engine, &args.list.keep).load_each(
                progress,
                |mut tx| {
                    // Only the ids are needed from here on: the rows are freed on return.
                    Ok(CustomerPart {
                        aggregates: crate::base::aggregate::aggregate(&tx),
                        ids: std::mem::take(&mut tx.ids),
                        kept: std::mem::take(&mut tx.kept),
                        as_of: tx.as_of,
                        ..CustomerPart::default()
                    })
                },
            )?;
            let spinner = progress.spinner("computing RFM");
            let all = CustomerPart::join(parts);
            let read = report.summary(all.aggregates.purchases.iter().filter(|&&p| p > 0).count());
            (all.aggregates, all.ids, all.as_of, all.kept, read, spinner)
        }
    };
    crate::base::release_freed_memory();
    let rows = rfm::score(aggregates, &ids, as_of, &opts);
    spinner.finish_and_clear();
    if rows.is_empty() {
        anyhow::bail!(
            "no customer has a purchase (a row that is not a return) on or before {}",
            crate::base::text::day_string(as_of)
        );
    }
    progress.stage("rfm");
    progress.note(&format!("{what_was_read}; as of {}", crate::base::text::day_string(as_of)));
    let spinner = progress.spinner("writing");
    // Built and written a block of rows at a time: the table of 40M
    // customers never exists whole.
    output::write_blocks(&target, rows.len(), |r| {
        table(&rows[r], &ids, &kept, &opts, actions.as_ref())
    })?;
    spinner.finish_and_clear();
    progress.stage("write");
    Ok(())
}

/// The RFM rows as an output table, built column by column in parallel.
pub fn table(
    rows: &[CustomerRfm],
    ids: &CustomerIds,
    kept: &[(String, CustomerIds)],
    opts: &RfmOptions,
    actions: Option<&Actions>,
) -> Table {
    let bins = opts.bins;
    let ids = output::par_strings(rows, |r, out| out.push_str(&ids.get(r.customer)));
    let scores = output::par_strings(rows, |r, out| {
        rfm::push_rfm_score(out, r.r_score.into(), r.f_score.into(), r.m_score.into(), bins)
    });
    let int = |f: fn(&CustomerRfm) -> i32| ColumnData::I32(rows.par_iter().map(f).collect());
    let score = |f: fn(&CustomerRfm) -> u8| ColumnData::U8(rows.par_iter().map(f).collect());
    let mut t = Table::new();
    t.push("customer_id", ColumnData::Str(ids));
    for (name, values) in kept {
        let column = output::par_strings(rows, |r, out| out.push_str(&values.get(r.customer)));
        t.push(name, ColumnData::Str(column));
    }
    t.push("first_purchase", ColumnData::Date(rows.par_iter().map(|r| r.first_purchase).collect()));
    t.push("last_purchase", ColumnData::Date(rows.par_iter().map(|r| r.last_purchase).collect()));
    t.push("recency_days", int(|r| r.recency_days));
    t.push("frequency", int(|r| r.frequency as i32));
    t.push("monetary", ColumnData::Float(rows.par_iter().map(|r| r.monetary).collect()));
    t.push("r_score", score(|r| r.r_score));
    t.push("f_score", score(|r| r.f_score));
    t.push("m_score", score(|r| r.m_score));
    t.push("rfm_score", ColumnData::Str(scores));
    let segments: Vec<u16> = rows.par_iter().map(|r| r.segment).collect();
    let names = opts.segments.names();
    let action = actions.map(|a| {
        let labels = names.iter().map(|n| a.action(n, None).to_string()).collect();
        ColumnData::Cat { labels, codes: segments.clone() }
    });
    t.push("segment", ColumnData::Cat { labels: names, codes: segments });
    if let Some(column) = action {
        t.push("action", column);
    }
    t
}
