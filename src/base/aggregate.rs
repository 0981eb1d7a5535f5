//! Per-customer aggregates and the exact money arithmetic behind them, the
//! parallel group-by by customer code, and the order of customer ids: shared
//! by the readers (which aggregate while loading), the analyses and the
//! writers.

use rayon::prelude::*;

use crate::base::transactions::{is_purchase, CustomerIds, Transactions};

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
}
