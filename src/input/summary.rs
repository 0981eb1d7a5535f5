//! A per-customer summary computed elsewhere (`churn sql summary` run in a
//! warehouse or Spark), read in place of the transactions.
//!
//! The summary holds exactly what RFM and the models need, so scoring it
//! gives the same list as scoring the transactions it came from. Its rows are
//! checked for the relations the definitions imply (first ≤ last ≤ as-of,
//! repeat days within the span), because a summary exported from the wrong
//! query would otherwise score without complaint.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{parse_number, trim, CustomerIds};
use crate::dates::{DateLayout, Day};
use crate::models::Summary;
use crate::rfm::Aggregates;
use crate::sql::SUMMARY_COLUMNS;

/// Everything the transactions would have given the analyses.
pub struct CustomerSummary {
    pub ids: CustomerIds,
    pub aggregates: Aggregates,
    pub summary: Summary,
    pub as_of: i32,
}

impl CustomerSummary {
    /// The stderr note: how many customers were read from where.
    pub fn note(&self, path: &Path) -> String {
        format!(
            "read {} customers from {}",
            super::thousands(self.ids.len() as u64),
            path.display()
        )
    }
}

/// Reads a summary from CSV or Parquet (by extension).
pub fn read_summary(path: &Path) -> Result<CustomerSummary> {
    let name = path.display().to_string();
    let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let mut builder = SummaryBuilder::default();
    if parquet {
        read_parquet(path, &name, &mut builder)?;
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .with_context(|| format!("cannot open {name}"))?;
        let mut rec = csv::ByteRecord::new();
        let mut index = None;
        while rdr.read_byte_record(&mut rec).with_context(|| format!("reading {name}"))? {
            let line = rec.position().map_or(0, |p| p.line());
            let fields: Vec<&[u8]> = rec.iter().map(trim).collect();
            match &index {
                None => index = Some(columns(&fields, &name)?),
                Some(ix) => {
                    let get = |k: usize| fields.get(ix[k]).copied().unwrap_or(b"");
                    builder.push(std::array::from_fn(get), &name, line)?;
                }
            }
        }
    }
    builder.finish(&name)
}

/// The position of each summary column in a header.
fn columns(header: &[&[u8]], name: &str) -> Result<[usize; 8]> {
    let mut ix = [0; 8];
    for (k, want) in SUMMARY_COLUMNS.iter().enumerate() {
        ix[k] = header.iter().position(|h| h.eq_ignore_ascii_case(want.as_bytes())).with_context(
            || {
                format!(
                    "{name} has no column '{want}': a summary has the columns {} (made by `churn sql summary`)",
                    SUMMARY_COLUMNS.join(", ")
                )
            },
        )?;
    }
    Ok(ix)
}

fn read_parquet(path: &Path, name: &str, builder: &mut SummaryBuilder) -> Result<()> {
    use polars::prelude::{
        Column, DataType, ParquetReader, PolarsResult, SerReader, StringChunked,
    };
    let open = || std::fs::File::open(path).with_context(|| format!("cannot open {name}"));
    let schema = ParquetReader::new(open()?)
        .schema()
        .with_context(|| format!("{name} is not a readable Parquet file"))?;
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let name_bytes: Vec<&[u8]> = names.iter().map(|h| h.as_bytes()).collect();
    let wanted: Vec<String> =
        columns(&name_bytes, name)?.iter().map(|&k| names[k].clone()).collect();
    super::parquet_source::check_types(&schema, &wanted, name)?;
    let df = ParquetReader::new(open()?)
        .with_columns(Some(wanted))
        .finish()
        .with_context(|| format!("{name} is not a readable Parquet file"))?;
    // The columns come back in the order asked for.
    let ix: [usize; 8] = std::array::from_fn(|k| k);
    // Every column as text, parsed like the CSV: one set of checks for both.
    let text: Vec<Column> = ix
        .iter()
        .map(|&k| df.columns()[k].cast(&DataType::String))
        .collect::<PolarsResult<_>>()
        .with_context(|| format!("reading {name}"))?;
    let text: Vec<&StringChunked> =
        text.iter().map(|c| c.str()).collect::<PolarsResult<_>>().context("reading")?;
    for row in 0..df.height() {
        let field = |k: usize| text[k].get(row).unwrap_or("").trim().as_bytes();
        builder.push(std::array::from_fn(field), name, row as u64 + 1)?;
    }
    Ok(())
}

