//! Named RFM segments: an ordered list of score-range rules, first match wins.
//!
//! The default table is the widely used 5-point scheme (Champions, Loyal
//! Customers, At Risk, ...). Teams have their own, so `--segments FILE`
//! replaces it with rules from a CSV or TOML file; a bad rule is an error
//! naming its line.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// One rule: inclusive score ranges for R, F and M.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub r: (u32, u32),
    pub f: (u32, u32),
    pub m: (u32, u32),
}

impl Rule {
    fn matches(&self, r: u32, f: u32, m: u32) -> bool {
        (self.r.0..=self.r.1).contains(&r)
            && (self.f.0..=self.f.1).contains(&f)
            && (self.m.0..=self.m.1).contains(&m)
    }
}

pub const OTHERS: &str = "Others";

/// An ordered rule table, and the score scale its ranges are written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segments {
    pub rules: Vec<Rule>,
    /// The number of score bins the rules assume; scores on another scale
    /// are mapped onto it before matching (only for the default table).
    pub scale: Option<u32>,
}

impl Default for Segments {
    fn default() -> Self {
        let rule = |name: &str, r, f, m| Rule { name: name.into(), r, f, m };
        Segments {
            rules: vec![
                rule("Champions", (5, 5), (5, 5), (5, 5)),
                rule("Potential Loyalist", (3, 5), (3, 5), (2, 5)),
                rule("Loyal Customers", (2, 4), (2, 4), (2, 4)),
                rule("Promising", (3, 4), (1, 3), (3, 5)),
                rule("New Customers", (4, 5), (1, 3), (1, 5)),
                rule("Can't Lose Them", (1, 2), (3, 4), (4, 5)),
                rule("At Risk", (1, 2), (2, 5), (4, 5)),
                rule("Need Attention", (1, 3), (3, 5), (3, 5)),
                rule("About To Sleep", (2, 3), (1, 3), (1, 4)),
                rule("Lost", (1, 1), (1, 5), (1, 5)),
            ],
            scale: Some(5),
        }
    }
}

impl Segments {
    /// The segment for scores on a 1..=bins scale.
    pub fn classify(&self, r: u32, f: u32, m: u32, bins: u32) -> &str {
        let (r, f, m) = match self.scale {
            Some(s) if s != bins => (rescale(r, bins, s), rescale(f, bins, s), rescale(m, bins, s)),
            _ => (r, f, m),
        };
        self.rules.iter().find(|rule| rule.matches(r, f, m)).map_or(OTHERS, |rule| &rule.name)
    }

    /// Every name a customer can get, in table order, then Others.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in &self.rules {
            if !v.contains(&r.name) {
                v.push(r.name.clone());
            }
        }
        if !v.iter().any(|n| n == OTHERS) {
            v.push(OTHERS.to_string());
        }
        v
    }

    /// Reads rules from a `.toml` or `.csv` file; `bins` bounds the scores.
    pub fn from_file(path: &Path, bins: u32) -> Result<Segments> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read segment rules {}", path.display()))?;
        let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let rules = if is_toml { parse_toml(&text, bins) } else { parse_csv(&text, bins) }
            .with_context(|| format!("in segment rules {}", path.display()))?;
        if rules.is_empty() {
            bail!("segment rules {} define no segment", path.display());
        }
        Ok(Segments { rules, scale: None })
    }
}

/// Maps a score on 1..=from to 1..=to, keeping the order and the extremes
/// (rounding to the nearest point of the target scale).
fn rescale(s: u32, from: u32, to: u32) -> u32 {
    let span = from.max(2) - 1;
    1 + ((s - 1) * (to - 1) * 2 + span) / (2 * span)
}

fn check_range(what: &str, lo: i64, hi: i64, bins: u32) -> Result<(u32, u32), String> {
    if lo < 1 || hi > bins as i64 || lo > hi {
        return Err(format!("{what} range {lo}..{hi} must satisfy 1 <= min <= max <= {bins}"));
    }
    Ok((lo as u32, hi as u32))
}

