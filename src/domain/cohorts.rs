//! Retention cohorts: customers grouped by the period of their first
//! purchase, and how many of them buy again in each later period.
//!
//! All counting is done on integer period indices (months since year 0,
//! ISO weeks since the epoch, ...), so a cell is just (cohort index, offset).
//! Work is per customer over their own purchases (grouped once, in
//! parallel), then summed into a small dense matrix.

use rayon::prelude::*;

use crate::base::aggregate::{decimal_scale, group_by_customer};
use crate::base::dates::{civil_from_days, days_from_civil};
use crate::base::transactions::{is_purchase, Transactions};

crate::named_enum! {
    #[derive(Default)]
    pub enum Period {
        Day = ("day", ""),
        Week = ("week", "ISO weeks, starting on Monday"),
        #[default]
        Month = ("month", ""),
        Quarter = ("quarter", ""),
    }
}

impl Period {
    /// The index of the period holding a day; consecutive periods have consecutive indices.
    pub fn index(self, day: i32) -> i64 {
        match self {
            Period::Day => day as i64,
            // 1970-01-01 was a Thursday: day + 3 counts from the Monday before it.
            Period::Week => (day as i64 + 3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                y as i64 * 12 + (m as i64 - 1)
            }
            Period::Quarter => {
                let (y, m, _) = civil_from_days(day);
                y as i64 * 4 + (m as i64 - 1) / 3
            }
        }
    }

    /// The first day of the period with this index.
    pub fn start(self, index: i64) -> i32 {
        match self {
            Period::Day => index as i32,
            Period::Week => (index * 7 - 3) as i32,
            Period::Month => {
                days_from_civil(index.div_euclid(12) as i32, (index.rem_euclid(12) + 1) as u32, 1)
            }
            Period::Quarter => {
                days_from_civil(index.div_euclid(4) as i32, (index.rem_euclid(4) * 3 + 1) as u32, 1)
            }
        }
    }
}

crate::named_enum! {
    #[derive(Default)]
    pub enum Retention {
        #[default]
        Classic = ("classic", "Retained at k: bought in period k (\"return on\")"),
        Rolling = ("rolling", "Retained at k: bought in period k or any later period up to as-of (\"return on or after\")"),
    }
}

/// One cell of the cohort matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// First day of the cohort's period.
    pub cohort: i32,
    /// Whole periods from the cohort's period to this one.
    pub period: u32,
    pub cohort_size: u64,
    /// Customers retained at this offset.
    pub customers: u64,
    pub retention: f64,
    /// Purchases in this cell (distinct orders, or rows without an order column).
    pub orders: u64,
    /// Net amount of the cohort's rows dated in this period.
    pub revenue: f64,
    /// The same in ten-thousandths, exactly, when every amount is decimal
    /// money (at most 4 decimals): what [`merge`] adds up.
    pub revenue_units: Option<i64>,
    /// The period contains the as-of date and is not complete.
    pub partial: bool,
}

/// The matrix, in cohort then offset order.
#[derive(Clone, Debug, PartialEq)]
pub struct Cohorts {
    pub period: Period,
    pub retention: Retention,
    pub cells: Vec<Cell>,
    /// Rows of cohort customers dated before their first purchase (returns
    /// of earlier purchases outside the data); they belong to no cell.
    pub rows_before_first_purchase: u64,
}

