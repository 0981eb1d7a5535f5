//! `churn fit`: a model fitted to the customers, and the candidates it was
//! chosen from.

use anyhow::{bail, Result};

use crate::base::progress::Progress;
use crate::base::text::thousands;
use crate::domain::models::{self, FittedModel, ModelName, Unit};
use crate::pipeline::models::{best, fit_candidates, ModelChoice};
use crate::pipeline::Customers;

#[derive(Clone, Debug)]
pub struct FitOptions {
    pub model: ModelChoice,
    pub unit: Unit,
    pub penalty: f64,
}

/// The fit, whether or not it is usable (the caller shows it either way).
pub struct Fitted {
    /// Every candidate, when there was more than one.
    pub compared: Vec<FittedModel>,
    /// The candidate with the lowest BIC among the usable ones, or the only
    /// one; none when several were fitted and none is usable.
    pub chosen: Option<FittedModel>,
}

pub fn run(customers: &Customers, opts: &FitOptions, progress: &Progress) -> Result<Fitted> {
    let part = customers.histories(false, progress)?;
    let (summary, as_of) = (part.summary, part.as_of);
    let spinner = progress.spinner("fitting");
    let fitted = if opts.model == ModelChoice::One(ModelName::Gg) {
        let Some(fit) = models::fit_spend(&summary, opts.penalty) else {
            bail!("Gamma-Gamma needs customers with repeat purchases: fewer than 3 have one")
        };
        let chosen = models::describe(ModelName::Gg, &fit, opts.unit, as_of);
        Fitted { compared: Vec::new(), chosen: Some(chosen) }
    } else {
        if let Some(problem) = models::fit_data_problem(&summary) {
            bail!("{problem}");
        }
        let pat = models::patterns(&summary, opts.unit);
        progress.note(&format!(
            "{} customers in {} distinct (x, t_x, T) patterns",
            thousands(summary.len() as u64),
            thousands(pat.histories.len() as u64)
        ));
        let mut compared =
            fit_candidates(&opts.model.candidates(), &pat, opts.penalty, opts.unit, as_of);
        if compared.len() == 1 {
            Fitted { chosen: compared.pop(), compared }
        } else {
            Fitted { chosen: best(compared.clone()), compared }
        }
    };
    spinner.finish_and_clear();
    Ok(fitted)
}
