//! A per-customer summary computed elsewhere (`churn sql summary`, or
//! `churn sql rfm` for RFM alone, run in a warehouse or Spark), read in place
//! of the transactions.
//!
//! The summary holds exactly what RFM and the models need, so scoring it
//! gives the same list as scoring the transactions it came from. Its rows are
//! checked for the relations the definitions imply (first ≤ last ≤ as-of,
//! repeat days within the span), because a summary exported from the wrong
//! query would otherwise score without complaint.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{parse_number, trim, CustomerIds};
use crate::base::aggregate::Aggregates;
use crate::base::dates::{DateLayout, Day};
use crate::base::summary::Summary;
use crate::base::summary::SUMMARY_COLUMNS;

/// Everything the transactions would have given the analyses.
pub struct CustomerSummary {
    pub ids: CustomerIds,
    pub aggregates: Aggregates,
    /// The models' histories; None for RFM base figures (no repeat columns).
    pub summary: Option<Summary>,
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

    /// The models' histories, or why this file has none.
    pub fn model_summary(&mut self, path: &Path) -> Result<Summary> {
        self.summary.take().with_context(|| {
            format!(
                "{} has no repeat_days and repeat_amount columns (RFM base figures, as `churn sql rfm` gives): the models need the summary of `churn sql summary`",
                path.display()
            )
        })
    }
}

/// The position of each column in a summary file; the repeat columns are
/// absent from RFM base figures, recency_days from the model summary.
struct Columns {
    /// SUMMARY_COLUMNS' positions; the repeat columns' are None together.
    summary: [Option<usize>; 8],
    /// SUMMARY_COLUMNS as the file names them.
    names: [&'static str; 8],
    recency_days: Option<usize>,
}

/// Positions of repeat_days and repeat_amount in SUMMARY_COLUMNS.
const REPEATS: [usize; 2] = [5, 6];

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
                None => {
                    let layout = columns(&fields, &name)?;
                    builder.adopt(&layout);
                    index = Some(layout);
                }
                Some(ix) => {
                    let get = |k: Option<usize>| k.and_then(|k| fields.get(k)).copied();
                    let row = std::array::from_fn(|k| get(ix.summary[k]).unwrap_or(b""));
                    builder.push(row, get(ix.recency_days), &name, line)?;
                }
            }
        }
    }
    builder.finish(&name)
}

/// The position of each summary column in a header. `frequency` (the RFM
/// name) stands for `purchases`.
fn columns(header: &[&[u8]], name: &str) -> Result<Columns> {
    let find = |want: &str| header.iter().position(|h| h.eq_ignore_ascii_case(want.as_bytes()));
    let mut summary = [None; 8];
    for (k, want) in SUMMARY_COLUMNS.iter().enumerate() {
        summary[k] = find(want).or_else(|| (*want == "purchases").then(|| find("frequency"))?);
        if summary[k].is_none() && !REPEATS.contains(&k) {
            bail!(
                "{name} has no column '{want}': a summary has the columns {} (made by `churn sql summary`; `churn sql rfm` gives the RFM columns without the repeat ones)",
                SUMMARY_COLUMNS.join(", ")
            );
        }
    }
    if summary[REPEATS[0]].is_some() != summary[REPEATS[1]].is_some() {
        let (has, lacks) = if summary[REPEATS[0]].is_some() {
            ("repeat_days", "repeat_amount")
        } else {
            ("repeat_amount", "repeat_days")
        };
        bail!("{name} has a column '{has}' but no '{lacks}': the two come together");
    }
    // Messages name the column as the file does.
    let mut names = SUMMARY_COLUMNS;
    if find("purchases").is_none() {
        names[3] = "frequency";
    }
    Ok(Columns { summary, names, recency_days: find("recency_days") })
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
    let layout = columns(&name_bytes, name)?;
    builder.adopt(&layout);
    // Read in this order: the summary columns present, then recency_days.
    let positions: Vec<usize> =
        layout.summary.iter().flatten().chain(&layout.recency_days).copied().collect();
    let wanted: Vec<String> = positions.iter().map(|&k| names[k].clone()).collect();
    super::parquet_source::check_types(&schema, &wanted, name)?;
    let df = ParquetReader::new(open()?)
        .with_columns(Some(wanted))
        .finish()
        .with_context(|| format!("{name} is not a readable Parquet file"))?;
    // Every column as text, parsed like the CSV: one set of checks for both.
    let text: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| c.cast(&DataType::String))
        .collect::<PolarsResult<_>>()
        .with_context(|| format!("reading {name}"))?;
    let text: Vec<&StringChunked> =
        text.iter().map(|c| c.str()).collect::<PolarsResult<_>>().context("reading")?;
    // The columns come back in the order asked for: where each one is in `text`.
    let mut at = 0;
    let mut next = || {
        at += 1;
        at - 1
    };
    let summary: [Option<usize>; 8] = layout.summary.map(|k| k.map(|_| next()));
    let recency_days = layout.recency_days.map(|_| next());
    for row in 0..df.height() {
        let field = |k: usize| text[k].get(row).unwrap_or("").trim().as_bytes();
        let values = summary.map(|k| k.map_or(&b""[..], field));
        builder.push(values, recency_days.map(field), name, row as u64 + 1)?;
    }
    Ok(())
}

#[derive(Default)]
struct SummaryBuilder {
    ids: CustomerIds,
    aggregates: Aggregates,
    summary: Summary,
    /// Whether the file has the repeat columns.
    repeats: bool,
    /// The summary columns' names in the file, for messages.
    names: [&'static str; 8],
    as_of: Option<i32>,
}

impl SummaryBuilder {
    /// Takes the file's layout: whether it has repeat columns, and its names.
    fn adopt(&mut self, layout: &Columns) {
        self.repeats = layout.summary[REPEATS[0]].is_some();
        self.names = layout.names;
    }

    /// Adds one row: the summary columns' values in SUMMARY_COLUMNS order
    /// (the repeat ones empty when the file has none), and recency_days if
    /// the file has it.
    fn push(
        &mut self,
        v: [&[u8]; 8],
        recency_days: Option<&[u8]>,
        name: &str,
        line: u64,
    ) -> Result<()> {
        let at = |col: usize| format!("{name} line {line}, column '{}'", self.names[col]);
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let date = |col: usize| -> Result<i32> {
            DateLayout::Iso
                .parse(v[col])
                .filter(|&d| crate::base::dates::in_supported_range(d))
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
        let (purchases, monetary) = (count(3)?, number(4)?);
        let (repeat_days, repeat_amount) =
            if self.repeats { (count(5)?, number(6)?) } else { (0, 0.0) };
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
        if let Some(recency) = recency_days {
            let days = parse_number(recency).filter(|d| d.fract() == 0.0);
            if days != Some((as_of - last) as f64) {
                bail!(
                    "{name} line {line}, column 'recency_days': '{}' is not the {} days from last_purchase {} to as_of {}",
                    shown(recency),
                    as_of - last,
                    Day(last),
                    Day(as_of)
                );
            }
        }
        if purchases == 0 {
            bail!("{}: 0 purchases; every customer of a summary has at least one", at(3));
        }
        if self.repeats
            && (repeat_days as i64 > (last - first) as i64 || (repeat_days > 0) != (last > first))
        {
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
        if !self.repeats {
            return Ok(());
        }
        let s = &mut self.summary;
        s.customer.push(code);
        s.x.push(repeat_days);
        s.t_x_days.push(last - first);
        s.t_days.push(as_of - first);
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
            summary: self.repeats.then_some(self.summary),
            as_of,
        })
    }
}
