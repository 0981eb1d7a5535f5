//! The streaming engine gives the in-memory engines' output and cleans up after itself.

use crate::util::*;

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
