//! `churn fit`: fit a customer-base model and report how well it fits.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::app::cli::{EngineArgs, InputArgs};
use crate::app::values;
use crate::base::progress::Progress;
use crate::domain::models::Unit;
use crate::io::output;
use crate::pipeline::{self, fit::FitOptions, models::ModelChoice};
use crate::render;

/// Fit a probabilistic model of purchasing (BG/NBD, MBG/NBD, Pareto/NBD) or spending
/// (Gamma-Gamma) by maximum likelihood.
///
/// Each customer is summarised as x (repeat purchase days), t_x (first to
/// last purchase) and T (first purchase to the as-of date), in days over
/// --unit (a month is 365.25/12 days), as lifetimes and CLVTools do; every
/// row that is not a return is a purchase. Prints the parameters with standard
/// errors, log-likelihood, AIC, BIC and whether the fit converged; --json
/// prints the same as JSON, --save stores the model for `churn score --model-file`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn fit sales.csv                                  BG/NBD in weeks
  churn fit sales.csv --model auto
  churn fit sales.csv --model gg --save spend.json
  churn fit sales.csv --model bgnbd --unit day --json --save purchases.json")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// The model to fit.
    #[arg(long, value_enum, default_value = "bgnbd", help_heading = "Model")]
    pub model: ModelChoice,

    /// Time unit of the summary and the parameters (month = 365.25/12 days).
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Model")]
    pub unit: Unit,

    /// L2 penalty on the parameters (0 = plain maximum likelihood).
    #[arg(long, default_value = "0", value_parser = values::number(values::penalty), allow_negative_numbers = true, value_name = "LAMBDA", help_heading = "Model")]
    pub penalty: f64,

    /// Print the fit as JSON on stdout.
    #[arg(long, help_heading = "Model")]
    pub json: bool,

    /// Store the fitted model as JSON in FILE.
    #[arg(long, value_name = "FILE", help_heading = "Model")]
    pub save: Option<PathBuf>,

    /// Fit to a per-customer summary made by the query of `churn sql summary`
    /// (CSV or Parquet) instead of transactions.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs", help_heading = "Input")]
    pub summary: Option<PathBuf>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    crate::app::cli::check_outputs(&args.input, &[args.save.as_deref()])?;
    let customers = args.input.customers(&args.engine, &[], args.summary.as_ref());
    let opts = FitOptions { model: args.model, unit: args.unit, penalty: args.penalty };
    let fitted = pipeline::fit::run(&customers, &opts, progress)?;
    if fitted.compared.len() > 1 && !args.json {
        print!("{}", render::fit::comparison(&fitted.compared));
    }
    let chosen = fitted.chosen.ok_or_else(|| anyhow::anyhow!("no purchase model converged"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&chosen)?);
    } else {
        print!("{}", render::fit::summary(&chosen));
    }
    if let Some(problem) = chosen.unusable() {
        bail!("{problem}; try --penalty 0.001 (or larger), another --unit, or check the data with `churn inspect`");
    }
    if let Some(path) = &args.save {
        let text = serde_json::to_string_pretty(&chosen)? + "\n";
        output::atomic_write(path, |w| Ok(w.write_all(text.as_bytes())?))?;
        progress.note(&format!("model saved to {}", path.display()));
    }
    Ok(())
}
