//! Each customer's (x, t_x, T, m) from the rows, and the distinct patterns
//! that fitting and scoring work on.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::base::aggregate::{count_distinct, group_by_customer, Aggregates, Grouped};
use crate::base::transactions::Transactions;

use super::{History, Summary, Unit};

impl Summary {
    pub fn history(&self, i: usize, unit: Unit) -> History {
        History {
            x: self.x[i] as f64,
            t_x: self.t_x_days[i] as f64 / unit.days(),
            t: self.t_days[i] as f64 / unit.days(),
        }
    }
}

/// The customer summary: purchases on the same day are one purchase with
/// their amounts summed; returns do not count.
pub fn summarize(tx: &Transactions) -> Summary {
    histories(tx).1
}

/// The RFM aggregates and the model summary of every customer, from one
/// grouping of the rows by customer. Grouping row numbers (4 bytes a row)
/// rather than copies of the values keeps the peak memory of scoring 100M
/// rows within a few GB, and one pass serves both analyses.
pub fn histories(tx: &Transactions) -> (Aggregates, Summary) {
    let groups = group_by_customer(tx, |r| Some(r as u32));
    let figures = customer_figures(tx, &groups);
    // The grouping (4 bytes a row, 8 a customer) goes before the summary is
    // built: with 40M customers that is 0.7 GB less at the peak.
    drop(groups);
    figures.into_histories(tx.as_of)
}

/// [`histories`] for a caller done with the rows, which are freed as soon
/// as they are no longer read: the customer column once the rows are
/// grouped, the others before the summary is built (scoring 10M rows: the
/// analysis stage's peak 67 MB lower). `tx` keeps its ids, `--keep` values
/// and as-of date.
pub fn histories_freeing_rows(tx: &mut Transactions) -> (Aggregates, Summary) {
    let groups = group_by_customer(tx, |r| Some(r as u32));
    tx.customer = Vec::new();
    let figures = customer_figures(tx, &groups);
    drop(groups);
    (tx.day, tx.amount, tx.order) = (Vec::new(), Vec::new(), None);
    figures.into_histories(tx.as_of)
}

/// [`histories`] from a grouping of row numbers made earlier, possibly of
/// more rows: rows numbered from `tx.day.len()` on are ignored. When the rows are
/// in day order, one grouping thus serves every earlier as-of date, whose
/// rows are a prefix of them.
pub fn histories_of(tx: &Transactions, groups: &Grouped<u32>) -> (Aggregates, Summary) {
    customer_figures(tx, groups).into_histories(tx.as_of)
}

/// How many customers ahead [`customer_figures`] fetches rows.
const PREFETCH_AHEAD: usize = 8;

/// Every customer's aggregates and model figures, indexed by customer code
/// (customers without a purchase included).
struct CustomerFigures {
    agg: Aggregates,
    x: Vec<u32>,
    t_x: Vec<i32>,
    m: Vec<f64>,
}

