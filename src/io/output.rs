//! Writing result tables: one place decides format, destination and safety.
//!
//! Results are small typed tables (one row per customer or per cohort cell),
//! so they are serialised here by hand rather than through a dataframe:
//! that keeps the bytes deterministic and floats in their shortest
//! round-trip form in every text format. A file is written under a temporary
//! name in the destination directory and renamed into place only after
//! everything was written and flushed, so a failed or killed run never leaves
//! a partial file and never clobbers a previous good one.

use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::base::dates::Day;
use crate::base::UsageError;

crate::named_enum! {
    pub enum OutputFormat {
        Csv = ("csv", ""),
        Tsv = ("tsv", ""),
        Parquet = ("parquet", ""),
        Json = ("json", ""),
        Ndjson = ("ndjson", ""),
    }
}

/// Many strings in one allocation: result tables hold millions of ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strings {
    bytes: String,
    ends: Vec<usize>,
}

impl Strings {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        Strings { bytes: String::with_capacity(bytes), ends: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, s: &str) {
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len());
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn slice(&self, r: Range<usize>) -> Strings {
        let base = if r.start == 0 { 0 } else { self.ends[r.start - 1] };
        let end = if r.end == 0 { 0 } else { self.ends[r.end - 1] };
        Strings {
            bytes: self.bytes[base..end].to_string(),
            ends: self.ends[r].iter().map(|e| e - base).collect(),
        }
    }
}

/// Builds a string column from items in parallel: each block of items is
/// written into its own arena, then the arenas are joined in order.
pub fn par_strings<T: Sync>(items: &[T], write: impl Fn(&T, &mut String) + Sync) -> Strings {
    use rayon::prelude::*;
    let parts: Vec<Strings> = items
        .par_chunks(64 * 1024)
        .map(|chunk| {
            let mut part = Strings::with_capacity(chunk.len(), chunk.len() * 8);
            let mut buf = String::new();
            for item in chunk {
                buf.clear();
                write(item, &mut buf);
                part.push(&buf);
            }
            part
        })
        .collect();
    let mut all = Strings::with_capacity(items.len(), parts.iter().map(|p| p.bytes.len()).sum());
    for p in parts {
        let base = all.bytes.len();
        all.bytes.push_str(&p.bytes);
        all.ends.extend(p.ends.iter().map(|e| e + base));
    }
    all
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut s = Strings::default();
        for v in iter {
            s.push(v.as_ref());
        }
        s
    }
}

