//! Output: formats that read back, determinism, quiet pipes, atomic and requested-only writes.

use crate::util::*;

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
