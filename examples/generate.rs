//! Generates realistic transaction exports with known parameters.
//!
//! Customers buy as a BG/NBD process (Fader, Hardie & Lee 2005): while alive,
//! purchases arrive as a Poisson process with rate λ ~ Gamma(r, α); after
//! each repeat purchase the customer drops out with probability p ~ Beta(a, b).
//! Spend per purchase follows the Gamma-Gamma model: z ~ Gamma(p, ν) with
//! ν ~ Gamma(q, γ). Defaults are the published CDNOW estimates (weeks as
//! the unit), so fitted models can be checked against the truth.
//!
//! The output is seeded and deterministic.
//!
//!     cargo run --release --example generate -- --rows 5000 -o testdata/sample.csv
//!     cargo run --release --example generate -- --rows 10000000 -o /tmp/big.csv
//!     cargo run --release --example generate -- --rows 100000 --layout lineitem -o items.parquet

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use churn::base::dates::{parse_ymd, Day};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};

struct Opts {
    rows: u64,
    seed: u64,
    start: i32,
    weeks: f64,
    lineitem: bool,
    out: Option<PathBuf>,
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    p: f64,
    q: f64,
    gamma: f64,
    returns_rate: f64,
    blank_rate: f64,
    /// Fraction of orders that are free (amount 0): still purchases.
    zero_rate: f64,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        rows: 5000,
        seed: 42,
        start: parse_ymd("2023-01-01").unwrap(),
        weeks: 78.0,
        lineitem: false,
        out: None,
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
        returns_rate: 0.02,
        blank_rate: 0.005,
        zero_rate: 0.0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let val = || args.get(i + 1).with_context(|| format!("{flag} needs a value"));
        let num = || -> Result<f64> {
            val()?.parse::<f64>().with_context(|| format!("{flag}: not a number"))
        };
        match flag {
            "--rows" => o.rows = parse_count(val()?)?,
            "--seed" => o.seed = val()?.parse()?,
            "--start" => o.start = parse_ymd(val()?).context("--start: use YYYY-MM-DD")?,
            "--weeks" => o.weeks = num()?,
            "--layout" => {
                o.lineitem = match val()?.as_str() {
                    "order" => false,
                    "lineitem" => true,
                    v => bail!("--layout: order or lineitem, not {v}"),
                }
            }
            "-o" | "--output" => o.out = Some(PathBuf::from(val()?)),
            "--r" => o.r = num()?,
            "--alpha" => o.alpha = num()?,
            "--a" => o.a = num()?,
            "--b" => o.b = num()?,
            "--p" => o.p = num()?,
            "--q" => o.q = num()?,
            "--gamma" => o.gamma = num()?,
            "--returns-rate" => o.returns_rate = num()?,
            "--blank-rate" => o.blank_rate = num()?,
            "--zero-rate" => o.zero_rate = num()?,
            "-h" | "--help" => {
                eprintln!(
                    "generate [--rows N|10M|100M] [--seed S] [--start YYYY-MM-DD] [--weeks W] [--layout order|lineitem]\n         [--r R --alpha A --a A --b B] [--p P --q Q --gamma G] [--returns-rate X] [--blank-rate X] [--zero-rate X] [-o FILE.csv|.parquet]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {flag}"),
        }
        i += 2;
    }
    Ok(o)
}

fn parse_count(s: &str) -> Result<u64> {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'M') | Some(b'm') => (&s[..s.len() - 1], 1_000_000),
        Some(b'K') | Some(b'k') => (&s[..s.len() - 1], 1_000),
        _ => (s, 1),
    };
    Ok(num.parse::<u64>().with_context(|| format!("--rows: '{s}' is not a count"))? * mul)
}

