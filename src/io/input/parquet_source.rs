//! Parquet: typed columns, read with polars, only the mapped columns.
//!
//! Dates may be stored as Date, Datetime (any unit; a zoned Datetime is
//! stored as UTC and so gives UTC days), text or YYYYMMDD integers; amounts
//! as any numeric type or text. Everything is normalised to the same
//! batches the CSV reader produces, so the analyses never see the difference.

use std::fs::File;

use anyhow::{bail, Context, Result};
use polars::io::mmap::MmapBytesReader;
use polars::prelude::{
    Column, DataType, Float64Chunked, Int32Chunked, Int64Chunked, ParquetReader, SerReader,
    StringChunked, TimeUnit,
};
use rayon::prelude::*;

use super::columns::{self, AmountColumns, Mapping};
use super::{
    hash_bytes, line_amount, Bad, Batch, BatchSink, LoadOptions, Plan, RowError, RowParser,
    SkipReason, Source,
};
use crate::base::dates::{DateLayout, Detector};
use crate::base::progress::Progress;

const SLICE_ROWS: usize = 256 * 1024;
/// Rows read from the file at a time: a large file is never held whole, only
/// the rows converted so far and one piece. `CHURN_PARQUET_PIECE_ROWS`
/// overrides it, so that tests can cut a small file into many pieces.
fn piece_rows() -> usize {
    std::env::var("CHURN_PARQUET_PIECE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        // Half a million rows: 1M-row pieces cost 40 MB more at the peak on
        // the 10M-row benchmark file, and were no faster.
        .unwrap_or(512 * 1024)
}

/// A date column, whatever its physical type.
enum Dates<'a> {
    Days(&'a Int32Chunked),
    Stamps(&'a Int64Chunked, i64),
    Text(&'a StringChunked),
    Compact(Int64Chunked),
}

/// An id column: text, or integers written in decimal only when used (a
/// cast of the whole column to text would hold millions of strings).
enum Ids<'a> {
    Text(&'a StringChunked),
    Int(Int64Chunked),
    /// Any other type, cast to text.
    Cast(Column),
}

impl<'a> Ids<'a> {
    fn of(c: &'a Column) -> Result<Ids<'a>> {
        Ok(match c.dtype() {
            DataType::String => Ids::Text(c.str()?),
            dt if dt.is_integer() => Ids::Int(c.cast(&DataType::Int64)?.i64()?.clone()),
            _ => Ids::Cast(c.cast(&DataType::String)?),
        })
    }

    /// The id of row i as text ("" when missing).
    fn text<'b>(&'b self, i: usize, buf: &'b mut itoa::Buffer) -> &'b str {
        match self {
            Ids::Text(ca) => ca.get(i).unwrap_or(""),
            Ids::Int(ca) => ca.get(i).map_or("", |v| buf.format(v)),
            Ids::Cast(c) => c.str().ok().and_then(|ca| ca.get(i)).unwrap_or(""),
        }
    }
}

/// An amount-like column.
enum Numbers<'a> {
    Float(Float64Chunked),
    Text(&'a StringChunked),
}

pub(crate) fn read(
    src: &Source,
    opts: &LoadOptions,
    plan: &mut Plan,
    sink: &mut (impl BatchSink + Send),
    progress: &Progress,
) -> Result<u64> {
    let name = src.display();
    // Parquet needs random access: standard input is read into memory once.
    let stdin_bytes: Option<std::sync::Arc<[u8]>> = match &src.path {
        Some(_) => None,
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
                .context("reading Parquet from stdin")?;
            Some(buf.into())
        }
    };
    let open = || -> Result<Box<dyn MmapBytesReader>> {
        Ok(match (&src.path, &stdin_bytes) {
            (Some(path), _) => {
                Box::new(File::open(path).with_context(|| format!("cannot open {name}"))?)
            }
            (None, Some(bytes)) => Box::new(std::io::Cursor::new(bytes.clone())),
            (None, None) => unreachable!("stdin bytes are read above"),
        })
    };
    let schema = ParquetReader::new(open()?).schema().with_context(|| {
        format!("{name} is not a readable Parquet file (truncated, corrupt, or not Parquet)")
    })?;
    let header: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let mapping = match &plan.mapping {
        None => {
            let m = columns::resolve(&header, &opts.columns, &name).map_err(anyhow::Error::msg)?;
            let m = m.with_keep(&opts.keep, &name).map_err(anyhow::Error::msg)?;
            plan.mapping = Some(m.clone());
            m
        }
        Some(m) => m.rebind(&header, &name).map_err(anyhow::Error::msg)?,
    };
    let spinner = progress.spinner(&format!("reading {name}"));
    let wanted: Vec<String> = mapping.used().iter().map(|&i| header[i].clone()).collect();
    check_types(&schema, &wanted, &name)?;
    let mut reader = ParquetReader::new(open()?);
    let metadata = || format!("reading the Parquet metadata of {name}");
    let total = reader.num_rows().with_context(metadata)?;
    let group_rows: Vec<usize> = reader
        .get_metadata()
        .with_context(metadata)?
        .row_groups
        .iter()
        .map(|g| g.num_rows())
        .collect();
    sink.reserve(total, mapping.order.is_some());
    let ends = piece_ends(&group_rows, total, piece_rows());
    let mut offset = 0;
    // The last converted window of rows, interned while the next piece is
    // decoded (and, in read_piece, while the next window is converted).
    let mut converted: Option<Vec<Batch>> = None;
    for end in ends {
        let len = end - offset;
        let (df, ()) = rayon::join(
            || {
                ParquetReader::new(open()?)
                    .with_columns(Some(wanted.clone()))
                    .with_slice(Some((offset, len)))
                    .finish()
                    .with_context(|| format!("reading {name}"))
            },
            || push(sink, &mut converted),
        );
        if sink.failed() {
            break;
        }
        read_piece(
            &df?,
            offset,
            &Piece { name: &name, header: &header, mapping: &mapping },
            opts,
            plan,
            sink,
            &mut converted,
        )?;
        offset = end;
        if sink.failed() {
            break;
        }
    }
    push(sink, &mut converted);
    spinner.finish_and_clear();
    Ok(total as u64)
}

/// What every piece of one file shares.
struct Piece<'a> {
    name: &'a str,
    header: &'a [String],
    mapping: &'a Mapping,
}

/// Where the pieces read one at a time end: after about `piece_rows` rows,
/// at the end of a row group when the piece is at most twice that. The
/// reader decodes every row group a piece touches whole, so pieces that cut
/// row groups decoded the groups at their edges twice (10M-row benchmark
/// file, groups of 263,157 rows: reading CPU 0.1 s more).
fn piece_ends(group_rows: &[usize], total: usize, piece_rows: usize) -> Vec<usize> {
    let (mut ends, mut start, mut end) = (Vec::new(), 0, 0);
    for &rows in group_rows {
        end += rows;
        while end - start >= piece_rows {
            let cut = if end - start <= 2 * piece_rows { end } else { start + piece_rows };
            ends.push(cut);
            start = cut;
        }
    }
    // The last piece ends at the last row (an empty file: one empty piece,
    // whose columns are still checked).
    ends.retain(|&e| e < total);
    ends.push(total);
    ends
}

/// Hands a converted window, if any, to the sink.
fn push(sink: &mut impl BatchSink, converted: &mut Option<Vec<Batch>>) {
    if let Some(mut window) = converted.take() {
        sink.push_window(&mut window);
    }
}

/// Converts the rows of `df`, which start at row `offset` of the file. Each
/// window of rows is left in `converted`, to be interned while the next one
/// is converted.
fn read_piece(
    df: &polars::prelude::DataFrame,
    offset: usize,
    piece: &Piece,
    opts: &LoadOptions,
    plan: &mut Plan,
    sink: &mut (impl BatchSink + Send),
    converted: &mut Option<Vec<Batch>>,
) -> Result<()> {
    let Piece { name, header, mapping } = *piece;
    let rows = df.height();
    let col = |i: usize| -> Result<&Column> {
        df.column(&header[i]).with_context(|| format!("reading column '{}' of {name}", header[i]))
    };

    let customers = Ids::of(col(mapping.customer)?)?;

    let date_col = col(mapping.date)?;
    let dates = match date_col.dtype() {
        DataType::Date => Dates::Days(date_col.date()?.physical()),
        DataType::Datetime(unit, _) => {
            let per_day = match unit {
                TimeUnit::Milliseconds => 86_400_000,
                TimeUnit::Microseconds => 86_400_000_000,
                TimeUnit::Nanoseconds => 86_400_000_000_000,
            };
            Dates::Stamps(date_col.datetime()?.physical(), per_day)
        }
        DataType::String => Dates::Text(date_col.str()?),
        dt if dt.is_integer() => {
            Dates::Compact(date_col.cast(&DataType::Int64)?.i64()?.clone())
        }
        dt => bail!(
            "column '{}' of {name} has type {dt}, which is not a date; pass --date with a date column",
            header[mapping.date]
        ),
    };
    if plan.layout.is_none() {
        plan.layout = Some(match &dates {
            Dates::Text(ca) => detect(ca, name, &header[mapping.date])?,
            Dates::Compact(_) => DateLayout::Compact,
            _ => DateLayout::Iso,
        });
    }
    let layout = plan.layout.clone().unwrap();

    let numbers = |i: usize| -> Result<Numbers> {
        let c = col(i)?;
        Ok(match c.dtype() {
            DataType::String => Numbers::Text(c.str()?),
            dt if dt.is_primitive_numeric() => {
                Numbers::Float(c.cast(&DataType::Float64)?.f64()?.clone())
            }
            dt => bail!(
                "column '{}' of {name} has type {dt}, which is not a number; pass --amount (or --quantity and --price) with numeric columns",
                header[i]
            ),
        })
    };
    let amounts = match mapping.amount {
        AmountColumns::Amount(a) => (numbers(a)?, None),
        AmountColumns::QuantityPrice { quantity, price } => {
            (numbers(quantity)?, Some(numbers(price)?))
        }
    };
    let orders = mapping.order.map(|o| col(o).and_then(Ids::of)).transpose()?;
    let kept =
        mapping.keep.iter().map(|&k| col(k).and_then(Ids::of)).collect::<Result<Vec<_>>>()?;

    let parser = RowParser { layout: &layout, skip_invalid: opts.skip_invalid };
    let ctx = Ctx {
        file: plan.file,
        offset,
        mapping,
        customers: &customers,
        dates: &dates,
        amounts: &amounts,
        orders: orders.as_ref(),
        kept: &kept,
        parser: &parser,
        hash_rows: opts.count_duplicates,
    };
    // Slices are converted a window at a time, so converted rows do not pile up.
    let starts: Vec<usize> = (0..rows).step_by(SLICE_ROWS).collect();
    for group in starts.chunks(rayon::current_num_threads().max(1) * 4) {
        let (outs, ()) = rayon::join(
            || {
                group
                    .par_iter()
                    .map(|&s| convert(&ctx, s, (s + SLICE_ROWS).min(rows)))
                    .collect::<Vec<(Batch, Option<(usize, Bad)>)>>()
            },
            || push(sink, converted),
        );
        if sink.failed() {
            break;
        }
        let mut window = Vec::with_capacity(outs.len());
        for (batch, fail) in outs {
            if let Some((row, Bad::Fail { column, value, problem, hint })) = fail {
                return Err(RowError {
                    file: name.to_string(),
                    line: (offset + row) as u64 + 1,
                    is_row_number: true,
                    column: header[column].clone(),
                    value,
                    problem,
                    hint,
                }
                .into());
            }
            window.push(batch);
        }
        *converted = Some(window);
    }
    Ok(())
}

/// Refuses column types this build cannot read, before the reader would
/// fail on them: Parquet DECIMAL (as Spark and warehouses write money).
pub(crate) fn check_types(
    schema: &polars::prelude::ArrowSchema,
    columns: &[String],
    name: &str,
) -> Result<()> {
    use polars::prelude::ArrowDataType as T;
    for col in columns {
        let Some(field) = schema.get(col.as_str()) else { continue };
        if let T::Decimal(p, s) | T::Decimal32(p, s) | T::Decimal64(p, s) | T::Decimal256(p, s) =
            field.dtype()
        {
            bail!(
                "column '{col}' of {name} is DECIMAL({p}, {s}), which churn does not read from Parquet; cast it to DOUBLE or to text when exporting (e.g. CAST({col} AS DOUBLE)), or export CSV"
            );
        }
    }
    Ok(())
}

fn detect(ca: &StringChunked, name: &str, col: &str) -> Result<DateLayout> {
    let mut det = Detector::default();
    let mut example = None;
    for v in ca.iter().flatten() {
        let v = v.trim();
        if example.is_none() && !v.is_empty() {
            example = Some(v.to_string());
        }
        det.observe(v.as_bytes());
        if det.settled() {
            break;
        }
    }
    super::detected_layout(&det, col, name, &example.unwrap_or_default(), "")
}

struct Ctx<'a> {
    /// The input's place in the list, for [`super::own_order`].
    file: usize,
    /// The file row of the piece's first row.
    offset: usize,
    mapping: &'a Mapping,
    customers: &'a Ids<'a>,
    dates: &'a Dates<'a>,
    amounts: &'a (Numbers<'a>, Option<Numbers<'a>>),
    orders: Option<&'a Ids<'a>>,
    kept: &'a [Ids<'a>],
    parser: &'a RowParser<'a>,
    hash_rows: bool,
}

