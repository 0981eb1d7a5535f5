//! Delimited text: chunked at record boundaries, chunks parsed in parallel.
//!
//! A chunk boundary must not fall inside a quoted field, so the splitter
//! tracks quote parity (RFC 4180 escapes a quote by doubling it, which keeps
//! the parity right). Chunks whose bytes hold no quote at all, the common
//! case, are split at their last newline without a scan.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use super::columns::{self, AmountColumns, Mapping};
use super::{
    hash_bytes, line_amount, trim, Bad, Batch, BatchSink, InputFormat, LoadOptions, Plan, RowError,
    RowParser, Source,
};
use crate::base::dates::{DateLayout, Detector};
use crate::base::progress::Progress;

/// The text parsed as one piece. Each piece's rows wait in a batch (about
/// 40 bytes a row) until interned, two windows of two pieces a thread at a
/// time: 4 MB pieces held 30 MB more at the peak than 2 MB ones, for no
/// faster reading.
const CHUNK_BYTES: usize = 2 << 20;
const QUOTE: u8 = b'"';
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Counts bytes as they are read, for the progress bar.
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn open(src: &Source, progress: &Progress) -> Result<(Box<dyn Read>, indicatif::ProgressBar)> {
    let (raw, bar): (Box<dyn Read>, _) = match &src.path {
        None => (Box::new(io::stdin()), progress.spinner(&format!("reading {}", src.display()))),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress.bytes(len, &format!("reading {}", src.display()));
            (Box::new(Counting { inner: f, bar: bar.clone() }), bar)
        }
    };
    let r: Box<dyn Read> =
        if src.gzip { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { raw };
    Ok((r, bar))
}

/// Yields chunks of whole records.
struct Chunker<R> {
    r: R,
    delim: u8,
    buf: Vec<u8>,
    eof: bool,
    /// Bytes handed out so far, for unique positions.
    offset: u64,
    first: bool,
}

impl<R: Read> Chunker<R> {
    fn new(r: R, delim: u8) -> Self {
        Chunker { r, delim, buf: Vec::new(), eof: false, offset: 0, first: true }
    }

    fn next_chunk(&mut self) -> io::Result<Option<(Vec<u8>, u64)>> {
        let mut target = CHUNK_BYTES;
        loop {
            while !self.eof && self.buf.len() < target {
                let want = (target - self.buf.len()) as u64;
                let n = (&mut self.r).take(want).read_to_end(&mut self.buf)?;
                if n == 0 {
                    self.eof = true;
                }
            }
            if self.first && self.buf.len() >= 3 {
                self.first = false;
                if self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    self.buf.drain(..3);
                }
            }
            if self.buf.is_empty() {
                return Ok(None);
            }
            let split =
                if self.eof { Some(self.buf.len()) } else { last_boundary(&self.buf, self.delim) };
            match split {
                Some(end) => {
                    let rest = self.buf.split_off(end);
                    let chunk = std::mem::replace(&mut self.buf, rest);
                    let off = self.offset;
                    self.offset += chunk.len() as u64;
                    return Ok(Some((chunk, off)));
                }
                None => target = self.buf.len() * 2,
            }
        }
    }
}

/// Where chunks come from: a regular file is mapped into memory and cut in
/// place, which spares copying every byte into freshly allocated chunk
/// buffers (with the kernel zeroing their pages) on the one reading thread;
/// stdin and gzip streams are read into buffers.
enum Chunks<'m> {
    Stream(Chunker<Box<dyn Read>>),
    Mapped {
        map: &'m memmap2::Mmap,
        /// `map` without a leading byte-order mark.
        data: &'m [u8],
        pos: usize,
        delim: u8,
        bar: indicatif::ProgressBar,
    },
}

impl<'m> Chunks<'m> {
    fn next_chunk(&mut self) -> io::Result<Option<(Cow<'m, [u8]>, u64)>> {
        match self {
            Chunks::Stream(c) => Ok(c.next_chunk()?.map(|(v, off)| (Cow::Owned(v), off))),
            Chunks::Mapped { data, pos, delim, bar, .. } => {
                let rest = &data[*pos..];
                if rest.is_empty() {
                    return Ok(None);
                }
                let mut target = CHUNK_BYTES;
                let end = loop {
                    if target >= rest.len() {
                        break rest.len();
                    }
                    if let Some(end) = last_boundary(&rest[..target], *delim) {
                        break end;
                    }
                    target *= 2;
                };
                let off = *pos as u64;
                *pos += end;
                bar.inc(end as u64);
                Ok(Some((Cow::Borrowed(&rest[..end]), off)))
            }
        }
    }

