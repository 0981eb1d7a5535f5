//! `churn score`: the risk-scored customer list, from the customers' histories
//! to the rows written.

use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::domain::actions::Actions;
use crate::domain::changes;
use crate::domain::models::{self, Unit};
use crate::domain::rfm::{self, RfmOptions};
use crate::domain::risk::{Band, Bands};
use crate::io::input::CustomerPart;
use crate::io::output::{self, ColumnData, OutputTarget, Table};
use crate::pipeline::models::{purchase_model, spend_model, ModelChoice, SavedModels};
use crate::pipeline::Customers;

crate::named_enum! {
    /// The order of the list (descending; ties by customer_id), also
    /// spelled as the columns are named.
    pub enum SortBy {
        ValueAtRisk = ("value-at-risk", "", "value_at_risk"),
        ChurnRisk = ("churn-risk", "", "churn_risk"),
        Clv = ("clv", ""),
    }
}

#[derive(Clone, Debug)]
pub struct ScoreOptions {
    /// The purchase models to fit, unless a saved one is given.
    pub model: ModelChoice,
    pub saved: SavedModels,
    pub unit: Unit,
    pub penalty: f64,
    pub horizon_days: f64,
    pub discount_rate: f64,
    pub bands: Bands,
    /// Keep customers with churn_risk at least this.
    pub min_risk: Option<f64>,
    /// Keep the first N after sorting.
    pub top: Option<usize>,
    pub sort: SortBy,
    /// Adds an `action` column.
    pub actions: Option<Actions>,
    /// Writes only what changed since this list, with a `change` column.
    pub previous: Option<changes::Previous>,
}

/// The columns of the list, before --keep, --action and --changes-since add theirs.
pub const COLUMNS: [&str; 14] = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_avg",
    "p_alive",
    "churn_risk",
    "expected_purchases",
    "p_no_purchase",
    "expected_spend",
    "clv",
    "value_at_risk",
    "risk_band",
    "segment",
];

