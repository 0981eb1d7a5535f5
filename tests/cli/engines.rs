//! The engine suite: the emitted SQL run in DuckDB, Spark and PostgreSQL, translated by sqlglot,
//! and the summary and fits against lifetimes. Needs PyPI packages, a Java runtime and PostgreSQL
//! server programs, so every test here is ignored by default: `cargo test --release -- --ignored`.

use crate::util::*;

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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
#[ignore = "engine suite: needs PyPI packages, Java and PostgreSQL; cargo test --release -- --ignored"]
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
