//! `churn cohorts`: the retention cohort matrix, as data and as a chart.

use std::path::PathBuf;

use anyhow::Result;

use crate::app::cli::{EngineArgs, InputArgs, OutputArgs};
use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::domain::cohorts::{Period, Retention};
use crate::pipeline::cohorts::{self, CohortOptions, Layout, Values};
use crate::render::chart;

/// Retention cohorts: customers grouped by the period of their first purchase,
/// and how many come back in each later period.
///
/// Long layout (default): one row per cohort and period offset, sorted, with
/// the columns cohort, period, cohort_size, customers, retention, orders,
/// revenue, partial. A cohort is named by the first day of its period; period
/// is the number of whole periods since it. Only periods that have begun by
/// --as-of are listed.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn cohorts sales.csv                              monthly, long layout, CSV on stdout
  churn cohorts sales.csv --period week --retention rolling -o cohorts.parquet
  churn cohorts sales.csv --layout wide --values customers
  churn cohorts sales.csv --chart retention.svg -o cohorts.csv")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Cohort period: day, week (ISO, from Monday), month or quarter.
    #[arg(long, value_enum, default_value_t = Period::Month, help_heading = "Cohorts")]
    pub period: Period,

    /// classic: retained at k if they bought in period k; rolling: in period k or later.
    #[arg(long, value_enum, default_value_t = Retention::Classic, help_heading = "Cohorts")]
    pub retention: Retention,

    /// long: a row per cell; wide: a row per cohort, a column per period offset.
    #[arg(long, value_enum, default_value = "long", help_heading = "Cohorts")]
    pub layout: Layout,

    /// What the wide layout's cells hold.
    #[arg(long, value_enum, default_value = "retention", help_heading = "Cohorts")]
    pub values: Values,

    /// Also draw the retention heatmap to FILE (.svg, .png or .html).
    #[arg(long, value_name = "FILE", help_heading = "Cohorts")]
    pub chart: Option<PathBuf>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let target = args.output.checked_target(&args.input)?;
    let chart = match &args.chart {
        None => None,
        Some(p) => Some((p.clone(), chart::Format::of(p, true).map_err(UsageError)?)),
    };
    crate::app::cli::check_outputs(&args.input, &[args.chart.as_deref()])?;
    let opts = CohortOptions {
        period: args.period,
        retention: args.retention,
        layout: args.layout,
        values: args.values,
        chart,
    };
    cohorts::run(&args.input.source(&args.engine, &[]), &opts, &target, progress)
}
