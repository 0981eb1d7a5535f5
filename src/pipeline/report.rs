//! `churn report`: the figures of the periodic report, period by period.
//!
//! Every earlier period is the same computation on the same input with the
//! analysis date moved back one period, models refitted included. Nothing is
//! remembered between runs (no state file, no database), so a rerun of last
//! Monday's job gives last Monday's report byte for byte.
//!
//! Rows are put in day order once; the data as of any earlier date is then a
//! prefix of the rows, so walking back in time truncates instead of copying.

use std::path::PathBuf;

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::base::dates::Day;
use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::base::text::{count, day_string, thousands};
use crate::base::transactions::{is_purchase, sort_by_day, Transactions};
use crate::domain::cohorts::{self, Retention};
use crate::domain::models::{self, Horizon, ModelName, Unit};
use crate::domain::rfm::{self, RfmOptions};
use crate::domain::risk;
use crate::pipeline::models::{fit_spend, purchase_model};
use crate::pipeline::Source;
use crate::render::report::{
    headline, AtRisk, CohortCell, Migration, ModelInfo, PeriodFigures, Report, ReportFormat,
    ReportPeriod, SegmentCount,
};

/// A report run: what to compute, and when to refuse to write it.
#[derive(Clone, Debug)]
pub struct ReportJob {
    pub options: ReportOptions,
    pub format: ReportFormat,
    /// The file to replace; stdout when none.
    pub output: Option<PathBuf>,
    /// [default: "Churn report: <period> ending <date>"]
    pub title: Option<String>,
    /// Fail without writing when fewer rows were read.
    pub min_rows: Option<u64>,
    /// Fail without writing when the report period has no transactions.
    pub fail_on_empty: bool,
}

/// Reads the transactions, computes the report and writes it whole, or
/// fails having written nothing.
pub fn run(source: &Source, job: &ReportJob, progress: &Progress) -> Result<()> {
    let opts = &job.options;
    let (tx, load) = source.load(progress)?;
    let as_of = tx.as_of;
    let nothing = |why: String| match &job.output {
        Some(p) => anyhow::anyhow!("{why}; {} was not written", p.display()),
        None => anyhow::anyhow!("{why}; no report written"),
    };
    if let Some(min) = job.min_rows {
        if load.rows < min {
            return Err(nothing(format!(
                "only {} read, fewer than --min-rows {}: the export looks incomplete",
                count(load.rows, "row"),
                thousands(min)
            )));
        }
    }
    let period_start = opts.period.end(as_of, 1) + 1;
    if !tx.day.iter().any(|&d| d >= period_start) {
        let why = format!(
            "no transactions in the {} {} to {}",
            opts.period.name(),
            Day(period_start),
            Day(as_of)
        );
        if job.fail_on_empty {
            return Err(nothing(format!("{why} (--fail-on-empty)")));
        }
        progress.warn(&why);
    }
    progress.note(&format!("{}; as of {}", load.summary(tx.ids.len()), day_string(as_of)));
    let title = job
        .title
        .clone()
        .unwrap_or_else(|| format!("Churn report: {} ending {}", opts.period.name(), Day(as_of)));
    let bar = progress.steps(opts.periods as u64, "computing periods");
    let report = compute(tx, load.rows, title, opts, |k| bar.set_position(k as u64))?;
    bar.finish_and_clear();
    if let Some(err) = &report.model_error {
        progress.warn(&format!("the report has no risk figures: {err}"));
    }
    progress.stage("periods");
    crate::io::output::write_document(job.output.as_deref(), &job.format.render(&report)?)?;
    if let Some(p) = &job.output {
        progress.note(&format!("report written to {}", p.display()));
    }
    progress.stage("write");
    Ok(())
}

/// What to compute.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub period: ReportPeriod,
    /// Periods in the trends (at least 3: this, the previous, and the one
    /// before it, which the previous period's churn counts need).
    pub periods: usize,
    /// Customers in the value-at-risk list.
    pub top: usize,
    /// Purchase models to fit at the as-of date; the lowest BIC is kept and
    /// refitted for earlier periods.
    pub models: Vec<ModelName>,
    pub unit: Unit,
    pub horizon_days: f64,
    pub discount_rate: f64,
    /// churn_risk at or above this is "high risk".
    pub high_risk: f64,
    pub penalty: f64,
}

/// The RFM segments that count as loyal, and those that count as churned.
pub const LOYAL_SEGMENTS: [&str; 2] = ["Champions", "Loyal Customers"];
pub const CHURNED_SEGMENTS: [&str; 3] = ["At Risk", "Can't Lose Them", "Lost"];

