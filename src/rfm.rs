//! Recency, frequency and monetary value per customer, scored and segmented.
//!
//! Scores are quantile bins over all customers so they adapt to the business:
//! a "5" for frequency means the customer is in the top fifth of this
//! customer base, not above an arbitrary constant. Quantiles use linear
//! interpolation between order statistics (numpy's and R's default, type 7),
//! so the figures can be checked with either. Equal values always get equal
//! scores, because a score only depends on how many cut points a value
//! exceeds.

use rayon::prelude::*;

use crate::input::{is_purchase, CustomerIds, Transactions};
use crate::segments::Segments;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Monetary {
    /// Total net amount per customer.
    #[default]
    Total,
    /// Mean amount per purchase.
    Mean,
}

#[derive(Clone, Debug)]
pub struct RfmOptions {
    pub bins: u32,
    pub monetary: Monetary,
    pub segments: Segments,
}

impl Default for RfmOptions {
    fn default() -> Self {
        RfmOptions { bins: 5, monetary: Monetary::Total, segments: Segments::default() }
    }
}

/// One customer's RFM figures.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerRfm {
    pub customer: u32,
    pub first_purchase: i32,
    pub last_purchase: i32,
    pub recency_days: i32,
    pub frequency: u32,
    pub monetary: f64,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    /// Index into the segment table's `names()`.
    pub segment: u16,
}

/// Per-customer aggregates every analysis starts from.
#[derive(Clone, Debug, Default)]
pub struct Aggregates {
    pub first_purchase: Vec<i32>,
    pub last_purchase: Vec<i32>,
    /// Purchases: distinct orders, or rows, that are not returns ([`is_purchase`]).
    pub purchases: Vec<u32>,
    /// Net amount (all rows kept by the returns policy), summed with
    /// Neumaier's compensation so that amounts in cents add up to the
    /// nearest double of the exact sum, whatever the row order.
    pub net: Vec<f64>,
}

impl Aggregates {
    pub fn reserve_exact(&mut self, more: usize) {
        self.first_purchase.reserve_exact(more);
        self.last_purchase.reserve_exact(more);
        self.purchases.reserve_exact(more);
        self.net.reserve_exact(more);
    }

    /// Appends another set of customers' aggregates after these.
    pub fn append(&mut self, other: Aggregates) {
        self.first_purchase.extend(other.first_purchase);
        self.last_purchase.extend(other.last_purchase);
        self.purchases.extend(other.purchases);
        self.net.extend(other.net);
    }
}

/// Aggregates the transactions per customer code. A purchase is a row that
/// is not a return ([`is_purchase`]), or a distinct order holding one;
/// returns only move the net amount.
pub fn aggregate(tx: &Transactions) -> Aggregates {
    let n = tx.ids.len();
    let mut a = Aggregates {
        first_purchase: vec![i32::MAX; n],
        last_purchase: vec![i32::MIN; n],
        purchases: vec![0; n],
        net: vec![0.0; n],
    };
    for r in 0..tx.len() {
        if is_purchase(tx.amount[r]) {
            let (c, d) = (tx.customer[r] as usize, tx.day[r]);
            a.first_purchase[c] = a.first_purchase[c].min(d);
            a.last_purchase[c] = a.last_purchase[c].max(d);
            if tx.order.is_none() {
                a.purchases[c] += 1;
            }
        }
    }
    a.net = net_amounts(tx);
    if let Some(orders) = &tx.order {
        let groups = group_by_customer(tx, |r| is_purchase(tx.amount[r]).then_some(orders[r]));
        a.purchases = groups.map_groups(count_distinct);
    }
    a
}

