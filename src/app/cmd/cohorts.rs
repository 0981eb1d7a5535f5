//! `churn cohorts`: the retention cohort matrix, as data and as a chart.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::app::cli::{EngineArgs, InputArgs, OutputArgs};
use crate::base::named::Named;
use crate::domain::cohorts::{self, Cohorts, Period, Retention};
use crate::render::chart;

use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::io::output::{self, ColumnData, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// One row per (cohort, period offset).
    #[default]
    Long,
    /// One row per cohort, one column per offset.
    Wide,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Values {
    Customers,
    #[default]
    Retention,
    Revenue,
}

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
    #[arg(long, value_enum, default_value_t = Layout::Long, help_heading = "Cohorts")]
    pub layout: Layout,

    /// What the wide layout's cells hold.
    #[arg(long, value_enum, default_value_t = Values::Retention, help_heading = "Cohorts")]
    pub values: Values,

    /// Also draw the retention heatmap to FILE (.svg, .png or .html).
    #[arg(long, value_name = "FILE", help_heading = "Cohorts")]
    pub chart: Option<PathBuf>,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let target = args.output.checked_target(&args.input)?;
    let chart_format = match &args.chart {
        None => None,
        Some(p) => Some(chart::Format::of(p, true).map_err(UsageError)?),
    };
    crate::app::cli::check_outputs(&args.input, &[args.chart.as_deref()])?;
    let (parts, report) = args.input.source(&args.engine, &[]).load_each(progress, |tx| {
        Ok((cohorts::compute(&tx, args.period, args.retention), tx.as_of))
    })?;
    let as_of = parts.first().map_or(0, |p| p.1);
    let spinner = progress.spinner("computing cohorts");
    let result = cohorts::merge(parts.into_iter().map(|p| p.0).collect());
    spinner.finish_and_clear();
    progress.stage("cohorts");
    if result.cells.is_empty() {
        bail!(
            "no purchases (rows that are not returns) on or before {}: no cohorts to compute",
            crate::base::text::day_string(as_of)
        );
    }
    let customers =
        result.cells.iter().filter(|c| c.period == 0).map(|c| c.cohort_size).sum::<u64>();
    progress.note(&format!(
        "{}; as of {}; {} cohorts",
        report.summary(customers as usize),
        crate::base::text::day_string(as_of),
        result.cells.iter().filter(|c| c.period == 0).count()
    ));
    if result.rows_before_first_purchase > 0 {
        progress.warn(&format!(
            "{} rows (returns) are dated before their customer's first purchase and belong to no cohort",
            crate::base::text::thousands(result.rows_before_first_purchase)
        ));
    }
    let table = match args.layout {
        Layout::Long => long_table(&result),
        Layout::Wide => wide_table(&result, args.values),
    };
    output::write_table(&table, &target)?;
    if let (Some(path), Some(format)) = (&args.chart, chart_format) {
        let first = report.first_day.unwrap_or(as_of).min(as_of);
        let svg = chart::heatmap_svg(&result, first, as_of);
        let title = format!("Customer retention by {} cohort", args.period.name());
        let bytes = format.render(svg, &title).map_err(anyhow::Error::msg)?;
        output::atomic_write(path, |w| Ok(w.write_all(&bytes)?))?;
        progress.note(&format!("chart written to {}", path.display()));
    }
    progress.stage("write");
    Ok(())
}

/// One row per cell.
pub fn long_table(c: &Cohorts) -> Table {
    let cells = &c.cells;
    let mut t = Table::new();
    t.push("cohort", ColumnData::Date(cells.iter().map(|c| c.cohort).collect()));
    t.push("period", ColumnData::I32(cells.iter().map(|c| c.period as i32).collect()));
    t.push("cohort_size", ColumnData::Int(cells.iter().map(|c| c.cohort_size as i64).collect()));
    t.push("customers", ColumnData::Int(cells.iter().map(|c| c.customers as i64).collect()));
    t.push("retention", ColumnData::Float(cells.iter().map(|c| c.retention).collect()));
    t.push("orders", ColumnData::Int(cells.iter().map(|c| c.orders as i64).collect()));
    t.push("revenue", ColumnData::Float(cells.iter().map(|c| c.revenue).collect()));
    t.push("partial", ColumnData::Bool(cells.iter().map(|c| c.partial).collect()));
    t
}

/// One row per cohort; cells of periods that have not begun are empty.
pub fn wide_table(c: &Cohorts, values: Values) -> Table {
    let mut cohorts: Vec<(i32, u64)> = Vec::new();
    let mut width = 0usize;
    for cell in &c.cells {
        if cohorts.last().map(|x| x.0) != Some(cell.cohort) {
            cohorts.push((cell.cohort, cell.cohort_size));
        }
        width = width.max(cell.period as usize + 1);
    }
    let mut grid = vec![vec![f64::NAN; cohorts.len()]; width];
    let mut row = 0;
    for (i, cell) in c.cells.iter().enumerate() {
        if i > 0 && cell.period == 0 {
            row += 1;
        }
        grid[cell.period as usize][row] = match values {
            Values::Customers => cell.customers as f64,
            Values::Retention => cell.retention,
            Values::Revenue => cell.revenue,
        };
    }
    let mut t = Table::new();
    t.push("cohort", ColumnData::Date(cohorts.iter().map(|c| c.0).collect()));
    t.push("cohort_size", ColumnData::Int(cohorts.iter().map(|c| c.1 as i64).collect()));
    for (k, column) in grid.into_iter().enumerate() {
        t.push(&k.to_string(), ColumnData::Float(column));
    }
    t
}