/// The scores the report keeps per customer.
struct Risk {
    p_alive: f64,
    expected_purchases: f64,
    clv_if_alive: f64,
}

impl Risk {
    fn churn_risk(&self) -> f64 {
        risk::churn_risk(self.p_alive)
    }

    fn value_at_risk(&self) -> f64 {
        risk::value_at_risk(self.p_alive, self.clv_if_alive)
    }
}

/// Per-customer state at one period's end, by customer code.
struct State {
    /// Segment index, u16::MAX when the customer had not bought yet.
    segment: Vec<u16>,
    /// churn_risk at or above the high-risk threshold (None without a model).
    high: Option<Vec<bool>>,
}

/// Computes the report from all transactions up to the as-of date.
/// `step` is called with the number of periods done, for progress.
pub fn compute(
    mut tx: Transactions,
    rows: u64,
    title: String,
    opts: &ReportOptions,
    mut step: impl FnMut(usize),
) -> Result<Report> {
    let as_of = tx.as_of;
    let mut cohort_matrix = cohorts::compute(&tx, opts.period.cohort_period(), Retention::Classic);
    // The heatmap shows the most recent cohorts, as many as the trend periods
    // (periods without new customers have no cohort and no row).
    let mut starts: Vec<i32> = cohort_matrix.cells.iter().map(|c| c.cohort).collect();
    starts.dedup();
    if let Some(&oldest) = starts.len().checked_sub(opts.periods).and_then(|i| starts.get(i)) {
        cohort_matrix.cells.retain(|c| c.cohort >= oldest);
    }
    // ... and their first periods after the first purchase, as many again.
    cohort_matrix.cells.retain(|c| (c.period as usize) < opts.periods);
    let cohorts = cohort_matrix
        .cells
        .iter()
        .map(|c| CohortCell {
            cohort: c.cohort,
            period: c.period,
            cohort_size: c.cohort_size,
            customers: c.customers,
            retention: c.retention,
            partial: c.partial,
        })
        .collect();

    sort_by_day(&mut tx);
    // Each customer's rows, in day order: the rows up to an earlier date are
    // a prefix of every group, so this one grouping serves every period.
    let groups = crate::base::aggregate::group_by_customer(&tx, |r| Some(r as u32));
    let rfm_opts = RfmOptions::default();
    let names = rfm_opts.segments.names();
    let index_of = |set: &[&str]| -> Vec<u16> {
        set.iter().filter_map(|s| names.iter().position(|n| n == s)).map(|i| i as u16).collect()
    };
    let (loyal, churned) = (index_of(&LOYAL_SEGMENTS), index_of(&CHURNED_SEGMENTS));
    let horizon = Horizon::new(opts.horizon_days, opts.discount_rate, opts.unit);

    let mut trend: Vec<PeriodFigures> = Vec::new();
    let mut later: Option<State> = None;
    let mut model = None;
    let mut model_error = None;
    let mut model_names = opts.models.clone();
    let mut segments = Vec::new();
    let mut migration = Vec::new();
    let mut top = Vec::new();
    for k in 0..opts.periods.max(3) {
        let end = opts.period.end(as_of, k as u32);
        let before = opts.period.end(as_of, k as u32 + 1);
        let len = tx.day.partition_point(|&d| d <= end);
        tx.customer.truncate(len);
        tx.day.truncate(len);
        tx.amount.truncate(len);
        if let Some(o) = &mut tx.order {
            o.truncate(len);
        }
        tx.as_of = end;
        let window = tx.day.partition_point(|&d| d <= before);

        let (aggregates, summary) = models::histories_of(&tx, &groups);
        // RFM and the models (refitted on the data up to this period's end)
        // are independent: compute them side by side.
        let (rfm_rows, (pat, purchase, spend)) = rayon::join(
            || {
                if k == 0 {
                    // In customer id order: the tie-break of the top list.
                    rfm::score(aggregates, &tx.ids, end, &rfm_opts)
                } else {
                    let codes: Vec<u32> = (0..tx.ids.len() as u32)
                        .filter(|&c| aggregates.purchases[c as usize] > 0)
                        .collect();
                    rfm::score_codes(aggregates, &codes, end, &rfm_opts)
                }
            },
            || {
                let pat = models::patterns(&summary, opts.unit);
                // Without a model now, earlier periods are not fitted either.
                if model_error.is_some() || models::fit_data_problem(&summary).is_some() {
                    return (pat, None, None);
                }
                let purchase =
                    purchase_model(None, &model_names, &pat, opts.penalty, opts.unit, end).ok();
                let spend = fit_spend(&summary, opts.penalty, opts.unit, end);
                (pat, purchase, Some(spend))
            },
        );
        if rfm_rows.is_empty() {
            if k == 0 {
                bail!("no customer has a purchase on or before {}", Day(as_of));
            }
            break;
        }
        let mut f = PeriodFigures { start: before + 1, end, ..Default::default() };
        f.customers = rfm_rows.len() as u64;
        for r in &rfm_rows {
            if r.last_purchase > before {
                f.active_customers += 1;
                if r.first_purchase > before {
                    f.new_customers += 1;
                }
            }
            if loyal.contains(&r.segment) {
                f.loyal_customers += 1;
            }
        }
        f.returning_customers = f.active_customers - f.new_customers;
        f.repeat_purchase_rate =
            rfm_rows.iter().filter(|r| r.frequency >= 2).count() as f64 / rfm_rows.len() as f64;
        f.revenue = crate::base::aggregate::total_amount(&tx.amount[window..]);
        f.purchases = match &tx.order {
            Some(o) => {
                let keys: Vec<u64> =
                    (window..len).filter(|&r| is_purchase(tx.amount[r])).map(|r| o[r]).collect();
                crate::base::aggregate::count_distinct(&keys) as u64
            }
            None => tx.amount[window..].iter().filter(|&&a| is_purchase(a)).count() as u64,
        };

        let mut segment = vec![u16::MAX; tx.ids.len()];
        for r in &rfm_rows {
            segment[r.customer as usize] = r.segment;
        }
        // Only the current period's list needs the rows themselves.
        let rfm_rows = if k == 0 { rfm_rows } else { Vec::new() };

        let mut high = None;
        match (purchase, spend) {
            (Some(p), Some(Ok(s))) => {
                let scores = models::Scorer::fitted(&summary, &pat, &p, &s, horizon).all(|sc| Risk {
                    p_alive: sc.p_alive,
                    expected_purchases: sc.expected_purchases,
                    clv_if_alive: sc.clv_if_alive,
                });
                let mut flags = vec![false; tx.ids.len()];
                let (mut var, mut high_n) = (0.0, 0u64);
                for (i, sc) in scores.iter().enumerate() {
                    var += sc.value_at_risk();
                    if sc.churn_risk() >= opts.high_risk {
                        flags[summary.customer[i] as usize] = true;
                        high_n += 1;
                    }
                }
                f.value_at_risk = Some(var);
                f.high_risk_customers = Some(high_n);
                high = Some(flags);
                if k == 0 {
                    top = top_at_risk(&tx, &rfm_rows, &names, &summary, &scores, opts.top);
                    // Earlier periods use the model chosen now.
                    model_names = vec![p.model];
                    model = Some(ModelInfo {
                        purchase: p,
                        spend: s,
                        horizon_days: opts.horizon_days,
                        discount_rate: opts.discount_rate,
                        high_risk: opts.high_risk,
                    });
                }
            }
            (None, _) if k == 0 => {
                model_error = Some(models::fit_data_problem(&summary).unwrap_or_else(|| format!(
                    "the purchase model did not converge on the data up to {}; try --penalty 0.001, another --unit, or `churn fit` to see the fit",
                    Day(end)
                )))
            }
            (_, Some(Err(e))) if k == 0 => {
                model_error = Some(format!(
                    "the Gamma-Gamma spend model could not be fitted on the data up to {}: {e}",
                    Day(end)
                ))
            }
            _ => {}
        }
        let state = State { segment, high };

        // This period's state is the "before" of the later period.
        if let Some(l) = &later {
            let fig = trend.last_mut().expect("the later period");
            fig.churned_by_rfm = Some(
                (0..l.segment.len())
                    .filter(|&c| {
                        let (now, then) = (l.segment[c], state.segment.get(c).copied());
                        churned.contains(&now)
                            && then.is_some_and(|t| t != u16::MAX && !churned.contains(&t))
                    })
                    .count() as u64,
            );
            fig.churned_by_model = match (&l.high, &state.high) {
                (Some(now), Some(then)) => Some(
                    (0..now.len())
                        .filter(|&c| {
                            now[c]
                                && state.segment.get(c).is_some_and(|&s| s != u16::MAX)
                                && !then[c]
                        })
                        .count() as u64,
                ),
                _ => None,
            };
            if k == 1 {
                (segments, migration) = segment_changes(&l.segment, &state.segment, &names);
            }
        }
        trend.push(f);
        later = Some(state);
        step(k + 1);
    }
    if trend.len() == 1 {
        let l = later.as_ref().expect("the current period");
        (segments, migration) = segment_changes(&l.segment, &[], &names);
    }
    trend.reverse();
    let headline = headline(&trend);
    Ok(Report {
        title,
        as_of,
        period: opts.period.name(),
        rows,
        trend,
        headline,
        model,
        model_error,
        segments,
        migration,
        top_at_risk: top,
        cohorts,
        cohort_matrix,
    })
}

