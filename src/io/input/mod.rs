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

pub mod columns;
mod csv_source;
mod parquet_source;
mod spill;
pub mod summary;

pub use spill::{load_each, Engine};

/// Where the CSV reader may cut text into chunks; public for the fuzzer.
#[doc(hidden)]
pub use csv_source::last_boundary as csv_chunk_boundary;

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::base::dates::DateLayout;
use crate::base::progress::Progress;
use crate::base::text::{count, day_string, thousands};
use crate::base::transactions::{CustomerIds, Transactions};
use crate::base::UsageError;
pub use columns::{ColumnFlags, Mapping};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Tsv,
    Parquet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReturnsPolicy {
    /// Returns reduce monetary value but are never purchases.
    #[default]
    Net,
    /// Returns are ignored.
    Drop,
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

/// Why a row was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    BlankCustomer,
    BadDate,
    DateOutOfRange,
    BadAmount,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::BlankCustomer => "blank customer id",
            SkipReason::BadDate => "unparseable date",
            SkipReason::DateOutOfRange => "date outside 1900-2100",
            SkipReason::BadAmount => "unparseable amount",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skips {
    pub blank_customer: u64,
    pub bad_date: u64,
    pub date_out_of_range: u64,
    pub bad_amount: u64,
}

impl Skips {
    fn add(&mut self, o: &Skips) {
        self.blank_customer += o.blank_customer;
        self.bad_date += o.bad_date;
        self.date_out_of_range += o.date_out_of_range;
        self.bad_amount += o.bad_amount;
    }

    fn bump(&mut self, r: SkipReason) {
        match r {
            SkipReason::BlankCustomer => self.blank_customer += 1,
            SkipReason::BadDate => self.bad_date += 1,
            SkipReason::DateOutOfRange => self.date_out_of_range += 1,
            SkipReason::BadAmount => self.bad_amount += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.blank_customer + self.bad_date + self.date_out_of_range + self.bad_amount
    }

    pub fn by_reason(&self) -> Vec<(SkipReason, u64)> {
        [
            (SkipReason::BlankCustomer, self.blank_customer),
            (SkipReason::BadDate, self.bad_date),
            (SkipReason::DateOutOfRange, self.date_out_of_range),
            (SkipReason::BadAmount, self.bad_amount),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// What happened while reading: for the stderr summary and `churn inspect`.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// (name, data rows) per input.
    pub files: Vec<(String, u64)>,
    pub rows: u64,
    pub mapping: String,
    pub date_layout: String,
    pub skipped: Skips,
    /// Rows dated after the analysis date, ignored.
    pub after_as_of: u64,
    pub returns_dropped: u64,
    /// Rows identical to an earlier row, if counted.
    pub duplicates: Option<u64>,
    /// Date range of all parsed rows, before the as-of cut.
    pub first_day: Option<i32>,
    pub last_day: Option<i32>,
    pub as_of_from_data: bool,
}

impl LoadReport {
    /// The one-line summary printed on stderr.
    pub fn summary(&self, customers: usize) -> String {
        let mut s = format!(
            "read {} from {}; {}",
            count(self.rows, "row"),
            count(self.files.len() as u64, "input"),
            count(customers as u64, "customer")
        );
        let skipped = self.skipped.total();
        if skipped > 0 {
            let parts: Vec<String> = self
                .skipped
                .by_reason()
                .iter()
                .map(|(r, n)| format!("{r}: {}", thousands(*n)))
                .collect();
            s += &format!("; skipped {} ({})", count(skipped, "row"), parts.join(", "));
        }
        if self.after_as_of > 0 {
            s += &format!("; ignored {} after the as-of date", count(self.after_as_of, "row"));
        }
        if self.returns_dropped > 0 {
            s += &format!("; dropped {}", count(self.returns_dropped, "return"));
        }
        s
    }
}

/// One input, as named on the command line.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: Option<PathBuf>,
    pub format: InputFormat,
    pub gzip: bool,
}

impl Source {
    pub fn display(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "<stdin>".to_string(),
        }
    }
}

/// Decides each input's format from `--input-format` or its extension.
pub fn sources(opts: &LoadOptions) -> Result<Vec<Source>> {
    let inputs: Vec<PathBuf> =
        if opts.inputs.is_empty() { vec![PathBuf::from("-")] } else { opts.inputs.clone() };
    if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!(UsageError("standard input ('-') can be given only once".into()));
    }
    inputs
        .into_iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                return Ok(Source {
                    path: None,
                    format: opts.format.unwrap_or(InputFormat::Csv),
                    gzip: false,
                });
            }
            let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            let gzip = name.ends_with(".gz");
            let stem = name.trim_end_matches(".gz");
            let by_ext = if stem.ends_with(".parquet") || stem.ends_with(".pq") {
                Some(InputFormat::Parquet)
            } else if stem.ends_with(".tsv") || stem.ends_with(".tab") {
                Some(InputFormat::Tsv)
            } else if stem.ends_with(".csv") || stem.ends_with(".txt") {
                Some(InputFormat::Csv)
            } else {
                None
            };
            let format = match (opts.format, by_ext) {
                (Some(f), _) => f,
                (None, Some(f)) => f,
                (None, None) => bail!(UsageError(format!(
                    "cannot tell the format of {} from its extension; use --input-format csv|tsv|parquet",
                    p.display()
                ))),
            };
            if format == InputFormat::Parquet && gzip {
                bail!(UsageError(format!("{}: gzip-compressed Parquet is not supported", p.display())));
            }
            Ok(Source { path: Some(p), format, gzip })
        })
        .collect()
}