    /// Drops the pages of the chunks handed out so far from this process's
    /// memory (they stay in the page cache): without it, a mapped file's
    /// pages all count in its resident memory until the end. Call it only
    /// when no chunk handed out is still in use.
    fn release_consumed(&self) {
        #[cfg(target_os = "linux")]
        if let Chunks::Mapped { map, data, pos, .. } = self {
            let end = map.len() - data.len() + pos;
            // SAFETY: the map is a read-only file mapping and no slice of the
            // released range is used afterwards; were one read, the pages
            // would be read back from the file.
            let _ =
                unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, end) };
        }
    }

    /// True once the whole input has been handed out.
    fn eof(&self) -> bool {
        match self {
            Chunks::Stream(c) => c.eof,
            Chunks::Mapped { data, pos, .. } => *pos == data.len(),
        }
    }
}

/// Maps a regular, uncompressed, non-empty file; `None` for anything else.
fn map_file(src: &Source) -> Result<Option<memmap2::Mmap>> {
    let Some(path) = src.path.as_ref().filter(|_| !src.gzip) else { return Ok(None) };
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = f.metadata().with_context(|| format!("cannot open {}", path.display()))?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the map is only read. Like every tool that maps its input
    // (ripgrep does), a file truncated by another process while it is read
    // can end the run with SIGBUS; a file changed in place yields whatever
    // bytes it then holds, as reading it would.
    match unsafe { memmap2::Mmap::map(&f) } {
        Ok(m) => {
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            Ok(Some(m))
        }
        // Some file systems cannot map files: read them instead.
        Err(_) => Ok(None),
    }
}

/// The index just past the last newline that ends a record.
///
/// This follows the csv crate's reading: a quote opens a quoted field only
/// as a field's first byte (elsewhere it is an ordinary character, as in
/// `5" screen`), and inside a quoted field a doubled quote is a quote. Plain
/// quote parity would be thrown off by one such stray quote and split a
/// later quoted field in two.
///
/// A cut is never made before a UTF-8 byte-order mark: the csv crate drops a
/// BOM at the start of what it reads, and a field read after a dropped BOM
/// can then start with a quote that mid-file is an ordinary character (the
/// fuzzer found both). So a cut needs the three bytes after it in `buf`.
pub fn last_boundary(buf: &[u8], delim: u8) -> Option<usize> {
    let cuttable = |end: usize| end + 3 <= buf.len() && !buf[end..].starts_with(BOM);
    if memchr::memchr(QUOTE, buf).is_none() {
        return memchr::memrchr_iter(b'\n', buf).map(|i| i + 1).find(|&end| cuttable(end));
    }
    let mut in_quotes = false;
    let mut field_start = true;
    let mut just_closed = false;
    let mut last = None;
    for (i, &b) in buf.iter().enumerate() {
        if in_quotes {
            if b == QUOTE {
                in_quotes = false;
                just_closed = true;
            }
            continue;
        }
        if b == QUOTE && (field_start || just_closed) {
            in_quotes = true;
            field_start = false;
            just_closed = false;
            continue;
        }
        just_closed = false;
        if b == b'\n' {
            if cuttable(i + 1) {
                last = Some(i + 1);
            }
            field_start = true;
        } else {
            field_start = b == delim || b == b'\r';
        }
    }
    last
}

/// Refuses files that are not UTF-8 text before their bytes are taken for
/// columns: read as UTF-8, a UTF-16 export shows NUL bytes inside every
/// name, and a compressed or Parquet file shows binary garbage.
fn check_encoding(first: &[u8], src: &Source, name: &str) -> Result<()> {
    let head = &first[..first.len().min(4096)];
    let nuls = head.iter().filter(|&&b| b == 0).count();
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) || nuls * 4 > head.len() {
        bail!(
            "{name} is UTF-16 text; churn reads UTF-8: convert it first, e.g. `iconv -f UTF-16 -t UTF-8 {name} > converted.csv`"
        );
    }
    if !src.gzip && head.starts_with(&[0x1F, 0x8B]) {
        bail!("{name} is gzip-compressed: name it .csv.gz (or .tsv.gz), or pipe it through `gunzip -c`");
    }
    if head.starts_with(b"PAR1") {
        bail!("{name} is a Parquet file: name it .parquet or pass --input-format parquet");
    }
    Ok(())
}

/// The first header field that is a date or a number, which means the file
/// has no header row.
fn header_looks_like_data(header: &[String]) -> Option<&str> {
    header.iter().map(String::as_str).find(|h| {
        let b = h.as_bytes();
        crate::base::dates::layout_family(b).is_some() || super::parse_number(b).is_some()
    })
}

