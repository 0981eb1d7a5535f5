//! Probabilistic customer-base models: who is still a customer, how much
//! will they buy, and what are they worth.
//!
//! The transactions are reduced to one (x, t_x, T, m) summary per customer;
//! customers with the same (x, t_x, T) share a likelihood term and every
//! conditional expectation, so fitting and scoring cost grows with the
//! number of distinct patterns, not of customers.

pub mod optimize;
pub mod pareto;
pub mod purchase;
pub mod special;
pub mod spend;

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::base::aggregate::{count_distinct, group_by_customer, Aggregates, Grouped};
use crate::base::summary::Summary;
use crate::base::transactions::Transactions;
pub use purchase::{History, Kind};
use special::{digamma, ln_gamma};

crate::named_enum! {
    /// The time unit of x's rates, t_x and T.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Unit {
        Day = ("day", ""),
        #[default]
        Week = ("week", ""),
        Month = ("month", "365.25 / 12 days"),
    }
}

impl Unit {
    pub fn days(self) -> f64 {
        match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
            Unit::Month => 365.25 / 12.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }
}

/// The fewest customers a purchase model is fitted to.
pub const MIN_CUSTOMERS: usize = 10;

/// Why these histories cannot support a purchase model, if they cannot: the
/// optimizer would otherwise wander to a boundary and report a fit that did
/// not converge, which tells the user nothing about what is wrong.
pub fn fit_data_problem(s: &Summary) -> Option<String> {
    let n = s.len();
    if n < MIN_CUSTOMERS {
        return Some(format!(
            "only {n} customer{} with purchases: too few to fit a purchase model (at least {MIN_CUSTOMERS} are needed, and a few hundred for figures worth acting on)",
            if n == 1 { "" } else { "s" }
        ));
    }
    if s.x.iter().all(|&x| x == 0) {
        return Some(format!(
            "no customer bought on more than one day (all {n} bought once): the purchase models learn from repeat purchases; use a longer history, or `churn rfm`"
        ));
    }
    let every_day = (0..n).all(|i| s.x[i] as i32 == s.t_x_days[i] && s.t_x_days[i] == s.t_days[i]);
    if every_day {
        return Some(format!(
            "every one of the {n} customers bought on every day from their first purchase to the as-of date: with no gaps there is no dropout to learn, so the purchase models cannot be fitted"
        ));
    }
    None
}

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
    fn every(&self, stride: usize) -> Patterns {
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
fn every_nth<T: Copy>(v: &[T], stride: usize) -> Vec<T> {
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
struct Distinct<K> {
    keys: Vec<(u32, K)>,
    /// How many items have each key.
    weights: Vec<f64>,
    /// Each item's index into `keys` (when asked for; u32::MAX for items in
    /// no group).
    index_of: Vec<u32>,
}

/// [`Distinct`] of items `0..n`: `group_of` gives an item's group (`None`:
/// left out), `key_of` its key within the group.
///
/// Items are first grouped by a counting sort, then each group's keys are
/// found in a table small enough to stay in cache, and sorted, groups in
/// parallel. One table over all customers missed the cache on most lookups,
/// and one sort of all of them (1.8M spend customers on 10M rows) ran on
/// one core.
fn distinct_in_groups<K: Copy + Eq + std::hash::Hash + Ord + Send + Sync>(
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

/// Which model, in files and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    Bgnbd,
    Mbgnbd,
    Pnbd,
    Gg,
}

impl ModelName {
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            ModelName::Bgnbd | ModelName::Mbgnbd => &["r", "alpha", "a", "b"],
            ModelName::Pnbd => &["r", "alpha", "s", "beta"],
            ModelName::Gg => &["p", "q", "gamma"],
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ModelName::Bgnbd => "BG/NBD",
            ModelName::Mbgnbd => "MBG/NBD",
            ModelName::Pnbd => "Pareto/NBD",
            ModelName::Gg => "Gamma-Gamma",
        }
    }

    pub fn purchase_kind(self) -> Option<Kind> {
        match self {
            ModelName::Bgnbd => Some(Kind::BgNbd),
            ModelName::Mbgnbd => Some(Kind::MbgNbd),
            ModelName::Pnbd => Some(Kind::Pnbd),
            ModelName::Gg => None,
        }
    }
}

/// A fitted model, as printed with `--json` and stored by `--save`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FittedModel {
    pub model: ModelName,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub std_errors: serde_json::Map<String, serde_json::Value>,
    pub log_likelihood: f64,
    pub aic: f64,
    pub bic: f64,
    pub customers: u64,
    pub converged: bool,
    pub unit: Unit,
    pub as_of: String,
}

impl FittedModel {
    pub fn param_vec(&self) -> Vec<f64> {
        self.model
            .param_names()
            .iter()
            .map(|n| self.params.get(*n).and_then(|v| v.as_f64()).unwrap_or(f64::NAN))
            .collect()
    }
}

/// The raw result of a fit.
#[derive(Clone, Debug)]
pub struct Fit {
    pub params: Vec<f64>,
    pub std_errors: Vec<f64>,
    pub log_likelihood: f64,
    pub converged: bool,
    pub observations: u64,
}

/// Σ f(i) for i in 0..n, in parallel but always in the same order: fixed
/// blocks summed in sequence, then the block sums in sequence. (Rayon's
/// fold/reduce splits work differently from run to run, and floating-point
/// sums in a different order give fitted parameters that differ in the last
/// digits: the output would not be byte-identical.)
fn ordered_sum<const K: usize>(
    n: usize,
    f: impl Fn(usize) -> (f64, [f64; K]) + Sync,
) -> (f64, [f64; K]) {
    const BLOCK: usize = 4096;
    let blocks: Vec<(f64, [f64; K])> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut acc = (0.0, [0.0; K]);
            for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let (v, g) = f(i);
                acc.0 += v;
                acc.1.iter_mut().zip(g).for_each(|(a, x)| *a += x);
            }
            acc
        })
        .collect();
    blocks.into_iter().fold((0.0, [0.0; K]), |mut a, b| {
        a.0 += b.0;
        a.1.iter_mut().zip(b.1).for_each(|(x, y)| *x += y);
        a
    })
}

/// The mean negative log-likelihood (+ L2 penalty on the parameters) in
/// θ = ln p, from `term(params) -> (Σ w ll, Σ w ∇ll)` over the data.
fn ml_objective(
    penalty: f64,
    total_weight: f64,
    term: impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync,
) -> impl Fn(&[f64]) -> (f64, Vec<f64>) {
    move |theta: &[f64]| {
        let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let (ll, grad) = term(&p);
        let value = -ll / total_weight + penalty * p.iter().map(|v| v * v).sum::<f64>();
        let g =
            (0..p.len()).map(|i| (-grad[i] / total_weight + 2.0 * penalty * p[i]) * p[i]).collect();
        (value, g)
    }
}

