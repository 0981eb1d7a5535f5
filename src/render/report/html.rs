//! The report as one self-contained HTML page: inline CSS and SVG, no
//! scripts, no fonts or images to fetch, so it opens the same from a mail
//! attachment, a phone, a file share or a printer. The figures are in plain
//! tables first and charts second, so a mail client that drops SVG still
//! shows every number.

use std::fmt::Write;

use super::format::{change, span, value};
use super::tables::{self, TextTable};
use super::Report;
use crate::base::dates::Day;
use crate::base::named::Named;
use crate::base::text::thousands;
use crate::render::chart::{self, Trend};

/// What each figure means, for the Definitions section of both formats.
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("Period", "the 7 days (week) or the calendar month (month) ending at the as-of date; the previous period is the same report with the as-of date moved back one period."),
    ("Active customers", "customers with a purchase (an order that is not a return) in the period."),
    ("New customers", "active customers whose first purchase is in the period; returning customers bought before it."),
    ("Loyal customers", "customers in the RFM segments Champions and Loyal Customers at the end of the period (scores are quintiles over all customers to date)."),
    ("Churned (RFM)", "customers who moved into At Risk, Can't Lose Them or Lost during the period from another segment."),
    ("Churned (model)", "customers whose churn risk (1 − P(alive) under the purchase model) reached the high-risk threshold during the period."),
    ("Revenue", "net amount of the period's rows, returns included."),
    ("Repeat-purchase rate", "share of all customers to date with two or more purchases."),
    ("Value at risk", "Σ churn risk × the customer's CLV if still active, over the horizon, discounted: what the business loses if the at-risk customers are really gone."),
];

use crate::render::chart::escape;

/// "week" as "Week".
pub fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().collect::<String>() + c.as_str())
}

/// The sentence under the title: which period, compared with what, from what data.
pub fn summary_line(r: &Report) -> String {
    let cur = r.current();
    let mut s = format!(
        "{} ending {} ({} to {})",
        capital(r.period),
        Day(cur.end),
        Day(cur.start),
        Day(cur.end)
    );
    match r.previous() {
        Some(p) => s += &format!(", compared with the {} ending {}", r.period, Day(p.end)),
        None => s += &format!("; no earlier {} in the data to compare with", r.period),
    }
    s += &format!(
        ". {} rows read; {} customers to date. ",
        thousands(r.rows),
        thousands(cur.customers)
    );
    match (&r.model, &r.model_error) {
        (Some(m), _) => s += &format!(
            "Risk model: {} with Gamma-Gamma spend, fitted in {}s; horizon {}, {}% annual discount; high risk means churn risk ≥ {:.2}.",
            m.purchase.model.title(),
            m.purchase.unit.name(),
            span(m.horizon_days),
            m.discount_rate * 100.0,
            m.high_risk
        ),
        (None, err) => s += &format!(
            "No risk figures: {}.",
            err.as_deref().unwrap_or("the models could not be fitted")
        ),
    }
    s
}

/// Figures where a rise is bad news.
fn rise_is_bad(key: &str) -> bool {
    matches!(key, "churned_by_model" | "churned_by_rfm" | "high_risk_customers" | "value_at_risk")
}