/// Why a record cannot be used even before its values are parsed: a NUL byte
/// anywhere (a binary or corrupt file), or a customer id that is not UTF-8
/// (ids are written out as text, and two invalid ids must not merge into
/// one replacement character). Only called for chunks that hold a NUL or
/// non-ASCII byte.
fn unusable_bytes(rec: &csv::ByteRecord, customer: usize, check_nul: bool) -> Option<Bad> {
    if check_nul {
        if let Some(col) = rec.iter().position(|f| f.contains(&0)) {
            return Some(Bad::Fail {
                column: col,
                value: String::from_utf8_lossy(&rec[col]).into_owned(),
                problem: "contains a NUL byte".into(),
                hint: "the file is binary, corrupt or not UTF-8 text; re-export it as UTF-8 CSV"
                    .into(),
            });
        }
    }
    let id = &rec[customer];
    if let Err(e) = std::str::from_utf8(id) {
        return Some(Bad::Fail {
            column: customer,
            value: String::from_utf8_lossy(id).into_owned(),
            problem: format!(
                "is not valid UTF-8 (byte 0x{:02X} at position {})",
                id[e.valid_up_to()],
                e.valid_up_to() + 1
            ),
            hint: "churn reads UTF-8 text: re-export the file as UTF-8, or convert it, e.g. `iconv -f WINDOWS-1252 -t UTF-8`".into(),
        });
    }
    None
}

fn reader_builder(delim: u8) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(false).delimiter(delim).flexible(true);
    b
}

fn delimiter(src: &Source, opts: &LoadOptions) -> u8 {
    opts.delimiter.unwrap_or(if src.format == InputFormat::Tsv { b'\t' } else { b',' })
}

/// Reads one CSV/TSV source into `sink`; returns its number of data rows.
pub(crate) fn read(
    src: &Source,
    opts: &LoadOptions,
    plan: &mut Plan,
    sink: &mut (impl BatchSink + Send),
    progress: &Progress,
) -> Result<u64> {
    let name = src.display();
    let delim = delimiter(src, opts);
    let map = map_file(src)?;
    let (mut chunker, bar) = match &map {
        Some(m) => {
            let bar = progress.bytes(m.len() as u64, &format!("reading {}", src.display()));
            // The stream reader drops a leading byte-order mark; so does this.
            let data = m.strip_prefix(BOM).unwrap_or(&m[..]);
            bar.inc((m.len() - data.len()) as u64);
            (Chunks::Mapped { map: m, data, pos: 0, delim, bar: bar.clone() }, bar)
        }
        None => {
            let (r, bar) = open(src, progress)?;
            (Chunks::Stream(Chunker::new(r, delim)), bar)
        }
    };
    let read_err = |e: io::Error| {
        let hint = if src.gzip {
            format!(
                "reading {name}: it is not a complete gzip file (check it with `gzip -t`; a truncated download or copy is the usual cause)"
            )
        } else {
            format!("reading {name}")
        };
        anyhow::Error::new(e).context(hint)
    };
    let Some((first, first_off)) = chunker.next_chunk().map_err(read_err)? else {
        bail!("{name} is empty: expected a header row and transactions");
    };
    check_encoding(&first, src, &name)?;

    // Header.
    let mut rdr = reader_builder(delim).from_reader(&first[..]);
    let mut rec = csv::ByteRecord::new();
    if !rdr.read_byte_record(&mut rec).with_context(|| format!("reading the header of {name}"))? {
        bail!("{name} is empty: expected a header row and transactions");
    }
    let header: Vec<String> =
        rec.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
    let pos = rdr.position().clone();
    drop(rdr);
    let data_start = pos.byte() as usize;
    let first_data_line = pos.line();
    if header.len() == 1 && opts.delimiter.is_none() {
        let h = &header[0];
        let hint = [b';', b'\t', b'|']
            .iter()
            .find(|&&d| h.as_bytes().contains(&d))
            .map(|&d| {
                format!("; it looks {}-separated: pass --delimiter '{}'", d as char, d as char)
            })
            .unwrap_or_default();
        if !hint.is_empty() {
            bail!("{name} has a single column '{}'{hint}", h.escape_debug());
        }
    }

    let mapping = match &plan.mapping {
        None => {
            let m = columns::resolve(&header, &opts.columns, &name).map_err(|e| {
                match header_looks_like_data(&header) {
                    Some(v) => anyhow::anyhow!(
                        "line 1 of {name} looks like data, not a header (it holds '{}'): churn needs a header row naming the columns, e.g. customer_id,date,amount",
                        v.escape_debug()
                    ),
                    None => anyhow::Error::msg(e),
                }
            })?;
            let m = m.with_keep(&opts.keep, &name).map_err(anyhow::Error::msg)?;
            plan.mapping = Some(m.clone());
            m
        }
        Some(m) => m.rebind(&header, &name).map_err(anyhow::Error::msg)?,
    };

    let data = match first {
        Cow::Borrowed(b) => Cow::Borrowed(&b[data_start..]),
        Cow::Owned(mut v) => {
            v.drain(..data_start);
            Cow::Owned(v)
        }
    };
    // Size the row arrays once from the first chunk's line length, rather
    // than doubling (and copying) them as rows arrive.
    if let (Some(path), false) = (&src.path, src.gzip) {
        let lines = data.iter().filter(|&&b| b == b'\n').count().max(1);
        let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as usize;
        sink.reserve(file_len / (data.len() / lines).max(1) + lines, mapping.order.is_some());
    }

    if plan.layout.is_none() {
        plan.layout = Some(detect_layout(src, &data, delim, &mapping, &chunker)?);
    }
    let layout = plan.layout.clone().unwrap();

    let ctx = ChunkCtx {
        file: plan.file,
        mapping: &mapping,
        parser: RowParser { layout: &layout, skip_invalid: opts.skip_invalid },
        delim,
        ncols: header.len(),
        hash_rows: opts.count_duplicates,
    };

    let window = rayon::current_num_threads().max(1) * 2;
    let mut pending: Vec<(Cow<[u8]>, u64)> = vec![(data, first_off + data_start as u64)];
    let mut line_base = first_data_line;
    let mut rows = 0u64;
    // While one window of chunks is parsed, the previous one is interned.
    let mut parsed: Option<Vec<Batch>> = None;
    // Batches the sink is done with, to be refilled.
    let mut spare: Vec<Batch> = Vec::new();
    loop {
        while pending.len() < window {
            match chunker.next_chunk().map_err(read_err)? {
                Some(c) => pending.push(c),
                None => break,
            }
        }
        if pending.is_empty() {
            if let Some(mut batches) = parsed.take() {
                sink.push_window(&mut batches);
            }
            break;
        }
        let previous = parsed.take();
        let reuse: Vec<Option<Batch>> = (0..pending.len()).map(|_| spare.pop()).collect();
        let (outs, returned) = rayon::join(
            || {
                pending
                    .par_iter()
                    .zip(reuse)
                    .map(|((c, off), b)| parse_chunk(c, *off, &ctx, b))
                    .collect::<Vec<ChunkOut>>()
            },
            || {
                let mut batches = previous.unwrap_or_default();
                sink.push_window(&mut batches);
                batches
            },
        );
        spare.extend(returned);
        pending.clear();
        chunker.release_consumed();
        if sink.failed() {
            break;
        }
        let mut batches = Vec::with_capacity(outs.len());
        for out in outs {
            if let Some((rel_line, bad)) = out.fail {
                let line = line_base + rel_line - 1;
                return Err(match bad {
                    Bad::Fail { column, value, problem, hint } => RowError {
                        file: name.clone(),
                        line,
                        is_row_number: false,
                        column: if column == usize::MAX {
                            String::new()
                        } else {
                            header[column].clone()
                        },
                        value,
                        problem,
                        hint,
                    }
                    .into(),
                    Bad::Skip(_) => unreachable!("skips are counted, not failed"),
                });
            }
            line_base += out.newlines;
            rows += out.batch.rows;
            batches.push(out.batch);
        }
        parsed = Some(batches);
    }
    bar.finish_and_clear();
    Ok(rows)
}