/// Segment sizes now and before, and who moved where ("New" for customers
/// who had not bought before).
fn segment_changes(
    now: &[u16],
    before: &[u16],
    names: &[String],
) -> (Vec<SegmentCount>, Vec<Migration>) {
    let new = names.len();
    let mut moves = vec![vec![0u64; names.len()]; names.len() + 1];
    let mut previous = vec![0u64; names.len()];
    for (c, &s) in now.iter().enumerate() {
        let b = before.get(c).copied().unwrap_or(u16::MAX);
        if b != u16::MAX {
            previous[b as usize] += 1;
        }
        if s != u16::MAX {
            let from = if b == u16::MAX { new } else { b as usize };
            moves[from][s as usize] += 1;
        }
    }
    let segments = names
        .iter()
        .enumerate()
        .map(|(i, n)| SegmentCount {
            segment: n.clone(),
            customers: (0..=new).map(|f| moves[f][i]).sum(),
            previous: previous[i],
        })
        .collect();
    let mut migration = Vec::new();
    for (from, row) in moves.iter().enumerate() {
        for (to, &n) in row.iter().enumerate() {
            if n > 0 {
                let from = if from == new { "New".to_string() } else { names[from].clone() };
                migration.push(Migration { from, to: names[to].clone(), customers: n });
            }
        }
    }
    (segments, migration)
}

