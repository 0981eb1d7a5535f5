//! The periodic churn report: where the customer base stands at the end of a
//! period, and how that compares with the periods before.
//!
//! Every earlier period is the same computation on the same input with the
//! analysis date moved back one period, models refitted included. Nothing is
//! remembered between runs (no state file, no database), so a rerun of last
//! Monday's job gives last Monday's report byte for byte.
//!
//! Rows are put in day order once; the data as of any earlier date is then a
//! prefix of the rows, so walking back in time truncates instead of copying.

pub mod format;
pub mod html;
pub mod markdown;
pub mod tables;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Serialize, Serializer};

use crate::base::dates::{civil_from_days, days_from_civil, days_in_month, Day};
use crate::base::transactions::sort_by_day;
use crate::base::transactions::{is_purchase, Transactions};
use crate::domain::cohorts::{self, Cohorts, Period, Retention};
use crate::domain::models::{self, FittedModel, Horizon, ModelName, Unit};
use crate::domain::rfm::{self, RfmOptions};

crate::named_enum! {
    /// The length of a report period.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ReportPeriod {
        #[default]
        Week = ("week", "The 7 days ending at the as-of date"),
        Month = ("month", "The calendar month ending at the as-of date (from the same day of the previous month; month ends stay month ends)"),
    }
}

impl ReportPeriod {
    /// The last day of the period `back` periods before the one ending at `as_of`.
    pub fn end(self, as_of: i32, back: u32) -> i32 {
        match self {
            ReportPeriod::Week => as_of - 7 * back as i32,
            ReportPeriod::Month => {
                let (y, m, d) = civil_from_days(as_of);
                let month_end = d == days_in_month(y, m);
                let months = y as i64 * 12 + (m as i64 - 1) - back as i64;
                let (ny, nm) = (months.div_euclid(12) as i32, months.rem_euclid(12) as u32 + 1);
                let last = days_in_month(ny, nm);
                days_from_civil(ny, nm, if month_end { last } else { d.min(last) })
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ReportPeriod::Week => "week",
            ReportPeriod::Month => "month",
        }
    }

    /// The calendar period of the cohort heatmap.
    pub fn cohort_period(self) -> Period {
        match self {
            ReportPeriod::Week => Period::Week,
            ReportPeriod::Month => Period::Month,
        }
    }
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

fn day<S: Serializer>(d: &i32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Day(*d))
}

/// The figures of one period, (start, end] inclusive of both days.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PeriodFigures {
    #[serde(serialize_with = "day")]
    pub start: i32,
    #[serde(serialize_with = "day")]
    pub end: i32,
    /// Customers with a purchase on or before the end.
    pub customers: u64,
    /// Customers with a purchase in the period.
    pub active_customers: u64,
    /// Active customers whose first purchase is in the period.
    pub new_customers: u64,
    /// Active customers who had bought before the period.
    pub returning_customers: u64,
    /// Purchases in the period (distinct orders, or rows, that are not returns).
    pub purchases: u64,
    /// Net amount of the period's rows, returns included.
    pub revenue: f64,
    /// Customers in the Champions and Loyal Customers segments at the end.
    pub loyal_customers: u64,
    /// Share of customers with two or more purchases by the end.
    pub repeat_purchase_rate: f64,
    /// Customers with churn_risk at or above the high-risk threshold (None
    /// when the model could not be fitted on the data up to this period).
    pub high_risk_customers: Option<u64>,
    /// Σ churn_risk × CLV if alive.
    pub value_at_risk: Option<f64>,
    /// Customers who became high risk during the period (known before it).
    pub churned_by_model: Option<u64>,
    /// Customers who moved into At Risk, Can't Lose Them or Lost during the
    /// period from another segment.
    pub churned_by_rfm: Option<u64>,
}

/// Segment sizes at the end of this period and the previous one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentCount {
    pub segment: String,
    pub customers: u64,
    pub previous: u64,
}

/// Customers who were in `from` at the previous period's end ("New" when
/// they had not bought yet) and are in `to` now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Migration {
    pub from: String,
    pub to: String,
    pub customers: u64,
}

/// A customer worth a retention call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtRisk {
    pub customer_id: String,
    pub segment: String,
    #[serde(serialize_with = "day")]
    pub first_purchase: i32,
    #[serde(serialize_with = "day")]
    pub last_purchase: i32,
    pub purchases: u32,
    pub monetary: f64,
    pub p_alive: f64,
    pub churn_risk: f64,
    pub expected_purchases: f64,
    pub clv: f64,
    pub value_at_risk: f64,
}

/// The models behind the risk figures of the current period.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub purchase: FittedModel,
    pub spend: FittedModel,
    pub horizon_days: f64,
    pub discount_rate: f64,
    pub high_risk: f64,
}

/// One cohort heatmap cell, as data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CohortCell {
    #[serde(serialize_with = "day")]
    pub cohort: i32,
    pub period: u32,
    pub cohort_size: u64,
    pub customers: u64,
    pub retention: f64,
    pub partial: bool,
}

/// Everything in the report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub title: String,
    #[serde(serialize_with = "day")]
    pub as_of: i32,
    pub period: &'static str,
    /// Rows read from the inputs.
    pub rows: u64,
    /// Oldest first; the last is the current period.
    pub trend: Vec<PeriodFigures>,
    pub headline: Vec<Headline>,
    /// None when the models could not be fitted on the data up to the
    /// as-of date (too few customers or repeat buyers); `model_error` says why
    /// and the risk figures are left out.
    pub model: Option<ModelInfo>,
    pub model_error: Option<String>,
    pub segments: Vec<SegmentCount>,
    pub migration: Vec<Migration>,
    pub top_at_risk: Vec<AtRisk>,
    pub cohorts: Vec<CohortCell>,
    #[serde(skip)]
    pub cohort_matrix: Cohorts,
}

