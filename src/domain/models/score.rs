//! Scoring customers with fitted models: P(alive), expected purchases and
//! spend over a horizon, and CLV.

use rayon::prelude::*;

use super::{purchase, spend, FittedModel, History, Kind, Patterns, Summary, Unit};

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

impl Score {
    pub fn churn_risk(&self) -> f64 {
        crate::domain::risk::churn_risk(self.p_alive)
    }

    pub fn value_at_risk(&self) -> f64 {
        crate::domain::risk::value_at_risk(self.p_alive, self.clv_if_alive)
    }
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
