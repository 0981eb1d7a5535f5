//! `churn inspect`: a data-quality profile of the input.

use anyhow::Result;

use crate::app::cli::InputArgs;
use crate::base::progress::Progress;
use crate::base::text::thousands;
use crate::pipeline::inspect::{self, Profile};

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

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let p = inspect::run(&args.input.load_options(), progress)?;
    let text = if args.json { serde_json::to_string_pretty(&p)? + "\n" } else { human(&p) };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
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
