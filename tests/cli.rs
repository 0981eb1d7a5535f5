//! End-to-end tests: the real `churn` binary on the fixtures in testdata/.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn churn() -> Command {
    Command::cargo_bin("churn").unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn stdout_of(args: &[&str]) -> String {
    let out = churn().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "churn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&stdout_of(args)).unwrap()
}

/// Each named parameter of a `churn fit --json` object within `rel` of the reference.
fn assert_params(fit: &serde_json::Value, want: &[(&str, f64)], rel: f64) {
    for &(name, reference) in want {
        let got = fit["params"][name].as_f64().unwrap();
        assert!(
            (got - reference).abs() < rel * reference,
            "{name}: {got} vs lifetimes {reference}"
        );
    }
}

fn rows(csv: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
}

const HEADER: &str =
    "customer_id,first_purchase,last_purchase,recency_days,frequency,monetary,r_score,f_score,m_score,rfm_score,segment";

/// Computed by hand in the comments below (as-of 2024-03-31):
/// A: orders 1, 2 (two lines), return -30 -> frequency 2, monetary 145, last 2024-02-10 (50 days)
/// B: one order on the as-of day -> recency 0
/// C: three orders of 200 -> frequency 3, monetary 600, last 2024-02-20 (40 days)
/// D: a free order (amount 0) on 2024-01-31 is a purchase (60 days), the row
///    after as-of is ignored -> frequency 1, monetary 0
/// E: one order of 40 on 2024-03-15 (16 days); the blank-customer row is skipped
/// Quantiles (type 7, N=5, h = 4p): recency [0,16,40,50,60] -> 12.8, 30.4, 44, 52;
/// frequency [1,1,1,2,3] -> 1, 1, 1.4, 2.2; monetary [0,10,40,145,600] -> 8, 28, 82, 236.
/// Segments: A 244 Loyal Customers (R 2-4, F 2-4, M 2-4), B 512 New Customers,
/// C 355 Potential Loyalist (R 3-5, F 3-5, M 2-5), D 111 Lost, E 413 Promising
/// (R 3-4, F 1-3, M 3-5).
const HAND_RFM: &str = "\
A,2024-01-05,2024-02-10,50,2,145,2,4,4,244,Loyal Customers
B,2024-03-31,2024-03-31,0,1,10,5,1,2,512,New Customers
C,2023-12-01,2024-02-20,40,3,600,3,5,5,355,Potential Loyalist
D,2024-01-31,2024-01-31,60,1,0,1,1,1,111,Lost
E,2024-03-15,2024-03-15,16,1,40,4,1,3,413,Promising
";

fn hand_expected() -> String {
    format!("{HEADER}\n{HAND_RFM}")
}

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
fn line_item_export_uci_layout() {
    let out = stdout_of(&["rfm", data("uci_lineitems.csv").to_str().unwrap()]);
    let r = rows(&out);
    assert_eq!(r.len(), 2);
    // 14527: a cancellation C536379 of -27.50 and an order of 2 x 4.95, month-first dates.
    assert_eq!(&r[0][..6], ["14527", "2010-12-13", "2010-12-13", "0", "1", "-17.6"]);
    // 17850: invoices 536365 (two lines) and 536366: 6x2.55 + 6x3.39 + 6x1.85.
    assert_eq!(&r[1][..5], ["17850", "2010-12-01", "2010-12-01", "12", "2"]);
    let m: f64 = r[1][5].parse().unwrap();
    assert!((m - 46.74).abs() < 1e-9);
    // Explicit flags give the same result.
    let explicit = stdout_of(&[
        "rfm",
        data("uci_lineitems.csv").to_str().unwrap(),
        "--customer",
        "CustomerID",
        "--date",
        "InvoiceDate",
        "--quantity",
        "Quantity",
        "--price",
        "UnitPrice",
        "--order",
        "InvoiceNo",
        "--date-format",
        "%m/%d/%Y %H:%M",
    ]);
    assert_eq!(explicit, out);
}

#[test]
fn shopify_layout_with_offsets_in_utc_days() {
    let r = rows(&stdout_of(&["rfm", data("shopify_orders.csv").to_str().unwrap()]));
    // 2024-01-31 23:30 -05:00 is 2024-02-01 UTC; 2024-03-01T01:00+02:00 is 2024-02-29 UTC.
    assert_eq!(&r[0][..6], ["ann@example.com", "2024-02-01", "2024-02-29", "5", "2", "120"]);
    assert_eq!(&r[1][..6], ["bob@example.com", "2024-02-01", "2024-02-01", "33", "1", "35.5"]);
}

#[test]
fn delimiter_day_first_and_flags() {
    let f = data("semicolon_dayfirst.csv");
    churn()
        .args(["rfm", f.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("pass --delimiter ';'"));
    let r = rows(&stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "--delimiter",
        ";",
        "--customer",
        "Kunde",
        "--date",
        "Datum",
        "--amount",
        "Betrag",
    ]));
    assert_eq!(&r[0][..6], ["K1", "2024-04-03", "2024-04-15", "0", "2", "30.5"]);
    assert_eq!(&r[1][..4], ["K2", "2024-02-01", "2024-02-01", "74"]);
}

#[test]
fn compact_dates_tsv_bom_and_crlf() {
    let r = rows(&stdout_of(&["rfm", data("compact.tsv").to_str().unwrap()]));
    assert_eq!(&r[0][..6], ["x", "2024-01-01", "2024-01-02", "0", "2", "3"]);
    let r = rows(&stdout_of(&["rfm", data("bom_crlf.csv").to_str().unwrap()]));
    assert_eq!(&r[0][..6], ["A", "2024-01-01", "2024-01-03", "0", "2", "12"]);
}

#[test]
fn gzip_stdin_and_multiple_files_agree() {
    let dir = TempDir::new().unwrap();
    let text = std::fs::read_to_string(data("hand.csv")).unwrap();
    let gz = dir.path().join("hand.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let expected = hand_expected();
    assert_eq!(stdout_of(&["rfm", gz.to_str().unwrap(), "--as-of", "2024-03-31"]), expected);

    churn()
        .args(["rfm", "-", "--as-of", "2024-03-31"])
        .write_stdin(text.clone())
        .assert()
        .success()
        .stdout(expected.clone());
    churn().args(["rfm", "--as-of", "2024-03-31"]).write_stdin(text.clone()).assert().success();

    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&a, lines[..6].join("\n") + "\n").unwrap();
    std::fs::write(&b, format!("{}\n{}\n", lines[0], lines[6..].join("\n"))).unwrap();
    let both =
        stdout_of(&["rfm", a.to_str().unwrap(), b.to_str().unwrap(), "--as-of", "2024-03-31"]);
    assert_eq!(both, expected);
}

