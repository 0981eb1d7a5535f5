//! `churn backtest`: evidence that the scores predict something.

use anyhow::Result;

use crate::app::cli::{purchase_model, EngineArgs, InputArgs};
use crate::app::values;
use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::domain::models::Unit;
use crate::pipeline::backtest::{self, BacktestOptions};
use crate::pipeline::models::ModelChoice;
use crate::render::chart;

/// Hold out the last --holdout of the data, fit on the rest, predict the
/// holdout and compare with what happened, next to an RFM baseline.
///
/// For every customer with a purchase before the split (as-of − holdout):
/// predicted vs actual purchase days in the holdout (MAE, RMSE, totals), and
/// for the event "no purchase in the holdout": ROC AUC and Brier score and
/// log loss of P(no purchase), a calibration table by deciles, and precision
/// and lift of the top 10% by churn risk. The RFM baseline predicts each
/// customer's past repeat rate and ranks risk by r_score, then f_score.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn backtest sales.csv --holdout 90d
  churn backtest sales.csv --holdout 12w --model auto --json | jq .models")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    /// Length of the holdout at the end of the data: 90d, 12w, 3m, 1y.
    #[arg(long, default_value = "90d", value_parser = values::horizon, value_name = "SPAN", help_heading = "Backtest")]
    pub holdout: f64,

    /// Purchase model(s) to test.
    #[arg(long, value_parser = purchase_model("All three"), default_value = "bgnbd", help_heading = "Backtest")]
    pub model: ModelChoice,

    /// Time unit for fitting.
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Backtest")]
    pub unit: Unit,

    /// L2 penalty when fitting.
    #[arg(long, default_value = "0", value_parser = values::number(values::penalty), allow_negative_numbers = true, value_name = "LAMBDA", help_heading = "Backtest")]
    pub penalty: f64,

    /// Print the metrics as JSON on stdout.
    #[arg(long, help_heading = "Backtest")]
    pub json: bool,

    /// Also draw predicted vs actual cumulative purchases over the holdout and
    /// the calibration plot to FILE (.svg or .png).
    #[arg(long, value_name = "FILE", help_heading = "Backtest")]
    pub chart: Option<std::path::PathBuf>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let chart = match &args.chart {
        None => None,
        Some(p) => Some((p.clone(), chart::Format::of(p, false).map_err(UsageError)?)),
    };
    crate::app::cli::check_outputs(&args.input, &[args.chart.as_deref()])?;
    let opts = BacktestOptions {
        holdout_days: args.holdout.round().max(1.0) as i32,
        model: args.model,
        unit: args.unit,
        penalty: args.penalty,
        chart,
    };
    let report = backtest::run(&args.input.source(&EngineArgs::default(), &[]), &opts, progress)?;
    if args.json {
        // The models as an object keyed by name.
        let models: serde_json::Map<String, serde_json::Value> = report
            .models
            .iter()
            .map(|(n, m)| Ok((n.clone(), serde_json::to_value(m)?)))
            .collect::<Result<_>>()?;
        let mut v = serde_json::to_value(&report)?;
        v["models"] = serde_json::Value::Object(models);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", crate::render::backtest::table(&report));
    }
    Ok(())
}
