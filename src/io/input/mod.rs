//! Reading transaction exports into compact, integer-coded columns.
//!
//! Every analysis in churn is a per-customer aggregation over (customer, day,
//! amount[, order]). The reader therefore turns each row into exactly that as
//! it goes: customer ids are interned to dense `u32` codes, dates become UTC
//! day numbers, amounts become `f64`, and order ids become 64-bit hashes (only
//! "how many distinct orders per customer" is ever asked of them). The raw
//! text is dropped chunk by chunk, so memory grows with the number of rows
//! times 16-24 bytes and the number of distinct customers, not with the size
//! of the file.
//!
//! CSV is split into chunks at record boundaries and the chunks are parsed in
//! parallel; interning is a single cheap pass over precomputed hashes. Every
//! value that fails to parse is reported with its file, line, column and
//! value; with `--skip-invalid` it is counted instead.

mod batch;
pub mod columns;
mod csv_source;
mod intern;
mod parquet_source;
mod report;
mod sources;
mod spill;
pub mod summary;

pub use spill::{load_each, Engine};

/// Where the CSV reader may cut text into chunks; public for the fuzzer.
#[doc(hidden)]
pub use csv_source::last_boundary as csv_chunk_boundary;

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::base::dates::DateLayout;
use crate::base::progress::Progress;
use crate::base::text::{count, day_string, thousands};
use crate::base::transactions::{CustomerIds, Transactions};
use crate::base::UsageError;
pub use batch::strip_boms;
pub(crate) use batch::{
    hash_bytes, line_amount, own_order, parse_number, trim, Bad, Batch, RowParser,
};
pub use columns::{ColumnFlags, Mapping};
pub(crate) use intern::BatchSink;
pub(crate) use intern::Builder;
pub use report::{LoadReport, RowError, SkipReason, Skips};
pub use sources::{sources, Source};

crate::named_enum! {
    /// The format of an input, when its extension does not say.
    pub enum InputFormat {
        Csv = ("csv", ""),
        Tsv = ("tsv", ""),
        Parquet = ("parquet", ""),
    }
}

crate::named_enum! {
    /// What negative amounts (returns, cancellations) do.
    #[derive(Default)]
    pub enum ReturnsPolicy {
        #[default]
        Net = ("net", "Returns reduce the customer's monetary value; never a purchase"),
        Drop = ("drop", "Returns are ignored"),
    }
}

/// Everything that decides how input is read.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Input paths; empty or `-` means standard input.
    pub inputs: Vec<PathBuf>,
    pub format: Option<InputFormat>,
    pub delimiter: Option<u8>,
    pub columns: ColumnFlags,
    pub date_format: Option<String>,
    pub skip_invalid: bool,
    pub returns: ReturnsPolicy,
    pub as_of: Option<i32>,
    /// Hash whole rows to count exact duplicates (for `churn inspect`).
    pub count_duplicates: bool,
    /// Columns whose latest non-empty value per customer is carried into
    /// the output (`--keep`).
    pub keep: Vec<String>,
}

/// The per-customer results of one partition of the rows (or of all of
/// them), indexed by that partition's customer codes.
#[derive(Default)]
pub struct CustomerPart {
    pub ids: CustomerIds,
    pub kept: Vec<(String, CustomerIds)>,
    pub aggregates: crate::base::aggregate::Aggregates,
    pub summary: crate::base::summary::Summary,
    pub as_of: i32,
}

impl CustomerPart {
    /// The parts as one: a later part's customer codes follow the earlier
    /// parts' customers. Customers are in exactly one part, so per-customer
    /// figures carry over unchanged. One part is returned as it is.
    pub fn join(parts: Vec<CustomerPart>) -> CustomerPart {
        if parts.len() < 2 {
            return parts.into_iter().next().unwrap_or_default();
        }
        // Room for everyone at once: growing by doubling would copy the
        // tables of tens of millions of customers and hold them twice.
        let sum = |f: fn(&CustomerPart) -> usize| parts.iter().map(f).sum::<usize>();
        let customers = sum(|p| p.ids.len());
        let id_bytes = sum(|p| p.ids.bytes.len());
        let histories = sum(|p| p.summary.len());
        let mut parts = parts.into_iter();
        let mut all = parts.next().unwrap_or_default();
        all.ids.bytes.reserve_exact(id_bytes - all.ids.bytes.len());
        all.ids.ends.reserve_exact(customers - all.ids.len());
        all.aggregates.reserve_exact(customers - all.aggregates.net.len());
        all.summary.reserve_exact(histories - all.summary.len());
        for (_, column) in &mut all.kept {
            column.ends.reserve_exact(customers - column.len());
        }
        for part in parts {
            let base = all.ids.len() as u32;
            all.ids.append(&part.ids);
            for ((_, column), (_, more)) in all.kept.iter_mut().zip(&part.kept) {
                column.append(more);
            }
            all.aggregates.append(part.aggregates);
            all.summary.append(part.summary, base);
            // The part's pages go back now, not at the end: else the parts
            // and their join would be held at once.
            crate::base::release_freed_memory();
        }
        all
    }
}

