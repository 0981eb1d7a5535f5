//! The rows churn analyses, integer-coded: one customer code per distinct
//! id, one day number per date, the amount as f64; what every reader
//! produces and every analysis reads.

use rayon::prelude::*;

/// The interned customer ids, indexed by code.
#[derive(Default, Debug, Clone)]
pub struct CustomerIds {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ends: Vec<usize>,
}

impl CustomerIds {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get_bytes(&self, code: u32) -> &[u8] {
        self.value(code as usize)
    }

    /// The i-th value, for tables longer than a customer code can count
    /// (the `--keep` values of every row).
    pub(crate) fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn get(&self, code: u32) -> std::borrow::Cow<'_, str> {
        // Ids are checked to be UTF-8 when read; `from_utf8` has a fast
        // ASCII path that the lossy conversion's chunk iterator lacks.
        let b = self.get_bytes(code);
        match std::str::from_utf8(b) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        }
    }

    pub fn push(&mut self, id: &[u8]) -> u32 {
        self.bytes.extend_from_slice(id);
        self.ends.push(self.bytes.len());
        (self.ends.len() - 1) as u32
    }

    /// Appends `other`'s values after these, keeping their order.
    pub fn append(&mut self, other: &CustomerIds) {
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|e| e + offset));
    }
}

/// Transactions up to the analysis date, one entry per kept row.
#[derive(Default, Debug, Clone)]
pub struct Transactions {
    pub customer: Vec<u32>,
    pub day: Vec<i32>,
    pub amount: Vec<f64>,
    /// Hash of the order id, when an order column is mapped.
    pub order: Option<Vec<u64>>,
    pub ids: CustomerIds,
    /// The analysis date (inclusive), as a day number.
    pub as_of: i32,
    /// The `--keep` columns: per customer code, the value of the latest
    /// transaction (on or before the as-of date) where it is not empty.
    pub kept: Vec<(String, CustomerIds)>,
}

/// Whether a row's amount makes it a purchase: every row that is not a
/// return (a negative amount) is one, zero amounts included (free, sample and
/// fully discounted orders are still visits), as lifetimes, BTYD, CLVTools
/// and the papers count transactions. Every analysis, and the SQL queries
/// (`sql::PURCHASE`), use this one definition.
#[inline]
pub fn is_purchase(amount: f64) -> bool {
    amount >= 0.0
}

impl Transactions {
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }
}

/// Puts the rows in day order (stable), so that the rows up to any date are a prefix.
pub fn sort_by_day(tx: &mut Transactions) {
    if tx.day.is_sorted() {
        return;
    }
    let lo = tx.day.par_iter().copied().min().unwrap_or(0);
    let hi = tx.day.par_iter().copied().max().unwrap_or(0);
    let mut next = vec![0usize; (hi - lo) as usize + 2];
    for &d in &tx.day {
        next[(d - lo) as usize + 1] += 1;
    }
    for i in 1..next.len() {
        next[i] += next[i - 1];
    }
    let mut perm = vec![0u32; tx.len()];
    for (r, &d) in tx.day.iter().enumerate() {
        let slot = &mut next[(d - lo) as usize];
        perm[*slot] = r as u32;
        *slot += 1;
    }
    fn apply<T: Copy + Send + Sync>(v: &mut Vec<T>, perm: &[u32]) {
        *v = perm.par_iter().map(|&r| v[r as usize]).collect();
    }
    apply(&mut tx.customer, &perm);
    apply(&mut tx.day, &perm);
    apply(&mut tx.amount, &perm);
    if let Some(o) = &mut tx.order {
        apply(o, &perm);
    }
}