/// Computes the cohort matrix. Customers without a purchase have no cohort.
pub fn compute(tx: &Transactions, period: Period, retention: Retention) -> Cohorts {
    let n = tx.ids.len();
    let mut first = vec![i32::MAX; n];
    for r in 0..tx.len() {
        if is_purchase(tx.amount[r]) {
            let c = tx.customer[r] as usize;
            first[c] = first[c].min(tx.day[r]);
        }
    }
    let last_index = period.index(tx.as_of);
    // Period index of every day in the data's range, looked up per row.
    let (lo, hi) = tx
        .day
        .par_iter()
        .fold(|| (i32::MAX, i32::MIN), |(a, b), &d| (a.min(d), b.max(d)))
        .reduce(|| (i32::MAX, i32::MIN), |x, y| (x.0.min(y.0), x.1.max(y.1)));
    // No rows (a partition of the streaming engine can have none): no table,
    // rather than the index of day i32::MAX, which overflowed.
    let table: Vec<i64> = (lo..=hi).map(|d| period.index(d)).collect();
    let index_of = |day: i32| table[(day - lo) as usize];
    // Each customer's cohort (its period index), NONE without a purchase: 4
    // bytes a customer rather than an Option<i64>'s 16 (0.5 GB less at 40M
    // customers).
    const NONE: i32 = i32::MIN;
    let cohort_index: Vec<i32> =
        first.par_iter().map(|&d| if d == i32::MAX { NONE } else { index_of(d) as i32 }).collect();
    let cohort_of = |c: usize| {
        let i = cohort_index[c];
        (i != NONE).then_some(i as i64)
    };
    let Some(first_index) = (0..n).filter_map(cohort_of).min() else {
        return Cohorts { period, retention, cells: Vec::new(), rows_before_first_purchase: 0 };
    };
    let width = (last_index - first_index + 1) as usize;
    let cell = |cohort: i64, k: i64| (cohort - first_index) as usize * width + k as usize;

    // Each customer's purchases as (offset, order key), grouped by customer.
    let order_key = |r: usize| match &tx.order {
        Some(o) => o[r],
        None => r as u64,
    };
    let groups = group_by_customer(tx, |r| {
        is_purchase(tx.amount[r]).then(|| {
            let c = cohort_of(tx.customer[r] as usize).expect("a purchase gives a cohort");
            ((index_of(tx.day[r]) - c) as u32, order_key(r))
        })
    });
    let size = width * width;
    let (customers, orders, sizes) = (0..n)
        .into_par_iter()
        .fold(
            || (vec![0u64; size], vec![0u64; size], vec![0u64; width], Vec::new()),
            |(mut customers, mut orders, mut sizes, mut buys), c| {
                let Some(cohort) = cohort_of(c) else {
                    return (customers, orders, sizes, buys);
                };
                sizes[(cohort - first_index) as usize] += 1;
                buys.clear();
                buys.extend_from_slice(groups.get(c));
                buys.sort_unstable();
                buys.dedup();
                let last_k = buys.last().map_or(0, |b| b.0) as i64;
                match retention {
                    Retention::Classic => {
                        let mut prev = None;
                        for &(k, _) in &buys {
                            if prev != Some(k) {
                                customers[cell(cohort, k as i64)] += 1;
                                prev = Some(k);
                            }
                        }
                    }
                    Retention::Rolling => {
                        for k in 0..=last_k {
                            customers[cell(cohort, k)] += 1;
                        }
                    }
                }
                for &(k, _) in &buys {
                    orders[cell(cohort, k as i64)] += 1;
                }
                (customers, orders, sizes, buys)
            },
        )
        .map(|(customers, orders, sizes, _)| (customers, orders, sizes))
        .reduce(
            || (vec![0u64; size], vec![0u64; size], vec![0u64; width]),
            |mut a, b| {
                a.0.iter_mut().zip(b.0).for_each(|(x, y)| *x += y);
                a.1.iter_mut().zip(b.1).for_each(|(x, y)| *x += y);
                a.2.iter_mut().zip(b.2).for_each(|(x, y)| *x += y);
                a
            },
        );

    // Revenue: every row of a cohort customer (returns too), exactly for decimal money.
    let scale = decimal_scale(&tx.amount);
    let mut units = vec![0i64; if scale.is_some() { size } else { 0 }];
    let mut floats = vec![0.0f64; if scale.is_some() { 0 } else { size }];
    let mut before = 0u64;
    for r in 0..tx.len() {
        let Some(cohort) = cohort_of(tx.customer[r] as usize) else { continue };
        let k = index_of(tx.day[r]) - cohort;
        if k < 0 {
            before += 1;
            continue;
        }
        match scale {
            Some(m) => units[cell(cohort, k)] += crate::base::aggregate::to_units(tx.amount[r], m),
            None => floats[cell(cohort, k)] += tx.amount[r],
        }
    }
    let revenue = |i: usize| match scale {
        Some(m) => units[i] as f64 / m,
        None => floats[i],
    };

    let as_of_complete = tx.as_of + 1 == period.start(last_index + 1);
    let mut cells = Vec::new();
    for cohort in first_index..=last_index {
        let cohort_size = sizes[(cohort - first_index) as usize];
        if cohort_size == 0 {
            continue;
        }
        for k in 0..=(last_index - cohort) {
            let i = cell(cohort, k);
            cells.push(Cell {
                cohort: period.start(cohort),
                period: k as u32,
                cohort_size,
                customers: customers[i],
                retention: customers[i] as f64 / cohort_size as f64,
                orders: orders[i],
                revenue: revenue(i),
                revenue_units: scale.map(|m| units[i] * (1e4 / m) as i64),
                partial: cohort + k == last_index && !as_of_complete,
            });
        }
    }
    Cohorts { period, retention, cells, rows_before_first_purchase: before }
}

