//! `churn rfm`: recency, frequency and monetary scores and segments of
//! every customer, written as a table.

use anyhow::Result;
use rayon::prelude::*;

use crate::base::progress::Progress;
use crate::base::transactions::CustomerIds;
use crate::domain::actions::Actions;
use crate::domain::rfm::{self, CustomerRfm, RfmOptions};
use crate::io::input::CustomerPart;
use crate::io::output::{self, ColumnData, OutputTarget, Table};
use crate::pipeline::Customers;

/// Scores the customers and writes their rows, with an action column when
/// `actions` are given.
pub fn run(
    customers: &Customers,
    opts: &RfmOptions,
    actions: Option<&Actions>,
    target: &OutputTarget,
    progress: &Progress,
) -> Result<()> {
    let (aggregates, ids, as_of, kept, what_was_read, spinner) = match customers {
        Customers::Summary(path) => {
            let s = crate::io::input::summary::read_summary(path)?;
            let read = s.note(path);
            let spinner = progress.spinner("computing RFM");
            (s.aggregates, s.ids, s.as_of, Vec::new(), read, spinner)
        }
        Customers::Transactions(source) => {
            let (parts, report) = source.load_each(progress, |mut tx| {
                // Only the ids are needed from here on: the rows are freed on return.
                Ok(CustomerPart {
                    aggregates: crate::base::aggregate::aggregate(&tx),
                    ids: std::mem::take(&mut tx.ids),
                    kept: std::mem::take(&mut tx.kept),
                    as_of: tx.as_of,
                    ..CustomerPart::default()
                })
            })?;
            let spinner = progress.spinner("computing RFM");
            let all = CustomerPart::join(parts);
            let read = report.summary(all.aggregates.purchases.iter().filter(|&&p| p > 0).count());
            (all.aggregates, all.ids, all.as_of, all.kept, read, spinner)
        }
    };
    crate::base::release_freed_memory();
    let rows = rfm::score(aggregates, &ids, as_of, opts);
    spinner.finish_and_clear();
    if rows.is_empty() {
        anyhow::bail!(
            "no customer has a purchase (a row that is not a return) on or before {}",
            crate::base::text::day_string(as_of)
        );
    }
    progress.stage("rfm");
    progress.note(&format!("{what_was_read}; as of {}", crate::base::text::day_string(as_of)));
    let spinner = progress.spinner("writing");
    // Built and written a block of rows at a time: the table of 40M
    // customers never exists whole.
    output::write_blocks(target, rows.len(), |r| table(&rows[r], &ids, &kept, opts, actions))?;
    spinner.finish_and_clear();
    progress.stage("write");
    Ok(())
}

/// The RFM rows as an output table, built column by column in parallel.
pub fn table(
    rows: &[CustomerRfm],
    ids: &CustomerIds,
    kept: &[(String, CustomerIds)],
    opts: &RfmOptions,
    actions: Option<&Actions>,
) -> Table {
    let bins = opts.bins;
    let ids = output::par_strings(rows, |r, out| out.push_str(&ids.get(r.customer)));
    let scores = output::par_strings(rows, |r, out| {
        rfm::push_rfm_score(out, r.r_score.into(), r.f_score.into(), r.m_score.into(), bins)
    });
    let int = |f: fn(&CustomerRfm) -> i32| ColumnData::I32(rows.par_iter().map(f).collect());
    let score = |f: fn(&CustomerRfm) -> u8| ColumnData::U8(rows.par_iter().map(f).collect());
    let mut t = Table::new();
    t.push("customer_id", ColumnData::Str(ids));
    for (name, values) in kept {
        let column = output::par_strings(rows, |r, out| out.push_str(&values.get(r.customer)));
        t.push(name, ColumnData::Str(column));
    }
    t.push("first_purchase", ColumnData::Date(rows.par_iter().map(|r| r.first_purchase).collect()));
    t.push("last_purchase", ColumnData::Date(rows.par_iter().map(|r| r.last_purchase).collect()));
    t.push("recency_days", int(|r| r.recency_days));
    t.push("frequency", int(|r| r.frequency as i32));
    t.push("monetary", ColumnData::Float(rows.par_iter().map(|r| r.monetary).collect()));
    t.push("r_score", score(|r| r.r_score));
    t.push("f_score", score(|r| r.f_score));
    t.push("m_score", score(|r| r.m_score));
    t.push("rfm_score", ColumnData::Str(scores));
    let segments: Vec<u16> = rows.par_iter().map(|r| r.segment).collect();
    let names = opts.segments.names();
    let action = actions.map(|a| {
        let labels = names.iter().map(|n| a.action(n, None).to_string()).collect();
        ColumnData::Cat { labels, codes: segments.clone() }
    });
    t.push("segment", ColumnData::Cat { labels: names, codes: segments });
    if let Some(column) = action {
        t.push("action", column);
    }
    t
}