struct ChunkCtx<'a> {
    /// The input's place in the list, for [`super::own_order`].
    file: usize,
    mapping: &'a Mapping,
    parser: RowParser<'a>,
    delim: u8,
    ncols: usize,
    hash_rows: bool,
}

struct ChunkOut {
    batch: Batch,
    newlines: u64,
    /// First fatal problem: (line relative to the chunk, 1-based; what).
    fail: Option<(u64, Bad)>,
}

/// Parses one chunk into `reuse` (a used batch) or a new batch.
fn parse_chunk(data: &[u8], offset: u64, ctx: &ChunkCtx, reuse: Option<Batch>) -> ChunkOut {
    let orders = ctx.mapping.order.is_some();
    // Rows estimated from the length (most exports have 30 or more bytes a
    // row); a recycled batch keeps the room earlier chunks needed.
    let (rows, key_bytes) = (data.len() / 24 + 1, data.len() / 4);
    let mut b = match reuse {
        Some(b) => b.recycle(rows, key_bytes, orders, ctx.hash_rows),
        None => Batch::with_capacity(rows, key_bytes, orders, ctx.hash_rows),
    };
    if let Some(newlines) = parse_plain(data, offset, ctx, &mut b) {
        return ChunkOut { batch: b, newlines, fail: None };
    }
    // Quoting, bytes to check, or something only the csv reader can say
    // precisely: start over with it.
    b = b.recycle(rows, key_bytes, orders, ctx.hash_rows);
    let check_nul = memchr::memchr(0, data).is_some();
    let check_bytes = check_nul || !data.is_ascii();
    parse_records(data, offset, ctx, b, check_nul, check_bytes)
}

/// The fields of a record, however they were split.
trait Fields {
    fn field(&self, i: usize) -> &[u8];
    fn count(&self) -> usize;
}

impl Fields for csv::ByteRecord {
    #[inline]
    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
}

/// A record of a plain line: the line and where each field ends.
struct PlainRecord<'a> {
    line: &'a [u8],
    ends: &'a [usize],
}

impl Fields for PlainRecord<'_> {
    #[inline]
    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.line[start..self.ends[i]]
    }
    #[inline]
    fn count(&self) -> usize {
        self.ends.len()
    }
}

