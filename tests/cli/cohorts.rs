//! `churn cohorts`: retention tables by hand and the chart.

use crate::util::*;

const COHORT_HEADER: &str = "cohort,period,cohort_size,customers,retention,orders,revenue,partial";

/// testdata/cohorts.csv by hand, as of 2024-03-15 (March is cut: partial).
/// January cohort {a, b}: Jan a (orders 1, 2) and b (4): 3 orders, 35;
/// Feb b (order 5 and a return of 3): 1 order, 4; Mar a (order 3): 30.
/// February cohort {c}: Feb 8, Mar 9. d only returned (no cohort); e is after as-of.
#[test]
fn cohorts_monthly_classic_and_rolling_by_hand() {
    let f = data("cohorts.csv");
    let f = f.to_str().unwrap();
    churn()
        .args(["cohorts", f, "--as-of", "2024-03-15"])
        .assert()
        .success()
        .stdout(format!(
            "{COHORT_HEADER}\n\
             2024-01-01,0,2,2,1,3,35,false\n\
             2024-01-01,1,2,1,0.5,1,4,false\n\
             2024-01-01,2,2,1,0.5,1,30,true\n\
             2024-02-01,0,1,1,1,1,8,false\n\
             2024-02-01,1,1,1,1,1,9,true\n"
        ))
        .stderr(predicate::str::contains("ignored 1 row after the as-of date"));
    let rolling =
        rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--retention", "rolling"]));
    let retained: Vec<&str> = rolling.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(retained, ["2", "2", "1", "1", "1"]);
    // A complete month is not partial: as of 2024-03-31, e's purchase on 03-20 makes a March cohort.
    let complete = rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-31"]));
    assert!(complete.iter().all(|r| r[7] == "false"));
    assert_eq!(complete.last().unwrap()[..4], ["2024-03-01", "0", "1", "1"]);
    // Wide layouts.
    assert_eq!(
        stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--layout", "wide"]),
        "cohort,cohort_size,0,1,2\n2024-01-01,2,1,0.5,0.5\n2024-02-01,1,1,1,\n"
    );
    assert_eq!(
        stdout_of(&[
            "cohorts",
            f,
            "--as-of",
            "2024-03-15",
            "--layout",
            "wide",
            "--values",
            "revenue"
        ]),
        "cohort,cohort_size,0,1,2\n2024-01-01,2,35,4,30\n2024-02-01,1,8,9,\n"
    );
    // Dropping returns removes b's -3 from February's revenue.
    let dropped = rows(&stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--returns", "drop"]));
    assert_eq!(dropped[1][6], "7");
    // Quarters: everything is in the first quarter of 2024, which is cut by as-of.
    assert_eq!(
        stdout_of(&["cohorts", f, "--as-of", "2024-03-15", "--period", "quarter"]),
        format!("{COHORT_HEADER}\n2024-01-01,0,3,3,1,7,86,true\n")
    );
}

/// ISO weeks start on Monday: 2024-12-29 is a Sunday (week of 2024-12-23),
/// 2024-12-30 a Monday (week 1 of 2025), 2025-01-06 the next Monday.
#[test]
fn cohorts_iso_weeks_across_the_year_end() {
    let f = data("cohorts_weeks.csv");
    assert_eq!(
        stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "week", "--as-of", "2025-01-08"]),
        format!(
            "{COHORT_HEADER}\n\
             2024-12-23,0,1,1,1,1,10,false\n\
             2024-12-23,1,1,1,1,1,10,false\n\
             2024-12-23,2,1,0,0,0,0,true\n\
             2024-12-30,0,1,1,1,1,5,false\n\
             2024-12-30,1,1,1,1,1,5,true\n"
        )
    );
    let days = rows(&stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "day"]));
    assert_eq!(days[0][..4], ["2024-12-29", "0", "1", "1"]);
    // Cohorts 2024-12-29 (x) and 2024-12-31 (y), cells up to 2025-01-06.
    assert_eq!(days.len(), 9 + 7);
}

/// Quarter boundaries: 03-31 | 04-01 and 06-30 | 07-01; as of 2024-07-01
/// the third quarter has just begun (partial).
#[test]
fn cohorts_quarters_across_boundaries() {
    let f = data("cohorts_quarters.csv");
    assert_eq!(
        stdout_of(&["cohorts", f.to_str().unwrap(), "--period", "quarter"]),
        format!(
            "{COHORT_HEADER}\n\
             2024-01-01,0,1,1,1,1,10,false\n\
             2024-01-01,1,1,1,1,1,5,false\n\
             2024-01-01,2,1,0,0,0,0,true\n\
             2024-04-01,0,1,1,1,1,7,false\n\
             2024-04-01,1,1,1,1,1,3,true\n"
        )
    );
}