/// A value that could not be used, with where it was.
#[derive(Debug, Clone)]
pub struct RowError {
    pub file: String,
    /// Line number in a text file, or 1-based row number in a Parquet file.
    pub line: u64,
    pub is_row_number: bool,
    pub column: String,
    pub value: String,
    pub problem: String,
    pub hint: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.is_row_number { "row" } else { "line" };
        write!(f, "{} {at} {}", self.file, self.line)?;
        if !self.column.is_empty() {
            write!(
                f,
                ", column '{}': '{}'",
                self.column.escape_debug(),
                self.value.escape_debug()
            )?;
        }
        write!(f, " {}", self.problem)?;
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for RowError {}

/// What a chunk parser produces: the rows of one chunk, before interning.
#[derive(Default)]
pub(crate) struct Batch {
    pub key_bytes: Vec<u8>,
    pub key_ends: Vec<u32>,
    pub key_hash: Vec<u64>,
    pub day: Vec<i32>,
    pub amount: Vec<f64>,
    pub order: Vec<u64>,
    pub row_hash: Vec<u64>,
    /// Row indices grouped by interning shard, see [`Batch::index_shards`].
    pub shard_rows: Vec<u32>,
    pub shard_starts: Vec<u32>,
    /// Data rows seen (kept or skipped).
    pub rows: u64,
    pub skipped: Skips,
    /// `--keep` values, one per kept column per row, trimmed.
    pub kept_bytes: Vec<u8>,
    pub kept_ends: Vec<u32>,
}

impl Batch {
    pub fn with_capacity(rows: usize, key_bytes: usize, orders: bool, row_hashes: bool) -> Self {
        Batch::default().recycle(rows, key_bytes, orders, row_hashes)
    }

