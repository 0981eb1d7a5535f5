//! `churn report`: the periodic churn report a cron job writes unattended.

use std::path::PathBuf;

use anyhow::Result;

use crate::app::cli::{purchase_model, EngineArgs, InputArgs};
use crate::app::config::ReportConfig;
use crate::app::values::{self, setting};
use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::domain::models::{ModelName, Unit};
use crate::pipeline::models::ModelChoice;
use crate::pipeline::report::{self, ReportJob, ReportOptions};
use crate::render::report::{ReportFormat, ReportPeriod};

/// The churn report for the period ending at the as-of date: headline
/// figures against the previous period, trends, the customers most worth
/// saving, segment moves and retention cohorts.
///
/// Every comparison is the same analysis run with the as-of date moved back
/// one period (models refitted), so the report needs no state between runs and
/// a rerun gives identical bytes. Settings can come from a churn.toml file
/// (--config, or ./churn.toml): [input] for the column mapping, [report] for
/// these options under the same names; flags override the file.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn report sales.csv -o report.html
  churn report exports/*.csv.gz --period month --top 50 -o monthly.md
  churn report sales.parquet --json | jq .headline
  churn report --config /etc/churn.toml /data/export.csv --min-rows 1000 -o /srv/reports/churn.html

Crontab, every Monday at 06:00 (the file is replaced only when the report is complete):
  0 6 * * 1  cd /srv/churn && churn report exports/latest.csv -o reports/churn.html --quiet")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    /// Write the report to FILE: .html (one self-contained page), .md (Markdown)
    /// or .json (the figures); default: Markdown on stdout. The file is replaced
    /// only when the whole report is written.
    #[arg(short, long, value_name = "FILE", help_heading = "Report")]
    pub output: Option<PathBuf>,

    /// Report format, overriding the extension.
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Report")]
    pub format: Option<ReportFormat>,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format", help_heading = "Report")]
    pub json: bool,

    /// Title at the top of the report [default: "Churn report: <period> ending <date>"].
    #[arg(long, value_name = "TEXT", help_heading = "Report")]
    pub title: Option<String>,

    /// Report period: the 7 days or the calendar month ending at the as-of date [default: week].
    #[arg(long, value_enum, help_heading = "Report")]
    pub period: Option<ReportPeriod>,

    /// Periods shown in the trends, at least 3 [default: 12].
    #[arg(long, value_parser = values::periods_flag, value_name = "N", help_heading = "Report")]
    pub periods: Option<usize>,

    /// Customers in the value-at-risk list [default: 25].
    #[arg(long, value_name = "N", help_heading = "Report")]
    pub top: Option<usize>,

    /// Exit 1 without writing when fewer than N rows were read: an export
    /// that is suspiciously small.
    #[arg(long, value_name = "N", help_heading = "Report")]
    pub min_rows: Option<u64>,

    /// Exit 1 without writing when the report period has no transactions.
    #[arg(long, help_heading = "Report")]
    pub fail_on_empty: bool,

    /// Purchase model for the risk figures [default: bgnbd].
    #[arg(long, value_parser = purchase_model(ModelChoice::Auto.help()), help_heading = "Model")]
    pub model: Option<ModelChoice>,

    /// Time unit for fitting [default: week].
    #[arg(long, value_enum, help_heading = "Model")]
    pub unit: Option<Unit>,

    /// Horizon of CLV and value at risk: 90d, 12w, 3m, 1y [default: 90d].
    #[arg(long, value_parser = values::horizon, value_name = "SPAN", help_heading = "Model")]
    pub horizon: Option<f64>,

    /// Annual discount rate for CLV [default: 0.10].
    #[arg(long, value_parser = values::number(values::discount_rate), allow_negative_numbers = true, value_name = "RATE", help_heading = "Model")]
    pub discount_rate: Option<f64>,

    /// churn_risk at or above P counts as high risk [default: 0.7].
    #[arg(long, value_parser = values::number(values::probability), allow_negative_numbers = true, value_name = "P", help_heading = "Model")]
    pub high_risk: Option<f64>,

    /// L2 penalty when fitting [default: 0].
    #[arg(long, value_parser = values::number(values::penalty), allow_negative_numbers = true, value_name = "LAMBDA", help_heading = "Model")]
    pub penalty: Option<f64>,
}

impl Args {
    /// Fills the options not given as flags from the config file's [report].
    pub fn apply_config(&mut self, c: &ReportConfig) -> Result<()> {
        use crate::app::config::fill;
        fill(&mut self.output, &c.output);
        fill(&mut self.title, &c.title);
        fill(&mut self.period, &c.period);
        let periods = c.periods.map(values::periods).transpose();
        fill(&mut self.periods, &periods.map_err(|e| anyhow::anyhow!("[report] periods = {e}"))?);
        fill(&mut self.top, &c.top);
        if self.model.is_none() {
            self.model = c.model.map(|m| m.purchase("[report] model")).transpose()?;
        }
        fill(&mut self.unit, &c.unit);
        fill(
            &mut self.discount_rate,
            &setting("[report] discount_rate", c.discount_rate, values::discount_rate)?,
        );
        fill(
            &mut self.high_risk,
            &setting("[report] high_risk", c.high_risk, values::probability)?,
        );
        fill(&mut self.penalty, &setting("[report] penalty", c.penalty, values::penalty)?);
        fill(&mut self.min_rows, &c.min_rows);
        self.fail_on_empty |= c.fail_on_empty.unwrap_or(false);
        if self.horizon.is_none() {
            if let Some(h) = &c.horizon {
                self.horizon =
                    Some(values::horizon(h).map_err(|e| anyhow::anyhow!("[report] horizon: {e}"))?);
            }
        }
        Ok(())
    }

    fn resolved_format(&self) -> Result<ReportFormat> {
        if self.json {
            return Ok(ReportFormat::Json);
        }
        if let Some(f) = self.format {
            return Ok(f);
        }
        let Some(path) = self.output.as_deref().filter(|p| p.as_os_str() != "-") else {
            return Ok(ReportFormat::Markdown);
        };
        ReportFormat::of(path).ok_or_else(|| {
            UsageError(format!(
                "cannot tell the report format of {} from its extension; use .html, .md, .json or --format",
                path.display()
            ))
            .into()
        })
    }

    fn options(&self) -> ReportOptions {
        ReportOptions {
            period: self.period.unwrap_or_default(),
            periods: self.periods.unwrap_or(12),
            top: self.top.unwrap_or(25),
            models: self.model.unwrap_or(ModelChoice::One(ModelName::Bgnbd)).candidates(),
            unit: self.unit.unwrap_or_default(),
            horizon_days: self.horizon.unwrap_or(90.0),
            discount_rate: self.discount_rate.unwrap_or(0.10),
            high_risk: self.high_risk.unwrap_or(0.7),
            penalty: self.penalty.unwrap_or(0.0),
        }
    }
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let job = ReportJob {
        format: args.resolved_format()?,
        options: args.options(),
        output: args.output.clone().filter(|p| p.as_os_str() != "-"),
        title: args.title.clone(),
        min_rows: args.min_rows,
        fail_on_empty: args.fail_on_empty,
    };
    crate::app::cli::check_outputs(&args.input, &[args.output.as_deref()])?;
    report::run(&args.input.source(&EngineArgs::default(), &[]), &job, progress)
}