/// Net amount per customer. Money has a fixed number of decimals, so when
/// every amount is a whole number of cents (or of 10^-k units, k <= 4) the
/// sums are taken exactly in integers and divided once: 42.96 + 56.25 +
/// 25.9 is 125.11, not 125.11000000000001. Other amounts are summed with
/// Neumaier's compensation.
pub fn net_amounts(tx: &Transactions) -> Vec<f64> {
    let n = tx.ids.len();
    if let Some(scale) = decimal_scale(&tx.amount) {
        let mut units = vec![0i64; n];
        for r in 0..tx.len() {
            units[tx.customer[r] as usize] += to_units(tx.amount[r], scale);
        }
        return units.into_par_iter().map(|u| u as f64 / scale).collect();
    }
    let mut sum = vec![0.0f64; n];
    let mut compensation = vec![0.0f64; n];
    for r in 0..tx.len() {
        let (c, amount) = (tx.customer[r] as usize, tx.amount[r]);
        let t = sum[c] + amount;
        compensation[c] += if sum[c].abs() >= amount.abs() {
            (sum[c] - t) + amount
        } else {
            (amount - t) + sum[c]
        };
        sum[c] = t;
    }
    sum.par_iter_mut().zip(compensation).for_each(|(s, c)| *s += c);
    sum
}

/// The total of all amounts, exact for decimal money (see [`net_amounts`]).
pub fn total_amount(amounts: &[f64]) -> f64 {
    match decimal_scale(amounts) {
        Some(m) => amounts.iter().map(|&a| to_units(a, m)).sum::<i64>() as f64 / m,
        None => compensated_sum(amounts.iter().copied()),
    }
}

/// Σ values with Neumaier's compensation, in the given order.
pub fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for a in values {
        let t = sum + a;
        comp += if sum.abs() >= a.abs() { (sum - t) + a } else { (a - t) + sum };
        sum = t;
    }
    sum + comp
}

/// 10^k for the smallest k in 0..=4 such that every amount is a whole number
/// of 10^-k units, with room to sum 2^20 of them exactly in an i64.
pub fn decimal_scale(amounts: &[f64]) -> Option<f64> {
    (0..=4).map(|k| 10f64.powi(k)).find(|&m| {
        amounts.par_iter().all(|&a| {
            let s = a * m;
            s.abs() < (1u64 << 42) as f64 && (s - round_small(s) as f64).abs() < 1e-6
        })
    })
}

/// `amount` in whole 10^-k units, `scale` being 10^k from [`decimal_scale`].
#[inline]
pub fn to_units(amount: f64, scale: f64) -> i64 {
    round_small(amount * scale)
}

/// `v.round() as i64` (halves away from zero) for |v| < 2^52, without the
/// libm call `round` is on baseline x86-64 (it ran for every amount, twice
/// in a summary). The cast truncates; `v - t` is exact, since `t` is within
/// one of `v` and of the same sign, so the comparisons decide exactly.
#[inline]
pub fn round_small(v: f64) -> i64 {
    debug_assert!(v.is_nan() || v.abs() < (1u64 << 52) as f64, "{v}");
    let t = v as i64;
    let rest = v - t as f64;
    t + i64::from(rest >= 0.5) - i64::from(rest <= -0.5)
}

/// The number of distinct values; most customers have a handful of orders,
/// which are compared pairwise without allocating.
pub fn count_distinct(v: &[u64]) -> u32 {
    if v.len() <= 32 {
        (0..v.len()).filter(|&i| !v[..i].contains(&v[i])).count() as u32
    } else {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() as u32
    }
}

/// Per-customer lists of row values, laid out contiguously (one counting-sort
/// pass instead of a global sort or a hash map), in row order within each customer.
pub struct Grouped<T> {
    /// `values[offsets[c]..offsets[c + 1]]` belong to customer code `c`.
    pub offsets: Vec<usize>,
    pub values: Vec<T>,
}

impl<T: Copy + Send + Sync> Grouped<T> {
    pub fn get(&self, c: usize) -> &[T] {
        &self.values[self.offsets[c]..self.offsets[c + 1]]
    }

    /// Applies `f` to every customer's values, in parallel.
    pub fn map_groups<U: Send>(&self, f: impl Fn(&[T]) -> U + Sync + Send) -> Vec<U> {
        (0..self.offsets.len() - 1).into_par_iter().map(|c| f(self.get(c))).collect()
    }
}