    /// Empties a used batch for the next chunk, keeping its allocations:
    /// fresh multi-megabyte buffers per chunk had the kernel zeroing pages
    /// for a third of the reading time.
    pub fn recycle(
        mut self,
        rows: usize,
        key_bytes: usize,
        orders: bool,
        row_hashes: bool,
    ) -> Self {
        self.key_bytes.clear();
        self.key_ends.clear();
        self.key_hash.clear();
        self.day.clear();
        self.amount.clear();
        self.order.clear();
        self.row_hash.clear();
        self.shard_rows.clear();
        self.shard_starts.clear();
        self.rows = 0;
        self.skipped = Skips::default();
        self.kept_bytes.clear();
        self.kept_ends.clear();
        self.key_bytes.reserve(key_bytes);
        self.key_ends.reserve(rows);
        self.key_hash.reserve(rows);
        self.day.reserve(rows);
        self.amount.reserve(rows);
        if orders {
            self.order.reserve(rows);
        }
        if row_hashes {
            self.row_hash.reserve(rows);
        }
        self
    }

    pub fn push_key(&mut self, key: &[u8]) {
        self.key_bytes.extend_from_slice(key);
        self.key_ends.push(self.key_bytes.len() as u32);
        self.key_hash.push(hash_bytes(key));
    }

    pub fn push_kept(&mut self, value: &[u8]) {
        self.kept_bytes.extend_from_slice(value);
        self.kept_ends.push(self.kept_bytes.len() as u32);
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.key_bytes[self.key_start(i)..self.key_ends[i] as usize]
    }

    fn key_start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.key_ends[i - 1] as usize
        }
    }

    /// The i-th key and its first eight bytes, zero-padded ([`head_of`]),
    /// read as one word where the buffer goes on for eight bytes: copying a
    /// short key into a padded buffer took a `memcpy` call per row.
    #[inline]
    fn key_and_head(&self, i: usize) -> (&[u8], u64) {
        let (start, key) = (self.key_start(i), self.key(i));
        let head = match self.key_bytes.get(start..start + 8) {
            Some(word) => {
                let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
                if key.len() >= 8 {
                    word
                } else {
                    word & ((1u64 << (8 * key.len())) - 1)
                }
            }
            None => head_of(key),
        };
        (key, head)
    }
}

const HASH_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The order key of a row without an order id, a purchase of its own: a
/// hash of its input and its place there (byte or row). Keyed by the place
/// alone, rows of two inputs at the same place were one purchase.
#[inline]
pub(crate) fn own_order(file: usize, place: u64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(file as u64).to_le_bytes());
    bytes[8..].copy_from_slice(&place.to_le_bytes());
    hash_bytes(&bytes) ^ 0x5555_5555
}

#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(HASH_SEED).hash_one(b)
}

/// How one value of a row is turned into data: shared by the CSV and Parquet paths.
pub(crate) struct RowParser<'a> {
    pub layout: &'a DateLayout,
    pub skip_invalid: bool,
}

#[derive(Debug)]
pub(crate) enum Bad {
    Skip(SkipReason),
    Fail { column: usize, value: String, problem: String, hint: String },
}

/// A value without surrounding ASCII space and without a leading UTF-8
/// byte-order mark. The csv crate drops a BOM at the start of the text it
/// reads, which for a chunk is any record; dropping it everywhere keeps a
/// value the same wherever the chunks happen to be cut (the fuzzer found
/// this with a BOM in the middle of a file, as in two exports concatenated,
/// and then with two BOMs in a row).
#[inline]
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    strip_boms(b).trim_ascii()
}

/// `b` without any byte-order marks at its start.
#[inline]
pub fn strip_boms(mut b: &[u8]) -> &[u8] {
    while let Some(rest) = b.strip_prefix(b"\xEF\xBB\xBF") {
        b = rest;
    }
    b
}

