//! `churn fit`: fit a customer-base model and report how well it fits.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::app::cli::{EngineArgs, InputArgs};
use crate::base::progress::Progress;
use crate::domain::models::{self, FittedModel, ModelName, Unit};
use crate::io::input::{self, CustomerPart};
use crate::io::output;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FitModel {
    /// BG/NBD purchases (Fader, Hardie & Lee 2005).
    Bgnbd,
    /// MBG/NBD purchases (Batislam et al. 2007).
    Mbgnbd,
    /// Pareto/NBD purchases (Schmittlein, Morrison & Colombo 1987).
    Pnbd,
    /// Gamma-Gamma spend per purchase.
    Gg,
    /// Fit the purchase models and keep the lowest BIC.
    Auto,
}

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
    #[arg(long, value_enum, default_value_t = FitModel::Bgnbd, help_heading = "Model")]
    pub model: FitModel,

    /// Time unit of the summary and the parameters (month = 365.25/12 days).
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Model")]
    pub unit: Unit,

    /// L2 penalty on the parameters (0 = plain maximum likelihood).
    #[arg(long, default_value_t = 0.0, value_name = "LAMBDA", help_heading = "Model")]
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
    if args.penalty.is_nan() || args.penalty < 0.0 {
        bail!(crate::base::UsageError("--penalty must be 0 or more".into()));
    }
    crate::app::cli::check_outputs(&args.input, &[args.save.as_deref()])?;
    let (summary, as_of, what_was_read) = match &args.summary {
        Some(path) => {
            let mut s = input::summary::read_summary(path)?;
            let read = s.note(path);
            (s.model_summary(path)?, s.as_of, read)
        }
        None => {
            let (parts, report) = args.input.load_each(&args.engine, &[], progress, |mut tx| {
                let (_, summary) = models::histories_freeing_rows(&mut tx);
                Ok(CustomerPart { summary, as_of: tx.as_of, ..CustomerPart::default() })
            })?;
            let all = CustomerPart::join(parts);
            let read = report.summary(all.summary.len());
            (all.summary, all.as_of, read)
        }
    };
    if summary.is_empty() {
        bail!("no customer has a purchase on or before {}", crate::base::text::day_string(as_of));
    }
    progress.note(&format!("{what_was_read}; as of {}", crate::base::text::day_string(as_of)));
    let spinner = progress.spinner("fitting");
    let chosen = match args.model {
        FitModel::Gg => match models::fit_spend(&summary, args.penalty) {
            Some(fit) => models::describe(ModelName::Gg, &fit, args.unit, as_of),
            None => {
                bail!("Gamma-Gamma needs customers with repeat purchases: fewer than 3 have one")
            }
        },
        FitModel::Bgnbd | FitModel::Mbgnbd | FitModel::Pnbd | FitModel::Auto => {
            if let Some(problem) = models::fit_data_problem(&summary) {
                bail!("{problem}");
            }
            let pat = models::patterns(&summary, args.unit);
            progress.note(&format!(
                "{} customers in {} distinct (x, t_x, T) patterns",
                crate::base::text::thousands(summary.len() as u64),
                crate::base::text::thousands(pat.histories.len() as u64)
            ));
            let names: &[ModelName] = match args.model {
                FitModel::Bgnbd => &[ModelName::Bgnbd],
                FitModel::Mbgnbd => &[ModelName::Mbgnbd],
                FitModel::Pnbd => &[ModelName::Pnbd],
                _ => &[ModelName::Bgnbd, ModelName::Mbgnbd, ModelName::Pnbd],
            };
            let fitted: Vec<FittedModel> = names
                .iter()
                .map(|&m| {
                    let kind = m.purchase_kind().expect("purchase model");
                    models::describe(
                        m,
                        &models::fit_purchase(kind, &pat, args.penalty),
                        args.unit,
                        as_of,
                    )
                })
                .collect();
            if fitted.len() > 1 && !args.json {
                println!(
                    "{:<10} {:>16} {:>14} {:>14}  converged",
                    "model", "log-likelihood", "AIC", "BIC"
                );
                for f in &fitted {
                    println!(
                        "{:<10} {:>16.3} {:>14.3} {:>14.3}  {}",
                        f.model.title(),
                        f.log_likelihood,
                        f.aic,
                        f.bic,
                        if f.converged { "yes" } else { "no" }
                    );
                }
                println!();
            }
            fitted
                .into_iter()
                .filter(|f| f.converged || names.len() == 1)
                .min_by(|a, b| a.bic.total_cmp(&b.bic))
                .ok_or_else(|| anyhow::anyhow!("no purchase model converged"))?
        }
    };
    spinner.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&chosen)?);
    } else {
        print!("{}", human(&chosen));
    }
    if !chosen.converged {
        bail!(
            "the {} fit did not converge; try --penalty 0.001 (or larger), another --unit, or check the data with `churn inspect`",
            chosen.model.title()
        );
    }
    if let Some(path) = &args.save {
        let text = serde_json::to_string_pretty(&chosen)? + "\n";
        output::atomic_write(path, |w| Ok(w.write_all(text.as_bytes())?))?;
        progress.note(&format!("model saved to {}", path.display()));
    }
    Ok(())
}

fn human(f: &FittedModel) -> String {
    let mut s = format!(
        "model: {} ({}s, as of {}), {} customers\n",
        f.model.title(),
        match f.unit {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        },
        f.as_of,
        crate::base::text::thousands(f.customers)
    );
    s += &format!("{:<8} {:>14} {:>14}\n", "param", "estimate", "std. error");
    for name in f.model.param_names() {
        let get = |m: &serde_json::Map<String, serde_json::Value>| {
            m.get(*name).and_then(|v| v.as_f64()).map_or("-".to_string(), |v| format!("{v:.6}"))
        };
        s += &format!("{:<8} {:>14} {:>14}\n", name, get(&f.params), get(&f.std_errors));
    }
    s += &format!(
        "log-likelihood {:.4}, AIC {:.4}, BIC {:.4}, converged: {}\n",
        f.log_likelihood,
        f.aic,
        f.bic,
        if f.converged { "yes" } else { "no" }
    );
    s
}