/// A day from a Date or Datetime column, checked against the supported range.
fn typed_day(p: &RowParser, day: i32, col: usize) -> Result<i32, Bad> {
    if crate::base::dates::in_supported_range(day) {
        Ok(day)
    } else {
        p.day(
            day,
            crate::base::dates::Day(day.clamp(-100_000_000, 100_000_000)).to_string().as_bytes(),
            col,
        )
    }
}

fn number(n: &Numbers, i: usize, col: usize, p: &RowParser) -> Result<f64, Bad> {
    match n {
        Numbers::Float(ca) => match ca.get(i) {
            Some(v) if v.is_finite() => Ok(v),
            // NaN and infinities are refused with their text in the message.
            Some(v) => p.number(v.to_string().as_bytes(), col),
            None => p.number(b"", col),
        },
        Numbers::Text(ca) => p.number(ca.get(i).unwrap_or("").as_bytes(), col),
    }
}

fn convert(ctx: &Ctx, start: usize, end: usize) -> (Batch, Option<(usize, Bad)>) {
    // Sized once: grown by doubling, the columns were copied several times.
    let rows = end - start;
    let mut b = Batch::with_capacity(rows, rows * 8, ctx.orders.is_some(), ctx.hash_rows);
    let m = ctx.mapping;
    let p = ctx.parser;
    let mut text = String::new();
    let (mut cust_buf, mut order_buf) = (itoa::Buffer::new(), itoa::Buffer::new());
    for i in start..end {
        b.rows += 1;
        let cust = ctx.customers.text(i, &mut cust_buf).trim();
        if cust.is_empty() {
            b.skipped.bump(SkipReason::BlankCustomer);
            continue;
        }
        let day = match ctx.dates {
            Dates::Days(ca) => {
                ca.get(i).map_or_else(|| p.date(b"", m.date), |d| typed_day(p, d, m.date))
            }
            Dates::Stamps(ca, per_day) => ca.get(i).map_or_else(
                || p.date(b"", m.date),
                |v| {
                    typed_day(
                        p,
                        v.div_euclid(*per_day).clamp(-100_000_000, 100_000_000) as i32,
                        m.date,
                    )
                },
            ),
            Dates::Text(ca) => p.date(ca.get(i).unwrap_or("").as_bytes(), m.date),
            Dates::Compact(ca) => {
                text.clear();
                if let Some(v) = ca.get(i) {
                    use std::fmt::Write;
                    let _ = write!(text, "{v}");
                }
                p.date(text.as_bytes(), m.date)
            }
        };
        let amount = day.and_then(|d| {
            let a = match (&ctx.amounts, m.amount.clone()) {
                ((n, None), AmountColumns::Amount(col)) => number(n, i, col, p)?,
                ((q, Some(pr)), AmountColumns::QuantityPrice { quantity, price }) => {
                    line_amount(number(q, i, quantity, p)?, number(pr, i, price, p)?)
                }
                _ => unreachable!("amount columns match the mapping"),
            };
            Ok((d, a))
        });
        match amount {
            Ok((d, a)) => {
                b.push_key(cust.as_bytes());
                b.day.push(d);
                b.amount.push(a);
                for ids in ctx.kept {
                    b.push_kept(ids.text(i, &mut order_buf).trim().as_bytes());
                }
                if let Some(o) = ctx.orders {
                    let id = o.text(i, &mut order_buf).trim();
                    b.order.push(if id.is_empty() {
                        super::own_order(ctx.file, (ctx.offset + i) as u64)
                    } else {
                        hash_bytes(id.as_bytes())
                    });
                }
            }
            Err(Bad::Skip(r)) => b.skipped.bump(r),
            Err(bad) => return (b, Some((i, bad))),
        }
        if ctx.hash_rows {
            // Parquet rows are compared on the mapped columns.
            let h = hash_bytes(
                format!("{cust}\u{1}{:?}\u{1}{:?}", b.day.last(), b.amount.last()).as_bytes(),
            );
            b.row_hash.push(h);
        }
    }
    b.index_shards();
    (b, None)
}