/// The `top` customers by value at risk (ties by customer id).
fn top_at_risk(
    tx: &Transactions,
    rfm_rows: &[rfm::CustomerRfm],
    names: &[String],
    summary: &crate::base::summary::Summary,
    scores: &[Risk],
    top: usize,
) -> Vec<AtRisk> {
    // RFM rows are in customer id order: their position is the tie-break.
    let mut row_of = vec![u32::MAX; tx.ids.len()];
    for (k, r) in rfm_rows.iter().enumerate() {
        row_of[r.customer as usize] = k as u32;
    }
    let var = |i: usize| scores[i].value_at_risk();
    let mut order: Vec<(f64, u32, u32)> = (0..summary.len())
        .into_par_iter()
        .map(|i| (var(i), row_of[summary.customer[i] as usize], i as u32))
        .collect();
    let by = |a: &(f64, u32, u32), b: &(f64, u32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if top < order.len() {
        order.select_nth_unstable_by(top, by);
        order.truncate(top);
    }
    order.sort_unstable_by(by);
    order
        .into_iter()
        .map(|(v, row, i)| {
            let r = &rfm_rows[row as usize];
            let sc = &scores[i as usize];
            AtRisk {
                customer_id: tx.ids.get(r.customer).into_owned(),
                segment: names[r.segment as usize].clone(),
                first_purchase: r.first_purchase,
                last_purchase: r.last_purchase,
                purchases: r.frequency,
                monetary: r.monetary,
                p_alive: sc.p_alive,
                churn_risk: sc.churn_risk(),
                expected_purchases: sc.expected_purchases,
                clv: sc.p_alive * sc.clv_if_alive,
                value_at_risk: v,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_order_is_stable() {
        let mut tx = Transactions {
            customer: vec![0, 1, 2, 3, 4],
            day: vec![5, 3, 5, 1, 3],
            amount: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            order: Some(vec![10, 11, 12, 13, 14]),
            ..Default::default()
        };
        sort_by_day(&mut tx);
        assert_eq!(tx.day, vec![1, 3, 3, 5, 5]);
        assert_eq!(tx.customer, vec![3, 1, 4, 0, 2]);
        assert_eq!(tx.amount, vec![4.0, 2.0, 5.0, 1.0, 3.0]);
        assert_eq!(tx.order, Some(vec![13, 11, 14, 10, 12]));
    }

    #[test]
    fn migration_counts_every_current_customer_once() {
        let names: Vec<String> = ["A", "B"].iter().map(|s| s.to_string()).collect();
        let (seg, moves) = segment_changes(&[0, 1, 1, u16::MAX, 0], &[0, 0, u16::MAX], &names);
        assert_eq!(seg[0], SegmentCount { segment: "A".into(), customers: 2, previous: 2 });
        assert_eq!(seg[1], SegmentCount { segment: "B".into(), customers: 2, previous: 0 });
        let m = |f: &str, t: &str, n| Migration { from: f.into(), to: t.into(), customers: n };
        assert_eq!(moves, vec![m("A", "A", 1), m("A", "B", 1), m("New", "A", 1), m("New", "B", 1)]);
    }
}