/// The band and segment of each customer of a previous `churn score` list,
/// found under the names the same --columns gives them.
pub fn read_previous(
    path: &Path,
    columns: Option<&output::ColumnSpec>,
) -> Result<changes::Previous> {
    let name_of = |col: &str| -> String {
        columns
            .and_then(|spec| spec.0.iter().find(|(c, _)| c == col))
            .map_or_else(|| col.to_string(), |(_, n)| n.clone())
    };
    let mut rdr = csv::Reader::from_path(path)
        .with_context(|| format!("--changes-since: cannot read {}", path.display()))?;
    let header = rdr.headers().with_context(|| format!("reading {}", path.display()))?.clone();
    let find = |col: &str| -> Result<usize> {
        let want = name_of(col);
        header.iter().position(|h| h.trim_start_matches('\u{feff}') == want).ok_or_else(|| {
            anyhow::anyhow!(
                "--changes-since: {} has no column '{want}'; it must be an earlier output of `churn score` written with the same --columns (its columns are: {})",
                path.display(),
                header.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (id, band, segment) = (find("customer_id")?, find("risk_band")?, find("segment")?);
    let mut previous = changes::Previous::default();
    for (k, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("reading {} (record {})", path.display(), k + 2))?;
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        if field(id).is_empty() {
            continue;
        }
        previous.push(field(id), changes::Was { band: field(band), segment: field(segment) });
    }
    Ok(previous)
}

/// A customer's sort key (larger first), customer code and summary index.
type Keyed = (f64, u32, u32);

/// The first `n` of the items `item(0..len)` gives, in `by` order (whose
/// first criterion is the key, larger first), unsorted. Each thread keeps a
/// buffer of candidates; when it holds 2N, the best N are kept, and the
/// key of the N-th becomes a floor: an item whose key is below it cannot
/// make the list, and most are turned away by that one comparison, without
/// a buffer for every customer.
fn first_n(
    len: usize,
    n: usize,
    item: impl Fn(usize) -> Option<Keyed> + Sync,
    by: impl Fn(&Keyed, &Keyed) -> std::cmp::Ordering + Sync,
) -> Vec<Keyed> {
    if n == 0 {
        return Vec::new();
    }
    let prune = |v: &mut Vec<Keyed>| -> Option<f64> {
        if v.len() > n {
            v.select_nth_unstable_by(n - 1, &by);
            v.truncate(n);
        }
        (v.len() == n).then(|| v[n - 1].0)
    };
    let mut best = (0..len)
        .into_par_iter()
        .fold(
            || (Vec::new(), None::<f64>),
            |(mut v, mut floor), i| {
                if let Some(k) = item(i) {
                    if floor.is_none_or(|f| k.0.total_cmp(&f).is_ge()) {
                        v.push(k);
                        if v.len() >= 2 * n {
                            floor = prune(&mut v);
                        }
                    }
                }
                (v, floor)
            },
        )
        .map(|(v, _)| v)
        .reduce(Vec::new, |mut a, b| {
            a.extend(b);
            prune(&mut a);
            a
        });
    prune(&mut best);
    best
}

pub fn run(
    customers: &Customers,
    opts: &ScoreOptions,
    target: &OutputTarget,
    progress: &Progress,
) -> Result<()> {
    let part = customers.histories(true, progress)?;
    let (summary, ids, as_of) = (&part.summary, &part.ids, part.as_of);
    let saved = opts.saved.clone();
    if saved.purchase.is_none() {
        if let Some(problem) = models::fit_data_problem(summary) {
            anyhow::bail!("{problem}");
        }
    }
    let unit = saved.purchase.as_ref().map_or(opts.unit, |m| m.unit);
    let names = RfmOptions::default().segments.names();
    let spinner = progress.spinner("fitting and scoring");
    // Two chains of independent work run side by side: the RFM segments
    // then the spend model; the patterns then the purchase model.
    let segments_then_spend = || {
        // Each customer's RFM segment (the rows need no id order here: ties
        // in the list are broken by comparing the two ids).
        let mut segment_of = vec![u16::MAX; ids.len()];
        let segments =
            rfm::segment_codes(&part.aggregates, &summary.customer, as_of, &RfmOptions::default());
        for (&c, segment) in summary.customer.iter().zip(segments) {
            segment_of[c as usize] = segment;
        }
        (segment_of, spend_model(saved.spend, summary, opts.penalty, unit, as_of))
    };
    let patterns_then_purchase = || {
        let pat = models::patterns(summary, unit);
        let candidates = opts.model.candidates();
        let purchase = purchase_model(saved.purchase, &candidates, &pat, opts.penalty, unit, as_of);
        (pat, purchase)
    };
    let ((segment_of, spend), (pat, purchase)) =
        rayon::join(segments_then_spend, patterns_then_purchase);
    let (purchase, spend) = (purchase?, spend?);
    progress.stage("segments, patterns, models");
    let pp = purchase.param_vec();
    let sp = spend.param_vec();
    progress.note(&format!(
        "{}: {}; Gamma-Gamma: p={:.4} q={:.4} gamma={:.4}",
        purchase.model.title(),
        purchase
            .model
            .param_names()
            .iter()
            .zip(&pp)
            .map(|(n, v)| format!("{n}={v:.4}"))
            .collect::<Vec<_>>()
            .join(" "),
        sp[0],
        sp[1],
        sp[2]
    ));
    let horizon = models::Horizon::new(opts.horizon_days, opts.discount_rate, unit);
    // Scores are computed when needed: for every customer to sort them, and
    // again for the rows written (with --top, a few hundred out of millions).
    let scorer = models::Scorer::fitted(summary, &pat, &purchase, &spend, horizon);
    progress.stage("scores");
    spinner.finish_and_clear();
    let order = ranked(&part, &scorer, opts);
    progress.stage("sort");

    let mut labels = names;
    labels.push(String::new());
    let list = List { part: &part, scorer: &scorer, unit, segment_of, labels, opts };
    let (order, change, gone) = match &opts.previous {
        None => (order, Vec::new(), Vec::new()),
        Some(previous) => list.changes(order, previous),
    };
    let block = |r: std::ops::Range<usize>| -> Table {
        if opts.previous.is_none() {
            return list.block(&order[r]);
        }
        // Rows past the current list are customers gone since the previous one.
        let current = r.start.min(order.len())..r.end.min(order.len());
        let gone_ids =
            &gone[r.start.max(order.len()) - order.len()..r.end.max(order.len()) - order.len()];
        let mut t = list.block(&order[current]);
        if !gone_ids.is_empty() {
            for (name, column) in &mut t.columns {
                let data = std::mem::replace(column, ColumnData::Bool(Vec::new()));
                *column = if name == "customer_id" {
                    let ColumnData::Str(mut ids) = data else { unreachable!("ids are text") };
                    for id in gone_ids {
                        ids.push(id);
                    }
                    ColumnData::Str(ids)
                } else {
                    data.with_missing(gone_ids.len())
                };
            }
        }
        let labels = changes::Change::ALL.iter().map(|c| c.name().to_string()).collect();
        let codes = change[r]
            .iter()
            .map(|c| changes::Change::ALL.iter().position(|a| a == c).expect("listed") as u16)
            .collect();
        t.columns.insert(1, ("change".to_string(), ColumnData::Cat { labels, codes }));
        t
    };
    output::write_blocks(target, order.len() + gone.len(), block)?;
    progress.stage("write");
    Ok(())
}

/// The summary index of each customer listed, in list order: filtered by
/// --min-risk, sorted by the key (ties by customer id), cut to --top.
fn ranked(part: &CustomerPart, scorer: &models::Scorer, opts: &ScoreOptions) -> Vec<usize> {
    let (summary, ids) = (&part.summary, &part.ids);
    let key = |sc: &models::Score| match opts.sort {
        SortBy::ValueAtRisk => sc.value_at_risk(),
        SortBy::ChurnRisk => sc.churn_risk(),
        SortBy::Clv => sc.clv,
    };
    let numeric = crate::base::aggregate::ids_are_numeric(&summary.customer, ids);
    let by_key = |a: &Keyed, b: &Keyed| {
        b.0.total_cmp(&a.0)
            .then_with(|| crate::base::aggregate::compare_ids(ids, numeric, a.1, b.1))
    };
    let keyed_of = |i: usize| {
        let score = scorer.score(i);
        let listed = opts.min_risk.is_none_or(|p| score.churn_risk() >= p);
        listed.then(|| (key(&score), summary.customer[i], i as u32))
    };
    let mut keyed: Vec<Keyed> = match opts.top {
        // With --top, each thread keeps its best N as it goes.
        Some(n) if n < summary.len() / 4 => first_n(summary.len(), n, keyed_of, by_key),
        _ => {
            // An indexed collect allocates once; a parallel filter would gather
            // pieces and copy them (twice the memory for 40M customers).
            let mut keyed: Vec<Keyed> = (0..summary.len())
                .into_par_iter()
                .map(|i| (key(&scorer.score(i)), summary.customer[i], i as u32))
                .collect();
            if let Some(p) = opts.min_risk {
                keyed.retain(|k| scorer.score(k.2 as usize).churn_risk() >= p);
            }
            if let Some(n) = opts.top.filter(|&n| n < keyed.len()) {
                keyed.select_nth_unstable_by(n, by_key);
                keyed.truncate(n);
            }
            keyed
        }
    };
    keyed.par_sort_unstable_by(by_key);
    keyed.into_iter().map(|k| k.2 as usize).collect()
}

/// What the rows of the list are made of.
struct List<'a> {
    part: &'a CustomerPart,
    scorer: &'a models::Scorer<'a>,
    unit: Unit,
    /// Each customer's segment label, u16::MAX before their first purchase.
    segment_of: Vec<u16>,
    /// The segment names, then "" for a customer without a segment.
    labels: Vec<String>,
    opts: &'a ScoreOptions,
}

impl List<'_> {
    fn band(&self, i: usize) -> Band {
        self.opts.bands.of(self.scorer.score(i).churn_risk())
    }

    fn segment_label(&self, i: usize) -> u16 {
        match self.segment_of[self.part.summary.customer[i] as usize] {
            u16::MAX => (self.labels.len() - 1) as u16,
            s => s,
        }
    }

    /// The customers of `order` whose band or segment changed since the
    /// previous list, with their change, and the ids of those gone since.
    fn changes<'p>(
        &self,
        order: Vec<usize>,
        previous: &'p changes::Previous,
    ) -> (Vec<usize>, Vec<changes::Change>, Vec<&'p str>) {
        let mut listed = std::collections::HashSet::with_capacity(order.len());
        let (mut rows, mut change) = (Vec::new(), Vec::new());
        for &i in &order {
            let id = self.part.ids.get(self.part.summary.customer[i]);
            let was = previous.by_id.get(id.as_ref());
            let segment = &self.labels[self.segment_label(i) as usize];
            if let Some(c) = changes::classify(was, self.band(i).name(), segment) {
                rows.push(i);
                change.push(c);
            }
            listed.insert(id.into_owned());
        }
        let gone: Vec<&str> =
            previous.order.iter().filter(|id| !listed.contains(*id)).map(String::as_str).collect();
        change.extend(std::iter::repeat_n(changes::Change::Gone, gone.len()));
        (rows, change, gone)
    }

    /// The rows of the customers `order`. The list is built block by block
    /// while it is written: the rows are in score order, so every lookup is
    /// a cache miss, and gathering blocks on all cores without a full copy
    /// of the list is both faster and leaner.
    fn block(&self, order: &[usize]) -> Table {
        let (summary, ids, unit) = (&self.part.summary, &self.part.ids, self.unit);
        let f = |g: &dyn Fn(usize) -> f64| ColumnData::Float(order.iter().map(|&i| g(i)).collect());
        let scores: Vec<models::Score> = order.iter().map(|&i| self.scorer.score(i)).collect();
        let fs =
            |g: &dyn Fn(&models::Score) -> f64| ColumnData::Float(scores.iter().map(g).collect());
        let bands: Vec<u16> =
            scores.iter().map(|sc| self.opts.bands.of(sc.churn_risk()).rank()).collect();
        let mut t = Table::new();
        t.push(
            "customer_id",
            ColumnData::Str(order.iter().map(|&i| ids.get(summary.customer[i])).collect()),
        );
        for (name, values) in &self.part.kept {
            let column = order.iter().map(|&i| values.get(summary.customer[i])).collect();
            t.push(name, ColumnData::Str(column));
        }
        t.push("frequency", ColumnData::I32(order.iter().map(|&i| summary.x[i] as i32).collect()));
        t.push("recency", f(&|i| summary.t_x_days[i] as f64 / unit.days()));
        t.push("T", f(&|i| summary.t_days[i] as f64 / unit.days()));
        t.push("monetary_avg", f(&|i| summary.monetary_avg[i]));
        t.push("p_alive", fs(&|sc| sc.p_alive));
        t.push("churn_risk", fs(&models::Score::churn_risk));
        t.push("expected_purchases", fs(&|sc| sc.expected_purchases));
        t.push("p_no_purchase", fs(&|sc| sc.p_no_purchase));
        t.push("expected_spend", fs(&|sc| sc.expected_spend));
        t.push("clv", fs(&|sc| sc.clv));
        t.push("value_at_risk", fs(&models::Score::value_at_risk));
        let band_labels = Band::ALL.iter().map(|b| b.name().to_string()).collect();
        t.push("risk_band", ColumnData::Cat { labels: band_labels, codes: bands.clone() });
        let segments: Vec<u16> = order.iter().map(|&i| self.segment_label(i)).collect();
        let action = self.opts.actions.as_ref().map(|actions| {
            // The action of each (segment, band): label segment * 3 + band.
            let labels = self
                .labels
                .iter()
                .flat_map(|segment| {
                    Band::ALL.iter().map(move |&b| actions.action(segment, Some(b)).to_string())
                })
                .collect();
            let per_segment = Band::ALL.len() as u16;
            let codes = segments.iter().zip(&bands).map(|(&s, &b)| s * per_segment + b).collect();
            ColumnData::Cat { labels, codes }
        });
        t.push("segment", ColumnData::Cat { labels: self.labels.clone(), codes: segments });
        if let Some(action) = action {
            t.push("action", action);
        }
        t
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The first N kept thread by thread are the first N of a full sort,
        /// with many ties on the key (broken by the code) and items left out.
        #[test]
        fn first_n_is_the_head_of_the_sorted_list(
            keys in proptest::collection::vec((0u8..6, 0u32..50, proptest::bool::weighted(0.9)), 0..3000),
            n in 0usize..300,
        ) {
            let item = |i: usize| {
                let (k, code, listed) = keys[i];
                listed.then_some((f64::from(k), code, i as u32))
            };
            let by = |a: &Keyed, b: &Keyed| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2));
            let mut got = first_n(keys.len(), n, item, by);
            got.sort_unstable_by(by);
            let mut all: Vec<Keyed> = (0..keys.len()).filter_map(item).collect();
            all.sort_unstable_by(by);
            all.truncate(n);
            proptest::prop_assert_eq!(got, all);
        }
    }
}