/// A column of a result table.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Str(Strings),
    /// A few distinct labels, stored once (segments, flags).
    Cat {
        labels: Vec<String>,
        codes: Vec<u16>,
    },
    Int(Vec<i64>),
    /// Narrow integers for big tables (days, counts); Int32 in Parquet.
    I32(Vec<i32>),
    /// Scores and other small integers; Int32 in Parquet.
    U8(Vec<u8>),
    Float(Vec<f64>),
    /// Day numbers, written as YYYY-MM-DD (a Date in Parquet).
    Date(Vec<i32>),
    Bool(Vec<bool>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Str(v) => v.len(),
            ColumnData::Cat { codes, .. } => codes.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::U8(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Date(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This column followed by `m` missing values: empty in delimited text,
    /// null in JSON and Parquet. Integer columns become floats for it (their
    /// text is the same), dates and flags become text.
    pub fn with_missing(self, m: usize) -> ColumnData {
        let floats = |v: Vec<f64>| {
            let mut v = v;
            v.resize(v.len() + m, f64::NAN);
            ColumnData::Float(v)
        };
        match self {
            ColumnData::Str(mut v) => {
                for _ in 0..m {
                    v.push("");
                }
                ColumnData::Str(v)
            }
            ColumnData::Cat { mut labels, mut codes } => {
                let empty = match labels.iter().position(|l| l.is_empty()) {
                    Some(k) => k,
                    None => {
                        labels.push(String::new());
                        labels.len() - 1
                    }
                };
                codes.resize(codes.len() + m, empty as u16);
                ColumnData::Cat { labels, codes }
            }
            ColumnData::Int(v) => floats(v.into_iter().map(|x| x as f64).collect()),
            ColumnData::I32(v) => floats(v.into_iter().map(f64::from).collect()),
            ColumnData::U8(v) => floats(v.into_iter().map(f64::from).collect()),
            ColumnData::Float(v) => floats(v),
            ColumnData::Date(v) => {
                let mut s = Strings::with_capacity(v.len() + m, v.len() * 10);
                for d in v {
                    s.push(&Day(d).to_string());
                }
                ColumnData::Str(s).with_missing(m)
            }
            ColumnData::Bool(v) => {
                let mut s = Strings::with_capacity(v.len() + m, v.len() * 5);
                for b in v {
                    s.push(if b { "true" } else { "false" });
                }
                ColumnData::Str(s).with_missing(m)
            }
        }
    }

    fn slice(&self, r: Range<usize>) -> ColumnData {
        match self {
            ColumnData::Str(v) => ColumnData::Str(v.slice(r)),
            ColumnData::Cat { labels, codes } => {
                ColumnData::Cat { labels: labels.clone(), codes: codes[r].to_vec() }
            }
            ColumnData::Int(v) => ColumnData::Int(v[r].to_vec()),
            ColumnData::I32(v) => ColumnData::I32(v[r].to_vec()),
            ColumnData::U8(v) => ColumnData::U8(v[r].to_vec()),
            ColumnData::Float(v) => ColumnData::Float(v[r].to_vec()),
            ColumnData::Date(v) => ColumnData::Date(v[r].to_vec()),
            ColumnData::Bool(v) => ColumnData::Bool(v[r].to_vec()),
        }
    }
}

/// A named, typed table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, ColumnData)>,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    pub fn push(&mut self, name: &str, data: ColumnData) {
        debug_assert!(self.columns.is_empty() || self.columns[0].1.len() == data.len());
        self.columns.push((name.to_string(), data));
    }

    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |c| c.1.len())
    }

    /// A copy of the rows in `r`.
    pub fn slice(&self, r: Range<usize>) -> Table {
        Table {
            columns: self.columns.iter().map(|(n, c)| (n.clone(), c.slice(r.clone()))).collect(),
        }
    }
}

/// Where and how to write.
#[derive(Clone, Debug, Default)]
pub struct OutputTarget {
    pub path: Option<PathBuf>,
    pub format: Option<OutputFormat>,
    /// Which columns to write, in what order, under what names.
    pub columns: Option<ColumnSpec>,
    /// CSV/TSV for spreadsheets: a UTF-8 byte-order mark and CRLF line ends.
    pub excel: bool,
    /// The CSV field separator, instead of ','.
    pub delimiter: Option<u8>,
}

/// `--columns`: output columns chosen, ordered and renamed, as
/// (column, header) pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSpec(pub Vec<(String, String)>);

impl ColumnSpec {
    /// Parses `COL[:NAME],...`; a part may be double-quoted to hold a comma.
    pub fn parse(spec: &str) -> Result<ColumnSpec, String> {
        let mut parts = vec![String::new()];
        let mut quoted = false;
        for ch in spec.chars() {
            match ch {
                '"' => quoted = !quoted,
                ',' if !quoted => parts.push(String::new()),
                _ => parts.last_mut().expect("one part").push(ch),
            }
        }
        if quoted {
            return Err(format!("unbalanced quote in --columns '{spec}'"));
        }
        let mut out = Vec::new();
        for part in parts {
            let (col, name) = match part.split_once(':') {
                Some((c, n)) => (c.trim().to_string(), n.trim().to_string()),
                None => (part.trim().to_string(), part.trim().to_string()),
            };
            if col.is_empty() || name.is_empty() {
                return Err(format!(
                    "empty column in --columns '{spec}'; write COL or COL:NAME, separated by commas"
                ));
            }
            out.push((col, name));
        }
        Ok(ColumnSpec(out))
    }

