//! What changed since the previous scored list, so that a weekly sync pushes
//! a delta to the CRM instead of the whole customer base.
//!
//! A customer is reported when they are new to the list, when their risk band
//! moved (up means more likely to churn), when their RFM segment changed, or
//! when they left the list. Figures that moved within a band are not a change:
//! the CRM acts on bands and segments, and a list that changed on every row
//! every week would be no delta at all.

use std::collections::HashMap;

use crate::domain::risk::Band;

crate::named_enum! {
    /// Why a customer is in the delta.
    pub enum Change {
        New = ("new", ""),
        BandUp = ("band_up", ""),
        BandDown = ("band_down", ""),
        SegmentChanged = ("segment_changed", ""),
        Gone = ("gone", ""),
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

/// The change of a customer now in `band` and `segment`, who was `was`
/// (none: not in the previous list). A band move outranks a segment change.
pub fn classify(was: Option<&Was>, band: &str, segment: &str) -> Option<Change> {
    let Some(was) = was else {
        return Some(Change::New);
    };
    if was.band != band {
        return match (was.band.parse::<Band>(), band.parse::<Band>()) {
            (Ok(a), Ok(b)) if b.rank() > a.rank() => Some(Change::BandDown),
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
