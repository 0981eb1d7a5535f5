//! `churn score`: the risk-scored customer list.

use std::path::PathBuf;

use anyhow::Result;

use crate::app::cli::{purchase_model, EngineArgs, InputArgs, ListArgs, OutputArgs};
use crate::app::values;
use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::domain::models::Unit;
use crate::domain::rfm::RfmOptions;
use crate::domain::risk::Bands;
use crate::pipeline::models::{ModelChoice, SavedModels};
use crate::pipeline::score::{self, ScoreOptions, SortBy};

/// Score every customer: probability still active, expected purchases and
/// spend over a horizon, CLV and value at risk, with a risk band and the RFM segment.
///
/// One row per customer with a purchase, sorted by value_at_risk (or --sort)
/// descending, then customer_id. Models are fitted on the input unless given
/// with --model-file (a purchase model and/or a Gamma-Gamma model saved by
/// `churn fit --save`). CLV discounts the expected purchases of each model
/// unit at the end of that unit with a continuous rate equivalent to
/// --discount-rate per year.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn score sales.csv --top 500 --min-risk 0.6 -o at_risk.csv
  churn score sales.parquet --horizon 12w --sort churn_risk | head
  churn fit sales.csv --save bgnbd.json && churn fit sales.csv --model gg --save gg.json
  churn score sales.csv --model-file bgnbd.json --model-file gg.json")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub list: ListArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Write only what changed since PREVIOUS (an earlier output of `churn score`,
    /// CSV, with the same --columns): customers who are new, whose risk band or
    /// segment changed, or who left the list, with a `change` column (new,
    /// band_up, band_down, segment_changed, gone).
    #[arg(long, value_name = "PREVIOUS", help_heading = "Customer list")]
    pub changes_since: Option<PathBuf>,

    /// Score a per-customer summary made by the query of `churn sql summary`
    /// (CSV or Parquet) instead of transactions.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs", help_heading = "Input")]
    pub summary: Option<PathBuf>,

    /// Purchase model to fit (ignored for what --model-file provides).
    #[arg(long, value_parser = purchase_model(ModelChoice::Auto.help()), default_value = "bgnbd", help_heading = "Model")]
    pub model: ModelChoice,

    /// A model saved by `churn fit --save`; repeat for a purchase and a spend model.
    #[arg(long, value_name = "FILE", help_heading = "Model")]
    pub model_file: Vec<PathBuf>,

    /// Time unit for fitting and for the recency and T columns.
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Model")]
    pub unit: Unit,

    /// L2 penalty when fitting.
    #[arg(long, default_value = "0", value_parser = values::number(values::penalty), allow_negative_numbers = true, value_name = "LAMBDA", help_heading = "Model")]
    pub penalty: f64,

    /// Prediction horizon: days (90d), weeks (12w), months (3m, 365.25/12 days) or years (1y).
    #[arg(long, default_value = "90d", value_parser = values::horizon, value_name = "SPAN", help_heading = "Scores")]
    pub horizon: f64,

    /// Annual discount rate for CLV (0.10 = 10% a year).
    #[arg(long, default_value = "0.1", value_parser = values::number(values::discount_rate), allow_negative_numbers = true, value_name = "RATE", help_heading = "Scores")]
    pub discount_rate: f64,

    /// churn_risk thresholds for the high and medium bands.
    #[arg(long, default_value = "0.7,0.4", value_parser = values::bands, value_name = "HIGH,MEDIUM", help_heading = "Scores")]
    pub bands: Bands,

    /// Keep customers with churn_risk at least P.
    #[arg(long, value_parser = values::number(values::probability), allow_negative_numbers = true, value_name = "P", help_heading = "Scores")]
    pub min_risk: Option<f64>,

    /// Keep the first N rows after sorting.
    #[arg(long, value_name = "N", help_heading = "Scores")]
    pub top: Option<usize>,

    /// Sort key (descending; ties by customer_id).
    #[arg(long, value_enum, default_value = "value-at-risk", help_heading = "Scores")]
    pub sort: SortBy,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let mut target = args.output.checked_target(&args.input)?;
    if let (Some(_), Some(spec)) = (&args.changes_since, &mut target.columns) {
        // A delta without its change column would be ambiguous.
        if !spec.0.iter().any(|(c, _)| c == "change") {
            spec.0.push(("change".into(), "change".into()));
        }
    }
    let previous = match &args.changes_since {
        Some(path) => Some(score::read_previous(path, args.output.columns.as_ref())?),
        None => None,
    };
    let actions = args.list.actions(&RfmOptions::default().segments.names(), &args.output)?;
    let mut fixed = score::COLUMNS.to_vec();
    fixed.extend(actions.as_ref().map(|_| "action"));
    fixed.extend(args.changes_since.as_ref().map(|_| "change"));
    args.list.check_columns(&args.output, &fixed)?;
    if args.summary.is_some() {
        args.list.refuse_keep_with_summary()?;
    }
    let opts = ScoreOptions {
        model: args.model,
        saved: SavedModels::load(&args.model_file)?,
        unit: args.unit,
        penalty: args.penalty,
        horizon_days: args.horizon,
        discount_rate: args.discount_rate,
        bands: args.bands,
        min_risk: args.min_risk,
        top: args.top,
        sort: args.sort,
        actions,
        previous,
    };
    let customers = args.input.customers(&args.engine, &args.list.keep, args.summary.as_ref());
    score::run(&customers, &opts, &target, progress)
}