/// One output row before sorting.
struct Row {
    secs: i64,
    customer: u32,
    order: u32,
    cents: i64,
    quantity: i32,
    item: u16,
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let lambda_d = Gamma::new(o.r, 1.0 / o.alpha)?;
    let p_d = Beta::new(o.a, o.b)?;
    let nu_d = Gamma::new(o.q, 1.0 / o.gamma)?;
    let horizon = o.weeks * 7.0 * 86_400.0;
    let mut rows: Vec<Row> = Vec::with_capacity(o.rows as usize + 64);
    let mut order = 100_000u32;
    let mut customer = 0u32;
    while (rows.len() as u64) < o.rows {
        customer += 1;
        let lambda: f64 = lambda_d.sample(&mut rng); // purchases per week
        let p: f64 = p_d.sample(&mut rng);
        let nu: f64 = nu_d.sample(&mut rng);
        let spend = Gamma::new(o.p, 1.0 / nu)?;
        // Customers are acquired uniformly over the first two thirds of the period.
        let mut t = rng.gen_range(0.0..horizon * 2.0 / 3.0);
        let gap = Exp::new(lambda.max(1e-9) / (7.0 * 86_400.0))?;
        let mut first = true;
        loop {
            order += 1;
            let amount: f64 = spend.sample(&mut rng);
            // Drawn only when asked for, so that other exports stay as they were.
            let free = o.zero_rate > 0.0 && rng.gen_bool(o.zero_rate.clamp(0.0, 1.0));
            let cents = if free { 0 } else { ((amount * 100.0).round() as i64).max(1) };
            let items = if o.lineitem && !free { rng.gen_range(1..=4u16) } else { 1 };
            let mut left = cents;
            for item in 0..items {
                let part =
                    if item + 1 == items { left } else { (left / (items - item) as i64).max(1) };
                left -= part;
                if part <= 0 && !free {
                    continue;
                }
                let quantity = if o.lineitem && part % 2 == 0 && rng.gen_bool(0.3) { 2 } else { 1 };
                rows.push(Row {
                    secs: t as i64,
                    customer,
                    order,
                    cents: part / quantity as i64,
                    quantity,
                    item,
                });
            }
            if !free && rng.gen_bool(o.returns_rate.clamp(0.0, 1.0)) {
                // A later partial return of this order.
                let when = t + rng.gen_range(86_400.0..30.0 * 86_400.0);
                if when < horizon {
                    order += 1;
                    rows.push(Row {
                        secs: when as i64,
                        customer,
                        order,
                        cents: -(cents / 2).max(1),
                        quantity: -1,
                        item: 0,
                    });
                }
            }
            if !first && rng.gen_bool(p) {
                break; // dropped out after this repeat purchase
            }
            first = false;
            t += gap.sample(&mut rng);
            if t >= horizon {
                break;
            }
        }
    }
    rows.sort_by_key(|r| (r.secs, r.customer, r.order, r.item));
    rows.truncate(o.rows as usize);
    eprintln!(
        "generated {} rows, {} customers, seed {}; BG/NBD r={} alpha={} a={} b={} (weeks); Gamma-Gamma p={} q={} gamma={}",
        rows.len(),
        customer,
        o.seed,
        o.r,
        o.alpha,
        o.a,
        o.b,
        o.p,
        o.q,
        o.gamma
    );

    let is_parquet = o.out.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e == "parquet"));
    if is_parquet {
        return write_parquet(&o, &rows, &mut rng);
    }
    let sink: Box<dyn Write> = match &o.out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::with_capacity(1 << 20, sink);
    if o.lineitem {
        writeln!(w, "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country")?;
    } else {
        writeln!(w, "order_id,customer_id,order_date,amount")?;
    }
    for r in &rows {
        let blank = o.blank_rate > 0.0 && rng.gen_bool(o.blank_rate);
        let day = (r.secs.div_euclid(86_400)) as i32 + o.start;
        let s = r.secs.rem_euclid(86_400);
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
        let cust = if blank { String::new() } else { (10_000 + r.customer).to_string() };
        let money = cents_str(r.cents);
        if o.lineitem {
            let stock = 20_000 + (r.order as u64 * 31 + r.item as u64 * 7) % 5000;
            let inv = if r.quantity < 0 { format!("C{}", r.order) } else { r.order.to_string() };
            let price = cents_str(r.cents.abs());
            writeln!(
                w,
                "{inv},{stock},{},{} {h:02}:{m:02}:{sec:02},{price},{cust},United Kingdom",
                r.quantity,
                Day(day)
            )?;
        } else {
            writeln!(w, "{},{cust},{} {h:02}:{m:02}:{sec:02},{money}", r.order, Day(day))?;
        }
    }
    w.flush()?;
    Ok(())
}

fn cents_str(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

fn write_parquet(o: &Opts, rows: &[Row], rng: &mut StdRng) -> Result<()> {
    use polars::prelude::*;
    let mut cust: Vec<Option<i64>> = Vec::with_capacity(rows.len());
    for r in rows {
        let blank = o.blank_rate > 0.0 && rng.gen_bool(o.blank_rate);
        cust.push((!blank).then_some(10_000 + r.customer as i64));
    }
    let day_us: Vec<i64> =
        rows.iter().map(|r| (o.start as i64 * 86_400 + r.secs) * 1_000_000).collect();
    let date = Int64Chunked::from_vec("order_date".into(), day_us)
        .into_datetime(TimeUnit::Microseconds, None)
        .into_series();
    let mut cols: Vec<Column> = vec![
        Series::new("order_id".into(), rows.iter().map(|r| r.order as i64).collect::<Vec<_>>())
            .into(),
        Series::new("customer_id".into(), cust).into(),
        date.into(),
    ];
    if o.lineitem {
        cols.push(
            Series::new(
                "quantity".into(),
                rows.iter().map(|r| r.quantity as i64).collect::<Vec<_>>(),
            )
            .into(),
        );
        cols.push(
            Series::new(
                "unit_price".into(),
                rows.iter().map(|r| r.cents.abs() as f64 / 100.0).collect::<Vec<_>>(),
            )
            .into(),
        );
    } else {
        cols.push(
            Series::new(
                "amount".into(),
                rows.iter().map(|r| r.cents as f64 / 100.0).collect::<Vec<_>>(),
            )
            .into(),
        );
    }
    let mut df = DataFrame::new(rows.len(), cols)?;
    let path = o.out.as_ref().unwrap();
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    ParquetWriter::new(f).finish(&mut df)?;
    Ok(())
}
