//! RFM: scores and segments checked by hand and against a naive implementation.

use crate::util::*;

#[test]
fn rfm_matches_hand_computation() {
    let hand = data("hand.csv");
    churn()
        .args(["rfm", hand.to_str().unwrap(), "--as-of", "2024-03-31"])
        .assert()
        .success()
        .stdout(hand_expected())
        .stderr(predicate::str::contains("skipped 1 row (blank customer id: 1)"))
        .stderr(predicate::str::contains("ignored 1 row after the as-of date"))
        .stderr(predicate::str::contains("order='order_id'"));
}

#[test]
fn returns_policies_and_monetary_mean() {
    let hand = data("hand.csv");
    let h = hand.to_str().unwrap();
    let net = rows(&stdout_of(&["rfm", h, "--as-of", "2024-03-31"]));
    assert_eq!(net[0][5], "145");
    let dropped = rows(&stdout_of(&["rfm", h, "--as-of", "2024-03-31", "--returns", "drop"]));
    assert_eq!(dropped[0][5], "175");
    assert_eq!(dropped[0][4], "2", "a return is never a purchase");
    let mean = rows(&stdout_of(&["rfm", h, "--as-of", "2024-03-31", "--monetary", "mean"]));
    assert_eq!(mean[0][5], "72.5");
    assert_eq!(mean[2][5], "200");
}

#[test]
fn as_of_defaults_to_latest_transaction() {
    let out = rows(&stdout_of(&["rfm", data("hand.csv").to_str().unwrap()]));
    // Latest row is D's on 2024-04-05: D's last purchase, A's recency is 55.
    assert_eq!(out.len(), 5);
    assert_eq!(out[0][3], "55");
    assert_eq!(out[3][0], "D");
    assert_eq!(out[3][3], "0");
}

/// A row without an order id is a purchase of its own, also when another
/// input holds a row at the same place (they were one purchase).
#[test]
fn rows_without_order_ids_in_two_inputs_are_two_purchases() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&a, "customer_id,date,amount,order_id\nc1,2024-01-01,10,\n").unwrap();
    std::fs::write(&b, "customer_id,date,amount,order_id\nc1,2024-02-01,20,\n").unwrap();
    let r = rows(&stdout_of(&["rfm", "-q", a.to_str().unwrap(), b.to_str().unwrap()]));
    assert_eq!(&r[0][..6], ["c1", "2024-01-01", "2024-02-01", "0", "2", "30"]);
}