/// Groups `value(row)` by customer for the rows where it is `Some`.
pub fn group_by_customer<T: Copy + Default + Send + Sync>(
    tx: &Transactions,
    value: impl Fn(usize) -> Option<T> + Sync,
) -> Grouped<T> {
    let n = tx.ids.len();
    let rows = tx.len();
    // A parallel counting sort: the rows are cut into one block per thread,
    // each block counts its rows per customer, the counts give every block
    // its own write positions inside each customer's range, and the blocks
    // scatter in parallel. Block order is row order, so each customer's
    // values stay in row order whatever the number of threads.
    let blocks = rayon::current_num_threads().clamp(1, 16);
    if rows >= u32::MAX as usize || blocks == 1 || rows < 1 << 16 {
        return group_sequential(tx, value);
    }
    let size = rows.div_ceil(blocks);
    let ranges: Vec<(usize, usize)> =
        (0..blocks).map(|b| (b * size, ((b + 1) * size).min(rows))).collect();
    let mut cursors: Vec<Vec<u32>> = ranges
        .par_iter()
        .map(|&(start, end)| {
            let mut counts = vec![0u32; n];
            for r in start..end {
                if value(r).is_some() {
                    counts[tx.customer[r] as usize] += 1;
                }
            }
            counts
        })
        .collect();
    let mut offsets = vec![0usize; n + 1];
    for c in 0..n {
        let mut pos = offsets[c];
        for block in cursors.iter_mut() {
            let k = block[c] as usize;
            block[c] = pos as u32;
            pos += k;
        }
        offsets[c + 1] = pos;
    }
    let mut values = vec![T::default(); offsets[n]];
    let out = SharedSlice(values.as_mut_ptr());
    ranges.par_iter().zip(cursors.par_iter_mut()).for_each(|(&(start, end), cursor)| {
        let out = &out;
        for r in start..end {
            if let Some(v) = value(r) {
                let slot = &mut cursor[tx.customer[r] as usize];
                // SAFETY: every (block, customer) pair owns the positions
                // cursor..cursor + count inside `values`, disjoint from all
                // other pairs' and within its length, so no two threads ever
                // write the same element and nobody reads until all are done.
                unsafe { out.0.add(*slot as usize).write(v) };
                *slot += 1;
            }
        }
    });
    Grouped { offsets, values }
}

/// A raw pointer that rayon may share between threads writing disjoint elements.
struct SharedSlice<T>(*mut T);
unsafe impl<T: Send> Sync for SharedSlice<T> {}

fn group_sequential<T: Copy + Default>(
    tx: &Transactions,
    value: impl Fn(usize) -> Option<T>,
) -> Grouped<T> {
    let n = tx.ids.len();
    // bounds[c + 1] starts as the end of group c; filling backwards moves it
    // to the start of group c, which is the end of group c - 1.
    let mut bounds = vec![0usize; n + 1];
    for r in 0..tx.len() {
        if value(r).is_some() {
            bounds[tx.customer[r] as usize + 1] += 1;
        }
    }
    for c in 0..n {
        bounds[c + 1] += bounds[c];
    }
    let total = bounds[n];
    let mut values = vec![T::default(); total];
    for r in (0..tx.len()).rev() {
        if let Some(v) = value(r) {
            let end = &mut bounds[tx.customer[r] as usize + 1];
            *end -= 1;
            values[*end] = v;
        }
    }
    bounds.remove(0);
    bounds.push(total);
    Grouped { offsets: bounds, values }
}

/// The k/N quantiles of unsorted values, by selection rather than a full sort;
/// the same numbers as [`quantiles`] of the sorted values.
pub fn quantiles_of(mut values: Vec<f64>, bins: u32) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return vec![0.0; bins.saturating_sub(1) as usize];
    }
    let mut done = 0; // values[..done] are the smallest, in no particular order
    (1..bins)
        .map(|k| {
            let h = (n - 1) as f64 * k as f64 / bins as f64;
            let lo = h.floor() as usize;
            let (_, &mut a, right) =
                values[done..].select_nth_unstable_by(lo - done, f64::total_cmp);
            let b = right.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
            done = lo;
            lerp(a, b, h - lo as f64)
        })
        .collect()
}

