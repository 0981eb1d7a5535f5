//! Broken and hostile input: one clear error, exit 1, no output file; skipped rows counted.

use crate::util::*;

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

/// Every numeric flag is checked as it is parsed, the same way in every
/// command, and a settings value by the same rule.
#[test]
fn numbers_no_command_can_use_are_usage_errors() {
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    for (args, message) in [
        (vec!["fit", s, "--penalty", "-1"], "the penalty must be 0 or more"),
        (vec!["score", s, "--penalty", "NaN"], "the penalty must be 0 or more"),
        (vec!["backtest", s, "--penalty", "-0.5"], "the penalty must be 0 or more"),
        (vec!["report", s, "--penalty", "-1"], "the penalty must be 0 or more"),
        (vec!["score", s, "--discount-rate", "-1"], "must be above -1"),
        (vec!["report", s, "--discount-rate", "inf"], "must be above -1"),
        (vec!["score", s, "--min-risk", "1.5"], "must be between 0 and 1"),
        (vec!["report", s, "--high-risk", "-0.1"], "must be between 0 and 1"),
        (vec!["score", s, "--bands", "0.4,0.7"], "0 <= MEDIUM <= HIGH <= 1"),
        (vec!["score", s, "--horizon", "0d"], "the horizon must be positive"),
        (vec!["report", s, "--periods", "2"], "at least 3 periods"),
    ] {
        churn().args(&args).assert().code(2).stdout("").stderr(
            predicate::str::contains(message).and(predicate::str::contains("panicked").not()),
        );
    }
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("churn.toml");
    for (setting, message) in [
        ("penalty = -2.0", "[report] penalty = -2: the penalty must be 0 or more"),
        ("high_risk = 1.5", "[report] high_risk = 1.5: must be between 0 and 1"),
        ("periods = 1", "[report] periods = 1: the report needs at least 3 periods"),
    ] {
        std::fs::write(&config, format!("[report]\n{setting}\n")).unwrap();
        churn()
            .args(["report", s, "--config", config.to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    }
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

// ---------------------------------------------------------------------------
// Hostile and broken input (testdata/bad/): each case exits 1 with a message
// naming the file and, where the problem is in a value, its line (or Parquet
// row) and column, and writes no output file.

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
