//! `churn score`: the risk-scored customer list.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::app::cli::{parse_horizon, EngineArgs, InputArgs, ListArgs, OutputArgs, ScoreModel};
use crate::base::progress::Progress;
use crate::base::UsageError;
use crate::domain::actions::Band;
use crate::domain::changes;
use crate::domain::models::{self, FittedModel, ModelName, Unit};
use crate::domain::rfm::{self, RfmOptions};
use crate::io::input::CustomerPart;
use crate::io::output::{self, ColumnData, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    // Also spelled as the columns are named.
    #[value(alias = "value_at_risk")]
    ValueAtRisk,
    #[value(alias = "churn_risk")]
    ChurnRisk,
    Clv,
}

/// Score every customer: probability still active, expected purchases and
/// spend over a horizon, CLV and value at risk, with a risk band and the RFM segment.
///
/// One row per customer with a purchase, sorted by value_at_risk (or --sort)
/// descending, then customer_id. Models are fitted on the input unless given
/// with --model-file (a purchase model and/or a Gamma-Gamma model saved by
/// `churn fit --save`). CLV discounts the expected purchases of each model
/// unit at the end of that unit with a continuous rate equivalent to
/// --discount-rate per year.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  churn score sales.csv --top 500 --min-risk 0.6 -o at_risk.csv
  churn score sales.parquet --horizon 12w --sort churn_risk | head
  churn fit sales.csv --save bgnbd.json && churn fit sales.csv --model gg --save gg.json
  churn score sales.csv --model-file bgnbd.json --model-file gg.json")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub list: ListArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Write only what changed since PREVIOUS (an earlier output of `churn score`,
    /// CSV, with the same --columns): customers who are new, whose risk band or
    /// segment changed, or who left the list, with a `change` column (new,
    /// band_up, band_down, segment_changed, gone).
    #[arg(long, value_name = "PREVIOUS", help_heading = "Customer list")]
    pub changes_since: Option<PathBuf>,

    /// Score a per-customer summary made by the query of `churn sql summary`
    /// (CSV or Parquet) instead of transactions.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs", help_heading = "Input")]
    pub summary: Option<PathBuf>,

    /// Purchase model to fit (ignored for what --model-file provides).
    #[arg(long, value_enum, default_value_t = ScoreModel::Bgnbd, help_heading = "Model")]
    pub model: ScoreModel,

    /// A model saved by `churn fit --save`; repeat for a purchase and a spend model.
    #[arg(long, value_name = "FILE", help_heading = "Model")]
    pub model_file: Vec<PathBuf>,

    /// Time unit for fitting and for the recency and T columns.
    #[arg(long, value_enum, default_value_t = Unit::Week, help_heading = "Model")]
    pub unit: Unit,

    /// L2 penalty when fitting.
    #[arg(long, default_value_t = 0.0, value_name = "LAMBDA", help_heading = "Model")]
    pub penalty: f64,

    /// Prediction horizon: days (90d), weeks (12w), months (3m, 365.25/12 days) or years (1y).
    #[arg(long, default_value = "90d", value_parser = parse_horizon, value_name = "SPAN", help_heading = "Scores")]
    pub horizon: f64,

    /// Annual discount rate for CLV (0.10 = 10% a year).
    #[arg(long, default_value_t = 0.10, value_name = "RATE", help_heading = "Scores")]
    pub discount_rate: f64,

    /// churn_risk thresholds for the high and medium bands.
    #[arg(long, default_value = "0.7,0.4", value_parser = parse_bands, value_name = "HIGH,MEDIUM", help_heading = "Scores")]
    pub bands: (f64, f64),

    /// Keep customers with churn_risk at least P.
    #[arg(long, value_name = "P", help_heading = "Scores")]
    pub min_risk: Option<f64>,

    /// Keep the first N rows after sorting.
    #[arg(long, value_name = "N", help_heading = "Scores")]
    pub top: Option<usize>,

    /// Sort key (descending; ties by customer_id).
    #[arg(long, value_enum, default_value_t = SortBy::ValueAtRisk, help_heading = "Scores")]
    pub sort: SortBy,
}