/// CSV: `name,r_min,r_max,f_min,f_max,m_min,m_max`, with a header row.
fn parse_csv(text: &str, bins: u32) -> Result<Vec<Rule>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers()?.iter().map(|h| h.to_lowercase()).collect();
    let want = ["name", "r_min", "r_max", "f_min", "f_max", "m_min", "m_max"];
    let idx: Vec<usize> = want
        .iter()
        .map(|w| {
            header.iter().position(|h| h == w).with_context(|| {
                format!("line 1: missing column '{w}'; expected columns {}", want.join(","))
            })
        })
        .collect::<Result<_>>()?;
    let mut rules = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let line = rec.position().map_or(0, |p| p.line());
        let num = |k: usize| -> Result<i64> {
            let v = rec.get(idx[k]).unwrap_or("");
            v.parse::<i64>()
                .with_context(|| format!("line {line}: {} '{v}' is not a whole number", want[k]))
        };
        let name = rec.get(idx[0]).unwrap_or("").to_string();
        if name.is_empty() {
            bail!("line {line}: empty segment name");
        }
        let range = |what: &str, a: usize| -> Result<(u32, u32)> {
            check_range(what, num(a)?, num(a + 1)?, bins)
                .map_err(|e| anyhow::anyhow!("line {line}: {e}"))
        };
        rules.push(Rule { name, r: range("R", 1)?, f: range("F", 3)?, m: range("M", 5)? });
    }
    Ok(rules)
}

/// TOML: `[[segment]]` tables with `name`, `r`, `f`, `m` (each `[min, max]`).
fn parse_toml(text: &str, bins: u32) -> Result<Vec<Rule>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        name: String,
        r: [i64; 2],
        f: [i64; 2],
        m: [i64; 2],
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        segment: Vec<toml::Spanned<Raw>>,
    }
    let file: File = crate::base::settings::from_toml(text)?;
    file.segment
        .into_iter()
        .map(|s| {
            let line = crate::base::settings::line_of(text, s.span().start);
            let raw = s.into_inner();
            let range = |what: &str, v: [i64; 2]| {
                check_range(what, v[0], v[1], bins)
                    .map_err(|e| anyhow::anyhow!("line {line}: segment '{}': {e}", raw.name))
            };
            Ok(Rule {
                name: raw.name.clone(),
                r: range("r", raw.r)?,
                f: range("f", raw.f)?,
                m: range("m", raw.m)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_first_match_wins() {
        let s = Segments::default();
        assert_eq!(s.classify(5, 5, 5, 5), "Champions");
        assert_eq!(s.classify(5, 5, 4, 5), "Potential Loyalist");
        assert_eq!(s.classify(2, 2, 2, 5), "Loyal Customers");
        assert_eq!(s.classify(4, 1, 3, 5), "Promising");
        assert_eq!(s.classify(5, 1, 1, 5), "New Customers");
        assert_eq!(s.classify(1, 3, 5, 5), "Can't Lose Them");
        assert_eq!(s.classify(2, 5, 5, 5), "At Risk");
        assert_eq!(s.classify(3, 4, 3, 5), "Potential Loyalist");
        assert_eq!(s.classify(1, 5, 3, 5), "Need Attention");
        assert_eq!(s.classify(3, 1, 1, 5), "About To Sleep");
        assert_eq!(s.classify(1, 1, 1, 5), "Lost");
        assert_eq!(s.classify(2, 1, 5, 5), OTHERS);
        // 3-bin scores are mapped onto the 5-point table: 3 -> 5, 1 -> 1.
        assert_eq!(s.classify(3, 3, 3, 3), "Champions");
        assert_eq!(s.classify(1, 1, 1, 3), "Lost");
        assert_eq!((1..=3).map(|x| rescale(x, 3, 5)).collect::<Vec<_>>(), vec![1, 3, 5]);
        assert_eq!(
            (1..=10).map(|x| rescale(x, 10, 5)).collect::<Vec<_>>(),
            vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        );
    }

    #[test]
    fn csv_rules_and_errors() {
        let r =
            parse_csv("name,r_min,r_max,f_min,f_max,m_min,m_max\nVIP,4,5,4,5,1,5\n", 5).unwrap();
        assert_eq!(r[0], Rule { name: "VIP".into(), r: (4, 5), f: (4, 5), m: (1, 5) });
        let e = parse_csv(
            "name,r_min,r_max,f_min,f_max,m_min,m_max\nA,1,5,1,5,1,5\nB,3,2,1,5,1,5\n",
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = parse_csv("name,r_min,r_max,f_min,f_max,m_min,m_max\nA,1,x,1,5,1,5\n", 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("'x'"), "{e}");
    }

    #[test]
    fn toml_rules_and_errors() {
        let t = "[[segment]]\nname = \"VIP\"\nr = [4, 5]\nf = [4, 5]\nm = [1, 5]\n";
        assert_eq!(parse_toml(t, 5).unwrap()[0].r, (4, 5));
        let t = "[[segment]]\nname = \"A\"\nr = [1, 5]\nf = [1, 5]\nm = [1, 5]\n\n[[segment]]\nname = \"B\"\nr = [1, 9]\nf = [1, 5]\nm = [1, 5]\n";
        let e = parse_toml(t, 5).unwrap_err().to_string();
        assert!(e.starts_with("line 7:") && e.contains("'B'"), "{e}");
    }
}
