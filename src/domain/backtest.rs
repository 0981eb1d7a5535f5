//! Does the model predict anything? Hold out the last stretch of the data,
//! fit on what came before, predict the holdout, and score the predictions
//! against what happened, next to a naive RFM baseline.
//!
//! Everything here is pure: it takes per-customer predictions and outcomes
//! and returns metrics.

use serde::Serialize;

use crate::domain::models::Unit;

/// Predictions and outcome for one customer seen in the calibration period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Predicted purchases (purchase days) in the holdout.
    pub predicted: f64,
    /// Predicted P(no purchase in the holdout).
    pub p_no_purchase: f64,
    /// Churn risk: the top 10% by it are checked for precision and lift.
    pub risk: f64,
    /// Purchase days actually observed in the holdout.
    pub actual: u32,
}

/// One decile of the calibration table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub customers: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// How good the predictions were.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub customers: u64,
    pub mae: f64,
    pub rmse: f64,
    pub predicted_total: f64,
    pub actual_total: u64,
    /// ROC AUC of `p_no_purchase` for the event "no purchase in the holdout".
    pub auc: f64,
    pub brier: f64,
    pub log_loss: f64,
    /// Share of the top 10% by risk that made no purchase.
    pub precision_top10: f64,
    /// precision_top10 / overall rate of no purchase.
    pub lift_top10: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// ROC AUC by ranks (Mann-Whitney), ties counted half.
/// A backtest: the split, and each model's metrics (the RFM baseline last).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub as_of: String,
    pub calibration_end: String,
    pub holdout_days: i32,
    pub unit: Unit,
    pub models: Vec<(String, Metrics)>,
}

pub fn auc(scores_and_events: &mut [(f64, bool)]) -> f64 {
    scores_and_events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = scores_and_events.iter().filter(|s| s.1).count() as f64;
    let negatives = scores_and_events.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Sum of the (average) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < scores_and_events.len() {
        let mut j = i;
        while j < scores_and_events.len() && scores_and_events[j].0 == scores_and_events[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * scores_and_events[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// All metrics for a set of outcomes.
pub fn evaluate(outcomes: &[Outcome]) -> Metrics {
    let n = outcomes.len() as f64;
    let event = |o: &Outcome| o.actual == 0;
    let mae = outcomes.iter().map(|o| (o.predicted - o.actual as f64).abs()).sum::<f64>() / n;
    let rmse =
        (outcomes.iter().map(|o| (o.predicted - o.actual as f64).powi(2)).sum::<f64>() / n).sqrt();
    let brier = outcomes
        .iter()
        .map(|o| (o.p_no_purchase - if event(o) { 1.0 } else { 0.0 }).powi(2))
        .sum::<f64>()
        / n;
    let log_loss = -outcomes
        .iter()
        .map(|o| {
            let p = o.p_no_purchase.clamp(1e-15, 1.0 - 1e-15);
            if event(o) {
                p.ln()
            } else {
                (1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / n;
    let mut by_prob: Vec<(f64, bool)> =
        outcomes.iter().map(|o| (o.p_no_purchase, event(o))).collect();
    let auc = auc(&mut by_prob);
    // Top 10% by risk, highest first (a stable sort keeps ties in input order).
    let mut scored: Vec<(f64, bool)> = outcomes.iter().map(|o| (o.risk, event(o))).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = ((n * 0.1).ceil() as usize).max(1).min(scored.len());
    let base_rate = outcomes.iter().filter(|o| event(o)).count() as f64 / n;
    let precision = scored[..top].iter().filter(|s| s.1).count() as f64 / top as f64;
    // Calibration: deciles of predicted P(no purchase).
    let mut by_p: Vec<(f64, bool)> = outcomes.iter().map(|o| (o.p_no_purchase, event(o))).collect();
    by_p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let calibration = (0..10)
        .filter_map(|d| {
            let (lo, hi) = (by_p.len() * d / 10, by_p.len() * (d + 1) / 10);
            let bin = &by_p[lo..hi];
            (!bin.is_empty()).then(|| CalibrationBin {
                customers: bin.len() as u64,
                mean_predicted: bin.iter().map(|b| b.0).sum::<f64>() / bin.len() as f64,
                observed_rate: bin.iter().filter(|b| b.1).count() as f64 / bin.len() as f64,
            })
        })
        .collect();
    Metrics {
        customers: outcomes.len() as u64,
        mae,
        rmse,
        predicted_total: outcomes.iter().map(|o| o.predicted).sum(),
        actual_total: outcomes.iter().map(|o| o.actual as u64).sum(),
        auc,
        brier,
        log_loss,
        precision_top10: precision,
        lift_top10: if base_rate > 0.0 { precision / base_rate } else { f64::NAN },
        calibration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Perfect ranking, reversed ranking, and one tie.
        let mut perfect = vec![(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(auc(&mut perfect), 1.0);
        let mut reversed = vec![(0.9, false), (0.8, false), (0.2, true), (0.1, true)];
        assert_eq!(auc(&mut reversed), 0.0);
        // Pairs (pos, neg): (0.5 vs 0.5) = 1/2, (0.5 vs 0.1) = 1, (0.7 vs both) = 2 -> 3.5 / 4.
        let mut tied = vec![(0.5, true), (0.5, false), (0.1, false), (0.7, true)];
        assert_eq!(auc(&mut tied), 0.875);
    }

    #[test]
    fn metrics_by_hand() {
        let o = |predicted, p_no_purchase, actual| Outcome {
            predicted,
            p_no_purchase,
            risk: p_no_purchase,
            actual,
        };
        let m = evaluate(&[o(1.0, 0.2, 2), o(0.0, 0.9, 0), o(2.0, 0.5, 1), o(0.5, 0.6, 0)]);
        assert_eq!(m.mae, (1.0 + 0.0 + 1.0 + 0.5) / 4.0);
        assert_eq!(m.rmse, ((1.0 + 0.0 + 1.0 + 0.25) / 4.0f64).sqrt());
        assert_eq!((m.predicted_total, m.actual_total), (3.5, 3));
        // Brier: (0.2-0)^2 + (0.9-1)^2 + (0.5-0)^2 + (0.6-1)^2 = 0.04 + 0.01 + 0.25 + 0.16.
        assert!((m.brier - 0.46 / 4.0).abs() < 1e-12);
        let ll = -((0.8f64).ln() + (0.9f64).ln() + (0.5f64).ln() + (0.6f64).ln()) / 4.0;
        assert!((m.log_loss - ll).abs() < 1e-12);
        assert_eq!(m.auc, 1.0);
        // Top 10% of 4 is 1 customer (p 0.9, no purchase): precision 1, base rate 0.5.
        assert_eq!((m.precision_top10, m.lift_top10), (1.0, 2.0));
    }
}
