//! Inputs larger than memory: the rows go to disk in partitions by customer,
//! and each partition is read back and analysed on its own.
//!
//! Every analysis is per customer until the very end (quantile cut points,
//! model fits and cohort totals come from per-customer figures), and a
//! customer's rows all land in one partition because the partition is
//! chosen by a hash of the id. So the rows need never be in memory all at
//! once: memory grows with the largest partition and the number of
//! customers, not with the number of rows. Within a partition the rows keep
//! their input order, so each customer's figures are exactly those of the
//! in-memory engine.
//!
//! The partition files are binary, one record per row, in a temporary
//! directory (`--temp-dir`, else `$TMPDIR`), deleted as they are read and
//! removed with the directory at the end or on Ctrl-C.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{
    analysis_date, cut_rows, no_usable_rows, nothing_before_as_of, read_sources, Batch, BatchSink,
    Builder, InputFormat, LoadOptions, LoadReport, Skips, Transactions,
};
use crate::base::progress::Progress;

crate::named_enum! {
    /// How the rows are held.
    #[derive(Default)]
    pub enum Engine {
        #[default]
        Auto = ("auto", "streaming when the input looks too large for half the available memory"),
        Memory = ("memory", "All rows in memory (about 24 bytes a row): fastest"),
        Streaming = ("streaming", "Rows spilled to disk by customer and analysed a partition at a time"),
    }
}

/// Input bytes per partition: a partition of CSV this size takes a few
/// hundred MB in memory.
const PARTITION_INPUT_BYTES: u64 = 256 << 20;
const MAX_PARTITIONS: usize = 256;