/// Takes one record with the right number of fields into the batch; `start`
/// is its byte position in the input. `Err` for a row that cannot be used.
#[inline]
fn push_record(b: &mut Batch, rec: &impl Fields, start: u64, ctx: &ChunkCtx) -> Result<(), Bad> {
    let m = ctx.mapping;
    b.rows += 1;
    let cust = trim(rec.field(m.customer));
    let parsed = if cust.is_empty() {
        Err(Bad::Skip(super::SkipReason::BlankCustomer))
    } else {
        parse_values(rec, m, &ctx.parser)
    };
    match parsed {
        Ok((day, amount)) => {
            b.push_key(cust);
            b.day.push(day);
            b.amount.push(amount);
            for &k in &m.keep {
                b.push_kept(trim(rec.field(k)));
            }
            if let Some(o) = m.order {
                let id = trim(rec.field(o));
                let h =
                    if id.is_empty() { super::own_order(ctx.file, start) } else { hash_bytes(id) };
                b.order.push(h);
            }
        }
        Err(Bad::Skip(reason)) => b.skipped.bump(reason),
        Err(bad) => return Err(bad),
    }
    if ctx.hash_rows {
        let mut h = 0u64;
        for i in 0..rec.count() {
            h = hash_bytes(rec.field(i)) ^ h.rotate_left(17).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        b.row_hash.push(h);
    }
    Ok(())
}

/// Parses a chunk of plain text (ASCII without quotes or NUL bytes), whose
/// records are its lines and whose fields lie between delimiters: split
/// here directly, several times faster than the csv reader's general
/// machine, which also copies every field. Gives the number of lines, or
/// `None` (the batch partly filled) when the chunk needs the csv reader:
/// a quote, a NUL or a non-ASCII byte, a carriage return other than a
/// line's last byte (the csv reader ends a record there), a wrong number of
/// fields or a bad value, whose message the csv reader's path words.
fn parse_plain(data: &[u8], offset: u64, ctx: &ChunkCtx, b: &mut Batch) -> Option<u64> {
    if matches!(ctx.delim, b'\n' | b'\r' | QUOTE) {
        return None;
    }
    let mut ends = Vec::with_capacity(ctx.ncols);
    let (mut start, mut newlines) = (0usize, 0u64);
    // One line, `data[start..end]` without its line end: false if it needs the csv reader.
    let line = |b: &mut Batch, ends: &mut Vec<usize>, start: usize, end: usize| -> bool {
        let line = &data[start..end];
        ends.push(line.len());
        let fields = ends.len();
        let taken = if line.is_empty() {
            // The csv reader yields no record for an empty line.
            true
        } else if fields != ctx.ncols {
            // A blank line, as the csv reader skips it; anything else is
            // the csv reader's to report.
            fields == 1 && trim(line).is_empty()
        } else {
            push_record(b, &PlainRecord { line, ends }, offset + start as u64, ctx).is_ok()
        };
        ends.clear();
        taken
    };
    let whole = special_bytes(data, ctx.delim, |at| {
        match data[at] {
            b'\n' => {
                newlines += 1;
                let end = if at > start && data[at - 1] == b'\r' { at - 1 } else { at };
                if !line(b, &mut ends, start, end) {
                    return false;
                }
                start = at + 1;
            }
            // Ends a record for the csv reader unless a line feed follows.
            b'\r' => return data.get(at + 1) == Some(&b'\n'),
            _ => ends.push(at - start),
        }
        true
    });
    if !whole || (start < data.len() && !line(b, &mut ends, start, data.len())) {
        return None;
    }
    Some(newlines)
}

/// Calls `f` with the index of every delimiter, line feed and carriage
/// return of `data`, in order, while it returns true; false if it stopped,
/// or if `data` holds a quote, a NUL or a non-ASCII byte. Sixteen bytes
/// are compared at once: fields are short, so finding each line's end with
/// `memchr` and then its delimiters byte by byte cost a call per line and a
/// second look at every byte.
#[inline]
fn special_bytes(data: &[u8], delim: u8, mut f: impl FnMut(usize) -> bool) -> bool {
    let mut base = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16
        // bytes inside `data` (base + 16 <= len).
        unsafe {
            let (d, n, r) = (
                _mm_set1_epi8(delim as i8),
                _mm_set1_epi8(b'\n' as i8),
                _mm_set1_epi8(b'\r' as i8),
            );
            let (q, z) = (_mm_set1_epi8(QUOTE as i8), _mm_setzero_si128());
            while base + 16 <= data.len() {
                let v = _mm_loadu_si128(data.as_ptr().add(base).cast());
                // A byte's top bit is set past ASCII.
                let odd = _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, z));
                if _mm_movemask_epi8(_mm_or_si128(odd, v)) != 0 {
                    return false;
                }
                let hits = _mm_or_si128(
                    _mm_cmpeq_epi8(v, d),
                    _mm_or_si128(_mm_cmpeq_epi8(v, n), _mm_cmpeq_epi8(v, r)),
                );
                let mut mask = _mm_movemask_epi8(hits) as u32;
                while mask != 0 {
                    if !f(base + mask.trailing_zeros() as usize) {
                        return false;
                    }
                    mask &= mask - 1;
                }
                base += 16;
            }
        }
    }
    for (i, &c) in data.iter().enumerate().skip(base) {
        if c == QUOTE || c == 0 || !c.is_ascii() {
            return false;
        }
        if (c == delim || c == b'\n' || c == b'\r') && !f(i) {
            return false;
        }
    }
    true
}

