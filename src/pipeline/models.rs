//! Which models a command fits or loads. `fit`, `score`, `backtest` and
//! `report` all let the user name a model or ask for the best of them; the
//! names, the candidate list and the rule for which fit may score customers
//! are spelt here once, so the four commands cannot drift apart.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::base::named::Named;
use crate::base::summary::Summary;
use crate::base::UsageError;
use crate::domain::models::{self, FittedModel, ModelName, Patterns, Unit};

/// The `--model` of a command: one model, or the purchase models to choose from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    One(ModelName),
    /// Fit every purchase model and keep the lowest BIC.
    Auto,
}

impl Named for ModelChoice {
    const ALL: &'static [Self] = &[
        ModelChoice::One(ModelName::Bgnbd),
        ModelChoice::One(ModelName::Mbgnbd),
        ModelChoice::One(ModelName::Pnbd),
        ModelChoice::One(ModelName::Gg),
        ModelChoice::Auto,
    ];

    fn name(self) -> &'static str {
        match self {
            ModelChoice::One(m) => m.name(),
            ModelChoice::Auto => "auto",
        }
    }

    fn help(self) -> &'static str {
        match self {
            ModelChoice::One(m) => m.help(),
            ModelChoice::Auto => "Fit the purchase models and keep the lowest BIC",
        }
    }
}

impl std::str::FromStr for ModelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse_name(s)
    }
}

impl<'de> serde::Deserialize<'de> for ModelChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse_name(&name).map_err(serde::de::Error::custom)
    }
}

impl ModelChoice {
    /// Whether the choice is of purchase models (all but the spend model).
    pub fn is_purchase(self) -> bool {
        self != ModelChoice::One(ModelName::Gg)
    }

    /// The models to fit, in the order they are reported.
    pub fn candidates(self) -> Vec<ModelName> {
        match self {
            ModelChoice::One(m) => vec![m],
            ModelChoice::Auto => {
                ModelName::ALL.iter().copied().filter(|m| m.purchase_kind().is_some()).collect()
            }
        }
    }

    /// The choice of a command that fits purchase models only.
    pub fn purchase(self, what: &str) -> Result<ModelChoice> {
        if !self.is_purchase() {
            let names: Vec<_> =
                Self::ALL.iter().filter(|c| c.is_purchase()).map(|c| c.name()).collect();
            bail!(UsageError(format!(
                "{what}: '{}' is not a purchase model; use {}",
                self.name(),
                names.join(", ")
            )));
        }
        Ok(self)
    }
}

/// Models saved by `churn fit --save`, by what they model.
#[derive(Clone, Debug, Default)]
pub struct SavedModels {
    pub purchase: Option<FittedModel>,
    pub spend: Option<FittedModel>,
}

impl SavedModels {
    /// Reads the files; each must hold a model that can score customers,
    /// and at most one purchase and one spend model.
    pub fn load(paths: &[PathBuf]) -> Result<SavedModels> {
        let mut saved = SavedModels::default();
        for path in paths {
            let m = load_model(path)?;
            if let Some(problem) = m.unusable() {
                bail!(
                    "model file {}: {problem}; fit it again with `churn fit --save`",
                    path.display()
                );
            }
            let slot =
                if m.model == ModelName::Gg { &mut saved.spend } else { &mut saved.purchase };
            if slot.is_some() {
                bail!(UsageError(format!(
                    "two {} models given with --model-file",
                    m.model.title()
                )));
            }
            *slot = Some(m);
        }
        Ok(saved)
    }
}

fn load_model(path: &Path) -> Result<FittedModel> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a model saved by `churn fit --save`", path.display()))
}

/// Each purchase model of `names` fitted to the patterns, in order.
pub fn fit_candidates(
    names: &[ModelName],
    pat: &Patterns,
    penalty: f64,
    unit: Unit,
    as_of: i32,
) -> Vec<FittedModel> {
    names
        .iter()
        .filter_map(|&m| {
            let fit = models::fit_purchase(m.purchase_kind()?, pat, penalty);
            Some(models::describe(m, &fit, unit, as_of))
        })
        .collect()
}

/// The usable fit with the lowest BIC.
pub fn best(fitted: Vec<FittedModel>) -> Option<FittedModel> {
    fitted.into_iter().filter(|f| f.unusable().is_none()).min_by(|a, b| a.bic.total_cmp(&b.bic))
}

/// The saved purchase model, or the best of `names` fitted to the patterns.
pub fn purchase_model(
    saved: Option<FittedModel>,
    names: &[ModelName],
    pat: &Patterns,
    penalty: f64,
    unit: Unit,
    as_of: i32,
) -> Result<FittedModel> {
    if let Some(m) = saved {
        return Ok(m);
    }
    best(fit_candidates(names, pat, penalty, unit, as_of)).ok_or_else(|| {
        anyhow::anyhow!("the purchase model did not converge; try --penalty 0.001, another --unit, or `churn fit` to see the fit")
    })
}

/// The Gamma-Gamma model fitted to the customers' spend, if it is usable.
pub fn fit_spend(summary: &Summary, penalty: f64, unit: Unit, as_of: i32) -> Result<FittedModel> {
    let Some(fit) = models::fit_spend(summary, penalty) else {
        bail!("the spend model needs customers with repeat purchases: fewer than 3 have one");
    };
    let fitted = models::describe(ModelName::Gg, &fit, unit, as_of);
    match fitted.unusable() {
        Some(problem) => bail!("{problem}; try --penalty 0.001"),
        None => Ok(fitted),
    }
}

/// The saved spend model, or one fitted to the customers' spend.
pub fn spend_model(
    saved: Option<FittedModel>,
    summary: &Summary,
    penalty: f64,
    unit: Unit,
    as_of: i32,
) -> Result<FittedModel> {
    match saved {
        Some(m) => Ok(m),
        None => fit_spend(summary, penalty, unit, as_of),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_every_purchase_model_and_gg_is_not_one() {
        assert_eq!(
            ModelChoice::Auto.candidates(),
            [ModelName::Bgnbd, ModelName::Mbgnbd, ModelName::Pnbd]
        );
        assert_eq!(ModelChoice::One(ModelName::Pnbd).candidates(), [ModelName::Pnbd]);
        assert_eq!("gg".parse(), Ok(ModelChoice::One(ModelName::Gg)));
        assert!(ModelChoice::One(ModelName::Gg).purchase("--model").is_err());
        assert!(ModelChoice::Auto.purchase("--model").is_ok());
        let names: Vec<_> = ModelChoice::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["bgnbd", "mbgnbd", "pnbd", "gg", "auto"]);
    }
}
