//! `churn fit` as text: what a person reads to judge a fit.

use crate::base::named::Named;
use crate::base::text::thousands;
use crate::domain::models::FittedModel;

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One line per candidate: log-likelihood, AIC, BIC and convergence.
pub fn comparison(fitted: &[FittedModel]) -> String {
    let mut s = format!(
        "{:<10} {:>16} {:>14} {:>14}  converged\n",
        "model", "log-likelihood", "AIC", "BIC"
    );
    for f in fitted {
        s += &format!(
            "{:<10} {:>16.3} {:>14.3} {:>14.3}  {}\n",
            f.model.title(),
            f.log_likelihood,
            f.aic,
            f.bic,
            yes_no(f.converged)
        );
    }
    s + "\n"
}

/// The model, its parameters with standard errors, and the fit statistics.
pub fn summary(f: &FittedModel) -> String {
    let mut s = format!(
        "model: {} ({}s, as of {}), {} customers\n",
        f.model.title(),
        f.unit.name(),
        f.as_of,
        thousands(f.customers)
    );
    s += &format!("{:<8} {:>14} {:>14}\n", "param", "estimate", "std. error");
    for name in f.model.param_names() {
        let get = |m: &serde_json::Map<String, serde_json::Value>| {
            m.get(*name).and_then(|v| v.as_f64()).map_or("-".to_string(), |v| format!("{v:.6}"))
        };
        s += &format!("{:<8} {:>14} {:>14}\n", name, get(&f.params), get(&f.std_errors));
    }
    s += &format!(
        "log-likelihood {:.4}, AIC {:.4}, BIC {:.4}, converged: {}\n",
        f.log_likelihood,
        f.aic,
        f.bic,
        yes_no(f.converged)
    );
    s
}