    /// The table's columns picked and renamed; an unknown column is a usage
    /// error that lists the available ones.
    pub fn apply(&self, mut table: Table) -> Result<Table> {
        let mut out = Table::new();
        for (col, name) in &self.0 {
            let Some(k) = table.columns.iter().position(|(n, _)| n == col) else {
                let available: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
                bail!(UsageError(format!(
                    "--columns: no column '{col}'; the available columns are: {}",
                    available.join(", ")
                )));
            };
            // A column may be written twice under two names.
            let data = if self.0.iter().filter(|(c, _)| c == col).count() > 1 {
                table.columns[k].1.clone()
            } else {
                std::mem::replace(&mut table.columns[k].1, ColumnData::Bool(Vec::new()))
            };
            out.columns.push((name.clone(), data));
        }
        Ok(out)
    }
}

impl OutputTarget {
    /// The format: `--output-format`, else the file's extension, else CSV.
    pub fn resolved_format(&self) -> Result<OutputFormat> {
        if let Some(f) = self.format {
            return Ok(f);
        }
        let Some(p) = &self.path else {
            return Ok(OutputFormat::Csv);
        };
        if p.as_os_str() == "-" {
            return Ok(OutputFormat::Csv);
        }
        let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        Ok(match ext.as_str() {
            "csv" => OutputFormat::Csv,
            "tsv" | "tab" => OutputFormat::Tsv,
            "parquet" | "pq" => OutputFormat::Parquet,
            "json" => OutputFormat::Json,
            "ndjson" | "jsonl" => OutputFormat::Ndjson,
            _ => bail!(UsageError(format!(
                "cannot tell the output format of {} from its extension; use .csv, .tsv, .parquet, .json, .ndjson or --output-format",
                p.display()
            ))),
        })
    }

    fn file(&self) -> Option<&Path> {
        self.path.as_deref().filter(|p| p.as_os_str() != "-")
    }
}

/// Writes `table` to the target.
pub fn write_table(table: &Table, target: &OutputTarget) -> Result<()> {
    write_blocks(target, table.height(), |r| table.slice(r))
}

/// Produces the rows in a range as a table (the same columns for every
/// range, the empty one included).
pub type Blocks<'a> = dyn Fn(Range<usize>) -> Table + Sync + 'a;

/// Writes a table of `rows` rows that is produced a block at a time. Blocks
/// are built and formatted in parallel and written in order, so a list of
/// millions of customers never exists whole in memory, and gathering its
/// columns from scattered scores is spread over every core.
pub fn write_blocks(
    target: &OutputTarget,
    rows: usize,
    block: impl Fn(Range<usize>) -> Table + Sync,
) -> Result<()> {
    let format = target.resolved_format()?;
    if let Some(spec) = &target.columns {
        // Checked once here, so that every block below can be projected.
        spec.apply(block(0..0))?;
        let projected = |r: Range<usize>| spec.apply(block(r)).expect("columns checked");
        return write_formatted(target, format, rows, &projected);
    }
    write_formatted(target, format, rows, &block)
}

fn write_formatted(
    target: &OutputTarget,
    format: OutputFormat,
    rows: usize,
    block: &Blocks,
) -> Result<()> {
    let style = TextStyle::of(target, format)?;
    match target.file() {
        None => {
            if format == OutputFormat::Parquet {
                bail!(UsageError("Parquet output needs a file: pass -o FILE.parquet".into()));
            }
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
            write_to(format, style, rows, block, &mut w).context("writing to stdout")?;
            w.flush().context("writing to stdout")?;
            Ok(())
        }
        Some(path) => atomic_write(path, |w| write_to(format, style, rows, block, w)),
    }
}

/// How delimited text is laid out.
#[derive(Clone, Copy, Debug)]
pub struct TextStyle {
    delimiter: u8,
    /// A UTF-8 byte-order mark and CRLF line ends (`--excel`).
    excel: bool,
}

impl TextStyle {
    fn of(target: &OutputTarget, format: OutputFormat) -> Result<TextStyle> {
        let text = matches!(format, OutputFormat::Csv | OutputFormat::Tsv);
        if !text && (target.excel || target.delimiter.is_some()) {
            bail!(UsageError(format!(
                "--excel and --output-delimiter apply to CSV and TSV output, not {}",
                format!("{format:?}").to_lowercase()
            )));
        }
        let default = if format == OutputFormat::Tsv { b'\t' } else { b',' };
        Ok(TextStyle { delimiter: target.delimiter.unwrap_or(default), excel: target.excel })
    }