/// Fits with at least this many distinct data points start from a fit on a
/// sample of them ([`WARM_START_SAMPLE`] points, every k-th in sorted order,
/// with their weights): most BFGS iterations go to crossing from the
/// generic start to the optimum's neighbourhood, and on the sample they
/// cost a few percent of a full pass. Smaller fits start as before.
const WARM_START_FROM: usize = 100_000;
const WARM_START_SAMPLE: usize = 25_000;

/// The stride of the warm-start sample over `n` data points, if any.
fn warm_start_stride(n: usize) -> Option<usize> {
    (n >= WARM_START_FROM).then_some(n / WARM_START_SAMPLE)
}

/// The minimum of the objective on a sample, when that fit converged: its
/// parameters, and BFGS's inverse Hessian, which spares the full fit the
/// iterations that learn the curvature (the objective is a mean, so the
/// sample's curvature is close to the full data's).
fn warm_start(
    start: &[f64],
    penalty: f64,
    total_weight: f64,
    term: impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync,
) -> Option<(Vec<f64>, Vec<Vec<f64>>)> {
    let objective = ml_objective(penalty, total_weight, term);
    let theta0: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let m = optimize::minimize(&objective, &theta0, None);
    m.converged.then(|| (m.theta.iter().map(|t| t.exp()).collect(), m.inverse_hessian))
}

/// [`fit_ml`] from `warm` (parameters and BFGS's inverse Hessian) when
/// given, falling back to `start` if that does not converge.
fn fit_ml_from(
    warm: Option<(Vec<f64>, Vec<Vec<f64>>)>,
    start: &[f64],
    exact_gradient: bool,
    penalty: f64,
    total_weight: f64,
    term: impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync,
) -> Fit {
    if let Some((params, inverse_hessian)) = warm {
        let fit =
            fit_ml(&params, Some(&inverse_hessian), exact_gradient, penalty, total_weight, &term);
        if fit.converged {
            return fit;
        }
    }
    fit_ml(start, None, exact_gradient, penalty, total_weight, term)
}

/// Fits from `start` (and BFGS's inverse Hessian in θ = ln p, when known);
/// `term(params) -> (Σ w ll, Σ w ∇ll)` over the data.
fn fit_ml(
    start: &[f64],
    h0: Option<&[Vec<f64>]>,
    exact_gradient: bool,
    penalty: f64,
    total_weight: f64,
    term: impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync,
) -> Fit {
    let objective = ml_objective(penalty, total_weight, &term);
    let theta0: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let m = optimize::minimize(&objective, &theta0, h0);
    let gradient =
        if m.gradient.len() == m.theta.len() { m.gradient.clone() } else { objective(&m.theta).1 };
    let h = optimize::hessian(&objective, &m.theta, exact_gradient.then_some(&gradient[..]));
    let theta = if m.converged {
        optimize::newton_step(&objective, &m.theta, m.value, &gradient, &h)
    } else {
        None
    };
    let params: Vec<f64> = theta.as_ref().unwrap_or(&m.theta).iter().map(|t| t.exp()).collect();
    // Standard errors: inverse Hessian of the total negative log-likelihood in θ,
    // mapped to the parameters by the delta method (se(p) = p se(θ)).
    let total: Vec<Vec<f64>> =
        h.iter().map(|r| r.iter().map(|v| v * total_weight).collect()).collect();
    let std_errors = match optimize::invert(&total) {
        Some(cov) => (0..params.len()).map(|i| params[i] * cov[i][i].max(0.0).sqrt()).collect(),
        None => vec![f64::NAN; params.len()],
    };
    let (ll, _) = term(&params);
    // A standard error of 0 comes from a Hessian that is not positive
    // definite (a parameter running off to infinity): not a maximum.
    let converged =
        m.converged && ll.is_finite() && std_errors.iter().all(|s| s.is_finite() && *s > 0.0);
    Fit { params, std_errors, log_likelihood: ll, converged, observations: total_weight as u64 }
}

/// Maximum likelihood fit of a purchase model.
pub fn fit_purchase(kind: Kind, pat: &Patterns, penalty: f64) -> Fit {
    fit_purchase_with(kind, pat, penalty, warm_start_stride(pat.histories.len()))
}

/// [`fit_purchase`], warm-started from every `warm_stride`-th pattern when given.
fn fit_purchase_with(kind: Kind, pat: &Patterns, penalty: f64, warm_stride: Option<usize>) -> Fit {
    let total: f64 = pat.weights.iter().sum();
    let mean_x = pat.histories.iter().zip(&pat.weights).map(|(h, w)| h.x * w).sum::<f64>() / total;
    let mean_t = pat.histories.iter().zip(&pat.weights).map(|(h, w)| h.t * w).sum::<f64>() / total;
    let alpha0 = (mean_t / mean_x.max(0.01)).max(1e-3);
    let start = match kind {
        Kind::Pnbd => [1.0, alpha0, 1.0, mean_t.max(1e-3)],
        _ => [1.0, alpha0, 1.0, 1.0],
    };
    let warm = warm_stride.and_then(|stride| {
        let sample = pat.every(stride);
        let total = sample.weights.iter().sum();
        warm_start(&start, penalty, total, purchase_term(kind, &sample))
    });
    // Pareto/NBD's gradient is a finite difference itself.
    let exact_gradient = kind != Kind::Pnbd;
    fit_ml_from(warm, &start, exact_gradient, penalty, total, purchase_term(kind, pat))
}

/// `params -> (Σ w ll, Σ w ∇ll)` of a purchase model over the patterns.
fn purchase_term(kind: Kind, pat: &Patterns) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync + '_ {
    let max_x = pat.histories.iter().map(|h| h.x as usize).max().unwrap_or(0);
    move |p| {
        let p4 = [p[0], p[1], p[2], p[3]];
        // The Γ and ψ terms depend on x alone: once per x, not per pattern.
        let per_x: Vec<purchase::XTerms> = if kind == Kind::Pnbd {
            Vec::new()
        } else {
            (0..=max_x).into_par_iter().map(|x| purchase::x_terms(kind, &p4, x as f64)).collect()
        };
        // ln(α + t) for every whole number of days up to the longest T.
        let table = pat.days.as_ref().map(|(_, t, unit_days)| {
            let max = t.iter().copied().max().unwrap_or(0).max(0) as usize;
            (0..=max).map(|d| (p4[1] + d as f64 / unit_days).ln()).collect::<Vec<f64>>()
        });
        let (ll, g) = ordered_sum(pat.histories.len(), |i| {
            let (h, w) = (pat.histories[i], pat.weights[i]);
            let (l, gi) = match (per_x.get(h.x as usize), &table, &pat.days) {
                (Some(xt), Some(lt), Some((t_x, t, _))) => purchase::log_likelihood_given(
                    kind,
                    &p4,
                    h,
                    xt,
                    lt[t[i] as usize],
                    lt[t_x[i] as usize],
                ),
                (Some(xt), _, _) => purchase::log_likelihood_given(
                    kind,
                    &p4,
                    h,
                    xt,
                    (p4[1] + h.t).ln(),
                    (p4[1] + h.t_x).ln(),
                ),
                _ => purchase::log_likelihood(kind, &p4, h),
            };
            (w * l, gi.map(|v| w * v))
        });
        (ll, g.to_vec())
    }
}