const CSS: &str = "
body{margin:0;background:#f4f5f7;color:#1d2330;font:15px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:16px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
p.sub{color:#4a5160;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:5px 8px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600}
th:first-child,td:first-child{text-align:left;white-space:normal}
td.t,th.t{text-align:left}
table.trend td:first-child{white-space:nowrap}
table.migration th{white-space:normal;font-size:12px;vertical-align:bottom}
.good{color:#1a7f37}.bad{color:#c62828}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.charts svg,svg{max-width:100%;height:auto}
td.diag{background:#eef3fb;font-weight:600}
td.zero{color:#b0b5bd}
dl{font-size:14px}dt{font-weight:600;margin-top:6px}dd{margin:0 0 0 16px;color:#4a5160}
footer{margin-top:24px;font-size:12px;color:#6b7280}
@media (max-width:600px){body{font-size:14px}main{padding:10px}th,td{padding:4px 5px}h1{font-size:20px}}
@media print{body{background:#fff}main{max-width:none;padding:0}.scroll{overflow:visible}h2{break-after:avoid}tr,svg{break-inside:avoid}}
";

/// A table in a scrolling box; text columns after the first are left-aligned
/// (class `t`), and column `bold` is emphasised.
fn push_table(s: &mut String, class: &str, t: &TextTable, bold: Option<usize>) {
    let align = |k: usize| if k > 0 && t.text[k] { " class=\"t\"" } else { "" };
    let _ = write!(s, "<div class=\"scroll\"><table class=\"{class}\">\n<tr>");
    for (k, h) in t.header.iter().enumerate() {
        let _ = write!(s, "<th{}>{}</th>", align(k), escape(h));
    }
    let _ = writeln!(s, "</tr>");
    for row in &t.rows {
        s.push_str("<tr>");
        for (k, c) in row.iter().enumerate() {
            let (open, close) = if bold == Some(k) { ("<b>", "</b>") } else { ("", "") };
            let _ = write!(s, "<td{}>{open}{}{close}</td>", align(k), escape(c));
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</table></div>");
}

pub fn render(r: &Report) -> String {
    let p = r.period;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(&r.title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", escape(&r.title));
    let _ = writeln!(s, "<p class=\"sub\">{}</p>", escape(&summary_line(r)));

    // Headline figures.
    let _ = writeln!(s, "<h2>Headline</h2>\n<div class=\"scroll\"><table class=\"headline\">");
    let _ = writeln!(
        s,
        "<tr><th>Figure</th><th>This {p}</th><th>Previous {p}</th><th>Change</th></tr>"
    );
    for h in &r.headline {
        let class = match h.change {
            Some(c) if c != 0.0 => {
                if change(h.kind, h.change, h.previous).starts_with(['0', 'n']) {
                    ""
                } else if (c > 0.0) != rise_is_bad(h.key) {
                    " class=\"good\""
                } else {
                    " class=\"bad\""
                }
            }
            _ => "",
        };
        let _ = writeln!(
            s,
            "<tr id=\"{}\"><td>{}</td><td><b>{}</b></td><td>{}</td><td{class}>{}</td></tr>",
            h.key,
            escape(h.label),
            value(h.kind, h.value),
            value(h.kind, h.previous),
            escape(&change(h.kind, h.change, h.previous))
        );
    }
    let _ = writeln!(s, "</table></div>");

    // Trend charts.
    let _ = writeln!(s, "<h2>Trends: the last {} {p}s</h2>\n<div class=\"charts\">", r.trend.len());
    let labels: Vec<String> =
        r.trend.iter().map(|f| Day(f.end).to_string()[5..].to_string()).collect();
    let line = |get: &dyn Fn(&super::PeriodFigures) -> Option<f64>| -> Vec<Option<f64>> {
        r.trend.iter().map(get).collect()
    };
    let charts = [
        (
            "Active customers",
            vec![Trend {
                label: "active",
                color: "#2166ac",
                values: line(&|f| Some(f.active_customers as f64)),
            }],
        ),
        (
            "Loyal customers (Champions + Loyal)",
            vec![Trend {
                label: "loyal",
                color: "#1a7f37",
                values: line(&|f| Some(f.loyal_customers as f64)),
            }],
        ),
        (
            "New vs returning customers",
            vec![
                Trend {
                    label: "new",
                    color: "#f28e2b",
                    values: line(&|f| Some(f.new_customers as f64)),
                },
                Trend {
                    label: "returning",
                    color: "#2166ac",
                    values: line(&|f| Some(f.returning_customers as f64)),
                },
            ],
        ),
        (
            "Value at risk",
            vec![Trend {
                label: "value at risk",
                color: "#c62828",
                values: line(&|f| f.value_at_risk),
            }],
        ),
    ];
    for (title, series) in &charts {
        s += &chart::trend_svg(title, &labels, series);
    }
    let _ = writeln!(s, "</div>");

    push_table(&mut s, "trend", &tables::trend(r), None);

    // The retention campaign list.
    if let Some(err) = &r.model_error {
        let _ = writeln!(
            s,
            "<h2>Customers by value at risk</h2>\n<p class=\"sub\">Not available: {}.</p>",
            escape(err)
        );
    } else {
        let _ = writeln!(s, "<h2>Top {} customers by value at risk</h2>", r.top_at_risk.len());
        push_table(&mut s, "top", &tables::top(r), Some(8));
    }

    // Segments and migration.
    let _ = writeln!(s, "<h2>Segments</h2>");
    push_table(&mut s, "segments", &tables::segments(r), None);
    let _ = writeln!(
        s,
        "<h2>Segment migration since the previous {p}</h2>\n<p class=\"sub\">Rows: segment at the end of the previous {p} (New: no purchase yet). Columns: segment now.</p>\n<div class=\"scroll\"><table class=\"migration\">"
    );
    let names: Vec<&str> = r.segments.iter().map(|g| g.segment.as_str()).collect();
    let _ = write!(s, "<tr><th>from \\ to</th>");
    for n in &names {
        let _ = write!(s, "<th>{}</th>", escape(n));
    }
    let _ = writeln!(s, "</tr>");
    let mut froms: Vec<&str> = names.clone();
    froms.push("New");
    for from in froms {
        let _ = write!(s, "<tr><td>{}</td>", escape(from));
        for to in &names {
            let n = r
                .migration
                .iter()
                .find(|m| m.from == from && m.to == *to)
                .map_or(0, |m| m.customers);
            let class = if from == *to {
                " class=\"diag\""
            } else if n == 0 {
                " class=\"zero\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", thousands(n));
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</table></div>");

    // Cohorts.
    let _ = writeln!(s, "<h2>Retention by {p} of first purchase</h2>\n<div class=\"scroll\">");
    if r.cohort_matrix.cells.is_empty() {
        let _ = writeln!(s, "<p>No cohorts.</p>");
    } else {
        let first = r.cohort_matrix.cells[0].cohort;
        s += &chart::heatmap_svg(&r.cohort_matrix, first, r.as_of);
    }
    let _ = writeln!(s, "</div>");

    let _ = writeln!(s, "<h2>Definitions</h2>\n<dl>");
    for (term, def) in DEFINITIONS {
        let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(def));
    }
    let _ = writeln!(s, "</dl>");
    let _ = writeln!(
        s,
        "<footer>Generated by churn {} from data up to {}. The same input and options give the same report.</footer>\n</main>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        Day(r.as_of)
    );
    s
}