fn customer_figures(tx: &Transactions, groups: &Grouped<u32>) -> CustomerFigures {
    let n = tx.ids.len();
    // Decimal money is summed exactly, as in `churn rfm`.
    let scale = crate::base::aggregate::decimal_scale(&tx.amount);
    let mut agg = Aggregates {
        first_purchase: vec![i32::MAX; n],
        last_purchase: vec![i32::MIN; n],
        purchases: vec![0; n],
        net: vec![0.0; n],
    };
    let mut x = vec![0u32; n];
    let mut t_x = vec![0i32; n];
    let mut m = vec![0.0f64; n];
    (
        agg.first_purchase.par_iter_mut(),
        agg.last_purchase.par_iter_mut(),
        agg.purchases.par_iter_mut(),
        agg.net.par_iter_mut(),
        x.par_iter_mut(),
        t_x.par_iter_mut(),
        m.par_iter_mut(),
    )
        .into_par_iter()
        .enumerate()
        // Scratch space for a customer's purchases as (day, amount), and their order keys.
        .for_each_init(
            || (Vec::<(i32, f64)>::new(), Vec::<u64>::new()),
            |(buys, orders), (c, (first, last, purchases, net, x, t_x, m))| {
                // A customer's rows lie anywhere in the input: fetch a later
                // customer's now, so that they are in cache when reached.
                if c + PREFETCH_AHEAD < n {
                    for &r in groups.get(c + PREFETCH_AHEAD) {
                        let r = r as usize;
                        crate::base::prefetch(&tx.day, r);
                        crate::base::prefetch(&tx.amount, r);
                        if let Some(o) = &tx.order {
                            crate::base::prefetch(o, r);
                        }
                    }
                }
                let rows = groups.get(c);
                let rows = &rows[..rows.partition_point(|&r| (r as usize) < tx.day.len())];
                *net = match scale {
                    Some(s) => {
                        rows.iter()
                            .map(|&r| crate::base::aggregate::to_units(tx.amount[r as usize], s))
                            .sum::<i64>() as f64
                            / s
                    }
                    None => crate::base::aggregate::compensated_sum(
                        rows.iter().map(|&r| tx.amount[r as usize]),
                    ),
                };
                {
                    buys.clear();
                    orders.clear();
                    for &r in rows {
                        let r = r as usize;
                        if crate::base::transactions::is_purchase(tx.amount[r]) {
                            buys.push((tx.day[r], tx.amount[r]));
                            if let Some(o) = &tx.order {
                                orders.push(o[r]);
                            }
                        }
                    }
                    if buys.is_empty() {
                        return;
                    }
                    *purchases = match tx.order {
                        Some(_) => count_distinct(orders),
                        None => buys.len() as u32,
                    };
                    // Exports are usually in date order: then there is nothing to sort.
                    if !buys.is_sorted_by_key(|b| b.0) {
                        buys.sort_by_key(|b| b.0);
                    }
                    // Purchase days: the first day, then each later day with its amounts summed.
                    let day0 = buys[0].0;
                    let (mut days, mut prev, mut repeat_total, mut repeat_units) =
                        (0u32, day0, 0.0, 0i64);
                    for &(d, a) in buys.iter() {
                        if d != day0 {
                            match scale {
                                Some(s) => repeat_units += crate::base::aggregate::to_units(a, s),
                                None => repeat_total += a,
                            }
                            if d != prev {
                                days += 1;
                            }
                        }
                        prev = d;
                    }
                    if let Some(s) = scale {
                        repeat_total = repeat_units as f64 / s;
                    }
                    *first = day0;
                    *last = prev;
                    *x = days;
                    *t_x = prev - day0;
                    *m = if days == 0 { 0.0 } else { repeat_total / days as f64 };
                }
            },
        );
    CustomerFigures { agg, x, t_x, m }
}

impl CustomerFigures {
    /// The aggregates, and the summary of the customers with a purchase.
    fn into_histories(self, as_of: i32) -> (Aggregates, Summary) {
        let CustomerFigures { agg, x, t_x, m } = self;
        let n = agg.first_purchase.len();
        let customer: Vec<u32> =
            (0..n as u32).filter(|&c| agg.first_purchase[c as usize] != i32::MAX).collect();
        let t_days = customer.iter().map(|&c| as_of - agg.first_purchase[c as usize]).collect();
        if customer.len() == n {
            // Every customer bought (the usual case): no copies to gather.
            return (agg, Summary { customer, x, t_x_days: t_x, t_days, monetary_avg: m });
        }
        let x = customer.iter().map(|&c| x[c as usize]).collect();
        let t_x_days = customer.iter().map(|&c| t_x[c as usize]).collect();
        drop(t_x);
        let monetary_avg = customer.iter().map(|&c| m[c as usize]).collect();
        drop(m);
        (agg, Summary { customer, x, t_x_days, t_days, monetary_avg })
    }
}

/// Distinct (x, t_x, T) patterns with their counts, and each customer's pattern.
pub struct Patterns {
    pub histories: Vec<History>,
    pub weights: Vec<f64>,
    pub of_customer: Vec<u32>,
    /// (t_x, T) in whole days and the unit's length, when the histories come
    /// from calendar days: fitting then takes ln(α + t) from small tables.
    pub days: Option<(Vec<i32>, Vec<i32>, f64)>,
}

impl Patterns {
    /// Every `stride`-th pattern with its weight, for a warm start.
    pub(super) fn every(&self, stride: usize) -> Patterns {
        Patterns {
            histories: every_nth(&self.histories, stride),
            weights: every_nth(&self.weights, stride),
            of_customer: Vec::new(),
            days: self.days.as_ref().map(|(t_x, t, unit_days)| {
                (every_nth(t_x, stride), every_nth(t, stride), *unit_days)
            }),
        }
    }
}

/// Every `stride`-th value, from the first.
pub(super) fn every_nth<T: Copy>(v: &[T], stride: usize) -> Vec<T> {
    v.iter().step_by(stride).copied().collect()
}

