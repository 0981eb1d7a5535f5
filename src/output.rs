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
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::dates::Day;
use crate::UsageError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Csv,
    Tsv,
    Parquet,
    Json,
    Ndjson,
}

/// A column of a result table.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Str(Vec<String>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    /// Day numbers, written as YYYY-MM-DD (a Date in Parquet).
    Date(Vec<i32>),
    Bool(Vec<bool>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Str(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Date(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}

/// Where and how to write.
#[derive(Clone, Debug, Default)]
pub struct OutputTarget {
    pub path: Option<PathBuf>,
    pub format: Option<OutputFormat>,
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
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
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
    let format = target.resolved_format()?;
    match target.file() {
        None => {
            if format == OutputFormat::Parquet {
                bail!(UsageError(
                    "Parquet output needs a file: pass -o FILE.parquet".into()
                ));
            }
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
            write_to(table, format, &mut w).context("writing to stdout")?;
            w.flush().context("writing to stdout")?;
            Ok(())
        }
        Some(path) => atomic_write(path, |w| write_to(table, format, w)),
    }
}

/// Runs `write` against a temporary file beside `path`, then renames it into place.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".churn-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut w).with_context(|| format!("writing {}", path.display()))?;
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode));
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn write_to(table: &Table, format: OutputFormat, w: &mut dyn Write) -> Result<()> {
    match format {
        OutputFormat::Csv => write_delimited(table, b',', w),
        OutputFormat::Tsv => write_delimited(table, b'\t', w),
        OutputFormat::Json => write_json(table, w, false),
        OutputFormat::Ndjson => write_json(table, w, true),
        OutputFormat::Parquet => write_parquet(table, w),
    }
}

/// A float in its shortest round-trip form, without a negative zero.
pub fn fmt_float(v: f64, out: &mut String) {
    use std::fmt::Write as _;
    if v == 0.0 {
        out.push('0');
    } else if v.is_finite() {
        let _ = write!(out, "{v}");
    }
}

fn cell(col: &ColumnData, i: usize, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    match col {
        ColumnData::Str(v) => out.push_str(&v[i]),
        ColumnData::Int(v) => {
            let _ = write!(out, "{}", v[i]);
        }
        ColumnData::Float(v) => fmt_float(v[i], out),
        ColumnData::Date(v) => {
            let _ = write!(out, "{}", Day(v[i]));
        }
        ColumnData::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
    }
}

fn write_delimited(table: &Table, delim: u8, w: &mut dyn Write) -> Result<()> {
    let mut wtr = csv::WriterBuilder::new().delimiter(delim).from_writer(w);
    wtr.write_record(table.columns.iter().map(|(n, _)| n.as_str()))?;
    let mut bufs: Vec<String> = vec![String::new(); table.columns.len()];
    for i in 0..table.height() {
        for (k, (_, col)) in table.columns.iter().enumerate() {
            cell(col, i, &mut bufs[k]);
        }
        wtr.write_record(bufs.iter().map(|s| s.as_bytes()))?;
    }
    wtr.flush()?;
    Ok(())
}

fn write_json(table: &Table, w: &mut dyn Write, lines: bool) -> Result<()> {
    let keys: Vec<String> = table
        .columns
        .iter()
        .map(|(n, _)| serde_json::to_string(n).expect("a string serialises"))
        .collect();
    let mut buf = String::new();
    if !lines {
        w.write_all(b"[")?;
    }
    for i in 0..table.height() {
        if !lines {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        }
        w.write_all(b"{")?;
        for (k, (_, col)) in table.columns.iter().enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            w.write_all(keys[k].as_bytes())?;
            w.write_all(b":")?;
            match col {
                ColumnData::Str(v) => serde_json::to_writer(&mut *w, &v[i])?,
                ColumnData::Date(_) => {
                    cell(col, i, &mut buf);
                    serde_json::to_writer(&mut *w, &buf)?
                }
                ColumnData::Float(v) if !v[i].is_finite() => w.write_all(b"null")?,
                _ => {
                    cell(col, i, &mut buf);
                    w.write_all(buf.as_bytes())?
                }
            }
        }
        w.write_all(b"}")?;
        if lines {
            w.write_all(b"\n")?;
        }
    }
    if !lines {
        w.write_all(if table.height() == 0 {
            b"]\n"
        } else {
            b"\n]\n"
        })?;
    }
    Ok(())
}

fn write_parquet(table: &Table, w: &mut dyn Write) -> Result<()> {
    use polars::prelude::*;
    let mut cols: Vec<Column> = Vec::with_capacity(table.columns.len());
    for (name, data) in &table.columns {
        let name = PlSmallStr::from(name.as_str());
        let s = match data {
            ColumnData::Str(v) => Series::new(name, v),
            ColumnData::Int(v) => Series::new(name, v),
            ColumnData::Float(v) => Series::new(name, v),
            ColumnData::Bool(v) => Series::new(name, v),
            ColumnData::Date(v) => Int32Chunked::from_vec(name, v.clone())
                .into_date()
                .into_series(),
        };
        cols.push(s.into());
    }
    let mut df = DataFrame::new(table.height(), cols)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df)?;
    w.write_all(&bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new();
        t.push("id", ColumnData::Str(vec!["a".into(), "b,\"c\"".into()]));
        t.push("n", ColumnData::Int(vec![1, -2]));
        t.push("x", ColumnData::Float(vec![0.1 + 0.2, -0.0]));
        t.push("d", ColumnData::Date(vec![0, 19_782]));
        t.push("p", ColumnData::Bool(vec![true, false]));
        t
    }

    fn render(f: OutputFormat) -> String {
        let mut out = Vec::new();
        write_to(&sample(), f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_and_floats() {
        assert_eq!(
            render(OutputFormat::Csv),
            "id,n,x,d,p\na,1,0.30000000000000004,1970-01-01,true\n\"b,\"\"c\"\"\",-2,0,2024-02-29,false\n"
        );
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