/// The cohort matrices of disjoint sets of customers (the partitions of
/// the streaming engine), as one: counts and sizes add up, retention is
/// recomputed, revenue is added exactly where every part has it exactly.
/// All parts share the period, the retention and the as-of date.
pub fn merge(parts: Vec<Cohorts>) -> Cohorts {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap();
    }
    let (period, retention) =
        parts.first().map_or_else(Default::default, |p| (p.period, p.retention));
    let mut cells: std::collections::BTreeMap<(i32, u32), Cell> = Default::default();
    let mut before = 0;
    for part in parts {
        before += part.rows_before_first_purchase;
        for c in part.cells {
            match cells.entry((c.cohort, c.period)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(c);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let m = o.get_mut();
                    m.cohort_size += c.cohort_size;
                    m.customers += c.customers;
                    m.orders += c.orders;
                    m.revenue += c.revenue;
                    m.revenue_units = m.revenue_units.zip(c.revenue_units).map(|(a, b)| a + b);
                }
            }
        }
    }
    let cells = cells
        .into_values()
        .map(|mut c| {
            c.retention = c.customers as f64 / c.cohort_size as f64;
            if let Some(u) = c.revenue_units {
                c.revenue = u as f64 / 1e4;
            }
            c
        })
        .collect();
    Cohorts { period, retention, cells, rows_before_first_purchase: before }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::dates::{parse_ymd, Day};
    use proptest::prelude::*;

    fn d(s: &str) -> i32 {
        parse_ymd(s).unwrap()
    }

    #[test]
    fn period_indices_and_starts() {
        // 2024-12-30 (Monday) starts ISO week 1 of 2025; 2024-12-29 is a Sunday.
        let w = Period::Week;
        assert_eq!(Day(w.start(w.index(d("2025-01-01")))).to_string(), "2024-12-30");
        assert_eq!(w.index(d("2024-12-29")) + 1, w.index(d("2024-12-30")));
        assert_eq!(Day(w.start(w.index(d("1970-01-01")))).to_string(), "1969-12-29");
        let q = Period::Quarter;
        assert_eq!(Day(q.start(q.index(d("2024-06-30")))).to_string(), "2024-04-01");
        assert_eq!(q.index(d("2024-07-01")) - q.index(d("2024-06-30")), 1);
        assert_eq!(q.index(d("2025-01-01")) - q.index(d("2024-12-31")), 1);
        let m = Period::Month;
        assert_eq!(Day(m.start(m.index(d("2024-02-29")))).to_string(), "2024-02-01");
        assert_eq!(m.index(d("2025-01-15")) - m.index(d("2024-11-30")), 2);
        for p in [Period::Day, Period::Week, Period::Month, Period::Quarter] {
            for day in -800..800 {
                let i = p.index(day);
                assert!(p.start(i) <= day && day < p.start(i + 1), "{p:?} {day}");
            }
        }
    }

    fn tx_from(rows: &[(u32, i32, f64)], customers: u32, as_of: i32) -> Transactions {
        let mut tx = Transactions::default();
        for c in 0..customers {
            tx.ids.push(format!("c{c}").as_bytes());
        }
        for &(c, day, amount) in rows {
            tx.customer.push(c);
            tx.day.push(day);
            tx.amount.push(amount);
        }
        tx.as_of = as_of;
        tx
    }

    /// The rows of the customers `keep` picks, with codes renumbered densely.
    fn customers_of(rows: &[(u32, i32, f64)], keep: impl Fn(u32) -> bool) -> Vec<(u32, i32, f64)> {
        let mut codes = std::collections::BTreeMap::new();
        rows.iter()
            .filter(|r| keep(r.0))
            .map(|&(c, d, a)| {
                let n = codes.len() as u32;
                (*codes.entry(c).or_insert(n), d, a)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn merged_partitions_equal_the_whole(
            rows in prop::collection::vec((0u32..40, 0i32..500, -5000i64..20000), 1..300),
            period in prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month), Just(Period::Quarter)],
            rolling in any::<bool>(),
            parts in 2u32..5,
        ) {
            // Amounts in cents, as money is: revenue must add up exactly.
            let rows: Vec<(u32, i32, f64)> =
                rows.into_iter().map(|(c, d, cents)| (c, d, cents as f64 / 100.0)).collect();
            let as_of = rows.iter().map(|r| r.1).max().unwrap();
            let retention = if rolling { Retention::Rolling } else { Retention::Classic };
            let whole = compute(&tx_from(&rows, 40, as_of), period, retention);
            let pieces: Vec<Cohorts> = (0..parts)
                .map(|p| {
                    let part = customers_of(&rows, |c| c % parts == p);
                    compute(&tx_from(&part, 40, as_of), period, retention)
                })
                .collect();
            let merged = merge(pieces);
            prop_assert_eq!(merged.rows_before_first_purchase, whole.rows_before_first_purchase);
            prop_assert_eq!(merged.cells.len(), whole.cells.len());
            for (m, w) in merged.cells.iter().zip(&whole.cells) {
                prop_assert_eq!(
                    (m.cohort, m.period, m.cohort_size, m.customers, m.orders, m.partial),
                    (w.cohort, w.period, w.cohort_size, w.customers, w.orders, w.partial)
                );
                prop_assert_eq!(m.retention.to_bits(), w.retention.to_bits());
                prop_assert_eq!(m.revenue.to_bits(), w.revenue.to_bits(), "{:?} {:?}", m, w);
            }
        }

        #[test]
        fn cohort_invariants(
            rows in prop::collection::vec((0u32..30, 0i32..400, -50.0f64..200.0), 1..300),
            period in prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month), Just(Period::Quarter)],
        ) {
            let as_of = rows.iter().map(|r| r.1).max().unwrap();
            let tx = tx_from(&rows, 30, as_of);
            let classic = compute(&tx, period, Retention::Classic);
            let rolling = compute(&tx, period, Retention::Rolling);
            prop_assert_eq!(classic.cells.len(), rolling.cells.len());
            for (a, b) in classic.cells.iter().zip(&rolling.cells) {
                prop_assert_eq!((a.cohort, a.period), (b.cohort, b.period));
                if a.period == 0 {
                    prop_assert_eq!(a.customers, a.cohort_size);
                    prop_assert_eq!(b.customers, b.cohort_size);
                }
                prop_assert!(a.customers <= b.customers);
                prop_assert!(b.customers <= b.cohort_size);
            }
            for w in rolling.cells.windows(2) {
                if w[0].cohort == w[1].cohort {
                    prop_assert!(w[1].customers <= w[0].customers);
                }
            }
            let buyers = (0..30u32).filter(|&c| rows.iter().any(|r| r.0 == c && r.2 >= 0.0)).count() as u64;
            let sizes: u64 = classic.cells.iter().filter(|c| c.period == 0).map(|c| c.cohort_size).sum();
            prop_assert_eq!(sizes, buyers);
        }
    }
}