#[test]
fn custom_segments() {
    let r = rows(&stdout_of(&[
        "rfm",
        data("hand.csv").to_str().unwrap(),
        "--as-of",
        "2024-03-31",
        "--segments",
        data("segments.toml").to_str().unwrap(),
    ]));
    let seg: Vec<&str> = r.iter().map(|x| x[10].as_str()).collect();
    // r_score: A 2, B 5, C 3, D 1, E 4 (see HAND_RFM).
    assert_eq!(seg, ["Old", "Recent", "Old", "Old", "Recent"]);
    let dir = TempDir::new().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "name,r_min,r_max,f_min,f_max,m_min,m_max\nA,1,5,1,5,1,5\nB,0,5,1,5,1,5\n",
    )
    .unwrap();
    churn()
        .args(["rfm", data("hand.csv").to_str().unwrap(), "--segments", bad.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 3"));
}

/// A second, deliberately naive implementation of `churn rfm` (maps and full
/// sorts, amounts summed as integer cents) checked against the real binary on
/// an input large enough to be split into several chunks and parsed in parallel.
#[test]
fn rfm_agrees_with_naive_implementation_on_multi_chunk_input() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("big.csv");
    // Deterministic pseudo-random export: 300k rows, ~12 MB (3 chunks), quoted
    // fields with embedded newlines, returns, free orders, blanks and line items of one order.
    let mut text = String::from("order_id,customer_id,order_date,amount,note\n");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..300_000u64 {
        let r = next();
        let customer = if r % 97 == 0 { String::new() } else { format!("c{}", r % 20_011) };
        let day = 1 + (r >> 8) % 28;
        let month = 1 + (r >> 16) % 12;
        let cents = ((r >> 24) % 20_000) as i64 - if (r >> 40) % 25 == 0 { 25_000 } else { 0 };
        // Free orders (2%): purchases all the same.
        let cents = if (r >> 48) % 50 == 0 { 0 } else { cents };
        let order = i / 2; // two line items per order
        let note = if r % 13 == 0 { "\"gift, \"\"wrapped\"\"\nsecond line\"" } else { "" };
        text += &format!(
            "{order},{customer},2023-{month:02}-{day:02} 10:{:02}:00,{}{}.{:02},{note}\n",
            r % 60,
            if cents < 0 { "-" } else { "" },
            cents.abs() / 100,
            cents.abs() % 100
        );
    }
    std::fs::write(&path, &text).unwrap();

    // The naive computation.
    struct C {
        first: String,
        last: String,
        orders: BTreeSet<String>,
        cents: i64,
    }
    let mut per: BTreeMap<String, C> = BTreeMap::new();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let cust = rec[1].trim().to_string();
        if cust.is_empty() {
            continue;
        }
        let date = rec[2][..10].to_string();
        let amount = &rec[3];
        let neg = amount.starts_with('-');
        let (units, frac) = amount.trim_start_matches('-').split_once('.').unwrap();
        let cents = (units.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap())
            * if neg { -1 } else { 1 };
        let c = per.entry(cust).or_insert(C {
            first: "9999".into(),
            last: "0000".into(),
            orders: BTreeSet::new(),
            cents: 0,
        });
        c.cents += cents;
        // Every row that is not a return is a purchase, zero amounts too.
        if cents >= 0 {
            c.first = c.first.clone().min(date.clone());
            c.last = c.last.clone().max(date);
            c.orders.insert(rec[0].to_string());
        }
    }
    per.retain(|_, c| !c.orders.is_empty());
    let as_of = per.values().map(|c| c.last.clone()).max().unwrap();
    let day = |s: &str| churn::base::dates::parse_ymd(s).unwrap();
    let quant = |mut v: Vec<f64>| -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (1..5)
            .map(|k| {
                let h = (n - 1) as f64 * k as f64 / 5.0;
                let lo = h.floor() as usize;
                let hi = (lo + 1).min(n - 1);
                let t = h - lo as f64;
                if t >= 0.5 {
                    v[hi] - (v[hi] - v[lo]) * (1.0 - t)
                } else {
                    v[lo] + (v[hi] - v[lo]) * t
                }
            })
            .collect()
    };
    let rec_of = |c: &C| (day(&as_of) - day(&c.last)) as f64;
    let rq = quant(per.values().map(rec_of).collect());
    let fq = quant(per.values().map(|c| c.orders.len() as f64).collect());
    let mq = quant(per.values().map(|c| c.cents as f64 / 100.0).collect());
    let above = |v: f64, q: &[f64]| q.iter().filter(|&&c| v > c).count() as u32;

    let out = stdout_of(&["rfm", path.to_str().unwrap(), "-q"]);
    let got = rows(&out);
    assert_eq!(got.len(), per.len());
    for (row, (id, c)) in got.iter().zip(&per) {
        let m = c.cents as f64 / 100.0;
        let (r, f, ms) =
            (5 - above(rec_of(c), &rq), 1 + above(c.orders.len() as f64, &fq), 1 + above(m, &mq));
        assert_eq!(row[0], *id);
        assert_eq!(row[1], c.first);
        assert_eq!(row[2], c.last);
        assert_eq!(row[3], (rec_of(c) as i64).to_string(), "{id}");
        assert_eq!(row[4], c.orders.len().to_string(), "{id}");
        assert_eq!(row[5].parse::<f64>().unwrap(), m, "{id}");
        assert_eq!(
            (&row[6], &row[7], &row[8]),
            (&r.to_string(), &f.to_string(), &ms.to_string()),
            "{id}"
        );
    }
    // A file is mapped and cut in place; stdin is read into buffers; a
    // byte-order mark is dropped by both: the same table every way.
    let piped = churn().args(["rfm", "-", "-q"]).write_stdin(text.clone()).output().unwrap();
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), out);
    let bom = dir.path().join("bom.csv");
    std::fs::write(&bom, format!("\u{FEFF}{text}")).unwrap();
    assert_eq!(stdout_of(&["rfm", bom.to_str().unwrap(), "-q"]), out);
}