/// The layout a detector settled on, or the error that tells the user which
/// `--date-format` to pass. `note` adds context to the ambiguity message.
pub(crate) fn detected_layout(
    det: &crate::base::dates::Detector,
    column: &str,
    file: &str,
    example: &str,
    note: &str,
) -> Result<DateLayout> {
    use crate::base::dates::Detected;
    // Values are quoted escaped so that a message stays on one line.
    let (column, example) = (column.escape_debug(), example.escape_debug());
    match det.result() {
        Detected::Layout(k) => Ok(k.layout()),
        // No dates at all: every row will report an empty date.
        Detected::Empty => Ok(DateLayout::Iso),
        Detected::Ambiguous => bail!(
            "the dates in column '{column}' of {file} fit both day-first and month-first layouts (e.g. '{example}'{note}); pass --date-format '%d/%m/%Y' or --date-format '%m/%d/%Y' (add ' %H:%M' for times)"
        ),
        Detected::Unknown(v) => bail!(
            "cannot recognise the date layout of column '{column}' in {file} (first value '{}'); pass --date-format with a strftime format, e.g. --date-format '%d %b %Y %H:%M'",
            v.escape_debug()
        ),
        Detected::Inconsistent(a, b) => bail!(
            "column '{column}' of {file} mixes day-first ('{}') and month-first ('{}') dates; fix the export or pass --date-format (rows that do not fit are then errors, or skipped with --skip-invalid)",
            a.escape_debug(),
            b.escape_debug()
        ),
    }
}

/// Per-source state decided once: column mapping and date layout.
pub(crate) struct Plan {
    /// Which input is being read (0 for the first): rows without an order
    /// id are keyed by their place in it, see [`own_order`].
    pub file: usize,
    pub mapping: Option<Mapping>,
    pub layout: Option<DateLayout>,
}

/// Per kept column, each customer's value on their latest transaction on or
/// before the as-of date where it is not empty (a later line wins a tie of
/// days). `values` holds every row's values, row-major.
fn latest_values(
    tx: &Transactions,
    values: &CustomerIds,
    names: &[String],
) -> Vec<(String, CustomerIds)> {
    let k = names.len();
    debug_assert_eq!(values.len(), tx.len() * k);
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let mut best = vec![usize::MAX; tx.ids.len()];
            for (row, (&c, &day)) in tx.customer.iter().zip(&tx.day).enumerate() {
                let b = &mut best[c as usize];
                if day <= tx.as_of
                    && !values.value(row * k + j).is_empty()
                    && (*b == usize::MAX || day >= tx.day[*b])
                {
                    *b = row;
                }
            }
            let mut column = CustomerIds::default();
            for b in best {
                column.push(if b == usize::MAX { b"" } else { values.value(b * k + j) });
            }
            (name.clone(), column)
        })
        .collect()
}

/// Reads all inputs, applies the as-of date and the returns policy.
pub fn load(opts: &LoadOptions, progress: &Progress) -> Result<(Transactions, LoadReport)> {
    let mut builder = Builder::new();
    let (mapping, mut report) = read_sources(opts, &mut builder, progress)?;
    let (mut tx, mut h, skipped, kept) = builder.finish();
    report.skipped = skipped;
    if opts.count_duplicates {
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut h[..]);
        let distinct =
            if h.is_empty() { 0 } else { 1 + h.windows(2).filter(|w| w[0] != w[1]).count() };
        report.duplicates = Some(h.len() as u64 - distinct as u64);
    }
    if tx.is_empty() {
        bail!(no_usable_rows(&report));
    }
    report.first_day = tx.day.iter().copied().min();
    report.last_day = tx.day.iter().copied().max();
    let as_of = analysis_date(opts, &mut report);
    cut_rows(&mut tx, kept, as_of, opts, &mapping, &mut report);
    if tx.is_empty() {
        bail!(nothing_before_as_of(&report, as_of));
    }
    Ok((tx, report))
}