#[cfg(test)]
mod tests {
    use super::piece_ends;
    use proptest::prelude::*;

    #[test]
    fn pieces_end_on_row_groups() {
        // The benchmark file: 38 groups of 263,157 rows and a short last one.
        let mut groups = vec![263_157; 37];
        groups.push(10_000_000 - 37 * 263_157);
        let ends = piece_ends(&groups, 10_000_000, 512 * 1024);
        assert_eq!(ends[..3], [526_314, 1_052_628, 1_578_942]);
        assert_eq!(ends.last(), Some(&10_000_000));
        // One huge group is cut into pieces of the wanted size.
        assert_eq!(piece_ends(&[20], 20, 4), [4, 8, 12, 20]);
        assert_eq!(piece_ends(&[], 0, 4), [0]);
    }

    proptest! {
        /// Pieces cover the rows in order, none longer than twice the wanted
        /// size, each ending at a row group's end or inside a group that
        /// alone is longer.
        #[test]
        fn pieces_cover_the_rows(
            groups in proptest::collection::vec(1usize..50, 0..30),
            piece_rows in 1usize..40,
        ) {
            let total: usize = groups.iter().sum();
            let ends = piece_ends(&groups, total, piece_rows);
            prop_assert_eq!(ends.last(), Some(&total));
            let group_ends: Vec<usize> =
                groups.iter().scan(0, |acc, g| { *acc += g; Some(*acc) }).collect();
            let mut start = 0;
            for &end in &ends {
                prop_assert!(end > start || total == 0);
                prop_assert!(end - start <= 2 * piece_rows);
                prop_assert!(
                    group_ends.contains(&end) || end - start == piece_rows || end == total
                );
                start = end;
            }
        }
    }
}
