//! Extremes of shape: a million customers, one customer with a million rows.

use crate::util::*;

#[test]
fn a_million_customers_with_one_row_each() {
    let out = churn().args(["rfm", million_customers().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read 1,000,000 rows from 1 input; 1,000,000 customers"), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1_000_001);
    // Written in many blocks, formatted while earlier ones are written: every
    // customer once, in id order.
    let ids: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((ids[0], ids[999_999]), ("C0000000", "C0999999"));
    // Spot checks against the generator: C0000123 bought on 2023-04-11 for 24.01.
    assert!(text.contains("\nC0000123,2023-04-11,2023-04-11,"), "C0000123 missing");
    let c123 = text.lines().find(|l| l.starts_with("C0000123,")).unwrap();
    let fields: Vec<&str> = c123.split(',').collect();
    assert_eq!(fields[4..6], ["1", "24.01"]);
}

#[test]
fn one_customer_with_a_million_rows() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("one.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(w, "customer_id,date,amount").unwrap();
    for i in 0..1_000_000u32 {
        let (y, m, d) = (2020 + i % 4, 1 + (i / 4) % 12, 1 + (i / 48) % 28);
        writeln!(w, "only,{y}-{m:02}-{d:02},0.01").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = stdout_of(&["rfm", path.to_str().unwrap(), "-q"]);
    // Every row is a purchase of one cent: exactly 10,000.00 in all. (Scores
    // are relative: alone, the customer is in the top recency quintile and,
    // with no one above, in the first frequency and monetary quintiles.)
    assert_eq!(
        out.lines().nth(1).unwrap(),
        "only,2020-01-01,2023-12-28,0,1000000,10000,5,1,1,511,New Customers"
    );
}
