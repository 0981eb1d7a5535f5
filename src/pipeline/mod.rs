//! What each command does, without the command line: the options are plain
//! structs the command line (or a test) fills in, so the steps of a command
//! (read, fit or load the models, score, write) can be followed in one
//! place, and the rules they share (which fit may score, which models are
//! candidates) are applied the same way by every command.

pub mod backtest;
pub mod cohorts;
pub mod fit;
pub mod inspect;
pub mod models;
pub mod report;
pub mod rfm;
pub mod score;

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::base::progress::Progress;
use crate::base::text::day_string;
use crate::base::transactions::Transactions;
use crate::io::input::{CustomerPart, Engine, LoadOptions, LoadReport};

/// Where the transactions come from, and how their rows are held.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub load: LoadOptions,
    pub engine: Engine,
    /// Where the streaming engine spills rows.
    pub temp_dir: Option<PathBuf>,
}

impl Source {
    /// Reads every transaction into memory.
    pub fn load(&self, progress: &Progress) -> Result<(Transactions, LoadReport)> {
        let (tx, report) = crate::io::input::load(&self.load, progress)?;
        loaded(&report, progress, "load");
        Ok((tx, report))
    }

    /// Reads the transactions and hands them to `analyse`, whole or (with the
    /// streaming engine) a partition of customers at a time; its results in
    /// partition order.
    pub fn load_each<T>(
        &self,
        progress: &Progress,
        analyse: impl FnMut(Transactions) -> Result<T>,
    ) -> Result<(Vec<T>, LoadReport)> {
        let temp_dir = self.temp_dir.as_deref();
        let (results, report) =
            crate::io::input::load_each(&self.load, self.engine, temp_dir, progress, analyse)?;
        loaded(&report, progress, "analyse");
        Ok((results, report))
    }
}

/// After reading: says which columns and date layout were used, and hands
/// back memory the reader no longer needs. `stage` names what ended for
/// `CHURN_TIMINGS`.
fn loaded(report: &LoadReport, progress: &Progress, stage: &str) {
    progress.note(&format!("columns: {}; dates: {}", report.mapping, report.date_layout));
    crate::base::release_freed_memory();
    progress.stage(stage);
}

/// The customers a model is fitted to or scores: their transactions, or a
/// per-customer summary made by the query of `churn sql summary`.
#[derive(Clone, Debug)]
pub enum Customers {
    Transactions(Box<Source>),
    Summary(PathBuf),
}

impl Customers {
    /// Each customer's history as of the as-of date (and, with `all`, their
    /// ids, aggregates and kept columns), after saying what was read. Fails
    /// when no customer has a purchase.
    pub fn histories(&self, all: bool, progress: &Progress) -> Result<CustomerPart> {
        let (part, read) = match self {
            Customers::Summary(path) => {
                let mut s = crate::io::input::summary::read_summary(path)?;
                let read = s.note(path);
                let summary = s.model_summary(path)?;
                let part = CustomerPart {
                    ids: s.ids,
                    aggregates: s.aggregates,
                    summary,
                    as_of: s.as_of,
                    kept: Vec::new(),
                };
                (part, read)
            }
            Customers::Transactions(source) => {
                let (parts, report) = source.load_each(progress, |mut tx| {
                    // From here on only the ids and the as-of date are needed.
                    let (aggregates, summary) =
                        crate::domain::models::histories_freeing_rows(&mut tx);
                    Ok(if all {
                        CustomerPart {
                            ids: std::mem::take(&mut tx.ids),
                            kept: std::mem::take(&mut tx.kept),
                            aggregates,
                            summary,
                            as_of: tx.as_of,
                        }
                    } else {
                        CustomerPart { summary, as_of: tx.as_of, ..CustomerPart::default() }
                    })
                })?;
                let part = CustomerPart::join(parts);
                let read = report.summary(part.summary.len());
                (part, read)
            }
        };
        crate::base::release_freed_memory();
        progress.stage("summary");
        if part.summary.is_empty() {
            bail!("no customer has a purchase on or before {}", day_string(part.as_of));
        }
        progress.note(&format!("{read}; as of {}", day_string(part.as_of)));
        Ok(part)
    }
}