/// Parses a chunk with the csv reader, which handles quoting and reports
/// malformed text.
fn parse_records(
    data: &[u8],
    offset: u64,
    ctx: &ChunkCtx,
    mut b: Batch,
    check_nul: bool,
    check_bytes: bool,
) -> ChunkOut {
    let newlines = memchr::memchr_iter(b'\n', data).count() as u64;
    let mut rdr = reader_builder(ctx.delim).from_reader(data);
    let mut rec = csv::ByteRecord::new();
    let fail = |rec: &csv::ByteRecord, bad: Bad| {
        let line = rec.position().map(|p| p.line()).unwrap_or(1);
        Some((line, bad))
    };
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(1);
                let bad = Bad::Fail {
                    column: usize::MAX,
                    value: String::new(),
                    problem: format!("is malformed CSV ({e})"),
                    hint: String::new(),
                };
                return ChunkOut { batch: b, newlines, fail: Some((line, bad)) };
            }
        }
        if rec.len() != ctx.ncols {
            if rec.len() == 1 && trim(&rec[0]).is_empty() {
                continue; // a blank line
            }
            let bad = Bad::Fail {
                column: usize::MAX,
                value: String::new(),
                problem: format!("has {} fields where the header has {}", rec.len(), ctx.ncols),
                hint: "check the delimiter (--delimiter) and quoting".into(),
            };
            return ChunkOut { batch: b, newlines, fail: fail(&rec, bad) };
        }
        if check_bytes {
            if let Some(bad) = unusable_bytes(&rec, ctx.mapping.customer, check_nul) {
                return ChunkOut { batch: b, newlines, fail: fail(&rec, bad) };
            }
        }
        let start = rec.position().map(|p| p.byte()).unwrap_or(0) + offset;
        if let Err(bad) = push_record(&mut b, &rec, start, ctx) {
            return ChunkOut { batch: b, newlines, fail: fail(&rec, bad) };
        }
    }
    ChunkOut { batch: b, newlines, fail: None }
}

#[inline]
fn parse_values(rec: &impl Fields, m: &Mapping, p: &RowParser) -> Result<(i32, f64), Bad> {
    let day = p.date(rec.field(m.date), m.date)?;
    let amount = match m.amount {
        AmountColumns::Amount(a) => p.number(rec.field(a), a)?,
        AmountColumns::QuantityPrice { quantity, price } => line_amount(
            p.number(rec.field(quantity), quantity)?,
            p.number(rec.field(price), price)?,
        ),
    };
    Ok((day, amount))
}

/// Decides the date layout from the first chunk, and if that leaves
/// day-first versus month-first open, from the whole file.
fn detect_layout(
    src: &Source,
    data: &[u8],
    delim: u8,
    mapping: &Mapping,
    chunker: &Chunks,
) -> Result<DateLayout> {
    let name = src.display();
    let col = mapping.name(mapping.date).to_string();
    let mut det = Detector::default();
    let mut example = None;
    observe_dates(data, delim, mapping.date, &mut det, &mut example);
    if !det.settled() && !chunker.eof() {
        if let Some(path) = &src.path {
            // Ambiguous so far: look at every date of the file.
            let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let r: Box<dyn Read> =
                if src.gzip { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) };
            let mut rest = Chunker::new(r, delim);
            let mut first = true;
            while let Some((c, _)) = rest.next_chunk().with_context(|| format!("reading {name}"))? {
                let body = if first {
                    first = false;
                    let mut rdr = reader_builder(delim).from_reader(&c[..]);
                    let mut rec = csv::ByteRecord::new();
                    let _ = rdr.read_byte_record(&mut rec);
                    rdr.position().byte() as usize
                } else {
                    0
                };
                observe_dates(&c[body..], delim, mapping.date, &mut det, &mut example);
                if det.settled() {
                    break;
                }
            }
        }
    }
    let note = if src.path.is_none() && !chunker.eof() {
        ", in the first rows read from stdin"
    } else {
        ""
    };
    super::detected_layout(&det, &col, &name, &example.unwrap_or_default(), note)
}

