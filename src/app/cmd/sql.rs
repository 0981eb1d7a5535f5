//! `churn sql`: the heavy aggregations as SQL for the user's own engine.

use anyhow::Result;

use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::domain::cohorts::{Period, Retention};
use crate::domain::models::Unit;
use crate::io::input::ReturnsPolicy;
use crate::render::sql::{Amount, Dialect, Query, Source};

/// What the query computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One row per customer for `churn score|fit|rfm --summary`: customer_id,
    /// first_purchase, last_purchase, purchases, monetary, repeat_days,
    /// repeat_amount, as_of; then the model summary x, t_x, T, monetary_avg
    /// in --unit, for other tools.
    Summary,
    /// The RFM base figures, one row per customer: customer_id,
    /// first_purchase, last_purchase, recency_days, frequency, monetary,
    /// as_of (scores and segments: `churn rfm --summary`).
    Rfm,
    /// The long table of `churn cohorts`: cohort, period, cohort_size,
    /// customers, retention, orders, revenue, partial.
    Cohorts,
}

/// Print a SQL query that does the heavy aggregation inside your warehouse or
/// Spark: the per-customer summary (export its result as CSV or Parquet and
/// score it locally with `churn score --summary FILE`; also `churn fit` and
/// `churn rfm`), the RFM base figures, or the cohort table. The queries follow
/// churn's own definitions: blank ids skipped, rows after the as-of day cut,
/// purchases on one day merged, ISO weeks.
///
/// The date column may be a DATE, a TIMESTAMP (taken in UTC) or ISO text
/// without an offset. Amounts are summed exactly as DECIMAL(38, 6).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn sql summary --dialect duckdb --table sales > summary.sql
  duckdb shop.db -c \"COPY ($(grep -v '^--' summary.sql | tr -d ';')) TO 'summary.parquet'\"
  churn score --summary summary.parquet --top 500
  churn sql summary --dialect bigquery --table shop.orders --customer email --date created_at --amount total
  churn sql cohorts --dialect spark --table lake.sales --period week --retention rolling")]
pub struct Args {
    /// What to compute.
    #[arg(value_enum)]
    pub kind: Kind,

    /// The SQL dialect.
    #[arg(long, value_enum)]
    pub dialect: Dialect,

    /// The transactions table (or view), as the engine names it, e.g. shop.sales.
    #[arg(long, value_name = "NAME")]
    pub table: String,

    /// The customer id column.
    #[arg(long, value_name = "COL", default_value = "customer_id")]
    pub customer: String,

    /// The date (or timestamp) column.
    #[arg(long, value_name = "COL", default_value = "date")]
    pub date: String,

    /// The amount column.
    #[arg(long, value_name = "COL", default_value = "amount", conflicts_with_all = ["quantity", "price"])]
    pub amount: String,

    /// A quantity column; the amount is quantity x price (with --price).
    #[arg(long, value_name = "COL", requires = "price")]
    pub quantity: Option<String>,

    /// A unit price column (with --quantity).
    #[arg(long, value_name = "COL", requires = "quantity")]
    pub price: Option<String>,

    /// An order id column: the rows of one order are one purchase.
    #[arg(long, value_name = "COL")]
    pub order: Option<String>,

    /// Analysis date, inclusive (YYYY-MM-DD); default: the latest transaction day.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<String>,

    /// Returns (negative amounts): net them off (default) or drop them.
    #[arg(long, value_enum, default_value_t = ReturnsPolicy::Net, value_name = "POLICY")]
    pub returns: ReturnsPolicy,

    /// Time unit of t_x and T (summary only): day, week or month (365.25/12 days).
    #[arg(long, value_enum, value_name = "UNIT")]
    pub unit: Option<Unit>,

    /// Cohort period (cohorts only): day, week (ISO, from Monday), month or quarter.
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub period: Option<Period>,

    /// Retention (cohorts only): classic (bought in period k) or rolling (in k or later).
    #[arg(long, value_enum, value_name = "KIND")]
    pub retention: Option<Retention>,
}

fn parse_date(s: &str) -> Result<String, String> {
    crate::base::dates::parse_ymd(s)
        .filter(|&d| crate::base::dates::in_supported_range(d))
        .map(|d| crate::base::dates::Day(d).to_string())
        .ok_or_else(|| format!("'{s}' is not a date in YYYY-MM-DD form between 1900 and 2100"))
}

pub fn run(args: Args, _progress: &Progress) -> Result<()> {
    let query = match args.kind {
        Kind::Summary | Kind::Rfm if args.period.is_some() || args.retention.is_some() => {
            let flag = if args.period.is_some() { "--period" } else { "--retention" };
            return Err(UsageError(format!("{flag} goes with `churn sql cohorts` only")).into());
        }
        Kind::Rfm | Kind::Cohorts if args.unit.is_some() => {
            return Err(UsageError("--unit goes with `churn sql summary` only".into()).into());
        }
        Kind::Summary => Query::Summary { unit: args.unit.unwrap_or_default() },
        Kind::Rfm => Query::Rfm,
        Kind::Cohorts => Query::Cohorts {
            period: args.period.unwrap_or_default(),
            retention: args.retention.unwrap_or_default(),
        },
    };
    let source = Source {
        table: args.table,
        customer: args.customer,
        date: args.date,
        amount: match (args.quantity, args.price) {
            (Some(quantity), Some(price)) => Amount::QuantityPrice { quantity, price },
            _ => Amount::Column(args.amount),
        },
        order: args.order,
        as_of: args.as_of,
        drop_returns: matches!(args.returns, ReturnsPolicy::Drop),
    };
    crate::io::output::write_document(None, source.to_sql(args.dialect, query).as_bytes())
}
