//! Purchase and spend models: fits against lifetimes, scores, backtest, degenerate histories.

use crate::util::*;

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
    let start = churn::base::dates::parse_ymd("2023-01-01").unwrap();
    let horizon_weeks = 78.0;
    let mut text = String::from("customer_id,date,amount\n");
    for c in 0..30_000 {
        let (l, p): (f64, f64) = (lambda.sample(&mut rng), drop.sample(&mut rng));
        let mut t: f64 = rng.gen_range(0.0..52.0);
        let gap = Exp::new(l.max(1e-9)).unwrap();
        let mut first = true;
        loop {
            let day = start + (t * 7.0) as i32;
            text += &format!("c{c},{},{}\n", churn::base::dates::Day(day), 10 + c % 50);
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
    let as_of = churn::base::dates::Day(start + (horizon_weeks * 7.0) as i32 - 1).to_string();
    let backtest = |more: &[&str]| {
        let mut args = vec!["backtest", path.to_str().unwrap(), "--holdout", "13w", "-q"];
        args.extend(["--as-of", &as_of]);
        stdout_of(&[&args[..], more].concat())
    };
    let out = backtest(&["--json"]);
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
    backtest(&["--chart", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("valid SVG");
    let series = doc.descendants().filter(|n| n.attribute("class") == Some("series")).count();
    assert_eq!(series, 4);
    assert!(text.contains(">actual<"));
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

/// One model choice for every command: the spend model is no purchase
/// model, `auto` means the three, and the one rule for a usable fit applies
/// to a saved file as to a fresh fit.
#[test]
fn one_model_choice_and_one_rule_for_a_usable_fit() {
    let sample = data("sample.csv");
    let sample = sample.to_str().unwrap();
    for cmd in ["score", "backtest", "report"] {
        churn()
            .args([cmd, sample, "--model", "gg"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("[possible values: bgnbd, mbgnbd, pnbd, auto]"));
    }
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("churn.toml");
    std::fs::write(&config, "[report]\nmodel = \"gg\"\n").unwrap();
    churn().args(["report", sample, "--config", config.to_str().unwrap()]).assert().code(2).stderr(
        predicate::str::contains(
            "[report] model: 'gg' is not a purchase model; use bgnbd, mbgnbd, pnbd, auto",
        ),
    );
    std::fs::write(&config, "[report]\nmodel = \"BG/NBD\"\n").unwrap();
    churn()
        .args(["report", sample, "--config", config.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("'BG/NBD' is not one of bgnbd, mbgnbd, pnbd, gg, auto"));

    // A spend model whose q was edited to below 1 has an infinite mean spend.
    let gg = dir.path().join("gg.json");
    churn()
        .args(["fit", sample, "--model", "gg", "-q", "--save", gg.to_str().unwrap()])
        .assert()
        .success();
    let mut model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&gg).unwrap()).unwrap();
    model["params"]["q"] = serde_json::json!(0.9);
    std::fs::write(&gg, model.to_string()).unwrap();
    churn()
        .args(["score", sample, "--model-file", gg.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "model file {}: the Gamma-Gamma fit has q = 0.9 <= 1: expected spend is infinite",
            gg.display()
        )));

    // The sort keys are also spelled as their columns.
    let by = |key: &str| stdout_of(&["score", sample, "--sort", key, "--top", "20"]);
    assert_eq!(by("churn_risk"), by("churn-risk"));
    assert_ne!(by("churn-risk"), by("clv"));
}