/// Parses the transactions, handing them to `analyse` whole (memory engine)
/// or a partition at a time (streaming engine), and returns its results in
/// partition order. A customer's rows are all in one call.
pub fn load_each<T>(
    opts: &LoadOptions,
    engine: Engine,
    temp_dir: Option<&Path>,
    progress: &Progress,
    mut analyse: impl FnMut(Transactions) -> Result<T>,
) -> Result<(Vec<T>, LoadReport)> {
    let partitions = match engine {
        Engine::Memory => None,
        Engine::Streaming => Some(
            // Tests set the count, to see many partitions on small files.
            std::env::var("CHURN_SPILL_PARTITIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| (1..=MAX_PARTITIONS).contains(&n))
                .or_else(|| partition_count(opts))
                .unwrap_or(64),
        ),
        Engine::Auto => partition_count(opts).filter(|_| too_large_for_memory(opts)),
    };
    let Some(partitions) = partitions else {
        let (tx, report) = super::load(opts, progress)?;
        // The reader's buffers are freed: return them before the analysis.
        crate::base::release_freed_memory();
        progress.stage("load");
        return Ok((vec![analyse(tx)?], report));
    };
    let dir = temp_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let mut spill = Spill::new(partitions, &dir)?;
    progress.note(&format!("engine: streaming, {partitions} partitions in {}", dir.display()));
    let read = read_sources(opts, &mut spill, progress);
    let written = spill.finish_writing();
    let (mapping, mut report) = read?;
    written?;
    progress.stage("spill");
    report.skipped = spill.skipped;
    if spill.rows == 0 {
        bail!(no_usable_rows(&report));
    }
    report.first_day = Some(spill.first_day);
    report.last_day = Some(spill.last_day);
    let as_of = analysis_date(opts, &mut report);
    let bar = progress.steps(partitions as u64, "analysing partitions");
    let mut results = Vec::new();
    for path in &spill.paths {
        let (mut tx, kept) = read_partition(path, opts.keep.len())
            .with_context(|| format!("reading back the spilled rows in {}", path.display()))?;
        let _ = std::fs::remove_file(path);
        cut_rows(&mut tx, kept, as_of, opts, &mapping, &mut report);
        crate::base::release_freed_memory();
        if !tx.is_empty() {
            results.push(analyse(tx)?);
            // The partition's rows are freed: return them before the next one.
            crate::base::release_freed_memory();
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if results.is_empty() {
        bail!(nothing_before_as_of(&report, as_of));
    }
    Ok((results, report))
}

/// How many partitions suit the inputs, from their sizes; None for
/// standard input, whose size is unknown.
fn partition_count(opts: &LoadOptions) -> Option<usize> {
    csv_equivalent_bytes(opts).map(partitions_for)
}

fn partitions_for(csv_bytes: u64) -> usize {
    csv_bytes.div_ceil(PARTITION_INPUT_BYTES).clamp(2, MAX_PARTITIONS as u64) as usize
}

/// The inputs' size as if they were plain CSV: Parquet and gzip hold about
/// four times their size in CSV text.
fn csv_equivalent_bytes(opts: &LoadOptions) -> Option<u64> {
    let sources = super::sources(opts).ok()?;
    let mut total = 0u64;
    for src in sources {
        let size = std::fs::metadata(src.path.as_ref()?).ok()?.len();
        let compressed = src.format == InputFormat::Parquet || src.gzip;
        total += if compressed { size * 4 } else { size };
    }
    Some(total)
}

/// Whether holding the rows would take more than half the available memory:
/// the in-memory engine peaks at about 1.4 times the CSV size (measured:
/// 5.8 GB for 4.4 GB of CSV with 100M rows).
fn too_large_for_memory(opts: &LoadOptions) -> bool {
    match (csv_equivalent_bytes(opts), available_memory()) {
        (Some(bytes), Some(available)) => needs_streaming(bytes, available),
        _ => false,
    }
}

fn needs_streaming(csv_bytes: u64, available: u64) -> bool {
    csv_bytes.saturating_mul(14) / 10 > available / 2
}

/// MemAvailable from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The partition files being written.
struct Spill {
    dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
    /// The first write error; later rows are not written.
    error: Option<io::Error>,
    skipped: Skips,
    rows: u64,
    first_day: i32,
    last_day: i32,
}

impl Spill {
    fn new(partitions: usize, dir: &Path) -> Result<Spill> {
        let dir = tempfile::Builder::new().prefix(".churn-spill-").tempdir_in(dir).with_context(
            || format!("cannot create a spill directory in {} (--temp-dir)", dir.display()),
        )?;
        crate::io::output::pending().push(dir.path().to_path_buf());
        let mut paths = Vec::with_capacity(partitions);
        let mut writers = Vec::with_capacity(partitions);
        for p in 0..partitions {
            let path = dir.path().join(format!("part-{p:03}.bin"));
            let file = File::create(&path)
                .with_context(|| format!("cannot create the spill file {}", path.display()))?;
            writers.push(BufWriter::with_capacity(1 << 18, file));
            paths.push(path);
        }
        Ok(Spill {
            dir,
            paths,
            writers,
            error: None,
            skipped: Skips::default(),
            rows: 0,
            first_day: i32::MAX,
            last_day: i32::MIN,
        })
    }

    fn finish_writing(&mut self) -> Result<()> {
        for w in &mut self.writers {
            if let Err(e) = w.flush() {
                self.error.get_or_insert(e);
            }
        }
        self.writers.clear();
        match self.error.take() {
            Some(e) => Err(e).with_context(|| {
                format!(
                    "cannot write spilled rows to {} (is the disk full? use --temp-dir)",
                    self.dir.path().display()
                )
            }),
            None => Ok(()),
        }
    }

    fn write_row(&mut self, b: &Batch, r: usize, kept_per_row: usize) -> io::Result<()> {
        let w = &mut self.writers[partition_of(b.key_hash[r], self.paths.len())];
        let key = b.key(r);
        w.write_all(&(key.len() as u32).to_le_bytes())?;
        w.write_all(key)?;
        w.write_all(&b.day[r].to_le_bytes())?;
        w.write_all(&b.amount[r].to_le_bytes())?;
        match b.order.get(r) {
            Some(o) => {
                w.write_all(&[1])?;
                w.write_all(&o.to_le_bytes())?;
            }
            None => w.write_all(&[0])?,
        }
        for k in 0..kept_per_row {
            let i = r * kept_per_row + k;
            let start = if i == 0 { 0 } else { b.kept_ends[i - 1] as usize };
            let value = &b.kept_bytes[start..b.kept_ends[i] as usize];
            w.write_all(&(value.len() as u32).to_le_bytes())?;
            w.write_all(value)?;
        }
        Ok(())
    }
}

/// A customer's partition: the high half of its id's hash, scaled onto
/// `0..partitions`.
pub(crate) fn partition_of(hash: u64, partitions: usize) -> usize {
    (((hash >> 32) * partitions as u64) >> 32) as usize
}

impl BatchSink for Spill {
    fn push_window(&mut self, window: &mut [Batch]) {
        for b in window.iter() {
            self.skipped.add(&b.skipped);
            let rows = b.day.len();
            self.rows += rows as u64;
            for &d in &b.day {
                self.first_day = self.first_day.min(d);
                self.last_day = self.last_day.max(d);
            }
            if self.error.is_some() || rows == 0 {
                continue;
            }
            let kept_per_row = b.kept_ends.len() / rows;
            for r in 0..rows {
                if let Err(e) = self.write_row(b, r, kept_per_row) {
                    self.error = Some(e);
                    break;
                }
            }
        }
    }

    fn reserve(&mut self, _rows: usize, _with_order: bool) {}

    fn failed(&self) -> bool {
        self.error.is_some()
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let path = self.dir.path().to_path_buf();
        crate::io::output::pending().retain(|p| *p != path);
    }
}

/// Rows of a partition file, as the in-memory reader would have built them.
fn read_partition(path: &Path, kept_per_row: usize) -> Result<(Transactions, super::CustomerIds)> {
    const BATCH_ROWS: usize = 1 << 20;
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut builder = Builder::new();
    let mut batch = Batch::default();
    let mut buf = Vec::new();
    let mut word = [0u8; 8];
    loop {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut buf)?;
        batch.push_key(&buf);
        r.read_exact(&mut word[..4])?;
        batch.day.push(i32::from_le_bytes(word[..4].try_into().unwrap()));
        r.read_exact(&mut word)?;
        batch.amount.push(f64::from_le_bytes(word));
        let mut has_order = [0u8; 1];
        r.read_exact(&mut has_order)?;
        if has_order[0] == 1 {
            r.read_exact(&mut word)?;
            batch.order.push(u64::from_le_bytes(word));
        }
        for _ in 0..kept_per_row {
            r.read_exact(&mut len)?;
            buf.resize(u32::from_le_bytes(len) as usize, 0);
            r.read_exact(&mut buf)?;
            batch.push_kept(&buf);
        }
        if batch.day.len() == BATCH_ROWS {
            builder.push_window(std::slice::from_mut(&mut batch));
            batch = std::mem::take(&mut batch).recycle(BATCH_ROWS, 0, false, false);
        }
    }
    if !batch.day.is_empty() {
        builder.push_window(std::slice::from_mut(&mut batch));
    }
    let (tx, _, _, kept) = builder.finish();
    Ok((tx, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    #[test]
    fn auto_streams_what_would_take_more_than_half_the_memory() {
        // 100M rows of CSV (4.4 GB) on a 24 GB machine: in memory.
        assert!(!needs_streaming(4_356_283_245, 22 * GB));
        // The same on a machine with 8 GB free, or ten times the rows: streamed.
        assert!(needs_streaming(4_356_283_245, 8 * GB));
        assert!(needs_streaming(44 * GB, 22 * GB));
        assert!(!needs_streaming(0, 0));
    }

    #[test]
    fn partitions_hold_about_256_mb_of_csv() {
        assert_eq!(partitions_for(0), 2);
        assert_eq!(partitions_for(416_010_454), 2);
        assert_eq!(partitions_for(4_356_283_245), 17);
        assert_eq!(partitions_for(1 << 50), MAX_PARTITIONS);
    }

    #[test]
    fn a_partition_reads_back_the_rows_it_was_given() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut spill = Spill::new(3, dir.path()).unwrap();
        let mut b = Batch::default();
        type Row<'a> = (&'a [u8], i32, f64, u64, &'a [u8]);
        let rows: [Row; 5] = [
            (b"alice", 19000, 12.5, 7, b"a@x"),
            (b"bob", 19001, -3.25, 8, b""),
            (b"alice", 19002, 0.01, 9, b"a@y"),
            (b"", 19003, 1e300, u64::MAX, b"\xff"),
            ("\u{e9}ve".as_bytes(), -25567, 0.0, 0, b"e"),
        ];
        for (key, day, amount, order, kept) in rows {
            b.push_key(key);
            b.day.push(day);
            b.amount.push(amount);
            b.order.push(order);
            b.push_kept(kept);
        }
        spill.push_window(std::slice::from_mut(&mut b));
        spill.finish_writing().unwrap();
        assert_eq!((spill.rows, spill.first_day, spill.last_day), (5, -25567, 19003));
        let mut seen = Vec::new();
        for path in &spill.paths {
            let (tx, kept) = read_partition(path, 1).unwrap();
            let orders = tx.order.clone().unwrap_or_default();
            for (r, &order) in orders.iter().enumerate() {
                let id = tx.ids.get_bytes(tx.customer[r]).to_vec();
                seen.push((id, tx.day[r], tx.amount[r], order, kept.value(r).to_vec()));
            }
        }
        seen.sort_by_key(|r| r.1);
        let want: Vec<_> =
            rows.iter().map(|r| (r.0.to_vec(), r.1, r.2, r.3, r.4.to_vec())).collect();
        let mut want = want;
        want.sort_by_key(|r| r.1);
        assert_eq!(seen, want);
        drop(spill);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
