//! Maximum-likelihood fits of the purchase and spend models, and the fitted
//! model as it is printed, saved and loaded.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::history::{distinct_in_groups, every_nth};
use super::special::{digamma, ln_gamma};
use super::{optimize, purchase, Kind, Patterns, Summary, Unit};

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

crate::named_enum! {
    /// A model churn fits, as saved files and `--model` name it.
    pub enum ModelName {
        Bgnbd = ("bgnbd", "BG/NBD purchases (Fader, Hardie & Lee 2005)"),
        Mbgnbd = ("mbgnbd", "MBG/NBD purchases (Batislam et al. 2007)"),
        Pnbd = ("pnbd", "Pareto/NBD purchases (Schmittlein, Morrison & Colombo 1987)"),
        Gg = ("gg", "Gamma-Gamma spend per purchase"),
    }
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
    /// Why the model cannot score customers, if it cannot: its fit did not
    /// converge, a parameter is missing or not positive (a hand-edited
    /// file), or it is a Gamma-Gamma model with q <= 1, whose mean spend is
    /// infinite. The one rule for a fit that is printed, saved, loaded or
    /// used in a report.
    pub fn unusable(&self) -> Option<String> {
        let title = self.model.title();
        if !self.converged {
            return Some(format!("the {title} fit did not converge"));
        }
        let params = self.param_vec();
        if let Some((name, _)) = self
            .model
            .param_names()
            .iter()
            .zip(&params)
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Some(format!("the {title} model has no positive value for {name}"));
        }
        (self.model == ModelName::Gg && params[1] <= 1.0).then(|| {
            format!("the {title} fit has q = {} <= 1: expected spend is infinite", params[1])
        })
    }

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
pub(super) const WARM_START_FROM: usize = 100_000;
const WARM_START_SAMPLE: usize = 25_000;

/// The stride of the warm-start sample over `n` data points, if any.
pub(super) fn warm_start_stride(n: usize) -> Option<usize> {
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
pub(super) fn fit_purchase_with(
    kind: Kind,
    pat: &Patterns,
    penalty: f64,
    warm_stride: Option<usize>,
) -> Fit {
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
pub(super) fn fit_spend_data(
    data: &SpendData,
    penalty: f64,
    warm_stride: Option<usize>,
) -> Option<Fit> {
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
pub(super) struct SpendData {
    pub x: Vec<f64>,
    pub m: Vec<f64>,
    ln_m: Vec<f64>,
    pub w: Vec<f64>,
    max_x: usize,
}

impl SpendData {
    pub(super) fn new(s: &Summary) -> Self {
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
    pub(super) fn customers(&self) -> f64 {
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
    pub(super) fn log_likelihood(&self, params: &[f64; 3]) -> (f64, [f64; 3]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(model: ModelName, params: &[(&str, f64)], converged: bool) -> FittedModel {
        let map = |v: &[(&str, f64)]| {
            v.iter().map(|(n, x)| (n.to_string(), serde_json::json!(x))).collect()
        };
        FittedModel {
            model,
            params: map(params),
            std_errors: map(&[]),
            log_likelihood: -1.0,
            aic: 1.0,
            bic: 1.0,
            customers: 100,
            converged,
            unit: Unit::Week,
            as_of: "2024-01-01".into(),
        }
    }

    #[test]
    fn a_fit_scores_only_when_converged_positive_and_of_finite_mean_spend() {
        let bg = [("r", 0.24), ("alpha", 4.4), ("a", 0.79), ("b", 2.4)];
        assert_eq!(fitted(ModelName::Bgnbd, &bg, true).unusable(), None);
        let why = fitted(ModelName::Bgnbd, &bg, false).unusable().unwrap();
        assert_eq!(why, "the BG/NBD fit did not converge");
        let why = fitted(ModelName::Bgnbd, &bg[..3], true).unusable().unwrap();
        assert_eq!(why, "the BG/NBD model has no positive value for b");
        let zero = [("r", 0.24), ("alpha", 0.0), ("a", 0.79), ("b", 2.4)];
        assert!(fitted(ModelName::Bgnbd, &zero, true).unusable().unwrap().contains("alpha"));
        let gg = |q| fitted(ModelName::Gg, &[("p", 6.0), ("q", q), ("gamma", 15.0)], true);
        assert_eq!(gg(3.7).unusable(), None);
        assert_eq!(
            gg(1.0).unusable().unwrap(),
            "the Gamma-Gamma fit has q = 1 <= 1: expected spend is infinite"
        );
        assert!(gg(0.5).unusable().is_some());
    }
}