impl Report {
    pub fn current(&self) -> &PeriodFigures {
        self.trend.last().expect("a report has a current period")
    }

    pub fn previous(&self) -> Option<&PeriodFigures> {
        self.trend.len().checked_sub(2).map(|i| &self.trend[i])
    }
}

/// How a headline figure is displayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Count,
    Money,
    Rate,
}

/// A headline figure with its value for the previous period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Headline {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// value − previous.
    pub change: Option<f64>,
}

/// The headline figures, in display order.
pub fn headline(trend: &[PeriodFigures]) -> Vec<Headline> {
    type Get = fn(&PeriodFigures) -> Option<f64>;
    let rows: [(&str, &str, Kind, Get); 11] = [
        ("active_customers", "Active customers", Kind::Count, |p| Some(p.active_customers as f64)),
        ("new_customers", "New customers", Kind::Count, |p| Some(p.new_customers as f64)),
        ("returning_customers", "Returning customers", Kind::Count, |p| {
            Some(p.returning_customers as f64)
        }),
        ("churned_by_model", "Churned (model: became high risk)", Kind::Count, |p| {
            p.churned_by_model.map(|v| v as f64)
        }),
        (
            "churned_by_rfm",
            "Churned (RFM: moved to At Risk / Can't Lose Them / Lost)",
            Kind::Count,
            |p| p.churned_by_rfm.map(|v| v as f64),
        ),
        ("loyal_customers", "Loyal customers (Champions + Loyal)", Kind::Count, |p| {
            Some(p.loyal_customers as f64)
        }),
        ("revenue", "Revenue", Kind::Money, |p| Some(p.revenue)),
        ("purchases", "Purchases", Kind::Count, |p| Some(p.purchases as f64)),
        ("repeat_purchase_rate", "Repeat-purchase rate", Kind::Rate, |p| {
            Some(p.repeat_purchase_rate)
        }),
        ("high_risk_customers", "High-risk customers", Kind::Count, |p| {
            p.high_risk_customers.map(|v| v as f64)
        }),
        ("value_at_risk", "Value at risk", Kind::Money, |p| p.value_at_risk),
    ];
    let current = trend.last();
    let previous = trend.len().checked_sub(2).map(|i| &trend[i]);
    rows.iter()
        .map(|&(key, label, kind, get)| {
            let value = current.and_then(get);
            let prev = previous.and_then(get);
            Headline {
                key,
                label,
                kind,
                value,
                previous: prev,
                change: value.zip(prev).map(|(v, p)| v - p),
            }
        })
        .collect()
}

/// The scores the report keeps per customer.
struct Risk {
    p_alive: f64,
    expected_purchases: f64,
    clv_if_alive: f64,
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
                    models::fit_best_purchase(&model_names, &pat, opts.penalty, opts.unit, end);
                let spend = models::fit_spend(&summary, opts.penalty)
                    .filter(|f| f.converged && f.params[1] > 1.0)
                    .map(|f| models::describe(ModelName::Gg, &f, opts.unit, end));
                (pat, purchase, spend)
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
            (Some(p), Some(s)) => {
                let scores = models::score_fitted(
                    &summary,
                    &pat,
                    &p,
                    &s,
                    horizon,
                    |sc| Risk {
                        p_alive: sc.p_alive,
                        expected_purchases: sc.expected_purchases,
                        clv_if_alive: sc.clv_if_alive,
                    },
                );
                let mut flags = vec![false; tx.ids.len()];
                let (mut var, mut high_n) = (0.0, 0u64);
                for (i, sc) in scores.iter().enumerate() {
                    let risk = 1.0 - sc.p_alive;
                    var += risk * sc.clv_if_alive;
                    if risk >= opts.high_risk {
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
            (_, None) if k == 0 => {
                model_error = Some(format!(
                    "the Gamma-Gamma spend model could not be fitted on the data up to {} (too few repeat buyers, or q <= 1); try --penalty 0.001",
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
    let var = |i: usize| (1.0 - scores[i].p_alive) * scores[i].clv_if_alive;
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
                churn_risk: 1.0 - sc.p_alive,
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
    use crate::base::dates::parse_ymd;

    #[test]
    fn period_ends() {
        let d = |s| parse_ymd(s).unwrap();
        let w = ReportPeriod::Week;
        assert_eq!(w.end(d("2024-06-29"), 0), d("2024-06-29"));
        assert_eq!(w.end(d("2024-06-29"), 2), d("2024-06-15"));
        let m = ReportPeriod::Month;
        assert_eq!(m.end(d("2024-06-29"), 1), d("2024-05-29"));
        assert_eq!(m.end(d("2024-06-30"), 1), d("2024-05-31"));
        assert_eq!(m.end(d("2024-03-31"), 1), d("2024-02-29"));
        assert_eq!(m.end(d("2024-03-30"), 1), d("2024-02-29"));
        assert_eq!(m.end(d("2024-01-15"), 13), d("2022-12-15"));
        assert_eq!(m.end(d("2024-02-29"), 12), d("2023-02-28"));
        assert_eq!(m.end(d("2023-02-28"), 1), d("2023-01-31"));
    }

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