/// Maximum likelihood fit of Gamma-Gamma on customers with repeat purchases.
pub fn fit_spend(s: &Summary, penalty: f64) -> Option<Fit> {
    let data = SpendData::new(s);
    let stride = warm_start_stride(data.x.len());
    fit_spend_data(&data, penalty, stride)
}

/// [`fit_spend`], warm-started from every `warm_stride`-th distinct (x, m)
/// when given.
fn fit_spend_data(data: &SpendData, penalty: f64, warm_stride: Option<usize>) -> Option<Fit> {
    let customers = data.customers();
    if customers < 3.0 {
        return None;
    }
    let mean_m = data.m.iter().zip(&data.w).map(|(m, w)| m * w).sum::<f64>() / customers;
    let start = [1.0, 2.0, mean_m];
    let warm = warm_stride.and_then(|stride| {
        let sample = data.every(stride);
        warm_start(&start, penalty, sample.customers(), spend_term(&sample))
    });
    Some(fit_ml_from(warm, &start, true, penalty, customers, spend_term(data)))
}

/// `params -> (Σ ll, Σ ∇ll)` of Gamma-Gamma over the customers.
fn spend_term(data: &SpendData) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + Sync + '_ {
    move |p| {
        let (ll, grad) = data.log_likelihood(&[p[0], p[1], p[2]]);
        (ll, grad.to_vec())
    }
}

/// Customers with repeat purchases, as Gamma-Gamma sees them: each
/// distinct (x, m) once, with the number of customers who have it as its
/// weight. Money comes in cents and purchase counts are small, so there are
/// several times fewer pairs than customers (10M rows: 325,420 pairs for
/// 1,829,158 customers).
struct SpendData {
    x: Vec<f64>,
    m: Vec<f64>,
    ln_m: Vec<f64>,
    w: Vec<f64>,
    max_x: usize,
}

impl SpendData {
    fn new(s: &Summary) -> Self {
        // Sorted by (x, m), so that the likelihood is summed in one order
        // whatever the order of the customers: the fit is then the same to
        // the last bit. Positive doubles order as their bits do.
        let max_x = s.x.iter().copied().max().unwrap_or(0).max(1) as usize;
        let found = distinct_in_groups(
            s.len(),
            max_x + 1,
            |i| (s.x[i] > 0 && s.monetary_avg[i] > 0.0).then_some(s.x[i] as usize),
            |i| s.monetary_avg[i].to_bits(),
            false,
        );
        let x = found.keys.iter().map(|&(x, _)| x as f64).collect();
        let m: Vec<f64> = found.keys.iter().map(|&(_, m)| f64::from_bits(m)).collect();
        let ln_m = m.par_iter().map(|v| v.ln()).collect();
        SpendData { x, m, ln_m, w: found.weights, max_x }
    }

    /// The number of customers.
    fn customers(&self) -> f64 {
        self.w.iter().sum()
    }

    /// Every `stride`-th pair with its weight, for a warm start: each pair
    /// is in the sample as likely as any other, so the sample's weighted
    /// likelihood is an unbiased estimate of the full one over `stride`.
    fn every(&self, stride: usize) -> SpendData {
        SpendData {
            x: every_nth(&self.x, stride),
            m: every_nth(&self.m, stride),
            ln_m: every_nth(&self.ln_m, stride),
            w: every_nth(&self.w, stride),
            max_x: self.max_x,
        }
    }

    /// Σ log-likelihood and its gradient in (p, q, γ); the terms in x alone
    /// (Γ, ψ, ln x) are computed once per distinct x.
    fn log_likelihood(&self, params: &[f64; 3]) -> (f64, [f64; 3]) {
        let [pp, q, g] = *params;
        let per_x: Vec<(f64, f64, f64)> = (0..=self.max_x)
            .map(|x| {
                let (x, px) = (x as f64, pp * x as f64);
                if x == 0.0 {
                    return (0.0, 0.0, 0.0);
                }
                let d = digamma(px + q);
                (
                    ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * g.ln() + px * x.ln(),
                    x * (d - digamma(px) + x.ln()),
                    d - digamma(q) + g.ln(),
                )
            })
            .collect();
        ordered_sum(self.x.len(), |i| {
            let (x, m, lm, w) = (self.x[i], self.m[i], self.ln_m[i], self.w[i]);
            let (c, gp, gq) = per_x[x as usize];
            let px = pp * x;
            let lgm = (g + m * x).ln();
            (
                w * (c + (px - 1.0) * lm - (px + q) * lgm),
                [w * (gp + x * (lm - lgm)), w * (gq - lgm), w * (q / g - (px + q) / (g + m * x))],
            )
        })
    }
}

/// Fits each purchase model and keeps the converged fit with the lowest BIC
/// (`None` when none converged).
pub fn fit_best_purchase(
    names: &[ModelName],
    pat: &Patterns,
    penalty: f64,
    unit: Unit,
    as_of: i32,
) -> Option<FittedModel> {
    names
        .iter()
        .filter_map(|&m| {
            let fit = fit_purchase(m.purchase_kind()?, pat, penalty);
            Some(describe(m, &fit, unit, as_of))
        })
        .filter(|f| f.converged)
        .min_by(|a, b| a.bic.total_cmp(&b.bic))
}

/// Wraps a fit for printing and saving.
pub fn describe(model: ModelName, fit: &Fit, unit: Unit, as_of: i32) -> FittedModel {
    let names = model.param_names();
    let k = names.len() as f64;
    let n = fit.observations as f64;
    let map = |v: &[f64]| {
        names
            .iter()
            .zip(v)
            .map(|(n, x)| {
                (
                    n.to_string(),
                    serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into),
                )
            })
            .collect()
    };
    FittedModel {
        model,
        params: map(&fit.params),
        std_errors: map(&fit.std_errors),
        log_likelihood: fit.log_likelihood,
        aic: 2.0 * k - 2.0 * fit.log_likelihood,
        bic: k * n.ln() - 2.0 * fit.log_likelihood,
        customers: fit.observations,
        converged: fit.converged,
        unit,
        as_of: crate::base::dates::Day(as_of).to_string(),
    }
}