/// Parses a plain decimal number.
#[inline]
pub(crate) fn parse_number(b: &[u8]) -> Option<f64> {
    let b = trim(b);
    if let Some(v) = short_decimal(b) {
        return Some(v);
    }
    let v: f64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A decimal of at most 15 digits without an exponent (`-12.50`, `3`,
/// `.5`), the usual amount: its digits make an integer below 2^53 and its
/// scale a power of ten up to 10^15, both exact in a double, so one
/// division gives the correctly rounded value, the same as the standard
/// parser's, which is several times slower. `None` for anything else.
#[inline]
fn short_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut units, mut count, mut scale, mut point) = (0u64, 0usize, 0usize, false);
    for &c in digits {
        match c {
            // More than 15 digits: not short (and the units would overflow).
            b'0'..=b'9' if count == 15 => return None,
            b'0'..=b'9' => {
                units = units * 10 + u64::from(c - b'0');
                count += 1;
                scale += usize::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let v = units as f64 / POW10[scale];
    Some(if negative { -v } else { v })
}

impl RowParser<'_> {
    pub fn date(&self, raw: &[u8], column: usize) -> Result<i32, Bad> {
        let v = trim(raw);
        match self.layout.parse(v) {
            Some(d) => self.day(d, v, column),
            None if self.skip_invalid => Err(Bad::Skip(SkipReason::BadDate)),
            None => Err(Bad::Fail {
                column,
                value: String::from_utf8_lossy(v).into_owned(),
                problem: if v.is_empty() {
                    "is empty, where a date is expected".into()
                } else {
                    let family = crate::base::dates::layout_family(v);
                    match family {
                        // A date, but of another family than the column's.
                        Some(other) if family != self.layout.family() => format!(
                            "looks like {other}, but the column's dates are {}: the column mixes date layouts",
                            self.layout
                        ),
                        _ => format!("is not a date in the {} layout", self.layout),
                    }
                },
                hint: "fix the value, pass --date-format if the layout is wrong, or --skip-invalid to skip such rows".into(),
            }),
        }
    }

    /// Accepts a parsed day number if it lies in the supported range; `raw`
    /// is the value as written, for the message.
    #[inline]
    pub fn day(&self, d: i32, raw: &[u8], column: usize) -> Result<i32, Bad> {
        if crate::base::dates::in_supported_range(d) {
            Ok(d)
        } else if self.skip_invalid {
            Err(Bad::Skip(SkipReason::DateOutOfRange))
        } else {
            Err(Bad::Fail {
                column,
                value: String::from_utf8_lossy(raw).into_owned(),
                problem: "is outside the dates churn accepts (1900-01-01 to 2100-12-31); such values usually stand for a missing date".into(),
                hint: "fix the export, or pass --skip-invalid to skip (and count) such rows".into(),
            })
        }
    }

    pub fn number(&self, raw: &[u8], column: usize) -> Result<f64, Bad> {
        match parse_number(raw) {
            Some(v) => Ok(v),
            None if self.skip_invalid => Err(Bad::Skip(SkipReason::BadAmount)),
            None => Err(Bad::Fail {
                column,
                value: String::from_utf8_lossy(trim(raw)).into_owned(),
                problem: "is not a plain decimal number".into(),
                hint: "amounts must look like 12, -3.5 or 1e3 (no currency symbols or thousands separators); use --skip-invalid to skip such rows".into(),
            }),
        }
    }
}

/// Amount of a line item: quantity × price, negative when the quantity is (a return).
#[inline]
pub(crate) fn line_amount(quantity: f64, price: f64) -> f64 {
    let a = quantity * price;
    if quantity < 0.0 {
        -a.abs()
    } else {
        a
    }
}

/// Customer ids are interned in shards chosen by hash bits. Each shard's
/// table is small enough to stay in cache while a window of batches is
/// interned shard by shard, and shards run in parallel: a single global
/// table made every lookup a cache miss and interning the slowest stage.
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
/// How many rows ahead of the one interned its table slot is prefetched.
const PREFETCH_ROWS: usize = 16;

/// The shard comes from bits 40 to 45 of the id's hash: the top bits pick
/// the streaming engine's partition, and a shard taken from them would get
/// a whole partition's ids.
#[inline]
fn shard_of(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SHARDS - 1)
}

/// The hash a shard's table sees: within one shard (and one streaming
/// partition) some hash bits are the same for every id, so they are mixed
/// before the table takes its slot from the low bits.
#[inline]
fn table_hash(hash: u64) -> u64 {
    let x = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// One shard: ids in first-seen order within the shard.
struct Shard {
    table: IdTable,
    ids: CustomerIds,
    /// The hash of an id, recomputed when the table grows rather than kept
    /// (8 bytes a customer, for a growth or two per shard); the readers'
    /// [`hash_bytes`] but for tests that make hashes collide.
    hash_of: fn(&[u8]) -> u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { table: IdTable::default(), ids: CustomerIds::default(), hash_of: hash_bytes }
    }
}

/// An open-addressing table (linear probing) from id to code. With millions
/// of customers nearly every lookup misses the cache; here the slot a
/// lookup will read is known from the id's hash alone, so the interning
/// loop prefetches it rows ahead and the misses overlap, which a general
/// hash map's API does not allow.
///
/// A slot keeps the id's first eight bytes and length beside its code, so
/// an id of up to eight bytes (most customer ids) compares in the slot
/// itself: comparing against the stored id bytes cost two more cache
/// misses and a `memcmp` call per row. A slot is two words:
/// `[head, (len + 1) << 32 | code]`. A zero second word is thus a free slot,
/// whatever the id, and a new table is zeroed memory, which the allocator
/// need not touch.
#[derive(Default)]
struct IdTable {
    slots: Vec<[u64; 2]>,
    used: usize,
}

impl IdTable {
    /// At most this share of slots (7/10) is used before the table grows.
    fn capacity_for(entries: usize) -> usize {
        (entries * 10 / 7 + 1).next_power_of_two().max(16)
    }

    /// Grows the table if `more` ids would fill it past its share.
    #[inline]
    fn reserve(&mut self, more: usize, hash_of: impl Fn(u32) -> u64) {
        let wanted = self.used + more;
        if wanted * 10 > self.slots.len() * 7 {
            self.rebuild(Self::capacity_for(wanted), hash_of);
        }
    }

    fn rebuild(&mut self, capacity: usize, hash_of: impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![[0u64; 2]; capacity]);
        let mask = capacity - 1;
        for slot in old.into_iter().filter(|s| s[1] != 0) {
            let mut i = table_hash(hash_of(slot[1] as u32)) as usize & mask;
            while self.slots[i][1] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Asks for the slot where a lookup of `hash` starts.
    #[inline]
    fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            crate::base::prefetch(&self.slots, table_hash(hash) as usize & (self.slots.len() - 1));
        }
    }

    /// The code of the id with this `hash`, first eight bytes `head` and
    /// length `len` for which `rest_equal(code)` holds (it compares the
    /// bytes past the eighth); if there is none, `Err` with the free slot
    /// for [`IdTable::fill`].
    #[inline]
    fn find(
        &self,
        hash: u64,
        head: u64,
        len: u32,
        rest_equal: impl Fn(u32) -> bool,
    ) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = table_hash(hash) as usize & mask;
        loop {
            let [h, meta] = self.slots[i];
            if meta == 0 {
                return Err(i);
            }
            let code = meta as u32;
            if h == head && meta >> 32 == u64::from(len) + 1 && (len <= 8 || rest_equal(code)) {
                return Ok(code);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts a new id's code into the free slot `find` gave.
    #[inline]
    fn fill(&mut self, slot: usize, head: u64, len: u32, code: u32) {
        debug_assert!((self.used + 1) * 10 <= self.slots.len() * 7, "reserve first");
        self.slots[slot] = [head, (u64::from(len) + 1) << 32 | u64::from(code)];
        self.used += 1;
    }
}

/// The first eight bytes of `key`, zero-padded.
#[inline]
fn head_of(key: &[u8]) -> u64 {
    if key.len() >= 8 {
        u64::from_le_bytes(key[..8].try_into().unwrap())
    } else {
        let mut b = [0u8; 8];
        b[..key.len()].copy_from_slice(key);
        u64::from_le_bytes(b)
    }
}

impl Shard {
    /// The code of `key`, whose hash is `hash` and whose [`head_of`] is `head`.
    /// `hash` must be the shard's `hash_of(key)`: growing the table places
    /// every id again by that function.
    #[inline]
    fn intern(&mut self, key: &[u8], hash: u64, head: u64) -> u32 {
        let Shard { table, ids, hash_of } = self;
        debug_assert_eq!(hash, hash_of(key), "the shard's hash of the id");
        let len = u32::try_from(key.len()).expect("a customer id shorter than 4 GiB");
        table.reserve(1, |code| hash_of(ids.get_bytes(code)));
        match table.find(hash, head, len, |code| ids.get_bytes(code)[8..] == key[8..]) {
            Ok(code) => code,
            Err(slot) => {
                let code = ids.push(key);
                table.fill(slot, head, len, code);
                code
            }
        }
    }
}

impl Batch {
    /// Groups row indices by shard (a counting sort), so each shard's worker
    /// visits only its rows.
    pub(crate) fn index_shards(&mut self) {
        let mut starts = std::mem::take(&mut self.shard_starts);
        starts.clear();
        starts.resize(SHARDS + 1, 0);
        for &h in &self.key_hash {
            starts[shard_of(h) + 1] += 1;
        }
        for s in 0..SHARDS {
            starts[s + 1] += starts[s];
        }
        let mut fill = starts.clone();
        let mut rows = std::mem::take(&mut self.shard_rows);
        rows.clear();
        rows.resize(self.key_hash.len(), 0);
        for (i, &h) in self.key_hash.iter().enumerate() {
            let s = shard_of(h);
            rows[fill[s] as usize] = i as u32;
            fill[s] += 1;
        }
        self.shard_rows = rows;
        self.shard_starts = starts;
    }

    fn rows_of_shard(&self, s: usize) -> &[u32] {
        &self.shard_rows[self.shard_starts[s] as usize..self.shard_starts[s + 1] as usize]
    }
}

/// Accumulates batches in input order. Customer codes are provisional
/// (shard-local index and shard) until [`Builder::finish`] makes them dense.
struct Builder {
    shards: Vec<Shard>,
    tx: Transactions,
    row_hash: Vec<u64>,
    skipped: Skips,
    /// `--keep` values of every row, row-major.
    kept: CustomerIds,
}

impl Builder {
    fn new() -> Self {
        Builder {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            tx: Transactions::default(),
            row_hash: Vec::new(),
            skipped: Skips::default(),
            kept: CustomerIds::default(),
        }
    }

    fn push_window(&mut self, window: &mut [Batch]) {
        use rayon::prelude::*;
        for b in window.iter_mut() {
            if b.shard_starts.is_empty() {
                b.index_shards();
            }
        }
        let Builder { shards, tx, row_hash, skipped, kept } = self;
        let base = tx.customer.len();
        let total: usize = window.iter().map(|b| b.day.len()).sum();
        let window = &*window;
        // The rows' other columns are copied while the ids are interned: on
        // a fresh machine the copies' page faults cost as much as the
        // interning, and on one thread they held up the reading.
        let (codes, ()) = rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .enumerate()
                    .map(|(s, shard)| {
                        let rows: usize = window.iter().map(|b| b.rows_of_shard(s).len()).sum();
                        let mut codes = Vec::with_capacity(rows);
                        for b in window {
                            let rows = b.rows_of_shard(s);
                            for (j, &row) in rows.iter().enumerate() {
                                if let Some(&ahead) = rows.get(j + PREFETCH_ROWS) {
                                    shard.table.prefetch(b.key_hash[ahead as usize]);
                                }
                                let r = row as usize;
                                let (key, head) = b.key_and_head(r);
                                codes.push(shard.intern(key, b.key_hash[r], head));
                            }
                        }
                        codes
                    })
                    .collect::<Vec<Vec<u32>>>()
            },
            || {
                tx.customer.resize(base + total, 0);
                for b in window {
                    tx.day.extend_from_slice(&b.day);
                    tx.amount.extend_from_slice(&b.amount);
                    if !b.order.is_empty() {
                        // Every kept row of an input with an order column has an order
                        // hash, so the order column stays aligned with the rows.
                        tx.order.get_or_insert_with(Vec::new).extend_from_slice(&b.order);
                    }
                    row_hash.extend_from_slice(&b.row_hash);
                    skipped.add(&b.skipped);
                    let offset = kept.bytes.len();
                    kept.bytes.extend_from_slice(&b.kept_bytes);
                    kept.ends.extend(b.kept_ends.iter().map(|&e| e as usize + offset));
                }
            },
        );
        for (s, shard_codes) in codes.iter().enumerate() {
            let mut k = 0;
            let mut offset = base;
            for b in window {
                for &row in b.rows_of_shard(s) {
                    tx.customer[offset + row as usize] = shard_codes[k] << SHARD_BITS | s as u32;
                    k += 1;
                }
                offset += b.day.len();
            }
        }
        debug_assert!(tx.order.as_ref().is_none_or(|o| o.len() == tx.customer.len()));
    }

    /// Dense customer codes: shard by shard, first-seen order within a shard.
    fn finish(mut self) -> (Transactions, Vec<u64>, Skips, CustomerIds) {
        use rayon::prelude::*;
        // Drop the hash tables before joining the ids, to keep the peak down.
        let parts: Vec<CustomerIds> = self.shards.into_iter().map(|s| s.ids).collect();
        let mut base = vec![0u32; SHARDS];
        let mut ids = CustomerIds {
            bytes: Vec::with_capacity(parts.iter().map(|p| p.bytes.len()).sum()),
            ends: Vec::with_capacity(parts.iter().map(|p| p.len()).sum()),
        };
        for (s, part) in parts.into_iter().enumerate() {
            base[s] = ids.len() as u32;
            ids.append(&part);
        }
        self.tx.customer.par_iter_mut().for_each(|c| {
            *c = base[(*c as usize) & (SHARDS - 1)] + (*c >> SHARD_BITS);
        });
        self.tx.ids = ids;
        (self.tx, self.row_hash, self.skipped, self.kept)
    }
}

