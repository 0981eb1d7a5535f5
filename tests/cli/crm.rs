//! CRM-ready lists: --keep, --columns, --action(s), --excel, --changes-since.

use crate::util::*;

// ---------------------------------------------------------------------------
// CRM-ready lists: --keep, --columns, --action(s), --excel, --changes-since.

#[test]
fn keep_carries_the_latest_non_empty_value_per_customer() {
    // The same export as CSV and as Parquet (where empty values are nulls).
    for file in ["crm.csv", "crm.parquet"] {
        let f = data(file);
        let out = stdout_of(&[
            "rfm",
            f.to_str().unwrap(),
            "-q",
            "--keep",
            "Email,country,Customer Name",
            "--columns",
            "customer_id,Email,Country,Customer Name",
        ]);
        // A: the latest row (a return) has no email, so the one before it
        // wins; its country is on the latest row; its name only on the first.
        // B: two rows on one day: the later line wins. C: never given: empty.
        assert_eq!(
            out,
            "customer_id,Email,Country,Customer Name\n\
             A,a.new@example.com,FR,\"Alpha, Inc.\"\n\
             B,b2@example.com,US,Bob B\n\
             C,,,\n\
             D,d.future@example.com,UK,Dee\n",
            "{file}"
        );
    }
    let f = data("crm.csv");
    // Rows after --as-of are not looked at.
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--keep",
        "Email",
        "--as-of",
        "2024-03-04",
        "--columns",
        "customer_id,Email",
    ]);
    assert!(out.ends_with("D,d@example.com\n"), "{out}");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--keep", "Phone"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--keep: "))
        .stderr(predicate::str::contains("has no column 'Phone'; its columns are: 'customer_id'"));
}

#[test]
fn columns_choose_order_and_rename_and_unknown_ones_are_listed() {
    let f = data("crm.csv");
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--columns",
        "segment:Tier,customer_id:ExternalId,\"monetary:Total, net\"",
    ]);
    assert_eq!(out.lines().next().unwrap(), "Tier,ExternalId,\"Total, net\"");
    assert_eq!(out.lines().nth(1).unwrap(), "Loyal Customers,A,25");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--columns", "customer_id,Emali", "-o", "x.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--columns: no column 'Emali'; the available columns are: customer_id, first_purchase,",
        ));
    assert!(!Path::new("x.csv").exists());
    // The columns --columns is checked against before any work are the
    // list's own: naming them all gives the default list.
    let sample = data("sample.csv");
    let all = "customer_id,frequency,recency,T,monetary_avg,p_alive,churn_risk,expected_purchases,p_no_purchase,expected_spend,clv,value_at_risk,risk_band,segment";
    assert_eq!(
        stdout_of(&["score", sample.to_str().unwrap(), "-q", "--top", "50", "--columns", all]),
        stdout_of(&["score", sample.to_str().unwrap(), "-q", "--top", "50"])
    );
    churn()
        .args(["score", "/no/such/file.csv", "--columns", "customer_id,nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--columns: no column 'nope'"));
}