/// One customer's scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub p_no_purchase: f64,
    pub expected_spend: f64,
    pub clv: f64,
    pub clv_if_alive: f64,
}

/// What to score: the horizon and the discounting, in model units.
#[derive(Clone, Copy, Debug)]
pub struct Horizon {
    /// Length in model units.
    pub units: f64,
    /// Continuous discount rate per model unit: ln(1 + annual rate) × unit days / 365.25.
    pub discount_per_unit: f64,
}

impl Horizon {
    /// A horizon of `days`, discounted at `annual_rate` a year, in `unit`s.
    pub fn new(days: f64, annual_rate: f64, unit: Unit) -> Horizon {
        Horizon {
            units: days / unit.days(),
            discount_per_unit: (1.0 + annual_rate).ln() * unit.days() / 365.25,
        }
    }
}

/// Scores every customer of the summary. Purchase-model quantities are
/// computed once per distinct pattern. CLV discounts each model unit's
/// expected purchases at the end of that unit.
pub fn score(
    s: &Summary,
    pat: &Patterns,
    kind: Kind,
    purchase_params: &[f64; 4],
    spend_params: &[f64; 3],
    horizon: Horizon,
) -> Vec<Score> {
    score_with(s, pat, kind, purchase_params, spend_params, horizon, |sc| sc)
}

/// [`score_with`] for a fitted purchase model and a fitted Gamma-Gamma model.
pub fn score_fitted<R: Send>(
    s: &Summary,
    pat: &Patterns,
    purchase: &FittedModel,
    spend: &FittedModel,
    horizon: Horizon,
    keep: impl Fn(Score) -> R + Sync + Send,
) -> Vec<R> {
    Scorer::fitted(s, pat, purchase, spend, horizon).all(keep)
}

/// [`score`], keeping only `keep(score)` per customer: a caller that needs
/// two figures of tens of millions of customers does not hold all six.
pub fn score_with<R: Send>(
    s: &Summary,
    pat: &Patterns,
    kind: Kind,
    purchase_params: &[f64; 4],
    spend_params: &[f64; 3],
    horizon: Horizon,
    keep: impl Fn(Score) -> R + Sync + Send,
) -> Vec<R> {
    Scorer::new(s, pat, kind, purchase_params, spend_params, horizon).all(keep)
}

/// The purchase-model figures of one (x, t_x, T) pattern.
#[derive(Clone, Copy, Debug)]
struct PatternFigures {
    p_alive: f64,
    /// Expected purchases in the horizon if alive.
    expected_if_alive: f64,
    p_no_purchase: f64,
    /// Σ over the horizon's units of the expected purchases in the unit if
    /// alive, discounted from its end.
    discounted_if_alive: f64,
}

/// Scores customers on demand. The purchase model's figures are computed
/// up front, those given alive (a series per unit of the horizon, the bulk
/// of the work) once per distinct (x, T), since they do not depend on t_x,
/// and P(alive) once per pattern; a customer's score is then a lookup and a
/// few multiplications. A list cut to its top N never holds six figures
/// for every one of tens of millions of customers.
pub struct Scorer<'a> {
    summary: &'a Summary,
    pat: &'a Patterns,
    spend_params: [f64; 3],
    per_pattern: Vec<PatternFigures>,
}

impl<'a> Scorer<'a> {
    pub fn new(
        summary: &'a Summary,
        pat: &'a Patterns,
        kind: Kind,
        purchase_params: &[f64; 4],
        spend_params: &[f64; 3],
        horizon: Horizon,
    ) -> Self {
        let p = purchase_params;
        let x_and_t = |h: &History| (h.x.to_bits(), h.t.to_bits());
        let mut pairs: Vec<(u64, u64)> = pat.histories.par_iter().map(x_and_t).collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let steps = horizon.units.ceil().max(1.0) as usize;
        // (expected purchases, P(no purchase), discounted expected purchases), if alive.
        let given_alive: Vec<(f64, f64, f64)> = pairs
            .par_iter()
            .map(|&(x, t)| {
                let h = History { x: f64::from_bits(x), t_x: 0.0, t: f64::from_bits(t) };
                let mut discounted = 0.0;
                let mut prev = 0.0;
                for i in 1..=steps {
                    let t = (i as f64).min(horizon.units);
                    let e = purchase::expected_if_alive(kind, p, h, t);
                    discounted += (e - prev) * (-horizon.discount_per_unit * t).exp();
                    prev = e;
                }
                (prev, purchase::p_no_purchase_if_alive(kind, p, h, horizon.units), discounted)
            })
            .collect();
        let per_pattern = pat
            .histories
            .par_iter()
            .map(|h| {
                let k = pairs.binary_search(&x_and_t(h)).expect("every pattern's (x, T) is listed");
                let (expected_if_alive, none_if_alive, discounted_if_alive) = given_alive[k];
                let p_alive = purchase::p_alive(kind, p, *h);
                PatternFigures {
                    p_alive,
                    expected_if_alive,
                    p_no_purchase: purchase::no_purchase_given(p_alive, none_if_alive),
                    discounted_if_alive,
                }
            })
            .collect();
        Scorer { summary, pat, spend_params: *spend_params, per_pattern }
    }

    /// [`Scorer::new`] for a fitted purchase model and a fitted Gamma-Gamma model.
    pub fn fitted(
        summary: &'a Summary,
        pat: &'a Patterns,
        purchase: &FittedModel,
        spend: &FittedModel,
        horizon: Horizon,
    ) -> Self {
        let kind = purchase.model.purchase_kind().expect("a purchase model");
        let (pp, sp) = (purchase.param_vec(), spend.param_vec());
        Scorer::new(
            summary,
            pat,
            kind,
            &[pp[0], pp[1], pp[2], pp[3]],
            &[sp[0], sp[1], sp[2]],
            horizon,
        )
    }

    /// `keep(score)` of every customer of the summary, in its order.
    pub fn all<R: Send>(&self, keep: impl Fn(Score) -> R + Sync + Send) -> Vec<R> {
        (0..self.summary.len()).into_par_iter().map(|i| keep(self.score(i))).collect()
    }

