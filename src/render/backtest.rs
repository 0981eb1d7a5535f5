//! `churn backtest` as text: the metrics of every model side by side.

use crate::domain::backtest::{Metrics, Report};

/// One column per model, one row per metric, then the calibration deciles.
pub fn table(r: &Report) -> String {
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