/// numpy's `_lerp`: exact at both ends.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The k/N quantiles (k = 1..N-1) of sorted values, numpy's linear method.
pub fn quantiles(sorted: &[f64], bins: u32) -> Vec<f64> {
    let n = sorted.len();
    (1..bins)
        .map(|k| {
            if n == 0 {
                return 0.0;
            }
            let h = (n - 1) as f64 * k as f64 / bins as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            lerp(sorted[lo], sorted[hi], h - lo as f64)
        })
        .collect()
}

/// 1 + the number of cut points the value exceeds: 1..=N, higher is more.
pub fn score_up(v: f64, cuts: &[f64]) -> u32 {
    1 + cuts.partition_point(|&q| v > q) as u32
}

/// N − the number of cut points the value exceeds: 1..=N, lower values score higher.
pub fn score_down(v: f64, cuts: &[f64]) -> u32 {
    cuts.len() as u32 + 1 - cuts.partition_point(|&q| v > q) as u32
}

/// Computes the RFM table, one row per customer with at least one purchase
/// up to the as-of date, in customer id order. `segment` indexes
/// `opts.segments.names()`.
pub fn compute(tx: &Transactions, opts: &RfmOptions) -> Vec<CustomerRfm> {
    score(aggregate(tx), &tx.ids, tx.as_of, opts)
}

/// The RFM rows from per-customer aggregates (see [`compute`]); the
/// transactions themselves are no longer needed, so callers can free them first.
pub fn score(
    agg: Aggregates,
    ids: &CustomerIds,
    as_of: i32,
    opts: &RfmOptions,
) -> Vec<CustomerRfm> {
    let mut codes: Vec<u32> =
        (0..ids.len() as u32).filter(|&c| agg.purchases[c as usize] > 0).collect();
    sort_by_id(&mut codes, ids);
    score_codes(agg, &codes, as_of, opts)
}

/// The RFM rows of the customers `codes` (those with a purchase), in that order.
pub fn score_codes(
    agg: Aggregates,
    codes: &[u32],
    as_of: i32,
    opts: &RfmOptions,
) -> Vec<CustomerRfm> {
    let scoring = Scoring::new(&agg, codes, as_of, opts);
    (codes, &scoring.figures[..])
        .into_par_iter()
        .map(|(&c, &(recency_days, frequency, monetary))| {
            let ci = c as usize;
            let (r_score, f_score, m_score, segment) =
                scoring.scores(recency_days, frequency, monetary);
            CustomerRfm {
                customer: c,
                first_purchase: agg.first_purchase[ci],
                last_purchase: agg.last_purchase[ci],
                recency_days,
                frequency,
                monetary,
                r_score,
                f_score,
                m_score,
                segment,
            }
        })
        .collect()
}

/// The RFM segment of each of the customers `codes`, in that order: what
/// [`score_codes`] gives, without building its rows (1.6 GB for 40M
/// customers) when only the segment is wanted.
pub fn segment_codes(agg: &Aggregates, codes: &[u32], as_of: i32, opts: &RfmOptions) -> Vec<u16> {
    let scoring = Scoring::new(agg, codes, as_of, opts);
    scoring.figures.par_iter().map(|&(r, f, m)| scoring.scores(r, f, m).3).collect()
}

/// A set of customers' recency, frequency and monetary value, their
/// quantile cut points and the segment table.
struct Scoring {
    /// (recency in days, frequency, monetary) per customer, in the order of
    /// the codes: gathered once, since the codes visit the per-customer
    /// tables in id order, which is scattered in memory.
    figures: Vec<(i32, u32, f64)>,
    recency_cuts: Vec<f64>,
    frequency_cuts: Vec<f64>,
    monetary_cuts: Vec<f64>,
    segments: SegmentLookup,
}