    /// The scores of the summary's `i`-th customer.
    pub fn score(&self, i: usize) -> Score {
        let f = self.per_pattern[self.pat.of_customer[i] as usize];
        let (x, m) = (self.summary.x[i] as f64, self.summary.monetary_avg[i]);
        let spend = spend::expected_spend(&self.spend_params, x, m);
        let clv_if_alive = f.discounted_if_alive * spend;
        Score {
            p_alive: f.p_alive,
            expected_purchases: f.p_alive * f.expected_if_alive,
            p_no_purchase: f.p_no_purchase,
            expected_spend: spend,
            clv: f.p_alive * clv_if_alive,
            clv_if_alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    /// Simulated histories with known parameters, in continuous time:
    /// BG/NBD drops out only after repeat purchases, MBG/NBD after any.
    fn simulate(kind: Kind, p: [f64; 4], n: usize, seed: u64) -> Patterns {
        let mut rng = StdRng::seed_from_u64(seed);
        let lambda = Gamma::new(p[0], 1.0 / p[1]).unwrap();
        let drop = Beta::new(p[2], p[3]).unwrap();
        let mut histories = Vec::with_capacity(n);
        for _ in 0..n {
            let (l, q): (f64, f64) = (lambda.sample(&mut rng), drop.sample(&mut rng));
            let t_end = rng.gen_range(26.0..78.0);
            let gap = Exp::new(l).unwrap();
            let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
            let mut alive = !(kind == Kind::MbgNbd && rng.gen_bool(q));
            while alive {
                t += gap.sample(&mut rng);
                if t > t_end {
                    break;
                }
                x += 1.0;
                t_x = t;
                alive = !rng.gen_bool(q);
            }
            histories.push(History { x, t_x, t: t_end });
        }
        Patterns {
            weights: vec![1.0; n],
            of_customer: (0..n as u32).collect(),
            histories,
            days: None,
        }
    }

    fn assert_recovered(truth: &[f64], fit: &Fit) {
        assert!(fit.converged, "{fit:?}");
        for (i, &want) in truth.iter().enumerate() {
            let z = (fit.params[i] - want) / fit.std_errors[i];
            assert!(
                z.abs() < 1.96,
                "parameter {i}: {} ± {} vs {}",
                fit.params[i],
                fit.std_errors[i],
                truth[i]
            );
        }
    }

    #[test]
    fn horizon_discounts_a_year_by_the_annual_rate() {
        // A year of weeks at 10% a year: the last week is worth 1/1.1 of now.
        let h = Horizon::new(365.25, 0.10, Unit::Week);
        assert!((h.units - 365.25 / 7.0).abs() < 1e-12);
        assert!(((-h.discount_per_unit * h.units).exp() - 1.0 / 1.1).abs() < 1e-12);
        let m = Horizon::new(90.0, 0.0, Unit::Month);
        assert!((m.units - 90.0 / (365.25 / 12.0)).abs() < 1e-12 && m.discount_per_unit == 0.0);
    }
    #[test]
    fn bgnbd_recovers_parameters() {
        let truth = [0.243, 4.414, 0.793, 2.426];
        let pat = simulate(Kind::BgNbd, truth, 30_000, 7);
        assert_recovered(&truth, &fit_purchase(Kind::BgNbd, &pat, 0.0));
    }

    #[test]
    fn mbgnbd_recovers_parameters() {
        let truth = [0.5, 6.0, 0.7, 3.0];
        let pat = simulate(Kind::MbgNbd, truth, 30_000, 11);
        assert_recovered(&truth, &fit_purchase(Kind::MbgNbd, &pat, 0.0));
    }

    #[test]
    fn pareto_nbd_recovers_parameters() {
        let truth = [0.55, 10.58, 0.61, 11.67];
        let mut rng = StdRng::seed_from_u64(5);
        let lambda = Gamma::new(truth[0], 1.0 / truth[1]).unwrap();
        let mu = Gamma::new(truth[2], 1.0 / truth[3]).unwrap();
        let n = 20_000;
        let mut histories = Vec::with_capacity(n);
        for _ in 0..n {
            let (l, m): (f64, f64) = (lambda.sample(&mut rng), mu.sample(&mut rng));
            let t_end: f64 = rng.gen_range(26.0..78.0);
            let death = Exp::new(m).unwrap().sample(&mut rng).min(t_end);
            let gap = Exp::new(l).unwrap();
            let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
            loop {
                t += gap.sample(&mut rng);
                if t > death {
                    break;
                }
                x += 1.0;
                t_x = t;
            }
            histories.push(History { x, t_x, t: t_end });
        }
        let pat = Patterns {
            weights: vec![1.0; n],
            of_customer: (0..n as u32).collect(),
            histories,
            days: None,
        };
        assert_recovered(&truth, &fit_purchase(Kind::Pnbd, &pat, 0.0));
    }

    #[test]
    fn gamma_gamma_recovers_parameters() {
        let truth = [6.25, 3.74, 15.44];
        assert_recovered(&truth, &fit_spend(&simulate_spend(truth, 20_000, 3), 0.0).unwrap());
    }

    /// Customers with 1 to 7 repeat purchases, spending as Gamma-Gamma says.
    fn simulate_spend(truth: [f64; 3], n: u32, seed: u64) -> Summary {
        let mut rng = StdRng::seed_from_u64(seed);
        let nu = Gamma::new(truth[1], 1.0 / truth[2]).unwrap();
        let mut s = Summary::default();
        for c in 0..n {
            let x = rng.gen_range(1..8u32);
            let spend = Gamma::new(truth[0], 1.0 / nu.sample(&mut rng)).unwrap();
            let m = (0..x).map(|_| spend.sample(&mut rng)).sum::<f64>() / x as f64;
            s.customer.push(c);
            s.x.push(x);
            s.t_x_days.push(0);
            s.t_days.push(0);
            s.monetary_avg.push(m);
        }
        s
    }

    /// Large fits start from a fit on a sample; polished by a Newton step,
    /// they must land where a fit from the generic start does, to far more
    /// digits than BFGS's stopping rule alone gives (about six).
    #[test]
    fn warm_started_fits_agree_with_fits_from_the_generic_start() {
        let close = |a: &Fit, b: &Fit| {
            assert!(a.converged && b.converged, "{a:?} {b:?}");
            for (x, y) in a.params.iter().zip(&b.params) {
                assert!((x - y).abs() < 1e-9 * x.abs(), "{a:?} vs {b:?}");
            }
            for (x, y) in a.std_errors.iter().zip(&b.std_errors) {
                assert!((x - y).abs() < 1e-4 * x.abs(), "{a:?} vs {b:?}");
            }
            assert!((a.log_likelihood - b.log_likelihood).abs() < 1e-12 * a.log_likelihood.abs());
        };
        let truth = [0.243, 4.414, 0.793, 2.426];
        let pat = simulate(Kind::BgNbd, truth, WARM_START_FROM + 20_000, 11);
        let stride = warm_start_stride(pat.histories.len());
        assert!(stride.is_some());
        let warm = fit_purchase_with(Kind::BgNbd, &pat, 0.0, stride);
        close(&warm, &fit_purchase_with(Kind::BgNbd, &pat, 0.0, None));
        assert_recovered(&truth, &warm);

        let truth = [6.25, 3.74, 15.44];
        let s = simulate_spend(truth, (WARM_START_FROM + 20_000) as u32, 5);
        let data = SpendData::new(&s);
        let warm = fit_spend_data(&data, 0.0, warm_start_stride(data.x.len())).unwrap();
        close(&warm, &fit_spend_data(&data, 0.0, None).unwrap());
        assert_recovered(&truth, &warm);
    }

    /// Spend with no customer-to-customer variation beyond chance sends q
    /// and γ off to infinity; where the Hessian there came out singular
    /// (standard errors of exactly 0), the fit was reported converged.
    #[test]
    fn a_spend_fit_that_runs_off_to_infinity_has_not_converged() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut s = Summary::default();
        for c in 0..(WARM_START_FROM + 20_000) as u32 {
            s.customer.push(c);
            s.x.push(rng.gen_range(1..8u32));
            s.monetary_avg.push(rng.gen_range(5.0..80.0));
        }
        let fit = fit_spend(&s, 0.0).unwrap();
        assert!(!fit.converged, "{fit:?}");
    }

    #[test]
    fn grouped_spend_likelihood_equals_the_per_customer_sum() {
        let mut s = Summary::default();
        // Two customers share (3, 35.5): one pair of weight 2.
        let customers = [(1u32, 20.0), (3, 35.5), (3, 12.25), (60, 3.2), (3, 35.5)];
        for (c, (x, m)) in customers.into_iter().enumerate() {
            s.customer.push(c as u32);
            s.x.push(x);
            s.t_x_days.push(0);
            s.t_days.push(0);
            s.monetary_avg.push(m);
        }
        let p = [6.25, 3.74, 15.44];
        let data = SpendData::new(&s);
        assert_eq!((data.x.len(), data.customers()), (4, 5.0));
        let (grouped, grad) = data.log_likelihood(&p);
        let mut direct = (0.0, [0.0; 3]);
        for i in 0..customers.len() {
            let (l, g) = spend::log_likelihood(&p, s.x[i] as f64, s.monetary_avg[i]);
            direct.0 += l;
            direct.1.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        assert!((grouped - direct.0).abs() < 1e-12 * direct.0.abs());
        for (g, d) in grad.iter().zip(direct.1) {
            assert!((g - d).abs() < 1e-9 * d.abs().max(1.0));
        }
    }

    /// CLV against identities that do not reuse its code: with no discounting
    /// the per-unit increments add up to E[purchases] × spend; a horizon of one
    /// unit is discounted once at its end; a higher rate never raises the value.
    #[test]
    fn clv_discounting_identities() {
        let mut s = Summary::default();
        for (c, (x, t_x, t, m)) in
            [(0u32, 0, 200, 0.0), (3, 150, 300, 40.0), (10, 280, 300, 25.5)].into_iter().enumerate()
        {
            s.customer.push(c as u32);
            s.x.push(x);
            s.t_x_days.push(t_x);
            s.t_days.push(t);
            s.monetary_avg.push(m);
        }
        let pat = patterns(&s, Unit::Week);
        let (p, gg) = ([0.243, 4.414, 0.793, 2.426], [6.25, 3.74, 15.44]);
        let plain =
            score(&s, &pat, Kind::BgNbd, &p, &gg, Horizon { units: 13.0, discount_per_unit: 0.0 });
        for sc in &plain {
            assert!(
                (sc.clv - sc.expected_purchases * sc.expected_spend).abs() < 1e-9 * sc.clv.max(1.0)
            );
        }
        let delta = 0.1f64.ln_1p() * 7.0 / 365.25;
        let one =
            score(&s, &pat, Kind::BgNbd, &p, &gg, Horizon { units: 1.0, discount_per_unit: delta });
        for (i, sc) in one.iter().enumerate() {
            let e = purchase::expected_purchases(Kind::BgNbd, &p, s.history(i, Unit::Week), 1.0);
            assert!(
                (sc.clv - e * sc.expected_spend * (-delta).exp()).abs() < 1e-12 * sc.clv.max(1.0)
            );
        }
        let discounted = score(
            &s,
            &pat,
            Kind::BgNbd,
            &p,
            &gg,
            Horizon { units: 13.0, discount_per_unit: delta },
        );
        for (a, b) in discounted.iter().zip(&plain) {
            assert!(a.clv < b.clv && a.clv > b.clv * (-delta * 13.0).exp());
        }
    }

    /// d/dt P(no purchase in t) at t = 0 is −P(alive) E[λ | alive] = −P(alive) (r+x)/(α+T).
    #[test]
    fn bgnbd_no_purchase_slope_at_zero() {
        let p = [0.243, 4.414, 0.793, 2.426];
        for kind in [Kind::BgNbd, Kind::MbgNbd] {
            let h = History { x: 4.0, t_x: 25.0, t: 40.0 };
            let dt = 1e-6;
            let slope = (purchase::p_no_purchase(kind, &p, h, dt) - 1.0) / dt;
            let want = -purchase::p_alive(kind, &p, h) * (p[0] + 4.0) / (p[1] + 40.0);
            assert!((slope - want).abs() < 1e-4 * want.abs(), "{kind:?}: {slope} vs {want}");
        }
    }

    fn transactions(rows: &[(u32, i32, i64, u64)], orders: bool) -> Transactions {
        let mut tx = Transactions {
            customer: rows.iter().map(|r| r.0).collect(),
            day: rows.iter().map(|r| r.1).collect(),
            amount: rows.iter().map(|r| r.2 as f64 / 100.0).collect(),
            order: orders.then(|| rows.iter().map(|r| r.3).collect()),
            as_of: 400,
            ..Default::default()
        };
        for c in 0..=rows.iter().map(|r| r.0).max().unwrap_or(0) {
            tx.ids.push(format!("c{c}").as_bytes());
        }
        tx
    }

    /// `histories` against `crate::base::aggregate::aggregate` and a summary computed the obvious way.
    fn check_histories(rows: &[(u32, i32, i64, u64)], orders: bool) -> Result<(), TestCaseError> {
        use std::collections::BTreeMap;
        let tx = transactions(rows, orders);
        let (agg, s) = histories(&tx);
        let want = crate::base::aggregate::aggregate(&tx);
        let mut freed = tx.clone();
        let (agg_freed, s_freed) = histories_freeing_rows(&mut freed);
        prop_assert!(freed.customer.is_empty() && freed.day.is_empty() && freed.order.is_none());
        prop_assert_eq!(freed.ids.len(), tx.ids.len());
        prop_assert_eq!(&agg_freed.net, &agg.net);
        prop_assert_eq!(&agg_freed.purchases, &agg.purchases);
        prop_assert_eq!(&s_freed.customer, &s.customer);
        prop_assert_eq!(&s_freed.x, &s.x);
        prop_assert_eq!(&s_freed.t_x_days, &s.t_x_days);
        prop_assert_eq!(&s_freed.t_days, &s.t_days);
        prop_assert_eq!(&s_freed.monetary_avg, &s.monetary_avg);
        prop_assert_eq!(&agg.first_purchase, &want.first_purchase);
        prop_assert_eq!(&agg.last_purchase, &want.last_purchase);
        prop_assert_eq!(&agg.purchases, &want.purchases);
        prop_assert_eq!(&agg.net, &want.net);
        let mut days: BTreeMap<u32, BTreeMap<i32, i64>> = BTreeMap::new();
        // Every row that is not a return is a purchase, zero amounts too.
        for r in rows.iter().filter(|r| r.2 >= 0) {
            *days.entry(r.0).or_default().entry(r.1).or_default() += r.2;
        }
        prop_assert_eq!(&s.customer, &days.keys().copied().collect::<Vec<_>>());
        for (i, (_, d)) in days.iter().enumerate() {
            let (first, last) = (*d.keys().next().unwrap(), *d.keys().last().unwrap());
            let x = d.len() as u32 - 1;
            let repeat: i64 = d.iter().filter(|(&k, _)| k != first).map(|(_, v)| v).sum();
            prop_assert_eq!(s.x[i], x);
            prop_assert_eq!(s.t_x_days[i], last - first);
            // T runs to the as-of day (400): a purchase on it has t_x = T.
            prop_assert_eq!(s.t_days[i], 400 - first);
            let m = if x == 0 { 0.0 } else { repeat as f64 / 100.0 / x as f64 };
            prop_assert!(
                (s.monetary_avg[i] - m).abs() <= 1e-12 * m.abs(),
                "{} {m}",
                s.monetary_avg[i]
            );
        }
        Ok(())
    }

    #[test]
    fn histories_agree_on_a_large_input() {
        // Enough rows for the parallel grouping, in no date order.
        let mut rng = StdRng::seed_from_u64(7);
        let rows: Vec<(u32, i32, i64, u64)> = (0..200_000)
            .map(|_| {
                let amount = if rng.gen_bool(0.05) {
                    -rng.gen_range(1..5000)
                } else {
                    rng.gen_range(0..20000)
                };
                (rng.gen_range(0..30_000), rng.gen_range(0..400), amount, rng.gen_range(0..150_000))
            })
            .collect();
        check_histories(&rows, true).unwrap();
        check_histories(&rows, false).unwrap();
        // One grouping of rows in day order serves any prefix of them.
        let mut tx = transactions(&rows, true);
        crate::base::transactions::sort_by_day(&mut tx);
        let groups = group_by_customer(&tx, |r| Some(r as u32));
        for end in [399, 250, 3] {
            let len = tx.day.partition_point(|&d| d <= end);
            tx.customer.truncate(len);
            tx.day.truncate(len);
            tx.amount.truncate(len);
            tx.order.as_mut().unwrap().truncate(len);
            tx.as_of = end;
            let (a, s) = histories_of(&tx, &groups);
            let (b, t) = histories(&tx);
            assert_eq!(
                (a.first_purchase, a.last_purchase, a.purchases, a.net),
                (b.first_purchase, b.last_purchase, b.purchases, b.net)
            );
            assert_eq!(
                (s.customer, s.x, s.t_x_days, s.t_days, s.monetary_avg),
                (t.customer, t.x, t.t_x_days, t.t_days, t.monetary_avg)
            );
        }
    }

    proptest! {
        /// Patterns are distinct and sorted, their weights count the
        /// customers, and each customer's pattern is their own (x, t_x, T).
        #[test]
        fn each_customer_maps_to_their_own_pattern(
            customers in proptest::collection::vec((0u32..4, 0i32..5, 1i32..40), 0..400),
        ) {
            let mut s = Summary::default();
            for (i, &(x, t_x, t)) in customers.iter().enumerate() {
                s.customer.push(i as u32);
                s.x.push(x);
                s.t_x_days.push(t_x);
                s.t_days.push(t);
                s.monetary_avg.push(0.0);
            }
            let pat = patterns(&s, Unit::Day);
            let (t_x_days, t_days, _) = pat.days.clone().unwrap();
            let keys: Vec<(u32, i32, i32)> = (0..pat.histories.len())
                .map(|k| (pat.histories[k].x as u32, t_x_days[k], t_days[k]))
                .collect();
            // Sorted by T, then x, then t_x.
            let order = |k: &(u32, i32, i32)| (k.2, k.0, k.1);
            prop_assert!(keys.windows(2).all(|w| order(&w[0]) < order(&w[1])));
            prop_assert_eq!(pat.weights.iter().sum::<f64>(), customers.len() as f64);
            let mut counts = vec![0.0; keys.len()];
            for (i, &(x, t_x, t)) in customers.iter().enumerate() {
                let k = pat.of_customer[i] as usize;
                prop_assert_eq!(keys[k], (x, t_x, t));
                counts[k] += 1.0;
            }
            prop_assert_eq!(counts, pat.weights.clone());
        }

        /// The likelihoods see the same terms in the same order whatever
        /// the order of the customers, so fits agree to the last bit.
        #[test]
        fn patterns_and_spend_pairs_do_not_depend_on_customer_order(
            customers in proptest::collection::vec(
                (0u32..4, 0i32..5, 1i32..40, proptest::sample::select(vec![0.0, 2.5, 7.25, 10.0])),
                0..300),
            rotate in 0usize..300,
        ) {
            let summary = |cs: &[(u32, i32, i32, f64)]| {
                let mut s = Summary::default();
                for (i, &(x, t_x, t, m)) in cs.iter().enumerate() {
                    s.customer.push(i as u32);
                    s.x.push(x);
                    s.t_x_days.push(t_x);
                    s.t_days.push(t);
                    s.monetary_avg.push(m);
                }
                s
            };
            let mut moved = customers.clone();
            moved.reverse();
            let rotate = rotate.min(moved.len());
            moved.rotate_left(rotate);
            let (a, b) = (summary(&customers), summary(&moved));
            let (pa, pb) = (patterns(&a, Unit::Week), patterns(&b, Unit::Week));
            prop_assert_eq!(pa.histories, pb.histories);
            prop_assert_eq!(pa.weights, pb.weights);
            prop_assert_eq!(pa.days, pb.days);
            let (sa, sb) = (SpendData::new(&a), SpendData::new(&b));
            prop_assert_eq!((sa.x, sa.m, sa.w), (sb.x, sb.m, sb.w));
        }

        #[test]
        fn histories_agree_with_the_obvious_computation(
            rows in proptest::collection::vec((
                0u32..6,
                // Days up to the as-of day (400), purchases on it included.
                prop_oneof![0i32..40, 390i32..=400],
                // Zero amounts often: they are purchases, returns are not.
                prop_oneof![-3000i64..9000, Just(0i64)],
                0u64..12,
            ), 0..60),
            orders in proptest::bool::ANY,
        ) {
            check_histories(&rows, orders)?;
        }

        #[test]
        fn extreme_customers_give_finite_scores(
            x in prop_oneof![Just(0.0), Just(1.0), Just(500.0), 0.0f64..1000.0],
            tx_frac in prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0],
            t in prop_oneof![Just(1e-3), Just(1e5), 1e-3f64..1e4],
            horizon in prop_oneof![Just(1e-3), Just(1e4), 1e-3f64..500.0],
            kind in prop_oneof![Just(Kind::BgNbd), Just(Kind::MbgNbd), Just(Kind::Pnbd)],
        ) {
            let x = x.round();
            let h = History { x, t_x: if x == 0.0 { 0.0 } else { tx_frac * t }, t };
            let p = if kind == Kind::Pnbd { [0.55, 10.58, 0.61, 11.67] } else { [0.243, 4.414, 0.793, 2.426] };
            let (ll, g) = purchase::log_likelihood(kind, &p, h);
            prop_assert!(ll.is_finite() && g.iter().all(|v| v.is_finite()), "{ll} {g:?}");
            let alive = purchase::p_alive(kind, &p, h);
            prop_assert!((0.0..=1.0).contains(&alive));
            let e = purchase::expected_purchases(kind, &p, h, horizon);
            prop_assert!(e.is_finite() && e >= 0.0, "{e}");
            let none = purchase::p_no_purchase(kind, &p, h, horizon);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&none), "{none}");
            let spend = spend::expected_spend(&[6.25, 3.74, 15.44], x, 35.0);
            prop_assert!(spend.is_finite() && spend > 0.0);
        }

