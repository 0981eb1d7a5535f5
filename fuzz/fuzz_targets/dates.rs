//! The date parser on arbitrary bytes, in every layout: no panic, every
//! parsed day prints back as a calendar date that parses to the same day,
//! and layout detection settles or explains itself.
#![no_main]

use churn::base::dates::{DateLayout, Day, Detector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let layouts = [
        DateLayout::Iso,
        DateLayout::Compact,
        DateLayout::DayFirst,
        DateLayout::MonthFirst,
        DateLayout::Custom("%d %b %Y %H:%M".into()),
        DateLayout::Custom("%Y/%m/%d".into()),
    ];
    for layout in &layouts {
        if let Some(day) = layout.parse(data) {
            if churn::base::dates::in_supported_range(day) {
                let iso = Day(day).to_string();
                assert_eq!(DateLayout::Iso.parse(iso.as_bytes()), Some(day), "{iso}");
            }
        }
    }
    let mut det = Detector::default();
    for value in data.split(|&b| b == b'\n') {
        det.observe(value.trim_ascii());
    }
    let _ = det.result();
    let _ = churn::base::dates::layout_family(data);
});
