//! The report as Markdown, for chat and wikis: the same sections as the HTML
//! page, with tables in place of charts.

use std::fmt::Write;

use super::format::{self, change, money, prob, value};
use super::html::capital;
use super::{Kind, Report};
use crate::dates::Day;
use crate::input::thousands;

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let p = r.period;
    let _ = writeln!(s, "# {}\n", cell(&r.title));
    let _ = writeln!(s, "{}\n", super::html::summary_line(r));

    let _ = writeln!(s, "## Headline\n");
    let _ = writeln!(s, "| Figure | This {p} | Previous {p} | Change |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for h in &r.headline {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell(h.label),
            value(h.kind, h.value),
            value(h.kind, h.previous),
            change(h.kind, h.change, h.previous)
        );
    }

    let _ = writeln!(s, "\n## Trend: the last {} {p}s\n", r.trend.len());
    let _ = writeln!(
        s,
        "| {} ending | Active | New | Returning | Loyal | Revenue | High risk | Value at risk |",
        capital(p)
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in &r.trend {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            Day(f.end),
            thousands(f.active_customers),
            thousands(f.new_customers),
            thousands(f.returning_customers),
            thousands(f.loyal_customers),
            money(f.revenue),
            value(Kind::Count, f.high_risk_customers.map(|v| v as f64)),
            value(Kind::Money, f.value_at_risk)
        );
    }

    if let Some(err) = &r.model_error {
        let _ = writeln!(s, "\n## Customers by value at risk\n\nNot available: {err}.");
    } else {
        let _ = writeln!(s, "\n## Top {} customers by value at risk\n", r.top_at_risk.len());
        let _ = writeln!(
            s,
            "| # | Customer | Segment | Last purchase | Purchases | Spent | P(alive) | CLV | Value at risk |"
        );
        let _ = writeln!(s, "|---:|---|---|---|---:|---:|---:|---:|---:|");
        for (i, c) in r.top_at_risk.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                cell(&c.customer_id),
                cell(&c.segment),
                Day(c.last_purchase),
                c.purchases,
                money(c.monetary),
                prob(c.p_alive),
                money(c.clv),
                money(c.value_at_risk)
            );
        }
    }

    let _ = writeln!(s, "\n## Segments\n");
    let _ = writeln!(s, "| Segment | Now | Previous {p} | Change |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for g in &r.segments {
        let (now, before) = (g.customers as f64, g.previous as f64);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell(&g.segment),
            thousands(g.customers),
            thousands(g.previous),
            change(Kind::Count, Some(now - before), Some(before))
        );
    }

    let _ = writeln!(s, "\n## Segment migration since the previous {p}\n");
    let mut moves: Vec<_> = r.migration.iter().filter(|m| m.from != m.to).collect();
    moves.sort_by_key(|m| std::cmp::Reverse(m.customers));
    let stayed: u64 = r.migration.iter().filter(|m| m.from == m.to).map(|m| m.customers).sum();
    let _ = writeln!(s, "{} customers stayed in their segment. Moves:\n", thousands(stayed));
    let _ = writeln!(s, "| From | To | Customers |");
    let _ = writeln!(s, "|---|---|---:|");
    for m in moves {
        let _ = writeln!(s, "| {} | {} | {} |", cell(&m.from), cell(&m.to), thousands(m.customers));
    }

    let _ = writeln!(s, "\n## Retention by {p} of first purchase\n");
    let width = r.cohorts.iter().map(|c| c.period + 1).max().unwrap_or(0);
    let _ = write!(s, "| Cohort | Customers |");
    for k in 0..width {
        let _ = write!(s, " {k} |");
    }
    let _ = write!(s, "\n|---|---:|");
    for _ in 0..width {
        let _ = write!(s, "---:|");
    }
    let mut last = None;
    for c in &r.cohorts {
        if last != Some(c.cohort) {
            let _ = write!(s, "\n| {} | {} |", Day(c.cohort), thousands(c.cohort_size));
            last = Some(c.cohort);
        }
        let _ = write!(s, " {}{} |", format::rate(c.retention), if c.partial { "*" } else { "" });
    }
    let _ = writeln!(
        s,
        "\n\nRetention: share of the cohort buying in each {p} since its first; * the {p} is not over.\n"
    );
    let _ = writeln!(s, "## Definitions\n");
    for (term, def) in super::html::DEFINITIONS {
        let _ = writeln!(s, "- **{term}**: {def}");
    }
    let _ = writeln!(
        s,
        "\n_Generated by churn {} from data up to {}._",
        env!("CARGO_PKG_VERSION"),
        Day(r.as_of)
    );
    s
}
