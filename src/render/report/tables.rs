//! The report's tables as text, written once: the HTML and Markdown
//! renderers differ only in how they frame a cell.

use super::format::{change, money, prob, rate, value};
use super::html::capital;
use super::{Kind, Report};
use crate::base::dates::Day;
use crate::base::text::thousands;

/// Formatted cells, with which columns hold text (left-aligned) rather than numbers.
pub struct TextTable {
    pub header: Vec<String>,
    pub text: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

fn table(header: &[(&str, bool)], rows: Vec<Vec<String>>) -> TextTable {
    TextTable {
        header: header.iter().map(|h| h.0.to_string()).collect(),
        text: header.iter().map(|h| h.1).collect(),
        rows,
    }
}

/// The trend, newest period first.
pub fn trend(r: &Report) -> TextTable {
    let first = format!("{} ending", capital(r.period));
    let rows = r
        .trend
        .iter()
        .rev()
        .map(|f| {
            vec![
                Day(f.end).to_string(),
                thousands(f.active_customers),
                thousands(f.new_customers),
                thousands(f.returning_customers),
                thousands(f.loyal_customers),
                money(f.revenue),
                value(Kind::Count, f.high_risk_customers.map(|v| v as f64)),
                value(Kind::Money, f.value_at_risk),
            ]
        })
        .collect();
    table(
        &[
            (&first, true),
            ("Active", false),
            ("New", false),
            ("Returning", false),
            ("Loyal", false),
            ("Revenue", false),
            ("High risk", false),
            ("Value at risk", false),
        ],
        rows,
    )
}

/// The customers by value at risk, most at risk first.
pub fn top(r: &Report) -> TextTable {
    let rows = r
        .top_at_risk
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                (i + 1).to_string(),
                c.customer_id.clone(),
                c.segment.clone(),
                Day(c.last_purchase).to_string(),
                c.purchases.to_string(),
                money(c.monetary),
                prob(c.p_alive),
                money(c.clv),
                money(c.value_at_risk),
            ]
        })
        .collect();
    table(
        &[
            ("#", false),
            ("Customer", true),
            ("Segment", true),
            ("Last purchase", false),
            ("Purchases", false),
            ("Spent", false),
            ("P(alive)", false),
            ("CLV", false),
            ("Value at risk", false),
        ],
        rows,
    )
}

/// Segment sizes now and at the end of the previous period.
pub fn segments(r: &Report) -> TextTable {
    let total: u64 = r.segments.iter().map(|g| g.customers).sum();
    let rows = r
        .segments
        .iter()
        .map(|g| {
            let (now, before) = (g.customers as f64, g.previous as f64);
            vec![
                g.segment.clone(),
                thousands(g.customers),
                thousands(g.previous),
                change(Kind::Count, Some(now - before), Some(before)),
                rate(if total > 0 { now / total as f64 } else { 0.0 }),
            ]
        })
        .collect();
    let previous = format!("Previous {}", r.period);
    table(
        &[
            ("Segment", true),
            ("Now", false),
            (&previous, false),
            ("Change", false),
            ("Share now", false),
        ],
        rows,
    )
}