#[test]
fn actions_follow_segment_and_band_and_can_come_from_a_file() {
    let f = data("crm.csv");
    let out =
        stdout_of(&["rfm", f.to_str().unwrap(), "-q", "--columns", "customer_id,segment,action"]);
    assert!(out.contains("\nC,Others,review manually\n"), "{out}");
    assert!(out
        .contains("\nA,Loyal Customers,reward with loyalty points; offer membership or upsell\n"));
    // In score, a high band overrides the segment's action.
    let sample = data("sample.csv");
    let out = stdout_of(&[
        "score",
        sample.to_str().unwrap(),
        "-q",
        "--action",
        "--columns",
        "risk_band,segment,action",
    ]);
    let mut seen = 0;
    for row in rows(&out) {
        let want = match (row[0].as_str(), row[1].as_str()) {
            ("high", "Champions") => {
                "personal call from a representative: a top customer is slipping away"
            }
            ("low", "Champions") => {
                "reward: loyalty points or early access; ask for reviews and referrals"
            }
            _ => continue,
        };
        assert_eq!(row[2], want);
        seen += 1;
    }
    assert!(seen > 10, "{seen}");
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("actions.toml");
    std::fs::write(&file, "[segment]\n\"Loyal Customers\" = \"VIP\"\n").unwrap();
    let out = stdout_of(&[
        "rfm",
        f.to_str().unwrap(),
        "-q",
        "--actions",
        file.to_str().unwrap(),
        "--columns",
        "customer_id,action",
    ]);
    assert_eq!(
        out,
        "customer_id,action\nA,VIP\nB,review manually\nC,review manually\nD,review manually\n"
    );
    std::fs::write(&file, "[segment]\n\"Loyal\" = \"VIP\"\n").unwrap();
    churn()
        .args(["rfm", f.to_str().unwrap(), "--actions", file.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("names the segment 'Loyal', which does not exist"));
}

#[test]
fn excel_and_output_delimiter() {
    let f = data("hand.csv");
    let out = churn()
        .args(["rfm", f.to_str().unwrap(), "-q", "--excel", "--output-delimiter", ";"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("\u{feff}customer_id;first_purchase;"), "{text}");
    assert_eq!(text.matches("\r\n").count(), 6);
    assert_eq!(text.matches('\n').count(), 6);
    assert!(text.contains("\r\nA;2024-01-05;2024-02-10;55;2;145;"), "{text}");
    churn()
        .args(["rfm", f.to_str().unwrap(), "--excel", "-o", "x.parquet"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--excel and --output-delimiter apply to CSV and TSV"));
}

/// Each customer's (band, segment) in a scored list read back.
fn bands_and_segments(
    csv: &str,
    id: usize,
) -> std::collections::BTreeMap<String, (String, String)> {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (band, segment) = (col("risk_band"), col("segment"));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[id].to_string(), (rec[band].to_string(), rec[segment].to_string()))
        })
        .collect()
}

#[test]
fn changes_since_reports_every_kind_of_change() {
    let dir = TempDir::new().unwrap();
    let sample = data("sample.csv");
    let s = sample.to_str().unwrap();
    let now = stdout_of(&["score", s, "-q"]);
    let current = bands_and_segments(&now, 0);
    // The previous list: the current one with a band raised, a band lowered,
    // a segment changed, a customer missing (new) and one that left (gone).
    let mut r = csv::Reader::from_reader(now.as_bytes());
    let header = r.headers().unwrap().clone();
    let mut recs: Vec<Vec<String>> =
        r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect();
    let band = header.iter().position(|c| c == "risk_band").unwrap();
    let segment = header.iter().position(|c| c == "segment").unwrap();
    let first_with = |b: &str| recs.iter().position(|x| x[band] == b).unwrap();
    let (up, down) = (first_with("high"), first_with("low"));
    recs[up][band] = "low".into();
    recs[down][band] = "high".into();
    let seg = (0..recs.len()).find(|&i| i != up && i != down).unwrap();
    recs[seg][segment] = "Lost".into();
    let new = recs.remove(recs.len() - 1);
    let mut ghost = recs[0].clone();
    ghost[0] = "ghost".into();
    recs.push(ghost);
    let prev = dir.path().join("prev.csv");
    let mut w = csv::Writer::from_path(&prev).unwrap();
    w.write_record(&header).unwrap();
    for x in &recs {
        w.write_record(x).unwrap();
    }
    w.flush().unwrap();
    let delta = stdout_of(&["score", s, "-q", "--changes-since", prev.to_str().unwrap()]);
    let got: Vec<(String, String)> =
        rows(&delta).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let mut want = vec![
        (recs[up][0].clone(), "band_up".to_string()),
        (recs[down][0].clone(), "band_down".to_string()),
        (recs[seg][0].clone(), "segment_changed".to_string()),
        (new[0].clone(), "new".to_string()),
        ("ghost".to_string(), "gone".to_string()),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    if recs[seg][segment] == current[&recs[seg][0]].1 {
        want.retain(|w| w.1 != "segment_changed"); // it was already Lost
    }
    assert_eq!(sorted, want, "{delta}");
    // Gone customers come last, with empty figures.
    assert!(delta.ends_with("ghost,gone,,,,,,,,,,,,,\n"), "{delta}");
    assert!(delta.starts_with("customer_id,change,frequency,"));
}

#[test]
fn readme_crm_pipeline_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- crm-pipeline -->\n```sh\n").unwrap() + 28;
    let end = readme[start..].find("```\n<!-- /crm-pipeline -->").unwrap() + start;
    let script = &readme[start..end];
    // An export with an email per customer, as the README's exports/sales.csv.
    let dir = TempDir::new().unwrap();
    std::fs::create_dir_all(dir.path().join("exports")).unwrap();
    std::fs::create_dir_all(dir.path().join("crm")).unwrap();
    let sample = std::fs::read_to_string(data("sample.csv")).unwrap();
    let mut export = String::new();
    for (k, line) in sample.lines().enumerate() {
        let email = if k == 0 {
            "Email".to_string()
        } else {
            format!("c{}@example.com", line.split(',').nth(1).unwrap())
        };
        export.push_str(&format!("{line},{email}\n"));
    }
    std::fs::write(dir.path().join("exports/sales.csv"), export).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("churn");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Last week's list: the same script's first command, a week earlier.
    let first_week = format!(
        "{}\nchurn score exports/sales.csv \"${{LIST[@]}}\" --as-of 2023-12-24 -o crm/last-week.csv\n",
        script.lines().take(2).collect::<Vec<_>>().join("\n")
    );
    for s in [first_week.as_str(), "cp crm/last-week.csv crm/previous.csv\n", script] {
        let out = StdCommand::new("bash")
            .args(["-euc", s])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |name: &str| std::fs::read_to_string(dir.path().join("crm").join(name)).unwrap();
    assert!(!dir.path().join("crm/this-week.csv").exists());
    let delta = read("delta.csv");
    assert!(delta.starts_with("Email,ExternalId,Churn Risk,Tier,Segment,Action,change\n"));
    // The delta, recomputed from the two full lists.
    let key = |csv: &str| -> std::collections::BTreeMap<String, (String, String)> {
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        r.records()
            .map(|x| {
                let x = x.unwrap();
                (x[1].to_string(), (x[3].to_string(), x[4].to_string()))
            })
            .collect()
    };
    let (before, after) = (key(&read("previous.csv")), key(&read("last-week.csv")));
    let rank = |b: &str| ["low", "medium", "high"].iter().position(|x| *x == b).unwrap();
    let mut want = std::collections::BTreeMap::new();
    for (id, (band, segment)) in &after {
        let change = match before.get(id) {
            None => "new",
            Some((b, _)) if rank(b) < rank(band) => "band_up",
            Some((b, _)) if rank(b) > rank(band) => "band_down",
            Some((_, s)) if s != segment => "segment_changed",
            _ => continue,
        };
        want.insert(id.clone(), change.to_string());
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        want.insert(id.clone(), "gone".into());
    }
    let got: std::collections::BTreeMap<String, String> =
        rows(&delta).into_iter().map(|r| (r[1].clone(), r[6].clone())).collect();
    assert_eq!(got, want);
    for kind in ["new", "band_up", "band_down", "gone"] {
        assert!(want.values().any(|c| c == kind), "no {kind} in this week's delta");
    }
    // Emails and actions travel with the rows that are still listed.
    let first = &rows(&delta)[0];
    assert_eq!(first[0], format!("c{}@example.com", first[1]));
    assert!(!first[5].is_empty());
}