impl Scoring {
    fn new(agg: &Aggregates, codes: &[u32], as_of: i32, opts: &RfmOptions) -> Scoring {
        let figures: Vec<(i32, u32, f64)> = codes
            .par_iter()
            .map(|&c| {
                let ci = c as usize;
                let monetary = match opts.monetary {
                    Monetary::Total => agg.net[ci],
                    Monetary::Mean => agg.net[ci] / agg.purchases[ci] as f64,
                };
                (as_of - agg.last_purchase[ci], agg.purchases[ci], monetary)
            })
            .collect();
        let (recency_cuts, (frequency_cuts, monetary_cuts)) = rayon::join(
            || quantiles_of_ints(&figures, |f| f.0 as i64, opts.bins),
            || {
                rayon::join(
                    || quantiles_of_ints(&figures, |f| f.1 as i64, opts.bins),
                    || quantiles_of(figures.par_iter().map(|f| f.2).collect(), opts.bins),
                )
            },
        );
        Scoring {
            figures,
            recency_cuts,
            frequency_cuts,
            monetary_cuts,
            segments: SegmentLookup::new(&opts.segments, opts.bins),
        }
    }

    /// The R, F and M scores and the segment.
    fn scores(&self, recency_days: i32, frequency: u32, monetary: f64) -> (u8, u8, u8, u16) {
        let r = score_down(recency_days as f64, &self.recency_cuts);
        let f = score_up(frequency as f64, &self.frequency_cuts);
        let m = score_up(monetary, &self.monetary_cuts);
        (r as u8, f as u8, m as u8, self.segments.get(r, f, m))
    }
}

/// The k/N quantiles of integer values, from a histogram when their range
/// is small (days, counts): no copy of the values and no sort.
pub fn quantiles_of_ints<T: Sync>(
    items: &[T],
    value: impl Fn(&T) -> i64 + Sync,
    bins: u32,
) -> Vec<f64> {
    let n = items.len();
    let (lo, hi) = items
        .par_iter()
        .map(|t| (value(t), value(t)))
        .reduce(|| (i64::MAX, i64::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    if n == 0 || hi - lo >= 1 << 24 {
        return quantiles_of(items.iter().map(|t| value(t) as f64).collect(), bins);
    }
    let mut counts = vec![0u64; (hi - lo + 1) as usize];
    for t in items {
        counts[(value(t) - lo) as usize] += 1;
    }
    // Walk the cumulative counts once, answering order statistics in increasing order.
    let mut wanted: Vec<usize> = Vec::new();
    for k in 1..bins {
        let h = (n - 1) as f64 * k as f64 / bins as f64;
        let l = h.floor() as usize;
        wanted.push(l);
        wanted.push((l + 1).min(n - 1));
    }
    let mut order = wanted.clone();
    order.sort_unstable();
    let mut found = std::collections::HashMap::new();
    let (mut v, mut below) = (0usize, counts[0]); // values < lo + v + 1 number `below`
    for &k in &order {
        while below as usize <= k {
            v += 1;
            below += counts[v];
        }
        found.insert(k, (lo + v as i64) as f64);
    }
    (1..bins)
        .enumerate()
        .map(|(j, k)| {
            let h = (n - 1) as f64 * k as f64 / bins as f64;
            let (a, b) = (found[&wanted[2 * j]], found[&wanted[2 * j + 1]]);
            lerp(a, b, h - h.floor())
        })
        .collect()
}

/// The segment of every score triple, computed once.
struct SegmentLookup {
    bins: u32,
    index: Vec<u16>,
}

impl SegmentLookup {
    fn new(segments: &Segments, bins: u32) -> Self {
        let names = segments.names();
        let mut index = Vec::with_capacity((bins * bins * bins) as usize);
        for r in 1..=bins {
            for f in 1..=bins {
                for m in 1..=bins {
                    let name = segments.classify(r, f, m, bins);
                    index.push(names.iter().position(|n| n == name).unwrap_or(0) as u16);
                }
            }
        }
        SegmentLookup { bins, index }
    }

    fn get(&self, r: u32, f: u32, m: u32) -> u16 {
        let n = self.bins;
        self.index[((r - 1) * n * n + (f - 1) * n + (m - 1)) as usize]
    }
}

/// Sorts customer codes by their ids: numerically when every id is a plain
/// non-negative integer (so 9 comes before 10), otherwise byte-wise.
pub fn sort_by_id(codes: &mut [u32], ids: &CustomerIds) {
    let numeric = ids_are_numeric(codes, ids);
    // Sort (key, code) pairs: the key orders most pairs without touching the ids.
    let mut keyed: Vec<(u64, u32)> = codes
        .par_iter()
        .map(|&c| {
            let b = ids.get_bytes(c);
            let key = if numeric {
                b.iter().fold(0u64, |v, &d| v * 10 + (d - b'0') as u64)
            } else {
                let mut k = [0u8; 8];
                let n = b.len().min(8);
                k[..n].copy_from_slice(&b[..n]);
                u64::from_be_bytes(k)
            };
            (key, c)
        })
        .collect();
    keyed.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            if numeric {
                std::cmp::Ordering::Equal
            } else {
                ids.get_bytes(a.1).cmp(ids.get_bytes(b.1))
            }
        })
    });
    for (slot, (_, c)) in codes.iter_mut().zip(keyed) {
        *slot = c;
    }
}

