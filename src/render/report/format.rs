//! Numbers as people read them in a report: thousands separators, money with
//! cents, rates in percent, and changes with their sign.

use super::Kind;
use crate::base::text::thousands;

/// 1234.5 as "1,234.50"; negative values keep their sign.
pub fn money(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let cents = (v.abs() * 100.0).round() as u64;
    let sign = if v < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", thousands(cents / 100), cents % 100)
}

/// 0.2345 as "23.5%".
pub fn rate(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A probability as "0.93".
pub fn prob(v: f64) -> String {
    format!("{v:.2}")
}

pub fn value(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => "n/a".into(),
        (Kind::Count, Some(v)) => thousands(v.round() as u64),
        (Kind::Money, Some(v)) => money(v),
        (Kind::Rate, Some(v)) => rate(v),
    }
}

/// "+12 (+3.4%)", "-1,234.00 (-2.0%)", "+1.2 pp", "0".
pub fn change(kind: Kind, change: Option<f64>, previous: Option<f64>) -> String {
    let (Some(c), Some(p)) = (change, previous) else {
        return "n/a".into();
    };
    // A change that rounds to nothing at the shown precision has no sign.
    let shown = match kind {
        Kind::Count => c.round(),
        Kind::Money => (c * 100.0).round(),
        Kind::Rate => (c * 1000.0).round(),
    };
    let sign = match shown.partial_cmp(&0.0) {
        Some(std::cmp::Ordering::Greater) => "+",
        Some(std::cmp::Ordering::Less) => "-",
        _ => "",
    };
    let abs = match kind {
        Kind::Count => thousands(c.abs().round() as u64),
        Kind::Money => money(c.abs()),
        Kind::Rate => return format!("{sign}{:.1} pp", c.abs() * 100.0),
    };
    if shown == 0.0 {
        "0".into()
    } else if p != 0.0 {
        format!("{sign}{abs} ({sign}{:.1}%)", (c / p).abs() * 100.0)
    } else {
        format!("{sign}{abs}")
    }
}

/// A horizon in days as the user would have written it: "90 days", "12 weeks".
pub fn span(days: f64) -> String {
    if days % 7.0 == 0.0 && days >= 14.0 {
        format!("{} weeks", days / 7.0)
    } else if (days / (365.25 / 12.0)).fract().abs() < 1e-9 {
        let m = (days / (365.25 / 12.0)).round();
        format!("{m} month{}", if m == 1.0 { "" } else { "s" })
    } else {
        format!("{} day{}", days, if days == 1.0 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(-0.004), "0.00");
        assert_eq!(money(-12.345), "-12.35");
        assert_eq!(rate(0.2346), "23.5%");
        assert_eq!(change(Kind::Count, Some(12.0), Some(350.0)), "+12 (+3.4%)");
        assert_eq!(change(Kind::Count, Some(-5.0), Some(0.0)), "-5");
        assert_eq!(change(Kind::Count, Some(0.0), Some(4.0)), "0");
        assert_eq!(change(Kind::Money, Some(-100.0), Some(1000.0)), "-100.00 (-10.0%)");
        assert_eq!(change(Kind::Rate, Some(0.012), Some(0.3)), "+1.2 pp");
        assert_eq!(change(Kind::Rate, Some(-0.0004), Some(0.3)), "0.0 pp");
        assert_eq!(change(Kind::Money, Some(0.001), Some(5.0)), "0");
        assert_eq!(change(Kind::Count, None, Some(3.0)), "n/a");
        assert_eq!(span(90.0), "90 days");
        assert_eq!(span(84.0), "12 weeks");
        assert_eq!(span(3.0 * 365.25 / 12.0), "3 months");
    }
}
