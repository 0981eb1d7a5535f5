//! `churn cohorts`: the retention cohort matrix of the customers, as a
//! table and as a heatmap.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::base::text::{day_string, thousands};
use crate::domain::cohorts::{self, Cohorts, Period, Retention};
use crate::io::output::{self, ColumnData, OutputTarget, Table};
use crate::pipeline::Source;
use crate::render::chart;

crate::named_enum! {
    /// How the matrix is laid out as a table.
    #[derive(Default)]
    pub enum Layout {
        #[default]
        Long = ("long", "One row per (cohort, period offset)"),
        Wide = ("wide", "One row per cohort, one column per offset"),
    }
}

crate::named_enum! {
    /// What the cells of the wide layout hold.
    #[derive(Default)]
    pub enum Values {
        Customers = ("customers", ""),
        #[default]
        Retention = ("retention", ""),
        Revenue = ("revenue", ""),
    }
}

#[derive(Clone, Debug)]
pub struct CohortOptions {
    pub period: Period,
    pub retention: Retention,
    pub layout: Layout,
    pub values: Values,
    /// Also draw the retention heatmap to this file.
    pub chart: Option<(PathBuf, chart::Format)>,
}

pub fn run(
    source: &Source,
    opts: &CohortOptions,
    target: &OutputTarget,
    progress: &Progress,
) -> Result<()> {
    let (parts, report) = source.load_each(progress, |tx| {
        Ok((cohorts::compute(&tx, opts.period, opts.retention), tx.as_of))
    })?;
    let as_of = parts.first().map_or(0, |p| p.1);
    let spinner = progress.spinner("computing cohorts");
    let result = cohorts::merge(parts.into_iter().map(|p| p.0).collect());
    spinner.finish_and_clear();
    progress.stage("cohorts");
    if result.cells.is_empty() {
        bail!(
            "no purchases (rows that are not returns) on or before {}: no cohorts to compute",
            day_string(as_of)
        );
    }
    let customers =
        result.cells.iter().filter(|c| c.period == 0).map(|c| c.cohort_size).sum::<u64>();
    progress.note(&format!(
        "{}; as of {}; {} cohorts",
        report.summary(customers as usize),
        day_string(as_of),
        result.cells.iter().filter(|c| c.period == 0).count()
    ));
    if result.rows_before_first_purchase > 0 {
        progress.warn(&format!(
            "{} rows (returns) are dated before their customer's first purchase and belong to no cohort",
            thousands(result.rows_before_first_purchase)
        ));
    }
    let table = match opts.layout {
        Layout::Long => long_table(&result),
        Layout::Wide => wide_table(&result, opts.values),
    };
    output::write_table(&table, target)?;
    if let Some((path, format)) = &opts.chart {
        let first = report.first_day.unwrap_or(as_of).min(as_of);
        let svg = chart::heatmap_svg(&result, first, as_of);
        let title = format!("Customer retention by {} cohort", opts.period.name());
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