#[test]
fn cohorts_single_customer_and_empty_inputs() {
    assert_eq!(
        stdout_of(&["cohorts", data("single_customer.csv").to_str().unwrap()]),
        format!(
            "{COHORT_HEADER}\n2024-01-01,0,1,1,1,1,5,false\n2024-01-01,1,1,0,0,0,0,false\n2024-01-01,2,1,1,1,1,5,true\n"
        )
    );
    churn()
        .args(["cohorts", data("cohorts.csv").to_str().unwrap(), "--as-of", "2020-01-01"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no transactions on or before the as-of date 2020-01-01"));
    churn()
        .args(["cohorts", data("only_returns.csv").to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no purchases"));
    churn()
        .args(["rfm", data("only_returns.csv").to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no customer has a purchase"));
}

fn svg_cells(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("<svg").unwrap();
    let end = text.rfind("</svg>").unwrap() + "</svg>".len();
    let doc = roxmltree::Document::parse(&text[start..end]).expect("valid SVG XML");
    doc.descendants().filter(|n| n.attribute("class") == Some("cell")).count()
}

#[test]
fn cohort_chart_has_one_cell_per_matrix_entry() {
    let dir = TempDir::new().unwrap();
    let svg = dir.path().join("c.svg");
    let html = dir.path().join("c.html");
    let sample = data("sample.csv");
    let long = stdout_of(&["cohorts", sample.to_str().unwrap(), "--chart", svg.to_str().unwrap()]);
    assert_eq!(svg_cells(&svg), rows(&long).len());
    stdout_of(&[
        "cohorts",
        sample.to_str().unwrap(),
        "--chart",
        html.to_str().unwrap(),
        "-o",
        dir.path().join("c.csv").to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&html).unwrap().starts_with("<!DOCTYPE html>"));
    assert_eq!(svg_cells(&html), rows(&long).len());

    // 36 monthly cohorts: one new customer a month, each buying every month.
    let input = dir.path().join("36.csv");
    let mut text = String::from("customer_id,date,amount\n");
    for c in 0..36 {
        for m in c..36 {
            text += &format!("c{c},{}-{:02}-15,1\n", 2021 + m / 12, 1 + m % 12);
        }
    }
    std::fs::write(&input, text).unwrap();
    let svg36 = dir.path().join("36.svg");
    let out =
        rows(&stdout_of(&["cohorts", input.to_str().unwrap(), "--chart", svg36.to_str().unwrap()]));
    assert_eq!(out.len(), 36 * 37 / 2);
    assert!(out.iter().all(|r| r[4] == "1"));
    assert_eq!(svg_cells(&svg36), 666);
    churn()
        .args(["cohorts", sample.to_str().unwrap(), "--chart", "c.gif"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".svg, .png or .html"));

    // PNG: twice the SVG's size; a coloured cell at every matrix entry of the
    // 36-cohort triangle and white paper beyond it (cells are 46x22 at
    // (150, 78) + (k * 46, cohort * 22) in SVG units).
    let png = dir.path().join("36.png");
    stdout_of(&["cohorts", input.to_str().unwrap(), "--chart", png.to_str().unwrap()]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let svg_text = std::fs::read_to_string(&svg36).unwrap();
    let doc = roxmltree::Document::parse(&svg_text).unwrap();
    let width: u32 = doc.root_element().attribute("width").unwrap().parse().unwrap();
    assert_eq!(info.width, width * 2);
    let channels = info.line_size / info.width as usize;
    let pixel = |x: usize, y: usize| {
        let i = (y * 2) * info.line_size + (x * 2) * channels;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    for cohort in 0..36 {
        for k in 0..36 {
            let p = pixel(150 + k * 46 + 4, 78 + cohort * 22 + 4);
            if k < 36 - cohort {
                assert_eq!(p, (8, 48, 107), "cell ({cohort}, {k}) is 100%: the darkest blue");
            } else {
                assert_eq!(p, (255, 255, 255), "no cell at ({cohort}, {k})");
            }
        }
    }
}