    /// Checks the options against the format before any work is done.
    pub fn check(target: &OutputTarget) -> Result<()> {
        TextStyle::of(target, target.resolved_format()?).map(|_| ())
    }

    fn end_line(self, out: &mut Vec<u8>) {
        if self.excel {
            out.push(b'\r');
        }
        out.push(b'\n');
    }
}

/// Writes a finished document (a report, a chart) to a file, atomically, or
/// to stdout when there is no path or it is '-'.
pub fn write_document(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => atomic_write(p, |w| Ok(w.write_all(bytes)?)),
        None => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|_| out.flush()).context("writing to stdout")
        }
    }
}

/// The directory a file is written in (its temporary file goes there too).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks, before any input is read, that `path` can be written: it is not a
/// directory, and its directory exists and takes a new file. A run that
/// would fail only after minutes of work should fail at once.
pub fn check_destination(path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    if path.is_dir() {
        bail!("cannot write {}: it is a directory; give a file name", path.display());
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!("cannot write {}: the directory {} does not exist", path.display(), dir.display());
    }
    let probe = tempfile::Builder::new()
        .prefix(".churn-probe-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| {
        format!("cannot write {}: cannot create a file in {}", path.display(), dir.display())
    })?;
    let probe_path = probe.path().to_path_buf();
    pending().push(probe_path.clone());
    drop(probe);
    pending().retain(|p| *p != probe_path);
    Ok(())
}

/// Temporary files being written (and spill directories), removed by [`remove_pending_files`] when
/// the process is interrupted (a killed process cannot clean up, but an
/// interrupted one should leave nothing behind).
static PENDING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes the temporary files of writes in progress; for the handler of
/// Ctrl-C and SIGTERM, just before the process exits.
pub fn remove_pending_files() {
    for p in pending().drain(..) {
        if std::fs::remove_file(&p).is_err() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Runs `write` against a temporary file beside `path`, then renames it into place.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    let tmp = tempfile::Builder::new()
        .prefix(".churn-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let tmp_path = tmp.path().to_path_buf();
    pending().push(tmp_path.clone());
    let result = write_and_rename(tmp, path, write);
    pending().retain(|p| *p != tmp_path);
    result
}

fn write_and_rename(
    mut tmp: tempfile::NamedTempFile,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut w).with_context(|| format!("writing {}", path.display()))?;
        w.flush().with_context(|| format!("writing {}", path.display()))?;
    }
    tmp.as_file().sync_all().with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0o644);
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode));
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn write_to(
    format: OutputFormat,
    style: TextStyle,
    rows: usize,
    block: &Blocks,
    w: &mut dyn Write,
) -> Result<()> {
    if format == OutputFormat::Parquet {
        return write_parquet(rows, block, w);
    }
    let head = block(0..0);
    let names = head.columns.iter().map(|(n, _)| n.as_str());
    match format {
        OutputFormat::Csv | OutputFormat::Tsv => {
            let delim = style.delimiter;
            let mut header = Vec::new();
            if style.excel {
                header.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for (k, name) in names.enumerate() {
                if k > 0 {
                    header.push(delim);
                }
                push_field(name, delim, &mut header);
            }
            style.end_line(&mut header);
            w.write_all(&header)?;
            write_rows(rows, block, w, |t, i, _, out| {
                push_delimited_row(t, i, delim, out);
                style.end_line(out);
            })?;
        }
        OutputFormat::Json | OutputFormat::Ndjson => {
            let keys: Vec<String> =
                names.map(|n| serde_json::to_string(n).expect("a string serialises")).collect();
            if format == OutputFormat::Ndjson {
                write_rows(rows, block, w, |t, i, _, out| {
                    push_json_row(t, &keys, i, out);
                    out.push(b'\n');
                })?;
            } else {
                w.write_all(b"[")?;
                write_rows(rows, block, w, |t, i, row, out| {
                    out.extend_from_slice(if row == 0 { b"\n" } else { b",\n" });
                    push_json_row(t, &keys, i, out);
                })?;
                w.write_all(if rows == 0 { b"]\n" } else { b"\n]\n" })?;
            }
        }
        OutputFormat::Parquet => unreachable!("handled above"),
    }
    Ok(())
}

/// A float in its shortest round-trip form: `145`, `0.1`, `5.76e-9`,
/// `1e16` (no trailing `.0`, no negative zero, an exponent only for very
/// small or large magnitudes). Non-finite values are written as nothing.
pub fn push_float(v: f64, out: &mut Vec<u8>) {
    if v == 0.0 {
        out.push(b'0');
    } else if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v).as_bytes();
        // ryu writes whole numbers as "145.0" and "1.0e16": drop the ".0".
        match s.iter().position(|&b| b == b'.') {
            Some(i) if s.get(i + 1) == Some(&b'0') && matches!(s.get(i + 2), None | Some(b'e')) => {
                out.extend_from_slice(&s[..i]);
                out.extend_from_slice(&s[i + 2..]);
            }
            _ => out.extend_from_slice(s),
        }
    }
}

