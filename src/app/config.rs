//! `churn.toml`: the settings a scheduled job would otherwise repeat on every
//! command line (the export's column names, the report's defaults), so that a
//! crontab line stays short and the mapping lives in one reviewed file.
//!
//! Flags always win over the file. Unknown keys are errors, not silently
//! ignored: a misspelt `custmer = ...` would otherwise fall back to column
//! detection and quietly analyse the wrong column.

use std::path::{Path, PathBuf};

use crate::base::settings::from_toml;
use anyhow::{Context, Result};
use serde::Deserialize;

/// The file read when `--config` is not given, from the working directory.
pub const DEFAULT_FILE: &str = "churn.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub report: ReportConfig,
}

/// Defaults for the input options of every command (same names as the flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InputConfig {
    pub customer: Option<String>,
    pub date: Option<String>,
    pub amount: Option<String>,
    pub quantity: Option<String>,
    pub price: Option<String>,
    pub order: Option<String>,
    pub date_format: Option<String>,
    pub delimiter: Option<String>,
    pub input_format: Option<crate::io::input::InputFormat>,
    pub returns: Option<crate::io::input::ReturnsPolicy>,
    pub skip_invalid: Option<bool>,
}

/// Defaults for `churn report` (same names as its flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ReportConfig {
    pub output: Option<PathBuf>,
    pub title: Option<String>,
    pub period: Option<crate::render::report::ReportPeriod>,
    pub periods: Option<usize>,
    pub top: Option<usize>,
    pub model: Option<crate::pipeline::models::ModelChoice>,
    pub unit: Option<crate::domain::models::Unit>,
    pub horizon: Option<String>,
    pub discount_rate: Option<f64>,
    pub high_risk: Option<f64>,
    pub penalty: Option<f64>,
    pub min_rows: Option<u64>,
    pub fail_on_empty: Option<bool>,
}

/// Sets an option that was not given as a flag to the config file's value.
pub fn fill<T: Clone>(flag: &mut Option<T>, value: &Option<T>) {
    if flag.is_none() {
        flag.clone_from(value);
    }
}

/// The config to use: `explicit` (which must exist), else ./churn.toml if
/// there is one, else none.
pub fn discover(explicit: Option<&Path>) -> Result<Option<(PathBuf, Config)>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_FILE);
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let config = parse(&text).with_context(|| format!("in config file {}", path.display()))?;
    Ok(Some((path, config)))
}

pub fn parse(text: &str) -> Result<Config> {
    from_toml(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_and_rejects_unknown_keys() {
        let c = parse(
            "[input]\ncustomer = \"CustomerID\"\nreturns = \"drop\"\n[report]\nperiod = \"month\"\ntop = 10\nmodel = \"auto\"\n",
        )
        .unwrap();
        assert_eq!(c.input.customer.as_deref(), Some("CustomerID"));
        assert!(matches!(c.input.returns, Some(crate::io::input::ReturnsPolicy::Drop)));
        assert_eq!(c.report.top, Some(10));
        assert_eq!(c.report.period, Some(crate::render::report::ReportPeriod::Month));
        let e = parse("[input]\ncustomer = \"a\"\ncustmer = \"b\"\n").unwrap_err().to_string();
        assert!(e.starts_with("line 3:") && e.contains("custmer"), "{e}");
        let e = parse("[report]\nperiod = \"year\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("year"), "{e}");
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(include_str!("../../examples/churn.toml")).unwrap();
        assert_eq!(c.input.order.as_deref(), Some("order_id"));
        assert_eq!(c.report.min_rows, Some(1000));
        assert_eq!(c.report.horizon.as_deref(), Some("90d"));
    }
}