/// The sink a source reader feeds, a window of batches at a time, in input
/// order. The batches stay the reader's, to be recycled.
pub(crate) trait BatchSink {
    fn push_window(&mut self, window: &mut [Batch]);
    /// A hint: about this many more rows will arrive.
    fn reserve(&mut self, rows: usize, with_order: bool);
    /// True when the sink cannot take more (a full disk): the reader stops
    /// early, and the sink's owner reports why.
    fn failed(&self) -> bool {
        false
    }
}

impl BatchSink for Builder {
    fn push_window(&mut self, window: &mut [Batch]) {
        Builder::push_window(self, window)
    }

    fn reserve(&mut self, rows: usize, with_order: bool) {
        let tx = &mut self.tx;
        tx.customer.reserve(rows);
        tx.day.reserve(rows);
        tx.amount.reserve(rows);
        if with_order {
            tx.order.get_or_insert_with(Vec::new).reserve(rows);
        }
        // Customer tables sized for a customer per four rows, rather than
        // grown (and rehashed) from nothing; more customers grow them later.
        let per_shard = rows / 4 / SHARDS;
        for Shard { table, ids, hash_of } in &mut self.shards {
            table.reserve(per_shard, |code| hash_of(ids.get_bytes(code)));
            ids.ends.reserve(per_shard);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids of one streaming partition spread over all interning shards,
    /// and within a shard over the table's slots: when shards and slots came
    /// from the same hash bits as partitions, a partition's ids all went to
    /// one shard and crowded a few slots.
    #[test]
    fn ids_of_one_partition_spread_over_shards_and_slots() {
        let hashes: Vec<u64> = (0..400_000u32)
            .map(|i| hash_bytes(format!("{i}").as_bytes()))
            .filter(|&h| spill::partition_of(h, 64) == 17)
            .collect();
        assert!(hashes.len() > 5_000);
        let shards: std::collections::HashSet<usize> =
            hashes.iter().map(|&h| shard_of(h)).collect();
        assert_eq!(shards.len(), SHARDS);
        let homes: std::collections::HashSet<u64> =
            hashes.iter().filter(|&&h| shard_of(h) == 5).map(|&h| table_hash(h) & 4095).collect();
        // About 100 ids in 4096 slots: some 99 distinct home slots expected.
        assert!(homes.len() > 90, "{} home slots", homes.len());
    }

    /// A key's head read as one word is the zero-padded head, also for the
    /// last keys, whose word would run past the buffer.
    #[test]
    fn key_heads_read_as_words_are_padded_heads() {
        let mut b = Batch::default();
        let keys = ["a", "abcdefgh", "abcdefghij", "x1234567", "12", "é1", "", "z"];
        for k in keys {
            b.push_key(k.as_bytes());
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(b.key_and_head(i), (k.as_bytes(), head_of(k.as_bytes())), "{k}");
        }
    }

    proptest::proptest! {
        /// The short decimal path gives exactly the standard parser's value,
        /// and declines what it does not cover.
        #[test]
        fn short_decimals_parse_as_the_standard_parser_does(
            sign in proptest::sample::select(vec!["", "-", "+"]),
            int in "[0-9]{0,17}",
            frac in proptest::option::of("[0-9]{0,17}"),
            tail in proptest::sample::select(vec!["", "e3", "x", "."]),
        ) {
            let text = format!("{sign}{int}{}{tail}", frac.map(|f| format!(".{f}")).unwrap_or_default());
            let want: Option<f64> = text.parse().ok();
            let got = short_decimal(text.as_bytes());
            if let Some(v) = got {
                proptest::prop_assert_eq!(Some(v.to_bits()), want.map(f64::to_bits), "{}", text);
            } else {
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                proptest::prop_assert!(want.is_none() || digits > 15 || !tail.is_empty(), "{}", text);
            }
            proptest::prop_assert_eq!(
                parse_number(text.as_bytes()).map(f64::to_bits),
                want.filter(|v| v.is_finite()).map(f64::to_bits)
            );
        }

        /// A shard gives each distinct id one code, in first-seen order,
        /// through the table's growth, with ids that share their first eight
        /// bytes or differ only in length, an empty one, and hashes that collide.
        #[test]
        fn a_shard_codes_ids_in_first_seen_order(
            ids in proptest::collection::vec(
                (proptest::sample::select(vec!["", "12345678", "1234567", "abcdefgh_"]), 0u16..3000),
                1..5000),
            colliding: bool,
        ) {
            // Colliding hashes (seven values) crowd the ids on a few probe sequences.
            fn colliding_hash(key: &[u8]) -> u64 {
                hash_bytes(key) % 7
            }
            let hash_of = if colliding { colliding_hash } else { hash_bytes };
            let mut shard = Shard { hash_of, ..Shard::default() };
            shard.table.reserve(4, |_| 0);
            let mut seen = std::collections::HashMap::new();
            // The empty id first, so its code is 0.
            seen.insert(String::new(), 0);
            proptest::prop_assert_eq!(shard.intern(b"", hash_of(b""), 0), 0);
            for (prefix, n) in ids {
                // An empty id too: readers skip blank ids, the table does not rely on it.
                let key = if n % 100 == 0 { String::new() } else { format!("{prefix}{n}") };
                let hash = hash_of(key.as_bytes());
                let next = seen.len() as u32;
                let want = *seen.entry(key.clone()).or_insert(next);
                proptest::prop_assert_eq!(shard.intern(key.as_bytes(), hash, head_of(key.as_bytes())), want);
                proptest::prop_assert_eq!(shard.ids.get_bytes(want), key.as_bytes());
            }
            proptest::prop_assert_eq!(shard.table.used, seen.len());
        }
    }
}
