//! `churn inspect`: the profile of an export.

use crate::util::*;

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