fn parse_bands(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{s}' is not two numbers like 0.7,0.4"))?;
    match parts[..] {
        [h, m] if (0.0..=1.0).contains(&h) && (0.0..=1.0).contains(&m) && m <= h => Ok((h, m)),
        _ => Err(format!("'{s}': give HIGH,MEDIUM with 0 <= MEDIUM <= HIGH <= 1")),
    }
}

/// The columns of the list, before --keep, --action and --changes-since add theirs.
const COLUMNS: [&str; 14] = [
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
fn read_previous(
    path: &PathBuf,
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

fn load_model(path: &PathBuf) -> Result<FittedModel> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a model saved by `churn fit --save`", path.display()))
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

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let mut target = args.output.checked_target(&args.input)?;
    if let (Some(_), Some(spec)) = (&args.changes_since, &mut target.columns) {
        // A delta without its change column would be ambiguous.
        if !spec.0.iter().any(|(c, _)| c == "change") {
            spec.0.push(("change".into(), "change".into()));
        }
    }
    let previous = match &args.changes_since {
        Some(path) => Some(read_previous(path, args.output.columns.as_ref())?),
        None => None,
    };
    let actions = args.list.actions(&RfmOptions::default().segments.names(), &args.output)?;
    let mut fixed = COLUMNS.to_vec();
    fixed.extend(actions.as_ref().map(|_| "action"));
    fixed.extend(args.changes_since.as_ref().map(|_| "change"));
    args.list.check_columns(&args.output, &fixed)?;
    if args.discount_rate.is_nan() || args.discount_rate <= -1.0 {
        bail!(UsageError("--discount-rate must be above -1".into()));
    }
    let mut purchase_file = None;
    let mut spend_file = None;
    for path in &args.model_file {
        let m = load_model(path)?;
        let slot = if m.model == ModelName::Gg { &mut spend_file } else { &mut purchase_file };
        if slot.is_some() {
            bail!(UsageError(format!("two {} models given with --model-file", m.model.title())));
        }
        *slot = Some(m);
    }
    let (aggregates, summary, ids, as_of, kept, what_was_read) = match &args.summary {
        Some(path) => {
            let mut s = args.list.read_summary(path)?;
            let read = s.note(path);
            let summary = s.model_summary(path)?;
            (s.aggregates, summary, s.ids, s.as_of, Vec::new(), read)
        }
        None => {
            let (parts, report) =
                args.input.load_each(&args.engine, &args.list.keep, progress, |mut tx| {
                    // From here on only the ids and the as-of date are needed.
                    let (aggregates, summary) = models::histories_freeing_rows(&mut tx);
                    Ok(CustomerPart {
                        ids: std::mem::take(&mut tx.ids),
                        kept: std::mem::take(&mut tx.kept),
                        aggregates,
                        summary,
                        as_of: tx.as_of,
                    })
                })?;
            let all = CustomerPart::join(parts);
            let read = report.summary(all.summary.len());
            (all.aggregates, all.summary, all.ids, all.as_of, all.kept, read)
        }
    };
    crate::base::release_freed_memory();
    progress.stage("summary");
    if summary.is_empty() {
        bail!("no customer has a purchase on or before {}", crate::base::text::day_string(as_of));
    }
    progress.note(&format!("{what_was_read}; as of {}", crate::base::text::day_string(as_of)));
    if purchase_file.is_none() {
        if let Some(problem) = models::fit_data_problem(&summary) {
            bail!("{problem}");
        }
    }
    let unit = purchase_file.as_ref().map_or(args.unit, |m| m.unit);
    let names = RfmOptions::default().segments.names();
    let spinner = progress.spinner("fitting and scoring");
    // Two chains of independent work run side by side: the RFM segments
    // then the spend model; the patterns then the purchase model.
    let segments_then_spend = || {
        // Each customer's RFM segment (the rows need no id order here: ties
        // in the list are broken by comparing the two ids).
        let mut segment_of = vec![u16::MAX; ids.len()];
        let segments =
            rfm::segment_codes(&aggregates, &summary.customer, as_of, &RfmOptions::default());
        for (&c, segment) in summary.customer.iter().zip(segments) {
            segment_of[c as usize] = segment;
        }
        let spend = match spend_file {
            Some(m) => Ok(m),
            None => match models::fit_spend(&summary, args.penalty) {
                Some(fit) if fit.converged => {
                    Ok(models::describe(ModelName::Gg, &fit, unit, as_of))
                }
                Some(_) => Err(anyhow::anyhow!(
                    "the Gamma-Gamma spend fit did not converge; try --penalty 0.001"
                )),
                None => Err(anyhow::anyhow!(
                    "the spend model needs customers with repeat purchases: fewer than 3 have one"
                )),
            },
        };
        (segment_of, spend)
    };
    let patterns_then_purchase = || {
        let pat = models::patterns(&summary, unit);
        let purchase = match purchase_file {
            Some(m) => Ok(m),
            None => models::fit_best_purchase(args.model.candidates(), &pat, args.penalty, unit, as_of)
                .ok_or_else(|| {
                    anyhow::anyhow!("the purchase model did not converge; try --penalty 0.001, another --unit, or `churn fit` to see the fit")
                }),
        };
        (pat, purchase)
    };
    let ((segment_of, spend), (pat, purchase)) =
        rayon::join(segments_then_spend, patterns_then_purchase);
    drop(aggregates);
    let (purchase, spend) = (purchase?, spend?);
    progress.stage("segments, patterns, models");
    let pp = purchase.param_vec();
    let sp = spend.param_vec();
    if sp[1] <= 1.0 {
        bail!(
            "the Gamma-Gamma fit has q = {} <= 1: expected spend is infinite; try --penalty",
            sp[1]
        );
    }
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
    let horizon = models::Horizon::new(args.horizon, args.discount_rate, unit);
    // Scores are computed when needed: for every customer to sort them, and
    // again for the rows written (with --top, a few hundred out of millions).
    let scorer = models::Scorer::fitted(&summary, &pat, &purchase, &spend, horizon);
    progress.stage("scores");
    spinner.finish_and_clear();

    // Rows: filter, sort, cut.
    let risk = |sc: &models::Score| 1.0 - sc.p_alive;
    let var = |sc: &models::Score| risk(sc) * sc.clv_if_alive;
    let key = |sc: &models::Score| match args.sort {
        SortBy::ValueAtRisk => var(sc),
        SortBy::ChurnRisk => risk(sc),
        SortBy::Clv => sc.clv,
    };
    let numeric = crate::base::aggregate::ids_are_numeric(&summary.customer, &ids);
    let by_key = |a: &Keyed, b: &Keyed| {
        b.0.total_cmp(&a.0)
            .then_with(|| crate::base::aggregate::compare_ids(&ids, numeric, a.1, b.1))
    };
    let keyed_of = |i: usize| {
        let score = scorer.score(i);
        let listed = args.min_risk.is_none_or(|p| risk(&score) >= p);
        listed.then(|| (key(&score), summary.customer[i], i as u32))
    };
    let mut keyed: Vec<Keyed> = match args.top {
        // With --top, each thread keeps its best N as it goes.
        Some(n) if n < summary.len() / 4 => first_n(summary.len(), n, keyed_of, by_key),
        _ => {
            // An indexed collect allocates once; a parallel filter would gather
            // pieces and copy them (twice the memory for 40M customers).
            let mut keyed: Vec<Keyed> = (0..summary.len())
                .into_par_iter()
                .map(|i| (key(&scorer.score(i)), summary.customer[i], i as u32))
                .collect();
            if let Some(p) = args.min_risk {
                keyed.retain(|k| risk(&scorer.score(k.2 as usize)) >= p);
            }
            if let Some(n) = args.top.filter(|&n| n < keyed.len()) {
                keyed.select_nth_unstable_by(n, by_key);
                keyed.truncate(n);
            }
            keyed
        }
    };
    keyed.par_sort_unstable_by(by_key);
    let order: Vec<usize> = keyed.into_iter().map(|k| k.2 as usize).collect();
    progress.stage("sort");
    let (high, medium) = args.bands;
    let mut labels = names.clone();
    labels.push(String::new());
    let unknown = (labels.len() - 1) as u16;
    let band_of = |sc: &models::Score| match risk(sc) {
        r if r >= high => 0,
        r if r >= medium => 1,
        _ => 2,
    };
    let band = |i: usize| band_of(&scorer.score(i));
    // With --changes-since, only the changed customers, then those gone.
    let band_names = ["high", "medium", "low"];
    let segment_label = |i: usize| match segment_of[summary.customer[i] as usize] {
        u16::MAX => unknown,
        s => s,
    };
    let (order, change, gone) = match &previous {
        None => (order, Vec::new(), Vec::new()),
        Some(prev) => {
            let mut listed = std::collections::HashSet::with_capacity(order.len());
            let (mut rows, mut change) = (Vec::new(), Vec::new());
            for &i in &order {
                let id = ids.get(summary.customer[i]);
                let was = prev.by_id.get(id.as_ref());
                let now = (band_names[band(i) as usize], &labels[segment_label(i) as usize]);
                if let Some(c) = changes::classify(was, now.0, now.1) {
                    rows.push(i);
                    change.push(c);
                }
                listed.insert(id.into_owned());
            }
            let gone: Vec<&str> =
                prev.order.iter().filter(|id| !listed.contains(*id)).map(String::as_str).collect();
            change.extend(std::iter::repeat_n(changes::Change::Gone, gone.len()));
            (rows, change, gone)
        }
    };
    // The action of each (segment, band): label segment * 3 + band.
    let action_labels: Vec<String> = actions
        .iter()
        .flat_map(|a| {
            labels.iter().flat_map(move |segment| {
                [Band::High, Band::Medium, Band::Low]
                    .map(|b| a.action(segment, Some(b)).to_string())
            })
        })
        .collect();
    // The list is built block by block while it is written: the rows are in
    // score order, so every lookup is a cache miss, and gathering blocks on
    // all cores without a full copy of the list is both faster and leaner.
    let current_block = |r: std::ops::Range<usize>| -> Table {
        let order = &order[r];
        let f = |g: &dyn Fn(usize) -> f64| ColumnData::Float(order.iter().map(|&i| g(i)).collect());
        let scores: Vec<models::Score> = order.iter().map(|&i| scorer.score(i)).collect();
        let fs =
            |g: &dyn Fn(&models::Score) -> f64| ColumnData::Float(scores.iter().map(g).collect());
        let mut t = Table::new();
        t.push(
            "customer_id",
            ColumnData::Str(order.iter().map(|&i| ids.get(summary.customer[i])).collect()),
        );
        for (name, values) in &kept {
            let column = order.iter().map(|&i| values.get(summary.customer[i])).collect();
            t.push(name, ColumnData::Str(column));
        }
        t.push("frequency", ColumnData::I32(order.iter().map(|&i| summary.x[i] as i32).collect()));
        t.push("recency", f(&|i| summary.t_x_days[i] as f64 / unit.days()));
        t.push("T", f(&|i| summary.t_days[i] as f64 / unit.days()));
        t.push("monetary_avg", f(&|i| summary.monetary_avg[i]));
        t.push("p_alive", fs(&|sc| sc.p_alive));
        t.push("churn_risk", fs(&risk));
        t.push("expected_purchases", fs(&|sc| sc.expected_purchases));
        t.push("p_no_purchase", fs(&|sc| sc.p_no_purchase));
        t.push("expected_spend", fs(&|sc| sc.expected_spend));
        t.push("clv", fs(&|sc| sc.clv));
        t.push("value_at_risk", fs(&var));
        t.push(
            "risk_band",
            ColumnData::Cat {
                labels: vec!["high".to_string(), "medium".to_string(), "low".to_string()],
                codes: scores.iter().map(band_of).collect(),
            },
        );
        t.push(
            "segment",
            ColumnData::Cat {
                labels: labels.clone(),
                codes: order.iter().map(|&i| segment_label(i)).collect(),
            },
        );
        if !action_labels.is_empty() {
            let ColumnData::Cat { codes: segments, .. } = &t.columns.last().expect("segment").1
            else {
                unreachable!("segment is categorical")
            };
            let codes = segments.iter().zip(&scores).map(|(&s, sc)| s * 3 + band_of(sc)).collect();
            t.push("action", ColumnData::Cat { labels: action_labels.clone(), codes });
        }
        t
    };
    // Rows past the current list are customers gone since the previous one.
    let block = |r: std::ops::Range<usize>| -> Table {
        if previous.is_none() {
            return current_block(r);
        }
        let current = r.start.min(order.len())..r.end.min(order.len());
        let gone_ids =
            &gone[r.start.max(order.len()) - order.len()..r.end.max(order.len()) - order.len()];
        let mut t = current_block(current.clone());
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
    output::write_blocks(&target, order.len() + gone.len(), block)?;
    progress.stage("write");
    Ok(())
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