#[derive(Default)]
struct SummaryBuilder {
    ids: CustomerIds,
    aggregates: Aggregates,
    summary: Summary,
    as_of: Option<i32>,
}

impl SummaryBuilder {
    /// Adds one row: the summary columns' values in SUMMARY_COLUMNS order.
    fn push(&mut self, v: [&[u8]; 8], name: &str, line: u64) -> Result<()> {
        let at = |col: usize| format!("{name} line {line}, column '{}'", SUMMARY_COLUMNS[col]);
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let date = |col: usize| -> Result<i32> {
            DateLayout::Iso
                .parse(v[col])
                .filter(|&d| crate::dates::in_supported_range(d))
                .with_context(|| format!("{}: '{}' is not a date", at(col), shown(v[col])))
        };
        // Counts may come as 3 or as 3.0, depending on the engine's types.
        let count = |col: usize| -> Result<u32> {
            parse_number(v[col])
                .filter(|c| c.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(c))
                .map(|c| c as u32)
                .with_context(|| format!("{}: '{}' is not a whole number", at(col), shown(v[col])))
        };
        let number = |col: usize| -> Result<f64> {
            parse_number(v[col])
                .with_context(|| format!("{}: '{}' is not a number", at(col), shown(v[col])))
        };
        if v[0].is_empty() {
            bail!("{}: the customer id is empty", at(0));
        }
        if std::str::from_utf8(v[0]).is_err() {
            bail!("{}: '{}' is not valid UTF-8", at(0), shown(v[0]));
        }
        let (first, last, as_of) = (date(1)?, date(2)?, date(7)?);
        let (purchases, monetary, repeat_days, repeat_amount) =
            (count(3)?, number(4)?, count(5)?, number(6)?);
        match self.as_of {
            None => self.as_of = Some(as_of),
            Some(a) if a != as_of => bail!(
                "{}: '{}' differs from the as-of date of the rows before ({}); a summary has one as-of date",
                at(7),
                shown(v[7]),
                Day(a)
            ),
            Some(_) => {}
        }
        if !(first <= last && last <= as_of) {
            bail!(
                "{name} line {line}: first_purchase {} ≤ last_purchase {} ≤ as_of {} does not hold",
                Day(first),
                Day(last),
                Day(as_of)
            );
        }
        if repeat_days as i64 > (last - first) as i64 || (repeat_days > 0) != (last > first) {
            bail!(
                "{}: {repeat_days} repeat purchase days do not fit between {} and {}",
                at(5),
                Day(first),
                Day(last)
            );
        }
        if repeat_days >= purchases {
            bail!("{}: {purchases} purchases on {} purchase days", at(3), repeat_days + 1);
        }
        let n = self.ids.len();
        if n > 0 && self.ids.get_bytes(n as u32 - 1) == v[0] {
            bail!("{}: customer '{}' is listed twice", at(0), shown(v[0]));
        }
        let code = self.ids.push(v[0]);
        let a = &mut self.aggregates;
        a.first_purchase.push(first);
        a.last_purchase.push(last);
        a.purchases.push(purchases);
        a.net.push(monetary);
        let s = &mut self.summary;
        s.customer.push(code);
        s.x.push(repeat_days);
        s.t_x_days.push(last - first);
        s.t_days.push(as_of + 1 - first);
        s.monetary_avg.push(if repeat_days == 0 {
            0.0
        } else {
            repeat_amount / repeat_days as f64
        });
        Ok(())
    }

    fn finish(self, name: &str) -> Result<CustomerSummary> {
        let Some(as_of) = self.as_of else {
            bail!("{name} has no customers");
        };
        Ok(CustomerSummary {
            ids: self.ids,
            aggregates: self.aggregates,
            summary: self.summary,
            as_of,
        })
    }
}