fn push_date(day: i32, out: &mut Vec<u8>) {
    let (y, m, d) = crate::base::dates::civil_from_days(day);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    } else {
        let _ = write!(out, "{}", Day(day));
    }
}

/// The text of a non-string cell.
fn push_plain(col: &ColumnData, i: usize, out: &mut Vec<u8>) {
    match col {
        ColumnData::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(v[i]).as_bytes()),
        ColumnData::I32(v) => out.extend_from_slice(itoa::Buffer::new().format(v[i]).as_bytes()),
        ColumnData::U8(v) => out.extend_from_slice(itoa::Buffer::new().format(v[i]).as_bytes()),
        ColumnData::Float(v) => push_float(v[i], out),
        ColumnData::Date(v) => push_date(v[i], out),
        ColumnData::Bool(v) => out.extend_from_slice(if v[i] { b"true" } else { b"false" }),
        ColumnData::Str(_) | ColumnData::Cat { .. } => {
            unreachable!("strings are escaped by the caller")
        }
    }
}

fn str_cell(col: &ColumnData, i: usize) -> Option<&str> {
    match col {
        ColumnData::Str(v) => Some(v.get(i)),
        ColumnData::Cat { labels, codes } => Some(&labels[codes[i] as usize]),
        _ => None,
    }
}

