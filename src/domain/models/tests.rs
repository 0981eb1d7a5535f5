//! Parameter recovery, identities and invariants of the models, on
//! simulated customers.

use super::fit::{
    fit_purchase_with, fit_spend_data, warm_start_stride, SpendData, WARM_START_FROM,
};
use super::*;
use crate::base::aggregate::group_by_customer;
use crate::base::transactions::Transactions;

/// Every customer's scores.
fn score(
    s: &Summary,
    pat: &Patterns,
    kind: Kind,
    purchase_params: &[f64; 4],
    spend_params: &[f64; 3],
    horizon: Horizon,
) -> Vec<Score> {
    Scorer::new(s, pat, kind, purchase_params, spend_params, horizon).all(|sc| sc)
}
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
    Patterns { weights: vec![1.0; n], of_customer: (0..n as u32).collect(), histories, days: None }
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
        assert!((sc.clv - e * sc.expected_spend * (-delta).exp()).abs() < 1e-12 * sc.clv.max(1.0));
    }
    let discounted =
        score(&s, &pat, Kind::BgNbd, &p, &gg, Horizon { units: 13.0, discount_per_unit: delta });
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
        prop_assert!((s.monetary_avg[i] - m).abs() <= 1e-12 * m.abs(), "{} {m}", s.monetary_avg[i]);
    }
    Ok(())
}

#[test]
fn histories_agree_on_a_large_input() {
    // Enough rows for the parallel grouping, in no date order.
    let mut rng = StdRng::seed_from_u64(7);
    let rows: Vec<(u32, i32, i64, u64)> = (0..200_000)
        .map(|_| {
            let amount =
                if rng.gen_bool(0.05) { -rng.gen_range(1..5000) } else { rng.gen_range(0..20000) };
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
