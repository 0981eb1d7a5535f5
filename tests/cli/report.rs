//! `churn report`: headline figures against an independent computation, formats, config.

use crate::util::*;

/// The sample's rows as (customer, day, cents, order id), blank customers skipped.
fn sample_rows() -> Vec<(String, i32, i64, String)> {
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    rows(&text)
        .into_iter()
        .filter(|r| !r[1].trim().is_empty())
        .map(|r| {
            let day = churn::base::dates::parse_ymd(&r[2][..10]).unwrap();
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
    use churn::base::dates::{parse_ymd, Day};
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
