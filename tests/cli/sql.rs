//! `churn sql`: summaries that break the definitions, flags that go with one kind only.

use crate::util::*;

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
