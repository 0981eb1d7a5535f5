//! What changed since the previous scored list, so that a weekly sync pushes
//! a delta to the CRM instead of the whole customer base.
//!
//! A customer is reported when they are new to the list, when their risk band
//! moved (up means more likely to churn), when their RFM segment changed, or
//! when they left the list. Figures that moved within a band are not a change:
//! the CRM acts on bands and segments, and a list that changed on every row
//! every week would be no delta at all.

use std::collections::HashMap;

/// Why a customer is in the delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    New,
    BandUp,
    BandDown,
    SegmentChanged,
    Gone,
}

impl Change {
    pub const ALL: [Change; 5] =
        [Change::New, Change::BandUp, Change::BandDown, Change::SegmentChanged, Change::Gone];

    pub fn name(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::BandUp => "band_up",
            Change::BandDown => "band_down",
            Change::SegmentChanged => "segment_changed",
            Change::Gone => "gone",
        }
    }
}

/// A customer's band and segment in the previous list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Was {
    pub band: String,
    pub segment: String,
}

/// The previous list: its customers in file order, and what each was.
#[derive(Clone, Debug, Default)]
pub struct Previous {
    pub order: Vec<String>,
    pub by_id: HashMap<String, Was>,
}

impl Previous {
    /// Adds a row; a customer listed twice keeps their last row.
    pub fn push(&mut self, id: String, was: Was) {
        if self.by_id.insert(id.clone(), was).is_none() {
            self.order.push(id);
        }
    }
}

fn band_rank(band: &str) -> Option<u8> {
    match band {
        "low" => Some(0),
        "medium" => Some(1),
        "high" => Some(2),
        _ => None,
    }
}

/// The change of a customer now in `band` and `segment`, who was `was`
/// (none: not in the previous list). A band move outranks a segment change.
pub fn classify(was: Option<&Was>, band: &str, segment: &str) -> Option<Change> {
    let Some(was) = was else {
        return Some(Change::New);
    };
    if was.band != band {
        return match (band_rank(&was.band), band_rank(band)) {
            (Some(a), Some(b)) if b < a => Some(Change::BandDown),
            _ => Some(Change::BandUp),
        };
    }
    (was.segment != segment).then_some(Change::SegmentChanged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn was(band: &str, segment: &str) -> Was {
        Was { band: band.into(), segment: segment.into() }
    }

    #[test]
    fn each_kind_of_change() {
        assert_eq!(classify(None, "low", "Lost"), Some(Change::New));
        assert_eq!(classify(Some(&was("low", "Lost")), "high", "Lost"), Some(Change::BandUp));
        assert_eq!(classify(Some(&was("high", "Lost")), "medium", "Lost"), Some(Change::BandDown));
        assert_eq!(
            classify(Some(&was("low", "Lost")), "low", "At Risk"),
            Some(Change::SegmentChanged)
        );
        assert_eq!(classify(Some(&was("low", "Lost")), "medium", "At Risk"), Some(Change::BandUp));
        assert_eq!(classify(Some(&was("low", "Lost")), "low", "Lost"), None);
        let mut p = Previous::default();
        p.push("a".into(), was("low", "Lost"));
        p.push("b".into(), was("low", "Lost"));
        p.push("a".into(), was("high", "Lost"));
        assert_eq!(p.order, ["a", "b"]);
        assert_eq!(p.by_id["a"].band, "high");
    }
}
