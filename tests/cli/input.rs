//! Reading exports: layouts, delimiters, date forms, compression, Parquet.

use crate::util::*;

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
    let days: Vec<i32> =
        recs.iter().map(|r| churn::base::dates::parse_ymd(&r[2]).unwrap()).collect();
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
