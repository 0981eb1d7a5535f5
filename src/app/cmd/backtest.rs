//! `churn backtest`: evidence that the scores predict something.

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;

use crate::app::cli::parse_horizon;
use crate::app::cli::InputArgs;
use crate::domain::backtest::{self, Metrics, Outcome};
use crate::render::chart;

use crate::base::progress::Progress;
use crate::base::transactions::{is_purchase, Transactions};
use crate::domain::models::{self, ModelName, Unit};
use crate::domain::rfm::{self, RfmOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BacktestModel {
    Bgnbd,
    Mbgnbd,
    Pnbd,
    /// All three.
    Auto,
}

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
    #[arg(long, default_value = "90d", value_parser = parse_horizon, value_name = "SPAN", help_heading = "Backtest")]
    pub holdout: f64,

    /// Purchase model(s) to test.
    #[arg(long, value_enum, default_value_t = BacktestModel::Bgnbd, help_heading = "Backtest")]
    pub model: BacktestModel,

    /// Time unit for fitting.
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Backtest")]
    pub unit: Unit,

    /// L2 penalty when fitting.
    #[arg(long, default_value_t = 0.0, value_name = "LAMBDA", help_heading = "Backtest")]
    pub penalty: f64,

    /// Print the metrics as JSON on stdout.
    #[arg(long, help_heading = "Backtest")]
    pub json: bool,

    /// Also draw predicted vs actual cumulative purchases over the holdout and
    /// the calibration plot to FILE (.svg or .png).
    #[arg(long, value_name = "FILE", help_heading = "Backtest")]
    pub chart: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct Report {
    as_of: String,
    calibration_end: String,
    holdout_days: i32,
    unit: Unit,
    models: Vec<(String, Metrics)>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let chart_format = match &args.chart {
        None => None,
        Some(p) => Some(chart::Format::of(p, false).map_err(crate::base::UsageError)?),
    };
    crate::app::cli::check_outputs(&args.input, &[args.chart.as_deref()])?;
    let (tx, _) = args.input.load(progress)?;
    let holdout_days = args.holdout.round().max(1.0) as i32;
    let split = tx.as_of - holdout_days;
    let calibration = rows_until(&tx, split);
    let summary = models::summarize(&calibration);
    if summary.len() < 10 {
        bail!(
            "only {} customers bought on or before {} (as-of minus the holdout): use a shorter --holdout",
            summary.len(),
            crate::base::text::day_string(split)
        );
    }
    // Actual purchase days in the holdout, per customer code.
    let mut days: Vec<(u32, i32)> = (0..tx.len())
        .filter(|&r| tx.day[r] > split && is_purchase(tx.amount[r]))
        .map(|r| (tx.customer[r], tx.day[r]))
        .collect();
    days.par_sort_unstable();
    days.dedup();
    let mut actual = vec![0u32; tx.ids.len()];
    for (c, _) in days {
        actual[c as usize] += 1;
    }
    progress.note(&format!(
        "calibration to {}: {} customers; holdout {} days to {}",
        crate::base::text::day_string(split),
        crate::base::text::thousands(summary.len() as u64),
        holdout_days,
        crate::base::text::day_string(tx.as_of)
    ));

    let h = holdout_days as f64 / args.unit.days();
    let pat = models::patterns(&summary, args.unit);
    let names: &[ModelName] = match args.model {
        BacktestModel::Bgnbd => &[ModelName::Bgnbd],
        BacktestModel::Mbgnbd => &[ModelName::Mbgnbd],
        BacktestModel::Pnbd => &[ModelName::Pnbd],
        BacktestModel::Auto => &[ModelName::Bgnbd, ModelName::Mbgnbd, ModelName::Pnbd],
    };
    let mut results: Vec<(String, Metrics)> = Vec::new();
    // Predicted cumulative purchases at the end of each model unit of the holdout.
    let steps: Vec<f64> = (1..=h.ceil() as usize).map(|k| (k as f64).min(h)).collect();
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for &name in names {
        let kind = name.purchase_kind().expect("a purchase model");
        let fit = models::fit_purchase(kind, &pat, args.penalty);
        if !fit.converged {
            progress.warn(&format!("the {} fit did not converge; left out", name.title()));
            continue;
        }
        let p = [fit.params[0], fit.params[1], fit.params[2], fit.params[3]];
        let outcomes: Vec<Outcome> = (0..summary.len())
            .into_par_iter()
            .map(|i| {
                let hist = summary.history(i, args.unit);
                let alive = models::purchase::p_alive(kind, &p, hist);
                Outcome {
                    predicted: alive * models::purchase::expected_if_alive(kind, &p, hist, h),
                    p_no_purchase: models::purchase::p_no_purchase(kind, &p, hist, h),
                    risk: 1.0 - alive,
                    actual: actual[summary.customer[i] as usize],
                }
            })
            .collect();
        results.push((name.title().to_string(), backtest::evaluate(&outcomes)));
        if args.chart.is_some() {
            let mut curve = vec![(0.0, 0.0)];
            for &t in &steps {
                let total: f64 = (0..pat.histories.len())
                    .into_par_iter()
                    .map(|i| {
                        let hist = pat.histories[i];
                        pat.weights[i]
                            * models::purchase::p_alive(kind, &p, hist)
                            * models::purchase::expected_if_alive(kind, &p, hist, t)
                    })
                    .collect::<Vec<f64>>()
                    .iter()
                    .sum();
                curve.push((t * args.unit.days(), total));
            }
            curves.push((name.title().to_string(), curve));
        }
    }
    // The RFM baseline on the calibration data.
    let opts = RfmOptions::default();
    let scores = rfm::compute(&calibration, &opts);
    let mut risk = vec![0.0; calibration.ids.len()];
    let n = opts.bins as f64;
    for r in &scores {
        // 1 for the least recent, least frequent; 0 for the best.
        risk[r.customer as usize] =
            1.0 - ((r.r_score as f64 - 1.0) * n + (r.f_score as f64 - 1.0)) / (n * n - 1.0);
    }
    let baseline: Vec<Outcome> = (0..summary.len())
        .map(|i| {
            let hist = summary.history(i, args.unit);
            let c = summary.customer[i] as usize;
            Outcome {
                predicted: hist.x / hist.t * h,
                p_no_purchase: risk[c],
                risk: risk[c],
                actual: actual[c],
            }
        })
        .collect();
    results.push(("RFM baseline".to_string(), backtest::evaluate(&baseline)));

    if let Some(path) = &args.chart {
        // Actual cumulative purchase days, day by day through the holdout.
        let mut per_day = vec![0u64; holdout_days as usize + 1];
        let seen: Vec<bool> = {
            let mut v = vec![false; tx.ids.len()];
            for &c in &summary.customer {
                v[c as usize] = true;
            }
            v
        };
        let mut purchase_days: Vec<(u32, i32)> = (0..tx.len())
            .filter(|&r| {
                tx.day[r] > split && is_purchase(tx.amount[r]) && seen[tx.customer[r] as usize]
            })
            .map(|r| (tx.customer[r], tx.day[r]))
            .collect();
        purchase_days.sort_unstable();
        purchase_days.dedup();
        for (_, d) in purchase_days {
            per_day[(d - split) as usize] += 1;
        }
        let mut acc = 0u64;
        let actual: Vec<(f64, f64)> = per_day
            .iter()
            .enumerate()
            .map(|(d, n)| {
                acc += n;
                (d as f64, acc as f64)
            })
            .collect();
        const COLORS: [&str; 4] = ["#2171b5", "#e6550d", "#31a354", "#756bb1"];
        let mut cumulative: Vec<chart::Series> = curves
            .iter()
            .enumerate()
            .map(|(i, (name, curve))| chart::Series {
                label: name,
                color: COLORS[i % 4],
                points: curve.clone(),
            })
            .collect();
        // Drawn last, on top of the predictions.
        cumulative.push(chart::Series { label: "actual", color: "#222", points: actual });
        let calibration: Vec<chart::Series> = results
            .iter()
            .enumerate()
            .map(|(i, (name, m))| chart::Series {
                label: name,
                color: COLORS[i % 4],
                points: m.calibration.iter().map(|b| (b.mean_predicted, b.observed_rate)).collect(),
            })
            .collect();
        let title = format!(
            "Backtest: fitted to {}, holdout of {} days to {}",
            crate::base::text::day_string(split),
            holdout_days,
            crate::base::text::day_string(tx.as_of)
        );
        let svg = chart::backtest_svg(&title, &cumulative, &calibration);
        let format = chart_format.expect("checked with the chart path");
        let bytes = format.render(svg, &title).map_err(anyhow::Error::msg)?;
        crate::io::output::atomic_write(path, |w| Ok(w.write_all(&bytes)?))?;
        progress.note(&format!("chart written to {}", path.display()));
    }
    let out = Report {
        as_of: crate::base::text::day_string(tx.as_of),
        calibration_end: crate::base::text::day_string(split),
        holdout_days,
        unit: args.unit,
        models: results,
    };
    if args.json {
        let models: serde_json::Map<String, serde_json::Value> = out
            .models
            .iter()
            .map(|(n, m)| Ok((n.clone(), serde_json::to_value(m)?)))
            .collect::<Result<_>>()?;
        let mut v = serde_json::to_value(&out)?;
        v["models"] = serde_json::Value::Object(models);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", human(&out));
    }
    Ok(())
}

/// The rows dated on or before `last`, as their own transactions.
fn rows_until(tx: &Transactions, last: i32) -> Transactions {
    let keep: Vec<usize> = (0..tx.len()).filter(|&r| tx.day[r] <= last).collect();
    Transactions {
        customer: keep.iter().map(|&r| tx.customer[r]).collect(),
        day: keep.iter().map(|&r| tx.day[r]).collect(),
        amount: keep.iter().map(|&r| tx.amount[r]).collect(),
        order: tx.order.as_ref().map(|o| keep.iter().map(|&r| o[r]).collect()),
        ids: tx.ids.clone(),
        as_of: last,
        kept: Vec::new(),
    }
}

fn human(r: &Report) -> String {
    let mut s = format!(
        "calibration to {}, holdout {} days to {}\n\n{:<26}",
        r.calibration_end, r.holdout_days, r.as_of, "metric"
    );
    for (name, _) in &r.models {
        s += &format!("{name:>14}");
    }
    s.push('\n');
    let row = |label: &str, f: &dyn Fn(&Metrics) -> String| {
        let mut line = format!("{label:<26}");
        for (_, m) in &r.models {
            line += &format!("{:>14}", f(m));
        }
        line + "\n"
    };
    s += &row("customers", &|m| m.customers.to_string());
    s += &row("purchases predicted", &|m| format!("{:.1}", m.predicted_total));
    s += &row("purchases actual", &|m| m.actual_total.to_string());
    s += &row("MAE per customer", &|m| format!("{:.4}", m.mae));
    s += &row("RMSE per customer", &|m| format!("{:.4}", m.rmse));
    s += &row("AUC (no purchase)", &|m| format!("{:.4}", m.auc));
    s += &row("Brier score", &|m| format!("{:.4}", m.brier));
    s += &row("log loss", &|m| format!("{:.4}", m.log_loss));
    s += &row("precision, top 10% risk", &|m| format!("{:.4}", m.precision_top10));
    s += &row("lift, top 10% risk", &|m| format!("{:.3}", m.lift_top10));
    s += "\ncalibration of P(no purchase), by decile: predicted / observed\n";
    for d in 0..10 {
        s += &row(&format!("  decile {}", d + 1), &|m| {
            m.calibration
                .get(d)
                .map_or("-".into(), |b| format!("{:.3}/{:.3}", b.mean_predicted, b.observed_rate))
        });
    }
    s
}
