//! Every numeric flag and settings value is checked here, as it is parsed:
//! a flag and the same key of churn.toml share one rule and one message,
//! and no command can forget a check another command makes.

use crate::domain::risk::Bands;

/// A rule for a number: the number, or what is wrong with it.
pub type Rule = fn(f64) -> Result<f64, String>;

/// An L2 penalty: 0 (plain maximum likelihood) or more.
pub fn penalty(v: f64) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("the penalty must be 0 or more".into())
    }
}

/// An annual discount rate above -100%.
pub fn discount_rate(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > -1.0 {
        Ok(v)
    } else {
        Err("the discount rate must be above -1 (0.10 is 10% a year)".into())
    }
}

/// A probability, such as a churn_risk threshold.
pub fn probability(v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

/// A flag's parser for a number that follows `rule`.
pub fn number(rule: Rule) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
        rule(v).map_err(|e| format!("{v}: {e}"))
    }
}

/// A settings value that follows `rule`; the error names the key.
pub fn setting(key: &str, v: Option<f64>, rule: Rule) -> anyhow::Result<Option<f64>> {
    v.map(|v| rule(v).map_err(|e| anyhow::anyhow!("{key} = {v}: {e}"))).transpose()
}

/// The trend periods of a report: this one, the previous, and the one
/// before it, which the previous period's churn counts need.
pub fn periods(n: usize) -> Result<usize, String> {
    if n >= 3 {
        Ok(n)
    } else {
        Err(format!("{n}: the report needs at least 3 periods"))
    }
}

/// A flag's parser for [`periods`].
pub fn periods_flag(s: &str) -> Result<usize, String> {
    s.trim().parse::<usize>().map_err(|_| format!("'{s}' is not a whole number")).and_then(periods)
}

/// "90d", "12w", "3m", "1y" as days.
pub fn horizon(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not a span like 90d, 12w, 3m or 1y"))?;
    let days = match unit {
        "d" => 1.0,
        "w" => 7.0,
        "m" => 365.25 / 12.0,
        "y" => 365.25,
        _ => return Err(format!("'{s}': use a d, w, m or y suffix, e.g. 90d")),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("'{s}': the horizon must be positive"));
    }
    Ok(n * days)
}

/// "HIGH,MEDIUM" churn_risk thresholds.
pub fn bands(s: &str) -> Result<Bands, String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{s}' is not two numbers like 0.7,0.4"))?;
    match parts[..] {
        [high, medium] => Bands::new(high, medium).map_err(|e| format!("'{s}': {e}")),
        _ => Err(format!("'{s}': give HIGH,MEDIUM with 0 <= MEDIUM <= HIGH <= 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_what_no_command_can_use() {
        let penalty = number(penalty);
        assert_eq!(penalty("0.001"), Ok(0.001));
        assert_eq!(penalty("-1"), Err("-1: the penalty must be 0 or more".into()));
        assert!(penalty("NaN").is_err());
        assert!(penalty("inf").is_err());
        assert!(penalty("x").unwrap_err().contains("not a number"));
        assert!(number(discount_rate)("-1").is_err());
        assert_eq!(number(discount_rate)("-0.5"), Ok(-0.5));
        assert!(number(probability)("1.01").is_err());
        assert!(number(probability)("NaN").is_err());
        assert_eq!(horizon("12w"), Ok(84.0));
        assert_eq!(horizon("1y"), Ok(365.25));
        assert!(horizon("0d").is_err());
        assert!(horizon("12").is_err());
        assert!(horizon("infd").is_err());
        assert!(bands("0.4,0.7").is_err());
        assert!(bands("0.7").is_err());
        assert_eq!(periods(2), Err("2: the report needs at least 3 periods".into()));
        let e = setting("[report] penalty", Some(-2.0), super::penalty).unwrap_err();
        assert_eq!(e.to_string(), "[report] penalty = -2: the penalty must be 0 or more");
    }
}