/// True when every id of `codes` is a plain non-negative integer (no sign,
/// no leading zero, at most 19 digits): such ids sort as numbers.
pub fn ids_are_numeric(codes: &[u32], ids: &CustomerIds) -> bool {
    codes.par_iter().all(|&c| {
        let b = ids.get_bytes(c);
        !b.is_empty()
            && b.len() <= 19
            && b.iter().all(u8::is_ascii_digit)
            && (b.len() == 1 || b[0] != b'0')
    })
}

/// The order of [`sort_by_id`] for two codes, given [`ids_are_numeric`] of
/// the whole set: for plain integers, the shorter is the smaller.
pub fn compare_ids(ids: &CustomerIds, numeric: bool, a: u32, b: u32) -> std::cmp::Ordering {
    let (x, y) = (ids.get_bytes(a), ids.get_bytes(b));
    if numeric {
        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
    } else {
        x.cmp(y)
    }
}

/// `543` for N ≤ 9, `10-3-5` beyond.
pub fn rfm_score(r: u32, f: u32, m: u32, bins: u32) -> String {
    let mut s = String::with_capacity(3);
    push_rfm_score(&mut s, r, f, m, bins);
    s
}

/// Appends the rfm_score without allocating.
pub fn push_rfm_score(out: &mut String, r: u32, f: u32, m: u32, bins: u32) {
    use std::fmt::Write;
    if bins <= 9 {
        for s in [r, f, m] {
            out.push(char::from(b'0' + s as u8));
        }
    } else {
        let _ = write!(out, "{r}-{f}-{m}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Rounding without libm agrees with `round` on random values, on
        /// halves and on their neighbours, of either sign.
        #[test]
        fn round_small_is_round(
            v in -4.5e15f64..4.5e15,
            half in -(1i64 << 51)..(1i64 << 51),
            step in -2i32..=2,
        ) {
            prop_assert_eq!(round_small(v), v.round() as i64);
            let h = half as f64 + 0.5;
            for w in [h, -h, h / 1024.0, -h / 1024.0] {
                let near = if step >= 0 {
                    (0..step).fold(w, |x, _| x.next_up())
                } else {
                    (0..-step).fold(w, |x, _| x.next_down())
                };
                prop_assert_eq!(round_small(near), near.round() as i64, "{}", near);
            }
        }
    }

    proptest! {
        #[test]
        fn segments_alone_are_the_segments_of_the_rows(
            customers in prop::collection::vec((0i32..400, 1u32..30, -100i64..100000), 1..200),
            mean in any::<bool>(),
            bins in 2u32..8,
        ) {
            let agg = Aggregates {
                first_purchase: customers.iter().map(|c| c.0 - 10).collect(),
                last_purchase: customers.iter().map(|c| c.0).collect(),
                purchases: customers.iter().map(|c| c.1).collect(),
                net: customers.iter().map(|c| c.2 as f64 / 100.0).collect(),
            };
            let monetary = if mean { Monetary::Mean } else { Monetary::Total };
            let opts = RfmOptions { bins, monetary, segments: Segments::default() };
            let codes: Vec<u32> = (0..customers.len() as u32).rev().collect();
            let alone = segment_codes(&agg, &codes, 400, &opts);
            let rows = score_codes(agg, &codes, 400, &opts);
            prop_assert_eq!(alone, rows.iter().map(|r| r.segment).collect::<Vec<_>>());
        }
    }

    proptest! {
        /// Comparing two ids gives the order of sorting them all.
        #[test]
        fn id_comparison_is_the_sort_order(
            raw in proptest::collection::vec(prop_oneof!["[1-9][0-9]{0,6}", "0", "[0-9a-c]{1,4}"], 1..40),
        ) {
            let mut ids = CustomerIds::default();
            let mut seen = std::collections::HashSet::new();
            for r in raw.iter().filter(|r| seen.insert(r.to_string())) {
                ids.push(r.as_bytes());
            }
            let mut sorted: Vec<u32> = (0..ids.len() as u32).collect();
            sort_by_id(&mut sorted, &ids);
            let numeric = ids_are_numeric(&sorted, &ids);
            let mut compared: Vec<u32> = (0..ids.len() as u32).collect();
            compared.sort_by(|&a, &b| compare_ids(&ids, numeric, a, b));
            prop_assert_eq!(sorted, compared);
        }
    }

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [.2, .4, .6, .8]) == [1.8, 2.6, 3.4, 5.2]
        let q = quantiles(&[1.0, 2.0, 3.0, 4.0, 10.0], 5);
        let want = [1.8, 2.6, 3.4, 5.2];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        // R: quantile(c(3, 1, 2), c(1/3, 2/3), type = 7) == 1.666667 2.333333
        let q = quantiles(&[1.0, 2.0, 3.0], 3);
        assert!((q[0] - 5.0 / 3.0).abs() < 1e-12 && (q[1] - 7.0 / 3.0).abs() < 1e-12);
        assert_eq!(quantiles(&[7.0], 5), vec![7.0; 4]);
    }

    #[test]
    fn scores_by_hand() {
        let q = quantiles(&[1.0, 2.0, 3.0, 4.0, 10.0], 5); // 1.8 2.6 3.4 5.2
        let up: Vec<u32> = [1.0, 2.0, 3.0, 4.0, 10.0].iter().map(|&v| score_up(v, &q)).collect();
        assert_eq!(up, vec![1, 2, 3, 4, 5]);
        let down: Vec<u32> =
            [1.0, 2.0, 3.0, 4.0, 10.0].iter().map(|&v| score_down(v, &q)).collect();
        assert_eq!(down, vec![5, 4, 3, 2, 1]);
        // All equal: every value gets the lowest "up" score and the highest "down" score.
        let q = quantiles(&[3.0; 4], 5);
        assert_eq!(score_up(3.0, &q), 1);
        assert_eq!(score_down(3.0, &q), 5);
    }

    fn one_customer(amounts: &[f64]) -> Transactions {
        let mut tx = Transactions::default();
        let id = tx.ids.push(b"a");
        for &a in amounts {
            tx.customer.push(id);
            tx.day.push(0);
            tx.amount.push(a);
        }
        tx
    }

    #[test]
    fn money_sums_exactly() {
        // Naively 42.96 + 56.25 + 25.9 = 125.11000000000001.
        assert_eq!(42.96 + 56.25 + 25.9, 125.11000000000001);
        assert_eq!(aggregate(&one_customer(&[42.96, 56.25, 25.9])).net[0], 125.11);
        // Line items: 6 x 2.55 is 15.299999999999999 in floating point.
        let items = [6.0 * 2.55, 6.0 * 3.39, 6.0 * 1.85, -27.5];
        assert_eq!(net_amounts(&one_customer(&items))[0], 19.24);
        assert_eq!(decimal_scale(&[1.0, 2.0]), Some(1.0));
        assert_eq!(decimal_scale(&[0.5, 1.25, 1e-3]), Some(1000.0));
        // Not decimal money: compensated summation, close to the exact sum.
        let thirds = one_customer(&[1.0 / 3.0; 3]);
        assert_eq!(decimal_scale(&thirds.amount), None);
        assert_eq!(net_amounts(&thirds)[0], 1.0);
    }

    #[test]
    fn grouping_keeps_row_order_within_customers() {
        let mut tx = Transactions::default();
        let (a, b) = (tx.ids.push(b"a"), tx.ids.push(b"b"));
        let _unused = tx.ids.push(b"c");
        for (c, v) in [(b, 1.0), (a, 2.0), (b, 3.0), (a, -4.0), (a, 5.0)] {
            tx.customer.push(c);
            tx.day.push(0);
            tx.amount.push(v);
        }
        let g = group_by_customer(&tx, |r| (tx.amount[r] > 0.0).then_some(tx.amount[r] as u64));
        assert_eq!(g.get(0), &[2, 5]);
        assert_eq!(g.get(1), &[1, 3]);
        assert_eq!(g.get(2), &[] as &[u64]);
    }

    proptest! {
        #[test]
        fn parallel_grouping_equals_sequential(
            rows in prop::collection::vec((0u32..500, -5i32..50), 0..200_000usize),
        ) {
            let mut tx = Transactions::default();
            for c in 0..500u32 {
                tx.ids.push(c.to_string().as_bytes());
            }
            for &(c, v) in &rows {
                tx.customer.push(c);
                tx.day.push(v);
                tx.amount.push(v as f64);
            }
            let value = |r: usize| (tx.amount[r] > 0.0).then_some((tx.day[r], r as u32));
            let par = group_by_customer(&tx, value);
            let seq = group_sequential(&tx, value);
            prop_assert_eq!(par.offsets, seq.offsets);
            prop_assert!(par.values == seq.values);
        }
    }

    #[test]
    fn distinct_counts() {
        assert_eq!(count_distinct(&[]), 0);
        assert_eq!(count_distinct(&[3, 1, 3, 2, 1]), 3);
        let many: Vec<u64> = (0..100).map(|i| i % 40).collect();
        assert_eq!(count_distinct(&many), 40);
    }

    #[test]
    fn score_strings() {
        assert_eq!(rfm_score(5, 4, 3, 5), "543");
        assert_eq!(rfm_score(10, 4, 3, 10), "10-4-3");
    }

    proptest! {
        #[test]
        fn histogram_quantiles_equal_sorted_quantiles(
            values in prop::collection::vec(-50i64..400, 1..300),
            bins in 2u32..12,
        ) {
            let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            sorted.sort_by(f64::total_cmp);
            prop_assert_eq!(quantiles_of_ints(&values, |&v| v, bins), quantiles(&sorted, bins));
        }

        #[test]
        fn selection_quantiles_equal_sorted_quantiles(
            values in prop::collection::vec(prop_oneof![-1e6f64..1e6, (0u8..5).prop_map(f64::from)], 1..300),
            bins in 2u32..12,
        ) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            prop_assert_eq!(quantiles_of(values, bins), quantiles(&sorted, bins));
        }

        #[test]
        fn scores_are_monotone_bounded_and_tie_consistent(
            values in prop::collection::vec(-1e6f64..1e6, 1..200),
            bins in 2u32..10,
        ) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let q = quantiles(&sorted, bins);
            for w in q.windows(2) {
                prop_assert!(w[0] <= w[1]);
            }
            for &a in &values {
                let (ua, da) = (score_up(a, &q), score_down(a, &q));
                prop_assert!((1..=bins).contains(&ua) && (1..=bins).contains(&da));
                prop_assert_eq!(ua + da, bins + 1);
                for &b in &values {
                    if a < b {
                        prop_assert!(score_up(a, &q) <= score_up(b, &q));
                        prop_assert!(score_down(a, &q) >= score_down(b, &q));
                    }
                    if a == b {
                        prop_assert_eq!(score_up(a, &q), score_up(b, &q));
                    }
                }
            }
            // The smallest value never exceeds the first cut point.
            prop_assert_eq!(score_up(sorted[0], &q), 1);
        }
    }
}
