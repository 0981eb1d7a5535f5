//! `churn backtest`: fit on all but the last stretch of the data, predict the
//! stretch, and compare with what happened, next to an RFM baseline.

use std::path::PathBuf;

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::base::progress::Progress;
use crate::base::summary::Summary;
use crate::base::text::{day_string, thousands};
use crate::base::transactions::{is_purchase, Transactions};
use crate::domain::backtest::{self, Metrics, Outcome, Report};
use crate::domain::models::{self, purchase, Unit};
use crate::domain::rfm::{self, RfmOptions};
use crate::domain::risk::churn_risk;
use crate::pipeline::models::ModelChoice;
use crate::pipeline::Source;
use crate::render::chart;

#[derive(Clone, Debug)]
pub struct BacktestOptions {
    pub holdout_days: i32,
    pub model: ModelChoice,
    pub unit: Unit,
    pub penalty: f64,
    /// Also draw predicted against actual purchases to this file.
    pub chart: Option<(PathBuf, chart::Format)>,
}

/// Predicted cumulative purchases at the end of each model unit of the holdout.
type Curve = (String, Vec<(f64, f64)>);

pub fn run(source: &Source, opts: &BacktestOptions, progress: &Progress) -> Result<Report> {
    let (tx, _) = source.load(progress)?;
    let holdout_days = opts.holdout_days;
    let split = tx.as_of - holdout_days;
    let calibration = rows_until(&tx, split);
    let summary = models::summarize(&calibration);
    if summary.len() < 10 {
        bail!(
            "only {} customers bought on or before {} (as-of minus the holdout): use a shorter --holdout",
            summary.len(),
            day_string(split)
        );
    }
    let actual = holdout_purchase_days(&tx, split);
    progress.note(&format!(
        "calibration to {}: {} customers; holdout {} days to {}",
        day_string(split),
        thousands(summary.len() as u64),
        holdout_days,
        day_string(tx.as_of)
    ));

    let unit = opts.unit;
    let h = holdout_days as f64 / unit.days();
    let pat = models::patterns(&summary, unit);
    let mut results: Vec<(String, Metrics)> = Vec::new();
    let steps: Vec<f64> = (1..=h.ceil() as usize).map(|k| (k as f64).min(h)).collect();
    let mut curves: Vec<Curve> = Vec::new();
    for name in opts.model.candidates() {
        let kind = name.purchase_kind().expect("a purchase model");
        let fit = models::fit_purchase(kind, &pat, opts.penalty);
        if !fit.converged {
            progress.warn(&format!("the {} fit did not converge; left out", name.title()));
            continue;
        }
        let p = [fit.params[0], fit.params[1], fit.params[2], fit.params[3]];
        let outcomes: Vec<Outcome> = (0..summary.len())
            .into_par_iter()
            .map(|i| {
                let hist = summary.history(i, unit);
                let alive = purchase::p_alive(kind, &p, hist);
                Outcome {
                    predicted: alive * purchase::expected_if_alive(kind, &p, hist, h),
                    p_no_purchase: purchase::p_no_purchase(kind, &p, hist, h),
                    risk: churn_risk(alive),
                    actual: actual[summary.customer[i] as usize],
                }
            })
            .collect();
        results.push((name.title().to_string(), backtest::evaluate(&outcomes)));
        if opts.chart.is_some() {
            let mut curve = vec![(0.0, 0.0)];
            for &t in &steps {
                let total: f64 = (0..pat.histories.len())
                    .into_par_iter()
                    .map(|i| {
                        let hist = pat.histories[i];
                        pat.weights[i]
                            * purchase::p_alive(kind, &p, hist)
                            * purchase::expected_if_alive(kind, &p, hist, t)
                    })
                    .collect::<Vec<f64>>()
                    .iter()
                    .sum();
                curve.push((t * unit.days(), total));
            }
            curves.push((name.title().to_string(), curve));
        }
    }
    let baseline = rfm_baseline(&calibration, &summary, &actual, unit, h);
    results.push(("RFM baseline".to_string(), backtest::evaluate(&baseline)));
    let report = Report {
        as_of: day_string(tx.as_of),
        calibration_end: day_string(split),
        holdout_days,
        unit,
        models: results,
    };
    if let Some((path, format)) = &opts.chart {
        let svg = chart_svg(&tx, &summary, split, &curves, &report);
        let title = chart_title(&report);
        let bytes = format.render(svg, &title).map_err(anyhow::Error::msg)?;
        crate::io::output::atomic_write(path, |w| Ok(w.write_all(&bytes)?))?;
        progress.note(&format!("chart written to {}", path.display()));
    }
    Ok(report)
}

/// Each customer's purchase days after `split`, by customer code.
fn holdout_purchase_days(tx: &Transactions, split: i32) -> Vec<u32> {
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
    actual
}

/// The RFM baseline on the calibration data: each customer's past repeat
/// rate as the prediction, and risk ranked by r_score, then f_score.
fn rfm_baseline(
    calibration: &Transactions,
    summary: &Summary,
    actual: &[u32],
    unit: Unit,
    h: f64,
) -> Vec<Outcome> {
    let opts = RfmOptions::default();
    let scores = rfm::compute(calibration, &opts);
    let mut risk = vec![0.0; calibration.ids.len()];
    let n = opts.bins as f64;
    for r in &scores {
        // 1 for the least recent, least frequent; 0 for the best.
        risk[r.customer as usize] =
            1.0 - ((r.r_score as f64 - 1.0) * n + (r.f_score as f64 - 1.0)) / (n * n - 1.0);
    }
    (0..summary.len())
        .map(|i| {
            let hist = summary.history(i, unit);
            let c = summary.customer[i] as usize;
            Outcome {
                predicted: hist.x / hist.t * h,
                p_no_purchase: risk[c],
                risk: risk[c],
                actual: actual[c],
            }
        })
        .collect()
}

fn chart_title(r: &Report) -> String {
    format!(
        "Backtest: fitted to {}, holdout of {} days to {}",
        r.calibration_end, r.holdout_days, r.as_of
    )
}

/// Predicted against actual cumulative purchases over the holdout, and
/// the calibration plot.
fn chart_svg(
    tx: &Transactions,
    summary: &Summary,
    split: i32,
    curves: &[Curve],
    report: &Report,
) -> String {
    // Actual cumulative purchase days, day by day through the holdout.
    let mut per_day = vec![0u64; report.holdout_days as usize + 1];
    let mut seen = vec![false; tx.ids.len()];
    for &c in &summary.customer {
        seen[c as usize] = true;
    }
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
    let calibration: Vec<chart::Series> = report
        .models
        .iter()
        .enumerate()
        .map(|(i, (name, m))| chart::Series {
            label: name,
            color: COLORS[i % 4],
            points: m.calibration.iter().map(|b| (b.mean_predicted, b.observed_rate)).collect(),
        })
        .collect();
    chart::backtest_svg(&chart_title(report), &cumulative, &calibration)
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