pub fn patterns(s: &Summary, unit: Unit) -> Patterns {
    // Patterns in sorted order, (T, x, t_x), so that the likelihood is
    // summed in the same order, and the fit comes out the same to the last
    // bit, whatever the order of the customers (rows in another order, or a
    // summary file). T in days takes one value per day of history at most.
    let lowest = s.t_days.iter().copied().min().unwrap_or(0);
    let highest = s.t_days.iter().copied().max().unwrap_or(lowest);
    let found = distinct_in_groups(
        s.len(),
        (highest - lowest) as usize + 1,
        |i| Some((s.t_days[i] - lowest) as usize),
        |i| (s.x[i], s.t_x_days[i]),
        true,
    );
    let keys: Vec<(u32, i32, i32)> =
        found.keys.iter().map(|&(g, (x, t_x))| (x, t_x, lowest + g as i32)).collect();
    let histories = keys
        .iter()
        .map(|&(x, t_x, t)| History {
            x: x as f64,
            t_x: t_x as f64 / unit.days(),
            t: t as f64 / unit.days(),
        })
        .collect();
    let days =
        Some((keys.iter().map(|k| k.1).collect(), keys.iter().map(|k| k.2).collect(), unit.days()));
    Patterns { histories, weights: found.weights, of_customer: found.index_of, days }
}

/// The distinct keys of items that fall into groups numbered by a small
/// integer (keys of different groups never meet), in (group, key) order.
pub(super) struct Distinct<K> {
    pub keys: Vec<(u32, K)>,
    /// How many items have each key.
    pub weights: Vec<f64>,
    /// Each item's index into `keys` (when asked for; u32::MAX for items in
    /// no group).
    pub index_of: Vec<u32>,
}

/// [`Distinct`] of items `0..n`: `group_of` gives an item's group (`None`:
/// left out), `key_of` its key within the group.
///
/// Items are first grouped by a counting sort, then each group's keys are
/// found in a table small enough to stay in cache, and sorted, groups in
/// parallel. One table over all customers missed the cache on most lookups,
/// and one sort of all of them (1.8M spend customers on 10M rows) ran on
/// one core.
pub(super) fn distinct_in_groups<K: Copy + Eq + std::hash::Hash + Ord + Send + Sync>(
    n: usize,
    groups: usize,
    group_of: impl Fn(usize) -> Option<usize> + Sync,
    key_of: impl Fn(usize) -> K + Sync,
    with_index: bool,
) -> Distinct<K> {
    let mut starts = vec![0usize; groups + 1];
    for i in 0..n {
        if let Some(g) = group_of(i) {
            starts[g + 1] += 1;
        }
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut fill = starts.clone();
    let mut members = vec![0u32; starts[groups]];
    for i in 0..n {
        if let Some(g) = group_of(i) {
            members[fill[g]] = i as u32;
            fill[g] += 1;
        }
    }
    drop(fill);
    // Per group: its keys in order, their counts, and each member's index
    // into them.
    let found: Vec<(Vec<K>, Vec<f64>, Vec<u32>)> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let members = &members[starts[g]..starts[g + 1]];
            let mut index: HashMap<K, u32, foldhash::fast::FixedState> =
                HashMap::with_hasher(foldhash::fast::FixedState::with_seed(1));
            let (mut keys, mut counts) = (Vec::new(), Vec::new());
            let mut locals: Vec<u32> = members
                .iter()
                .map(|&i| {
                    let key = key_of(i as usize);
                    let k = *index.entry(key).or_insert_with(|| {
                        keys.push(key);
                        counts.push(0.0);
                        (keys.len() - 1) as u32
                    });
                    counts[k as usize] += 1.0;
                    k
                })
                .collect();
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_unstable_by_key(|&k| keys[k as usize]);
            let mut rank = vec![0u32; keys.len()];
            for (r, &k) in order.iter().enumerate() {
                rank[k as usize] = r as u32;
            }
            if with_index {
                locals.iter_mut().for_each(|l| *l = rank[*l as usize]);
            } else {
                locals = Vec::new();
            }
            let keys = order.iter().map(|&k| keys[k as usize]).collect();
            let counts = order.iter().map(|&k| counts[k as usize]).collect();
            (keys, counts, locals)
        })
        .collect();
    let total: usize = found.iter().map(|f| f.0.len()).sum();
    let mut out = Distinct {
        keys: Vec::with_capacity(total),
        weights: Vec::with_capacity(total),
        index_of: if with_index { vec![u32::MAX; n] } else { Vec::new() },
    };
    for (g, (keys, counts, locals)) in found.into_iter().enumerate() {
        let base = out.keys.len() as u32;
        out.keys.extend(keys.into_iter().map(|k| (g as u32, k)));
        out.weights.extend(counts);
        for (&i, local) in members[starts[g]..starts[g + 1]].iter().zip(locals) {
            out.index_of[i as usize] = base + local;
        }
    }
    out
}
