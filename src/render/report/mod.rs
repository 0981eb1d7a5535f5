//! The periodic churn report: where the customer base stands at the end of a
//! period, and how that compares with the periods before. The figures are
//! computed by `pipeline::report`; this is what they are, and how a page
//! shows them.

pub mod format;
pub mod html;
pub mod markdown;
pub mod tables;

use anyhow::Result;
use serde::{Serialize, Serializer};

use crate::base::dates::{civil_from_days, days_from_civil, days_in_month, Day};
use crate::domain::cohorts::{Cohorts, Period};
use crate::domain::models::FittedModel;

crate::named_enum! {
    /// The length of a report period.
    #[derive(Default)]
    pub enum ReportPeriod {
        #[default]
        Week = ("week", "The 7 days ending at the as-of date"),
        Month = ("month", "The calendar month ending at the as-of date (from the same day of the previous month; month ends stay month ends)"),
    }
}

crate::named_enum! {
    /// How the report is written.
    pub enum ReportFormat {
        Html = ("html", "One self-contained page (inline CSS and SVG)"),
        Markdown = ("markdown", ""),
        Json = ("json", "The figures alone"),
    }
}

impl ReportFormat {
    /// The format a file's extension names.
    pub fn of(path: &std::path::Path) -> Option<ReportFormat> {
        let ext = path.extension()?.to_string_lossy().to_lowercase();
        match ext.as_str() {
            "html" | "htm" => Some(ReportFormat::Html),
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "json" => Some(ReportFormat::Json),
            _ => None,
        }
    }

    /// The report in this format.
    pub fn render(self, report: &Report) -> Result<Vec<u8>> {
        Ok(match self {
            ReportFormat::Html => html::render(report).into_bytes(),
            ReportFormat::Markdown => markdown::render(report).into_bytes(),
            ReportFormat::Json => {
                let mut v = serde_json::to_vec_pretty(report)?;
                v.push(b'\n');
                v
            }
        })
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

    /// The calendar period of the cohort heatmap.
    pub fn cohort_period(self) -> Period {
        match self {
            ReportPeriod::Week => Period::Week,
            ReportPeriod::Month => Period::Month,
        }
    }
}

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
}