        /// The scorer computes the figures given alive once per (x, T) and
        /// shares them among customers with different t_x: each customer's
        /// scores must still be exactly those of their own history.
        #[test]
        fn scorer_gives_each_customer_the_figures_of_their_own_history(
            customers in proptest::collection::vec((0u32..4, 0i32..40, 0usize..3), 1..60),
            kind in prop_oneof![Just(Kind::BgNbd), Just(Kind::MbgNbd), Just(Kind::Pnbd)],
            unit in prop_oneof![Just(Unit::Day), Just(Unit::Week)],
            horizon_days in prop_oneof![Just(1.0), Just(90.0), 1.0f64..400.0],
        ) {
            let mut s = Summary::default();
            for (i, &(x, t_x, t)) in customers.iter().enumerate() {
                let t_days = [35, 36, 300][t];
                s.customer.push(i as u32);
                s.x.push(x);
                s.t_x_days.push(if x == 0 { 0 } else { t_x.min(t_days - 1) });
                s.t_days.push(t_days);
                s.monetary_avg.push(if x == 0 { 0.0 } else { 20.0 + x as f64 });
            }
            let pp = if kind == Kind::Pnbd { [0.55, 10.58, 0.61, 11.67] } else { [0.243, 4.414, 0.793, 2.426] };
            let sp = [6.25, 3.74, 15.44];
            let pat = patterns(&s, unit);
            let horizon = Horizon::new(horizon_days, 0.1, unit);
            let scorer = Scorer::new(&s, &pat, kind, &pp, &sp, horizon);
            for i in 0..s.len() {
                let (sc, h) = (scorer.score(i), s.history(i, unit));
                prop_assert_eq!(sc.p_alive, purchase::p_alive(kind, &pp, h));
                prop_assert_eq!(sc.expected_purchases, purchase::expected_purchases(kind, &pp, h, horizon.units));
                prop_assert_eq!(sc.p_no_purchase, purchase::p_no_purchase(kind, &pp, h, horizon.units));
                prop_assert_eq!(sc.expected_spend, spend::expected_spend(&sp, h.x, s.monetary_avg[i]));
            }
        }