/// Reads every input into `sink`; the column mapping and a report of what was read.
fn read_sources(
    opts: &LoadOptions,
    sink: &mut (impl BatchSink + Send),
    progress: &Progress,
) -> Result<(Mapping, LoadReport)> {
    if let Some(f) = &opts.date_format {
        crate::base::dates::validate_custom_format(f).map_err(UsageError)?;
    }
    let srcs = sources(opts)?;
    let mut plan = Plan {
        file: 0,
        mapping: None,
        layout: opts.date_format.as_ref().map(|f| DateLayout::Custom(f.clone())),
    };
    let mut report = LoadReport::default();
    for (file, src) in srcs.iter().enumerate() {
        plan.file = file;
        let rows = match src.format {
            InputFormat::Csv | InputFormat::Tsv => {
                csv_source::read(src, opts, &mut plan, sink, progress)?
            }
            InputFormat::Parquet => parquet_source::read(src, opts, &mut plan, sink, progress)?,
        };
        report.files.push((src.display(), rows));
        report.rows += rows;
    }
    if report.rows == 0 {
        let names: Vec<String> = srcs.iter().map(Source::display).collect();
        bail!(
            "{} {} a header but no data rows: nothing to analyse",
            names.join(", "),
            if names.len() == 1 { "has" } else { "have" }
        );
    }
    let mapping = plan.mapping.expect("mapping is set once a file has rows");
    report.mapping = mapping.to_string();
    report.date_layout = plan.layout.map(|l| l.to_string()).unwrap_or_default();
    Ok((mapping, report))
}

fn no_usable_rows(report: &LoadReport) -> String {
    format!(
        "no usable rows: all {} rows were skipped ({})",
        thousands(report.rows),
        report
            .skipped
            .by_reason()
            .iter()
            .map(|(r, n)| format!("{r}: {}", thousands(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn nothing_before_as_of(report: &LoadReport, as_of: i32) -> String {
    format!(
        "no transactions on or before the as-of date {} ({} are after it, the first on {})",
        day_string(as_of),
        count(report.after_as_of, "row"),
        day_string(report.first_day.unwrap_or(as_of))
    )
}

/// The analysis date: --as-of, else the latest day read (report.last_day).
fn analysis_date(opts: &LoadOptions, report: &mut LoadReport) -> i32 {
    match opts.as_of {
        Some(d) => d,
        None => {
            report.as_of_from_data = true;
            report.last_day.expect("rows were read")
        }
    }
}

/// Sets the as-of date, takes the --keep values, then drops the rows after
/// the as-of date and (with --returns drop) the returns, counting both.
fn cut_rows(
    tx: &mut Transactions,
    kept: CustomerIds,
    as_of: i32,
    opts: &LoadOptions,
    mapping: &Mapping,
    report: &mut LoadReport,
) {
    tx.as_of = as_of;
    if !opts.keep.is_empty() {
        // Named as in the file, whatever the case of the flag.
        let names: Vec<String> = mapping.keep.iter().map(|&k| mapping.header[k].clone()).collect();
        tx.kept = latest_values(tx, &kept, &names);
    }
    drop(kept);
    let drop_returns = opts.returns == ReturnsPolicy::Drop;
    let (after, dropped) = retain_rows(tx, |day, amount| {
        if day > as_of {
            Some(0)
        } else if drop_returns && amount < 0.0 {
            Some(1)
        } else {
            None
        }
    });
    report.after_as_of += after;
    report.returns_dropped += dropped;
}

/// Removes rows for which `why` returns a reason (0 or 1), counting each.
fn retain_rows(tx: &mut Transactions, why: impl Fn(i32, f64) -> Option<u8>) -> (u64, u64) {
    let mut counts = [0u64; 2];
    let mut w = 0;
    for r in 0..tx.len() {
        if let Some(k) = why(tx.day[r], tx.amount[r]) {
            counts[k as usize] += 1;
            continue;
        }
        tx.customer[w] = tx.customer[r];
        tx.day[w] = tx.day[r];
        tx.amount[w] = tx.amount[r];
        if let Some(o) = tx.order.as_mut() {
            o[w] = o[r];
        }
        w += 1;
    }
    tx.customer.truncate(w);
    tx.day.truncate(w);
    tx.amount.truncate(w);
    if let Some(o) = tx.order.as_mut() {
        o.truncate(w);
    }
    (counts[0], counts[1])
}
