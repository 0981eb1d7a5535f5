//! The rows of one chunk as a reader parses them, before interning: the
//! value parsers the CSV and Parquet paths share, and the hashes of ids
//! and orders.

use crate::base::dates::DateLayout;

use super::intern::head_of;
use super::{SkipReason, Skips};

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

    pub(crate) fn key(&self, i: usize) -> &[u8] {
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
    pub(crate) fn key_and_head(&self, i: usize) -> (&[u8], u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