        /// Whatever parameters a fit returns and whatever the histories, every
        /// figure of a score row is a finite number in its range: no NaN or
        /// infinity can reach an output file.
        #[test]
        fn every_score_is_finite_for_any_parameters(
            log_params in proptest::array::uniform4(-6.0f64..6.0),
            spend_p in 0.1f64..100.0,
            spend_q in 1.01f64..100.0,
            log_gamma in -2.0f64..4.0,
            customers in proptest::collection::vec(
                (0u32..3000, 0.0f64..1.0, 0i32..4000, 0.0f64..1e6), 1..12),
            kind in prop_oneof![Just(Kind::BgNbd), Just(Kind::MbgNbd), Just(Kind::Pnbd)],
            unit in prop_oneof![Just(Unit::Day), Just(Unit::Week), Just(Unit::Month)],
            horizon_days in prop_oneof![Just(1.0), Just(400.0), 1.0f64..400.0],
            rate in prop_oneof![Just(0.0), 0.0f64..1.0],
        ) {
            let mut s = Summary::default();
            for (i, &(x, frac, t, m)) in customers.iter().enumerate() {
                let t_days = t + 1 + x as i32;
                let t_x_days = if x == 0 { 0 } else { x as i32 + (frac * t as f64) as i32 };
                s.customer.push(i as u32);
                s.x.push(x);
                s.t_x_days.push(t_x_days.min(t_days - 1));
                s.t_days.push(t_days);
                s.monetary_avg.push(if x == 0 { 0.0 } else { m });
            }
            let pp = log_params.map(|l| 10f64.powf(l));
            let sp = [spend_p, spend_q, 10f64.powf(log_gamma)];
            let pat = patterns(&s, unit);
            let horizon = Horizon::new(horizon_days, rate, unit);
            for sc in score(&s, &pat, kind, &pp, &sp, horizon) {
                let all = [sc.p_alive, sc.expected_purchases, sc.p_no_purchase, sc.expected_spend, sc.clv, sc.clv_if_alive];
                prop_assert!(all.iter().all(|v| v.is_finite() && *v >= 0.0), "{sc:?} {pp:?} {sp:?}");
                prop_assert!(sc.p_alive <= 1.0 && sc.p_no_purchase <= 1.0 + 1e-12, "{sc:?}");
                prop_assert!(sc.clv <= sc.clv_if_alive * (1.0 + 1e-12), "{sc:?}");
            }
        }
    }
}