/// A delimited-text field, quoted only when it must be (RFC 4180).
fn push_field(s: &str, delim: u8, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    if b.iter().any(|&c| c == delim || c == b'"' || c == b'\n' || c == b'\r') {
        out.push(b'"');
        for &c in b {
            if c == b'"' {
                out.push(b'"');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(b);
    }
}

fn push_delimited_row(table: &Table, i: usize, delim: u8, out: &mut Vec<u8>) {
    for (k, (_, col)) in table.columns.iter().enumerate() {
        if k > 0 {
            out.push(delim);
        }
        match str_cell(col, i) {
            Some(s) => push_field(s, delim, out),
            None => push_plain(col, i, out),
        }
    }
}

fn push_json_row(table: &Table, keys: &[String], i: usize, out: &mut Vec<u8>) {
    out.push(b'{');
    for (k, (_, col)) in table.columns.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(keys[k].as_bytes());
        out.push(b':');
        match (str_cell(col, i), col) {
            (Some(s), _) => {
                let _ = serde_json::to_writer(&mut *out, s);
            }
            (None, ColumnData::Date(_)) => {
                out.push(b'"');
                push_plain(col, i, out);
                out.push(b'"');
            }
            (None, ColumnData::Float(v)) if !v[i].is_finite() => out.extend_from_slice(b"null"),
            (None, _) => push_plain(col, i, out),
        }
    }
    out.push(b'}');
}

/// Builds and formats blocks of rows in parallel and writes them in order.
/// `row(table, i, row, out)` formats row `i` of a block, which is row `row`
/// of the whole table.
fn write_rows(
    rows: usize,
    block: &Blocks,
    w: &mut dyn Write,
    row: impl Fn(&Table, usize, usize, &mut Vec<u8>) + Sync,
) -> io::Result<()> {
    use rayon::prelude::*;
    const BLOCK: usize = 16 * 1024;
    let starts: Vec<usize> = (0..rows).step_by(BLOCK).collect();
    let per_window = rayon::current_num_threads().max(1) * 4;
    let format = |buffers: &mut [Vec<u8>], window: &[usize]| {
        buffers.par_iter_mut().zip(window).for_each(|(buf, &s)| {
            buf.clear();
            let t = block(s..(s + BLOCK).min(rows));
            for i in 0..t.height() {
                row(&t, i, s + i, buf);
            }
        });
    };
    // Two sets of buffers, reused for every window (no fresh pages to fault
    // in): while one window is written, the next is formatted.
    let n = per_window.min(starts.len());
    let (mut ready, mut next): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        (vec![Vec::new(); n], vec![Vec::new(); n]);
    let windows: Vec<&[usize]> = starts.chunks(per_window).collect();
    if let Some(first) = windows.first() {
        format(&mut ready, first);
    }
    for (k, window) in windows.iter().enumerate() {
        let mut written = Ok(());
        rayon::in_place_scope(|scope| {
            if let Some(following) = windows.get(k + 1) {
                let next = &mut next;
                let format = &format;
                scope.spawn(move |_| format(next, following));
            }
            written = ready[..window.len()].iter().try_for_each(|b| w.write_all(b));
        });
        written?;
        std::mem::swap(&mut ready, &mut next);
    }
    Ok(())
}

/// Parquet in row groups of up to 1M rows, each built from its block.
fn write_parquet(rows: usize, block: &Blocks, w: &mut dyn Write) -> Result<()> {
    use polars::prelude::*;
    const GROUP: usize = 1 << 20;
    let mut writer = None;
    let mut start = 0;
    loop {
        let end = (start + GROUP).min(rows);
        let df = dataframe(&block(start..end))?;
        if writer.is_none() {
            writer = Some(ParquetWriter::new(&mut *w).batched(df.schema())?);
        }
        if df.height() > 0 || rows == 0 {
            writer.as_mut().expect("created above").write_batch(&df)?;
        }
        start = end;
        if start >= rows {
            break;
        }
    }
    writer.expect("at least one block").finish()?;
    Ok(())
}

fn dataframe(table: &Table) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let mut cols: Vec<Column> = Vec::with_capacity(table.columns.len());
    for (name, data) in &table.columns {
        let name = PlSmallStr::from(name.as_str());
        let s = match data {
            ColumnData::Str(v) => {
                Series::new(name, (0..v.len()).map(|i| v.get(i)).collect::<Vec<_>>())
            }
            ColumnData::Cat { labels, codes } => Series::new(
                name,
                codes.iter().map(|&c| labels[c as usize].as_str()).collect::<Vec<_>>(),
            ),
            ColumnData::Int(v) => Series::new(name, v),
            ColumnData::I32(v) => Series::new(name, v),
            ColumnData::U8(v) => Series::new(name, v.iter().map(|&x| x as i32).collect::<Vec<_>>()),
            ColumnData::Float(v) => Series::new(name, v),
            ColumnData::Bool(v) => Series::new(name, v),
            ColumnData::Date(v) => {
                Int32Chunked::from_vec(name, v.clone()).into_date().into_series()
            }
        };
        cols.push(s.into());
    }
    Ok(DataFrame::new(table.height(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(format: OutputFormat) -> TextStyle {
        TextStyle::of(&OutputTarget::default(), format).unwrap()
    }

    #[test]
    fn missing_values_are_empty_in_text_and_null_in_json() {
        let mut t = Table::new();
        t.push("n", ColumnData::I32(vec![3]));
        t.push("d", ColumnData::Date(vec![19727]));
        t.push("c", ColumnData::Cat { labels: vec!["x".into()], codes: vec![0] });
        t.push("b", ColumnData::Bool(vec![true]));
        let t =
            Table { columns: t.columns.into_iter().map(|(n, c)| (n, c.with_missing(2))).collect() };
        let mut csv = Vec::new();
        write_to(OutputFormat::Csv, plain(OutputFormat::Csv), 3, &|r| t.slice(r), &mut csv)
            .unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "n,d,c,b\n3,2024-01-05,x,true\n,,,\n,,,\n");
        let mut json = Vec::new();
        write_to(OutputFormat::Ndjson, plain(OutputFormat::Ndjson), 2, &|r| t.slice(r), &mut json)
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\"n\":3,\"d\":\"2024-01-05\",\"c\":\"x\",\"b\":\"true\"}\n{\"n\":null,\"d\":\"\",\"c\":\"\",\"b\":\"\"}\n"
        );
    }

    fn sample() -> Table {
        let mut t = Table::new();
        t.push("id", ColumnData::Str(["a", "b,\"c\""].into_iter().collect()));
        t.push(
            "seg",
            ColumnData::Cat { labels: vec!["x y".into(), "z".into()], codes: vec![1, 0] },
        );
        t.push("n", ColumnData::Int(vec![1, -2]));
        t.push("x", ColumnData::Float(vec![0.1 + 0.2, -0.0]));
        t.push("d", ColumnData::Date(vec![0, 19_782]));
        t.push("p", ColumnData::Bool(vec![true, false]));
        t
    }

    fn render(f: OutputFormat) -> String {
        let mut out = Vec::new();
        let t = sample();
        write_to(f, plain(f), t.height(), &|r| t.slice(r), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_across_many_blocks_stay_in_order() {
        let n = 40_000; // more than two blocks of 16k rows
        let mut t = Table::new();
        t.push("id", ColumnData::Str((0..n).map(|i| format!("c{i}")).collect()));
        t.push("x", ColumnData::Float((0..n).map(|i| i as f64 / 4.0).collect()));
        let mut csv = Vec::new();
        write_to(OutputFormat::Csv, plain(OutputFormat::Csv), n, &|r| t.slice(r), &mut csv)
            .unwrap();
        let want: String = std::iter::once("id,x\n".to_string())
            .chain((0..n).map(|i| {
                let mut x = Vec::new();
                push_float(i as f64 / 4.0, &mut x);
                format!("c{i},{}\n", String::from_utf8(x).unwrap())
            }))
            .collect();
        assert_eq!(String::from_utf8(csv).unwrap(), want);
        let mut json = Vec::new();
        write_to(OutputFormat::Json, plain(OutputFormat::Json), n, &|r| t.slice(r), &mut json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v.as_array().unwrap().len(), n);
        assert_eq!(v[n - 1]["id"], format!("c{}", n - 1));
        let mut empty = Vec::new();
        write_to(OutputFormat::Json, plain(OutputFormat::Json), 0, &|r| t.slice(r), &mut empty)
            .unwrap();
        assert_eq!(empty, b"[]\n");
    }

    #[test]
    fn csv_quotes_and_floats() {
        assert_eq!(
            render(OutputFormat::Csv),
            "id,seg,n,x,d,p\na,z,1,0.30000000000000004,1970-01-01,true\n\"b,\"\"c\"\"\",x y,-2,0,2024-02-29,false\n"
        );
    }

    #[test]
    fn floats_are_shortest_round_trip() {
        let show = |v: f64| {
            let mut b = Vec::new();
            push_float(v, &mut b);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(show(145.0), "145");
        assert_eq!(show(-17.6), "-17.6");
        assert_eq!(show(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(show(5.762296258363846e-9), "5.762296258363846e-9");
        assert_eq!(show(1e16), "1e16");
        assert_eq!(show(123456789012345.0), "123456789012345");
        assert_eq!(show(-0.0), "0");
        assert_eq!(show(f64::NAN), "");
        for v in [1.0 / 3.0, 2.5e-300, 1.7976931348623157e308, 0.000123] {
            assert_eq!(show(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn json_forms() {
        let j = render(OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v[1]["id"], "b,\"c\"");
        assert_eq!(v[0]["x"], 0.30000000000000004);
        assert_eq!(v[1]["d"], "2024-02-29");
        let nd = render(OutputFormat::Ndjson);
        assert_eq!(nd.lines().count(), 2);
        for line in nd.lines() {
            let _: serde_json::Value = serde_json::from_str(line).unwrap();
        }
    }
}