#[test]
fn parquet_input_agrees_with_csv() {
    use polars::prelude::*;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("hand.parquet");
    // The hand fixture with typed columns: Date dates and Float64 amounts.
    let text = std::fs::read_to_string(data("hand.csv")).unwrap();
    let recs = rows(&text);
    let cust: Vec<&str> = recs.iter().map(|r| r[0].as_str()).collect();
    let order: Vec<i64> = recs.iter().map(|r| r[1].parse().unwrap()).collect();
    let days: Vec<i32> = recs.iter().map(|r| churn::dates::parse_ymd(&r[2]).unwrap()).collect();
    let amount: Vec<f64> = recs.iter().map(|r| r[3].parse().unwrap()).collect();
    let mut df = DataFrame::new(
        recs.len(),
        vec![
            Series::new("customer_id".into(), cust).into(),
            Series::new("order_id".into(), order).into(),
            Int32Chunked::from_vec("date".into(), days).into_date().into_series().into(),
            Series::new("amount".into(), amount).into(),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
    assert_eq!(
        stdout_of(&["rfm", path.to_str().unwrap(), "--as-of", "2024-03-31"]),
        hand_expected()
    );
}

#[test]
fn bad_inputs_fail_with_clear_messages_and_no_output() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out.csv");
    let o = out.to_str().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("no_customer.csv", &[], "no customer column found in"),
        ("no_customer.csv", &[], "'who', 'when_', 'amount'; pass --customer COLUMN"),
        ("bad_date.csv", &[], "bad_date.csv line 3, column 'date': '2024-13-45' is not a date"),
        ("bad_date.csv", &[], "--skip-invalid"),
        (
            "bad_amount.csv",
            &[],
            "bad_amount.csv line 3, column 'amount': '$6.00' is not a plain decimal number",
        ),
        ("ambiguous_dates.csv", &[], "fit both day-first and month-first"),
        ("ambiguous_dates.csv", &[], "--date-format '%d/%m/%Y'"),
        ("empty.csv", &[], "empty.csv is empty"),
        ("header_only.csv", &[], "header_only.csv has a header but no data rows"),
        ("blank_customers.csv", &[], "all 2 rows were skipped (blank customer id: 2)"),
    ];
    for (file, extra, msg) in cases {
        let f = data(file);
        let mut args = vec!["rfm", f.to_str().unwrap(), "-o", o];
        args.extend_from_slice(extra);
        churn()
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::starts_with("churn: "))
            .stderr(predicate::str::contains(*msg));
        assert!(!out.exists(), "{file} left an output file");
    }
    // A failed run leaves an existing output untouched, and no temporary files.
    std::fs::write(&out, "previous").unwrap();
    churn().args(["rfm", data("bad_date.csv").to_str().unwrap(), "-o", o]).assert().code(1);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn skip_invalid_counts_rows() {
    churn()
        .args(["rfm", data("bad_date.csv").to_str().unwrap(), "--skip-invalid"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\nA,").and(predicate::str::contains("\nC,")))
        .stderr(predicate::str::contains("skipped 1 row (unparseable date: 1)"));
    churn()
        .args(["rfm", data("bad_amount.csv").to_str().unwrap(), "--skip-invalid"])
        .assert()
        .success()
        .stderr(predicate::str::contains("unparseable amount: 1"));
    churn()
        .args(["rfm", data("ambiguous_dates.csv").to_str().unwrap(), "--date-format", "%d/%m/%Y"])
        .assert()
        .success()
        .stdout(predicate::str::contains("A,2024-02-01"));
}

#[test]
fn usage_errors_exit_2() {
    churn().args(["rfm", "--as-of", "2024-13-01"]).assert().code(2);
    churn().args(["rfm", "--no-such-flag"]).assert().code(2);
    churn()
        .args(["rfm", "x.csv", "--amount", "a", "--quantity", "q", "--price", "p"])
        .assert()
        .code(2);
    churn()
        .args(["rfm", data("hand.csv").to_str().unwrap(), "--date-format", "%Y-%m"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no day of month"));
    churn()
        .args(["rfm", data("hand.csv").to_str().unwrap(), "-o", "out.xlsx"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--output-format"));
    churn()
        .args(["rfm", "/no/such/file.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/no/such/file.csv"));
}

#[test]
fn output_formats_read_back() {
    let dir = TempDir::new().unwrap();
    let hand = data("hand.csv");
    let h = hand.to_str().unwrap();
    let p = |name: &str| dir.path().join(name);
    for name in ["r.csv", "r.tsv", "r.json", "r.ndjson", "r.jsonl", "r.parquet"] {
        churn()
            .args(["rfm", h, "--as-of", "2024-03-31", "-o", p(name).to_str().unwrap()])
            .assert()
            .success()
            .stdout("");
    }
    assert_eq!(std::fs::read_to_string(p("r.csv")).unwrap(), hand_expected());
    assert_eq!(std::fs::read_to_string(p("r.tsv")).unwrap(), hand_expected().replace(',', "\t"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("r.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    assert_eq!(json[0]["customer_id"], "A");
    assert_eq!(json[0]["monetary"], 145.0);
    assert_eq!(json[0]["last_purchase"], "2024-02-10");
    assert_eq!(json[2]["segment"], "Potential Loyalist");
    let nd = std::fs::read_to_string(p("r.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(first, json[0]);
    assert_eq!(nd, std::fs::read_to_string(p("r.jsonl")).unwrap());

    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(p("r.parquet")).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 5);
    assert_eq!(df.column("frequency").unwrap().i32().unwrap().get(2), Some(3));
    assert_eq!(df.column("r_score").unwrap().i32().unwrap().get(1), Some(5));
    assert_eq!(df.column("monetary").unwrap().f64().unwrap().get(0), Some(145.0));
    assert_eq!(df.column("segment").unwrap().str().unwrap().get(0), Some("Loyal Customers"));
    assert_eq!(df.column("first_purchase").unwrap().dtype(), &DataType::Date);

    // --output-format overrides; stdout can carry JSON too.
    let j = stdout_of(&["rfm", h, "--as-of", "2024-03-31", "--output-format", "ndjson"]);
    assert_eq!(j, nd);
}

#[test]
fn output_is_deterministic_and_quiet_is_quiet() {
    let s = data("sample.csv");
    let a = churn().args(["rfm", s.to_str().unwrap()]).output().unwrap();
    let b = churn().args(["rfm", s.to_str().unwrap(), "--quiet"]).output().unwrap();
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert!(b.stderr.is_empty());
    assert!(a.stdout.len() > 100_000, "sample output should exceed a pipe buffer");
}

/// Parallel sums are taken in a fixed order, so model fits and scores are
/// byte-identical from run to run.
#[test]
fn models_are_deterministic() {
    let big = TempDir::new().unwrap();
    let path = big.path().join("x3.csv");
    // Three copies of the sample under different ids: more patterns, more parallel blocks.
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    let mut out = String::from("order_id,customer_id,order_date,amount\n");
    for k in 0..3 {
        for line in text.lines().skip(1) {
            out += &format!("{k}{line}\n").replacen(',', &format!(",{k}"), 1);
        }
    }
    std::fs::write(&path, out).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["fit", p, "--json", "-q", "--model", "auto"],
        vec!["fit", p, "--json", "-q", "--model", "gg"],
        vec!["score", p, "-q"],
        vec!["backtest", p, "--json", "-q", "--model", "auto"],
    ] {
        assert_eq!(stdout_of(&args), stdout_of(&args), "{args:?}");
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("churn"))
        .args(["rfm", data("sample.csv").to_str().unwrap(), "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
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

#[test]
fn inspect_profiles_the_input() {
    let v = json_of(&[
        "inspect",
        data("hand.csv").to_str().unwrap(),
        "--as-of",
        "2024-03-31",
        "--json",
    ]);
    assert_eq!(v["rows"], 12);
    assert_eq!(v["rows_after_as_of"], 1);
    assert_eq!(v["customers"], 5);
    // Purchases: A orders 1, 2; B 4; C 5, 6, 7; D 9 (a free order); E 10.
    assert_eq!(v["customers_with_purchase"], 5);
    assert_eq!(v["purchases"], 8);
    assert_eq!(v["returns"], 1);
    assert_eq!(v["zero_amount_rows"], 1);
    assert_eq!(v["skipped"]["blank customer id"], 1);
    assert_eq!(v["duplicate_rows"], 0);
    assert_eq!(v["first_date"], "2023-12-01");
    assert_eq!(v["last_date"], "2024-04-05");
    assert_eq!(v["amount_min"], -30.0);
    assert_eq!(v["amount_max"], 200.0);
    // Used amounts: 100 50 25 -30 10 200 200 200 0 40 -> median of 10 values = (40 + 50) / 2.
    assert_eq!(v["amount_median"], 45.0);

    let dir = TempDir::new().unwrap();
    let dup = dir.path().join("dup.csv");
    std::fs::write(
        &dup,
        "customer_id,date,amount\nA,2024-01-01,5\nA,2024-01-01,5\nA,2024-01-01,5\nB,2024-01-01,5\n",
    )
    .unwrap();
    let v: serde_json::Value = json_of(&["inspect", dup.to_str().unwrap(), "--json"]);
    assert_eq!(v["duplicate_rows"], 2);
    let human = stdout_of(&["inspect", data("hand.csv").to_str().unwrap()]);
    assert!(
        human.contains("exact duplicate rows") && human.contains("blank customer id"),
        "{human}"
    );
}

#[test]
fn help_has_examples_and_version_prints() {
    churn()
        .args(["rfm", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    churn()
        .args(["inspect", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    churn().arg("--version").assert().success().stdout(predicate::str::starts_with("churn "));
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
    let day = |s: &str| churn::dates::parse_ymd(s).unwrap();
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

const COHORT_HEADER: &str = "cohort,period,cohort_size,customers,retention,orders,revenue,partial";

/// testdata/cohorts.csv by hand, as of 2024-03-15 (March is cut: partial).
/// January cohort {a, b}: Jan a (orders 1, 2) and b (4): 3 orders, 35;
/// Feb b (order 5 and a return of 3): 1 order, 4; Mar a (order 3): 30.
/// February cohort {c}: Feb 8, Mar 9. d only returned (no cohort); e is after as-of.
#[test]
fn cohorts_monthly_classic_and_rolling_by_hand() {
    let f = data("cohorts.csv");
    let f = f.to_str().unwrap();
    churn()
        .args(["cohorts", f, "--as-of", "2024-03-15"])
        .assert()
        .success()
        .stdout(format!(
            "{COHORT_HEADER}\n\
             2024-01-01,0,2,2,1,3,35,false\n\
             2024-01-01,1,2,1,0.5,1,4,false\n\
             2024-01-01,2,2,1,0.5,1,30,true\n\
             2024-02-01,0,1,1,1,1,8,false\n\
             2024-02-01,1,1,1,1,1,9,true\n"
        ))
        .stderr(predicate::str::contains("ignored 1 row after the as-of date"));
    let rolling =
        rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--retention", "rolling"]));
    let retained: Vec<&str> = rolling.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(retained, ["2", "2", "1", "1", "1"]);
    // A complete month is not partial: as of 2024-03-31, e's purchase on 03-20 makes a March cohort.
    let complete = rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-31"]));
    assert!(complete.iter().all(|r| r[7] == "false"));
    assert_eq!(complete.last().unwrap()[..4], ["2024-03-01", "0", "1", "1"]);
    // Wide layouts.
    assert_eq!(
        stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--layout", "wide"]),
        "cohort,cohort_size,0,1,2\n2024-01-01,2,1,0.5,0.5\n2024-02-01,1,1,1,\n"
    );
    assert_eq!(
        stdout_of(&[
            "cohorts",
            f,
            "--as-of",
            "2024-03-15",
            "--layout",
            "wide",
            "--values",
            "revenue"
        ]),
        "cohort,cohort_size,0,1,2\n2024-01-01,2,35,4,30\n2024-02-01,1,8,9,\n"
    );
    // Dropping returns removes b's -3 from February's revenue.
    let dropped = rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--returns", "drop"]));
    assert_eq!(dropped[1][6], "7");
    // Quarters: everything is in the first quarter of 2024, which is cut by as-of.
    assert_eq!(
        stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--period", "quarter"]),
        format!("{COHORT_HEADER}\n2024-01-01,0,3,3,1,7,86,true\n")
    );
}

/// ISO weeks start on Monday: 2024-12-29 is a Sunday (week of 2024-12-23),
/// 2024-12-30 a Monday (week 1 of 2025), 2025-01-06 the next Monday.
#[test]
fn cohorts_iso_weeks_across_the_year_end() {
    let f = data("cohorts_weeks.csv");
    assert_eq!(
        stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "week", "--as-of", "2025-01-08"]),
        format!(
            "{COHORT_HEADER}\n\
             2024-12-23,0,1,1,1,1,10,false\n\
             2024-12-23,1,1,1,1,1,10,false\n\
             2024-12-23,2,1,0,0,0,0,true\n\
             2024-12-30,0,1,1,1,1,5,false\n\
             2024-12-30,1,1,1,1,1,5,true\n"
        )
    );
    let days = rows(&stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "day"]));
    assert_eq!(days[0][..4], ["2024-12-29", "0", "1", "1"]);
    // Cohorts 2024-12-29 (x) and 2024-12-31 (y), cells up to 2025-01-06.
    assert_eq!(days.len(), 9 + 7);
}

/// Quarter boundaries: 03-31 | 04-01 and 06-30 | 07-01; as of 2024-07-01
/// the third quarter has just begun (partial).
#[test]
fn cohorts_quarters_across_boundaries() {
    let f = data("cohorts_quarters.csv");
    assert_eq!(
        stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "quarter"]),
        format!(
            "{COHORT_HEADER}\n\
             2024-01-01,0,1,1,1,1,10,false\n\
             2024-01-01,1,1,1,1,1,5,false\n\
             2024-01-01,2,1,0,0,0,0,true\n\
             2024-04-01,0,1,1,1,1,7,false\n\
             2024-04-01,1,1,1,1,1,3,true\n"
        )
    );
}

#[test]
fn cohorts_single_customer_and_empty_inputs() {
    assert_eq!(
        stdout_of(&["cohorts", data("single_customer.csv").to_str().unwrap()]),
        format!(
            "{COHORT_HEADER}\n2024-01-01,0,1,1,1,1,5,false\n2024-01-01,1,1,0,0,0,0,false\n2024-01-01,2,1,1,1,1,5,true\n"
        )
    );
    churn()
        .args(["cohorts", data("cohorts.csv").to_str().unwrap(), "--as-of", "2020-01-01"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no transactions on or before the as-of date 2020-01-01"));
    churn()
        .args(["cohorts", data("only_returns.csv").to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no purchases"));
    churn()
        .args(["rfm", data("only_returns.csv").to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no customer has a purchase"));
}

fn svg_cells(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("<svg").unwrap();
    let end = text.rfind("</svg>").unwrap() + "</svg>".len();
    let doc = roxmltree::Document::parse(&text[start..end]).expect("valid SVG XML");
    doc.descendants().filter(|n| n.attribute("class") == Some("cell")).count()
}

#[test]
fn cohort_chart_has_one_cell_per_matrix_entry() {
    let dir = TempDir::new().unwrap();
    let svg = dir.path().join("c.svg");
    let html = dir.path().join("c.html");
    let sample = data("sample.csv");
    let long = stdout_of(&["cohorts", sample.to_str().unwrap(), "--chart", svg.to_str().unwrap()]);
    assert_eq!(svg_cells(&svg), rows(&long).len());
    stdout_of(&[
        "cohorts",
        sample.to_str().unwrap(),
        "--chart",
        html.to_str().unwrap(),
        "-o",
        dir.path().join("c.csv").to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&html).unwrap().starts_with("<!DOCTYPE html>"));
    assert_eq!(svg_cells(&html), rows(&long).len());

    // 36 monthly cohorts: one new customer a month, each buying every month.
    let input = dir.path().join("36.csv");
    let mut text = String::from("customer_id,date,amount\n");
    for c in 0..36 {
        for m in c..36 {
            text += &format!("c{c},{}-{:02}-15,1\n", 2021 + m / 12, 1 + m % 12);
        }
    }
    std::fs::write(&input, text).unwrap();
    let svg36 = dir.path().join("36.svg");
    let out =
        rows(&stdout_of(&["cohorts", input.to_str().unwrap(), "--chart", svg36.to_str().unwrap()]));
    assert_eq!(out.len(), 36 * 37 / 2);
    assert!(out.iter().all(|r| r[4] == "1"));
    assert_eq!(svg_cells(&svg36), 666);
    churn()
        .args(["cohorts", sample.to_str().unwrap(), "--chart", "c.gif"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".svg, .png or .html"));

    // PNG: twice the SVG's size; a coloured cell at every matrix entry of the
    // 36-cohort triangle and white paper beyond it (cells are 46x22 at
    // (150, 78) + (k * 46, cohort * 22) in SVG units).
    let png = dir.path().join("36.png");
    stdout_of(&["cohorts", input.to_str().unwrap(), "--chart", png.to_str().unwrap()]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let svg_text = std::fs::read_to_string(&svg36).unwrap();
    let doc = roxmltree::Document::parse(&svg_text).unwrap();
    let width: u32 = doc.root_element().attribute("width").unwrap().parse().unwrap();
    assert_eq!(info.width, width * 2);
    let channels = info.line_size / info.width as usize;
    let pixel = |x: usize, y: usize| {
        let i = (y * 2) * info.line_size + (x * 2) * channels;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    for cohort in 0..36 {
        for k in 0..36 {
            let p = pixel(150 + k * 46 + 4, 78 + cohort * 22 + 4);
            if k < 36 - cohort {
                assert_eq!(p, (8, 48, 107), "cell ({cohort}, {k}) is 100%: the darkest blue");
            } else {
                assert_eq!(p, (255, 255, 255), "no cell at ({cohort}, {k})");
            }
        }
    }
}

/// Parameters fitted by Python's lifetimes 0.11.3 (BetaGeoFitter,
/// ParetoNBDFitter, GammaGammaFitter, penalizer 0, tolerances 1e-9, 1e-11
/// and 1e-7) on its own summary of testdata/sample.csv:
/// summary_data_from_transaction_data(observation_period_end=2024-06-29,
/// freq='D') of the rows with a customer id and an amount ≥ 0, in weeks. An
/// independent implementation from the transactions on.
#[test]
fn fit_agrees_with_lifetimes_on_the_sample() {
    let s = data("sample.csv");
    let s = s.to_str().unwrap();
    let fit = |model: &str| json_of(&["fit", s, "--json", "-q", "--model", model]);
    let v = fit("bgnbd");
    assert_eq!(v["model"], "bgnbd");
    assert_eq!(v["unit"], "week");
    assert_eq!(v["as_of"], "2024-06-29");
    assert_eq!(v["customers"], 2012);
    assert_eq!(v["converged"], true);
    for key in ["std_errors", "log_likelihood", "aic", "bic"] {
        assert!(!v[key].is_null(), "{key}");
    }
    let bgnbd = [
        ("r", 0.23939343115798015),
        ("alpha", 4.1933819350307635),
        ("a", 0.7353851253582256),
        ("b", 2.086382572141997),
    ];
    assert_params(&v, &bgnbd, 1e-5);
    let ll = v["log_likelihood"].as_f64().unwrap();
    assert!((v["aic"].as_f64().unwrap() - (8.0 - 2.0 * ll)).abs() < 1e-9);
    assert!((v["bic"].as_f64().unwrap() - (4.0 * 2012f64.ln() - 2.0 * ll)).abs() < 1e-9);
    let gg = [("p", 5.511042057163817), ("q", 3.9350423907767857), ("gamma", 18.71012918256576)];
    assert_params(&fit("gg"), &gg, 1e-5);
    let pareto = [
        ("r", 0.5219319852062045),
        ("alpha", 10.401179240231174),
        ("s", 0.689362385862966),
        ("beta", 18.613201756168767),
    ];
    assert_params(&fit("pnbd"), &pareto, 1e-4);
    // The sample was simulated from BG/NBD, and BIC picks it.
    let auto = stdout_of(&["fit", s, "--model", "auto", "-q"]);
    assert!(
        auto.contains("MBG/NBD") && auto.contains("Pareto/NBD") && auto.contains("BIC"),
        "{auto}"
    );
    assert!(auto.contains("model: BG/NBD"), "{auto}");
}

#[test]
fn score_lists_customers_by_value_at_risk() {
    let dir = TempDir::new().unwrap();
    let s = data("sample.csv");
    let s = s.to_str().unwrap();
    let out = stdout_of(&["score", s, "-q"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "customer_id,frequency,recency,T,monetary_avg,p_alive,churn_risk,expected_purchases,p_no_purchase,expected_spend,clv,value_at_risk,risk_band,segment"
    );
    let r = rows(&out);
    assert_eq!(r.len(), 2012);
    let num = |row: &Vec<String>, i: usize| row[i].parse::<f64>().unwrap();
    for w in r.windows(2) {
        assert!(num(&w[0], 11) >= num(&w[1], 11), "sorted by value_at_risk");
    }
    for row in &r {
        let (alive, risk) = (num(row, 5), num(row, 6));
        assert!((alive + risk - 1.0).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&num(row, 8)));
        // value_at_risk = churn_risk x clv_if_alive, and clv = p_alive x clv_if_alive.
        if alive > 1e-6 {
            let clv_if_alive = num(row, 10) / alive;
            assert!((num(row, 11) - risk * clv_if_alive).abs() <= 1e-9 * clv_if_alive.max(1.0));
        }
        let band = if risk >= 0.7 {
            "high"
        } else if risk >= 0.4 {
            "medium"
        } else {
            "low"
        };
        assert_eq!(row[12], band);
        // BG/NBD: no repeat purchase means alive for sure.
        if row[1] == "0" {
            assert_eq!(num(row, 5), 1.0);
        }
    }
    // The segment is the RFM segment.
    let rfm: std::collections::HashMap<String, String> = rows(&stdout_of(&["rfm", s, "-q"]))
        .into_iter()
        .map(|x| (x[0].clone(), x[10].clone()))
        .collect();
    assert!(r.iter().all(|row| rfm[&row[0]] == row[13]));

    // Filters, sort keys and a saved model give consistent answers.
    let top = rows(&stdout_of(&["score", s, "-q", "--top", "10", "--min-risk", "0.6"]));
    assert_eq!(top.len(), 10);
    assert!(top.iter().all(|row| num(row, 6) >= 0.6));
    let by_risk = rows(&stdout_of(&["score", s, "-q", "--sort", "churn-risk", "--top", "50"]));
    assert!(by_risk.windows(2).all(|w| num(&w[0], 6) >= num(&w[1], 6)));
    // The column's own spelling, as in --help's example, sorts the same.
    let underscored = stdout_of(&["score", s, "-q", "--sort", "churn_risk", "--top", "50"]);
    assert_eq!(rows(&underscored), by_risk);
    let m1 = dir.path().join("bgnbd.json");
    let m2 = dir.path().join("gg.json");
    stdout_of(&["fit", s, "-q", "--save", m1.to_str().unwrap()]);
    stdout_of(&["fit", s, "-q", "--model", "gg", "--save", m2.to_str().unwrap()]);
    let saved = stdout_of(&[
        "score",
        s,
        "-q",
        "--model-file",
        m1.to_str().unwrap(),
        "--model-file",
        m2.to_str().unwrap(),
    ]);
    assert_eq!(rows(&saved).len(), 2012);
    assert_eq!(rows(&saved)[0][0], r[0][0]);
    churn()
        .args(["score", s, "--horizon", "90x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("90d"));
}

/// Backtest on data simulated from BG/NBD with known parameters (CDNOW
/// estimates, weeks): the model must beat the RFM baseline on AUC and
/// predict the holdout's total purchases within 5%.
#[test]
fn backtest_on_simulated_data_beats_the_rfm_baseline() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};
    let (r, alpha, a, b) = (0.243, 4.414, 0.793, 2.426);
    let mut rng = StdRng::seed_from_u64(2024);
    let lambda = Gamma::new(r, 1.0 / alpha).unwrap();
    let drop = Beta::new(a, b).unwrap();
    let start = churn::dates::parse_ymd("2023-01-01").unwrap();
    let horizon_weeks = 78.0;
    let mut text = String::from("customer_id,date,amount\n");
    for c in 0..30_000 {
        let (l, p): (f64, f64) = (lambda.sample(&mut rng), drop.sample(&mut rng));
        let mut t: f64 = rng.gen_range(0.0..52.0);
        let gap = Exp::new(l.max(1e-9)).unwrap();
        let mut first = true;
        loop {
            let day = start + (t * 7.0) as i32;
            text += &format!("c{c},{},{}\n", churn::dates::Day(day), 10 + c % 50);
            if !first && rng.gen_bool(p) {
                break;
            }
            first = false;
            t += gap.sample(&mut rng);
            if t >= horizon_weeks {
                break;
            }
        }
    }
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sim.csv");
    std::fs::write(&path, text).unwrap();
    let as_of = churn::dates::Day(start + (horizon_weeks * 7.0) as i32 - 1).to_string();
    let out = stdout_of(&[
        "backtest",
        path.to_str().unwrap(),
        "--holdout",
        "13w",
        "--as-of",
        &as_of,
        "--json",
        "-q",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let model = &v["models"]["BG/NBD"];
    let baseline = &v["models"]["RFM baseline"];
    let (predicted, actual) =
        (model["predicted_total"].as_f64().unwrap(), model["actual_total"].as_f64().unwrap());
    assert!((predicted - actual).abs() < 0.05 * actual, "predicted {predicted}, actual {actual}");
    assert!(model["auc"].as_f64().unwrap() > baseline["auc"].as_f64().unwrap(), "{out}");
    assert!(model["brier"].as_f64().unwrap() < baseline["brier"].as_f64().unwrap());
    assert_eq!(model["calibration"].as_array().unwrap().len(), 10);
    assert_eq!(v["holdout_days"], 91);

    // The chart: cumulative purchases (BG/NBD, actual) and calibration (BG/NBD, baseline).
    let svg = dir.path().join("bt.svg");
    stdout_of(&[
        "backtest",
        path.to_str().unwrap(),
        "--holdout",
        "13w",
        "--as-of",
        &as_of,
        "-q",
        "--chart",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("valid SVG");
    let series = doc.descendants().filter(|n| n.attribute("class") == Some("series")).count();
    assert_eq!(series, 4);
    assert!(text.contains(">actual<"));
}

mod no_panics {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z0-9 ]{0,6}",
            "-?[0-9]{1,5}(\\.[0-9]{1,3})?",
            "20[0-9]{2}-[01][0-9]-[0-3][0-9]( [0-2][0-9]:[0-5][0-9])?",
            "[0-3]?[0-9]/[01]?[0-9]/20[0-9]{2}",
            "\"[a-z,\n\"]{0,5}\"",
            any::<String>().prop_map(|s| s.chars().take(6).collect()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Whatever the bytes, churn exits 0, or 1 with a one-line `churn:` message; never a panic.
        #[test]
        fn any_input_gives_a_clean_exit(
            header in prop_oneof![Just("customer_id,date,amount".to_string()), Just("id,when,total,order_id".to_string()), "[a-z,]{0,20}"],
            rows in prop::collection::vec(prop::collection::vec(field(), 0..5), 0..20),
            command in prop_oneof![Just("rfm"), Just("cohorts"), Just("inspect"), Just("score")],
        ) {
            let mut text = header.clone();
            text.push('\n');
            for r in &rows {
                text += &r.join(",");
                text.push('\n');
            }
            let out = churn().args([command, "-", "--skip-invalid"]).write_stdin(text.clone()).output().unwrap();
            let code = out.status.code();
            prop_assert!(code == Some(0) || code == Some(1), "exit {:?} on {:?}: {}", code, text, String::from_utf8_lossy(&out.stderr));
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{}", stderr);
            if code == Some(1) {
                prop_assert!(stderr.lines().last().unwrap_or("").starts_with("churn: "), "{}", stderr);
            }
        }
    }
}

/// The sample's rows as (customer, day, cents, order id), blank customers skipped.
fn sample_rows() -> Vec<(String, i32, i64, String)> {
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    rows(&text)
        .into_iter()
        .filter(|r| !r[1].trim().is_empty())
        .map(|r| {
            let day = churn::dates::parse_ymd(&r[2][..10]).unwrap();
            let cents = (r[3].parse::<f64>().unwrap() * 100.0).round() as i64;
            (r[1].clone(), day, cents, r[0].clone())
        })
        .collect()
}

/// Period figures computed directly from the rows, for the period (start, end].
struct Naive {
    customers: u64,
    active: u64,
    new: u64,
    purchases: u64,
    revenue_cents: i64,
    repeat_rate: f64,
}

fn naive_period(tx: &[(String, i32, i64, String)], start: i32, end: i32) -> Naive {
    use std::collections::{HashMap, HashSet};
    let mut first: HashMap<&str, i32> = HashMap::new();
    let mut orders: HashMap<&str, HashSet<&str>> = HashMap::new();
    let (mut active, mut period_orders) = (HashSet::new(), HashSet::new());
    let mut revenue_cents = 0;
    for (c, d, cents, o) in tx.iter().filter(|r| r.1 <= end) {
        if *d > start {
            revenue_cents += cents;
        }
        if *cents > 0 {
            let f = first.entry(c).or_insert(*d);
            *f = (*f).min(*d);
            orders.entry(c).or_default().insert(o);
            if *d > start {
                active.insert(c.as_str());
                period_orders.insert(o.as_str());
            }
        }
    }
    Naive {
        customers: first.len() as u64,
        active: active.len() as u64,
        new: active.iter().filter(|c| first[*c] > start).count() as u64,
        purchases: period_orders.len() as u64,
        revenue_cents,
        repeat_rate: orders.values().filter(|o| o.len() >= 2).count() as f64 / first.len() as f64,
    }
}

/// customer id -> segment, from `churn rfm --as-of`.
fn segments_at(as_of: &str) -> std::collections::HashMap<String, String> {
    let out = stdout_of(&["rfm", data("sample.csv").to_str().unwrap(), "--as-of", as_of, "-q"]);
    rows(&out).into_iter().map(|r| (r[0].clone(), r[10].clone())).collect()
}

/// customer id -> (churn_risk, value_at_risk), from `churn score --as-of`.
fn risks_at(as_of: &str) -> Vec<(String, f64, f64)> {
    let out = stdout_of(&["score", data("sample.csv").to_str().unwrap(), "--as-of", as_of, "-q"]);
    rows(&out)
        .into_iter()
        .map(|r| (r[0].clone(), r[6].parse().unwrap(), r[11].parse().unwrap()))
        .collect()
}

#[test]
fn report_headline_figures_match_an_independent_computation() {
    use churn::dates::{parse_ymd, Day};
    use std::collections::{HashMap, HashSet};
    let tx = sample_rows();
    let churned = ["At Risk", "Can't Lose Them", "Lost"];
    // Weekly and monthly periods, at dates when new customers still arrive.
    for (period, ends) in [
        ("week", ["2023-11-30", "2023-11-23", "2023-11-16"]),
        ("month", ["2023-12-31", "2023-11-30", "2023-10-31"]),
    ] {
        let report = json_of(&[
            "report",
            data("sample.csv").to_str().unwrap(),
            "--as-of",
            ends[0],
            "--period",
            period,
            "--json",
            "-q",
        ]);
        let trend = report["trend"].as_array().unwrap();
        assert_eq!(trend.len(), 12);
        let segs: Vec<_> = ends.iter().map(|e| segments_at(e)).collect();
        let risks: Vec<_> = ends.iter().map(|e| risks_at(e)).collect();
        for k in 0..2 {
            let fig = &trend[trend.len() - 1 - k];
            let (start, end) = (parse_ymd(ends[k + 1]).unwrap(), parse_ymd(ends[k]).unwrap());
            assert_eq!(fig["end"], ends[k]);
            assert_eq!(fig["start"], Day(start + 1).to_string());
            let n = naive_period(&tx, start, end);
            let int = |key: &str| fig[key].as_u64().unwrap();
            assert_eq!(int("customers"), n.customers, "{period} {k}");
            assert_eq!(int("active_customers"), n.active, "{period} {k}");
            assert_eq!(int("new_customers"), n.new, "{period} {k}");
            assert_eq!(int("returning_customers"), n.active - n.new);
            assert_eq!(int("purchases"), n.purchases);
            assert!(n.new > 0 && n.active > n.new, "the fixture should have both kinds");
            let revenue = fig["revenue"].as_f64().unwrap();
            assert!((revenue * 100.0 - n.revenue_cents as f64).abs() < 1e-6, "{revenue}");
            assert!((fig["repeat_purchase_rate"].as_f64().unwrap() - n.repeat_rate).abs() < 1e-12);
            // RFM: loyal customers and moves into the churned segments.
            let loyal =
                segs[k].values().filter(|s| *s == "Champions" || *s == "Loyal Customers").count()
                    as u64;
            assert_eq!(int("loyal_customers"), loyal);
            let moved = segs[k]
                .iter()
                .filter(|(c, s)| {
                    churned.contains(&s.as_str())
                        && segs[k + 1].get(*c).is_some_and(|b| !churned.contains(&b.as_str()))
                })
                .count() as u64;
            assert_eq!(int("churned_by_rfm"), moved, "{period} {k}");
            // The model: high risk, value at risk, newly high risk.
            let high: HashSet<&str> =
                risks[k].iter().filter(|r| r.1 >= 0.7).map(|r| r.0.as_str()).collect();
            let high_before: HashSet<&str> =
                risks[k + 1].iter().filter(|r| r.1 >= 0.7).map(|r| r.0.as_str()).collect();
            let known_before: HashSet<&str> = risks[k + 1].iter().map(|r| r.0.as_str()).collect();
            assert_eq!(int("high_risk_customers"), high.len() as u64);
            let became =
                high.iter().filter(|c| known_before.contains(*c) && !high_before.contains(*c));
            assert_eq!(int("churned_by_model"), became.count() as u64, "{period} {k}");
            let var: f64 = risks[k].iter().map(|r| r.2).sum();
            let got = fig["value_at_risk"].as_f64().unwrap();
            assert!((got - var).abs() < 1e-9 * var, "{got} vs {var}");
        }
        // Headline = the last two trend entries.
        let h = &report["headline"].as_array().unwrap()[0];
        assert_eq!(h["key"], "active_customers");
        assert_eq!(
            h["value"].as_f64().unwrap() as u64,
            trend[11]["active_customers"].as_u64().unwrap()
        );
        assert_eq!(
            h["previous"].as_f64().unwrap() as u64,
            trend[10]["active_customers"].as_u64().unwrap()
        );
        // Segments now and before, and the migration between them.
        let count =
            |m: &HashMap<String, String>, s: &str| m.values().filter(|v| *v == s).count() as u64;
        for s in report["segments"].as_array().unwrap() {
            let name = s["segment"].as_str().unwrap();
            assert_eq!(s["customers"].as_u64().unwrap(), count(&segs[0], name), "{name}");
            assert_eq!(s["previous"].as_u64().unwrap(), count(&segs[1], name), "{name}");
        }
        let mut moves: HashMap<(String, String), u64> = HashMap::new();
        for (c, s) in &segs[0] {
            let from = segs[1].get(c).cloned().unwrap_or_else(|| "New".into());
            *moves.entry((from, s.clone())).or_default() += 1;
        }
        let got: HashMap<(String, String), u64> = report["migration"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let s = |k: &str| m[k].as_str().unwrap().to_string();
                ((s("from"), s("to")), m["customers"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(got, moves);
        // The top of the list is the top of `churn score`.
        let top: Vec<&str> = report["top_at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customer_id"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = risks[0].iter().take(25).map(|r| r.0.as_str()).collect();
        assert_eq!(top, want);
    }
}

#[test]
fn report_html_is_self_contained_well_formed_and_deterministic() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let mut bytes = Vec::new();
    for name in ["a.html", "b.html"] {
        let out = dir.path().join(name);
        churn()
            .args(["report", sample.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .assert()
            .success()
            .stdout("")
            .stderr(predicate::str::contains("report written to"));
        bytes.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(bytes[0], bytes[1], "two runs differ");
    let html = String::from_utf8(bytes.remove(0)).unwrap();
    // Nothing to fetch: no scripts, links, images or imports; the only URL is the SVG namespace.
    for banned in ["<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href="] {
        assert!(!html.contains(banned), "the report contains {banned}");
    }
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
    // Well-formed (every element closed and nested), with the expected parts.
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .unwrap();
    let count = |tag: &str| doc.descendants().filter(|n| n.has_tag_name(tag)).count();
    assert_eq!(count("svg"), 5, "four trend charts and the heatmap");
    assert_eq!(count("h2"), 7);
    assert!(doc.descendants().any(|n| n.attribute("id") == Some("value_at_risk")));
    let top = doc.descendants().find(|n| n.attribute("class") == Some("top")).unwrap();
    assert_eq!(top.children().filter(|n| n.has_tag_name("tr")).count(), 26);
    assert_eq!(
        doc.descendants().filter(|n| n.attribute("class") == Some("point")).count(),
        12 * 5,
        "a point per period: active, loyal, new, returning, value at risk"
    );
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("@media print"));
}

#[test]
fn report_markdown_renders_and_json_is_the_same_report() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let sample = data("sample.csv");
    let md = stdout_of(&["report", sample.to_str().unwrap(), "-q", "--top", "5"]);
    assert!(md.starts_with("# Churn report: week ending 2024-06-29\n"));
    let (mut tables, mut rows_in_table, mut heads) = (Vec::new(), 0, 0);
    for e in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        match e {
            Event::Start(Tag::Table(_)) => rows_in_table = 0,
            Event::End(TagEnd::TableRow) => rows_in_table += 1,
            Event::End(TagEnd::Table) => tables.push(rows_in_table),
            Event::Start(Tag::Heading { .. }) => heads += 1,
            _ => {}
        }
    }
    // Headline (11 figures), trend (12 weeks), top 5, segments (11), moves, cohorts (12).
    assert_eq!(tables.len(), 6, "{tables:?}");
    assert_eq!((tables[0], tables[1], tables[2], tables[3], tables[5]), (11, 12, 5, 11, 12));
    assert_eq!(heads, 8);
    let json = json_of(&["report", sample.to_str().unwrap(), "-q", "--top", "5", "--json"]);
    let active = json["trend"][11]["active_customers"].as_u64().unwrap();
    assert!(md.contains(&format!("| Active customers | {active} |")), "{md}");
    assert_eq!(json["as_of"], "2024-06-29");
    assert_eq!(json["top_at_risk"].as_array().unwrap().len(), 5);
}

#[test]
fn report_fails_loudly_on_a_small_or_empty_export_and_keeps_the_old_file() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let out = dir.path().join("report.html");
    churn()
        .args([
            "report",
            sample.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--min-rows",
            "6000",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("only 5,000 rows read, fewer than --min-rows 6,000"))
        .stderr(predicate::str::contains("was not written"));
    assert!(!out.exists());
    std::fs::write(&out, "last week's report").unwrap();
    churn()
        .args(["report", sample.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--as-of", "2024-08-31", "--fail-on-empty"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no transactions in the week 2024-08-25 to 2024-08-31"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "last week's report");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    // Without --fail-on-empty the report is written, with a warning.
    churn()
        .args(["report", sample.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--as-of", "2024-08-31"])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: no transactions in the week"));
    churn()
        .args(["report", sample.to_str().unwrap(), "-o", "report.pdf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use .html, .md, .json or --format"));
    churn().args(["report", sample.to_str().unwrap(), "--periods", "2"]).assert().code(2);
}

#[test]
fn config_file_maps_columns_and_sets_report_defaults() {
    let dir = TempDir::new().unwrap();
    // An export with unusual column names, which detection cannot map.
    let sample = std::fs::read_to_string(data("sample.csv")).unwrap();
    let export =
        sample.replacen("order_id,customer_id,order_date,amount", "ref,client,booked,gross", 1);
    std::fs::write(dir.path().join("export.csv"), export).unwrap();
    churn()
        .current_dir(dir.path())
        .args(["rfm", "export.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("pass --date COLUMN"));
    std::fs::write(
        dir.path().join("churn.toml"),
        "[input]\ncustomer = \"client\"\ndate = \"booked\"\namount = \"gross\"\norder = \"ref\"\n\n[report]\noutput = \"weekly.md\"\ntop = 3\nperiod = \"month\"\n",
    )
    .unwrap();
    // ./churn.toml is found; rfm then matches the original export.
    let rfm = churn().current_dir(dir.path()).args(["rfm", "export.csv"]).output().unwrap();
    assert!(rfm.status.success());
    assert!(String::from_utf8_lossy(&rfm.stderr).contains("settings from churn.toml"));
    let original = stdout_of(&["rfm", data("sample.csv").to_str().unwrap(), "-q"]);
    assert_eq!(String::from_utf8(rfm.stdout).unwrap(), original);
    // The report goes where the config says, with its defaults; flags win.
    churn()
        .current_dir(dir.path())
        .args(["report", "export.csv", "-q"])
        .assert()
        .success()
        .stdout("");
    let md = std::fs::read_to_string(dir.path().join("weekly.md")).unwrap();
    assert!(md.starts_with("# Churn report: month ending 2024-06-29"), "{md}");
    assert!(md.contains("## Top 3 customers by value at risk"));
    let json = churn()
        .current_dir(dir.path())
        .args(["report", "export.csv", "-q", "--json", "-o", "-", "--period", "week"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["period"], "week");
    assert_eq!(v["top_at_risk"].as_array().unwrap().len(), 3);
    // --config elsewhere; a misspelt key is a usage error naming file and line.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[input]\ncustomer = \"client\"\ncustmer = \"x\"\n").unwrap();
    churn()
        .args(["rfm", "--config", bad.to_str().unwrap(), data("sample.csv").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml: line 3: unknown field `custmer`"));
    churn()
        .args(["rfm", "--config", "/nonexistent/churn.toml", data("sample.csv").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read config file /nonexistent/churn.toml"));
}

#[test]
fn report_without_a_model_still_reports_the_rest() {
    // Five customers are too few for the models: the report says so and keeps
    // the figures that need no model.
    let out =
        churn().args(["report", data("hand.csv").to_str().unwrap(), "--json"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: the report has no risk figures"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["model"].is_null());
    assert!(v["model_error"]
        .as_str()
        .unwrap()
        .contains("only 5 customers with purchases: too few to fit a purchase model"));
    assert_eq!(v["top_at_risk"].as_array().unwrap().len(), 0);
    let now = &v["trend"].as_array().unwrap().last().unwrap().clone();
    assert!(now["value_at_risk"].is_null());
    // As of 2024-04-05 the week is 03-30..04-05: B made its only purchase on
    // 03-31, and D bought on 04-05 after a free order (amount 0, a purchase)
    // on 01-31, so D returns rather than being new.
    assert_eq!(now["active_customers"], 2);
    assert_eq!(now["new_customers"], 1);
    assert_eq!(now["returning_customers"], 1);
    assert_eq!(now["revenue"], 1009.0);
    let md = stdout_of(&["report", data("hand.csv").to_str().unwrap(), "-q"]);
    assert!(
        md.contains("## Customers by value at risk\n\nNot available: only 5 customers"),
        "{md}"
    );
}

#[test]
fn parquet_read_in_many_pieces_agrees_and_numbers_rows_from_the_file() {
    use polars::prelude::*;
    let dir = TempDir::new().unwrap();
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    let recs = rows(&text);
    // Amounts as text, so that one can be made bad; 500-row row groups.
    let write = |path: &Path, bad_row: Option<usize>| {
        let col = |k: usize| -> Vec<String> { recs.iter().map(|r| r[k].clone()).collect() };
        let mut amount = col(3);
        if let Some(i) = bad_row {
            amount[i] = "12,5O".into();
        }
        let mut df = DataFrame::new(
            recs.len(),
            vec![
                Series::new("order_id".into(), col(0)).into(),
                Series::new("customer_id".into(), col(1)).into(),
                Series::new("order_date".into(), col(2)).into(),
                Series::new("amount".into(), amount).into(),
            ],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(path).unwrap())
            .with_row_group_size(Some(500))
            .finish(&mut df)
            .unwrap();
    };
    let good = dir.path().join("sample.parquet");
    write(&good, None);
    let csv = stdout_of(&["score", data("sample.csv").to_str().unwrap(), "-q"]);
    for pieces in ["700", "1"] {
        let out = churn()
            .env("CHURN_PARQUET_PIECE_ROWS", pieces)
            .args(["score", good.to_str().unwrap(), "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), csv, "pieces of {pieces} rows");
    }
    // A bad value in a later piece is reported with its row in the file.
    let bad = dir.path().join("bad.parquet");
    write(&bad, Some(3210));
    churn()
        .env("CHURN_PARQUET_PIECE_ROWS", "700")
        .args(["rfm", bad.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("row 3211"))
        .stderr(predicate::str::contains("12,5O"));
}

// ---------------------------------------------------------------------------
// Hostile and broken input (testdata/bad/): each case exits 1 with a message
// naming the file and, where the problem is in a value, its line (or Parquet
// row) and column, and writes no output file.

fn bad(name: &str) -> PathBuf {
    data("bad").join(name)
}

/// Runs `churn rfm FILE -o out.csv [extra]` and checks exit 1, the message
/// fragments, and that no output (nor a temporary file) appeared.
fn assert_rejected(file: &str, extra: &[&str], fragments: &[&str]) {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out.csv");
    // Run beside the file, so that messages name it as given.
    let mut args = vec!["rfm", file, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let assert = churn().current_dir(data("bad")).args(&args).assert().code(1).stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.starts_with("churn: "), "{file}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{file}: one line expected: {stderr}");
    for fragment in fragments {
        assert!(stderr.contains(fragment), "{file}: {fragment:?} not in {stderr:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{file} left a file");
}

macro_rules! rejected {
    ($($test:ident: $file:literal $(, [$($extra:literal),*])? => [$($fragment:expr),+ $(,)?];)+) => {
        $(
            #[test]
            fn $test() {
                assert_rejected($file, &[$($($extra),*)?], &[$($fragment),+]);
            }
        )+
    };
}

rejected! {
    bad_empty_file: "empty.csv" => ["empty.csv is empty: expected a header row and transactions"];
    bad_header_only: "header_only.csv" => ["header_only.csv has a header but no data rows"];
    bad_no_header: "no_header.csv" => [
        "line 1 of no_header.csv looks like data, not a header (it holds '2024-01-05')",
        "churn needs a header row naming the columns",
    ];
    bad_wrong_delimiter: "wrong_delimiter.csv" => [
        "wrong_delimiter.csv has a single column 'customer_id;date;amount'",
        "pass --delimiter ';'",
    ];
    bad_too_few_fields: "too_few_fields.csv" => [
        "too_few_fields.csv line 4 has 2 fields where the header has 3",
        "check the delimiter (--delimiter) and quoting",
    ];
    bad_too_many_fields: "too_many_fields.csv" => [
        "too_many_fields.csv line 4 has 4 fields where the header has 3",
    ];
    bad_value_after_a_quoted_newline_has_its_physical_line: "quoted_newlines_bad.csv" => [
        "quoted_newlines_bad.csv line 4, column 'amount': 'oops' is not a plain decimal number",
    ];
    bad_invalid_utf8_customer: "invalid_utf8.csv" => [
        "invalid_utf8.csv line 3, column 'customer_id': 'C\u{fffd}\u{fffd}2' is not valid UTF-8 (byte 0xFF at position 2)",
        "iconv",
    ];
    bad_invalid_utf8_date: "invalid_utf8_date.csv" => [
        "invalid_utf8_date.csv line 3, column 'date': '2024-01-0\u{fffd}6' is not a date",
    ];
    bad_utf16_little_endian: "utf16le.csv" => [
        "utf16le.csv is UTF-16 text; churn reads UTF-8",
        "iconv -f UTF-16 -t UTF-8",
    ];
    bad_utf16_big_endian: "utf16be.csv" => ["utf16be.csv is UTF-16 text"];
    bad_nul_byte: "nul_bytes.csv" => [
        "nul_bytes.csv line 3, column 'customer_id': 'C2\\0' contains a NUL byte",
    ];
    bad_truncated_gzip: "truncated.csv.gz" => [
        "reading truncated.csv.gz: it is not a complete gzip file (check it with `gzip -t`",
    ];
    bad_corrupt_parquet: "corrupt.parquet" => [
        "corrupt.parquet is not a readable Parquet file (truncated, corrupt, or not Parquet)",
    ];
    bad_truncated_parquet: "truncated.parquet" => ["truncated.parquet is not a readable Parquet file"];
    bad_parquet_date_of_floats: "wrong_date_type.parquet" => [
        "column 'date' of wrong_date_type.parquet has type f64, which is not a date; pass --date",
    ];
    bad_parquet_amount_of_booleans: "wrong_amount_type.parquet" => [
        "column 'amount' of wrong_amount_type.parquet has type bool, which is not a number",
    ];
    bad_parquet_decimal_amount: "decimal_amount.parquet" => [
        "column 'amount' of decimal_amount.parquet is DECIMAL(12, 2), which churn does not read from Parquet; cast it to DOUBLE",
    ];
    bad_parquet_nan_amount: "nan_amount.parquet" => [
        "nan_amount.parquet row 2, column 'amount': 'NaN' is not a plain decimal number",
    ];
    bad_parquet_placeholder_date: "year_9999.parquet" => [
        "year_9999.parquet row 2, column 'date': '9999-12-31' is outside the dates churn accepts",
    ];
    bad_thousands_separator: "thousands_amount.csv" => [
        "thousands_amount.csv line 3, column 'amount': '1,234.50' is not a plain decimal number",
        "no currency symbols or thousands separators",
    ];
    bad_currency_symbol: "dollar_amount.csv" => [
        "dollar_amount.csv line 3, column 'amount': '$12' is not a plain decimal number",
    ];
    bad_nan_amount: "nan_amount.csv" => ["nan_amount.csv line 3, column 'amount': 'NaN' is not"];
    bad_infinite_amount: "inf_amount.csv" => ["inf_amount.csv line 3, column 'amount': 'inf' is not"];
    bad_overflowing_amount: "huge_amount.csv" => [
        "huge_amount.csv line 3, column 'amount': '1e400' is not a plain decimal number",
    ];
    bad_february_30: "feb30.csv" => [
        "feb30.csv line 3, column 'date': '2024-02-30' is not a date in the ISO 8601",
        "--date-format",
    ];
    bad_year_zero: "year_zero.csv" => [
        "year_zero.csv line 3, column 'date': '0000-01-01' is outside the dates churn accepts (1900-01-01 to 2100-12-31)",
        "--skip-invalid",
    ];
    bad_year_9999: "year_9999.csv" => [
        "year_9999.csv line 3, column 'date': '9999-12-31' is outside the dates churn accepts",
    ];
    bad_mixed_date_layouts: "mixed_dates.csv" => [
        "mixed_dates.csv line 4, column 'date': '07/02/2024' looks like a DD/MM/YYYY or MM/DD/YYYY date, but the column's dates are ISO 8601",
        "the column mixes date layouts",
    ];
    bad_as_of_before_the_first_transaction: "feb30.csv", ["--as-of", "2000-01-01", "--skip-invalid"] => [
        "no transactions on or before the as-of date 2000-01-01",
    ];
}

#[test]
fn placeholder_dates_are_skipped_and_counted_with_skip_invalid() {
    churn()
        .args(["rfm", bad("year_9999.csv").to_str().unwrap(), "--skip-invalid"])
        .assert()
        .success()
        .stdout(predicate::str::contains("C1,2024-01-05"))
        .stderr(predicate::str::contains("skipped 1 row (date outside 1900-2100: 1)"));
    churn()
        .args(["rfm", "x.csv", "--as-of", "9999-12-31"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'9999-12-31' is outside the dates churn accepts"));
}

#[test]
fn quoted_fields_with_newlines_and_delimiters_parse() {
    let got = rows(&stdout_of(&["rfm", bad("quoted_newlines.csv").to_str().unwrap(), "-q"]));
    let by_id: std::collections::HashMap<&str, &Vec<String>> =
        got.iter().map(|r| (r[0].as_str(), r)).collect();
    assert_eq!(by_id.len(), 3);
    // C1: 10.00 on 01-05 and 5.25 on 02-07; "C,2" keeps its comma.
    assert_eq!(by_id["C1"][1..6], ["2024-01-05", "2024-02-07", "1", "2", "15.25"]);
    assert_eq!(by_id["C,2"][3..6], ["33", "1", "20.5"]);
    assert_eq!(by_id["C3"][3..6], ["0", "1", "7"]);
}

#[test]
fn day_first_dates_are_detected_without_a_format() {
    let out = stdout_of(&["rfm", bad("day_first.csv").to_str().unwrap(), "-q"]);
    assert!(out.contains("\nC1,2024-12-31,2025-02-15,0,2,15,"), "{out}");
    assert!(out.contains("\nC2,2025-01-05,2025-01-05,41,1,20.5,"), "{out}");
}

#[test]
fn customer_ids_are_text_as_written_and_trimmed_but_case_sensitive() {
    // '7' in a CSV and 7 in a Parquet integer column are one customer; '0042'
    // and '42' are two (ids are compared as text).
    let out = stdout_of(&[
        "rfm",
        bad("ids_numeric.csv").to_str().unwrap(),
        bad("ids_text.csv").to_str().unwrap(),
        bad("ids_int.parquet").to_str().unwrap(),
        "-q",
    ]);
    let ids: Vec<String> = rows(&out).into_iter().map(|r| r[0].clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["0042", "42", "7", "C3"]);
    let seven = rows(&out).into_iter().find(|r| r[0] == "7").unwrap();
    assert_eq!(seven[4..6], ["3", "21"]); // 10 + 1 + 10
                                          // A byte-order mark in the middle of a file (two exports concatenated)
                                          // is not part of the id.
    let out = stdout_of(&["rfm", bad("bom_in_the_middle.csv").to_str().unwrap(), "-q"]);
    assert_eq!(rows(&out).len(), 1);
    assert_eq!(rows(&out)[0][..6], ["A", "2024-01-05", "2024-01-06", "0", "2", "3"]);
    // ' ABC ' is 'ABC'; 'abc ' is 'abc'; 'abc' and 'ABC' differ.
    let out = stdout_of(&["rfm", bad("ids_case_space.csv").to_str().unwrap(), "-q"]);
    let got: Vec<(String, String)> =
        rows(&out).into_iter().map(|r| (r[0].clone(), r[4].clone())).collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&("abc".into(), "2".into())) && got.contains(&("ABC".into(), "1".into())));
}

#[test]
fn all_purchases_on_one_day() {
    let f = bad("all_one_day.csv");
    let out = stdout_of(&["rfm", f.to_str().unwrap(), "-q"]);
    let got = rows(&out);
    assert_eq!(got.len(), 39);
    assert!(got.iter().all(|r| r[3] == "0" && r[4] == "1"));
    churn().args(["score", f.to_str().unwrap()]).assert().code(1).stdout("").stderr(
        predicate::str::contains("no customer bought on more than one day (all 39 bought once)"),
    );
}

/// A CSV of 1,000,000 rows, one per customer, made once per test run.
fn million_customers() -> &'static Path {
    static FILE: std::sync::OnceLock<(TempDir, PathBuf)> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("million.csv");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(w, "customer_id,date,amount").unwrap();
        for i in 0..1_000_000u32 {
            // Days spread over 2023, amounts 1.00..100.99.
            let (m, d) = (1 + i % 12, 1 + (i / 12) % 28);
            writeln!(w, "C{i:07},2023-{m:02}-{d:02},{}.{:02}", 1 + i % 100, (i / 100) % 100)
                .unwrap();
        }
        w.flush().unwrap();
        (dir, path)
    })
    .1
    .as_path()
}

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

/// Waits until a temporary output file appears in `dir` (or the child ends).
fn wait_for_temp_file(dir: &Path, child: &mut std::process::Child) -> bool {
    for _ in 0..20_000 {
        let found = std::fs::read_dir(dir).unwrap().any(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with(".churn-") && !name.starts_with(".churn-probe-")
        });
        if found {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    false
}

/// Runs churn with `args` and sends it `signal` (`-INT`, ...) once one of
/// its temporary files appears in `dir`; `None` when the run ended first.
#[cfg(unix)]
fn interrupted(args: &[&str], dir: &Path, signal: &str) -> Option<std::process::ExitStatus> {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("churn"))
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if !wait_for_temp_file(dir, &mut child) {
        child.wait().unwrap();
        return None;
    }
    let pid = child.id().to_string();
    assert!(StdCommand::new("kill").args([signal, &pid]).status().unwrap().success());
    Some(child.wait().unwrap())
}

#[cfg(unix)]
fn interrupted_run_keeps_the_old_output(signal: &str) -> Vec<String> {
    let input = million_customers();
    // A few attempts, in case a run finishes writing before it is caught.
    for _ in 0..5 {
        let dir = TempDir::new().unwrap();
        let out = dir.path().join("out.csv");
        std::fs::write(&out, "previous\n").unwrap();
        let args = ["rfm", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"];
        let Some(status) = interrupted(&args, dir.path(), signal) else { continue };
        if status.success() {
            // The run renamed its output and ended between the temporary
            // file's sighting and the signal: try again.
            assert_ne!(std::fs::read_to_string(&out).unwrap(), "previous\n");
            continue;
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
        return std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "out.csv")
            .collect();
    }
    panic!("the run always finished before it could be interrupted");
}

#[cfg(unix)]
#[test]
fn interrupted_runs_leave_the_previous_output() {
    // SIGINT (Ctrl-C) and SIGTERM: the temporary file is removed too.
    assert_eq!(interrupted_run_keeps_the_old_output("-INT"), Vec::<String>::new());
    assert_eq!(interrupted_run_keeps_the_old_output("-TERM"), Vec::<String>::new());
    // SIGKILL cannot be caught: the old output is intact, a temporary file
    // (hidden, .churn-*.tmp) may remain.
    for left in interrupted_run_keeps_the_old_output("-KILL") {
        assert!(left.starts_with(".churn-") && left.ends_with(".tmp"), "{left}");
    }
}

/// Runs churn with the streaming engine spilling into `spill_dir` cut into
/// `partitions`; its stdout, after checking that the spill is cleaned up.
fn streaming_stdout(args: &[&str], partitions: usize, spill_dir: &Path) -> String {
    let out = churn()
        .args(args)
        .args(["--engine", "streaming", "--temp-dir", spill_dir.to_str().unwrap()])
        .env("CHURN_SPILL_PARTITIONS", partitions.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("engine: streaming, {partitions} partitions in ")),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(spill_dir).unwrap().count(), 0, "spill left behind");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_streaming_engine_gives_the_memory_engines_output() {
    let spill = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let crm = data("crm.csv");
    let crm_parquet = data("crm.parquet");
    let (s, c, cp) =
        (sample.to_str().unwrap(), crm.to_str().unwrap(), crm_parquet.to_str().unwrap());
    let cases: &[&[&str]] = &[
        &["rfm", s],
        &["rfm", s, "--monetary", "mean", "--as-of", "2024-03-31", "--returns", "drop"],
        &["score", s],
        &["score", s, "--model", "pnbd", "--unit", "day", "--horizon", "30d"],
        &["fit", s, "--model", "auto", "--json"],
        &["fit", s, "--model", "gg", "--json"],
        &["cohorts", s],
        &["cohorts", s, "--period", "week", "--retention", "rolling"],
        &["cohorts", s, "--period", "day", "--as-of", "2023-06-30", "--layout", "wide"],
        &["rfm", c, "--keep", "Email,Country"],
        &["rfm", cp, "--keep", "email"],
        &["cohorts", cp, "--period", "quarter"],
    ];
    for args in cases {
        let mut memory = args.to_vec();
        memory.extend_from_slice(&["-q", "--engine", "memory"]);
        let expected = stdout_of(&memory);
        assert!(expected.lines().count() > 1, "{args:?}");
        for partitions in [1, 3, 16] {
            assert_eq!(
                streaming_stdout(args, partitions, spill.path()),
                expected,
                "{args:?} in {partitions}"
            );
        }
    }
    // Standard input, whose size is unknown, streams as well.
    let out = churn()
        .args([
            "rfm",
            "-",
            "--engine",
            "streaming",
            "-q",
            "--temp-dir",
            spill.path().to_str().unwrap(),
        ])
        .pipe_stdin(&sample)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stdout_of(&["rfm", s, "-q"]));
    // A million customers in 16 partitions: counts and a spot value carry over.
    let million = million_customers().to_str().unwrap();
    let text = streaming_stdout(&["rfm", million], 16, spill.path());
    assert_eq!(text, stdout_of(&["rfm", million, "-q", "--engine", "memory"]));
}

#[test]
fn the_streaming_engine_reports_errors_and_cleans_up() {
    let spill = TempDir::new().unwrap();
    let bad = data("bad_amount.csv");
    let memory =
        churn().args(["rfm", bad.to_str().unwrap(), "--engine", "memory"]).output().unwrap();
    let streaming = churn()
        .args(["rfm", bad.to_str().unwrap(), "--engine", "streaming", "-q"])
        .args(["--temp-dir", spill.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(streaming.status.code(), Some(1));
    assert_eq!(streaming.stderr, memory.stderr);
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    let missing = spill.path().join("no/such/dir");
    churn()
        .args(["rfm", data("sample.csv").to_str().unwrap(), "--engine", "streaming"])
        .args(["--temp-dir", missing.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "churn: cannot create a spill directory in {} (--temp-dir)",
            missing.display()
        )));
}

#[cfg(unix)]
#[test]
fn an_interrupted_streaming_run_removes_its_spill() {
    let input = million_customers();
    for _ in 0..5 {
        let dir = TempDir::new().unwrap();
        let d = dir.path().to_str().unwrap();
        let out = format!("{d}/out.csv");
        let args = ["score", input.to_str().unwrap(), "--engine", "streaming", "--temp-dir", d];
        let args = [&args[..], &["-o", &out, "-q"]].concat();
        let Some(status) = interrupted(&args, dir.path(), "-INT") else { continue };
        assert_eq!(status.code(), Some(130));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        return;
    }
    panic!("the run always finished before it could be interrupted");
}

#[test]
fn concurrent_runs_to_one_output_leave_one_complete_result() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out.csv");
    let sample = data("sample.csv");
    let expected = stdout_of(&["rfm", sample.to_str().unwrap(), "-q"]);
    let spawn = || {
        StdCommand::new(assert_cmd::cargo::cargo_bin("churn"))
            .args(["rfm", sample.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"])
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4).map(|_| spawn()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_outputs_fail_before_any_work() {
    let dir = TempDir::new().unwrap();
    // The input is bad too: the output problem must be found first.
    let input = data("bad_date.csv");
    let i = input.to_str().unwrap();
    let missing = dir.path().join("no/such/dir/out.csv");
    churn().args(["rfm", i, "-o", missing.to_str().unwrap()]).assert().code(1).stderr(
        predicate::str::contains(format!(
            "cannot write {}: the directory {} does not exist",
            missing.display(),
            dir.path().join("no/such/dir").display()
        )),
    );
    churn()
        .args(["rfm", i, "-o", dir.path().to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("it is a directory; give a file name"));
    // A directory nobody can create files in (even root): /proc.
    #[cfg(target_os = "linux")]
    churn().args(["rfm", i, "-o", "/proc/churn-out.csv"]).assert().code(1).stderr(
        predicate::str::contains("cannot write /proc/churn-out.csv: cannot create a file in /proc"),
    );
    for (cmd, flag) in
        [("report", "-o"), ("cohorts", "--chart"), ("fit", "--save"), ("backtest", "--chart")]
    {
        let target = dir.path().join("missing").join("x.svg");
        let target = if cmd == "fit" { target.with_extension("json") } else { target };
        let target = if cmd == "report" { target.with_extension("html") } else { target };
        churn()
            .args([cmd, i, flag, target.to_str().unwrap()])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("does not exist"));
    }
    // Writing over an input is refused (a usage error).
    let copy = dir.path().join("in.csv");
    std::fs::copy(data("hand.csv"), &copy).unwrap();
    let c = copy.to_str().unwrap();
    churn()
        .args(["rfm", c, "-o", c])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is also an input; write the result to another file"));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(data("hand.csv")).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn churn_writes_only_the_files_it_is_asked_for() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    for args in [
        vec!["rfm", s, "-o", "rfm.parquet"],
        vec!["cohorts", s, "-o", "cohorts.csv", "--chart", "cohorts.svg"],
        vec!["score", s, "--top", "10", "-o", "score.json"],
        vec!["fit", s, "--save", "model.json"],
        vec!["report", s, "-o", "report.html"],
    ] {
        churn().current_dir(dir.path()).args(&args).assert().success();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cohorts.csv", "cohorts.svg", "model.json", "report.html", "rfm.parquet", "score.json"]
    );
}

#[test]
fn degenerate_histories_stop_with_a_reason_not_a_failed_fit() {
    let dir = TempDir::new().unwrap();
    let write = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("customer_id,date,amount\n{body}")).unwrap();
        p
    };
    let once = write(
        "once.csv",
        (0..200).map(|c| format!("C{c},2024-01-{:02},5\n", c % 28 + 1)).collect(),
    );
    let daily = write(
        "daily.csv",
        (0..50).flat_map(|c| (1..=28).map(move |d| format!("C{c},2024-01-{d:02},5\n"))).collect(),
    );
    let three = write(
        "three.csv",
        "A,2024-01-01,5\nA,2024-02-01,6\nB,2024-01-03,5\nC,2024-03-01,5\nC,2024-03-09,9\n".into(),
    );
    let cases = [
        (&once, "no customer bought on more than one day (all 200 bought once)"),
        (&daily, "every one of the 50 customers bought on every day from their first purchase"),
        (&three, "only 3 customers with purchases: too few to fit a purchase model"),
    ];
    for (file, message) in cases {
        let out = dir.path().join("scores.csv");
        for cmd in ["score", "fit"] {
            let mut args = vec![cmd, file.to_str().unwrap()];
            if cmd == "score" {
                args.extend(["-o", out.to_str().unwrap()]);
            }
            churn().args(&args).assert().code(1).stderr(predicate::str::contains(message));
            assert!(!out.exists());
        }
        // The report is still written, and says why it has no risk figures.
        let v = json_of(&["report", file.to_str().unwrap(), "--json", "-q"]);
        assert!(v["model_error"].as_str().unwrap().contains(message), "{}", v["model_error"]);
    }
}

// ---------------------------------------------------------------------------
// CRM-ready lists: --keep, --columns, --action(s), --excel, --changes-since.

#[test]
fn keep_carries_the_latest_non_empty_value_per_customer() {
    // The same export as CSV and as Parquet (where empty values are nulls).
    for file in ["crm.csv", "crm.parquet"] {
        let f = data(file);
        let out = stdout_of(&[
            "rfm",
            f.to_str().unwrap(),
            "-q",
            "--keep",
            "Email,country,Customer Name",
            "--columns",
            "customer_id,Email,Country,Customer Name",
        ]);
        // A: the latest row (a return) has no email, so the one before it
        // wins; its country is on the latest row; its name only on the first.
        // B: two rows on one day: the later line wins. C: never given: empty.
        assert_eq!(
            out,
            "customer_id,Email,Country,Customer Name\n\
             A,a.new@example.com,FR,\"Alpha, Inc.\"\n\
             B,b2@example.com,US,Bob B\n\
             C,,,\n\
             D,d.future@example.com,UK,Dee\n",
            "{file}"
        );
    }
    let f = data("crm.csv");
    // Rows after --as-of are not looked at.
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--keep",
        "Email",
        "--as-of",
        "2024-03-04",
        "--columns",
        "customer_id,Email",
    ]);
    assert!(out.ends_with("D,d@example.com\n"), "{out}");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--keep", "Phone"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--keep: "))
        .stderr(predicate::str::contains("has no column 'Phone'; its columns are: 'customer_id'"));
}

#[test]
fn columns_choose_order_and_rename_and_unknown_ones_are_listed() {
    let f = data("crm.csv");
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--columns",
        "segment:Tier,customer_id:ExternalId,\"monetary:Total, net\"",
    ]);
    assert_eq!(out.lines().next().unwrap(), "Tier,ExternalId,\"Total, net\"");
    assert_eq!(out.lines().nth(1).unwrap(), "Loyal Customers,A,25");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--columns", "customer_id,Emali", "-o", "x.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--columns: no column 'Emali'; the available columns are: customer_id, first_purchase,",
        ));
    assert!(!Path::new("x.csv").exists());
    // The columns --columns is checked against before any work are the
    // list's own: naming them all gives the default list.
    let sample = data("sample.csv");
    let all = "customer_id,frequency,recency,T,monetary_avg,p_alive,churn_risk,expected_purchases,p_no_purchase,expected_spend,clv,value_at_risk,risk_band,segment";
    assert_eq!(
        stdout_of(&["score", sample.to_str().unwrap(), "-q", "--top", "50", "--columns", all]),
        stdout_of(&["score", sample.to_str().unwrap(), "-q", "--top", "50"])
    );
    churn()
        .args(["score", "/no/such/file.csv", "--columns", "customer_id,nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--columns: no column 'nope'"));
}

#[test]
fn actions_follow_segment_and_band_and_can_come_from_a_file() {
    let f = data("crm.csv");
    let out =
        stdout_of(&["rfm", f.to_str().unwrap(), "-q", "--columns", "customer_id,segment,action"]);
    assert!(out.contains("\nC,Others,review manually\n"), "{out}");
    assert!(out
        .contains("\nA,Loyal Customers,reward with loyalty points; offer membership or upsell\n"));
    // In score, a high band overrides the segment's action.
    let sample = data("sample.csv");
    let out = stdout_of(&[
        "score",
        sample.to_str().unwrap(),
        "-q",
        "--action",
        "--columns",
        "risk_band,segment,action",
    ]);
    let mut seen = 0;
    for row in rows(&out) {
        let want = match (row[0].as_str(), row[1].as_str()) {
            ("high", "Champions") => {
                "personal call from a representative: a top customer is slipping away"
            }
            ("low", "Champions") => {
                "reward: loyalty points or early access; ask for reviews and referrals"
            }
            _ => continue,
        };
        assert_eq!(row[2], want);
        seen += 1;
    }
    assert!(seen > 10, "{seen}");
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("actions.toml");
    std::fs::write(&file, "[segment]\n\"Loyal Customers\" = \"VIP\"\n").unwrap();
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--actions",
        file.to_str().unwrap(),
        "--columns",
        "customer_id,action",
    ]);
    assert_eq!(
        out,
        "customer_id,action\nA,VIP\nB,review manually\nC,review manually\nD,review manually\n"
    );
    std::fs::write(&file, "[segment]\n\"Loyal\" = \"VIP\"\n").unwrap();
    churn()
        .args(["rfm", f.to_str().unwrap(), "--actions", file.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("names the segment 'Loyal', which does not exist"));
}

#[test]
fn excel_and_output_delimiter() {
    let f = data("hand.csv");
    let out = churn()
        .args(["rfm", f.to_str().unwrap(), "-q", "--excel", "--output-delimiter", ";"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("\u{feff}customer_id;first_purchase;"), "{text}");
    assert_eq!(text.matches("\r\n").count(), 6);
    assert_eq!(text.matches('\n').count(), 6);
    assert!(text.contains("\r\nA;2024-01-05;2024-02-10;55;2;145;"), "{text}");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--excel", "-o", "x.parquet"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--excel and --output-delimiter apply to CSV and TSV"));
}

/// Each customer's (band, segment) in a scored list read back.
fn bands_and_segments(
    csv: &str,
    id: usize,
) -> std::collections::BTreeMap<String, (String, String)> {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (band, segment) = (col("risk_band"), col("segment"));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[id].to_string(), (rec[band].to_string(), rec[segment].to_string()))
        })
        .collect()
}

#[test]
fn changes_since_reports_every_kind_of_change() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    let now = stdout_of(&["score", s, "-q"]);
    let current = bands_and_segments(&now, 0);
    // The previous list: the current one with a band raised, a band lowered,
    // a segment changed, a customer missing (new) and one that left (gone).
    let mut r = csv::Reader::from_reader(now.as_bytes());
    let header = r.headers().unwrap().clone();
    let mut recs: Vec<Vec<String>> =
        r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect();
    let band = header.iter().position(|c| c == "risk_band").unwrap();
    let segment = header.iter().position(|c| c == "segment").unwrap();
    let first_with = |b: &str| recs.iter().position(|x| x[band] == b).unwrap();
    let (up, down) = (first_with("high"), first_with("low"));
    recs[up][band] = "low".into();
    recs[down][band] = "high".into();
    let seg = (0..recs.len()).find(|&i| i != up && i != down).unwrap();
    recs[seg][segment] = "Lost".into();
    let new = recs.remove(recs.len() - 1);
    let mut ghost = recs[0].clone();
    ghost[0] = "ghost".into();
    recs.push(ghost);
    let prev = dir.path().join("prev.csv");
    let mut w = csv::Writer::from_path(&prev).unwrap();
    w.write_record(&header).unwrap();
    for x in &recs {
        w.write_record(x).unwrap();
    }
    w.flush().unwrap();
    let delta = stdout_of(&["score", s, "-q", "--changes-since", prev.to_str().unwrap()]);
    let got: Vec<(String, String)> =
        rows(&delta).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let mut want = vec![
        (recs[up][0].clone(), "band_up".to_string()),
        (recs[down][0].clone(), "band_down".to_string()),
        (recs[seg][0].clone(), "segment_changed".to_string()),
        (new[0].clone(), "new".to_string()),
        ("ghost".to_string(), "gone".to_string()),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    if recs[seg][segment] == current[&recs[seg][0]].1 {
        want.retain(|w| w.1 != "segment_changed"); // it was already Lost
    }
    assert_eq!(sorted, want, "{delta}");
    // Gone customers come last, with empty figures.
    assert!(delta.ends_with("ghost,gone,,,,,,,,,,,,,\n"), "{delta}");
    assert!(delta.starts_with("customer_id,change,frequency,"));
}

#[test]
fn readme_crm_pipeline_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- crm-pipeline -->\n```sh\n").unwrap() + 28;
    let end = readme[start..].find("```\n<!-- /crm-pipeline -->").unwrap() + start;
    let script = &readme[start..end];
    // An export with an email per customer, as the README's exports/sales.csv.
    let dir = TempDir::new().unwrap();
    std::fs::create_dir_all(dir.path().join("exports")).unwrap();
    std::fs::create_dir_all(dir.path().join("crm")).unwrap();
    let sample = std::fs::read_to_string(data("sample.csv")).unwrap();
    let mut export = String::new();
    for (k, line) in sample.lines().enumerate() {
        let email = if k == 0 {
            "Email".to_string()
        } else {
            format!("c{}@example.com", line.split(',').nth(1).unwrap())
        };
        export.push_str(&format!("{line},{email}\n"));
    }
    std::fs::write(dir.path().join("exports/sales.csv"), export).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("churn");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Last week's list: the same script's first command, a week earlier.
    let first_week = format!(
        "{}\nchurn score exports/sales.csv \"${{LIST[@]}}\" --as-of 2023-12-24 -o crm/last-week.csv\n",
        script.lines().take(2).collect::<Vec<_>>().join("\n")
    );
    for s in [first_week.as_str(), "cp crm/last-week.csv crm/previous.csv\n", script] {
        let out = StdCommand::new("bash")
            .args(["-euc", s])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |name: &str| std::fs::read_to_string(dir.path().join("crm").join(name)).unwrap();
    assert!(!dir.path().join("crm/this-week.csv").exists());
    let delta = read("delta.csv");
    assert!(delta.starts_with("Email,ExternalId,Churn Risk,Tier,Segment,Action,change\n"));
    // The delta, recomputed from the two full lists.
    let key = |csv: &str| -> std::collections::BTreeMap<String, (String, String)> {
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        r.records()
            .map(|x| {
                let x = x.unwrap();
                (x[1].to_string(), (x[3].to_string(), x[4].to_string()))
            })
            .collect()
    };
    let (before, after) = (key(&read("previous.csv")), key(&read("last-week.csv")));
    let rank = |b: &str| ["low", "medium", "high"].iter().position(|x| *x == b).unwrap();
    let mut want = std::collections::BTreeMap::new();
    for (id, (band, segment)) in &after {
        let change = match before.get(id) {
            None => "new",
            Some((b, _)) if rank(b) < rank(band) => "band_up",
            Some((b, _)) if rank(b) > rank(band) => "band_down",
            Some((_, s)) if s != segment => "segment_changed",
            _ => continue,
        };
        want.insert(id.clone(), change.to_string());
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        want.insert(id.clone(), "gone".into());
    }
    let got: std::collections::BTreeMap<String, String> =
        rows(&delta).into_iter().map(|r| (r[1].clone(), r[6].clone())).collect();
    assert_eq!(got, want);
    for kind in ["new", "band_up", "band_down", "gone"] {
        assert!(want.values().any(|c| c == kind), "no {kind} in this week's delta");
    }
    // Emails and actions travel with the rows that are still listed.
    let first = &rows(&delta)[0];
    assert_eq!(first[0], format!("c{}@example.com", first[1]));
    assert!(!first[5].is_empty());
}

// ---------------------------------------------------------------------------
// `churn sql`: the emitted SQL, run for real in DuckDB, gives a summary that
// scores exactly like the transactions.

/// A Python with duckdb, sqlglot, pyspark and lifetimes: $CHURN_TEST_PYTHON, or a
/// virtualenv made once under ~/.cache (the packages come from PyPI; Spark
/// also needs a Java runtime).
fn sql_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("CHURN_TEST_PYTHON") {
                return PathBuf::from(p);
            }
            let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
            let venv = Path::new(&home).join(".cache/churn-test-venv");
            let python = venv.join("bin/python");
            let ready = |p: &Path| {
                StdCommand::new(p)
                    .args(["-c", "import duckdb, sqlglot, pyspark, lifetimes"])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !ready(&python) {
                let ok = StdCommand::new("python3")
                    .args(["-m", "venv", venv.to_str().unwrap()])
                    .status()
                    .is_ok_and(|s| s.success())
                    && StdCommand::new(&python)
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "-q",
                            "duckdb==2.0.0",
                            "sqlglot==30.0.3",
                            "pyspark==4.0.1",
                            "lifetimes==0.11.3",
                            "pandas==3.1.1",
                            "numpy==2.4.6",
                            "scipy==1.17.1",
                        ])
                        .status()
                        .is_ok_and(|s| s.success());
                assert!(
                    ok,
                    "cannot make {}: python3 -m venv and pip install duckdb sqlglot pyspark lifetimes",
                    venv.display()
                );
            }
            python
        })
        .clone()
}

/// The field's conventions, checked against a second implementation and the
/// literature by benches/conventions.py: on a generated export with purchases
/// on one day, on the as-of date, free orders, returns and blank ids, churn's
/// (x, t_x, T, monetary_avg) equal lifetimes' summary_data_from_transaction_data
/// row for row and the BG/NBD, MBG/NBD and Pareto/NBD fits agree with
/// lifetimes' (parameters 1e-4, P(alive) 1e-6, expected purchases 1e-5); on
/// the CDNOW sample lifetimes ships, churn gives the published estimates.
#[test]
fn summary_and_fits_agree_with_lifetimes_and_the_published_cdnow_estimates() {
    // The generator example is built by `cargo test`, beside the test binary.
    let exe = std::env::current_exe().unwrap();
    let generate = exe.parent().and_then(Path::parent).unwrap().join("examples/generate");
    assert!(generate.exists(), "{} is missing: run the tests with cargo test", generate.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/conventions.py");
    let out = StdCommand::new(sql_python())
        .arg(script)
        .args(["--churn", env!("CARGO_BIN_EXE_churn"), "--rows", "100000", "--generate"])
        .arg(&generate)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}
{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| CDNOW bgnbd a | 0.792922 (published 0.7929) | pass |"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

fn run_python(script: &str, args: &[&str]) -> String {
    let out = StdCommand::new(sql_python()).arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const DUCKDB_RUN: &str = r#"
import sys, duckdb
csv, sql_file, out = sys.argv[1:4]
con = duckdb.connect()
con.execute(f"CREATE TABLE tx AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
sql = open(sql_file).read().strip().rstrip(';')
con.execute(f"COPY ({sql}) TO '{out}' (HEADER)")
con.execute(f"COPY ({sql}) TO '{out}.parquet' (FORMAT parquet)")
"#;

/// testdata/sample.csv with every 37th order free (amount 0.00): free
/// orders are purchases, in the engines as locally.
fn sample_with_free_orders(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        match line.rsplit_once(',') {
            Some((head, _)) if i > 0 && i % 37 == 0 => out += &format!("{head},0.00\n"),
            _ => out += &format!("{line}\n"),
        }
    }
    let path = dir.join("sample_free.csv");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn sql_summary_run_in_duckdb_scores_like_the_transactions() {
    let dir = TempDir::new().unwrap();
    let sample = sample_with_free_orders(dir.path());
    let hand = data("hand.csv");
    let cases: &[(&Path, &[&str], &[&str])] = &[
        (&sample, &["--date", "order_date", "--order", "order_id"], &[]),
        (
            &sample,
            &[
                "--date",
                "order_date",
                "--order",
                "order_id",
                "--as-of",
                "2024-03-31",
                "--returns",
                "drop",
            ],
            &["--as-of", "2024-03-31", "--returns", "drop"],
        ),
        (&hand, &["--order", "order_id", "--as-of", "2024-03-31"], &["--as-of", "2024-03-31"]),
    ];
    for (k, (file, sql_flags, flags)) in cases.iter().enumerate() {
        // The model summary's unit: it changes only the x, t_x, T, monetary_avg columns.
        let unit: &[&str] = if k == 1 { &["--unit", "month"] } else { &[] };
        let mut args = vec!["sql", "summary", "--dialect", "duckdb", "--table", "tx"];
        args.extend_from_slice(sql_flags);
        args.extend_from_slice(unit);
        let sql = dir.path().join(format!("q{k}.sql"));
        std::fs::write(&sql, stdout_of(&args)).unwrap();
        let summary = dir.path().join(format!("summary{k}.csv"));
        run_python(
            DUCKDB_RUN,
            &[file.to_str().unwrap(), sql.to_str().unwrap(), summary.to_str().unwrap()],
        );
        let f = file.to_str().unwrap();
        let s = summary.to_str().unwrap();
        let local = |cmd: &str, extra: &[&str]| {
            let mut a = vec![cmd, f, "-q"];
            a.extend_from_slice(flags);
            a.extend_from_slice(extra);
            stdout_of(&a)
        };
        let remote = |cmd: &str, extra: &[&str]| {
            let mut a = vec![cmd, "--summary", s, "-q"];
            a.extend_from_slice(extra);
            stdout_of(&a)
        };
        assert_eq!(remote("rfm", &[]), local("rfm", &[]), "case {k}: rfm");
        if *file == sample.as_path() {
            assert_model_summary(&summary, &local("score", unit));
            assert_eq!(remote("score", &[]), local("score", &[]), "case {k}: score");
            let parquet = format!("{s}.parquet");
            assert_eq!(
                stdout_of(&["score", "--summary", &parquet, "-q"]),
                local("score", &[]),
                "case {k}: score from Parquet"
            );
            assert_eq!(
                remote("fit", &["--model", "auto", "--json"]),
                local("fit", &["--model", "auto", "--json"]),
                "case {k}: fit"
            );
        }
    }
    let summary0 = dir.path().join("summary0.csv");
    churn()
        .args(["score", "--summary", summary0.to_str().unwrap(), "--keep", "Email"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--keep needs the transactions; it does not go with --summary",
        ));
    // hand.csv as of 2024-03-31 is the hand-computed table.
    let summary = dir.path().join("summary2.csv");
    assert_eq!(
        stdout_of(&["rfm", "--summary", summary.to_str().unwrap(), "-q"]),
        format!("{HEADER}\n{HAND_RFM}")
    );
}

#[test]
fn sql_rfm_and_cohorts_run_in_duckdb_equal_the_local_tables() {
    let dir = TempDir::new().unwrap();
    let sample = sample_with_free_orders(dir.path());
    for (k, (kind, flags)) in ENGINE_TABLES.iter().enumerate() {
        let mut a = vec!["sql", kind, "--dialect", "duckdb", "--table", "tx"];
        a.extend_from_slice(&["--date", "order_date", "--order", "order_id"]);
        a.extend_from_slice(flags);
        let sql = dir.path().join(format!("t{k}.sql"));
        std::fs::write(&sql, stdout_of(&a)).unwrap();
        let out = dir.path().join(format!("t{k}.csv"));
        run_python(
            DUCKDB_RUN,
            &[sample.to_str().unwrap(), sql.to_str().unwrap(), out.to_str().unwrap()],
        );
        assert_engine_table(kind, flags, &sample, &out);
    }
    // Without an order column every row that is not a return is a purchase.
    let sql = dir.path().join("rows.sql");
    std::fs::write(
        &sql,
        stdout_of(&[
            "sql",
            "cohorts",
            "--dialect",
            "duckdb",
            "--table",
            "tx",
            "--date",
            "order_date",
        ]),
    )
    .unwrap();
    let out = dir.path().join("rows.csv");
    let without_orders = dir.path().join("no_orders.csv");
    let text = std::fs::read_to_string(&sample).unwrap().replace("order_id", "invoice");
    std::fs::write(&without_orders, text).unwrap();
    run_python(
        DUCKDB_RUN,
        &[without_orders.to_str().unwrap(), sql.to_str().unwrap(), out.to_str().unwrap()],
    );
    assert_engine_table("cohorts", &[], &without_orders, &out);
}

/// The model summary an engine computed (x, t_x, T, monetary_avg, in the
/// query's --unit) equals churn's own, the first columns of `churn score`
/// with that unit, customer by customer and to the last bit.
fn assert_model_summary(engine_csv: &Path, local_score: &str) {
    let engine = std::fs::read_to_string(engine_csv).unwrap();
    let mut lines = engine.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let ix = [at("customer_id"), at("x"), at("t_x"), at("T"), at("monetary_avg")];
    let mut figures = std::collections::HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let values: Vec<f64> = ix[1..].iter().map(|&k| f[k].parse().unwrap()).collect();
        figures.insert(f[ix[0]].to_string(), values);
    }
    let mut rows = local_score.lines();
    assert!(rows.next().unwrap().starts_with("customer_id,frequency,recency,T,monetary_avg,"));
    let mut n = 0;
    for line in rows {
        let f: Vec<&str> = line.split(',').collect();
        let local: Vec<f64> = f[1..5].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(figures.get(f[0]), Some(&local), "customer {}", f[0]);
        n += 1;
    }
    assert_eq!(n, figures.len());
    assert!(n > 1000, "{n} customers");
}

/// Runs a query of another dialect in DuckDB, translated by sqlglot: what
/// can be executed here of the BigQuery and Snowflake queries. Dates that
/// the translation turns into timestamps are cast back to dates.
const TRANSLATED_RUN: &str = r#"
import sys, duckdb, sqlglot
csv, sql_file, dialect, out = sys.argv[1:5]
sql = sqlglot.transpile(open(sql_file).read(), read=dialect, write="duckdb")[0]
con = duckdb.connect()
con.execute(f"CREATE TABLE tx AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
names = [c[0] for c in con.execute(f"DESCRIBE {sql}").fetchall()]
dates = {"cohort", "first_purchase", "last_purchase", "as_of"}
cols = ", ".join(f'CAST("{n}" AS DATE) AS "{n}"' if n in dates else f'"{n}"' for n in names)
con.execute(f"COPY (SELECT {cols} FROM ({sql})) TO '{out}' (HEADER)")
"#;

#[test]
fn sql_bigquery_and_snowflake_queries_translated_to_duckdb_equal_the_local_tables() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    // sqlglot cannot translate Snowflake's LATERAL FLATTEN (the cohort
    // offsets) to DuckDB: Snowflake's cohort query is only parsed.
    let cases: &[(&str, &str, &[&str])] = &[
        ("bigquery", "summary", &[]),
        ("bigquery", "summary", &["--as-of", "2024-03-31", "--returns", "drop", "--unit", "month"]),
        ("bigquery", "rfm", &[]),
        ("bigquery", "cohorts", &["--period", "week", "--as-of", "2024-03-31"]),
        ("bigquery", "cohorts", &["--period", "month", "--retention", "rolling"]),
        ("bigquery", "cohorts", &["--period", "quarter"]),
        ("snowflake", "summary", &[]),
        ("snowflake", "rfm", &["--as-of", "2024-03-31", "--returns", "drop"]),
    ];
    for (k, (dialect, kind, flags)) in cases.iter().enumerate() {
        let mut a = vec!["sql", kind, "--dialect", dialect, "--table", "tx"];
        a.extend_from_slice(&["--date", "order_date", "--order", "order_id"]);
        a.extend_from_slice(flags);
        let sql = dir.path().join(format!("t{k}.sql"));
        std::fs::write(&sql, stdout_of(&a)).unwrap();
        let out = dir.path().join(format!("t{k}.csv"));
        run_python(TRANSLATED_RUN, &[s, sql.to_str().unwrap(), dialect, out.to_str().unwrap()]);
        if *kind == "summary" {
            // The flags of the local run: all but --unit, which only the model columns show.
            let unit = flags.iter().position(|f| *f == "--unit");
            let local_flags: Vec<&str> = match unit {
                Some(i) => [&flags[..i], &flags[i + 2..]].concat(),
                None => flags.to_vec(),
            };
            let mut local = vec!["score", s, "-q"];
            local.extend_from_slice(&local_flags);
            let expected = stdout_of(&local);
            let o = out.to_str().unwrap();
            assert_eq!(
                stdout_of(&["score", "--summary", o, "-q"]),
                expected,
                "{dialect} {flags:?}"
            );
            let mut scored = local.clone();
            if let Some(i) = unit {
                scored.extend_from_slice(&flags[i..i + 2]);
            }
            assert_model_summary(&out, &stdout_of(&scored));
        } else {
            assert_engine_table(kind, flags, &sample, &out);
        }
    }
}

const SPARK_RUN: &str = r#"
import sys, csv
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("churn-test")
         .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.host", "127.0.0.1").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.read.option("header", True).csv(sys.argv[1]).createOrReplaceTempView("tx")
def text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v.isoformat() if hasattr(v, "isoformat") else str(v)
for sql_file, out in zip(sys.argv[2::2], sys.argv[3::2]):
    df = spark.sql(open(sql_file).read().strip().rstrip(";"))
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(df.columns)
        for r in df.collect():
            w.writerow([text(v) for v in r])
spark.stop()
"#;

#[test]
fn sql_summary_run_in_spark_scores_like_the_transactions() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 2] = [
        (&[], &[]),
        (
            &["--as-of", "2024-03-31", "--returns", "drop"],
            &["--as-of", "2024-03-31", "--returns", "drop"],
        ),
    ];
    let mut args = vec![s.to_string()];
    for (k, (sql_flags, _)) in cases.iter().enumerate() {
        let mut a = vec![
            "sql",
            "summary",
            "--dialect",
            "spark",
            "--table",
            "tx",
            "--date",
            "order_date",
            "--order",
            "order_id",
        ];
        a.extend_from_slice(sql_flags);
        let sql = dir.path().join(format!("q{k}.sql"));
        std::fs::write(&sql, stdout_of(&a)).unwrap();
        args.push(sql.to_str().unwrap().to_string());
        args.push(dir.path().join(format!("summary{k}.csv")).to_str().unwrap().to_string());
    }
    let tables = ENGINE_TABLES.iter().enumerate().map(|(k, (kind, flags))| {
        let mut a = vec!["sql", kind, "--dialect", "spark", "--table", "tx"];
        a.extend_from_slice(&["--date", "order_date", "--order", "order_id"]);
        a.extend_from_slice(flags);
        let sql = dir.path().join(format!("t{k}.sql"));
        std::fs::write(&sql, stdout_of(&a)).unwrap();
        (sql, dir.path().join(format!("t{k}.csv")))
    });
    let tables: Vec<(PathBuf, PathBuf)> = tables.collect();
    for (sql, out) in &tables {
        args.push(sql.to_str().unwrap().to_string());
        args.push(out.to_str().unwrap().to_string());
    }
    run_python(SPARK_RUN, &args.iter().map(String::as_str).collect::<Vec<_>>());
    for (k, (_, flags)) in cases.iter().enumerate() {
        let summary = dir.path().join(format!("summary{k}.csv"));
        let mut local = vec!["score", s, "-q"];
        local.extend_from_slice(flags);
        let local = stdout_of(&local);
        assert_eq!(
            stdout_of(&["score", "--summary", summary.to_str().unwrap(), "-q"]),
            local,
            "case {k}"
        );
        assert_model_summary(&summary, &local);
    }
    for ((kind, flags), (_, out)) in ENGINE_TABLES.iter().zip(&tables) {
        assert_engine_table(kind, flags, &sample, out);
    }
}

/// `churn sql rfm|cohorts` cases run in each engine on sample.csv: every
/// period and retention, an as-of day at the end of a month (no partial
/// period), another mid-week, and dropped returns.
const ENGINE_TABLES: &[(&str, &[&str])] = &[
    ("rfm", &[]),
    ("rfm", &["--as-of", "2024-03-31", "--returns", "drop"]),
    ("cohorts", &[]),
    ("cohorts", &["--period", "day", "--as-of", "2023-03-15"]),
    ("cohorts", &["--period", "week", "--retention", "rolling"]),
    ("cohorts", &["--period", "week", "--as-of", "2024-03-31"]),
    ("cohorts", &["--period", "month", "--retention", "rolling", "--as-of", "2024-03-31"]),
    ("cohorts", &["--period", "quarter", "--returns", "drop"]),
    ("cohorts", &["--period", "quarter", "--retention", "rolling", "--as-of", "2024-03-31"]),
];

/// Checks an engine's result of `churn sql KIND FLAGS` on `input` against
/// churn's own table: RFM base figures through `churn rfm --summary` (byte
/// for byte) and value by value against `churn rfm`; cohort cells value by
/// value against `churn cohorts` (numbers parsed, so that 16.680000 from a
/// DECIMAL is 16.68; retention is the same division, so it must be equal).
fn assert_engine_table(kind: &str, flags: &[&str], input: &Path, engine_csv: &Path) {
    let mut local = vec![kind, input.to_str().unwrap(), "-q"];
    local.extend_from_slice(flags);
    let local = stdout_of(&local);
    let engine = std::fs::read_to_string(engine_csv).unwrap();
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
    };
    let (e, l) = (rows(&engine), rows(&local));
    let context = format!("{kind} {flags:?}");
    assert_eq!(e.len(), l.len(), "{context}: row count");
    let num = |v: &str| v.parse::<f64>().unwrap_or_else(|_| panic!("{context}: '{v}'"));
    let boolean = |v: &str| match v {
        "true" | "t" => true,
        "false" | "f" => false,
        _ => panic!("{context}: '{v}' is not a boolean"),
    };
    if kind == "rfm" {
        assert_eq!(e[0][..6], l[0][..6], "{context}: header");
        let rescored = stdout_of(&["rfm", "--summary", engine_csv.to_str().unwrap(), "-q"]);
        assert_eq!(rescored, local, "{context}: churn rfm --summary");
        for (a, b) in e.iter().zip(&l).skip(1) {
            assert_eq!(a[..5], b[..5], "{context}");
            assert_eq!(num(&a[5]), num(&b[5]), "{context}: monetary of {}", a[0]);
        }
    } else {
        assert_eq!(e[0], l[0], "{context}: header");
        for (a, b) in e.iter().zip(&l).skip(1) {
            assert_eq!(a[..4], b[..4], "{context}");
            assert_eq!(num(&a[4]), num(&b[4]), "{context}: retention in {a:?}");
            assert_eq!(a[5], b[5], "{context}: orders in {a:?}");
            assert_eq!(num(&a[6]), num(&b[6]), "{context}: revenue in {a:?}");
            assert_eq!(boolean(&a[7]), boolean(&b[7]), "{context}: partial in {a:?}");
        }
        // The last cell of each cohort is partial unless the as-of day ends
        // its period: 2024-03-31 ends a month, a quarter and an ISO week
        // (a Sunday), and every day ends a day.
        let partial = l.iter().skip(1).filter(|r| r[7] == "true").count();
        let cohorts = l.iter().skip(1).filter(|r| r[1] == "0").count();
        let complete = flags.contains(&"2024-03-31") || flags.contains(&"day");
        assert_eq!(partial, if complete { 0 } else { cohorts }, "{context}: partial cells");
    }
}

/// A throwaway PostgreSQL server: a cluster made by initdb in a temporary
/// directory, listening only on a Unix socket there, stopped when dropped.
/// The server's programs come from the OS packages (Debian: postgresql,
/// which .ci/run installs); as root they run as the `postgres` user, since
/// PostgreSQL refuses to run as root.
struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    as_root: bool,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("PostgreSQL's server programs are not installed (Debian: apt-get install postgresql; .ci/run does it)");
        let uid = StdCommand::new("id").arg("-u").output().unwrap();
        let as_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = TempDir::new().unwrap();
        let pg = Postgres { dir, bin, as_root };
        if as_root {
            pg.check(StdCommand::new("chown").args(["-R", "postgres"]).arg(pg.dir.path()));
        }
        let data = pg.dir.path().join("data");
        pg.check(
            pg.server("initdb")
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .args(["--locale=C", "-D"])
                .arg(&data),
        );
        let options = format!("-k {} -c listen_addresses= -p 5499", pg.dir.path().display());
        pg.check(
            pg.server("pg_ctl")
                .args(["-w", "-D"])
                .arg(&data)
                .args(["-l"])
                .arg(pg.dir.path().join("log"))
                .args(["-o", &options, "start"]),
        );
        pg
    }

    /// A server program, run as `postgres` when we are root.
    fn server(&self, program: &str) -> StdCommand {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = StdCommand::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            StdCommand::new(path)
        }
    }

    fn check(&self, command: &mut StdCommand) -> String {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs one psql command (SQL or a backslash command); its output.
    fn psql(&self, command: &str) -> String {
        self.check(
            StdCommand::new(self.bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres"])
                .arg("-h")
                .arg(self.dir.path())
                .args(["-p", "5499", "-c", command]),
        )
    }

    /// Loads a CSV file into a new table of text columns named as its header.
    fn load_csv(&self, table: &str, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let header = text.lines().next().unwrap();
        let columns: Vec<String> = header.split(',').map(|c| format!("\"{c}\" text")).collect();
        self.psql(&format!("CREATE TABLE {table} ({})", columns.join(", ")));
        self.psql(&format!(
            "\\copy {table} FROM '{}' WITH (FORMAT csv, HEADER true)",
            path.display()
        ));
    }

    /// A query's result as CSV with a header.
    fn query_csv(&self, sql: &str) -> String {
        let body: Vec<&str> = sql.lines().filter(|l| !l.starts_with("--")).collect();
        let body = body.join("\n");
        self.psql(&format!(
            "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)",
            body.trim().trim_end_matches(';')
        ))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ =
            self.server("pg_ctl").args(["-m", "immediate", "-D"]).arg(data).arg("stop").output();
    }
}

#[test]
fn sql_queries_run_in_postgresql_equal_the_local_tables() {
    let pg = Postgres::start();
    let sample = data("sample.csv");
    pg.load_csv("tx", &sample);
    let dir = TempDir::new().unwrap();
    let columns = ["--date", "order_date", "--order", "order_id"];
    for (k, flags) in [&[][..], &["--as-of", "2024-03-31", "--returns", "drop"]].iter().enumerate()
    {
        let mut a = vec!["sql", "summary", "--dialect", "postgres", "--table", "tx"];
        a.extend_from_slice(&columns);
        a.extend_from_slice(flags);
        let summary = dir.path().join(format!("summary{k}.csv"));
        std::fs::write(&summary, pg.query_csv(&stdout_of(&a))).unwrap();
        let mut local = vec!["score", sample.to_str().unwrap(), "-q"];
        local.extend_from_slice(flags);
        let local = stdout_of(&local);
        assert_eq!(
            stdout_of(&["score", "--summary", summary.to_str().unwrap(), "-q"]),
            local,
            "summary {flags:?}"
        );
        assert_model_summary(&summary, &local);
    }
    for (k, (kind, flags)) in ENGINE_TABLES.iter().enumerate() {
        let mut a = vec!["sql", kind, "--dialect", "postgres", "--table", "tx"];
        a.extend_from_slice(&columns);
        a.extend_from_slice(flags);
        let out = dir.path().join(format!("t{k}.csv"));
        std::fs::write(&out, pg.query_csv(&stdout_of(&a))).unwrap();
        assert_engine_table(kind, flags, &sample, &out);
    }
}

#[test]
fn a_summary_that_breaks_the_definitions_is_refused() {
    let dir = TempDir::new().unwrap();
    let header = "customer_id,first_purchase,last_purchase,purchases,monetary,repeat_days,repeat_amount,as_of\n";
    let good = "A,2024-01-05,2024-02-10,3,145,2,45,2024-03-31\n";
    let cases = [
        ("customer_id,first_purchase,purchases\nA,2024-01-05,1\n", "has no column 'last_purchase': a summary has the columns customer_id, first_purchase,"),
        ("B,2024-03-01,2024-02-01,1,5,0,0,2024-03-31\n", "line 3: first_purchase 2024-03-01 ≤ last_purchase 2024-02-01 ≤ as_of 2024-03-31 does not hold"),
        ("B,2024-03-01,2024-03-05,2,5,9,1,2024-03-31\n", "line 3, column 'repeat_days': 9 repeat purchase days do not fit between 2024-03-01 and 2024-03-05"),
        ("B,2024-03-01,2024-03-05,1,5,1,1,2024-03-31\n", "line 3, column 'purchases': 1 purchases on 2 purchase days"),
        ("B,2024-03-01,2024-03-05,2,5,1,1,2024-03-30\n", "line 3, column 'as_of': '2024-03-30' differs from the as-of date of the rows before (2024-03-31)"),
        ("B,2024-03-01,2024-03-05,2,$5,1,1,2024-03-31\n", "line 3, column 'monetary': '$5' is not a number"),
        ("A,2024-01-05,2024-02-10,3,145,2,45,2024-03-31\n", "line 3, column 'customer_id': customer 'A' is listed twice"),
    ];
    for (k, (rows, message)) in cases.iter().enumerate() {
        let body = if rows.starts_with("customer_id") {
            rows.to_string()
        } else {
            format!("{header}{good}{rows}")
        };
        let file = dir.path().join(format!("s{k}.csv"));
        std::fs::write(&file, body).unwrap();
        let out = dir.path().join("out.csv");
        churn()
            .args(["score", "--summary", file.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(*message));
        assert!(!out.exists());
    }
}

#[test]
fn rfm_base_figures_are_read_by_rfm_and_refused_by_the_models() {
    let dir = TempDir::new().unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let header = "customer_id,first_purchase,last_purchase,recency_days,frequency,monetary,as_of\n";
    let base = file(
        "base.csv",
        &format!("{header}A,2024-01-05,2024-02-10,50,3,145.5,2024-03-31\nB,2024-03-01,2024-03-01,30,1,20,2024-03-31\n"),
    );
    let out = stdout_of(&["rfm", "--summary", &base, "-q"]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[1].starts_with("A,2024-01-05,2024-02-10,50,3,145.5,"), "{out}");
    assert!(rows[2].starts_with("B,2024-03-01,2024-03-01,30,1,20,"), "{out}");
    for cmd in ["score", "fit"] {
        churn().args([cmd, "--summary", &base]).assert().code(1).stderr(predicate::str::contains(
            "has no repeat_days and repeat_amount columns (RFM base figures, as `churn sql rfm` gives): the models need the summary of `churn sql summary`",
        ));
    }
    let wrong_recency =
        file("r.csv", &format!("{header}A,2024-01-05,2024-02-10,49,3,145.5,2024-03-31\n"));
    churn().args(["rfm", "--summary", &wrong_recency]).assert().code(1).stderr(predicate::str::contains(
        "r.csv line 2, column 'recency_days': '49' is not the 50 days from last_purchase 2024-02-10 to as_of 2024-03-31",
    ));
    let half = file(
        "h.csv",
        "customer_id,first_purchase,last_purchase,purchases,monetary,repeat_days,as_of\nA,2024-01-05,2024-02-10,3,145.5,2,2024-03-31\n",
    );
    churn().args(["rfm", "--summary", &half]).assert().code(1).stderr(predicate::str::contains(
        "has a column 'repeat_days' but no 'repeat_amount': the two come together",
    ));
    let none = file("n.csv", &format!("{header}A,2024-01-05,2024-02-10,50,0,0,2024-03-31\n"));
    churn().args(["rfm", "--summary", &none]).assert().code(1).stderr(predicate::str::contains(
        "n.csv line 2, column 'frequency': 0 purchases; every customer of a summary has at least one",
    ));
}

#[test]
fn sql_period_and_retention_go_with_cohorts_only() {
    for (kind, flag) in [("summary", "--period"), ("rfm", "--retention"), ("cohorts", "--unit")] {
        let value = match flag {
            "--period" => "week",
            "--retention" => "rolling",
            _ => "day",
        };
        churn()
            .args(["sql", kind, "--dialect", "duckdb", "--table", "t", flag, value])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!("churn: {flag} goes with `churn sql ")));
    }
}

#[test]
fn sql_queries_parse_in_every_dialect() {
    let script = r#"
import sys, sqlglot
sqlglot.parse_one(sys.stdin.read(), read=sys.argv[1], error_level=sqlglot.ErrorLevel.RAISE)
print("ok")
"#;
    for (dialect, sqlglot_name) in [
        ("duckdb", "duckdb"),
        ("postgres", "postgres"),
        ("spark", "spark"),
        ("bigquery", "bigquery"),
        ("snowflake", "snowflake"),
    ] {
        for kind in [
            "summary",
            "rfm",
            "cohorts --period week",
            "cohorts --period quarter --retention rolling",
        ] {
            let mut args: Vec<&str> = vec!["sql"];
            args.extend(kind.split(' '));
            args.extend_from_slice(&[
                "--dialect",
                dialect,
                "--table",
                "shop.sales",
                "--customer",
                "Customer ID",
                "--quantity",
                "qty",
                "--price",
                "unit price",
                "--order",
                "invoice",
                "--as-of",
                "2024-06-30",
            ]);
            let sql = stdout_of(&args);
            let out = StdCommand::new(sql_python())
                .args(["-c", script, sqlglot_name])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    c.stdin.take().unwrap().write_all(sql.as_bytes())?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(
                out.status.success(),
                "{dialect} {kind}: {}\n{sql}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
