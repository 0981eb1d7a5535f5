//! Recommended retention actions, per RFM segment and churn-risk band.
//!
//! A scored list is only useful when someone acts on it, and retention teams
//! act per group: the loyal are rewarded, valuable customers who are slipping
//! away get a personal call, the lapsed get a cheap win-back offer or are left
//! alone. The defaults below say that in a few words per group; a team that
//! runs its own playbook replaces them with a small TOML file:
//!
//! ```toml
//! # An action per segment; the band tables (churn score) override it.
//! [segment]
//! "Champions" = "VIP programme invitation"
//! [high]
//! "Champions" = "Account manager call this week"
//! ```

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::risk::Band;

/// The action for a segment, and per band where the band changes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Actions {
    by_segment: HashMap<String, String>,
    high: HashMap<String, String>,
    medium: HashMap<String, String>,
    low: HashMap<String, String>,
}

/// For a segment without an action of its own (a custom segment, "Others").
const FALLBACK: &str = "review manually";

const DEFAULT_SEGMENT: &[(&str, &str)] = &[
    ("Champions", "reward: loyalty points or early access; ask for reviews and referrals"),
    ("Loyal Customers", "reward with loyalty points; offer membership or upsell"),
    ("Potential Loyalist", "invite to the loyalty programme; recommend related products"),
    ("New Customers", "welcome series; help them get value from the first purchase"),
    ("Promising", "nurture: brand content and a free-shipping offer"),
    ("Need Attention", "limited-time offer based on past purchases"),
    ("About To Sleep", "reactivation email with popular products"),
    ("At Risk", "personal email or call: ask what went wrong; renewal offer"),
    ("Can't Lose Them", "personal outreach by a representative; win-back offer"),
    ("Lost", "low-cost win-back campaign, or suppress from paid outreach"),
];

/// Band-specific overrides: valuable customers whose risk is high get a
/// person, not a newsletter; the lapsed and unvalued are not chased at cost.
const DEFAULT_HIGH: &[(&str, &str)] = &[
    ("Champions", "personal call from a representative: a top customer is slipping away"),
    ("Loyal Customers", "personal outreach with a loyalty reward"),
    ("Potential Loyalist", "personalised offer before they lapse"),
    ("At Risk", "personal call from a representative; win-back offer"),
    ("Can't Lose Them", "priority personal call from a senior representative; win-back offer"),
    ("Lost", "suppress from paid outreach; low-cost win-back email only"),
];

const DEFAULT_MEDIUM: &[(&str, &str)] = &[
    ("Champions", "check in personally; early access to new products"),
    ("Loyal Customers", "loyalty reward with a reminder of their benefits"),
];

fn table(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            by_segment: table(DEFAULT_SEGMENT),
            high: table(DEFAULT_HIGH),
            medium: table(DEFAULT_MEDIUM),
            low: HashMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    segment: HashMap<String, String>,
    #[serde(default)]
    high: HashMap<String, String>,
    #[serde(default)]
    medium: HashMap<String, String>,
    #[serde(default)]
    low: HashMap<String, String>,
}

impl Actions {
    /// Actions from a TOML file's text; it replaces the defaults entirely.
    /// Segment names must be among `segments` (a misspelt name would never match).
    pub fn from_toml(text: &str, segments: &[String]) -> Result<Actions, String> {
        let f: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        for (table, map) in
            [("segment", &f.segment), ("high", &f.high), ("medium", &f.medium), ("low", &f.low)]
        {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            if let Some(bad) = names.into_iter().find(|n| !segments.contains(n)) {
                return Err(format!(
                    "[{table}] names the segment '{bad}', which does not exist; the segments are: {}",
                    segments.join(", ")
                ));
            }
        }
        Ok(Actions { by_segment: f.segment, high: f.high, medium: f.medium, low: f.low })
    }

    /// The action for a customer of `segment`, in `band` when scored.
    pub fn action(&self, segment: &str, band: Option<Band>) -> &str {
        let by_band = band.and_then(|b| {
            match b {
                Band::High => &self.high,
                Band::Medium => &self.medium,
                Band::Low => &self.low,
            }
            .get(segment)
        });
        by_band.or_else(|| self.by_segment.get(segment)).map_or(FALLBACK, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        crate::domain::segments::Segments::default().names()
    }

    #[test]
    fn every_default_segment_has_an_action() {
        let a = Actions::default();
        for s in names() {
            if s != crate::domain::segments::OTHERS {
                assert_ne!(a.action(&s, None), FALLBACK, "{s}");
            }
        }
        for (s, _) in DEFAULT_HIGH.iter().chain(DEFAULT_MEDIUM) {
            assert!(names().iter().any(|n| n == s), "{s}");
        }
    }

    #[test]
    fn bands_override_segments_and_files_replace_defaults() {
        let a = Actions::default();
        assert!(a
            .action("Can't Lose Them", Some(Band::High))
            .starts_with("priority personal call"));
        assert!(a.action("Can't Lose Them", Some(Band::Low)).starts_with("personal outreach"));
        assert_eq!(a.action("Others", None), FALLBACK);
        let f = Actions::from_toml(
            "[segment]\n\"Champions\" = \"VIP\"\n[high]\n\"Champions\" = \"call\"\n",
            &names(),
        )
        .unwrap();
        assert_eq!(f.action("Champions", Some(Band::High)), "call");
        assert_eq!(f.action("Champions", Some(Band::Low)), "VIP");
        assert_eq!(f.action("Lost", None), FALLBACK);
        let e = Actions::from_toml("[segment]\n\"Champs\" = \"x\"\n", &names()).unwrap_err();
        assert!(e.contains("'Champs', which does not exist"), "{e}");
        let e = Actions::from_toml("[segments]\n", &names()).unwrap_err();
        assert!(e.starts_with("line 1: unknown field `segments`"), "{e}");
    }
}
