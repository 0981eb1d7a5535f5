//! The harness every topic module shares: the `churn` command, fixture paths,
//! output parsers and the hand-computed tables several topics check against.

pub use std::io::{Read, Write};
pub use std::path::{Path, PathBuf};
pub use std::process::{Command as StdCommand, Stdio};

pub use assert_cmd::Command;
pub use predicates::prelude::*;
pub use tempfile::TempDir;

pub fn churn() -> Command {
    Command::cargo_bin("churn").unwrap()
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

pub fn stdout_of(args: &[&str]) -> String {
    let out = churn().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "churn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json_of(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&stdout_of(args)).unwrap()
}

/// Each named parameter of a `churn fit --json` object within `rel` of the reference.
pub fn assert_params(fit: &serde_json::Value, want: &[(&str, f64)], rel: f64) {
    for &(name, reference) in want {
        let got = fit["params"][name].as_f64().unwrap();
        assert!(
            (got - reference).abs() < rel * reference,
            "{name}: {got} vs lifetimes {reference}"
        );
    }
}

pub fn rows(csv: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
}

pub const HEADER: &str =
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
pub const HAND_RFM: &str = "\
A,2024-01-05,2024-02-10,50,2,145,2,4,4,244,Loyal Customers
B,2024-03-31,2024-03-31,0,1,10,5,1,2,512,New Customers
C,2023-12-01,2024-02-20,40,3,600,3,5,5,355,Potential Loyalist
D,2024-01-31,2024-01-31,60,1,0,1,1,1,111,Lost
E,2024-03-15,2024-03-15,16,1,40,4,1,3,413,Promising
";

pub fn hand_expected() -> String {
    format!("{HEADER}\n{HAND_RFM}")
}

/// A CSV of 1,000,000 rows, one per customer, made once per test run.
pub fn million_customers() -> &'static Path {
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

/// Waits until a temporary output file appears in `dir` (or the child ends).
pub fn wait_for_temp_file(dir: &Path, child: &mut std::process::Child) -> bool {
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
pub fn interrupted(args: &[&str], dir: &Path, signal: &str) -> Option<std::process::ExitStatus> {
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

/// A fixture of testdata/bad/.
pub fn bad(name: &str) -> PathBuf {
    data("bad").join(name)
}