fn observe_dates(
    data: &[u8],
    delim: u8,
    col: usize,
    det: &mut Detector,
    example: &mut Option<String>,
) {
    let mut rdr = reader_builder(delim).from_reader(data);
    let mut rec = csv::ByteRecord::new();
    while let Ok(true) = rdr.read_byte_record(&mut rec) {
        if let Some(v) = rec.get(col) {
            let v = v.trim_ascii();
            if example.is_none() && !v.is_empty() {
                *example = Some(String::from_utf8_lossy(v).into_owned());
            }
            det.observe(v);
            if det.settled() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_respects_quotes() {
        assert_eq!(last_boundary(b"a,b\nc,d\nefg", b','), Some(8));
        assert_eq!(last_boundary(b"a,\"x\ny\"\nc,\"d\ne", b','), Some(8));
        assert_eq!(last_boundary(b"no newline", b','), None);
        // A stray quote inside an unquoted field does not open a quoted field.
        assert_eq!(last_boundary(b"a,5\" TV,1\nb,\"x\ny\",2\ncde", b','), Some(20));
        // A doubled quote inside a quoted field stays inside it.
        assert_eq!(last_boundary(b"a,\"say \"\"hi\n\"\"\",1\nbcd", b','), Some(18));
    }

    /// Records as churn sees their values (see `trim` for the BOM).
    fn records(data: &[u8], delim: u8) -> Vec<Vec<Vec<u8>>> {
        let mut rdr = reader_builder(delim).from_reader(data);
        rdr.byte_records()
            .map(|r| {
                r.map(|r| {
                    r.iter().map(|f| super::super::strip_boms(f).to_vec()).collect::<Vec<_>>()
                })
                .unwrap_or_default()
            })
            // One empty field: a blank line, which the reader skips.
            .filter(|r| !(r.len() == 1 && r[0].trim_ascii().is_empty()))
            .collect()
    }

    #[test]
    fn fuzz_regression_bom_at_the_start_of_a_piece() {
        // fuzz/artifacts/csv_split/crash-494ad0a6...: the csv crate drops a
        // BOM at the start of a piece but not in the middle of the text.
        // No cut is made before a BOM (nor without the 3 bytes to tell).
        let text = b"x\n\xEF\xBB\xBFcu\x1b\x1b\x1b\xe9\xe9";
        assert_eq!(last_boundary(&text[..3], b','), None);
        assert_eq!(last_boundary(text, b','), None);
        assert_eq!(last_boundary(b"x\nab\ncde", b','), Some(5));
        assert_eq!(last_boundary(b"x\nab\ncd", b','), Some(2));
        // crash-89ea2ee0...: after a dropped BOM, quotes opened a quoted field.
        let text = b"a\n\xEF\xBB\xBF\"\"\"\"x\nb\nccc";
        assert_eq!(last_boundary(&text[..12], b','), None);
        let b = last_boundary(text, b',').unwrap();
        assert_eq!(b, 13);
        let mut parts = records(&text[..b], b',');
        parts.extend(records(&text[b..], b','));
        assert_eq!(parts, records(text, b','));
        assert_eq!(super::super::trim(b"\xEF\xBB\xBF A "), b"A");
        // crash-45f7cdae...: a line holding only a BOM is a blank line.
        let text = b"x\n\xEF\xBB\xBF\r\x00\x001\n";
        assert_eq!(records(text, b','), records(b"x\n\x00\x001\n", b','));
        // crash-772406ec...: two BOMs in a row are both dropped from a value.
        assert_eq!(super::super::trim(b"\xEF\xBB\xBF\xEF\xBB\xBF1"), b"1");
    }

    proptest::proptest! {
        /// Any split the chunker makes reads back as the same records as the
        /// whole text: the split never falls inside a record.
        #[test]
        fn splits_fall_between_records(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab,;\"\n\r \xEF\xBB\xBF".to_vec()), 0..80),
            cut in 0usize..80,
            semicolon: bool,
        ) {
            let delim = if semicolon { b';' } else { b',' };
            let cut = cut.min(text.len());
            if let Some(b) = last_boundary(&text[..cut], delim) {
                let mut parts = records(&text[..b], delim);
                parts.extend(records(&text[b..], delim));
                proptest::prop_assert_eq!(parts, records(&text, delim));
            }
        }
    }

    proptest::proptest! {
        /// A plain chunk split by hand reads as the csv reader reads it: the
        /// same rows, values, order keys and skips, or it is handed to the
        /// csv reader. Lines mix blank and space-only lines, CRLF and stray
        /// carriage returns, missing values, bad dates and amounts, and
        /// lines with too few or too many fields.
        #[test]
        fn plain_chunks_read_as_the_csv_reader_reads_them(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "c1", "c1", " c2 ", "", "c33333333333", "\"q\"", "é",
                    ]),
                    proptest::sample::select(vec!["2024-01-02", "2024-01-03 10:00", "x", ""]),
                    proptest::sample::select(vec!["1.5", "-2", " 3 ", "1e3", "abc", "12345678901234567"]),
                    proptest::sample::select(vec!["", "o1", " o2"]),
                    proptest::sample::select(vec![
                        "\n", "\n", "\n", "\n", "\n", "\r\n", "\r\n", "\n\n", "\n  \n", "\r", ",x\n", "\r\r\n",
                    ]),
                ),
                1..12),
            skip_invalid: bool,
            drop_order: bool,
        ) {
            let mut text = String::new();
            for (c, d, a, o, end) in &lines {
                if drop_order {
                    text.push_str(&format!("{c},{d},{a}{end}"));
                } else {
                    text.push_str(&format!("{c},{d},{a},{o}{end}"));
                }
            }
            let names: &[&str] = if drop_order {
                &["customer_id", "date", "amount"]
            } else {
                &["customer_id", "date", "amount", "order_id"]
            };
            let header: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let mapping = columns::resolve(&header, &Default::default(), "t.csv").unwrap();
            let layout = DateLayout::Iso;
            let ctx = ChunkCtx {
                file: 0,
                mapping: &mapping,
                parser: RowParser { layout: &layout, skip_invalid },
                delim: b',',
                ncols: header.len(),
                hash_rows: true,
            };
            let data = text.as_bytes();
            let fresh = || Batch::with_capacity(4, 16, !drop_order, true);
            let nul = data.contains(&0);
            let general = parse_records(data, 1000, &ctx, fresh(), nul, nul || !data.is_ascii());
            let mut p = fresh();
            let plain = parse_plain(data, 1000, &ctx, &mut p);
            // What the plain path leaves to the csv reader is a malformed
            // line or bad value, a carriage return inside a line, a quote or
            // a byte past ASCII.
            if plain.is_none() && general.fail.is_none() {
                let odd = text.replace("\r\n", "\n").contains(['\r', '"']) || !text.is_ascii();
                proptest::prop_assert!(odd, "{:?}", text);
            }
            if let Some(newlines) = plain {
                proptest::prop_assert!(general.fail.is_none());
                let (p, g) = (&p, &general.batch);
                proptest::prop_assert_eq!(newlines, general.newlines);
                proptest::prop_assert_eq!(p.rows, g.rows);
                proptest::prop_assert_eq!(p.skipped, g.skipped);
                proptest::prop_assert_eq!(&p.key_bytes, &g.key_bytes);
                proptest::prop_assert_eq!(&p.key_ends, &g.key_ends);
                proptest::prop_assert_eq!(&p.day, &g.day);
                proptest::prop_assert_eq!(&p.amount, &g.amount);
                // A row without an order id is keyed by its position, which
                // the csv reader counts from the previous record's end: the
                // keys differ but stay distinct.
                let named = [hash_bytes(b"o1"), hash_bytes(b"o2")];
                proptest::prop_assert_eq!(p.order.len(), g.order.len());
                for (a, b) in p.order.iter().zip(&g.order) {
                    proptest::prop_assert!(a == b || !named.contains(a) && !named.contains(b));
                }
                let own: std::collections::HashSet<_> =
                    p.order.iter().filter(|h| !named.contains(h)).collect();
                proptest::prop_assert_eq!(
                    own.len(),
                    p.order.iter().filter(|h| !named.contains(h)).count()
                );
                proptest::prop_assert_eq!(&p.row_hash, &g.row_hash);
            }
        }
    }

    /// Every chunk of `chunks` in order: offsets count the bytes before
    /// each, every chunk ends with `end` (a record's end), and there are
    /// more than two. Returns the bytes handed out.
    fn drain_chunks(mut chunks: Chunks, end: &[u8]) -> Vec<u8> {
        let (mut all, mut n) = (Vec::new(), 0);
        while let Some((c, off)) = chunks.next_chunk().unwrap() {
            assert_eq!(off as usize, all.len());
            assert!(c.ends_with(end));
            all.extend_from_slice(&c);
            chunks.release_consumed();
            n += 1;
        }
        assert!(n > 2 && chunks.eof());
        all
    }

    /// Records of ~12 bytes with a quoted newline inside each: 1M of them
    /// make three chunks.
    fn quoted_records() -> Vec<u8> {
        let mut text = b"\xEF\xBB\xBFa,b\n".to_vec();
        for i in 0..1_000_000 {
            text.extend_from_slice(format!("c{i},\"x\ny\"\n").as_bytes());
        }
        text
    }

    #[test]
    fn chunker_reassembles_input() {
        let text = quoted_records();
        let stream = Chunker::new(Box::new(io::Cursor::new(text.clone())) as Box<dyn Read>, b',');
        // The stream reader drops the leading byte-order mark, and never cuts
        // inside the quoted "x\ny".
        assert_eq!(drain_chunks(Chunks::Stream(stream), b"y\"\n"), &text[3..]);
    }

    #[test]
    fn mapped_chunks_cut_between_records() {
        use std::io::Write;
        let text = quoted_records();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&text).unwrap();
        let src =
            Source { path: Some(f.path().to_path_buf()), format: InputFormat::Csv, gzip: false };
        let map = map_file(&src).unwrap().expect("a regular file is mapped");
        let data = map.strip_prefix(BOM).unwrap();
        let mapped = Chunks::Mapped {
            map: &map,
            data,
            pos: 0,
            delim: b',',
            bar: indicatif::ProgressBar::hidden(),
        };
        assert_eq!(drain_chunks(mapped, b"y\"\n"), &text[3..]);
    }
}
